"""Real (tiny) training runs: resume equivalence, checkpoint files, NaN handling, the stage adapter."""

from __future__ import annotations

import json

import pytest
import torch

from vtp.config import ConfigError, from_dict
from vtp.jobs.context import RunContext
from vtp.stages.tokenizer import run as run_stage
from vtp.train import checkpoint
from vtp.train.checkpoint import latest_checkpoint, load_state, load_tokenizer
from vtp.train.config import TokenizerTrainConfig
from vtp.train.errors import NonFiniteLossError
from vtp.train.loop import train

TINY = dict(
    encoder="cpu-xs", objective="vtp", batch_size=8, budget_steps=8, unique_samples=20, latent_dim=8,
    decoder_depth=1, checkpoints=[10, 20, 40], log_every=4,
)


def _cfg(**kw) -> TokenizerTrainConfig:
    return from_dict(TokenizerTrainConfig, {**TINY, **kw})


def _quiet(_msg: str) -> None:
    pass


def test_resume_is_bit_for_bit(tmp_path):
    torch.set_num_threads(1)
    cfg = _cfg()
    full = train(cfg, run_dir=tmp_path / "full", log=_quiet)
    # a "preempted" run: stops after step 5 (checkpoints at steps 2 and 4 exist), then resumes
    train(cfg, run_dir=tmp_path / "cut", log=_quiet, stop_after_step=5)
    assert latest_checkpoint(tmp_path / "cut") == 20
    resumed = train(cfg, run_dir=tmp_path / "cut", log=_quiet)
    assert resumed["final_losses"] == full["final_losses"]
    a, b = load_state(tmp_path / "full/checkpoints/40.pt"), load_state(tmp_path / "cut/checkpoints/40.pt")
    for part in ("model", "teacher"):
        for k in a[part]:
            assert torch.equal(a[part][k], b[part][k]), f"{part}.{k} differs after resume"
    assert torch.equal(a["centers"]["cls"], b["centers"]["cls"])
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert torch.equal(sa["exp_avg_sq"], sb["exp_avg_sq"])


def test_checkpoint_files_and_load_tokenizer(tmp_path):
    cfg = _cfg(objective="ae", budget_steps=4)
    seen = []
    out = train(cfg, run_dir=tmp_path, log=_quiet, progress=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1] == (4, 4)  # the live table's bar ends full
    meta = json.loads((tmp_path / "checkpoints/20.json").read_text())
    assert meta["k"] == 20 and meta["step"] == 2 and meta["samples_seen"] == 2  # ae sees B/8 = 1 image a step
    assert meta["flops"] == pytest.approx(out["flops"] / 2)
    assert meta["encoder_params"] == out["encoder_params"]
    model = load_tokenizer(tmp_path / "checkpoints/40.pt")
    assert not model.training
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    z = model.encode(x)
    assert z.shape == (2, 8, 8, 8) and model.decode(z).shape == x.shape
    assert (model.latent_dim, model.patch_size, model.image_size) == (8, 4, 32)


def test_nan_loss_fails_with_reason(tmp_path):
    cfg = _cfg(objective="ae", budget_steps=3, lr=1e30, grad_clip=1e30)
    with pytest.raises(NonFiniteLossError, match="non-finite loss at step"):
        train(cfg, run_dir=tmp_path, log=_quiet)


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="budget"):
        from_dict(TokenizerTrainConfig, {"encoder": "cpu-xs"})
    with pytest.raises(ConfigError, match="valid presets"):
        from_dict(TokenizerTrainConfig, {"encoder": "XXL", "budget_steps": 1})
    with pytest.raises(ConfigError, match="objective"):
        from_dict(TokenizerTrainConfig, {"objective": "mae", "budget_steps": 1})


class _Recorder:
    def __init__(self):
        self.metrics, self.params, self.tags = [], {}, {}

    def log_params(self, params):
        self.params.update(params)

    def log_metrics(self, metrics, step):
        self.metrics.append((step, dict(metrics)))

    def log_artifact(self, path):
        pass

    def set_tags(self, tags):
        self.tags.update(tags)


def test_stage_adapter_logs_and_resumes(tmp_path):
    rec = _Recorder()
    ctx = RunContext(key="k1", stage="tokenizer", config={**TINY, "budget_steps": 4}, run_dir=tmp_path, tracker=rec)
    result = run_stage(ctx)
    assert result["steps"] == 4 and result["checkpoints"] == [10, 20, 40]
    step, last = rec.metrics[-1]
    assert step == 4 and {"loss/total", "loss/clip", "loss/dino", "flops", "samples_seen", "samples_per_s"} <= set(last)
    assert rec.tags["objective"] == "vtp"
    again = run_stage(ctx)  # a requeued job finds everything done
    assert again["steps"] == 4


def test_only_the_newest_checkpoint_keeps_the_resume_state(tmp_path, monkeypatch):
    cfg = _cfg(budget_steps=4)
    train(cfg, run_dir=tmp_path / "last", log=_quiet)
    newest = load_state(tmp_path / "last/checkpoints/40.pt")
    assert {"optimizer", "teacher", "centers", "torch_rng"} <= set(newest)
    for k in (10, 20):
        pt = tmp_path / f"last/checkpoints/{k}.pt"
        assert set(load_state(pt)) == {"spec", "model", "config", "step"}
        assert load_tokenizer(pt).encode(torch.rand(1, 3, 32, 32)).shape == (1, 8, 8, 8)  # downstream still loads it
        assert json.loads((tmp_path / f"last/checkpoints/{k}.json").read_text())["weights_only"] is True
    assert "weights_only" not in json.loads((tmp_path / "last/checkpoints/40.json").read_text())
    size = {k: (tmp_path / f"last/checkpoints/{k}.pt").stat().st_size for k in (20, 40)}
    assert size[20] < size[40] / 2  # the optimizer moments and the teacher were most of the bytes
    # trimmed files are not read again at later checkpoints
    monkeypatch.setattr(checkpoint, "load_state", lambda *a, **k: pytest.fail("read a trimmed checkpoint"))
    checkpoint.trim_older(tmp_path / "last", 40)

    train(_cfg(budget_steps=4, full_state_checkpoints="all"), run_dir=tmp_path / "all", log=_quiet)
    assert "optimizer" in load_state(tmp_path / "all/checkpoints/10.pt")
