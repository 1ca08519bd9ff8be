"""DINOv2's photometric augmentations of the SSL crops, batched, with per-image parameters drawn
like the crops (`draw`, one row per image), so a rank applies exactly what one process would.

DINOv2 (dinov2/data/augmentations.py): colour jitter with p 0.8 (brightness 0.4, contrast 0.4,
saturation 0.2, hue 0.1), grayscale with p 0.2, Gaussian blur (sigma 0.1-2.0) with p 1.0 on the
first global crop, 0.1 on the second and 0.5 on local crops, solarisation with p 0.2 on the second
global crop. Hue jitter is left out here (it needs an HSV round trip). Off by default
(`photometric: false`): on the built-in dataset colour is half of the class; for real images.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

BLUR_P = {"global0": 1.0, "global1": 0.1, "local": 0.5}
SOLARIZE_P = {"global0": 0.0, "global1": 0.2, "local": 0.0}


def draw(n: int, kind: str, generator: torch.Generator) -> torch.Tensor:
    """(n, 7): jitter on, brightness, contrast, saturation factors, grayscale on, blur sigma (0 = off),
    solarise on. `kind`: global0, global1 or local."""
    u = torch.rand(n, 7, generator=generator)
    jitter = (u[:, 0] < 0.8).float()
    factors = [1 + (2 * u[:, i] - 1) * s for i, s in ((1, 0.4), (2, 0.4), (3, 0.2))]
    gray = (u[:, 4] < 0.2).float()
    sigma = torch.where(u[:, 5] < BLUR_P[kind], 0.1 + 1.9 * u[:, 6], torch.zeros(n))
    solar = (torch.rand(n, generator=generator) < SOLARIZE_P[kind]).float()
    return torch.stack([jitter, *factors, gray, sigma, solar], dim=1)


def _gray(x: torch.Tensor) -> torch.Tensor:
    return (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)  # (B, 1, H, W)


def _blur(x: torch.Tensor, sigma: torch.Tensor, size: int = 9) -> torch.Tensor:
    """Per-image Gaussian blur (sigma in pixels at 224 px, scaled to this size); sigma 0 keeps the image."""
    b, c, h, w = x.shape
    s = (sigma * h / 224).clamp_min(1e-3).to(x.dtype)  # (B,)
    r = torch.arange(size, device=x.device, dtype=x.dtype) - size // 2
    k = torch.exp(-(r[None] ** 2) / (2 * s[:, None] ** 2))  # (B, size)
    k = k / k.sum(dim=1, keepdim=True)
    k = k.repeat_interleave(c, dim=0)  # (B c, size)
    y = x.reshape(1, b * c, h, w)
    y = F.conv2d(F.pad(y, (size // 2, size // 2, 0, 0), mode="reflect"), k[:, None, None, :], groups=b * c)
    y = F.conv2d(F.pad(y, (0, 0, size // 2, size // 2), mode="reflect"), k[:, None, :, None], groups=b * c)
    return torch.where((sigma > 0).view(b, 1, 1, 1).to(x.device), y.view(b, c, h, w), x)


def apply(x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """x (B,3,H,W) in [-1,1], params (B,7) from `draw` -> augmented x, same shape and range."""
    p = params.to(x.device, x.dtype)
    on = p[:, 0].view(-1, 1, 1, 1)
    v = x * 0.5 + 0.5  # [0, 1]
    j = (v * p[:, 1].view(-1, 1, 1, 1)).clamp(0, 1)  # brightness
    mean = _gray(j).mean(dim=(1, 2, 3), keepdim=True)
    j = ((j - mean) * p[:, 2].view(-1, 1, 1, 1) + mean).clamp(0, 1)  # contrast
    g = _gray(j)
    j = ((j - g) * p[:, 3].view(-1, 1, 1, 1) + g).clamp(0, 1)  # saturation
    v = on * j + (1 - on) * v
    gray = p[:, 4].view(-1, 1, 1, 1)
    v = gray * _gray(v).expand_as(v) + (1 - gray) * v
    v = _blur(v, params[:, 5])
    solar = p[:, 6].view(-1, 1, 1, 1)
    v = solar * torch.where(v >= 0.5, 1 - v, v) + (1 - solar) * v
    return v * 2 - 1
