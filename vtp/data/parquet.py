"""Image-text Parquet shards (DataComp/webdataset-to-parquet style): one row per sample with the
encoded image bytes (a binary column, or a struct with a `bytes` field as written by HF datasets)
and a caption; an optional integer `label` column.

`path` is one .parquet file or a folder of them (sorted). The subset of size n is the first n rows
of one seeded permutation of all rows (nested prefixes). Corrupt images are counted and skipped
with a warning (`__getitem__` returns None, `corrupt_count` grows).
"""

from __future__ import annotations

import bisect
import warnings
from pathlib import Path

import pyarrow.parquet as pq
import torch

from vtp.data.imageio import decode


class ParquetImageText(torch.utils.data.Dataset):
    def __init__(
        self, path: str | Path, *, image_size: int, num_samples: int | None = None, seed: int = 0,
        image_column: str = "image", caption_column: str = "caption", label_column: str = "label",
        classes: tuple[str, ...] = (),
    ):
        """`caption_column=""`: a store without captions (a probe set); `classes`: the label column's
        class names (vtp.data.source.describe), which also maps a column of names to indices."""
        path = Path(path)
        self.shards = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
        if not self.shards or not self.shards[0].exists():
            raise FileNotFoundError(f"{path}: no parquet shards found")
        self.image_size, self.image_column, self.caption_column = image_size, image_column, caption_column
        self.label_column, self.classes = label_column, list(classes)
        self._class_index = {c: i for i, c in enumerate(classes)}
        counts = []
        for shard in self.shards:
            meta = pq.ParquetFile(shard)
            names = meta.schema_arrow.names
            for col in (image_column, caption_column) if caption_column else (image_column,):
                if col not in names:
                    raise ValueError(f"{shard}: column {col!r} missing; columns are: {', '.join(names)}")
            counts.append(meta.metadata.num_rows)
        self.starts = [0]
        for c in counts:
            self.starts.append(self.starts[-1] + c)
        total = self.starts[-1]
        if num_samples is not None and num_samples > total:
            raise ValueError(f"{path}: asked for {num_samples} samples, the shards hold {total}")
        perm = torch.randperm(total, generator=torch.Generator().manual_seed(seed)).tolist()
        self.rows = perm[: num_samples or total]
        self._tables: dict[int, object] = {}  # shard index -> loaded table (read on first use)
        self.corrupt_count = 0

    def __len__(self) -> int:
        return len(self.rows)

    def _row(self, global_row: int) -> dict:
        s = bisect.bisect_right(self.starts, global_row) - 1
        if s not in self._tables:
            self._tables[s] = pq.read_table(self.shards[s])
        return self._tables[s].slice(global_row - self.starts[s], 1).to_pylist()[0]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, str, int] | None:
        row = self._row(self.rows[i])
        data = row[self.image_column]
        if isinstance(data, dict):
            data = data.get("bytes")
        try:
            if not isinstance(data, (bytes, bytearray)):
                raise ValueError("no image bytes")
            image = decode(data, self.image_size)
        except (OSError, ValueError) as e:
            self.corrupt_count += 1
            warnings.warn(f"{self.shards[0].parent}: row {self.rows[i]}: unreadable image skipped ({e})", stacklevel=2)
            return None
        return image, str(row[self.caption_column]) if self.caption_column else "", self._label(row.get(self.label_column))

    def _label(self, raw: object) -> int:
        if raw is None:
            return -1
        return self._class_index[raw] if isinstance(raw, str) else int(raw)
