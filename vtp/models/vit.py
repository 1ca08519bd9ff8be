"""Plain-torch ViT pieces shared by the encoder, the pixel decoder and the text tower.

Pre-norm blocks with QK-norm (stabilises attention logits, as in ViT-22B and the VTP encoder),
optional SwiGLU MLP, and 2-D rotary position embeddings (RoPE-2D: half of each head's channels
rotate with the row, half with the column; works for any crop size, so multi-crop needs no
position interpolation). The class token sits at position "no rotation".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from vtp.models.presets import EncoderPreset


def rope_2d(h: int, w: int, head_dim: int, *, base: float = 100.0, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin tables (h*w, head_dim) for row-major patches; pairs are (i, i + head_dim/2)."""
    if head_dim % 4:
        raise ValueError(f"RoPE-2D needs a head dimension divisible by 4, got {head_dim}")
    freqs = base ** (-torch.arange(0, head_dim // 4, device=device, dtype=torch.float32) / (head_dim // 4))
    ys, xs = torch.meshgrid(
        torch.arange(h, device=device, dtype=torch.float32),
        torch.arange(w, device=device, dtype=torch.float32),
        indexing="ij",
    )
    angles = torch.cat([ys.reshape(-1, 1) * freqs, xs.reshape(-1, 1) * freqs], dim=1)  # (N, hd/2)
    angles = torch.cat([angles, angles], dim=1)  # (N, hd)
    return angles.cos(), angles.sin()


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the last len(cos) tokens of x (B, heads, T, hd); leading tokens (cls) stay as they are."""
    n = cos.shape[0]
    if n == x.shape[2]:  # tables cover every token (`with_leading`): no split and concatenation
        return x * cos.to(x.dtype) + _rotate_half(x) * sin.to(x.dtype)
    head, tail = x[:, :, : x.shape[2] - n], x[:, :, x.shape[2] - n :]
    tail = tail * cos.to(x.dtype) + _rotate_half(tail) * sin.to(x.dtype)
    return torch.cat([head, tail], dim=2)


def with_leading(rope: tuple[torch.Tensor, torch.Tensor], n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The tables with `n` leading "no rotation" rows (cos 1, sin 0) for the class token: the same
    result as leaving it out, without splitting every q and k in every layer (measured: the
    concatenations were a visible share of a CPU step)."""
    cos, sin = rope
    return (torch.cat([cos.new_ones(n, cos.shape[1]), cos]), torch.cat([sin.new_zeros(n, sin.shape[1]), sin]))


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, *, qk_norm: bool = True, causal: bool = False):
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads, self.head_dim, self.causal = heads, dim // heads, causal
        self.qkv = nn.Linear(dim, 3 * dim)
        self.q_norm = nn.LayerNorm(self.head_dim) if qk_norm else nn.Identity()
        self.k_norm = nn.LayerNorm(self.head_dim) if qk_norm else nn.Identity()
        self.proj = nn.Linear(dim, dim)
        # fused=False spells attention out as matmuls: FlopCounterMode does not count CPU SDPA.
        self.fused = True

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)  # 3x (B, h, T, hd)
        q, k = self.q_norm(q), self.k_norm(k)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        if self.fused:
            o = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)  # (B, h, T, hd)
        else:
            att = (q @ k.transpose(-2, -1)) * self.head_dim**-0.5  # (B, h, T, T)
            if self.causal:
                att = att.masked_fill(torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1), float("-inf"))
            o = att.softmax(dim=-1) @ v  # (B, h, T, hd)
        return self.proj(o.transpose(1, 2).reshape(b, t, d))  # (B, T, D)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int, *, swiglu: bool = False):
        super().__init__()
        self.swiglu = swiglu
        self.fc1 = nn.Linear(dim, 2 * hidden if swiglu else hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(x)
        if self.swiglu:
            a, g = h.chunk(2, dim=-1)
            h = a * F.silu(g)
        else:
            h = F.gelu(h)
        return self.fc2(h)


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_hidden: int, *, swiglu: bool = False, causal: bool = False):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, causal=causal)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, mlp_hidden, swiglu=swiglu)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), rope)
        return x + self.mlp(self.norm2(x))


class ViTEncoder(nn.Module):
    """Patch embedding, class token, blocks, final norm. Output (B, 1 + N, D), normed."""

    def __init__(self, preset: EncoderPreset, *, patch_size: int):
        super().__init__()
        d = preset.width
        self.patch_size, self.width = patch_size, d
        self.patch_embed = nn.Conv2d(3, d, kernel_size=patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.mask_token = nn.Parameter(torch.zeros(1, 1, d))  # iBOT: replaces masked patches
        self.blocks = nn.ModuleList(
            Block(d, preset.heads, preset.mlp_hidden(), swiglu=preset.swiglu) for _ in range(preset.depth)
        )
        self.norm = nn.LayerNorm(d)
        self.head_dim = preset.head_dim
        # Recompute each block's activations in the backward pass instead of keeping them: about a
        # third more compute for a fraction of the memory (the L preset at large micro-batches).
        self.activation_checkpointing = False
        nn.init.normal_(self.cls_token, std=0.02)
        nn.init.normal_(self.mask_token, std=0.02)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        b, _, h, w = x.shape
        gh, gw = h // self.patch_size, w // self.patch_size
        t = self.patch_embed(x).flatten(2).transpose(1, 2)  # (B, N, D)
        if mask is not None:  # (B, N) bool
            t = torch.where(mask.unsqueeze(-1), self.mask_token.to(t.dtype), t)
        else:
            t = t + 0 * self.mask_token  # keeps the mask token in the graph (DDP / grad checks)
        t = torch.cat([self.cls_token.expand(b, -1, -1).to(t.dtype), t], dim=1)  # (B, 1+N, D)
        rope = with_leading(rope_2d(gh, gw, self.head_dim, device=x.device), 1)  # (1+N, hd) each
        for blk in self.blocks:
            if self.activation_checkpointing and torch.is_grad_enabled():
                t = checkpoint(blk, t, rope, use_reentrant=False)
            else:
                t = blk(t, rope)
        return self.norm(t)  # (B, 1+N, D)


def set_fused_attention(module: nn.Module, fused: bool) -> None:
    """Switch every Attention in `module` between SDPA and explicit matmuls."""
    for m in module.modules():
        if isinstance(m, Attention):
            m.fused = fused
