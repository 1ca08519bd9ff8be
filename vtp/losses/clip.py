"""CLIP's symmetric InfoNCE (Radford et al. 2021, Fig. 3 pseudo-code).

The temperature is bounded the way open_clip does it: the trainer clamps the `logit_scale`
parameter itself to [0, ln 100] after each optimizer step (`clamp_logit_scale`). Clamping
`exp(logit_scale)` inside the loss instead gives the parameter a zero gradient once it saturates,
so it can never come back down.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def clip_loss(image: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """image, text (B, E) L2-normalised; logit_scale is log(1/temperature) (learnable; the trainer
    keeps it in [0, ln 100], see `clamp_logit_scale`).

    Mean of the image->text and text->image cross-entropies with the diagonal as targets.
    """
    scale = logit_scale.exp()
    logits = scale * image @ text.T  # (B, B)
    target = torch.arange(image.shape[0], device=image.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


MAX_LOGIT_SCALE = math.log(100.0)


@torch.no_grad()
def clamp_logit_scale(logit_scale: torch.Tensor) -> None:
    """In place, after the optimizer step (open_clip's `unwrap_model(model).logit_scale.clamp_(0, math.log(100))`)."""
    logit_scale.clamp_(0, MAX_LOGIT_SCALE)
