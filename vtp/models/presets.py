"""Tokenizer size presets, as plain data (no torch): the values of the sweep's `params` axis.

Parameter counts, the FLOP formula (`vtp.flops.tokenizer`), the model builder and the trainer all
read these same objects, so "size S" means one thing everywhere.

S / B / L follow the VTP paper (arXiv 2512.13687): encoders 384/12/6, 768/12/12, 1024/24/16 at
patch 16 and 256 px, a 12 x 768 text tower. The DINO/iBOT head follows DINOv2 (2048 hidden,
256 bottleneck, 65536 prototypes). The `cpu-*` presets train in minutes on 2 cores at 32 px.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EncoderPreset:
    width: int
    depth: int
    heads: int
    mlp_ratio: float = 4.0
    swiglu: bool = False

    @property
    def head_dim(self) -> int:
        return self.width // self.heads

    def mlp_hidden(self) -> int:
        """Hidden width of the MLP; SwiGLU keeps the parameter count of a GELU MLP (2/3 rule)."""
        hidden = int(self.width * self.mlp_ratio)
        return int(hidden * 2 / 3) if self.swiglu else hidden


@dataclass(frozen=True)
class TextPreset:
    width: int
    depth: int
    heads: int
    context_length: int
    mlp_ratio: float = 4.0


@dataclass(frozen=True)
class SSLHeadPreset:
    """DINO/iBOT projection head: MLP width -> hidden -> hidden -> bottleneck, then prototypes."""

    hidden: int
    bottleneck: int
    prototypes: int


@dataclass(frozen=True)
class TokenizerPreset:
    encoder: EncoderPreset
    text: TextPreset
    ssl_head: SSLHeadPreset
    clip_dim: int


_PAPER_TEXT = TextPreset(width=768, depth=12, heads=12, context_length=77)
_DINOV2_HEAD = SSLHeadPreset(hidden=2048, bottleneck=256, prototypes=65536)

PRESETS: dict[str, TokenizerPreset] = {
    "S": TokenizerPreset(EncoderPreset(384, 12, 6), _PAPER_TEXT, _DINOV2_HEAD, clip_dim=768),
    "B": TokenizerPreset(EncoderPreset(768, 12, 12), _PAPER_TEXT, _DINOV2_HEAD, clip_dim=768),
    "L": TokenizerPreset(EncoderPreset(1024, 24, 16), _PAPER_TEXT, _DINOV2_HEAD, clip_dim=768),
    # the embedded study's parameter axis is cpu-xxs / cpu-xs / cpu-s (sweeps/mini.yaml)
    "cpu-xxs": TokenizerPreset(
        EncoderPreset(32, 2, 2), TextPreset(48, 2, 2, 32), SSLHeadPreset(96, 48, 256), clip_dim=48
    ),
    "cpu-xs": TokenizerPreset(
        EncoderPreset(64, 2, 2), TextPreset(64, 2, 2, 32), SSLHeadPreset(128, 64, 256), clip_dim=64
    ),
    "cpu-s": TokenizerPreset(
        EncoderPreset(128, 3, 4), TextPreset(96, 2, 3, 32), SSLHeadPreset(192, 64, 512), clip_dim=96
    ),
    "cpu-m": TokenizerPreset(
        EncoderPreset(192, 4, 6), TextPreset(128, 3, 4, 32), SSLHeadPreset(256, 96, 1024), clip_dim=128
    ),
}


def get_preset(name: str) -> TokenizerPreset:
    """The preset called `name`; an unknown name lists the valid ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown tokenizer preset {name!r}; valid presets are: {', '.join(PRESETS)}") from None


def encoder_params(enc: EncoderPreset, *, patch_size: int, latent_dim: int) -> int:
    """Trainable weights of the encoder up to and including the bottleneck (biases/norms included).

    Matches `vtp.models.vit.ViTEncoder` + bottleneck; 2-D RoPE has no parameters.
    """
    d, h = enc.width, enc.mlp_hidden()
    patch = 3 * patch_size**2 * d + d
    attn = 3 * d * d + 3 * d + d * d + d + 2 * 2 * enc.head_dim  # qkv, proj, QK-norm scales+biases
    mlp = (d * 2 * h + 2 * h + h * d + d) if enc.swiglu else (d * h + h + h * d + d)
    block = attn + mlp + 2 * 2 * d  # two LayerNorms
    return patch + 2 * d + enc.depth * block + 2 * d + d * latent_dim  # + cls/mask tokens, final norm, bottleneck
