"""Reduced acceptance experiment (benchmarks/tokenizer_probe.py at a smaller scale): real training on
SyntheticShapes at cpu-xs, a vtp tokenizer against an ae tokenizer of the same FLOPs and a random
encoder. The full-size figures come from the benchmark script."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "tokenizer_probe.py"


def _bench():
    spec = importlib.util.spec_from_file_location("tokenizer_probe", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_vtp_beats_ae_and_random_small(tmp_path):
    torch.set_num_threads(2)
    res = _bench().run_experiment(
        preset="cpu-xs", steps=80, batch=32, unique=2000, n_train=600, n_test=300, workdir=tmp_path,
        log=lambda _m: None,
    )
    assert res["vtp_loss_rec_last"] < res["vtp_loss_rec_first"]
    assert res["vtp_loss_clip_last"] < res["vtp_loss_clip_first"]
    assert res["zero_shot_vtp"] > 1.5 * res["zero_shot_chance"]
    assert res["probe_vtp"] > res["probe_random"]
    assert res["probe_vtp"] > res["probe_ae"]
