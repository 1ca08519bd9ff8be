"""Reference feature statistics of real images, computed once per (dataset, feature network), or read
from a reference batch `.npz` (the `mu`/`sigma` arrays of the ADM evaluation suite).

Cached as `<cache_dir>/refstats-<hash>.npz`, the hash covering the dataset (the built-in stream's
seed, or a real probe set's fingerprint: its file list and sizes or shard names, sizes and row
counts), the number and index range of images, the image size, and the feature network's identity
(the sha256 of its weights file).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from vtp.data.sets import LabelledImages
from vtp.eval.features import render_batch
from vtp.eval.frechet import RunningStats


def stats_key(*, dataset: dict, num_images: int, offset: int, network_id: str) -> str:
    blob = json.dumps({"dataset": dataset, "n": num_images, "offset": offset, "net": network_id}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def feature_stats(
    features: Callable[[torch.Tensor], torch.Tensor], images: Callable[[int, int], torch.Tensor], *,
    num_images: int, dim: int, batch_size: int = 250,
) -> RunningStats:
    """Mean/cov of `features` over images(start, n) batches, for start in 0..num_images."""
    stats = RunningStats(dim)
    for start in range(0, num_images, batch_size):
        with torch.no_grad():
            stats.update(features(images(start, min(batch_size, num_images - start))).double().numpy())
    return stats


def synthetic_reference_stats(
    features: Callable[[torch.Tensor], torch.Tensor], *, network_id: str, dim: int, image_size: int,
    dataset_seed: int, num_images: int, cache_dir: str | Path, offset: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """(mu, cov) of the first `num_images` SyntheticShapes images from `offset`, cached by content hash."""
    dataset = {"kind": "synthetic", "seed": dataset_seed, "image_size": image_size}
    key = stats_key(dataset=dataset, num_images=num_images, offset=offset, network_id=network_id)
    path = Path(cache_dir) / f"refstats-{key}.npz"

    def images(start: int, n: int) -> torch.Tensor:
        return render_batch(offset + start, n, image_size=image_size, seed=dataset_seed)[0]

    return _cached(path, lambda: feature_stats(features, images, num_images=num_images, dim=dim), num_images)


def _cached(path: Path, compute: Callable[[], RunningStats], num_images: int) -> tuple[np.ndarray, np.ndarray]:
    if path.is_file():
        with np.load(path) as f:
            return f["mu"], f["cov"]
    stats = compute()
    mu, cov = stats.mean(), stats.cov()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.tmp{os.getpid()}.npz")
    np.savez(tmp, mu=mu, cov=cov, n=num_images)
    os.replace(tmp, path)
    return mu, cov


def reference_stats(
    features: Callable[[torch.Tensor], torch.Tensor], *, network_id: str, dim: int, probe: LabelledImages,
    num_images: int, cache_dir: str | Path, batch_size: int = 250,
) -> tuple[np.ndarray, np.ndarray]:
    """(mu, cov) of `features` over the first `num_images` images of the probe set (unreadable ones
    skipped and counted by `probe`). The built-in shapes go through `synthetic_reference_stats`."""
    if probe.cfg.kind == "synthetic":
        return synthetic_reference_stats(features, network_id=network_id, dim=dim, image_size=probe.image_size,
                                         dataset_seed=probe.cfg.seed, num_images=num_images, cache_dir=cache_dir)
    if num_images > len(probe):
        raise ValueError(f"{probe.cfg.path}: {num_images} reference images asked for, it holds {len(probe)}")
    dataset = {"kind": probe.cfg.kind, "fingerprint": probe.listing.sha256, "seed": probe.cfg.seed,
               "image_size": probe.image_size}
    key = stats_key(dataset=dataset, num_images=num_images, offset=0, network_id=network_id)
    return _cached(Path(cache_dir) / f"refstats-{key}.npz",
                   lambda: feature_stats(features, lambda start, n: probe.batch(start, n)[0], num_images=num_images,
                                         dim=dim, batch_size=batch_size), num_images)
