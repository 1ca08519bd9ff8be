"""Schedules as pure functions of the step (nanoGPT's `get_lr`): resuming is "set step = k"."""

from __future__ import annotations

import math


def lr_at(step: int, total: int, peak: float, *, warmup_fraction: float, min_fraction: float) -> float:
    """Linear warm-up from 0 to `peak` over the first `warmup_fraction` of steps, then cosine to
    `min_fraction * peak` at the last step."""
    warmup = max(1, round(warmup_fraction * total)) if warmup_fraction > 0 else 0
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - 1 - warmup)
    floor = min_fraction * peak
    return floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def teacher_momentum_at(step: int, total: int, start: float, end: float) -> float:
    """DINO's EMA momentum: cosine from `start` at step 0 to `end` at the last step."""
    progress = step / max(1, total - 1)
    return end - (end - start) * 0.5 * (1 + math.cos(math.pi * progress))


def teacher_temp_at(step: int, total: int, start: float, end: float, *, warmup_fraction: float) -> float:
    """DINO's teacher temperature: linear from `start` to `end` over the warm-up, then constant."""
    warmup = round(warmup_fraction * total)
    if step >= warmup:
        return end
    return start + (end - start) * step / warmup
