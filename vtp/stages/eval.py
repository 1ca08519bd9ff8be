"""Stage `eval`: sample the DiT, decode with the tokenizer's own decoder, and score the images.

Metrics (named for what they are; see the README): `gen_fd` over the fallback network named in the tag/param `gen_fd_network`
(with `gen_fd_network_accuracy`, its held-out accuracy), `oracle_accuracy` (share of samples the
oracle classifies as the class they were conditioned on), `gfid` only when the standard FID Inception
weights file was given by path (checked by its sha256), and `tokenizer_flops` / `tokenizer_params` /
`tokenizer_samples_seen` copied from the checkpoint json; optionally `precision` / `recall`
(Kynkaanniemi et al. 2019) over the fallback network's features. With weights that are not the standard file
the Inception distance is logged as `inception_fd` with the tag `inception_network`, never as gfid.

On `recon_images` held-out real probe images (see `heldout_probe_images`; vtp.eval.heldout): `recon_psnr`,
`recon_ssim`, `recon_fd` (real vs decode(encode(real)) over the `gen_fd_network`), `rfid` or
`inception_recon_fd` (the same over Inception, named like gfid / inception_fd), the oracle controls
`oracle_accuracy_real` and `oracle_accuracy_recon` (the oracle's accuracy on the real images and on
their reconstructions, beside the samples' `oracle_accuracy`), and `zero_shot_accuracy` when the
tokenizer was trained with CLIP; `linear_probe` is the bottleneck probe (vtp.eval.probe).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from vtp.config import ConfigError, from_dict, to_dict
from vtp.data.synthetic import class_names
from vtp.eval.features import load_or_train_feature_net, render_batch
from vtp.eval.frechet import RunningStats, frechet_distance
from vtp.eval.heldout import heldout_metrics
from vtp.eval.precision_recall import precision_recall
from vtp.eval.refstats import synthetic_reference_stats
from vtp.eval.sampling import class_velocity, sample
from vtp.jobs.context import RunContext
from vtp.stages.configs import EvalConfig
from vtp.stages.dit import denormalise
from vtp.stages.extract import load_checkpoint_tokenizer
from vtp.train.dit import load_dit_ema


@torch.no_grad()
def generate(dit, tokenizer, manifest: dict, cfg: EvalConfig, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (N, 3, H, W) in [-1, 1], conditioning labels (N,)) with balanced classes."""
    g = torch.Generator().manual_seed(cfg.seed)
    labels = torch.arange(cfg.num_samples) % manifest["num_classes"]  # (N,)
    shape = tuple(manifest["latent_shape"])
    images = []
    for start in range(0, cfg.num_samples, cfg.batch_size):
        y = labels[start:start + cfg.batch_size].to(device)
        noise = torch.randn((len(y), *shape), generator=g).to(device)  # (B, d, h, w)
        v = class_velocity(dit, y, null_label=dit.null_label, guidance=cfg.guidance)
        z = denormalise(sample(v, noise, steps=cfg.steps, method=cfg.sampler), manifest)
        images.append(tokenizer.decode(z).clamp(-1, 1).cpu())  # (B, 3, H, W)
    return torch.cat(images), labels


def _stats(fn, images: torch.Tensor, dim: int, batch: int = 250) -> RunningStats:
    st = RunningStats(dim)
    with torch.no_grad():
        for i in range(0, len(images), batch):
            st.update(fn(images[i:i + batch]).double().cpu().numpy())
    return st


def feature_network(cfg: EvalConfig, *, image_size: int, dataset_seed: int, cache: Path):
    """The fallback feature network (and oracle) every Frechet distance of this stage uses."""
    fcfg = dataclasses.replace(cfg.feature_net, image_size=image_size, dataset_seed=dataset_seed)
    return load_or_train_feature_net(fcfg, cache)


# Held-out probe images start here in the built-in stream (sample i is a pure function of (seed, i),
# any i): every stage trains on a prefix [0, n) of it (tokenizer and decoder: unique_samples, up to
# 1e8 in sweeps/; extract: num_images; the feature net: train_samples), and the linear probe (10M)
# and the feature net's held-out split (50M) sit far below 1e12, so these images are none of those.
HELDOUT_OFFSET = 10**12


def heldout_probe_images(n: int, *, image_size: int, dataset_seed: int) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """(images (n, 3, H, W) in [-1, 1], labels (n,), class names) of real probe images that no stage
    trained on. The built-in shapes: n images of the unbounded stream from HELDOUT_OFFSET."""
    images, labels = render_batch(HELDOUT_OFFSET, n, image_size=image_size, seed=dataset_seed)
    return images, labels, class_names()


