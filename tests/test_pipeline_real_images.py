"""Issue 13's acceptance test: the tiny pipeline with every stage on REAL images, not generated ones.

The images are scikit-learn's bundled handwritten digits (`sklearn.datasets.load_digits`: 1,797 real
8x8 grayscale scans of 10 digits, shipped inside the wheel, nothing downloaded), written as an
ImageFolder (`<root>/<zero..nine>/<i>.png`, upscaled to 16 px RGB) with the reader's captions sidecar
(`captions.tsv`, vtp.data.folder) so the CLIP half of `vtp` trains on text. The scans are split in two
sets, as the paper's study has two: pre-training data = the first 1,000 (tokenizer, decoder), probe set
= the other 797 (extract, dit, eval). sweeps/tiny.yaml with test_pipeline_tiny's shrink, plus the
decoder fine-tune of sweeps/mini.yaml, runs on the local executor with MLflow in SQLite.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from PIL import Image

from tests.test_pipeline_tiny import SHRINK, TINY
from vtp.data.config import DatasetConfig
from vtp.data.source import describe
from vtp.sweep.launcher import launch, wait
from vtp.sweep.spec import load_sweep
from vtp.tracking.export import export_snapshot

NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
PRETRAIN = 1000  # the first 1,000 scans; the probe set is the other 797
SIZE = 16


def write_digits(root: Path, images: np.ndarray, labels: np.ndarray) -> dict:
    """root/<digit name>/<i>.png (16 px RGB) and root/captions.tsv; returns the `dataset:` mapping."""
    lines = []
    for i, (img, y) in enumerate(zip(images, labels)):
        gray = Image.fromarray(np.round(img * 255 / 16).astype(np.uint8))  # scans hold 0..16
        rel = f"{NAMES[y]}/{i:04d}.png"
        (root / NAMES[y]).mkdir(parents=True, exist_ok=True)
        gray.resize((SIZE, SIZE), Image.BILINEAR).convert("RGB").save(root / rel)
        lines.append(f"{rel}\ta scan of a handwritten {NAMES[y]}")
    (root / "captions.tsv").write_text("\n".join(lines) + "\n")
    return {"kind": "imagefolder", "path": str(root)}


def tiny_spec_with_decoder(path: Path, pretrain: dict, probe: dict) -> Path:
    """sweeps/tiny.yaml on the two folders, with mini.yaml's decoder fine-tune between tokenizer and
    extract, so that every stage that reads data runs."""
    spec = yaml.safe_load(TINY.read_text())
    spec["name"] = "tiny-digits"
    spec["fixed"].update(image_size=SIZE, pretrain_data=pretrain, probe_data=probe, unique_samples=PRETRAIN)
    stages = {s["name"]: s for s in spec["stages"]}
    stages["tokenizer"]["config"]["patch_size"] = 4  # a 4x4 token grid, as tiny's 32 px / 8
    decoder = {"name": "decoder", "target": "vtp.stages.decoder:run", "after": "tokenizer",
               "config": {"steps": 10, "batch_size": 16, "lr": 1.0e-3, "lambda_gan": 0.0,
                          "unique_samples": "${fixed.unique_samples}", "dataset": "${fixed.pretrain_data}",
                          "log_every": 5, "checkpoint_every": 10}}
    stages["extract"]["after"] = "decoder"
    spec["stages"].insert(1, decoder)
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_tiny_pipeline_on_real_handwritten_digits(tmp_path):
    from sklearn.datasets import load_digits

    digits = load_digits()
    pretrain = write_digits(tmp_path / "pretrain", digits.images[:PRETRAIN], digits.target[:PRETRAIN])
    probe = write_digits(tmp_path / "probe", digits.images[PRETRAIN:], digits.target[PRETRAIN:])
    spec = tiny_spec_with_decoder(tmp_path / "tiny_digits.yaml", pretrain, probe)
    # the probe set holds 797 images: the feature net's 500 + 200 held out fit in it
    overrides = [f"root={tmp_path / 'out'}", *SHRINK, "stages.eval.config.feature_net.heldout_samples=200"]
    sweep = load_sweep(spec, overrides)  # the plan-time data check reads both folders
    stages = ("tokenizer", "decoder", "extract", "dit", "eval")
    assert len(launch(sweep).submitted) == 5
    st = wait(sweep.folder, timeout_s=900, poll_s=1)
    assert st.counts() == {s: {"done": 1} for s in stages}

    runs = pd.read_parquet(export_snapshot(sweep.folder, tmp_path / "runs.parquet"))
    assert sorted(runs["stage"]) == sorted(stages) and (runs["status"] == "FINISHED").all()
    row = {s: runs[runs["stage"] == s].iloc[0] for s in stages}

    # pre-training data in the tokenizer and decoder runs, the probe set in extract and eval
    fp = {name: describe(DatasetConfig(**data)).sha256[:16] for name, data in (("pretrain", pretrain), ("probe", probe))}
    assert fp["pretrain"] != fp["probe"]
    for stage, data, n in (("tokenizer", "pretrain", PRETRAIN), ("decoder", "pretrain", PRETRAIN),
                           ("extract", "probe", 797), ("eval", "probe", 797)):
        assert row[stage]["tag.dataset.fingerprint"] == fp[data], stage
        assert int(row[stage]["tag.dataset.num_images"]) == n and int(row[stage]["tag.dataset.num_classes"]) == 10, stage

    ev = row["eval"]
    # the generation metric is over a network trained on the probe folder, named by its weights' sha256
    saved = list(sweep.folder.rglob("featnet-*.pt"))
    assert len(saved) == 1, saved
    sha = hashlib.sha256(saved[0].read_bytes()).hexdigest()
    assert ev["tag.gen_fd_network"] == f"probe-cnn-{sha[:8]}"  # the built-in shapes would be shapes-cnn-...
    assert ev["metric.gen_fd"] > 0 and "metric.gfid" not in runs.columns
    for name in ("oracle_accuracy", "oracle_accuracy_real", "oracle_accuracy_recon", "linear_probe",
                 "zero_shot_accuracy"):
        assert 0 <= ev[f"metric.{name}"] <= 1, name
    assert ev["metric.recon_psnr"] > 0 and 0 < ev["metric.recon_ssim"] <= 1 and ev["metric.recon_fd"] > 0
    assert ev["metric.corrupt_images"] == 0
