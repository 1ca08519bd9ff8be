"""Which rank and micro-batch trains on which of a step's images: pure functions, no torch.

A step's global batch is the spec's batch whatever the world size. Its positions 0..B-1 are dealt
out like cards to S = world_size x accumulation shards: shard s takes positions s, s+S, s+2S, ...
Rank r trains shards r, r+W, r+2W, ... one micro-batch after the other. The objectives' subsets are
prefixes of the batch (CLIP on B, SSL on B/4, reconstruction on B/8), and each shard's part of a
prefix is a prefix of the shard, so every shard sees its equal share of every subset. The order of
samples is thus a function of (seed, step) only; the world size decides who computes what, not what
is computed (losses are means over equal shares, gradients summed over shards).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


class ShardingError(ValueError):
    """The global batch does not split evenly over ranks and micro-batches; the message says how to fix it."""


@dataclass(frozen=True)
class Sharding:
    """How one step's global batch is split. Counts are per shard (one micro-batch of one rank)."""

    world_size: int
    accumulation: int  # micro-batches per rank per step
    counts: dict[str, int]  # subset name -> samples per shard

    def __getattr__(self, name: str) -> int:  # sh.n_clip etc.
        counts = self.__dict__.get("counts", {})
        if name in counts:
            return counts[name]
        raise AttributeError(name)

    @property
    def shards(self) -> int:
        return self.world_size * self.accumulation

    def shard(self, rank: int, micro: int) -> int:
        """Micro-batch `micro` of rank `rank` (so 1 rank x 2 micro-batches and 2 ranks x 1 deal alike)."""
        return micro * self.world_size + rank


def plan_sharding(
    subsets: dict[str, int], *, world_size: int, micro_batch_size: int = 0
) -> Sharding:
    """`subsets` maps names (the tokenizer's n_images, n_plain, n_clip, n_ssl, n_rec; the DiT's
    batch) to their global counts per step; the largest is what a rank loads.

    micro_batch_size: samples one rank puts through one forward/backward (0: its whole share at once);
    the accumulation steps follow from it. Every subset must split evenly into the shards.
    """
    if world_size < 1:
        raise ShardingError(f"world_size must be >= 1, got {world_size}")
    per_rank = max(subsets.values()) / world_size
    accumulation = 1 if micro_batch_size <= 0 else max(1, math.ceil(per_rank / micro_batch_size))
    s = world_size * accumulation
    uneven = {k: v for k, v in subsets.items() if v % s}
    if uneven:
        listed = ", ".join(f"{k}={v}" for k, v in subsets.items())
        raise ShardingError(
            f"the step's batch subsets ({listed}) must each split evenly over {world_size} rank(s) x "
            f"{accumulation} micro-batch(es) = {s} shards; {', '.join(uneven)} do(es) not: change batch_size, "
            f"the fractions, micro_batch_size or the number of GPUs"
        )
    return Sharding(world_size, accumulation, {k: v // s for k, v in subsets.items()})


def shard_positions(n: int, shard: int, shards: int) -> list[int]:
    """The positions of shard `shard` among the first n of a step's batch (n divisible by shards)."""
    return list(range(shard, n, shards))
