"""The shared dataset description: listings, fingerprints, plan-time checks, probe-set batches."""

import os

import pytest
import torch

from tests.imagefolders import COLORS, write_imagefolder, write_parquet
from vtp.config import ConfigError, from_dict
from vtp.data.config import DataNeed, DatasetConfig
from vtp.data.sets import LabelledImages
from vtp.data.source import DataCheck, describe, problems
from vtp.data.synthetic import NUM_CLASSES, render_batch


def folder_cfg(path, **kw):
    return DatasetConfig(kind="imagefolder", path=str(path), **kw)


def test_imagefolder_classes_count_and_fingerprint_follow_the_files(tmp_path):
    root = write_imagefolder(tmp_path / "imgs", per_class=3)
    a = describe(folder_cfg(root))
    assert a.classes == tuple(sorted(COLORS)) and a.num_images == 9 and len(a.sha256) == 64
    assert describe(folder_cfg(root)).sha256 == a.sha256  # a pure function of the files
    assert describe(folder_cfg(root, seed=5)).sha256 == a.sha256  # the order's seed is not the data
    with open(root / "leaf" / "000.png", "ab") as f:  # same names, one file grew: other data
        f.write(b"\0")
    assert describe(folder_cfg(root)).sha256 != a.sha256
    os.remove(root / "leaf" / "000.png")
    b = describe(folder_cfg(root))
    assert b.num_images == 8 and b.sha256 != a.sha256
    rec = b.record(image_size=16)
    assert rec["dataset.fingerprint"] == b.sha256[:16] and rec["dataset.num_classes"] == 3
    assert rec["dataset.image_size"] == 16 and rec["dataset.num_images"] == 8


def test_parquet_classes_from_a_label_column(tmp_path):
    ints = DatasetConfig(kind="parquet", path=str(write_parquet(tmp_path / "a.parquet", 2)))
    listing = describe(ints, labels=True)
    assert listing.num_images == 6 and listing.classes == ("0", "1", "2")
    names = DatasetConfig(kind="parquet", path=str(write_parquet(tmp_path / "b" / "s.parquet", 2, names_as_labels=True)))
    assert describe(names, labels=True).classes == tuple(sorted(COLORS))
    probe = LabelledImages(names, image_size=8)
    x, y = probe.batch(0, 6)
    assert x.shape == (6, 3, 8, 8) and sorted(y.tolist()) == [0, 0, 1, 1, 2, 2]


def test_the_builtin_default_draws_what_render_batch_draws():
    probe = LabelledImages(DatasetConfig(seed=3), image_size=16)
    x, y = probe.batch(5, 7)
    rx, ry = render_batch(5, 7, image_size=16, seed=3)
    assert torch.equal(x, rx) and torch.equal(y, ry) and probe.num_classes == NUM_CLASSES


def test_corrupt_probe_images_are_skipped_and_counted(tmp_path):
    root = write_imagefolder(tmp_path / "imgs", per_class=3, corrupt=2)
    probe = LabelledImages(folder_cfg(root), image_size=16)
    assert len(probe) == 11
    with pytest.warns(UserWarning, match="unreadable image skipped"):
        x, y = probe.batch(0, 11)
    assert probe.skipped == 2 and x.shape == (9, 3, 16, 16) and len(y) == 9


@pytest.mark.parametrize("case, words", [
    ("missing", "does not exist"),
    ("flat", "no class sub-folders"),
    ("empty", "no images in its class folders"),
    ("few", "holds 9 images, the stage needs 10"),
    ("no_label", "column 'label' missing"),
    ("no_caption", "column 'caption' missing"),
])
def test_plan_time_problems_name_the_path(tmp_path, case, words):
    root = write_imagefolder(tmp_path / "imgs", per_class=3)
    need = DataNeed("dataset", folder_cfg(root), images=5, labels=True)
    if case == "missing":
        need = DataNeed("dataset", folder_cfg(tmp_path / "nope"))
    elif case == "flat":
        (tmp_path / "flat").mkdir()
        (tmp_path / "flat" / "a.png").write_bytes(b"")
        need = DataNeed("dataset", folder_cfg(tmp_path / "flat"))
    elif case == "empty":
        (tmp_path / "empty" / "cls").mkdir(parents=True)
        need = DataNeed("dataset", folder_cfg(tmp_path / "empty"))
    elif case == "few":
        need = DataNeed("dataset", folder_cfg(root), images=10)
    elif case == "no_label":
        need = DataNeed("dataset", DatasetConfig(kind="parquet", path=str(write_parquet(tmp_path / "p", label=None))),
                        labels=True)
    elif case == "no_caption":
        need = DataNeed("dataset", DatasetConfig(kind="parquet", path=str(write_parquet(tmp_path / "p", caption=False))),
                        captions=True)
    message = problems(need)
    assert message is not None and words in message and str(need.dataset.path) in message
    with pytest.raises(ConfigError, match=r"spec.yaml: stages\[1\].config.dataset: .*" + words):
        DataCheck()(need, where="spec.yaml", key="stages[1].config")


def test_a_sufficient_dataset_passes_and_is_listed_once(tmp_path):
    root = write_imagefolder(tmp_path / "imgs", per_class=3)
    check = DataCheck()
    need = DataNeed("dataset", folder_cfg(root), images=9, labels=True)
    check(need, where="s.yaml", key="k")
    (root / "sky" / "000.png").unlink()  # listed once per plan: the memo answers
    check(need, where="s.yaml", key="k")
    check(DataNeed("dataset", folder_cfg(root), images=9), where="s.yaml", key="k")  # another stage: same listing
    assert problems(need) is not None  # a fresh check sees the change
    assert problems(DataNeed("dataset", DatasetConfig(), images=10**12)) is None  # the built-in stream


def test_dataset_schema_is_validated_at_load():
    with pytest.raises(ConfigError, match="dataset.path is required"):
        from_dict(DatasetConfig, {"kind": "imagefolder"}, where="s.yaml", key="stages[0].config.dataset")
    with pytest.raises(ConfigError, match=r"stages\[0\].config.dataset.colour: unknown key"):
        from_dict(DatasetConfig, {"kind": "imagefolder", "path": "/x", "colour": 1}, where="s.yaml",
                  key="stages[0].config.dataset")
