"""Tokenizer pre-training: a plain function of a config (the stage adapter wraps it).

Every random choice of step s (data order, crops, masks) is a pure function of (seed, s), and the
checkpoint holds model, EMA teacher, optimizer and DINO/iBOT centres, so resuming from checkpoint k
gives, on CPU, bit-for-bit the run that was never interrupted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from vtp.config import to_dict
from vtp.flops.tokenizer import step_flops
from vtp.jobs.tracker import NullTracker, Tracker
from vtp.losses.clip import clamp_logit_scale
from vtp.losses.ema import ema_update
from vtp.models.tokenizer import TokenizerSpec, VisualTokenizer
from vtp.train.budget import checkpoint_steps, resolve
from vtp.train.checkpoint import (
    checkpoint_dir,
    latest_checkpoint,
    load_resume_state,
    save_checkpoint,
    trim_older,
)
from vtp.train.config import Resolved, TokenizerTrainConfig
from vtp.train.data import SampleOrder, build_dataset, load_batch
from vtp.train.errors import NonFiniteLossError
from vtp.train.schedules import lr_at, teacher_momentum_at, teacher_temp_at
from vtp.train.step import Centers, compute_losses, make_teacher, student_ssl_modules


def build_model(cfg: TokenizerTrainConfig, sizes: Resolved) -> VisualTokenizer:
    spec = TokenizerSpec(
        preset=cfg.encoder, image_size=cfg.image_size, patch_size=cfg.patch_size, latent_dim=cfg.latent_dim,
        decoder_depth=cfg.decoder_depth, decoder_width=sizes.decoder_width, swiglu=cfg.swiglu,
        clip=sizes.use_clip, ssl=sizes.use_ssl,
    )
    return VisualTokenizer(spec)


def make_optimizer(model: torch.nn.Module, cfg: TokenizerTrainConfig) -> torch.optim.AdamW:
    """AdamW; no weight decay on biases, norms, tokens and the temperature (all tensors of rank < 2)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    other = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": other, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95))


def _step_generator(cfg: TokenizerTrainConfig, step: int) -> torch.Generator:
    return torch.Generator().manual_seed((cfg.seed + 1) * 7_919_993 + step)


