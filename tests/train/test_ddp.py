"""Data parallelism: 2 processes (gloo, CPU) train what 1 process trains at the same global batch.

Losses at every logged step agree to 1e-4 relative and the final weights to 1e-4, for the tokenizer
(objectives vtp and ae) and the DiT. The vtp objective's single-process reference accumulates 2
micro-batches of the per-rank size: KoLeo is computed per device batch (as DINOv2 does per rank),
and the CLIP loss sees the whole batch in both (negatives gathered from both ranks with gradients;
a gradient cache over the 2 micro-batches in one process). The 2-rank runs share one start-up of
the processes (module fixture): starting torch twice costs more than the training.
"""

from __future__ import annotations

import pytest
import torch

from tests.train.ddp_worker import dit, run_ranks, tokenizer
from vtp.train.checkpoint import load_state
from vtp.train.distributed import Dist
from vtp.train.dit import load_dit_ema

TINY = dict(encoder="cpu-xs", batch_size=16, budget_steps=4, unique_samples=64, latent_dim=8, decoder_depth=1,
            checkpoints=[20, 40], log_every=1, warmup_fraction=0.25, resume_every_s=0)
DIT = dict(steps=4, batch_size=8, checkpoint_every=2, log_every=1, lr=1e-3)
REFERENCE = {"vtp": dict(TINY, objective="vtp", micro_batch_size=8), "ae": dict(TINY, objective="ae")}


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    jobs = [("tokenizer", dict(cfg=dict(TINY, objective=o), run_dir=str(root / o))) for o in ("vtp", "ae")]
    jobs.append(("dit", dict(cfg=DIT, run_dir=str(root / "dit"))))
    results = run_ranks(2, "several", root / "out.json", jobs=jobs)
    assert not list(root.glob("*.err")), "a rank failed"
    return root, dict(zip(("vtp", "ae", "dit"), results))


def _close(a: float, b: float, rel: float = 1e-4) -> bool:
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-6)


def _same_metrics(one: list, two: list, names) -> None:
    assert [s for s, _ in one] == [s for s, _ in two]
    for (step, m1), (_, m2) in zip(one, two):
        for k, v in m1.items():
            if k in names or k.startswith("loss/"):
                assert _close(v, m2[k]), f"step {step} {k}: 1 process {v}, 2 processes {m2[k]}"


@pytest.mark.parametrize("objective", ["vtp", "ae"])
def test_two_ranks_train_the_tokenizer_one_trains(two_ranks, tmp_path, objective):
    root, runs = two_ranks
    torch.set_num_threads(1)
    one = tokenizer(Dist(), REFERENCE[objective], str(tmp_path))
    two = runs[objective]
    _same_metrics(one["metrics"], two["metrics"], ("grad_norm", "samples_seen", "flops"))
    assert two["summary"]["samples_seen"] == one["summary"]["samples_seen"]  # counted over all ranks
    a, b = load_state(tmp_path / "checkpoints/40.pt"), load_state(root / objective / "checkpoints/40.pt")
    for part in ("model", "teacher") if objective == "vtp" else ("model",):
        for k, t in a[part].items():
            torch.testing.assert_close(t, b[part][k], rtol=1e-4, atol=1e-4, msg=f"{part}.{k}")


def test_two_ranks_train_the_dit_one_trains(two_ranks, tmp_path):
    root, runs = two_ranks
    torch.set_num_threads(1)
    one = dit(Dist(), DIT, str(tmp_path))
    _same_metrics(one["metrics"], runs["dit"]["metrics"], ("dit_loss", "dit_mse", "dit_cos", "dit_grad_norm"))
    a, b = load_dit_ema(tmp_path / "dit_ema.pt"), load_dit_ema(root / "dit" / "dit_ema.pt")
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(pa, pb, rtol=1e-4, atol=1e-4, msg=name)
