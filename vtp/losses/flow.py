"""Rectified flow (linear path, velocity prediction) as pure functions.

Convention (as in LightningDiT / SiT): t = 0 is noise, t = 1 is data,
    x_t = t * x1 + (1 - t) * eps,        v* = d x_t / dt = x1 - eps.
The model predicts v; sampling integrates dx/dt = v(x, t) from t = 0 to 1 (vtp.eval.sampling).
Timesteps are drawn logit-normal (Esser et al. 2024, "Scaling Rectified Flow Transformers", sec. 3.1):
t = sigmoid(n), n ~ N(mean, std), which puts more training signal in the middle of the path.
LightningDiT adds a cosine-similarity term between predicted and true velocity (Yao et al. 2025,
"Reconstruction vs. Generation", sec. 4) that speeds up convergence; `cos_weight` scales it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def logit_normal_timesteps(
    n: int, *, mean: float = 0.0, std: float = 1.0, generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """n timesteps in (0, 1), t = sigmoid(N(mean, std))."""
    if std <= 0:
        raise ValueError(f"std must be > 0, got {std}")
    z = torch.randn(n, generator=generator, device=device) * std + mean  # (n,)
    return torch.sigmoid(z)


def _expand(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return t.reshape(-1, *([1] * (like.dim() - 1))).to(like.dtype)  # (B, 1, ..., 1)


def interpolate(x1: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The point on the straight path at time t (per sample): t * x1 + (1 - t) * eps."""
    tt = _expand(t, x1)
    return tt * x1 + (1 - tt) * eps


def velocity_target(x1: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """The path's constant velocity, x1 - eps."""
    return x1 - eps


def flow_loss(
    v_pred: torch.Tensor, x1: torch.Tensor, eps: torch.Tensor, *, cos_weight: float = 0.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Mean squared velocity error, plus cos_weight * (1 - cosine similarity) over channels (dim 1).

    Returns (total, {"mse": ..., "cos": ...}); `cos` is the un-weighted 1 - cos term (0 when unused).
    """
    if v_pred.shape != x1.shape or eps.shape != x1.shape:
        raise ValueError(f"shape mismatch: v_pred {tuple(v_pred.shape)}, x1 {tuple(x1.shape)}, eps {tuple(eps.shape)}")
    target = velocity_target(x1, eps)
    mse = (v_pred - target).pow(2).mean()
    cos = v_pred.new_zeros(())
    if cos_weight:
        # per position (token / pixel) over channels, as LightningDiT's transport does
        cos = (1 - F.cosine_similarity(v_pred, target, dim=1)).mean()
    return mse + cos_weight * cos, {"mse": mse.detach(), "cos": cos.detach()}
