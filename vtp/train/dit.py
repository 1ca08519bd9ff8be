"""Training the DiT probe on pre-extracted, normalised latents. A plain function of a config.

Resumable: every `checkpoint_every` steps the model, EMA, optimiser and step go to
`<run_dir>/checkpoints/last.pt`; a call with the same run_dir continues from there. Each step's batch,
timesteps and noise come from a generator seeded by (seed, step), so a resumed run sees exactly the
data an uninterrupted one would.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch

from vtp.config import to_dict
from vtp.flops.dit import dit_train_flops
from vtp.jobs.tracker import NullTracker, Tracker
from vtp.losses.flow import flow_loss, interpolate, logit_normal_timesteps
from vtp.models.dit import DiT, build_dit
from vtp.train.dit_config import DiTTrainConfig


def lr_at(step: int, cfg: DiTTrainConfig) -> float:
    """Linear warm-up to `lr`, then constant (LightningDiT uses a constant rate)."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    return cfg.lr


def ema_decay_at(step: int, cfg: DiTTrainConfig) -> float:
    if not cfg.ema_warmup:
        return cfg.ema_decay
    return min(cfg.ema_decay, (1 + step) / (10 + step))


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p, 1 - decay)


def _save(path: Path, blob: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save(blob, tmp)
    os.replace(tmp, path)  # a preempted job never leaves half a checkpoint


def train_step_batch(
    step: int, cfg: DiTTrainConfig, latents: torch.Tensor, labels: torch.Tensor, null_label: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x1, eps, t, y) for `step`: a pure function of (seed, step) and the data."""
    g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
    idx = torch.randint(len(latents), (cfg.batch_size,), generator=g)
    x1 = latents[idx]  # (B, C, h, w)
    eps = torch.randn(x1.shape, generator=g)
    t = logit_normal_timesteps(cfg.batch_size, mean=cfg.t_mean, std=cfg.t_std, generator=g)  # (B,)
    y = labels[idx].clone()
    y[torch.rand(cfg.batch_size, generator=g) < cfg.label_dropout] = null_label  # for guidance later
    return x1, eps, t, y


def train_dit(
    cfg: DiTTrainConfig, *, latents: torch.Tensor, labels: torch.Tensor, num_classes: int, run_dir: str | Path,
    tracker: Tracker | None = None, device: str | torch.device = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Train on `latents` (N, C, h, w), already normalised, with class `labels` (N,). Returns a summary."""
    tracker = tracker or NullTracker()
    run_dir = Path(run_dir)
    c, h, w = latents.shape[1:]
    torch.manual_seed(cfg.seed)
    model = build_dit(cfg.model, in_channels=c, num_classes=num_classes).to(device)
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    step = 0
    last = run_dir / "checkpoints" / "last.pt"
    if last.is_file():
        blob = torch.load(last, map_location=device, weights_only=True)
        model.load_state_dict(blob["model"])
        ema.load_state_dict(blob["ema"])
        opt.load_state_dict(blob["opt"])
        step = int(blob["step"])

    def checkpoint() -> None:
        _save(last, {"model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(), "step": step})

    loss_val = float("nan")
    t0 = time.time()
    model.train()
    while step < cfg.steps:
        # schedule
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        # loss
        x1, eps, t, y = (v.to(device) for v in train_step_batch(step, cfg, latents, labels, model.null_label))
        v_pred = model(interpolate(x1, eps, t), t, y)  # (B, C, h, w)
        loss, parts = flow_loss(v_pred, x1, eps, cos_weight=cfg.cos_weight)
        # step, with clipping
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        # EMA
        ema_update(ema, model, ema_decay_at(step, cfg))
        step += 1
        loss_val = loss.item()
        # log
        if step % cfg.log_every == 0 or step == cfg.steps:
            tracker.log_metrics({"dit_loss": loss_val, "dit_mse": parts["mse"].item(), "dit_cos": parts["cos"].item(),
                                 "dit_grad_norm": float(grad_norm), "dit_lr": lr_at(step - 1, cfg)}, step=step)
            if progress is not None:
                progress(step, cfg.steps)
        # checkpoint
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            checkpoint()

    _save(run_dir / "dit_ema.pt", {
        "ema": ema.state_dict(), "config": to_dict(cfg), "in_channels": c, "num_classes": num_classes,
        "latent_shape": [c, h, w], "step": step,
    })
    return {
        "steps": step, "final_loss": loss_val, "seconds": time.time() - t0,
        "dit_params": sum(p.numel() for p in model.parameters()),
        "dit_flops": dit_train_flops(model.spec, tokens=h * w, in_channels=c, samples=step * cfg.batch_size),
    }


def load_dit_ema(path: str | Path, map_location: str | torch.device = "cpu") -> DiT:
    """The EMA model that `train_dit` wrote to `<run_dir>/dit_ema.pt`, in eval mode."""
    blob = torch.load(path, map_location=map_location, weights_only=True)
    model = build_dit(blob["config"]["model"], in_channels=blob["in_channels"], num_classes=blob["num_classes"])
    model.load_state_dict(blob["ema"])
    return model.to(map_location).eval()
