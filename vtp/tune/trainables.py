"""Trainables for a tune stage: plain functions of (sampled params, base config, trial folder, report).

`tokenizer` trains the real tokenizer (`vtp.train.loop.train`) and reports at each of its
checkpoints a held-out reconstruction metric, so ASHA can stop weak trials at those rungs.

Why held-out reconstruction and not the training loss: the total loss is lambda_rec * L_rec +
lambda_clip * L_clip + lambda_ssl * L_ssl, so its value moves with lambda_rec itself and differs in
scale across objectives; two trials with different lambda_rec cannot be ranked by it. Reconstruction
of images the run never trained on is part of every objective, is what the downstream DiT consumes,
and does not depend on the loss weights. `val_rec_l1` (mean absolute error in [-1, 1] pixels, the
training reconstruction loss's own form) and `val_rec_psnr` (dB) are reported; pick one as `metric`.

Ray is not imported here: `vtp.tune.search` wraps the function, so it is testable without Ray.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

HELD_OUT_IMAGES = 64


def tokenizer(params: Mapping[str, Any], *, base: Mapping[str, Any], trial_dir: Path,
              report: Callable[[dict[str, float]], None]) -> None:
    """Train `base` with `params` on top in `trial_dir` (resuming what is there), reporting at every
    checkpoint. A trial the scheduler stops simply never returns from `report`."""
    from vtp.config import from_dict
    from vtp.train.budget import checkpoint_steps, resolve
    from vtp.train.checkpoint import checkpoint_dir, load_tokenizer
    from vtp.train.config import TokenizerTrainConfig
    from vtp.train.loop import train

    cfg = from_dict(TokenizerTrainConfig, {**base, **params}, where=f"tune trial {trial_dir.name}", key="")
    # torch's threads: Ray sets OMP_NUM_THREADS of each trial's process to its `cpus_per_trial`
    held_out = held_out_images(cfg)  # (N, 3, H, W)
    sizes = resolve(cfg)
    at = checkpoint_steps(cfg, sizes.steps)
    for k, step in sorted(at.items()):
        # Train up to this checkpoint; `train` resumes bit-exactly from the previous one on disk.
        summary = train(cfg, run_dir=trial_dir, stop_after_step=step, log=lambda _msg: None)
        model = load_tokenizer(checkpoint_dir(trial_dir) / f"{k}.pt")
        metrics = held_out_metrics(model, held_out)
        metrics.update(checkpoint=float(k), step=float(step), samples_seen=float(step * sizes.n_images))
        metrics.update({f"train_{name}": v for name, v in summary["final_losses"].items()})
        report(metrics)


def held_out_images(cfg: Any, n: int = HELD_OUT_IMAGES) -> Any:
    """`n` images the run never trains on: stream indices past `unique_samples` -> (n, 3, H, W)."""
    import torch

    from vtp.train.data import build_dataset

    if cfg.dataset.kind == "synthetic":
        from vtp.data.synthetic import SyntheticShapes

        data = SyntheticShapes(n, image_size=cfg.image_size, seed=cfg.dataset.seed, offset=cfg.unique_samples)
        return torch.stack([data[i][0] for i in range(n)])
    data = build_dataset(dataclasses.replace(cfg, unique_samples=cfg.unique_samples + n))
    items = [data[i] for i in range(cfg.unique_samples, min(len(data), cfg.unique_samples + n))]
    return torch.stack([it[0] for it in items if it is not None])


def held_out_metrics(model: Any, images: Any) -> dict[str, float]:
    """Reconstruction of `images` (N, 3, H, W) in [-1, 1]: L1 (as trained) and PSNR."""
    import torch

    from vtp.eval.recon import psnr

    with torch.no_grad():
        x_hat = model.decode(model.encode(images)).clamp(-1, 1)  # (N, 3, H, W)
    return {"val_rec_l1": float((x_hat - images).abs().mean()), "val_rec_psnr": float(psnr(x_hat, images).mean())}
