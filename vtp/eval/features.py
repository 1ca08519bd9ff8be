"""The documented fallback feature network for the built-in dataset, and its oracle classifier.

Standard FID needs Inception weights we may not download. For `vtp.data.synthetic.SyntheticShapes`
we instead train a small CNN to classify the 20 (shape, colour) classes, deterministically from a
config (seeded init, fixed data, fixed order), and use its penultimate activations as features for a
Frechet distance ("gen_fd" with `gen_fd_network = shapes-cnn-<hash8>`) and its argmax as the oracle
that checks whether a generated image shows the class it was conditioned on. The trained net is
cached under the content hash of its config; its held-out accuracy (on a disjoint index range of the
same stream) is stored beside it and reported with every figure that uses it.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vtp.config import to_dict
from vtp.data.synthetic import NUM_CLASSES, render
from vtp.eval.feature_config import FeatureNetConfig


class ShapesCNN(nn.Module):
    """Three conv stages (stride 2) and global average pooling: features (B, 4 * width)."""

    def __init__(self, width: int = 32, num_classes: int = NUM_CLASSES):
        super().__init__()
        w = width
        self.body = nn.Sequential(
            nn.Conv2d(3, w, 3, padding=1), nn.GroupNorm(8, w), nn.SiLU(),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.GroupNorm(8, 2 * w), nn.SiLU(),
            nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1), nn.GroupNorm(8, 4 * w), nn.SiLU(),
            nn.Conv2d(4 * w, 4 * w, 3, stride=2, padding=1), nn.GroupNorm(8, 4 * w), nn.SiLU(),
        )
        self.head = nn.Linear(4 * w, num_classes)
        self.feature_dim = 4 * w

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).mean((2, 3))  # (B, 4w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # (B, classes)


@dataclass
class FeatureNet:
    """A trained fallback network: `model.features` for Frechet distances, `model` as the oracle."""

    model: ShapesCNN
    heldout_accuracy: float
    content_hash: str

    @property
    def name(self) -> str:
        return f"shapes-cnn-{self.content_hash[:8]}"


def render_batch(start: int, n: int, *, image_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    samples = [render(start + i, image_size=image_size, seed=seed) for i in range(n)]
    x = torch.stack([s.image for s in samples])  # (n, 3, H, W)
    return x, torch.tensor([s.label for s in samples])


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> float:
    with torch.no_grad():
        pred = torch.cat([model(x[i:i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])
    return (pred == y).float().mean().item()


def train_feature_net(cfg: FeatureNetConfig) -> FeatureNet:
    """Train from scratch; deterministic for a given config (and torch build / thread count)."""
    x, y = render_batch(0, cfg.train_samples, image_size=cfg.image_size, seed=cfg.dataset_seed)
    g = torch.Generator().manual_seed(cfg.seed)
    model = ShapesCNN(cfg.width)
    with torch.no_grad():  # init from our generator, nothing from the global RNG (GroupNorm: ones/zeros)
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2 / m.weight[0].numel()) ** 0.5)
                m.bias.zero_()
    steps = cfg.epochs * (cfg.train_samples // cfg.batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps)
    model.train()
    for _ in range(cfg.epochs):
        order = torch.randperm(cfg.train_samples, generator=g)
        for i in range(cfg.train_samples // cfg.batch_size):
            idx = order[i * cfg.batch_size:(i + 1) * cfg.batch_size]
            xb = x[idx]
            flip = torch.rand(len(idx), generator=g) < 0.5  # flips keep the class: be invariant to them
            xb = torch.where(flip[:, None, None, None], xb.flip(-1), xb)  # (B, 3, H, W)
            loss = F.cross_entropy(model(xb), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    xh, yh = render_batch(cfg.heldout_offset, cfg.heldout_samples, image_size=cfg.image_size, seed=cfg.dataset_seed)
    return FeatureNet(model, accuracy(model, xh, yh), cfg.content_hash())


def load_or_train_feature_net(cfg: FeatureNetConfig, cache_dir: str | Path) -> FeatureNet:
    """The net for `cfg` from `<cache_dir>/featnet-<hash>.pt`, training and caching it on a miss."""
    h = cfg.content_hash()
    path = Path(cache_dir) / f"featnet-{h}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    # The first eval job of a sweep trains the net; concurrent ones wait for it instead of training
    # it again (flock: local disks and most cluster file systems; where it is not honoured they
    # race, train the same deterministic net, and the atomic replace keeps one).
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if path.is_file():
                blob = torch.load(path, map_location="cpu", weights_only=True)
                model = ShapesCNN(cfg.width)
                model.load_state_dict(blob["state_dict"])
                return FeatureNet(model.eval(), float(blob["heldout_accuracy"]), h)
            net = train_feature_net(cfg)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            torch.save({"state_dict": net.model.state_dict(), "heldout_accuracy": net.heldout_accuracy,
                        "config": to_dict(cfg)}, tmp)
            os.replace(tmp, path)
            return net
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
