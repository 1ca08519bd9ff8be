"""The decoder GAN fine-tune: a frozen encoder + bottleneck, a trained pixel decoder and PatchGAN.

Generator step: L1 + lambda_p * perceptual + lambda_gan * hinge_g (the GAN term from `disc_start`
on); discriminator step: hinge_d on real images against the (detached) reconstructions. Resumable:
`<run_dir>/gan_state.pt` every `checkpoint_every` steps holds the decoder, the discriminator, both
optimizers and the step; the data and crops of step s are a function of (seed, s).
Data-parallel: each rank trains its rows of that batch (vtp.train.shards) and the decoder's and the
discriminator's gradients are summed over ranks; only rank 0 logs and writes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import torch

from vtp.jobs.tracker import NullTracker, Tracker
from vtp.losses.gan import hinge_d_loss, hinge_g_loss
from vtp.losses.reconstruction import PerceptualLoss, l1_loss
from vtp.models.discriminator import PatchDiscriminator
from vtp.models.tokenizer import VisualTokenizer
from vtp.train.data import SampleOrder, load_batch
from vtp.train.distributed import Dist, all_reduce_grads, all_reduce_sum, barrier, broadcast_module
from vtp.train.gan_config import DecoderGANConfig
from vtp.train.shards import plan_sharding, shard_positions


def _save(path: Path, state: dict) -> None:
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, path)


def finetune_decoder(
    tokenizer: VisualTokenizer,
    cfg: DecoderGANConfig,
    dataset,
    *,
    run_dir: str | Path,
    tracker: Tracker | None = None,
    log: Callable[[str], None] = print,
    progress: Callable[[int, int], None] | None = None,
    dist: Dist | None = None,
) -> dict:
    """Fine-tune `tokenizer.decoder` in place; returns a summary. Only the decoder changes.

    `dist`: this process's rank in a data-parallel job; None is one process (on the CPU)."""
    dist = dist or Dist()
    tracker = tracker if (tracker is not None and dist.primary) else NullTracker()
    say = log if dist.primary else (lambda _msg: None)
    sh = plan_sharding({"batch": cfg.batch_size}, world_size=dist.world_size, micro_batch_size=0)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    tokenizer.to(dist.device).requires_grad_(False).eval()
    tokenizer.decoder.requires_grad_(True).train()
    gan = cfg.lambda_gan > 0  # 0: a plain L1 (+ perceptual) fine-tune, no discriminator at all
    disc = PatchDiscriminator(cfg.disc_width, cfg.disc_layers).to(dist.device) if gan else None
    broadcast_module(tokenizer, dist)
    if disc is not None:
        broadcast_module(disc, dist)
    opt_g = torch.optim.Adam(tokenizer.decoder.parameters(), lr=cfg.lr, betas=cfg.betas, foreach=True)
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.disc_lr, betas=cfg.betas, foreach=True) if disc is not None else None
    perceptual = PerceptualLoss(cfg.perceptual_weights).to(dist.device) if cfg.lambda_perceptual > 0 else None
    state_path, step = run_dir / "gan_state.pt", 0
    if state_path.is_file():
        st = torch.load(state_path, map_location="cpu", weights_only=False)
        tokenizer.decoder.load_state_dict(st["decoder"])
        opt_g.load_state_dict(st["opt_g"])
        if disc is not None and opt_d is not None:
            disc.load_state_dict(st["disc"])
            opt_d.load_state_dict(st["opt_d"])
        step = st["step"]
        say(f"decoder GAN: resumed at step {step}")
    order = SampleOrder(len(dataset), seed=cfg.seed)
    t0, first, values = time.time(), None, {}
    while step < cfg.steps:
        indices = order.indices(step, cfg.batch_size)  # the global batch; this rank takes its rows
        mine = [indices[p] for p in shard_positions(cfg.batch_size, sh.shard(dist.rank, 0), sh.shards)]
        images, _ = load_batch(dataset, mine)
        images = images.to(dist.device)  # (b, 3, H, W)
        with torch.no_grad():
            z = tokenizer.encode(images)  # (b, d, h, w): frozen
        x_hat = tokenizer.decode(z)
        rec = l1_loss(x_hat, images)
        loss = rec
        parts = {"rec": rec.detach()}
        if perceptual is not None:
            parts["perceptual"] = perceptual(x_hat, images)
            loss = loss + cfg.lambda_perceptual * parts["perceptual"]
        gan_on = disc is not None and step >= cfg.disc_start
        if gan_on:
            parts["g"] = hinge_g_loss(disc(x_hat))
            loss = loss + cfg.lambda_gan * parts["g"]
        opt_g.zero_grad(set_to_none=True)
        (loss / sh.shards).backward()  # means over equal shares: summed over ranks, the batch's mean
        all_reduce_grads(tokenizer.decoder.parameters(), dist)
        opt_g.step()
        if gan_on:
            d_loss = hinge_d_loss(disc(images), disc(x_hat.detach()))
            opt_d.zero_grad(set_to_none=True)
            (d_loss / sh.shards).backward()
            all_reduce_grads(disc.parameters(), dist)
            opt_d.step()
            parts["d"] = d_loss.detach()
        step += 1
        names = sorted(parts)
        summed = all_reduce_sum(torch.stack([parts[k].detach().float() for k in names]) / sh.shards, dist)
        values = dict(zip(names, summed.tolist()))
        first = first or values
        if step % cfg.log_every == 0 or step == cfg.steps:
            tracker.log_metrics({f"gan/{k}": v for k, v in values.items()}, step=step)
            say(f"decoder GAN step {step}/{cfg.steps} " + " ".join(f"{k}={v:.4f}" for k, v in values.items()))
            if progress is not None and dist.primary:
                progress(step, cfg.steps)
        if (step % cfg.checkpoint_every == 0 or step == cfg.steps) and dist.primary:
            _save(state_path, {"decoder": tokenizer.decoder.state_dict(), "opt_g": opt_g.state_dict(), "step": step,
                               "disc": disc.state_dict() if disc is not None else None,
                               "opt_d": opt_d.state_dict() if opt_d is not None else None})
    barrier(dist)
    tokenizer.eval()
    return {"steps": step, "seconds": time.time() - t0, "first": first or {}, "last": values,
            "disc_params": sum(p.numel() for p in disc.parameters()) if disc is not None else 0}
