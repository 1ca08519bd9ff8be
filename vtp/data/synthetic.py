"""A built-in, offline image-caption dataset, generated procedurally and deterministically by index.

Each image shows one coloured shape on a tinted, textured background. What varies: the shape (5),
its colour (4), size, position, rotation, the background tint and texture. The class label is
(shape, colour), 20 classes, used by the class-conditional DiT and the linear probe. The caption
describes the image in words (shape, colour, size, position, background), so a CLIP objective has
something to align and zero-shot classification from class-name prompts is meaningful.

Sample `i` is a pure function of (seed, i): the data axis (number of unique samples) is a prefix
of one unbounded stream, and "1e3 unique images seen 100 times" and "1e5 seen once" draw from the
same distribution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

SHAPES = ("circle", "square", "triangle", "cross", "ring")
COLORS = {
    "red": (0.9, 0.15, 0.1),
    "green": (0.1, 0.8, 0.2),
    "blue": (0.15, 0.3, 0.95),
    "yellow": (0.95, 0.85, 0.1),
}
COLOR_NAMES = tuple(COLORS)
NUM_CLASSES = len(SHAPES) * len(COLORS)
BACKGROUNDS = {
    "gray": (0.45, 0.45, 0.45),
    "dark": (0.12, 0.12, 0.15),
    "light": (0.8, 0.78, 0.75),
    "teal": (0.15, 0.4, 0.4),
}


def class_name(label: int) -> str:
    """'red circle' for label 0; labels enumerate (shape, colour) with colour fastest."""
    shape, color = divmod(label, len(COLORS))
    return f"{COLOR_NAMES[color]} {SHAPES[shape]}"


def class_names() -> list[str]:
    return [class_name(i) for i in range(NUM_CLASSES)]


@dataclass(frozen=True)
class Sample:
    image: torch.Tensor  # (3, H, W) float32 in [-1, 1]
    caption: str
    label: int


def _shape_mask(shape: str, xx: np.ndarray, yy: np.ndarray, radius: float, angle: float) -> np.ndarray:
    """Soft mask in [0, 1] of a shape centred at the origin of (xx, yy)."""
    c, s = np.cos(angle), np.sin(angle)
    u, v = c * xx + s * yy, -s * xx + c * yy  # rotated coordinates
    if shape == "circle":
        d = np.sqrt(u**2 + v**2) - radius
    elif shape == "square":
        d = np.maximum(np.abs(u), np.abs(v)) - radius * 0.85
    elif shape == "triangle":
        # signed distance-like function of an equilateral triangle pointing up
        k = np.sqrt(3.0)
        d = np.maximum(np.abs(u) * k / 2 + v / 2, -v) - radius * 0.55
    elif shape == "cross":
        arm = radius * 0.3
        d = np.minimum(
            np.maximum(np.abs(u) - radius, np.abs(v) - arm), np.maximum(np.abs(v) - radius, np.abs(u) - arm)
        )
    elif shape == "ring":
        d = np.abs(np.sqrt(u**2 + v**2) - radius * 0.75) - radius * 0.25
    else:  # pragma: no cover - SHAPES is closed
        raise ValueError(shape)
    return np.clip(0.5 - d * 1.5, 0.0, 1.0)  # ~1 pixel of anti-aliasing


def _words_position(cx: float, cy: float) -> str:
    vert = "top" if cy < 0.4 else "bottom" if cy > 0.6 else "middle"
    horiz = "left" if cx < 0.4 else "right" if cx > 0.6 else "center"
    if vert == "middle" and horiz == "center":
        return "in the center"
    if vert == "middle":
        return f"on the {horiz}"
    if horiz == "center":
        return f"at the {vert}"
    return f"at the {vert} {horiz}"


def render(index: int, *, image_size: int = 32, seed: int = 0) -> Sample:
    """Sample `index` of the stream `seed`. Pure: the same arguments give the same bytes."""
    rng = np.random.default_rng([seed, index])
    label = int(rng.integers(NUM_CLASSES))
    shape_i, color_i = divmod(label, len(COLORS))
    shape, color_name = SHAPES[shape_i], COLOR_NAMES[color_i]
    bg_name = list(BACKGROUNDS)[int(rng.integers(len(BACKGROUNDS)))]
    size_word = "small" if rng.random() < 0.5 else "large"
    radius_frac = rng.uniform(0.12, 0.18) if size_word == "small" else rng.uniform(0.24, 0.32)
    cx, cy = rng.uniform(0.25, 0.75, size=2)
    angle = rng.uniform(0, 2 * np.pi) if shape != "circle" else 0.0

    n = image_size
    coords = (np.arange(n) + 0.5) / n
    xx, yy = np.meshgrid(coords, coords)  # (H, W), x to the right, y down
    px = radius_frac * n
    mask = _shape_mask(shape, (xx - cx) * n, (yy - cy) * n, px, angle)[None]  # (1, H, W)

    bg = np.array(BACKGROUNDS[bg_name])[:, None, None] + rng.normal(0, 0.04, size=(3, 1, 1))
    # low-frequency texture so the background is not flat: sum of two random plane waves
    f = rng.uniform(1, 4, size=(2, 2))
    ph = rng.uniform(0, 2 * np.pi, size=2)
    tex = sum(np.sin(2 * np.pi * (f[k, 0] * xx + f[k, 1] * yy) + ph[k]) for k in range(2)) * 0.05
    fg = np.array(COLORS[color_name])[:, None, None] * rng.uniform(0.85, 1.0)
    img = bg * (1 - mask) + fg * mask + tex[None] * (1 - mask)
    img = img + rng.normal(0, 0.02, size=img.shape)  # sensor noise
    img = np.clip(img, 0, 1).astype(np.float32) * 2 - 1

    caption = f"a {size_word} {color_name} {shape} {_words_position(cx, cy)} on a {bg_name} background"
    return Sample(torch.from_numpy(img), caption, label)


def render_batch(start: int, n: int, *, image_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Samples start..start+n of the stream `seed`: (images (n, 3, H, W), labels (n,))."""
    samples = [render(start + i, image_size=image_size, seed=seed) for i in range(n)]
    x = torch.stack([s.image for s in samples])  # (n, 3, H, W)
    return x, torch.tensor([s.label for s in samples])


class SyntheticShapes(torch.utils.data.Dataset):
    """The first `num_samples` samples of the stream `seed` (the data axis is this prefix length)."""

    def __init__(self, num_samples: int, *, image_size: int = 32, seed: int = 0, offset: int = 0):
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        self.num_samples = num_samples
        self.image_size = image_size
        self.seed = seed
        self.offset = offset  # held-out splits use a disjoint index range of the same stream

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, i: int) -> tuple[torch.Tensor, str, int]:
        if not 0 <= i < self.num_samples:
            raise IndexError(i)
        s = render(self.offset + i, image_size=self.image_size, seed=self.seed)
        return s.image, s.caption, s.label
