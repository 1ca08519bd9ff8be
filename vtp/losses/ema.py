"""EMA teacher update: teacher <- m * teacher + (1 - m) * student, parameter by parameter."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, momentum: float) -> None:
    """In place on `teacher`; modules must have the same parameter names and shapes."""
    t_params = dict(teacher.named_parameters())
    for name, s in student.named_parameters():
        t_params[name].mul_(momentum).add_(s.detach(), alpha=1 - momentum)
