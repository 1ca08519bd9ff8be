"""Reduced acceptance check: DiT samples on a trained vtp tokenizer's latents score a lower gen_fd
(fallback network) than the same DiT, same steps, on a random-init tokenizer's latents.

The full comparison, with a decoder-fitted random encoder as the fair baseline, is
benchmarks/probe_gfd.py; this one is small enough for CI's slow lane.
"""

import pytest
import torch

from benchmarks.probe_gfd import probe, save_untrained
from vtp.config import from_dict
from vtp.train.config import TokenizerTrainConfig
from vtp.train.loop import train


@pytest.mark.slow  # ~2-3 min on 2 cores: a tokenizer, a feature net and two DiTs
def test_trained_vtp_tokenizer_beats_random_init(tmp_path):
    torch.set_num_threads(2)
    cfg = from_dict(TokenizerTrainConfig, {
        "encoder": "cpu-xs", "objective": "vtp", "image_size": 16, "patch_size": 4, "latent_dim": 8,
        "batch_size": 32, "budget_steps": 60, "unique_samples": 1000, "checkpoints": [40], "log_every": 100})
    train(cfg, run_dir=tmp_path / "tok_trained", device="cpu", log=lambda s: None)
    save_untrained(cfg, tmp_path / "tok_random", seed=1, fit_steps=0, batch=32)
    ext = {"num_images": 500, "stats_samples": 500}
    dit = {"model": "DiT-cpu", "steps": 150, "batch_size": 32, "lr": 1e-3, "ema_decay": 0.99}
    ev = {"num_samples": 200, "steps": 10, "reference_images": 500,
          "feature_net": {"train_samples": 2000, "epochs": 3, "width": 16}}
    trained = probe("trained", tmp_path / "tok_trained", tmp_path, ext, dit, ev)
    random = probe("random", tmp_path / "tok_random", tmp_path, ext, dit, ev)
    assert trained["gen_fd_network"] == random["gen_fd_network"]
    assert trained["gen_fd"] < random["gen_fd"], (trained["gen_fd"], random["gen_fd"])
