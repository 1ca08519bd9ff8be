"""ImageFolder tree (`root/<class>/<image>`) with an optional captions file.

`root/captions.tsv` holds lines `relative/path<TAB>caption`; images without a line get their class
name as caption. The subset of size n is the first n of one seeded permutation of the sorted file
list, so smaller subsets are prefixes of larger ones (the data axis). Corrupt or missing images are
counted and skipped with a warning: `__getitem__` returns None and `corrupt_count` grows.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from vtp.data.imageio import decode
from vtp.data.source import list_imagefolder


class ImageFolderCaptions(torch.utils.data.Dataset):
    def __init__(self, root: str | Path, *, image_size: int, num_samples: int | None = None, seed: int = 0):
        self.root, self.image_size = Path(root), image_size
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: image folder not found")
        classes, files = list_imagefolder(self.root)  # the listing the planner checks and stages fingerprint
        if num_samples is not None and num_samples > len(files):
            raise ValueError(f"{self.root}: asked for {num_samples} samples, the folder has {len(files)}")
        perm = torch.randperm(len(files), generator=torch.Generator().manual_seed(seed)).tolist()
        self.items = [files[j] for j in perm[: num_samples or len(files)]]
        self.classes = classes
        self.captions = self._read_captions(self.root / "captions.tsv")
        self.corrupt_count = 0

    @staticmethod
    def _read_captions(path: Path) -> dict[str, str]:
        if not path.exists():
            return {}
        out = {}
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            if "\t" not in line:
                raise ValueError(f"{path}:{n}: expected 'relative/path<TAB>caption'")
            rel, cap = line.split("\t", 1)
            out[rel] = cap
        return out

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, str, int] | None:
        rel, label = self.items[i]
        try:
            image = decode(self.root / rel, self.image_size)
        except (OSError, ValueError) as e:
            self.corrupt_count += 1
            warnings.warn(f"{self.root / rel}: unreadable image skipped ({e})", stacklevel=2)
            return None
        return image, self.captions.get(rel, self.classes[label]), label
