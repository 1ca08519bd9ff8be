"""CLIP's symmetric InfoNCE (Radford et al. 2021, Fig. 3 pseudo-code)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def clip_loss(image: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """image, text (B, E) L2-normalised; logit_scale is log(1/temperature) (learnable, clamped at 100).

    Mean of the image->text and text->image cross-entropies with the diagonal as targets.
    """
    scale = logit_scale.exp().clamp(max=100.0)
    logits = scale * image @ text.T  # (B, B)
    target = torch.arange(image.shape[0], device=image.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
