"""extract -> dit -> eval stage adapters end to end on a stand-in tokenizer (defined here).

The real tokenizer lives in vtp.models.tokenizer; these tests check the adapters' plumbing (shards,
normalisation, resumption, metric names, copied checkpoint figures) with a fixed patchify pair.
"""

import json

import pytest
import torch
from torch import nn

import vtp.stages.eval as eval_stage
import vtp.stages.extract as extract_stage
from vtp.data.synthetic import render_batch
from vtp.eval.inception import fid_inception_v3
from vtp.jobs.context import RunContext
from vtp.stages import dit as dit_stage

FEAT = {"train_samples": 400, "heldout_samples": 100, "epochs": 2, "batch_size": 50, "width": 8}


class PatchTokenizer(nn.Module):
    """A fixed linear autoencoder: 4x4 patches -> 8 channels (orthonormal), decode = transpose."""

    image_size, patch_size, latent_dim = 16, 4, 8

    def __init__(self):
        super().__init__()
        q, _ = torch.linalg.qr(torch.randn(48, 48, generator=torch.Generator().manual_seed(0)))
        self.register_buffer("w", q[:, : self.latent_dim].contiguous())  # (48, 8)

    def encode(self, x):
        p = nn.functional.unfold(x, 4, stride=4)  # (B, 48, 16)
        return (self.w.T @ p).unflatten(-1, (4, 4))  # (B, 8, 4, 4)

    def decode(self, z):
        return nn.functional.fold(self.w @ z.flatten(2), (16, 16), 4, stride=4)  # (B, 3, 16, 16)


class Recorder:
    def __init__(self):
        self.metrics, self.params, self.tags = {}, {}, {}

    def log_metrics(self, m, step):
        self.metrics.update(m)

    def log_params(self, p):
        self.params.update(p)

    def log_artifact(self, p):
        pass

    def set_tags(self, t):
        self.tags.update(t)


@pytest.fixture
def sweep(tmp_path, monkeypatch):
    tok_dir = tmp_path / "runs" / "tok"
    (tok_dir / "checkpoints").mkdir(parents=True)
    (tok_dir / "checkpoints" / "3.pt").write_bytes(b"stand-in")
    (tok_dir / "checkpoints" / "3.json").write_text(json.dumps(
        {"k": 3, "step": 30, "samples_seen": 960, "flops": 1.5e12, "encoder_params": 12345}))
    tok = PatchTokenizer()
    loader = lambda ctx: (tok, json.loads((tok_dir / "checkpoints" / "3.json").read_text()))  # noqa: E731
    monkeypatch.setattr(extract_stage, "load_checkpoint_tokenizer", loader)
    monkeypatch.setattr(eval_stage, "load_checkpoint_tokenizer", loader)
    return tmp_path, tok_dir


def ctx(sweep_dir, stage, config, parents, tracker=None):
    run_dir = sweep_dir / "runs" / stage
    run_dir.mkdir(parents=True, exist_ok=True)
    return RunContext(key=stage, stage=stage, config=config, run_dir=run_dir, parents=parents, checkpoint=3,
                      tracker=tracker or Recorder())


