"""Reconstruction quality: PSNR and SSIM (Wang et al. 2004, 11x11 Gaussian window, sigma 1.5,
K1 = 0.01, K2 = 0.03), for images in [-1, 1] (data range 2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """Per-image PSNR in dB of (B, C, H, W) batches, shape (B,)."""
    mse = (x.float() - y.float()).pow(2).flatten(1).mean(dim=1)  # (B,)
    return 10 * torch.log10(data_range**2 / mse.clamp_min(1e-12))


def _gaussian_window(size: int, sigma: float) -> torch.Tensor:
    t = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(t**2) / (2 * sigma**2))
    g = g / g.sum()
    return g[:, None] * g[None, :]  # (size, size)


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 2.0, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-image mean SSIM of (B, C, H, W) batches ('valid' windows, per channel), shape (B,)."""
    c = x.shape[1]
    w = _gaussian_window(window, sigma).to(x.device).expand(c, 1, window, window)  # (C, 1, k, k)
    x, y = x.float(), y.float()

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, w, groups=c)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return s.flatten(1).mean(dim=1)


@torch.no_grad()
def reconstruct(model, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """decode(encode(x)) clamped to [-1, 1], on the CPU, for (N, 3, H, W) images in [-1, 1]."""
    first = next(iter(model.parameters()), None)  # a parameter-free stand-in model lives on the CPU
    device = first.device if first is not None else torch.device("cpu")
    out = [model.decode(model.encode(images[i : i + batch_size].to(device))).clamp(-1, 1).float().cpu()
           for i in range(0, images.shape[0], batch_size)]
    return torch.cat(out)  # (N, 3, H, W)


def pixel_metrics(x_hat: torch.Tensor, x: torch.Tensor) -> dict[str, float]:
    """Mean PSNR (dB) and SSIM of reconstructions `x_hat` against originals `x`, both in [-1, 1]."""
    return {"recon_psnr": float(psnr(x_hat, x).mean()), "recon_ssim": float(ssim(x_hat, x).mean())}


def reconstruction_metrics(model, images: torch.Tensor, batch_size: int = 64) -> dict[str, float]:
    """Mean PSNR / SSIM of decode(encode(x)) over `images` (N, 3, H, W) in [-1, 1]."""
    return pixel_metrics(reconstruct(model, images, batch_size), images)
