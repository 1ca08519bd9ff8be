"""Improved precision and recall of generative models (Kynkaanniemi et al. 2019, arXiv 1904.06991).

Each set's manifold is the union of balls around its feature vectors with radius the distance to the
k-th nearest neighbour within the set. Precision: share of generated samples inside the real
manifold; recall: share of real samples inside the generated manifold. Pure torch, O(N^2) memory in
blocks of rows.
"""

from __future__ import annotations

import torch


def _kth_radius(x: torch.Tensor, k: int, block: int) -> torch.Tensor:
    rows = []
    for i in range(0, len(x), block):
        d = torch.cdist(x[i:i + block], x)  # (b, N)
        rows.append(d.kthvalue(k + 1, dim=1).values)  # +1: the point itself is at distance 0
    return torch.cat(rows)  # (N,)


def _coverage(query: torch.Tensor, ref: torch.Tensor, radii: torch.Tensor, block: int) -> float:
    inside = []
    for i in range(0, len(query), block):
        d = torch.cdist(query[i:i + block], ref)  # (b, M)
        inside.append((d <= radii[None]).any(1))
    return torch.cat(inside).float().mean().item()


def precision_recall(real: torch.Tensor, fake: torch.Tensor, *, k: int = 3, block: int = 1024) -> tuple[float, float]:
    """(precision, recall) of `fake` (M, D) against `real` (N, D) features."""
    if len(real) <= k or len(fake) <= k:
        raise ValueError(f"need more than k={k} samples in each set, got {len(real)} and {len(fake)}")
    real, fake = real.double(), fake.double()
    precision = _coverage(fake, real, _kth_radius(real, k, block), block)
    recall = _coverage(real, fake, _kth_radius(fake, k, block), block)
    return precision, recall
