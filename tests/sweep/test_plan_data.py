"""Bad data stops `vtp-sweep plan` and `launch` before anything is submitted, naming the spec file,
the key and the path; good real data plans (the checks list folders and read Parquet footers only)."""

import pytest

from tests.imagefolders import write_imagefolder, write_parquet
from vtp.cli.sweep import main

SPEC = """
name: realdata
executor: local
tracking: {{enabled: false}}
fixed:
  pretrain_data: {pretrain}
  probe_data: {probe}
stages:
  - name: tokenizer
    target: vtp.stages.tokenizer:run
    fanout: checkpoints
    config: {{budget_steps: 2, image_size: 16, patch_size: 4, unique_samples: 6, dataset: "${{fixed.pretrain_data}}",
             checkpoints: [40]}}
  - name: extract
    target: vtp.stages.extract:run
    after: tokenizer
    config: {{dataset: "${{fixed.probe_data}}", num_images: {num_images}}}
  - name: dit
    target: vtp.stages.dit:run
    after: extract
  - name: eval
    target: vtp.stages.eval:run
    after: dit
    config: {{dataset: "${{fixed.probe_data}}", reference_images: 6, num_samples: 4, probe_train_images: 4, recon_images: 4,
             probe_test_images: 2, feature_net: {{train_samples: 6, heldout_samples: 3}}}}
"""


def folder(path) -> str:
    return f"{{kind: imagefolder, path: {path}}}"


def write_spec(tmp_path, *, pretrain, probe, num_images=9):
    spec = tmp_path / "realdata.yaml"
    spec.write_text(SPEC.format(pretrain=pretrain, probe=probe, num_images=num_images))
    return spec


@pytest.fixture
def good(tmp_path):
    return write_imagefolder(tmp_path / "probe", per_class=3)  # 9 images, 3 classes


def bad_cases(tmp_path, good):
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "0.png").write_bytes(b"")
    no_label = write_parquet(tmp_path / "nolabel" / "s.parquet", label=None)
    return {
        "missing": (dict(pretrain=folder(tmp_path / "nowhere"), probe=folder(good)),
                    "stages[0].config.dataset", str(tmp_path / "nowhere"), "does not exist"),
        "no_class_folders": (dict(pretrain=folder(good), probe=folder(flat)),
                             "stages[1].config.dataset", str(flat), "no class sub-folders"),
        "parquet_without_label": (dict(pretrain=folder(good), probe=f"{{kind: parquet, path: {no_label}}}"),
                                  "stages[1].config.dataset", str(no_label), "column 'label' missing"),
        "too_few_images": (dict(pretrain=folder(good), probe=folder(good), num_images=10),
                           "stages[1].config.dataset", str(good), "holds 9 images, the stage needs 10"),
    }


@pytest.mark.parametrize("command", ["plan", "launch"])
@pytest.mark.parametrize("case", ["missing", "no_class_folders", "parquet_without_label", "too_few_images"])
def test_bad_data_stops_plan_and_launch_naming_file_key_and_path(tmp_path, capsys, good, command, case):
    kw, key, path, words = bad_cases(tmp_path, good)[case]
    spec = write_spec(tmp_path, **kw)
    root = tmp_path / "out"
    assert main([command, str(spec), f"root={root}"]) == 2
    err = capsys.readouterr().err
    assert str(spec) in err and key in err and path in err and words in err, err
    assert not root.exists()  # nothing submitted, not even a sweep folder


def test_eval_needing_more_probe_images_than_there_are_is_named(tmp_path, capsys, good):
    spec = write_spec(tmp_path, pretrain=folder(good), probe=folder(good))
    assert main(["plan", str(spec), f"root={tmp_path / 'out'}", "stages.eval.config.reference_images=50"]) == 2
    err = capsys.readouterr().err
    assert "stages[3].config.dataset" in err and "the stage needs 50" in err and str(good) in err


def test_good_real_data_plans_and_the_preview_flag_skips_the_listing(tmp_path, capsys, good):
    spec = write_spec(tmp_path, pretrain=folder(good), probe=folder(good))
    assert main(["plan", str(spec), f"root={tmp_path / 'out'}"]) == 0
    assert "eval" in capsys.readouterr().out
    spec = write_spec(tmp_path, pretrain=folder(tmp_path / "on-the-cluster"), probe=folder(good))
    assert main(["plan", str(spec), f"root={tmp_path / 'out'}"]) == 2
    assert main(["plan", "--no-data-check", str(spec), f"root={tmp_path / 'out'}"]) == 0


def test_a_wrong_shaped_reference_batch_stops_plan(tmp_path, capsys, good):
    import numpy as np

    npz = tmp_path / "ref.npz"
    np.savez(npz, mu=np.zeros(64), sigma=np.eye(64))
    spec = write_spec(tmp_path, pretrain=folder(good), probe=folder(good))
    weights = tmp_path / "inception.pth"
    weights.write_bytes(b"")  # not read at plan time
    assert main(["plan", str(spec), f"root={tmp_path / 'out'}", f"stages.eval.config.inception_weights={weights}",
                 f"stages.eval.config.inception_reference={npz}"]) == 2
    err = capsys.readouterr().err
    assert str(spec) in err and "stages[3].config.inception_reference" in err and str(npz) in err
    assert "mu (64,)" in err and "(2048,)" in err


def test_missing_inception_weights_stop_plan_and_the_preview_flag_skips_them(tmp_path, capsys, good):
    spec = write_spec(tmp_path, pretrain=folder(good), probe=folder(good))
    missing = tmp_path / "no" / "pt_inception.pth"
    args = [str(spec), f"root={tmp_path / 'out'}", f"stages.eval.config.inception_weights={missing}",
            "stages.eval.config.inception_reference_images=4"]
    assert main(["plan", *args]) == 2
    err = capsys.readouterr().err
    assert str(spec) in err and "stages[3].config.inception_weights" in err and str(missing) in err
    assert main(["plan", "--no-data-check", *args]) == 0
