"""A `DatasetConfig` opened for reading: a training set of (image, caption, label) items, or a labelled
probe set read in batches by position.

Positions of a real probe set index one seeded permutation of all its images (the readers' order),
so "the first n" is the same n images in every stage that reads it. The built-in shapes are read
through `render_batch`, exactly as before this module existed (same images, same random numbers).
Corrupt images are skipped by the readers with a warning and counted here (`skipped`).
"""

from __future__ import annotations

import torch

from vtp.data.config import DatasetConfig
from vtp.data.source import DataListing, describe
from vtp.data.synthetic import render_batch


def open_images(cfg: DatasetConfig, *, image_size: int, num_samples: int | None = None,
                classes: tuple[str, ...] = (), captions: bool = True) -> torch.utils.data.Dataset:
    """The first `num_samples` items (image (3, S, S) in [-1, 1], caption, label) of `cfg`; the
    readers return None for an unreadable image (counted in their `corrupt_count`)."""
    if cfg.kind == "synthetic":
        from vtp.data.synthetic import SyntheticShapes

        if num_samples is None:
            raise ValueError("the built-in stream is unbounded: give num_samples")
        return SyntheticShapes(num_samples, image_size=image_size, seed=cfg.seed)
    if cfg.kind == "imagefolder":
        from vtp.data.folder import ImageFolderCaptions

        return ImageFolderCaptions(cfg.path, image_size=image_size, num_samples=num_samples, seed=cfg.seed)
    from vtp.data.parquet import ParquetImageText

    return ParquetImageText(cfg.path, image_size=image_size, num_samples=num_samples, seed=cfg.seed,
                            image_column=cfg.image_column, caption_column=cfg.caption_column if captions else "",
                            label_column=cfg.label_column, classes=classes)


class LabelledImages:
    """A probe set: `batch(start, n)` -> (images (m, 3, S, S), labels (m,)), m = n less the skipped."""

    def __init__(self, cfg: DatasetConfig, *, image_size: int, listing: DataListing | None = None):
        self.cfg, self.image_size = cfg, image_size
        self.listing = listing or describe(cfg, labels=True)
        self.classes = self.listing.classes
        self.skipped = 0  # unreadable images left out of the batches so far
        self._reader = None if cfg.kind == "synthetic" else open_images(
            cfg, image_size=image_size, classes=self.classes, captions=False)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        """Images available (the built-in stream: as many as asked for)."""
        return len(self._reader) if self._reader is not None else 2**62

    def batch(self, start: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self._reader is None:
            return render_batch(start, n, image_size=self.image_size, seed=self.cfg.seed)
        if start < 0 or start + n > len(self._reader):
            raise IndexError(f"{self.cfg.path}: images {start}..{start + n} asked for, it holds {len(self._reader)}")
        items = [self._reader[i] for i in range(start, start + n)]
        kept = [it for it in items if it is not None]
        self.skipped += len(items) - len(kept)
        if not kept:
            return torch.empty(0, 3, self.image_size, self.image_size), torch.empty(0, dtype=torch.long)
        return torch.stack([it[0] for it in kept]), torch.tensor([it[2] for it in kept])  # (m, 3, S, S), (m,)
