"""The rolling resume state: written every `resume_every_s` between the scientific checkpoints,
only the newest kept, preferred at resume when it is ahead, removed once the run is complete."""

from __future__ import annotations

import json

import torch

from vtp.config import from_dict
from vtp.train.checkpoint import latest_checkpoint, load_state, resume_source
from vtp.train.config import TokenizerTrainConfig
from vtp.train.loop import train

TINY = dict(encoder="cpu-xs", objective="vtp", batch_size=8, budget_steps=6, unique_samples=16, latent_dim=8,
            decoder_depth=1, checkpoints=[40], log_every=1)


def _quiet(_msg: str) -> None:
    pass


def test_a_preempted_run_loses_minutes_not_a_checkpoint_interval(tmp_path):
    torch.set_num_threads(1)
    cfg = from_dict(TokenizerTrainConfig, {**TINY, "resume_every_s": 1e-9})  # due after every step
    full = train(cfg, run_dir=tmp_path / "full", log=_quiet)
    assert not (tmp_path / "full/resume.pt").exists()  # the last checkpoint holds the full state

    lines = []
    train(cfg, run_dir=tmp_path / "cut", log=lines.append, stop_after_step=4)
    assert latest_checkpoint(tmp_path / "cut") is None  # no scientific checkpoint before step 6
    assert json.loads((tmp_path / "cut/resume.json").read_text()) == {"step": 4}
    assert sorted(p.name for p in (tmp_path / "cut").iterdir()) == ["resume.json", "resume.pt"]  # newest only
    assert resume_source(tmp_path / "cut") == tmp_path / "cut/resume.pt"
    assert load_state(tmp_path / "cut/resume.pt")["step"] == 4

    lines.clear()
    resumed = train(cfg, run_dir=tmp_path / "cut", log=lines.append)
    assert any("resumed from resume.pt at step 4" in line for line in lines)
    assert resumed["final_losses"] == full["final_losses"]
    a, b = load_state(tmp_path / "full/checkpoints/40.pt"), load_state(tmp_path / "cut/checkpoints/40.pt")
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def test_a_checkpoint_newer_than_the_resume_state_wins(tmp_path):
    cfg = from_dict(TokenizerTrainConfig, {**TINY, "checkpoints": [20, 40], "resume_every_s": 0})
    train(cfg, run_dir=tmp_path, log=_quiet, stop_after_step=4)  # checkpoint 20 at step 3
    (tmp_path / "resume.pt").write_bytes(b"stale")
    (tmp_path / "resume.json").write_text(json.dumps({"step": 2}))
    assert resume_source(tmp_path) == tmp_path / "checkpoints/20.pt"
