"""Tokenizer pre-training: a plain function of a config (the stage adapter wraps it).

Every random choice of step s (data order, crops, masks) is a pure function of (seed, s), and the
checkpoint holds model, EMA teacher, optimizer and DINO/iBOT centres, so resuming from checkpoint k
gives, on CPU, bit-for-bit the run that was never interrupted. Data-parallel over any number of
ranks (vtp.train.shards, vtp.train.distributed): the batch, and so the run, stays the spec's.
Between the scientific checkpoints a rolling resume state is written every `resume_every_s`.
"""

from __future__ import annotations

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
from vtp.train import rng
from vtp.train.budget import checkpoint_steps, resolve
from vtp.train.checkpoint import (
    drop_resume_state,
    load_resume_state,
    resume_source,
    save_checkpoint,
    save_resume_state,
    trim_older,
)
from vtp.train.config import Resolved, TokenizerTrainConfig
from vtp.train.data import SampleOrder, build_dataset, load_batch
from vtp.train.distributed import Dist, agree, barrier, broadcast_module, broadcast_object, default_device
from vtp.train.errors import NonFiniteLossError
from vtp.train.schedules import lr_at, teacher_momentum_at, teacher_temp_at
from vtp.train.shards import Sharding, shard_positions
from vtp.train.step import (
    Centers,
    MicroBatch,
    autocast_context,  # noqa: F401 -- re-exported for the benchmarks
    draw_ssl,
    make_perceptual,
    make_teacher,
    sharding,
    student_ssl_modules,
    train_step,
)


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
    # foreach: multi-tensor kernels (torch picks them by itself only for CUDA tensors); same values
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95), foreach=True)


def _step_generator(cfg: TokenizerTrainConfig, step: int) -> torch.Generator:
    return torch.Generator().manual_seed((cfg.seed + 1) * 7_919_993 + step)


def micro_batches(
    dataset, order: SampleOrder, step: int, cfg: TokenizerTrainConfig, sizes: Resolved, sh: Sharding, dist: Dist,
) -> list[MicroBatch]:
    """This rank's shards of step `step`: the global batch and its SSL draws are functions of
    (seed, step); the rank loads only its own images."""
    indices = order.indices(step, sizes.n_images)  # the whole batch, in order
    draws = draw_ssl(cfg, sizes, _step_generator(cfg, step)) if sizes.use_ssl else None
    out = []
    for j in range(sh.accumulation):
        s = sh.shard(dist.rank, j)
        images, captions = load_batch(dataset, [indices[p] for p in shard_positions(sizes.n_images, s, sh.shards)])
        ssl = draws.rows(shard_positions(sizes.n_ssl, s, sh.shards)) if draws is not None else None
        out.append(MicroBatch(images.to(dist.device, non_blocking=True), captions, ssl))  # (n, 3, H, W)
    return out


