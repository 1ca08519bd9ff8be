"""Stage `eval`: sample the DiT, decode with the tokenizer's own decoder, and score the images.

Metrics (named for what they are; see the README): `gen_fd` over the fallback network named in the tag/param `gen_fd_network`
(with `gen_fd_network_accuracy`, its held-out accuracy), `oracle_accuracy` (share of samples the
oracle classifies as the class they were conditioned on), `gfid` only when the standard FID Inception
weights file was given by path (checked by its sha256), and `tokenizer_flops` / `tokenizer_params` /
`tokenizer_samples_seen` copied from the checkpoint json; optionally `precision` / `recall`
(Kynkaanniemi et al. 2019) over the fallback network's features. With weights that are not the standard file
the Inception distance is logged as `inception_fd` with the tag `inception_network`, never as gfid.

Everything real comes from the probe set the extract run encoded (`dataset`, or the extract run's own):
the built-in shapes by default, or an ImageFolder / Parquet store whose classes the DiT conditions on.
The fallback network (`shapes-cnn-<sha8>` / `probe-cnn-<sha8>`, the sha256 of its weights file) is
trained on it; reference statistics are keyed by the probe set's fingerprint and the network's hash.
Its fingerprint is tagged (`dataset.*`) and unreadable images are counted (`corrupt_images`).

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
from vtp.data.config import DatasetConfig
from vtp.data.sets import LabelledImages
from vtp.eval.features import file_sha256, load_or_train_feature_net
from vtp.eval.frechet import RunningStats, frechet_distance
from vtp.eval.heldout import heldout_metrics
from vtp.eval.precision_recall import precision_recall
from vtp.eval.reference_batch import read_reference_batch
from vtp.eval.refstats import reference_stats
from vtp.eval.sampling import class_velocity, sample
from vtp.jobs.context import RunContext
from vtp.stages.configs import EvalConfig
from vtp.stages.dit import denormalise
from vtp.stages.extract import load_checkpoint_tokenizer
from vtp.train.dit import load_dit_ema

# The modules this stage's job imports inside functions;
# a warm local scheduler imports them once and forks each worker from itself (cluster.executors.local).
PRELOAD = ("vtp.eval.inception", "vtp.eval.probe")


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


def probe_set(cfg: EvalConfig, manifest: dict, *, where: str) -> LabelledImages:
    """The probe set the extract run encoded (its manifest), at the generated images' size; an
    `eval.dataset` given in the spec must be that same data (same fingerprint)."""
    size = int(manifest["image_size"])
    extracted = from_dict(DatasetConfig, manifest["config"]["dataset"], where=where, key="extract.dataset")
    probe = LabelledImages(cfg.dataset or extracted, image_size=size)
    mine, theirs = probe.listing.record(image_size=size), manifest["data"]
    if cfg.dataset is not None and mine["dataset.fingerprint"] != theirs["dataset.fingerprint"]:
        raise ConfigError(where, "eval.dataset", f"{cfg.dataset.path or 'synthetic'} (fingerprint "
                          f"{mine['dataset.fingerprint']}) is not the data the extract run encoded "
                          f"({theirs['dataset.path'] or 'synthetic'}, fingerprint {theirs['dataset.fingerprint']})")
    if probe.num_classes != manifest["num_classes"]:
        raise ConfigError(where, "eval.dataset", f"{probe.num_classes} classes, the DiT conditions on {manifest['num_classes']}")
    return probe


def inception_scores(images: torch.Tensor, *, cfg: EvalConfig, probe: LabelledImages, cache: Path) -> tuple[dict, dict]:
    """The Inception Frechet distance: `gfid` only when the network is the standard FID file (by its
    sha256) and the reference side is that same network's statistics of the probe set or a reference
    batch of the ADM suite (computed with the standard network); otherwise `inception_fd`."""
    from vtp.eval.inception import FEATURE_DIM, load_fid_inception

    inc = load_fid_inception(cfg.inception_weights)
    tags = {"inception_network": inc.name}
    if cfg.inception_reference:
        mu_i, cov_i = read_reference_batch(cfg.inception_reference, dim=FEATURE_DIM)
        tags["inception_reference"] = f"{Path(cfg.inception_reference).name}-{file_sha256(cfg.inception_reference)[:8]}"
    else:
        mu_i, cov_i = reference_stats(inc, network_id=inc.sha256, dim=FEATURE_DIM, probe=probe,
                                      num_images=cfg.inception_reference_images, cache_dir=cache, batch_size=50)
    gi = _stats(inc, images, FEATURE_DIM, batch=50)
    fd = frechet_distance(gi.mean(), gi.cov(), mu_i, cov_i)
    return {"gfid" if inc.is_standard else "inception_fd": fd}, tags


def feature_network(cfg: EvalConfig, probe: LabelledImages, *, image_size: int, cache: Path):
    """The fallback feature network (and oracle) every Frechet distance of this stage uses."""
    fcfg = dataclasses.replace(cfg.feature_net, image_size=image_size, dataset_seed=probe.cfg.seed)
    return load_or_train_feature_net(fcfg, cache, probe)


# Held-out images of the built-in stream start here (sample i is a pure function of (seed, i), any i):
# every stage trains on a prefix [0, n) of it (tokenizer and decoder: unique_samples, up to 1e8 in
# sweeps/; extract: num_images; the feature net: train_samples), and the linear probe (10M) and the
# feature net's held-out split (50M) sit far below 1e12, so these images are none of those.
HELDOUT_OFFSET = 10**12


def heldout_probe_images(probe: LabelledImages, n: int) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """(images (m, 3, H, W) in [-1, 1], labels (m,), class names) of probe images that no stage trained
    on. The built-in shapes: n images of the unbounded stream from HELDOUT_OFFSET. A real probe set:
    its last n images (the tail, which the feature net holds out too; the tokenizer trains on the
    pre-training data and the DiT on latents, not on these pixels)."""
    start = HELDOUT_OFFSET if probe.cfg.kind == "synthetic" else len(probe) - n
    images, labels = probe.batch(start, n)
    return images, labels, list(probe.classes)


def evaluate_heldout(tokenizer, *, cfg: EvalConfig, probe: LabelledImages, cache: Path) -> dict:
    """Reconstruction metrics and oracle controls on `cfg.recon_images` held-out real probe images."""
    images, labels, names = heldout_probe_images(probe, cfg.recon_images)
    net = feature_network(cfg, probe, image_size=probe.image_size, cache=cache)
    inception = None
    if cfg.inception_weights:
        from vtp.eval.inception import load_fid_inception

        inception = load_fid_inception(cfg.inception_weights)
    return heldout_metrics(tokenizer, images, labels, oracle=net.model, class_names=names, inception=inception)


def evaluate(images: torch.Tensor, labels: torch.Tensor, *, cfg: EvalConfig, probe: LabelledImages,
             cache: Path) -> tuple[dict, dict]:
    """(metrics, tags) for generated images against the probe set. A real probe set's images are
    used by position in its seeded order: reference statistics and precision/recall from its head,
    the feature net's training images from its head and held-out images from its tail."""
    size = images.shape[-1]
    net = feature_network(cfg, probe, image_size=size, cache=cache)
    model = net.model
    mu_r, cov_r = reference_stats(model.features, network_id=net.weights_sha256, dim=model.feature_dim, probe=probe,
                                  num_images=cfg.reference_images, cache_dir=cache)
    gen = _stats(model.features, images, model.feature_dim)
    with torch.no_grad():
        pred = torch.cat([model(images[i:i + 250]).argmax(1) for i in range(0, len(images), 250)])
    metrics = {
        "gen_fd": frechet_distance(gen.mean(), gen.cov(), mu_r, cov_r),
        "gen_fd_network_accuracy": net.heldout_accuracy,
        "oracle_accuracy": (pred == labels).float().mean().item(),
    }
    if cfg.precision_recall:
        real = probe.batch(0, cfg.num_samples)[0]
        with torch.no_grad():
            fr = torch.cat([model.features(real[i:i + 250]) for i in range(0, len(real), 250)])
            ff = torch.cat([model.features(images[i:i + 250]) for i in range(0, len(images), 250)])
        metrics["precision"], metrics["recall"] = precision_recall(fr, ff)
    tags = {"gen_fd_network": net.name}
    if cfg.inception_weights:
        inc_metrics, inc_tags = inception_scores(images, cfg=cfg, probe=probe, cache=cache)
        metrics.update(inc_metrics)
        tags.update(inc_tags)
    return metrics, tags


