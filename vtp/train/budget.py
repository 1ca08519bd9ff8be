"""The one named step that derives a run's sizes and step count from its config."""

from __future__ import annotations

import dataclasses

from vtp.flops.tokenizer import num_steps
from vtp.train.config import Resolved, TokenizerTrainConfig, resolve_sizes


def resolve(cfg: TokenizerTrainConfig) -> Resolved:
    """Per-objective batch subsets, view sizes and the number of optimizer steps."""
    return dataclasses.replace(resolve_sizes(cfg), steps=num_steps(cfg))


def checkpoint_steps(cfg: TokenizerTrainConfig, steps: int) -> dict[int, int]:
    """k -> the step after which checkpoint k/denominator is written (at least step 1, distinct k kept)."""
    return {k: max(1, round(steps * k / cfg.checkpoint_denominator)) for k in sorted(set(cfg.checkpoints))}
