"""iBOT patch masking: a fixed number of random patches per crop, so every step has the same
shapes and the same FLOPs (the FLOP formula counts `n_mask` tokens per global crop)."""

from __future__ import annotations

import torch


def random_patch_mask(n: int, num_patches: int, n_mask: int, generator: torch.Generator) -> torch.Tensor:
    """(n, num_patches) bool with exactly `n_mask` True per row, positions uniform at random."""
    if not 0 < n_mask < num_patches:
        raise ValueError(f"n_mask must be in 1..{num_patches - 1}, got {n_mask}")
    scores = torch.rand(n, num_patches, generator=generator)
    idx = scores.argsort(dim=1)[:, :n_mask]  # (n, n_mask)
    mask = torch.zeros(n, num_patches, dtype=torch.bool)
    return mask.scatter_(1, idx, True)