def run(ctx: RunContext) -> dict:
    cfg = from_dict(EvalConfig, dict(ctx.config), where=f"run {ctx.key} config", key="eval")
    for p in ("extract", cfg.dit_stage):
        if p not in ctx.parents:
            raise ConfigError(ctx.key, "parents", f"stage eval needs a {p} parent")
    ext_dir, dit_dir = Path(ctx.parents["extract"]), Path(ctx.parents[cfg.dit_stage])
    manifest = json.loads((ext_dir / "latents.json").read_text())
    cache = Path(cfg.cache_dir) if cfg.cache_dir else Path(ctx.run_dir).parent.parent / "cache"
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer, info = load_checkpoint_tokenizer(ctx)
    tokenizer = tokenizer.to(device)
    dit = load_dit_ema(dit_dir / "dit_ema.pt", map_location=device)
    shuffled = bool(dit.trained_with.get("shuffle_labels"))  # the negative control's DiT
    ctx.progress(0, 3, "phases")  # sample, score (the sweep's first eval also trains the feature net), probe
    probe = probe_set(cfg, manifest, where=f"run {ctx.key} config")  # before sampling: a mismatch fails at once
    images, labels = generate(dit, tokenizer, manifest, cfg, device)
    ctx.progress(1, 3, "phases")
    metrics, tags = evaluate(images, labels, cfg=cfg, probe=probe, cache=cache)
    ctx.progress(2, 3, "phases")
    if cfg.probe_train_images > 0:
        from vtp.eval.probe import probe_set_linear_probe, synthetic_linear_probe

        if probe.cfg.kind == "synthetic":
            metrics["linear_probe"] = synthetic_linear_probe(
                tokenizer, image_size=images.shape[-1], n_train=cfg.probe_train_images,
                n_test=cfg.probe_test_images, seed=probe.cfg.seed)
        else:
            metrics["linear_probe"] = probe_set_linear_probe(tokenizer, probe, n_train=cfg.probe_train_images,
                                                             n_test=cfg.probe_test_images)
    if probe.cfg.kind != "synthetic":
        metrics["corrupt_images"] = float(probe.skipped)  # unreadable probe images left out (never silently)
    if cfg.recon_images > 0:  # after the existing metrics: their values and RNG draws stay as they were
        metrics.update(evaluate_heldout(tokenizer, cfg=cfg, probe=probe, cache=cache))
    tags.update(probe.listing.record(image_size=probe.image_size))
    # The probe's controls (analysis.controls): chance for the oracle, and whether the DiT learned
    # true labels or shuffled ones (the negative control, which must stay near chance).
    metrics["oracle_chance"] = 1.0 / manifest["num_classes"]
    tags["probe_labels"] = "shuffled" if shuffled else "true"
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
