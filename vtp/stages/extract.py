"""Stage `extract`: encode the training images and their horizontal flips with one tokenizer checkpoint.

Reads `ctx.parents["tokenizer"]/checkpoints/<ctx.checkpoint>.pt`, writes latent shards
`<run_dir>/shards/<i>.pt` ({"latents": (n, d, h, w) float32, "labels": (n,)}; each shard written
atomically, so a requeued job skips the shards it already has) and `<run_dir>/latents.json` with the
shard list and the per-channel mean/std of a random subset (used to normalise for the DiT and to
de-normalise its samples).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from vtp.config import ConfigError, from_dict, to_dict
from vtp.jobs.context import RunContext
from vtp.stages.configs import ExtractConfig

# The modules this stage's job imports inside functions;
# a warm local scheduler imports them once and forks each worker from itself (cluster.executors.local).
PRELOAD = ("vtp.data.sets", "vtp.train.checkpoint")


def checkpoint_paths(ctx: RunContext) -> tuple[Path, Path]:
    """The run's tokenizer checkpoint (.pt, .json): the decoder fine-tune's when the run descends
    from a `decoder` stage (vtp.stages.decoder), else the tokenizer stage's."""
    if "tokenizer" not in ctx.parents or ctx.checkpoint is None:
        raise ConfigError(ctx.key, "parents", f"stage {ctx.stage} needs a tokenizer parent and a checkpoint number")
    source = "decoder" if "decoder" in ctx.parents else "tokenizer"
    ckdir = Path(ctx.parents[source]) / "checkpoints"
    pt, meta = ckdir / f"{ctx.checkpoint}.pt", ckdir / f"{ctx.checkpoint}.json"
    if not pt.is_file():
        raise FileNotFoundError(f"{pt}: tokenizer checkpoint {ctx.checkpoint} not found")
    return pt, meta


def load_checkpoint_tokenizer(ctx: RunContext) -> tuple[Any, dict]:
    """(VisualTokenizer in eval mode, checkpoint json) for the run's tokenizer checkpoint."""
    from vtp.train.checkpoint import load_tokenizer  # the tokenizer helper's module; torch only in jobs

    pt, meta = checkpoint_paths(ctx)
    info = json.loads(meta.read_text()) if meta.is_file() else {}
    return load_tokenizer(pt, map_location="cpu"), info


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


@torch.no_grad()
def extract_latents(tokenizer: Any, cfg: ExtractConfig, out_dir: Path) -> dict:
    """Encode probe images 0..num_images (plus flips) into shards under out_dir; return the manifest.
    Unreadable images are left out, counted per shard and in the manifest (`corrupt_images`)."""
    from vtp.data.sets import LabelledImages

    shard_dir = out_dir / "shards"
    shard_dir.mkdir(parents=True, exist_ok=True)
    size = int(tokenizer.image_size)
    probe = LabelledImages(cfg.dataset, image_size=size)
    shards = []
    for s, start in enumerate(range(0, cfg.num_images, cfg.shard_size)):
        path = shard_dir / f"{s:05d}.pt"
        shards.append(path.name)
        if path.is_file():
            continue  # resumed job: this shard is complete (written atomically)
        n = min(cfg.shard_size, cfg.num_images - start)
        lat, lab, skipped = [], [], probe.skipped
        for b in range(start, start + n, cfg.batch_size):
            x, y = probe.batch(b, min(cfg.batch_size, start + n - b))  # the built-in shapes: render_batch
            if not len(x):
                continue  # every image of the batch was unreadable (counted)
            views = [x, x.flip(-1)] if cfg.flip else [x]  # (B, 3, H, W) each
            for v in views:
                lat.append(tokenizer.encode(v).float())  # (B, d, h, w)
                lab.append(y)
        _atomic_save({"latents": torch.cat(lat), "labels": torch.cat(lab), "skipped": probe.skipped - skipped}, path)
    blobs = [torch.load(shard_dir / name, weights_only=True) for name in shards]
    latents = torch.cat([b["latents"] for b in blobs])
    g = torch.Generator().manual_seed(cfg.seed)
    subset = latents[torch.randperm(len(latents), generator=g)[: cfg.stats_samples]]  # (S, d, h, w)
    corrupt = sum(int(b.get("skipped", 0)) for b in blobs)
    if corrupt:
        print(f"extract: {corrupt} unreadable images of {cfg.dataset.path} skipped", flush=True)
    manifest = {
        "shards": shards, "num_latents": len(latents), "latent_shape": list(latents.shape[1:]),
        "num_classes": probe.num_classes, "classes": list(probe.classes), "image_size": size,
        "mean": subset.mean((0, 2, 3)).tolist(), "std": subset.std((0, 2, 3)).clamp_min(1e-6).tolist(),
        "config": to_dict(cfg), "corrupt_images": corrupt, "data": probe.listing.record(image_size=size),
    }
    (out_dir / "latents.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def load_shards(run_dir: Path, shards: list[str] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """All latents (N, d, h, w) and labels (N,) of an extract run."""
    if shards is None:
        shards = json.loads((Path(run_dir) / "latents.json").read_text())["shards"]
    blobs = [torch.load(Path(run_dir) / "shards" / s, weights_only=True) for s in shards]
    return torch.cat([b["latents"] for b in blobs]), torch.cat([b["labels"] for b in blobs])


def run(ctx: RunContext) -> dict:
    cfg = from_dict(ExtractConfig, dict(ctx.config), where=f"run {ctx.key} config", key="extract")
    tokenizer, info = load_checkpoint_tokenizer(ctx)
    manifest = extract_latents(tokenizer, cfg, Path(ctx.run_dir))
    ctx.tracker.log_params({f"extract.{k}": v for k, v in to_dict(cfg).items()})
    ctx.tracker.set_tags(manifest["data"])
    return {"num_latents": manifest["num_latents"], "latent_shape": manifest["latent_shape"],
            "checkpoint": ctx.checkpoint, "tokenizer_step": info.get("step"), "num_classes": manifest["num_classes"],
            "corrupt_images": manifest["corrupt_images"], **manifest["data"]}
