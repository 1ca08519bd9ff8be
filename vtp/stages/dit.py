"""Stage `dit`: train the sweep's fixed-spec DiT on one extract run's normalised latents."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from vtp.config import ConfigError, from_dict, to_dict
from vtp.jobs.context import RunContext
from vtp.stages.extract import load_shards
from vtp.train.distributed import process_group
from vtp.train.dit import train_dit
from vtp.train.dit_config import DiTTrainConfig


def normalise(latents: torch.Tensor, manifest: dict) -> torch.Tensor:
    mean = torch.tensor(manifest["mean"])[None, :, None, None]  # (1, d, 1, 1)
    std = torch.tensor(manifest["std"])[None, :, None, None]
    return (latents - mean) / std


def denormalise(latents: torch.Tensor, manifest: dict) -> torch.Tensor:
    mean = torch.tensor(manifest["mean"], device=latents.device)[None, :, None, None]
    std = torch.tensor(manifest["std"], device=latents.device)[None, :, None, None]
    return latents * std + mean


def shuffled(labels: torch.Tensor, *, seed: int) -> torch.Tensor:
    """The labels in a seeded random order: the same class counts, no link to the latents."""
    g = torch.Generator().manual_seed(1_000_003 + seed)
    return labels[torch.randperm(len(labels), generator=g)]


def run(ctx: RunContext) -> dict:
    cfg = from_dict(DiTTrainConfig, dict(ctx.config), where=f"run {ctx.key} config", key="dit")
    if "extract" not in ctx.parents:
        raise ConfigError(ctx.key, "parents", "stage dit needs an extract parent")
    ext = Path(ctx.parents["extract"])
    manifest = json.loads((ext / "latents.json").read_text())
    latents, labels = load_shards(ext, manifest["shards"])
    if cfg.shuffle_labels:
        labels = shuffled(labels, seed=cfg.seed)
    ctx.tracker.log_params({f"dit.{k}": v for k, v in to_dict(cfg).items()})
    with process_group() as dist:  # one rank per task of the job (a single process: rank 0 of 1)
        return train_dit(cfg, latents=normalise(latents, manifest), labels=labels,
                         num_classes=manifest["num_classes"], run_dir=ctx.run_dir, tracker=ctx.tracker,
                         progress=ctx.progress, dist=dist)
