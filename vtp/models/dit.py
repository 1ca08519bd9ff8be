"""A LightningDiT-style diffusion transformer on latent grids (the fixed downstream probe).

Follows LightningDiT (Yao et al. 2025, github.com/hustvl/LightningDiT) on top of DiT (Peebles & Xie
2023, github.com/facebookresearch/DiT): patch size 1 on the latent grid (LightningDiT's), or p x p
latent positions per token (DiT's "/2" models: `patch_size`), adaLN-Zero conditioning on
(timestep + class), SwiGLU MLPs, RMSNorm (also on queries and keys), 2-D rotary position embeddings.
The class table has one extra row, `num_classes`, the "null" label used for label dropout and
classifier-free guidance. Input z (B, C, h, w), time t (B,) in [0, 1], labels y (B,) -> velocity
(B, C, h, w).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class DiTSpec:
    width: int
    depth: int
    heads: int
    mlp_ratio: float = 4.0

    @property
    def head_dim(self) -> int:
        return self.width // self.heads

    @property
    def mlp_hidden(self) -> int:
        # SwiGLU with 2/3 of the hidden size keeps the parameter count of a 4x GELU MLP (LLaMA)
        return int(2 * self.mlp_ratio * self.width / 3)


# The element-wise code below is written for kernel count: at the embedded study's width (64) a
# DiT step is bound by element-wise kernels, not matmuls (benchmarks/dit_throughput.py). addcmul is
# one kernel where `x * a + b` is two; RoPE is one complex product instead of unbind / four products /
# stack; the SwiGLU halves are produced contiguous. Same maths, different rounding (~1e-7).
def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return torch.addcmul(shift[:, None], x, 1 + scale[:, None])  # x * (1 + scale) + shift: (B, N, D)


def rope_2d(h: int, w: int, head_dim: int, *, base: float = 10000.0, device=None) -> torch.Tensor:
    """Unit complex rotations (N, head_dim/2), cos + i sin: the first half of the frequencies rotate
    with the row, the rest with the column (axial RoPE, as in EVA-02 / LightningDiT's
    VisionRotaryEmbedding; complex form as LLaMA's freqs_cis)."""
    quarter = head_dim // 4
    freqs = base ** (-torch.arange(quarter, device=device, dtype=torch.float32) / quarter)  # (hd/4,)
    rows = torch.arange(h, device=device, dtype=torch.float32).repeat_interleave(w)  # (N,)
    cols = torch.arange(w, device=device, dtype=torch.float32).repeat(h)  # (N,)
    angles = torch.cat([rows[:, None] * freqs, cols[:, None] * freqs], 1)  # (N, hd/2)
    return torch.polar(torch.ones_like(angles), angles)


def apply_rope(x: torch.Tensor, rot: torch.Tensor) -> torch.Tensor:
    """Rotate consecutive pairs (x[2i], x[2i+1]) of x (B, H, N, hd) by the complex rotations rot (N, hd/2)."""
    xc = torch.view_as_complex(x.float().unflatten(-1, (-1, 2)).contiguous())  # (B, H, N, hd/2)
    return torch.view_as_real(xc * rot).flatten(-2).type_as(x)  # (B, H, N, hd)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.q_norm = nn.RMSNorm(dim // heads)
        self.k_norm = nn.RMSNorm(dim // heads)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, rope: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)  # (B, H, N, hd)
        q, k = apply_rope(self.q_norm(q), rope), apply_rope(self.k_norm(k), rope)
        out = F.scaled_dot_product_attention(q, k, v)  # (B, H, N, hd)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))  # (B, N, D)


class SwiGLU(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.w12 = nn.Linear(dim, 2 * hidden)
        self.w3 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # two matmuls on the halves of w12 rather than chunking its output: contiguous a and g make
        # silu, the product and their backward ~2x cheaper on CPU (the chunks are strided views)
        hidden, w, b = self.w3.in_features, self.w12.weight, self.w12.bias
        a, g = F.linear(x, w[:hidden], b[:hidden]), F.linear(x, w[hidden:], b[hidden:])  # (B, N, hidden) each
        return self.w3(F.silu(a) * g)


class Block(nn.Module):
    def __init__(self, spec: DiTSpec):
        super().__init__()
        d = spec.width
        self.norm1 = nn.RMSNorm(d, elementwise_affine=False)
        self.attn = Attention(d, spec.heads)
        self.norm2 = nn.RMSNorm(d, elementwise_affine=False)
        self.mlp = SwiGLU(d, spec.mlp_hidden)
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d))

    def forward(self, x: torch.Tensor, c: torch.Tensor, rope: torch.Tensor) -> torch.Tensor:
        s1, sc1, g1, s2, sc2, g2 = self.ada(c).chunk(6, -1)  # (B, D) each
        x = torch.addcmul(x, g1[:, None], self.attn(modulate(self.norm1(x), s1, sc1), rope))  # x + g1 * attn
        return torch.addcmul(x, g2[:, None], self.mlp(modulate(self.norm2(x), s2, sc2)))  # (B, N, D)


def timestep_embedding(t: torch.Tensor, dim: int = 256, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal features of t (B,) scaled by 1000, as DiT does with integer steps (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = 1000 * t.float()[:, None] * freqs  # (B, half)
    return torch.cat([args.cos(), args.sin()], -1)


class DiT(nn.Module):
    def __init__(self, spec: DiTSpec, *, in_channels: int, num_classes: int, patch_size: int = 1):
        super().__init__()
        if spec.width % spec.heads or spec.head_dim % 4:
            raise ValueError(f"width {spec.width} / heads {spec.heads} must give a head dim divisible by 4")
        if patch_size < 1:
            raise ValueError(f"patch_size must be >= 1, got {patch_size}")
        self.spec, self.in_channels, self.num_classes, self.patch_size = spec, in_channels, num_classes, patch_size
        d, token_dim = spec.width, in_channels * patch_size**2
        self.x_embed = nn.Linear(token_dim, d)  # one token per p x p latent positions (a strided conv as a linear)
        self.t_embed = nn.Sequential(nn.Linear(256, d), nn.SiLU(), nn.Linear(d, d))
        self.y_embed = nn.Embedding(num_classes + 1, d)  # last row: the null label
        self.blocks = nn.ModuleList(Block(spec) for _ in range(spec.depth))
        self.final_norm = nn.RMSNorm(d, elementwise_affine=False)
        self.final_ada = nn.Sequential(nn.SiLU(), nn.Linear(d, 2 * d))
        self.out = nn.Linear(d, token_dim)
        self.reset_parameters()

    @property
    def null_label(self) -> int:
        return self.num_classes

    def reset_parameters(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.y_embed.weight, std=0.02)
        for lin in self.t_embed[0::2]:
            nn.init.normal_(lin.weight, std=0.02)
        # adaLN-Zero: every residual branch and the output start at zero, so the net starts as identity
        for blk in self.blocks:
            nn.init.zeros_(blk.ada[-1].weight)
            nn.init.zeros_(blk.ada[-1].bias)
        for lin in (self.final_ada[-1], self.out):
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)

    def patchify(self, z: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) -> (B, N, C p p), N = (h / p)(w / p), tokens in row-major order."""
        b, c, h, w = z.shape
        p = self.patch_size
        if h % p or w % p:
            raise ValueError(f"latent grid {h}x{w} is not divisible by the DiT's patch size {p}")
        z = z.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)  # (B, h/p, w/p, C, p, p)
        return z.reshape(b, (h // p) * (w // p), c * p * p)

    def unpatchify(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """The inverse of patchify: (B, N, C p p) -> (B, C, h, w)."""
        b, p, c = x.shape[0], self.patch_size, self.in_channels
        x = x.reshape(b, h // p, w // p, c, p, p).permute(0, 3, 1, 4, 2, 5)  # (B, C, h/p, p, w/p, p)
        return x.reshape(b, c, h, w)

    def forward(self, z: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        b, c, h, w = z.shape
        x = self.x_embed(self.patchify(z))  # (B, N, D)
        cond = self.t_embed(timestep_embedding(t)) + self.y_embed(y)  # (B, D)
        rope = rope_2d(h // self.patch_size, w // self.patch_size, self.spec.head_dim, device=z.device)
        for blk in self.blocks:
            x = blk(x, cond, rope)
        shift, scale = self.final_ada(cond).chunk(2, -1)  # (B, D) each
        x = self.out(modulate(self.final_norm(x), shift, scale))  # (B, N, C p p)
        return self.unpatchify(x, h, w)


def build_dit(name: str, *, in_channels: int, num_classes: int, patch_size: int = 1) -> DiT:
    if name not in PRESETS:
        raise KeyError(f"unknown DiT preset {name!r}; choose from {sorted(PRESETS)}")
    return DiT(PRESETS[name], in_channels=in_channels, num_classes=num_classes, patch_size=patch_size)


# Presets: DiT/LightningDiT sizes (S/B/L/XL: Peebles & Xie 2023, table 1) and CPU sizes for the laptop study.
PRESETS: dict[str, DiTSpec] = {
    "DiT-cpu": DiTSpec(width=64, depth=2, heads=2),
    "DiT-cpu-s": DiTSpec(width=128, depth=4, heads=4),
    "DiT-S": DiTSpec(width=384, depth=12, heads=6),
    "DiT-B": DiTSpec(width=768, depth=12, heads=12),
    "DiT-L": DiTSpec(width=1024, depth=24, heads=16),
    "DiT-XL": DiTSpec(width=1152, depth=28, heads=16),
}
