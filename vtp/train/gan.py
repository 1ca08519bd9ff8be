"""The decoder GAN fine-tune: a frozen encoder + bottleneck, a trained pixel decoder and PatchGAN.

Generator step: L1 + lambda_p * perceptual + lambda_gan * hinge_g (the GAN term from `disc_start`
on); discriminator step: hinge_d on real images against the (detached) reconstructions. Resumable:
`<run_dir>/gan_state.pt` every `checkpoint_every` steps holds the decoder, the discriminator, both
optimizers and the step; the data and crops of step s are a function of (seed, s).
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
from vtp.train.gan_config import DecoderGANConfig


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
) -> dict:
    """Fine-tune `tokenizer.decoder` in place; returns a summary. Only the decoder changes."""
    tracker = tracker or NullTracker()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    tokenizer.requires_grad_(False).eval()
    tokenizer.decoder.requires_grad_(True).train()
    gan = cfg.lambda_gan > 0  # 0: a plain L1 (+ perceptual) fine-tune, no discriminator at all
    disc = PatchDiscriminator(cfg.disc_width, cfg.disc_layers) if gan else None
    opt_g = torch.optim.Adam(tokenizer.decoder.parameters(), lr=cfg.lr, betas=cfg.betas)
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.disc_lr, betas=cfg.betas) if disc is not None else None
    perceptual = PerceptualLoss(cfg.perceptual_weights) if cfg.lambda_perceptual > 0 else None
    state_path, step = run_dir / "gan_state.pt", 0
    if state_path.is_file():
        st = torch.load(state_path, map_location="cpu", weights_only=False)
        tokenizer.decoder.load_state_dict(st["decoder"])
        opt_g.load_state_dict(st["opt_g"])
        if disc is not None and opt_d is not None:
            disc.load_state_dict(st["disc"])
            opt_d.load_state_dict(st["opt_d"])
        step = st["step"]
        log(f"decoder GAN: resumed at step {step}")
    order = SampleOrder(len(dataset), seed=cfg.seed)
    t0, first, values = time.time(), None, {}
    while step < cfg.steps:
        images, _ = load_batch(dataset, order.indices(step, cfg.batch_size))  # (B, 3, H, W)
        with torch.no_grad():
            z = tokenizer.encode(images)  # (B, d, h, w): frozen
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
        loss.backward()
        opt_g.step()
        if gan_on:
            d_loss = hinge_d_loss(disc(images), disc(x_hat.detach()))
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            parts["d"] = d_loss.detach()
        step += 1
        values = {k: float(v.detach()) for k, v in parts.items()}
        first = first or values
        if step % cfg.log_every == 0 or step == cfg.steps:
            tracker.log_metrics({f"gan/{k}": v for k, v in values.items()}, step=step)
            log(f"decoder GAN step {step}/{cfg.steps} " + " ".join(f"{k}={v:.4f}" for k, v in values.items()))
            if progress is not None:
                progress(step, cfg.steps)
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            _save(state_path, {"decoder": tokenizer.decoder.state_dict(), "opt_g": opt_g.state_dict(), "step": step,
                               "disc": disc.state_dict() if disc is not None else None,
                               "opt_d": opt_d.state_dict() if opt_d is not None else None})
    tokenizer.eval()
    return {"steps": step, "seconds": time.time() - t0, "first": first or {}, "last": values,
            "disc_params": sum(p.numel() for p in disc.parameters()) if disc is not None else 0}
