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


def clip_loss_rows(
    image: torch.Tensor, text: torch.Tensor, all_image: torch.Tensor, all_text: torch.Tensor,
    logit_scale: torch.Tensor, offset: int,
) -> torch.Tensor:
    """This rank's rows of the global loss (open_clip's `local_loss=True`): its n pairs, at rows
    offset..offset+n of the gathered (B, E) matrices, against every text and every image.

    The mean of this over ranks holding equal shares is `clip_loss(all_image, all_text)`; with
    gathered features that carry gradients, so is the gradient.
    """
    scale = logit_scale.exp()
    target = torch.arange(offset, offset + image.shape[0], device=image.device)
    per_image = scale * image @ all_text.T  # (n, B)
    per_text = scale * text @ all_image.T  # (n, B)
    return (F.cross_entropy(per_image, target) + F.cross_entropy(per_text, target)) / 2


def clip_loss_and_grads(
    image: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, dL/dimage, dL/dtext, dL/dlogit_scale) at detached values: the first half of a gradient
    cache (Gao et al. 2021, "Scaling Deep Contrastive Learning Batch Size under Memory Limited Setup";
    open_clip's `accum_freq`), which lets micro-batches share one batch's negatives exactly."""
    with torch.enable_grad():
        leaves = [t.detach().float().requires_grad_(True) for t in (image, text, logit_scale)]
        loss = clip_loss(*leaves)
        grads = torch.autograd.grad(loss, leaves)
    return loss.detach(), grads[0], grads[1], grads[2]


MAX_LOGIT_SCALE = math.log(100.0)


@torch.no_grad()
def clamp_logit_scale(logit_scale: torch.Tensor) -> None:
    """In place, after the optimizer step (open_clip's `unwrap_model(model).logit_scale.clamp_(0, math.log(100))`)."""
    logit_scale.clamp_(0, MAX_LOGIT_SCALE)
