"""PatchGAN discriminator (Isola et al. 2017, the `NLayerDiscriminator` of pix2pix and VQGAN): strided
4x4 convolutions, one logit per receptive-field patch. GroupNorm instead of BatchNorm, so a step
does not depend on the other images of the batch (and a resumed run repeats exactly)."""

from __future__ import annotations

import torch
from torch import nn


class PatchDiscriminator(nn.Module):
    def __init__(self, width: int = 32, n_layers: int = 2, in_channels: int = 3):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 4, 2, 1), nn.LeakyReLU(0.2)]
        ch = width
        for i in range(1, n_layers + 1):
            out = width * min(2 ** i, 8)
            stride = 2 if i < n_layers else 1
            layers += [nn.Conv2d(ch, out, 4, stride, 1, bias=False), nn.GroupNorm(min(32, out // 4), out),
                       nn.LeakyReLU(0.2)]
            ch = out
        layers.append(nn.Conv2d(ch, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 3, H, W) in [-1, 1] -> patch logits (B, 1, h, w)."""
        return self.net(x)
