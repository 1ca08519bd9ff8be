"""The Parquet reader at scale: memory bounded by the cache, not the row count, and the same samples
as the reader that loaded whole shards (its algorithm is restated here as the reference)."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from vtp.data.imageio import decode
from vtp.data.parquet import ParquetImageText
from vtp.data.permutation import feistel_index


def _png(value: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((6, 6, 3), value, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _store(root, shards: int = 3, rows: int = 40, row_group: int = 7, label: bool = True):
    for s in range(shards):
        ids = range(s * rows, (s + 1) * rows)
        cols = {"image": [_png(i % 251) if i % 17 else b"corrupt" for i in ids], "caption": [f"row {i}" for i in ids]}
        if label:
            cols["label"] = [i % 5 for i in ids]
        pq.write_table(pa.table(cols), root / f"part-{s:03d}.parquet", row_group_size=row_group)
    return root


def _old_reader_samples(root, *, image_size: int, num_samples: int | None, seed: int):
    """What the reader before the row-group index returned: one randperm over all rows, whole
    shards loaded, row i of the subset = perm[i]."""
    table = pa.concat_tables([pq.read_table(p) for p in sorted(root.glob("*.parquet"))])
    perm = torch.randperm(table.num_rows, generator=torch.Generator().manual_seed(seed)).tolist()
    out = []
    for r in perm[: num_samples or table.num_rows]:
        row = table.slice(r, 1).to_pylist()[0]
        try:
            out.append((decode(row["image"], image_size), row["caption"], int(row.get("label", -1))))
        except (OSError, ValueError):
            out.append(None)
    return out


@pytest.mark.parametrize("num_samples,seed", [(None, 0), (50, 7)])
def test_same_samples_as_the_whole_shard_reader(tmp_path, num_samples, seed):
    root = _store(tmp_path)
    ds = ParquetImageText(root, image_size=8, num_samples=num_samples, seed=seed, cache_row_groups=2)
    expected = _old_reader_samples(root, image_size=8, num_samples=num_samples, seed=seed)
    assert len(ds) == len(expected)
    with pytest.warns(UserWarning, match="unreadable"):
        got = [ds[i] for i in range(len(ds))]
    for g, e in zip(got, expected):
        assert (g is None) == (e is None)
        if g is not None:
            assert torch.equal(g[0], e[0]) and g[1:] == e[1:]
    assert ds.corrupt_count == sum(e is None for e in expected) > 0


def test_memory_is_bounded_by_the_cache_not_the_rows(tmp_path):
    root = _store(tmp_path, shards=4, rows=60, row_group=5)  # 48 row groups
    ds = ParquetImageText(root, image_size=4, cache_row_groups=3, open_files=2, seed=1)
    assert len(ds.rg_starts) == 48 + 1 and ds.rg_starts[-1] == 240  # one index entry per row group
    peak_groups = peak_files = 0
    with pytest.warns(UserWarning):
        for i in range(len(ds)):
            ds[i]
            peak_groups, peak_files = max(peak_groups, len(ds._groups)), max(peak_files, len(ds._files))
    assert peak_groups == 3 and peak_files == 2
    # no per-row Python sequence anywhere on the reader; the order is one int64 tensor of the subset
    assert not [k for k, v in vars(ds).items() if isinstance(v, (list, tuple, dict)) and len(v) >= ds.total_rows]
    assert ds._order.dtype == torch.int64 and ds._order.numel() == len(ds)
    with pytest.warns(UserWarning, match="row groups of up to .* exceed the reader's cache bound"):
        tiny = ParquetImageText(root, image_size=4, cache_bytes=1)  # byte bound: only the group in use stays
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # corrupt rows, if drawn
        [tiny[i] for i in range(20)]
    assert len(tiny._groups) == 1


def test_large_stores_use_a_constant_memory_permutation(tmp_path):
    root = _store(tmp_path, label=False)
    small = ParquetImageText(root, image_size=4, num_samples=30, seed=5, exact_permutation_limit=0)
    big = ParquetImageText(root, image_size=4, num_samples=90, seed=5, exact_permutation_limit=0)
    assert small._order is None
    rows = [big.row_of(i) for i in range(90)]
    assert [small.row_of(i) for i in range(30)] == rows[:30]  # nested subsets
    assert len(set(rows)) == 90 and max(rows) < 120
    item = next(x for x in (big[i] for i in range(5)) if x is not None)
    assert item[2] == -1  # no label column
    with pytest.raises(IndexError):
        big.row_of(90)


@pytest.mark.parametrize("n", [1, 2, 3, 16, 17, 1000, 4097])
def test_feistel_is_a_seeded_bijection(n):
    perm = [feistel_index(i, n, seed=3) for i in range(n)]
    assert sorted(perm) == list(range(n))
    assert perm == [feistel_index(i, n, seed=3) for i in range(n)]
    if n >= 16:
        assert perm != list(range(n)) and perm != [feistel_index(i, n, seed=4) for i in range(n)]
