"""Image-text Parquet shards (DataComp/webdataset-to-parquet style): one row per sample with the
encoded image bytes (a binary column, or a struct with a `bytes` field as written by HF datasets)
and a caption; an optional label column (integers, or class names mapped by `classes`).

`path` is one .parquet file or a folder of them (sorted). The subset of size n is the first n rows
of one seeded permutation of all rows (nested prefixes). Corrupt images are counted and skipped
with a warning (`__getitem__` returns None, `corrupt_count` grows).

Memory stays bounded whatever the row count (DataComp scale: 1e9 rows in 1e4 shards):
- the index is built from the Parquet footers only (row counts per row group; no data is read) and
  held as two numpy arrays, one entry per row group, not per row;
- a row is read by (shard, row group, row): its row group is decoded on first use and kept in a
  small LRU cache bounded in both count and bytes, so a random draw touches one row group, never a
  whole shard, and no shard's table is kept. The bound is thus about `cache_row_groups` row groups
  (at least one): write stores with row groups of a few MiB (e.g. 1,000 images); a store of shards
  that are one row group each is read a whole shard per draw (a warning says so at opening);
- the order of rows is `torch.randperm(total, seed)` (as it always was, so existing stores keep
  their samples) up to `EXACT_PERMUTATION_LIMIT` rows, held as one int64 tensor of the subset
  (8 bytes a row, no Python list); above it, a Feistel permutation evaluated per index in O(1)
  memory (vtp.data.permutation). Either way sample i is a pure function of (seed, i, store).
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch

from vtp.data.imageio import decode
from vtp.data.permutation import feistel_index

# randperm of 2**24 rows is 128 MiB of int64 while it is built; beyond that the order is computed per index
EXACT_PERMUTATION_LIMIT = 1 << 24


class ParquetImageText(torch.utils.data.Dataset):
    def __init__(
        self, path: str | Path, *, image_size: int, num_samples: int | None = None, seed: int = 0,
        image_column: str = "image", caption_column: str = "caption", label_column: str = "label",
        classes: tuple[str, ...] = (),
        cache_row_groups: int = 4, cache_bytes: int = 256 << 20, open_files: int = 16,
        exact_permutation_limit: int = EXACT_PERMUTATION_LIMIT,
    ):
        """`caption_column=""`: a store without captions (a probe set); `classes`: the label column's
        class names (vtp.data.source.describe), which also maps a column of names to indices."""
        path = Path(path)
        self.path = path
        self.shards = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
        if not self.shards or not self.shards[0].exists():
            raise FileNotFoundError(f"{path}: no parquet shards found")
        self.image_size, self.image_column, self.caption_column = image_size, image_column, caption_column
        self.seed = seed
        self.label_column, self.classes = label_column, list(classes)
        self._class_index = {c: i for i, c in enumerate(classes)}
        self.cache_row_groups, self.cache_bytes, self.open_files = max(1, cache_row_groups), cache_bytes, max(1, open_files)
        self._index_row_groups(image_column, caption_column)
        total = int(self.rg_starts[-1])
        if num_samples is not None and num_samples > total:
            raise ValueError(f"{path}: asked for {num_samples} samples, the shards hold {total}")
        self.total_rows = total
        self.num_samples = num_samples or total
        self._order: torch.Tensor | None = None  # (num_samples,) int64 when the exact permutation is used
        if total <= exact_permutation_limit:
            perm = torch.randperm(total, generator=torch.Generator().manual_seed(seed))
            self._order = perm[: self.num_samples].clone()  # clone: do not keep the whole permutation alive
        self._groups: OrderedDict[tuple[int, int], object] = OrderedDict()  # (shard, row group) -> table
        self._files: OrderedDict[int, pq.ParquetFile] = OrderedDict()  # shard -> open file
        self.corrupt_count = 0

    def _index_row_groups(self, image_column: str, caption_column: str) -> None:
        """Footers only: per row group its shard, its number in the shard and its first global row."""
        sizes, shard_of, number, self._has_label, biggest = [], [], [], [], 0
        for s, shard in enumerate(self.shards):
            with pq.ParquetFile(shard) as f:
                names = f.schema_arrow.names
                for col in (image_column, caption_column) if caption_column else (image_column,):
                    if col not in names:
                        raise ValueError(f"{shard}: column {col!r} missing; columns are: {', '.join(names)}")
                self._has_label.append(self.label_column in names)
                meta = f.metadata
                for g in range(meta.num_row_groups):
                    sizes.append(meta.row_group(g).num_rows)
                    shard_of.append(s)
                    number.append(g)
                    biggest = max(biggest, meta.row_group(g).total_byte_size)
        self.rg_starts = np.concatenate([[0], np.cumsum(np.asarray(sizes, dtype=np.int64))])  # (G+1,)
        self.rg_shard = np.asarray(shard_of, dtype=np.int32)  # (G,)
        self.rg_number = np.asarray(number, dtype=np.int32)  # (G,)
        if biggest > self.cache_bytes:  # one row group always stays: the bound is then its size, and every draw reads one
            warnings.warn(
                f"{self.path}: row groups of up to {biggest / 2**20:.0f} MiB (uncompressed) exceed the reader's cache "
                f"bound of {self.cache_bytes / 2**20:.0f} MiB; each random draw decodes one whole row group: rewrite "
                f"the shards with smaller row groups (pyarrow.parquet.write_table(..., row_group_size=1000))",
                stacklevel=3,
            )

    def __len__(self) -> int:
        return self.num_samples

    def row_of(self, i: int) -> int:
        """The global row (shards in sorted order, rows in file order) of sample i."""
        if not 0 <= i < self.num_samples:
            raise IndexError(f"sample {i} out of range for {self.num_samples} samples")
        if self._order is not None:
            return int(self._order[i])
        return feistel_index(i, self.total_rows, self.seed)

    def __getstate__(self) -> dict:  # DataLoader workers: open files and cached tables stay behind
        return {**self.__dict__, "_groups": OrderedDict(), "_files": OrderedDict()}

    def _file(self, s: int) -> pq.ParquetFile:
        f = self._files.pop(s, None) or pq.ParquetFile(self.shards[s])
        self._files[s] = f
        while len(self._files) > self.open_files:
            self._files.popitem(last=False)[1].close()
        return f

    def _group(self, g: int):
        key = (int(self.rg_shard[g]), int(self.rg_number[g]))
        table = self._groups.pop(key, None)
        if table is None:
            cols = [self.image_column] + ([self.caption_column] if self.caption_column else []) + (
                [self.label_column] if self._has_label[key[0]] else [])
            # one thread: a single small row group gains nothing from a pool (~8 % faster here), and
            # DataLoader workers already run in parallel
            table = self._file(key[0]).read_row_group(key[1], columns=cols, use_threads=False)
        self._groups[key] = table  # most recent last
        while len(self._groups) > 1 and (
            len(self._groups) > self.cache_row_groups or sum(t.nbytes for t in self._groups.values()) > self.cache_bytes
        ):
            self._groups.popitem(last=False)
        return table

    def _row(self, global_row: int) -> tuple[dict, Path]:
        """The row's values and its shard's path."""
        g = int(np.searchsorted(self.rg_starts, global_row, side="right")) - 1  # its row group
        table = self._group(g)
        r = global_row - int(self.rg_starts[g])
        return {name: table.column(name)[r].as_py() for name in table.column_names}, self.shards[self.rg_shard[g]]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, str, int] | None:
        global_row = self.row_of(i)
        row, shard = self._row(global_row)
        data = row[self.image_column]
        if isinstance(data, dict):
            data = data.get("bytes")
        try:
            if not isinstance(data, (bytes, bytearray)):
                raise ValueError("no image bytes")
            image = decode(data, self.image_size)
        except (OSError, ValueError) as e:
            self.corrupt_count += 1
            warnings.warn(f"{shard}: global row {global_row}: unreadable image skipped ({e})", stacklevel=2)
            return None
        return image, str(row[self.caption_column]) if self.caption_column else "", self._label(row.get(self.label_column))

    def _label(self, raw: object) -> int:
        if raw is None:
            return -1
        return self._class_index[raw] if isinstance(raw, str) else int(raw)
