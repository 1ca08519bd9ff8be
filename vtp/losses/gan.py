"""Hinge GAN losses for the decoder fine-tune stage (Lim & Ye 2017; as in taming-transformers'
VQGAN and the LightningDiT/VA-VAE decoders). Pure functions of discriminator logits."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def hinge_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator: mean(relu(1 - D(x))) + mean(relu(1 + D(x_hat))), halved as in VQGAN."""
    return 0.5 * (F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean())


def hinge_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator (the decoder): -mean(D(x_hat))."""
    return -fake_logits.mean()
