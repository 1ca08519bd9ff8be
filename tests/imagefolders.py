"""Tiny real image stores the tests write: an ImageFolder of a few 16 px PNGs per class, and a
Parquet store of the same images (no downloads)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

COLORS = {"apple": (200, 30, 30), "leaf": (30, 180, 40), "sky": (40, 60, 210)}


def png(color: tuple[int, int, int], *, seed: int, size: int = 16) -> bytes:
    """A noisy flat-colour PNG: the class is its colour, the noise makes every image distinct."""
    rng = np.random.default_rng(seed)
    arr = np.clip(np.array(color)[None, None] + rng.normal(0, 20, (size, size, 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def write_imagefolder(root: Path, per_class: int = 6, classes: dict = COLORS, corrupt: int = 0) -> Path:
    """root/<class>/<i>.png; `corrupt` extra files in the first class that are not images."""
    for c, (name, color) in enumerate(classes.items()):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            (root / name / f"{i:03d}.png").write_bytes(png(color, seed=100 * c + i))
    first = next(iter(classes))
    for i in range(corrupt):
        (root / first / f"broken{i}.png").write_bytes(b"not a png")
    return root


def write_parquet(path: Path, per_class: int = 4, *, label: str | None = "label", names_as_labels: bool = False,
                  caption: bool = True) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = {"image": [], "caption": [], label or "_": []}
    for c, (name, color) in enumerate(COLORS.items()):
        for i in range(per_class):
            rows["image"].append(png(color, seed=100 * c + i))
            rows["caption"].append(f"a photo of {name}")
            rows[label or "_"].append(name if names_as_labels else c)
    if label is None:
        del rows["_"]
    if not caption:
        del rows["caption"]
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(rows), path)
    return path
