"""Which samples a step sees: a pure function of (seed, step), so a resumed run reads the same data.

The stream is epochs over `unique_samples` items, each epoch a fresh permutation seeded by
(seed, epoch); step s reads stream positions [s*B, (s+1)*B).
"""

from __future__ import annotations

import torch

from vtp.train.config import TokenizerTrainConfig


class SampleOrder:
    def __init__(self, num_items: int, *, seed: int):
        self.num_items, self.seed = num_items, seed
        self._epoch, self._perm = -1, torch.empty(0, dtype=torch.long)

    def permutation(self, epoch: int) -> torch.Tensor:
        if epoch != self._epoch:  # memo of the last epoch only; still a pure function of (seed, epoch)
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch, self._perm = epoch, torch.randperm(self.num_items, generator=g)
        return self._perm

    def indices(self, step: int, batch_size: int) -> list[int]:
        out = []
        for pos in range(step * batch_size, (step + 1) * batch_size):
            epoch, i = divmod(pos, self.num_items)
            out.append(int(self.permutation(epoch)[i]))
        return out


def build_dataset(cfg: TokenizerTrainConfig) -> torch.utils.data.Dataset:
    """The training set: items (image (3,H,W) in [-1,1], caption, label), `unique_samples` of them."""
    from vtp.data.sets import open_images

    return open_images(cfg.dataset, image_size=cfg.image_size, num_samples=cfg.unique_samples)


def load_batch(dataset, indices: list[int]) -> tuple[torch.Tensor, list[str]]:
    """(images (B,3,H,W), captions). Readers that skip corrupt files return None for them; those
    slots are refilled with the next readable item of the dataset (counted by the reader)."""
    images, captions = [], []
    n = len(dataset)
    for i in indices:
        item, j = dataset[i], i
        while item is None:  # corrupt image: the reader counted and warned
            j = (j + 1) % n
            item = dataset[j]
        images.append(item[0])
        captions.append(item[1])
    return torch.stack(images), captions
