"""extract -> dit -> eval on a real (test-written) ImageFolder probe set, with the stand-in tokenizer of
test_stages_pipeline: the classes come from the folders, the DiT conditions on that many, the fallback
feature network is trained on the folder and named by its weights' sha256, reference statistics are
keyed by the probe set's fingerprint and that hash, and every stage records the same fingerprint."""

import hashlib
import json
import warnings

import numpy as np
import pytest
import torch

import vtp.stages.eval as eval_stage
import vtp.stages.extract as extract_stage
from tests.eval_gen.test_stages_pipeline import PatchTokenizer, Recorder, ctx
from tests.imagefolders import COLORS, write_imagefolder
from vtp.config import ConfigError
from vtp.data.config import DatasetConfig
from vtp.data.sets import LabelledImages
from vtp.data.source import describe
from vtp.eval.feature_config import FeatureNetConfig
from vtp.eval.features import load_or_train_feature_net
from vtp.eval.probe import probe_set_linear_probe
from vtp.eval.refstats import reference_stats
from vtp.stages import dit as dit_stage
from vtp.train.dit import load_dit_ema

FEAT = {"train_samples": 40, "heldout_samples": 18, "epochs": 2, "batch_size": 20, "width": 8}


def folder(path) -> dict:
    return {"kind": "imagefolder", "path": str(path)}


def test_a_real_probe_set_through_extract_dit_and_eval(stages, probe_dir, tmp_path):
    root, tok_dir = stages
    ext_rec = Recorder()
    with pytest.warns(UserWarning, match="broken0.png"):
        ext = extract_stage.run(ctx(root, "extract", {"dataset": folder(probe_dir), "num_images": 61, "shard_size": 50,
                                                      "stats_samples": 50}, {"tokenizer": tok_dir}, ext_rec))
    ext_dir = root / "runs" / "extract"
    manifest = json.loads((ext_dir / "latents.json").read_text())
    assert manifest["classes"] == sorted(COLORS) and manifest["num_classes"] == 3
    assert ext["corrupt_images"] == 1 and ext["num_latents"] == 120  # 60 readable images and their flips
    lat, lab = extract_stage.load_shards(ext_dir)
    assert sorted(set(lab.tolist())) == [0, 1, 2] and (lab == 0).sum() == 2 * 20
    fingerprint = describe(DatasetConfig(kind="imagefolder", path=str(probe_dir))).sha256[:16]
    assert ext_rec.tags["dataset.fingerprint"] == ext["dataset.fingerprint"] == fingerprint

    dit_stage.run(ctx(root, "dit", {"steps": 4, "batch_size": 16}, {"extract": ext_dir}))
    assert load_dit_ema(root / "runs" / "dit" / "dit_ema.pt").num_classes == 3  # the folder's classes

    rec = Recorder()
    config = {"dataset": folder(probe_dir), "num_samples": 12, "steps": 2, "reference_images": 30,
              "feature_net": FEAT, "probe_train_images": 0, "recon_images": 8}  # the stand-in has no features()
    parents = {"tokenizer": tok_dir, "extract": ext_dir, "dit": root / "runs" / "dit"}
    with warnings.catch_warnings():  # whether a phase reads the broken file depends on the seeded order
        warnings.simplefilter("ignore", UserWarning)
        eval_stage.run(ctx(root, "eval", config, parents, rec))
    saved = list((root / "cache").glob("featnet-*.pt"))
    assert len(saved) == 1
    sha = hashlib.sha256(saved[0].read_bytes()).hexdigest()
    assert rec.tags["gen_fd_network"] == f"probe-cnn-{sha[:8]}" and rec.params["gen_fd_network"] == rec.tags["gen_fd_network"]
    assert torch.load(saved[0], weights_only=True)["state_dict"]["head.weight"].shape[0] == 3  # trained on 3 classes
    assert rec.tags["dataset.fingerprint"] == fingerprint and rec.metrics["corrupt_images"] >= 0
    assert rec.metrics["gen_fd"] > 0 and 0 <= rec.metrics["oracle_accuracy"] <= 1
    assert "gfid" not in rec.metrics and "inception_fd" not in rec.metrics
    # the reconstruction metrics and the oracle's controls, on the probe set's held-out tail
    assert {"recon_psnr", "recon_ssim", "recon_fd", "oracle_accuracy_real", "oracle_accuracy_recon"} <= set(rec.metrics)

    # eval given another dataset than the one the extract run encoded: refused, naming both
    other = write_imagefolder(tmp_path / "other", per_class=20)
    with pytest.raises(ConfigError, match="is not the data the extract run encoded"):
        eval_stage.run(ctx(root, "eval", {**config, "dataset": folder(other)}, parents, Recorder()))