def test_pipeline_logs_the_agreed_metrics(sweep):
    root, tok_dir = sweep
    ext = extract_stage.run(ctx(root, "extract", {"num_images": 120, "shard_size": 50, "stats_samples": 100},
                                {"tokenizer": tok_dir}))
    assert ext["num_latents"] == 240 and ext["latent_shape"] == [8, 4, 4]  # flips doubled it
    ext_dir = root / "runs" / "extract"
    manifest = json.loads((ext_dir / "latents.json").read_text())
    assert len(manifest["shards"]) == 3 and len(manifest["mean"]) == 8
    lat, lab = extract_stage.load_shards(ext_dir)
    assert torch.allclose(lat[:50], PatchTokenizer().encode(render_batch(0, 50, image_size=16, seed=0)[0]),
                          atol=1e-5)
    # a requeued job finds its shards and writes the same manifest
    mtime = (ext_dir / "shards" / "00000.pt").stat().st_mtime_ns
    extract_stage.run(ctx(root, "extract", {"num_images": 120, "shard_size": 50, "stats_samples": 100},
                          {"tokenizer": tok_dir}))
    assert (ext_dir / "shards" / "00000.pt").stat().st_mtime_ns == mtime

    d = dit_stage.run(ctx(root, "dit", {"steps": 20, "batch_size": 16, "log_every": 10},
                          {"tokenizer": tok_dir, "extract": ext_dir}))
    assert d["steps"] == 20 and (root / "runs" / "dit" / "dit_ema.pt").is_file()

    rec = Recorder()
    eval_cfg = {"num_samples": 40, "steps": 3, "reference_images": 100, "feature_net": FEAT, "precision_recall": True,
                "probe_train_images": 0,  # the stand-in has no features()
                "recon_images": 30}
    parents = {"tokenizer": tok_dir, "extract": ext_dir, "dit": root / "runs" / "dit"}
    out = eval_stage.run(ctx(root, "eval", eval_cfg, parents, rec))
    assert rec.tags["gen_fd_network"].startswith("shapes-cnn-") and rec.params["gen_fd_network"] == rec.tags["gen_fd_network"]
    assert set(rec.metrics) == {"gen_fd", "gen_fd_network_accuracy", "oracle_accuracy", "tokenizer_flops",
                                "tokenizer_params", "tokenizer_samples_seen", "precision", "recall",
                                "recon_psnr", "recon_ssim", "recon_fd", "oracle_accuracy_real", "oracle_accuracy_recon",
                                "oracle_chance"}
    # the stand-in keeps 8 of 48 dimensions per patch: a real but lossy reconstruction
    assert 5 < rec.metrics["recon_psnr"] < 60 and 0 < rec.metrics["recon_ssim"] < 1 and rec.metrics["recon_fd"] > 0
    assert 0 <= rec.metrics["oracle_accuracy_recon"] <= 1 and 0 <= rec.metrics["oracle_accuracy_real"] <= 1
    # the held-out metrics come after the others and change none of them
    without = Recorder()
    eval_stage.run(ctx(root, "eval", {**eval_cfg, "recon_images": 0}, parents, without))
    assert without.metrics == {k: v for k, v in rec.metrics.items() if k in without.metrics}
    assert not {"recon_psnr", "recon_fd", "oracle_accuracy_recon"} & set(without.metrics)
    assert rec.metrics["tokenizer_flops"] == 1.5e12 and rec.metrics["tokenizer_params"] == 12345
    assert rec.metrics["gen_fd"] > 0 and 0 <= rec.metrics["oracle_accuracy"] <= 1
    assert out["gen_fd"] == rec.metrics["gen_fd"]
    assert list((root / "cache").glob("featnet-*.pt")) and list((root / "cache").glob("refstats-*.npz"))


@pytest.mark.slow  # Inception at 299 px on CPU: ~80 s contended
def test_eval_with_unverified_inception_weights_is_not_called_gfid(sweep, tmp_path):
    root, tok_dir = sweep
    ext_dir = root / "runs" / "extract"
    extract_stage.run(ctx(root, "extract", {"num_images": 40, "stats_samples": 40}, {"tokenizer": tok_dir}))
    dit_stage.run(ctx(root, "dit", {"steps": 2, "batch_size": 4}, {"extract": ext_dir}))
    weights = tmp_path / "pt_inception-test.pth"
    torch.save(fid_inception_v3().state_dict(), weights)
    rec = Recorder()
    eval_stage.run(ctx(root, "eval", {"num_samples": 6, "steps": 2, "reference_images": 20, "feature_net": FEAT,
                                      "inception_weights": str(weights), "inception_reference_images": 6,
                                      "probe_train_images": 0, "recon_images": 6},
                       {"tokenizer": tok_dir, "extract": ext_dir, "dit": root / "runs" / "dit"}, rec))
    assert "gfid" not in rec.metrics and rec.metrics["inception_fd"] >= 0
    assert "rfid" not in rec.metrics and rec.metrics["inception_recon_fd"] >= 0  # the reconstruction twin
    assert rec.tags["inception_network"].startswith("inception-v3-fid-unverified-")


def test_bad_config_names_the_key(sweep):
    root, tok_dir = sweep
    with pytest.raises(Exception, match=r"extract\.num_imgs: unknown key"):
        extract_stage.run(ctx(root, "extract", {"num_imgs": 3}, {"tokenizer": tok_dir}))
