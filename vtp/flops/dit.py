"""Training FLOPs of the DiT probe (vtp.models.dit), torch-free so planning can call it.

Counted like Kaplan et al. (2020): 2 FLOPs per multiply-accumulate in every matmul, and a backward
pass costs twice the forward, so training = 3 x forward. Norms, activations, softmax and RoPE are
left out (a few percent at these sizes). Mirrors the module structure of vtp/models/dit.py.
"""

from __future__ import annotations

from typing import Protocol


class _Spec(Protocol):
    width: int
    depth: int
    heads: int
    mlp_hidden: int


def dit_forward_flops(spec: _Spec, *, tokens: int, in_channels: int) -> int:
    """Forward FLOPs for one sample with `tokens` latent positions."""
    d, n, h = spec.width, tokens, spec.mlp_hidden
    per_token_layer = 2 * (3 * d * d + d * d) + 2 * (2 * d * h + h * d) + 2 * 2 * n * d  # qkv+proj, SwiGLU, QK^T+AV
    per_sample_layer = 2 * d * 6 * d  # adaLN modulation
    embed = 2 * n * in_channels * d + 2 * (256 * d + d * d)  # input projection, timestep MLP
    final = 2 * d * 2 * d + 2 * n * d * in_channels
    return spec.depth * (n * per_token_layer + per_sample_layer) + embed + final


def dit_train_flops(spec: _Spec, *, tokens: int, in_channels: int, samples: int) -> int:
    """Training FLOPs for `samples` samples seen (forward + backward = 3 x forward)."""
    return 3 * samples * dit_forward_flops(spec, tokens=tokens, in_channels=in_channels)
