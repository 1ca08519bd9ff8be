"""Training the DiT probe on pre-extracted, normalised latents. A plain function of a config.

Resumable: every `checkpoint_every` steps the model, EMA, optimiser and step go to
`<run_dir>/checkpoints/last.pt`; a call with the same run_dir continues from there. Each step's batch,
timesteps and noise come from a generator seeded by (seed, step), so a resumed run sees exactly the
data an uninterrupted one would. Data-parallel: each rank trains its rows of that global batch
(vtp.train.shards), gradients are summed over ranks; only rank 0 logs and writes.
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
from vtp.train.distributed import Dist, all_reduce_grads, all_reduce_sum, barrier, broadcast_module
from vtp.train.dit_config import DiTTrainConfig
from vtp.train.shards import plan_sharding


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
    # one multi-tensor kernel instead of one lerp per parameter (as timm's ModelEmaV3); same values
    torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), 1 - decay)


def make_optimizer(model: torch.nn.Module, cfg: DiTTrainConfig) -> torch.optim.AdamW:
    # foreach: the multi-tensor update, which torch picks by itself only for CUDA tensors; on CPU it
    # takes a fifth off the optimiser's time in a small DiT's step (measured) with the loop's values
    return torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay,
                             foreach=True)


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
    progress: Callable[[int, int], None] | None = None, dist: Dist | None = None,
) -> dict:
    """Train on `latents` (N, C, h, w), already normalised, with class `labels` (N,). Returns a summary.

    `dist`: this process's rank in a data-parallel job; None is one process on `device`."""
    dist = dist or Dist(device=torch.device(device))
    device = dist.device
    tracker = tracker if (tracker is not None and dist.primary) else NullTracker()
    sh = plan_sharding({"batch": cfg.batch_size}, world_size=dist.world_size, micro_batch_size=cfg.micro_batch_size)
    run_dir = Path(run_dir)
    c, h, w = latents.shape[1:]
    torch.manual_seed(cfg.seed)
    model = build_dit(cfg.model, in_channels=c, num_classes=num_classes, patch_size=cfg.patch_size).to(device)
    broadcast_module(model, dist)
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = make_optimizer(model, cfg)
    step = 0
    last = run_dir / "checkpoints" / "last.pt"
    # Every rank reads the same file: rank 0 cannot write a newer one before every rank has joined
    # the first step's gradient sum, which each does only after this read.
    if last.is_file():
        blob = torch.load(last, map_location="cpu", weights_only=True)  # load_state_dict copies to the device
        model.load_state_dict(blob["model"])
        ema.load_state_dict(blob["ema"])
        opt.load_state_dict(blob["opt"])
        step = int(blob["step"])

    def checkpoint() -> None:
        if dist.primary:
            _save(last, {"model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(), "step": step})

    loss_val = float("nan")
    t0 = time.time()
    model.train()
    while step < cfg.steps:
        # schedule
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        # loss, over this rank's micro-batches (rows r, r + W, ... of the global batch each)
        batch = train_step_batch(step, cfg, latents, labels, model.null_label)  # global (x1, eps, t, y)
        opt.zero_grad(set_to_none=True)
        logged = torch.zeros(3, device=device)  # loss, mse, cos: means over the global batch
        for j in range(sh.accumulation):
            s = sh.shard(dist.rank, j)
            x1, eps, t, y = (v[s::sh.shards].to(device) for v in batch)
            v_pred = model(interpolate(x1, eps, t), t, y)  # (b, C, h, w)
            loss, parts = flow_loss(v_pred, x1, eps, cos_weight=cfg.cos_weight)
            (loss / sh.shards).backward()
            logged += torch.stack([loss.detach(), parts["mse"], parts["cos"]]) / sh.shards
        all_reduce_grads(model.parameters(), dist)
        loss_val, mse, cos = all_reduce_sum(logged, dist).tolist()
        # step, with clipping
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        # EMA
        ema_update(ema, model, ema_decay_at(step, cfg))
        step += 1
        # log
        if step % cfg.log_every == 0 or step == cfg.steps:
            tracker.log_metrics({"dit_loss": loss_val, "dit_mse": mse, "dit_cos": cos,
                                 "dit_grad_norm": float(grad_norm), "dit_lr": lr_at(step - 1, cfg)}, step=step)
            if progress is not None and dist.primary:
                progress(step, cfg.steps)
        # checkpoint
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            checkpoint()

    if dist.primary:
        _save(run_dir / "dit_ema.pt", {
            "ema": ema.state_dict(), "config": to_dict(cfg), "in_channels": c, "num_classes": num_classes,
            "latent_shape": [c, h, w], "step": step,
        })
    barrier(dist)
    return {
        "steps": step, "final_loss": loss_val, "seconds": time.time() - t0,
        "dit_params": sum(p.numel() for p in model.parameters()),
        "dit_flops": dit_train_flops(model.spec, tokens=h * w // cfg.patch_size**2, in_channels=c * cfg.patch_size**2,
                                     samples=step * cfg.batch_size),
    }


def load_dit_ema(path: str | Path, map_location: str | torch.device = "cpu") -> DiT:
    """The EMA model that `train_dit` wrote to `<run_dir>/dit_ema.pt`, in eval mode; `.trained_with`
    is the training config it was saved with."""
    blob = torch.load(path, map_location=map_location, weights_only=True)
    model = build_dit(blob["config"]["model"], in_channels=blob["in_channels"], num_classes=blob["num_classes"],
                      patch_size=int(blob["config"].get("patch_size", 1)))
    model.load_state_dict(blob["ema"])
    model.trained_with = dict(blob["config"])  # its DiTTrainConfig as a dict (e.g. shuffle_labels for the controls)
    return model.to(map_location).eval()
