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


def block_patch_mask(n: int, h: int, w: int, n_mask: int, generator: torch.Generator) -> torch.Tensor:
    """(n, h*w) bool with exactly `n_mask` True per row, in blocks (BEiT / iBOT / DINOv2's
    MaskingGenerator): rectangles of at least 4 patches, aspect ratio log-uniform in [0.3, 1/0.3],
    added until the count is reached; the overshoot of the last block is undone at random and a
    shortfall (rectangles that only overlap) filled at random, so every row has the same count."""
    if not 0 < n_mask < h * w:
        raise ValueError(f"n_mask must be in 1..{h * w - 1}, got {n_mask}")
    rows = []
    for _ in range(n):
        m = torch.zeros(h, w, dtype=torch.bool)
        for _attempt in range(100):
            left = n_mask - int(m.sum())
            if left <= 0:
                break
            area = 4 + float(torch.rand(1, generator=generator)) * max(0, left - 4)
            ratio = float(torch.exp(torch.empty(1).uniform_(-1.204, 1.204, generator=generator)))  # ln(1/0.3)
            bh = max(1, min(h, round((area * ratio) ** 0.5)))
            bw = max(1, min(w, round((area / ratio) ** 0.5)))
            top = int(torch.randint(0, h - bh + 1, (1,), generator=generator))
            lft = int(torch.randint(0, w - bw + 1, (1,), generator=generator))
            m[top:top + bh, lft:lft + bw] = True
        flat = m.flatten()
        on, off = flat.nonzero().squeeze(1), (~flat).nonzero().squeeze(1)
        if len(on) > n_mask:  # undo the overshoot at random
            flat[on[torch.randperm(len(on), generator=generator)[: len(on) - n_mask]]] = False
        elif len(on) < n_mask:
            flat[off[torch.randperm(len(off), generator=generator)[: n_mask - len(on)]]] = True
        rows.append(flat)
    return torch.stack(rows)  # (n, h*w)
