"""Decoding one image for the readers: bytes or a path -> (3, S, S) float tensor in [-1, 1]
(shorter side resized to S, centre crop)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def to_tensor(img: Image.Image, size: int) -> torch.Tensor:
    img = img.convert("RGB")
    w, h = img.size
    scale = size / min(w, h)
    img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BICUBIC)
    w, h = img.size
    left, top = (w - size) // 2, (h - size) // 2
    img = img.crop((left, top, left + size, top + size))
    arr = np.asarray(img, dtype=np.float32) / 127.5 - 1.0  # (S, S, 3)
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()  # (3, S, S)


def decode(source: bytes | str | Path, size: int) -> torch.Tensor:
    """Raises OSError/ValueError (PIL's errors) on a missing or corrupt image."""
    if isinstance(source, (bytes, bytearray)):
        with Image.open(io.BytesIO(source)) as img:
            img.load()
            return to_tensor(img, size)
    with Image.open(source) as img:
        img.load()
        return to_tensor(img, size)
