"""A checkpoint written on one device resumes on another: the RNG states stay CPU tensors whatever
`map_location` the rest of the state took (torch.set_rng_state accepts only a CPU ByteTensor; a GPU
job that loaded its checkpoint with map_location="cuda" crashed at every requeue)."""

from __future__ import annotations

import torch

from vtp.config import from_dict
from vtp.train.checkpoint import checkpoint_dir, load_resume_state
from vtp.train.config import TokenizerTrainConfig
from vtp.train.loop import train

TINY = dict(encoder="cpu-xs", objective="vtp", batch_size=8, budget_steps=2, unique_samples=8, latent_dim=8,
            decoder_depth=1, checkpoints=[40], log_every=1)


def _quiet(_msg: str) -> None:
    pass


def test_a_cpu_checkpoint_resumes_on_another_device(tmp_path):
    cfg = from_dict(TokenizerTrainConfig, TINY)
    train(cfg, run_dir=tmp_path, log=_quiet, device="cpu")
    # The run is complete, so the resume on "meta" (a device with no data, like a GPU seen from a CPU
    # checkpoint) loads model, optimizer, teacher, centres and RNG states, then has nothing left to do.
    out = train(cfg, run_dir=tmp_path, log=_quiet, device="meta")
    assert out["steps"] == 2


def test_resume_state_keeps_rng_on_the_cpu_and_moves_the_rest(tmp_path):
    cfg = from_dict(TokenizerTrainConfig, TINY)
    train(cfg, run_dir=tmp_path, log=_quiet)
    state = load_resume_state(checkpoint_dir(tmp_path) / "40.pt", device="meta")
    assert state["torch_rng"].device.type == "cpu" and state["torch_rng"].dtype == torch.uint8
    assert state["centers"]["cls"].device.type == "meta"
    torch.set_rng_state(state["torch_rng"])  # accepted: a CPU ByteTensor
