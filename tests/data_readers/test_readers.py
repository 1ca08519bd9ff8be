from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from vtp.data.folder import ImageFolderCaptions
from vtp.data.parquet import ParquetImageText
from vtp.train.data import load_batch


def _png(color: tuple[int, int, int], size=(40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((size[1], size[0], 3), color, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def folder(tmp_path):
    for cls, color in (("cats", (255, 0, 0)), ("dogs", (0, 0, 255))):
        (tmp_path / cls).mkdir()
        for i in range(3):
            (tmp_path / cls / f"{i}.png").write_bytes(_png(color))
    (tmp_path / "dogs" / "bad.png").write_bytes(b"not a png")
    (tmp_path / "captions.tsv").write_text("cats/0.png\ta red cat\n")
    return tmp_path


def test_folder_reads_labels_captions_and_skips_corrupt(folder):
    ds = ImageFolderCaptions(folder, image_size=16)
    assert len(ds) == 7 and ds.classes == ["cats", "dogs"]
    seen = {}
    with pytest.warns(UserWarning, match="bad.png"):
        for i in range(len(ds)):
            item = ds[i]
            if item is not None:
                seen[ds.items[i][0]] = item
    assert ds.corrupt_count == 1 and len(seen) == 6
    img, cap, label = seen["cats/0.png"]
    assert img.shape == (3, 16, 16) and cap == "a red cat" and label == 0
    torch.testing.assert_close(img[0], torch.ones(16, 16))  # pure red -> +1 in R
    assert seen["dogs/1.png"][1:] == ("dogs", 1)
    with pytest.warns(UserWarning):
        images, captions = load_batch(ds, list(range(len(ds))))  # corrupt slots refilled
    assert images.shape == (7, 3, 16, 16) and len(captions) == 7


def test_folder_subsets_are_nested_and_deterministic(folder):
    a = ImageFolderCaptions(folder, image_size=8, num_samples=3, seed=1).items
    b = ImageFolderCaptions(folder, image_size=8, num_samples=5, seed=1).items
    assert b[:3] == a and ImageFolderCaptions(folder, image_size=8, num_samples=3, seed=1).items == a
    with pytest.raises(ValueError, match="asked for 99"):
        ImageFolderCaptions(folder, image_size=8, num_samples=99)


def test_parquet_shards(tmp_path):
    for s in range(2):
        rows = {"image": [_png((0, 255, 0)), b"\x00corrupt"], "caption": [f"green {s}", "broken"], "label": [s, 9]}
        pq.write_table(pa.table(rows), tmp_path / f"shard{s}.parquet")
    ds = ParquetImageText(tmp_path, image_size=8)
    assert len(ds) == 4
    items = []
    with pytest.warns(UserWarning, match="unreadable"):
        items = [ds[i] for i in range(4)]
    good = [it for it in items if it is not None]
    assert ds.corrupt_count == 2 and sorted(it[1] for it in good) == ["green 0", "green 1"]
    assert good[0][0].shape == (3, 8, 8)
    two, three = (ParquetImageText(tmp_path, image_size=8, num_samples=n, seed=3) for n in (2, 3))
    assert [two.row_of(i) for i in range(2)] == [three.row_of(i) for i in range(2)]
    with pytest.raises(ValueError, match="column 'text' missing"):
        ParquetImageText(tmp_path, image_size=8, caption_column="text")