def evaluate(images: torch.Tensor, labels: torch.Tensor, *, cfg: EvalConfig, dataset_seed: int, cache: Path) -> tuple[dict, dict]:
    """(metrics, tags) for generated images on the built-in dataset."""
    size = images.shape[-1]
    net = feature_network(cfg, image_size=size, dataset_seed=dataset_seed, cache=cache)
    model = net.model
    mu_r, cov_r = synthetic_reference_stats(
        model.features, network_id=net.content_hash, dim=model.feature_dim, image_size=size,
        dataset_seed=dataset_seed, num_images=cfg.reference_images, cache_dir=cache)
    gen = _stats(model.features, images, model.feature_dim)
    with torch.no_grad():
        pred = torch.cat([model(images[i:i + 250]).argmax(1) for i in range(0, len(images), 250)])
    metrics = {
        "gen_fd": frechet_distance(gen.mean(), gen.cov(), mu_r, cov_r),
        "gen_fd_network_accuracy": net.heldout_accuracy,
        "oracle_accuracy": (pred == labels).float().mean().item(),
    }
    if cfg.precision_recall:
        real = render_batch(0, cfg.num_samples, image_size=size, seed=dataset_seed)[0]
        with torch.no_grad():
            fr = torch.cat([model.features(real[i:i + 250]) for i in range(0, len(real), 250)])
            ff = torch.cat([model.features(images[i:i + 250]) for i in range(0, len(images), 250)])
        metrics["precision"], metrics["recall"] = precision_recall(fr, ff)
    tags = {"gen_fd_network": net.name}
    if cfg.inception_weights:
        from vtp.eval.inception import FEATURE_DIM, load_fid_inception

        inc = load_fid_inception(cfg.inception_weights)
        mu_i, cov_i = synthetic_reference_stats(
            inc, network_id=inc.sha256, dim=FEATURE_DIM, image_size=size, dataset_seed=dataset_seed,
            num_images=cfg.inception_reference_images, cache_dir=cache)
        gi = _stats(inc, images, FEATURE_DIM, batch=50)
        fd = frechet_distance(gi.mean(), gi.cov(), mu_i, cov_i)
        metrics["gfid" if inc.is_standard else "inception_fd"] = fd
        tags["inception_network"] = inc.name
    return metrics, tags


def evaluate_heldout(tokenizer, *, cfg: EvalConfig, image_size: int, dataset_seed: int, cache: Path) -> dict:
    """Reconstruction metrics and oracle controls on `cfg.recon_images` held-out real probe images."""
    images, labels, names = heldout_probe_images(cfg.recon_images, image_size=image_size, dataset_seed=dataset_seed)
    net = feature_network(cfg, image_size=image_size, dataset_seed=dataset_seed, cache=cache)
    inception = None
    if cfg.inception_weights:
        from vtp.eval.inception import load_fid_inception

        inception = load_fid_inception(cfg.inception_weights)
    return heldout_metrics(tokenizer, images, labels, oracle=net.model, class_names=names, inception=inception)


def run(ctx: RunContext) -> dict:
    cfg = from_dict(EvalConfig, dict(ctx.config), where=f"run {ctx.key} config", key="eval")
    for p in ("extract", "dit"):
        if p not in ctx.parents:
            raise ConfigError(ctx.key, "parents", f"stage eval needs a {p} parent")
    ext_dir, dit_dir = Path(ctx.parents["extract"]), Path(ctx.parents["dit"])
    manifest = json.loads((ext_dir / "latents.json").read_text())
    cache = Path(cfg.cache_dir) if cfg.cache_dir else Path(ctx.run_dir).parent.parent / "cache"
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer, info = load_checkpoint_tokenizer(ctx)
    tokenizer = tokenizer.to(device)
    dit = load_dit_ema(dit_dir / "dit_ema.pt", map_location=device)
    ctx.progress(0, 3, "phases")  # sample, score (the sweep's first eval also trains the feature net), probe
    images, labels = generate(dit, tokenizer, manifest, cfg, device)
    ctx.progress(1, 3, "phases")
    metrics, tags = evaluate(images, labels, cfg=cfg, dataset_seed=manifest["config"]["dataset_seed"], cache=cache)
    ctx.progress(2, 3, "phases")
    if cfg.probe_train_images > 0:
        from vtp.eval.probe import synthetic_linear_probe

        metrics["linear_probe"] = synthetic_linear_probe(
            tokenizer, image_size=images.shape[-1], n_train=cfg.probe_train_images,
            n_test=cfg.probe_test_images, seed=manifest["config"]["dataset_seed"])
    if cfg.recon_images > 0:  # after the existing metrics: their values and RNG draws stay as they were
        metrics.update(evaluate_heldout(tokenizer, cfg=cfg, image_size=images.shape[-1],
                                        dataset_seed=manifest["config"]["dataset_seed"], cache=cache))
    for src, dst in (("flops", "tokenizer_flops"), ("encoder_params", "tokenizer_params"),
                     ("samples_seen", "tokenizer_samples_seen")):
        if src in info:
            metrics[dst] = float(info[src])
    ctx.tracker.log_params({"gen_fd_network": tags["gen_fd_network"], **{f"eval.{k}": v for k, v in to_dict(cfg).items()
                                                                         if k != "feature_net"}})
    ctx.tracker.set_tags(tags)
    ctx.tracker.log_metrics(metrics, step=ctx.checkpoint or 0)
    ctx.progress(3, 3, "phases")
    np.save(Path(ctx.run_dir) / "samples_preview.npy", images[:64].numpy())
    return {**metrics, **tags}
