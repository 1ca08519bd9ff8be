"""Acceptance experiment: on SyntheticShapes at a CPU preset, a `vtp` tokenizer vs an `ae` tokenizer
trained with the same FLOPs vs a random-init encoder.

Prints RESULT lines: each loss's first/last logged value of the vtp run, the bottleneck linear-probe
top-1 of the three encoders, and the vtp tokenizer's zero-shot top-1 (chance = 1/20).

    PYTHONPATH=. python benchmarks/tokenizer_probe.py [--preset cpu-xs --steps 400 --batch 64]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from vtp.config import from_dict
from vtp.data.synthetic import NUM_CLASSES, SyntheticShapes, class_names
from vtp.eval.probe import synthetic_linear_probe
from vtp.eval.zeroshot import zero_shot_accuracy
from vtp.flops.tokenizer import train_flops
from vtp.train.budget import resolve
from vtp.train.checkpoint import load_tokenizer
from vtp.train.config import TokenizerTrainConfig
from vtp.train.loop import build_model, train


class LossCurve:
    """A Tracker that keeps the logged losses in memory."""

    def __init__(self):
        self.rows: list[tuple[int, dict[str, float]]] = []

    def log_params(self, params):
        pass

    def log_metrics(self, metrics, step):
        self.rows.append((step, {k[5:]: v for k, v in metrics.items() if k.startswith("loss/")}))

    def log_artifact(self, path):
        pass

    def set_tags(self, tags):
        pass


def _window_means(rows: list[tuple[int, dict[str, float]]], frac: float = 0.2) -> tuple[dict, dict]:
    n = max(1, int(len(rows) * frac))
    keys = rows[0][1].keys()
    first = {k: sum(r[k] for _, r in rows[:n]) / n for k in keys}
    last = {k: sum(r[k] for _, r in rows[-n:]) / n for k in keys}
    return first, last


def run_experiment(
    *, preset: str = "cpu-xs", steps: int = 400, batch: int = 64, unique: int = 5000, n_train: int = 2000,
    n_test: int = 1000, lr: float = 2e-3, workdir: Path, log=print,
) -> dict[str, float]:
    common = dict(
        encoder=preset, batch_size=batch, unique_samples=unique, lr=lr, latent_dim=16, decoder_depth=2,
        checkpoints=[40], log_every=5, warmup_fraction=0.05,
    )
    vtp_cfg = from_dict(TokenizerTrainConfig, dict(common, objective="vtp", budget_steps=steps))
    flops = train_flops(vtp_cfg)
    ae_cfg = from_dict(TokenizerTrainConfig, dict(common, objective="ae", budget_flops=flops))
    res: dict[str, float] = {"budget_flops": flops, "ae_steps": resolve(ae_cfg).steps, "vtp_steps": steps}

    curve = LossCurve()
    t0 = time.perf_counter()
    train(vtp_cfg, run_dir=workdir / "vtp", tracker=curve, log=log)
    res["vtp_train_s"] = time.perf_counter() - t0
    first, last = _window_means(curve.rows)
    for k in first:
        res[f"vtp_loss_{k}_first"], res[f"vtp_loss_{k}_last"] = first[k], last[k]
    # DINO/iBOT targets sharpen less while the teacher temperature warms up (their entropy rises by
    # construction), so those losses are also compared from the end of that warm-up on.
    warm = vtp_cfg.teacher_temp_warmup_fraction * steps
    after, _ = _window_means([r for r in curve.rows if r[0] > warm])
    for k in after:
        res[f"vtp_loss_{k}_after_warmup"] = after[k]
    t0 = time.perf_counter()
    train(ae_cfg, run_dir=workdir / "ae", log=log)
    res["ae_train_s"] = time.perf_counter() - t0

    torch.manual_seed(1234)
    random_model = build_model(vtp_cfg, resolve(vtp_cfg)).eval()
    vtp_model = load_tokenizer(workdir / "vtp/checkpoints/40.pt")
    ae_model = load_tokenizer(workdir / "ae/checkpoints/40.pt")
    for name, model in (("vtp", vtp_model), ("ae", ae_model), ("random", random_model)):
        res[f"probe_{name}"] = synthetic_linear_probe(model, image_size=32, n_train=n_train, n_test=n_test)

    test = SyntheticShapes(n_test, image_size=32, offset=20_000_000)
    items = [test[i] for i in range(n_test)]
    images = torch.stack([it[0] for it in items])
    labels = torch.tensor([it[2] for it in items])
    res["zero_shot_vtp"] = zero_shot_accuracy(vtp_model, images, labels, class_names())
    res["zero_shot_chance"] = 1 / NUM_CLASSES
    return res


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="cpu-xs")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="10 steps, batch 16, small probe sets: checks the plumbing")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    sizes = {"unique": 500, "n_train": 100, "n_test": 60} if args.quick else {}
    if args.quick:
        args.steps, args.batch = 10, 16
    with tempfile.TemporaryDirectory() as tmp:
        res = run_experiment(preset=args.preset, steps=args.steps, batch=args.batch, workdir=Path(tmp), **sizes)
    for k, v in res.items():
        print(f"RESULT {k}={v:.6g}")
    losses = [k[9:-6] for k in res if k.startswith("vtp_loss_") and k.endswith("_first")]
    lowered = all(res[f"vtp_loss_{k}_last"] < res[f"vtp_loss_{k}_first"] for k in losses)
    print(f"RESULT vtp_lowers_all_losses={int(lowered)}")
    lowered_after = all(res[f"vtp_loss_{k}_last"] < res[f"vtp_loss_{k}_after_warmup"] for k in losses)
    print(f"RESULT vtp_lowers_all_losses_after_teacher_warmup={int(lowered_after)}")
    print(f"RESULT probe_vtp_beats_ae={int(res['probe_vtp'] > res['probe_ae'])}")
    print(f"RESULT probe_vtp_beats_random={int(res['probe_vtp'] > res['probe_random'])}")
    print(f"RESULT zero_shot_above_chance={int(res['zero_shot_vtp'] > res['zero_shot_chance'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
