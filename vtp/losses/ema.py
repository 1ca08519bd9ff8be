"""EMA teacher update: teacher <- m * teacher + (1 - m) * student, parameter by parameter."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, momentum: float) -> None:
    """In place on `teacher`; modules must have the same parameter names and shapes."""
    t_params = dict(teacher.named_parameters())
    pairs = [(t_params[name], s.detach()) for name, s in student.named_parameters()]
    # two multi-tensor kernels rather than two per parameter; the same arithmetic per element
    torch._foreach_mul_([t for t, _ in pairs], momentum)
    torch._foreach_add_([t for t, _ in pairs], [s for _, s in pairs], alpha=1 - momentum)
