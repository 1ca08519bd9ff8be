"""Causal text transformer with EOT pooling (CLIP's text tower) and a byte-level tokenizer.

The tokenizer is byte level (UTF-8 bytes of the lower-cased caption, then an end-of-text token,
padded): nothing to download or train, and every caption is representable.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from vtp.models.presets import TextPreset
from vtp.models.vit import Block

EOT = 256
PAD = 257
VOCAB_SIZE = 258


def tokenize(texts: Sequence[str], context_length: int) -> torch.Tensor:
    """(B, context_length) int64 token ids: bytes, EOT, then PAD; long texts are truncated."""
    out = torch.full((len(texts), context_length), PAD, dtype=torch.long)
    for i, text in enumerate(texts):
        ids = list(text.lower().encode("utf-8"))[: context_length - 1] + [EOT]
        out[i, : len(ids)] = torch.tensor(ids)
    return out


class TextTransformer(nn.Module):
    """Token + learned position embeddings, causal blocks, final norm, EOT token -> projection."""

    def __init__(self, preset: TextPreset, out_dim: int):
        super().__init__()
        d = preset.width
        self.context_length = preset.context_length
        self.token_embed = nn.Embedding(VOCAB_SIZE, d)
        self.pos_embed = nn.Parameter(torch.randn(1, preset.context_length, d) * 0.01)
        self.blocks = nn.ModuleList(
            Block(d, preset.heads, int(d * preset.mlp_ratio), causal=True) for _ in range(preset.depth)
        )
        self.norm = nn.LayerNorm(d)
        self.proj = nn.Linear(d, out_dim, bias=False)
        nn.init.normal_(self.token_embed.weight, std=0.02)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, T) -> text embedding (B, out_dim), read at the EOT position."""
        x = self.token_embed(ids) + self.pos_embed[:, : ids.shape[1]]  # (B, T, D)
        for blk in self.blocks:
            x = blk(x)
        x = self.norm(x)
        eot = (ids == EOT).int().argmax(dim=1)  # (B,) first EOT; causal, so it has read the whole text
        return self.proj(x[torch.arange(ids.shape[0], device=ids.device), eot])  # (B, E)
