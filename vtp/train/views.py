"""Multi-crop views for SSL (DINO): random resized square crops with horizontal flips, done as one
batched `grid_sample`. No colour jitter: on the built-in dataset colour is half of the class."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_resized_crops(
    images: torch.Tensor, size: int, scale: tuple[float, float], generator: torch.Generator
) -> torch.Tensor:
    """images (B,3,H,W) -> crops (B,3,size,size); crop area fraction uniform in `scale`, square,
    uniform position inside the image, flipped left-right with probability 1/2."""
    b = images.shape[0]
    area = torch.empty(b).uniform_(scale[0], scale[1], generator=generator)
    side = area.sqrt()  # fraction of the image side
    cx = (torch.rand(b, generator=generator) * 2 - 1) * (1 - side)  # centre in [-1, 1] coordinates
    cy = (torch.rand(b, generator=generator) * 2 - 1) * (1 - side)
    flip = torch.where(torch.rand(b, generator=generator) < 0.5, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = side * flip
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = side
    theta[:, 1, 2] = cy
    theta = theta.to(images.device, images.dtype)
    grid = F.affine_grid(theta, [b, 3, size, size], align_corners=False)  # (B, size, size, 2)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