def test_reference_statistics_of_a_probe_set_are_its_images_and_follow_its_fingerprint(tmp_path):
    root = write_imagefolder(tmp_path / "probe", per_class=4)
    probe = LabelledImages(DatasetConfig(kind="imagefolder", path=str(root)), image_size=16)
    calls = []

    def mean_rgb(x):
        calls.append(len(x))
        return x.mean((2, 3)).double()  # (B, 3)

    mu, cov = reference_stats(mean_rgb, network_id="mean-rgb", dim=3, probe=probe, num_images=10, cache_dir=tmp_path / "c")
    feats = mean_rgb(probe.batch(0, 10)[0]).numpy()
    np.testing.assert_allclose(mu, feats.mean(0), rtol=1e-6)
    np.testing.assert_allclose(cov, np.cov(feats, rowvar=False), rtol=1e-6, atol=1e-12)
    again = reference_stats(mean_rgb, network_id="mean-rgb", dim=3, probe=probe, num_images=10, cache_dir=tmp_path / "c")
    assert np.array_equal(again[0], mu) and len(list((tmp_path / "c").glob("refstats-*.npz"))) == 1  # cached
    reference_stats(mean_rgb, network_id="other-net", dim=3, probe=probe, num_images=10, cache_dir=tmp_path / "c")
    (root / "sky" / "extra.png").write_bytes((root / "sky" / "000.png").read_bytes())  # the data changed
    changed = LabelledImages(DatasetConfig(kind="imagefolder", path=str(root)), image_size=16)
    reference_stats(mean_rgb, network_id="mean-rgb", dim=3, probe=changed, num_images=10, cache_dir=tmp_path / "c")
    assert len(list((tmp_path / "c").glob("refstats-*.npz"))) == 3  # one per (data, network)
    with pytest.raises(ValueError, match="13 images|holds 13"):
        reference_stats(mean_rgb, network_id="x", dim=3, probe=changed, num_images=99, cache_dir=tmp_path / "c")


def test_a_retrained_feature_net_gets_a_new_name_and_new_statistics(tmp_path):
    """Same recipe, other weights (a retrained or replaced file): another name, another statistics key."""
    root = write_imagefolder(tmp_path / "probe", per_class=20)
    probe = LabelledImages(DatasetConfig(kind="imagefolder", path=str(root)), image_size=16)
    cfg = FeatureNetConfig(image_size=16, **FEAT)
    first = load_or_train_feature_net(cfg, tmp_path / "cache", probe)
    path = next((tmp_path / "cache").glob("featnet-*.pt"))
    assert first.name == f"probe-cnn-{hashlib.sha256(path.read_bytes()).hexdigest()[:8]}"
    assert first.model.head.out_features == 3
    other = load_or_train_feature_net(FeatureNetConfig(image_size=16, **{**FEAT, "seed": 1}), tmp_path / "other", probe)
    path.write_bytes(next((tmp_path / "other").glob("featnet-*.pt")).read_bytes())  # stale cache entry replaced
    reloaded = load_or_train_feature_net(cfg, tmp_path / "cache", probe)
    assert reloaded.name == other.name != first.name

    def stats(net):
        return reference_stats(net.model.features, network_id=net.weights_sha256, dim=net.model.feature_dim,
                               probe=probe, num_images=20, cache_dir=tmp_path / "stats")

    stats(first)
    stats(reloaded)
    assert len(list((tmp_path / "stats").glob("refstats-*.npz"))) == 2  # never the first net's statistics


class PooledPatches(PatchTokenizer):
    def features(self, x):
        z = self.encode(x).flatten(2).transpose(1, 2)  # (B, 16, 8)
        return None, None, z


def test_linear_probe_on_the_probe_sets_classes(tmp_path):
    root = write_imagefolder(tmp_path / "probe", per_class=20)  # colour classes: linearly separable
    probe = LabelledImages(DatasetConfig(kind="imagefolder", path=str(root)), image_size=16)
    acc = probe_set_linear_probe(PooledPatches(), probe, n_train=40, n_test=20)
    assert acc > 0.9
    with pytest.raises(ValueError, match="needs 50 \\+ 20 images, it holds 60"):
        probe_set_linear_probe(PooledPatches(), probe, n_train=50, n_test=20)
