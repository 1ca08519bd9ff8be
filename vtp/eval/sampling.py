"""Fixed-step ODE samplers for rectified flow: dx/dt = v(x, t), from noise (t=0) to data (t=1).

`velocity(x, t)` is any function of a batch x (B, ...) and times t (B,); `class_velocity` makes one
from a class-conditional model `model(x, t, y)` with optional classifier-free guidance (Ho & Salimans
2022). Guidance is off by default (scale 1.0), as in the VTP paper's probe.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _grid(steps: int, device: torch.device) -> torch.Tensor:
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    return torch.linspace(0.0, 1.0, steps + 1, device=device)  # (steps+1,)


@torch.no_grad()
def euler_sample(velocity: Velocity, noise: torch.Tensor, *, steps: int) -> torch.Tensor:
    """Explicit Euler with `steps` equal steps; `steps` velocity evaluations."""
    ts = _grid(steps, noise.device)
    x = noise
    for i in range(steps):
        t = ts[i].expand(x.shape[0])  # (B,)
        x = x + (ts[i + 1] - ts[i]) * velocity(x, t)
    return x


@torch.no_grad()
def heun_sample(velocity: Velocity, noise: torch.Tensor, *, steps: int) -> torch.Tensor:
    """Heun's second-order method (trapezoid predictor-corrector); 2 * steps evaluations."""
    ts = _grid(steps, noise.device)
    x = noise
    for i in range(steps):
        t0, t1 = ts[i].expand(x.shape[0]), ts[i + 1].expand(x.shape[0])  # (B,)
        h = ts[i + 1] - ts[i]
        v0 = velocity(x, t0)
        x_pred = x + h * v0
        x = x + h * 0.5 * (v0 + velocity(x_pred, t1))
    return x


def sample(velocity: Velocity, noise: torch.Tensor, *, steps: int, method: str = "euler") -> torch.Tensor:
    """Dispatch by name: "euler" or "heun"."""
    samplers = {"euler": euler_sample, "heun": heun_sample}
    if method not in samplers:
        raise ValueError(f"unknown sampler {method!r}; choose from {sorted(samplers)}")
    return samplers[method](velocity, noise, steps=steps)


def class_velocity(
    model: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    labels: torch.Tensor, *, null_label: int | None = None, guidance: float = 1.0,
) -> Velocity:
    """v(x, t) = model(x, t, y); with guidance != 1, v_u + guidance * (v_c - v_u) using `null_label`."""
    if guidance == 1.0:
        return lambda x, t: model(x, t, labels)
    if null_label is None:
        raise ValueError("classifier-free guidance needs the model's null_label")

    def guided(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        y = torch.cat([labels, torch.full_like(labels, null_label)])  # (2B,)
        v_c, v_u = model(torch.cat([x, x]), torch.cat([t, t]), y).chunk(2)  # (B, ...) each
        return v_u + guidance * (v_c - v_u)

    return guided
