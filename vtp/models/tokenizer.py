"""The visual tokenizer: ViT encoder -> bias-free linear bottleneck (d channels, deterministic)
-> ViT pixel decoder; plus the heads the pre-training objectives read from the full-width
features (CLIP image projection + text tower, DINO/iBOT head).

Downstream stages use only `encode`, `decode`, `features` and the attributes `latent_dim`,
`patch_size`, `image_size`: that is the contract the extract, dit and eval stages rely on.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vtp.models.presets import EncoderPreset, SSLHeadPreset, get_preset
from vtp.models.text import TextTransformer
from vtp.models.vit import Block, ViTEncoder, rope_2d


@dataclass(frozen=True)
class TokenizerSpec:
    """Everything needed to rebuild the module (stored in every checkpoint)."""

    preset: str = "cpu-xs"
    image_size: int = 32
    patch_size: int = 4
    latent_dim: int = 16
    decoder_depth: int = 2
    decoder_width: int = 0  # 0 = encoder width
    swiglu: bool = False
    clip: bool = True  # build the CLIP heads (text tower, projection, temperature)
    ssl: bool = True  # build the DINO/iBOT head


class PixelDecoder(nn.Module):
    """Latent (B, d, h, w) -> 1x1 projection -> blocks (RoPE-2D) -> norm -> pixels by pixel shuffle."""

    def __init__(self, latent_dim: int, width: int, depth: int, heads: int, patch_size: int):
        super().__init__()
        self.patch_size, self.head_dim = patch_size, width // heads
        self.proj_in = nn.Linear(latent_dim, width)
        self.blocks = nn.ModuleList(Block(width, heads, 4 * width) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.proj_out = nn.Linear(width, 3 * patch_size**2)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        b, _, h, w = z.shape
        x = self.proj_in(z.flatten(2).transpose(1, 2))  # (B, N, W)
        rope = rope_2d(h, w, self.head_dim, device=z.device)
        for blk in self.blocks:
            x = blk(x, rope)
        x = self.proj_out(self.norm(x))  # (B, N, 3 p^2)
        x = x.transpose(1, 2).reshape(b, 3 * self.patch_size**2, h, w)  # (B, 3 p^2, h, w)
        return F.pixel_shuffle(x, self.patch_size)  # (B, 3, H, W)


class SSLHead(nn.Module):
    """DINO/iBOT head (DINOv2): MLP -> L2-normalised bottleneck -> weight-normalised prototypes."""

    def __init__(self, width: int, preset: SSLHeadPreset):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(width, preset.hidden), nn.GELU(),
            nn.Linear(preset.hidden, preset.hidden), nn.GELU(),
            nn.Linear(preset.hidden, preset.bottleneck),
        )
        self.prototypes = nn.Parameter(torch.randn(preset.prototypes, preset.bottleneck) * 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.normalize(self.mlp(x), dim=-1)  # (..., bottleneck)
        return F.linear(x, F.normalize(self.prototypes, dim=-1))  # (..., K)


def _decoder_heads(width: int, head_dim: int) -> int:
    if width % head_dim:
        raise ValueError(f"decoder_width {width} must be a multiple of the encoder head dim {head_dim}")
    return width // head_dim


class VisualTokenizer(nn.Module):
    def __init__(self, spec: TokenizerSpec):
        super().__init__()
        if spec.image_size % spec.patch_size:
            raise ValueError(f"image_size {spec.image_size} is not a multiple of patch_size {spec.patch_size}")
        self.spec = spec
        preset = get_preset(spec.preset)
        enc = preset.encoder
        if spec.swiglu != enc.swiglu:
            enc = EncoderPreset(enc.width, enc.depth, enc.heads, enc.mlp_ratio, spec.swiglu)
        self.latent_dim, self.patch_size, self.image_size = spec.latent_dim, spec.patch_size, spec.image_size
        self.width = enc.width
        self.encoder = ViTEncoder(enc, patch_size=spec.patch_size)
        self.bottleneck = nn.Linear(enc.width, spec.latent_dim, bias=False)
        dec_width = spec.decoder_width or enc.width
        self.decoder = PixelDecoder(
            spec.latent_dim, dec_width, spec.decoder_depth, _decoder_heads(dec_width, enc.head_dim), spec.patch_size
        )
        if spec.clip:
            self.image_proj = nn.Linear(enc.width, preset.clip_dim, bias=False)
            self.text = TextTransformer(preset.text, preset.clip_dim)
            self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))  # CLIP's initial temperature
        if spec.ssl:
            self.ssl_head = SSLHead(enc.width, preset.ssl_head)

    # --- the interface downstream stages use -------------------------------------------------
    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B,3,H,W) -> (cls (B,D), patch tokens (B,N,D), bottleneck (B,N,d))."""
        t = self.encoder(x)  # (B, 1+N, D)
        return t[:, 0], t[:, 1:], self.bottleneck(t[:, 1:])

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x (B,3,H,W) in [-1,1] -> z (B, d, H/p, W/p)."""
        _, _, z = self.features(x)  # (B, N, d)
        return self.tokens_to_grid(z, x.shape[-2] // self.patch_size)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, d, h, w) -> x_hat (B, 3, h p, w p)."""
        return self.decoder(z)

    @staticmethod
    def tokens_to_grid(z: torch.Tensor, h: int) -> torch.Tensor:
        b, n, d = z.shape
        return z.transpose(1, 2).reshape(b, d, h, n // h)  # (B, d, h, w)

    # --- heads used by the objectives ---------------------------------------------------------
    def embed_image(self, cls: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.image_proj(cls), dim=-1)  # (B, E)

    def embed_text(self, ids: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text(ids), dim=-1)  # (B, E)

    def encoder_params(self) -> int:
        """Parameters of the encoder and the bottleneck (the `params` axis counts these)."""
        return sum(p.numel() for p in self.encoder.parameters()) + self.bottleneck.weight.numel()


def spec_from_dict(data: dict) -> TokenizerSpec:
    names = {f.name for f in dataclasses.fields(TokenizerSpec)}
    return TokenizerSpec(**{k: v for k, v in data.items() if k in names})
