"""Multi-crop views for SSL (DINO): random resized square crops with horizontal flips, done as one
batched `grid_sample`. No colour jitter by default: on the built-in dataset colour is half of the
class (vtp.train.photometric has DINOv2's for real images).

The random draws (`crop_params`) are separate from the cropping (`apply_crops`), so a step can draw
them for its whole global batch and each rank crop its own rows: crop i of a step is then the same
whichever rank trains it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def crop_params(n: int, scale: tuple[float, float], generator: torch.Generator) -> torch.Tensor:
    """(n, 4): crop area fraction uniform in `scale`, then three uniforms (x, y position, flip)."""
    area = torch.empty(n).uniform_(scale[0], scale[1], generator=generator)
    ux = torch.rand(n, generator=generator)
    uy = torch.rand(n, generator=generator)
    uf = torch.rand(n, generator=generator)
    return torch.stack([area, ux, uy, uf], dim=1)  # (n, 4)


def apply_crops(images: torch.Tensor, size: int, params: torch.Tensor) -> torch.Tensor:
    """images (B,3,H,W), params (B,4) from `crop_params` -> crops (B,3,size,size): square, uniform
    position inside the image, flipped left-right when the flip uniform is below 1/2."""
    b = images.shape[0]
    side = params[:, 0].sqrt()  # fraction of the image side
    cx = (params[:, 1] * 2 - 1) * (1 - side)  # centre in [-1, 1] coordinates
    cy = (params[:, 2] * 2 - 1) * (1 - side)
    flip = torch.where(params[:, 3] < 0.5, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = side * flip
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = side
    theta[:, 1, 2] = cy
    theta = theta.to(images.device, images.dtype)
    grid = F.affine_grid(theta, [b, 3, size, size], align_corners=False)  # (B, size, size, 2)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def random_resized_crops(
    images: torch.Tensor, size: int, scale: tuple[float, float], generator: torch.Generator
) -> torch.Tensor:
    """images (B,3,H,W) -> crops (B,3,size,size), drawn from `generator`."""
    return apply_crops(images, size, crop_params(images.shape[0], scale, generator))
