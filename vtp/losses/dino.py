"""DINO (class token) and iBOT (masked patch tokens) losses with teacher centering, as in DINOv2
(Oquab et al. 2023; https://github.com/facebookresearch/dinov2, dino_clstoken_loss.py and
ibot_patch_loss.py, with the centering variant rather than Sinkhorn-Knopp)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def teacher_probs(logits: torch.Tensor, center: torch.Tensor, temp: float) -> torch.Tensor:
    """Sharpened, centred teacher targets softmax((logits - center) / temp); no gradient."""
    return F.softmax((logits - center) / temp, dim=-1).detach()


def cross_entropy(probs: torch.Tensor, student_logits: torch.Tensor, student_temp: float) -> torch.Tensor:
    """Per-row -sum p_t log softmax(s / T_s), shape (...,)."""
    return -(probs * F.log_softmax(student_logits / student_temp, dim=-1)).sum(dim=-1)


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """Per-row -sum p log p, shape (...,): the floor of the cross-entropy to targets `probs`."""
    return -(probs * probs.clamp_min(1e-12).log()).sum(dim=-1)


def dino_loss(
    student: Sequence[torch.Tensor], teacher: Sequence[torch.Tensor], student_temp: float
) -> torch.Tensor:
    """student: logits (n, K) per crop (global crops first); teacher: probs (n, K) per global crop.

    Mean over all (teacher crop i, student crop j) pairs with j != i and over the batch.
    """
    total, pairs = 0.0, 0
    for i, t in enumerate(teacher):
        for j, s in enumerate(student):
            if i == j:
                continue
            total = total + cross_entropy(t, s, student_temp).mean()
            pairs += 1
    return total / pairs


def ibot_loss(student: torch.Tensor, teacher: torch.Tensor, student_temp: float) -> torch.Tensor:
    """student logits (M, K) and teacher probs (M, K) at the M masked patch positions."""
    return cross_entropy(teacher, student, student_temp).mean()


@torch.no_grad()
def update_center(center: torch.Tensor, logits: torch.Tensor, momentum: float) -> torch.Tensor:
    """EMA of the teacher's mean logits (returns the new center; (1, K))."""
    return center_ema(center, logits.mean(dim=0, keepdim=True), momentum)


@torch.no_grad()
def center_ema(center: torch.Tensor, batch_mean: torch.Tensor, momentum: float) -> torch.Tensor:
    """center * m + batch_mean * (1 - m); with data parallelism `batch_mean` is the mean over every
    rank's teacher logits (DINOv2 all-reduces them before the update)."""
    return center * momentum + batch_mean * (1 - momentum)