def autocast_context(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train(
    cfg: TokenizerTrainConfig,
    *,
    run_dir: str | Path,
    tracker: Tracker | None = None,
    device: str | torch.device | None = None,
    log: Callable[[str], None] = print,
    stop_after_step: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Train (or resume) the tokenizer in `run_dir`; return the run's summary.

    `stop_after_step` ends the loop early after that many total steps, as a preemption would
    (used by the resume test); checkpoints already written stay valid.
    """
    tracker = tracker or NullTracker()
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    sizes = resolve(cfg)
    flops_per_step = step_flops(cfg, sizes)
    ckpt_at = checkpoint_steps(cfg, sizes.steps)

    # --- build: model, EMA teacher, optimizer, centres ----------------------------------------
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, sizes).to(device)
    teacher = make_teacher(model).to(device) if sizes.use_ssl else None
    opt = make_optimizer(model, cfg)
    k_protos = model.ssl_head.prototypes.shape[0] if sizes.use_ssl else 0
    centers = Centers(torch.zeros(1, k_protos, device=device), torch.zeros(1, k_protos, device=device))
    start = 0

    # --- resume from the newest complete checkpoint -------------------------------------------
    k_last = latest_checkpoint(run_dir)
    if k_last is not None:
        state = load_resume_state(checkpoint_dir(run_dir) / f"{k_last}.pt", device)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        if teacher is not None:
            teacher.load_state_dict(state["teacher"])
            centers = Centers(state["centers"]["cls"], state["centers"]["patch"])
        torch.set_rng_state(state["torch_rng"])
        start = state["step"]
        log(f"resumed from checkpoint {k_last} at step {start}")

    tracker.log_params({f"tokenizer.{k}": v for k, v in _flat(to_dict(cfg)).items()})
    log(
        f"tokenizer {cfg.encoder} objective={cfg.objective} steps={sizes.steps} batch={cfg.batch_size} images/step={sizes.n_images} "
        f"(clip {sizes.n_clip}, ssl {sizes.n_ssl}, rec {sizes.n_rec}) flops/step={flops_per_step:.3g} "
        f"encoder_params={model.encoder_params()} device={device}"
    )
    dataset = build_dataset(cfg)
    order = SampleOrder(len(dataset), seed=cfg.seed)
    model.train()
    last: dict[str, float] = {}
    t0, steps_timed = time.perf_counter(), 0
    end = sizes.steps if stop_after_step is None else min(sizes.steps, stop_after_step)

    for step in range(start, end):
        # --- schedules ------------------------------------------------------------------------
        lr = lr_at(step, sizes.steps, cfg.lr, warmup_fraction=cfg.warmup_fraction, min_fraction=cfg.min_lr_fraction)
        for group in opt.param_groups:
            group["lr"] = lr
        t_temp = teacher_temp_at(step, sizes.steps, *cfg.teacher_temp, warmup_fraction=cfg.teacher_temp_warmup_fraction)

        # --- data -----------------------------------------------------------------------------
        images, captions = load_batch(dataset, order.indices(step, sizes.n_images))
        images = images.to(device, non_blocking=True)  # (B, 3, H, W)

        # --- loss -----------------------------------------------------------------------------
        with autocast_context(device):
            out = compute_losses(
                model, teacher, images, captions, cfg, sizes, centers, t_temp, _step_generator(cfg, step)
            )
        last = {k: float(v) for k, v in out.parts.items()}
        if not all(math.isfinite(v) for v in last.values()):
            raise NonFiniteLossError(step, last)

        # --- backward, clip, optimizer step ---------------------------------------------------
        opt.zero_grad(set_to_none=True)
        out.total.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        if sizes.use_clip:
            clamp_logit_scale(model.logit_scale)  # open_clip's bound on the temperature, after the step

        # --- EMA teacher and centres ----------------------------------------------------------
        if teacher is not None:
            ema_update(teacher, student_ssl_modules(model), teacher_momentum_at(step, sizes.steps, *cfg.teacher_momentum))
            centers = out.centers

        # --- log ------------------------------------------------------------------------------
        done = step + 1
        steps_timed += 1
        if done % cfg.log_every == 0 or done == sizes.steps:
            dt = time.perf_counter() - t0
            sps = steps_timed * sizes.n_images / dt
            metrics = {f"loss/{k}": v for k, v in last.items()}
            metrics.update(
                lr=lr, grad_norm=float(grad_norm), flops=done * flops_per_step, samples_seen=done * sizes.n_images,
                samples_per_s=sps, flops_per_s=steps_timed * flops_per_step / dt,
            )
            if hasattr(dataset, "corrupt_count"):  # readers count unreadable images they skipped
                metrics["data/corrupt_images"] = dataset.corrupt_count
            tracker.log_metrics(metrics, step=done)
            losses = " ".join(f"{k}={v:.4f}" for k, v in last.items())
            log(f"step {done}/{sizes.steps} ({100 * done / sizes.steps:.0f}%) {losses} {sps:.1f} samples/s")
            if progress is not None:
                progress(done, sizes.steps)
            t0, steps_timed = time.perf_counter(), 0

        # --- checkpoint -----------------------------------------------------------------------
        for k in [k for k, s in ckpt_at.items() if s == done]:
            state = {
                "spec": dataclasses.asdict(model.spec), "model": model.state_dict(), "optimizer": opt.state_dict(),
                "teacher": teacher.state_dict() if teacher is not None else None,
                "centers": {"cls": centers.cls, "patch": centers.patch}, "step": done,
                "torch_rng": torch.get_rng_state(), "config": to_dict(cfg),
            }
            meta = {
                "step": done, "samples_seen": done * sizes.n_images, "flops": done * flops_per_step,
                "encoder_params": model.encoder_params(),
            }
            save_checkpoint(run_dir, k, state, meta)
            log(f"checkpoint {k}/{cfg.checkpoint_denominator} at step {done}")
            if cfg.full_state_checkpoints == "last":  # k is complete: older ones only feed downstream stages
                trim_older(run_dir, k)

    done = max(start, end)
    return {
        "steps": done, "samples_seen": done * sizes.n_images, "flops": done * flops_per_step,
        "encoder_params": model.encoder_params(), "final_losses": last,
        "checkpoints": sorted(k for k, s in ckpt_at.items() if s <= done),
    }


def _flat(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out