def train(
    cfg: TokenizerTrainConfig,
    *,
    run_dir: str | Path,
    tracker: Tracker | None = None,
    device: str | torch.device | None = None,
    log: Callable[[str], None] = print,
    stop_after_step: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    dist: Dist | None = None,
) -> dict[str, Any]:
    """Train (or resume) the tokenizer in `run_dir`; return the run's summary.

    `dist`: this process's rank in a data-parallel job (vtp.train.distributed.init_from_env); None
    is one process on `device`. Only rank 0 logs, reports progress and writes to `run_dir`.
    `stop_after_step` ends the loop early after that many total steps, as a preemption would
    (used by the resume test); checkpoints already written stay valid.
    """
    dist = dist or Dist(device=torch.device(device) if device is not None else default_device())
    device = dist.device
    tracker = tracker if (tracker is not None and dist.primary) else NullTracker()
    say = log if dist.primary else (lambda _msg: None)
    sizes = resolve(cfg)
    sh = sharding(sizes, dist.world_size, cfg.micro_batch_size)  # raises ShardingError, naming the subsets
    flops_per_step = step_flops(cfg, sizes)
    ckpt_at = checkpoint_steps(cfg, sizes.steps)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # fp32 matmuls outside autocast (loss heads, EMA)
        torch.backends.cudnn.allow_tf32 = True

    # --- build: model, EMA teacher, optimizer, centres ----------------------------------------
    perceptual = make_perceptual(cfg)  # None unless lambda_perceptual > 0; a wrong weights file stops here
    perceptual = perceptual.to(device) if perceptual is not None else None
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, sizes).to(device)
    model.encoder.activation_checkpointing = cfg.activation_checkpointing
    broadcast_module(model, dist)  # every rank starts from rank 0's weights, as DDP does
    teacher = make_teacher(model).to(device) if sizes.use_ssl else None
    opt = make_optimizer(model, cfg)
    k_protos = model.ssl_head.prototypes.shape[0] if sizes.use_ssl else 0
    centers = Centers(torch.zeros(1, k_protos, device=device), torch.zeros(1, k_protos, device=device))
    start = 0

    # --- resume: every rank from the state rank 0 picked ----------------------------------------
    source = broadcast_object(str(resume_source(run_dir) or "") if dist.primary else None, dist)
    if source:
        state = load_resume_state(source, device)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        if teacher is not None:
            teacher.load_state_dict(state["teacher"])
            centers = Centers(state["centers"]["cls"], state["centers"]["patch"])
        rng.restore(state.get("rng") or {"cpu": [state["torch_rng"]]}, dist, say)
        start = state["step"]
        say(f"resumed from {Path(source).relative_to(run_dir)} at step {start}")

    tracker.log_params({f"tokenizer.{k}": v for k, v in _flat(to_dict(cfg)).items()})
    say(
        f"tokenizer {cfg.encoder} objective={cfg.objective} steps={sizes.steps} batch={cfg.batch_size} images/step={sizes.n_images} "
        f"(clip {sizes.n_clip}, ssl {sizes.n_ssl}, rec {sizes.n_rec}) flops/step={flops_per_step:.3g} "
        f"encoder_params={model.encoder_params()} device={device} ranks={dist.world_size} "
        f"micro-batches/rank={sh.accumulation} images/micro-batch={sh.n_images}"
    )
    dataset = build_dataset(cfg)
    order = SampleOrder(len(dataset), seed=cfg.seed)
    model.train()
    last: dict[str, float] = {}
    t0, steps_timed = time.perf_counter(), 0
    saved_at = time.monotonic()
    end = sizes.steps if stop_after_step is None else min(sizes.steps, stop_after_step)

    def full_state(done: int) -> dict[str, Any]:  # a collective (the RNG states of every rank)
        return {
            "spec": dataclasses.asdict(model.spec), "model": model.state_dict(), "optimizer": opt.state_dict(),
            "teacher": teacher.state_dict() if teacher is not None else None,
            "centers": {"cls": centers.cls, "patch": centers.patch}, "step": done,
            "torch_rng": torch.get_rng_state(), "rng": rng.capture(dist), "config": to_dict(cfg),
        }

    for step in range(start, end):
        # --- schedules ------------------------------------------------------------------------
        lr = lr_at(step, sizes.steps, cfg.lr, warmup_fraction=cfg.warmup_fraction, min_fraction=cfg.min_lr_fraction)
        for group in opt.param_groups:
            group["lr"] = lr
        t_temp = teacher_temp_at(step, sizes.steps, *cfg.teacher_temp, warmup_fraction=cfg.teacher_temp_warmup_fraction)

        # --- data: this rank's micro-batches ----------------------------------------------------
        micro = micro_batches(dataset, order, step, cfg, sizes, sh, dist)

        # --- loss and backward over the micro-batches; gradients summed over ranks ---------------
        opt.zero_grad(set_to_none=True)
        last, new_centers = train_step(model, teacher, micro, cfg, sizes, sh, centers, t_temp, dist, perceptual)
        if not all(math.isfinite(v) for v in last.values()):  # the same verdict on every rank
            raise NonFiniteLossError(step, last)

        # --- clip, optimizer step -------------------------------------------------------------
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        if sizes.use_clip:
            clamp_logit_scale(model.logit_scale)  # open_clip's bound on the temperature, after the step

        # --- EMA teacher and centres ----------------------------------------------------------
        if teacher is not None:
            ema_update(teacher, student_ssl_modules(model), teacher_momentum_at(step, sizes.steps, *cfg.teacher_momentum))
            centers = new_centers

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
            if hasattr(dataset, "corrupt_count"):  # readers count unreadable images they skipped (rank 0's share)
                metrics["data/corrupt_images"] = dataset.corrupt_count
            tracker.log_metrics(metrics, step=done)
            losses = " ".join(f"{k}={v:.4f}" for k, v in last.items())
            say(f"step {done}/{sizes.steps} ({100 * done / sizes.steps:.0f}%) {losses} {sps:.1f} samples/s")
            if progress is not None and dist.primary:
                progress(done, sizes.steps)
            t0, steps_timed = time.perf_counter(), 0

        # --- checkpoint; between them, the rolling resume state ---------------------------------
        ks = [k for k, s in ckpt_at.items() if s == done]
        if ks:
            state = full_state(done)
            for k in ks:
                meta = {
                    "step": done, "samples_seen": done * sizes.n_images, "flops": done * flops_per_step,
                    "encoder_params": model.encoder_params(),
                }
                if dist.primary:
                    save_checkpoint(run_dir, k, state, meta)
                    if cfg.full_state_checkpoints == "last":  # k is complete: older ones only feed downstream
                        trim_older(run_dir, k)
                say(f"checkpoint {k}/{cfg.checkpoint_denominator} at step {done}")
            saved_at = time.monotonic()
        elif cfg.resume_every_s and agree(time.monotonic() - saved_at >= cfg.resume_every_s, dist):
            state = full_state(done)
            if dist.primary:
                save_resume_state(run_dir, state, done)
            saved_at = time.monotonic()
            say(f"resume state at step {done}")

    done = max(start, end)
    if done == sizes.steps and dist.primary:
        drop_resume_state(run_dir)  # the last checkpoint holds the full state
    barrier(dist)  # no rank returns (and tears the group down) while rank 0 still writes
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
