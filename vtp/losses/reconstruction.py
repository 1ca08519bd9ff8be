"""Reconstruction: L1 in pixel space, plus an optional perceptual term over VGG16 features whose
weights are read from a local file (nothing is downloaded). The optional GAN decoder fine-tune
is its own stage: vtp.losses.gan, vtp.train.gan, vtp.stages.decoder."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


def l1_loss(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return (x_hat - x).abs().mean()


class PerceptualLoss(nn.Module):
    """LPIPS-style distance: mean squared difference of channel-normalised VGG16 features
    (after relu1_2, relu2_2, relu3_3, relu4_3), equal weights. Frozen."""

    LAYERS = (3, 8, 15, 22)

    def __init__(self, weights_path: str | Path):
        super().__init__()
        from torchvision.models import vgg16

        path = Path(weights_path)
        if not path.exists():
            raise FileNotFoundError(f"{path}: perceptual-loss weights (a VGG16 `features` state dict) not found")
        self.features = vgg16(weights=None).features[: self.LAYERS[-1] + 1]
        state = torch.load(path, map_location="cpu", weights_only=True)
        self.features.load_state_dict({k: v for k, v in state.items() if int(k.split(".")[0]) <= self.LAYERS[-1]})
        self.features.requires_grad_(False).eval()
        # ImageNet statistics, for inputs mapped from [-1, 1] to [0, 1]
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        h = torch.cat([x_hat, x]) * 0.5 + 0.5
        h = (h - self.mean) / self.std
        loss = 0.0
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in self.LAYERS:
                a, b = F.normalize(h, dim=1).chunk(2)
                loss = loss + (a - b).pow(2).sum(dim=1).mean()
        return loss
