"""The documented fallback feature network, trained on the probe set, and its oracle classifier.

Standard FID needs Inception weights we may not download. We instead train a small CNN to classify
the probe set's classes (the built-in shapes: 20 (shape, colour) classes; a real ImageFolder or
Parquet probe set: its own classes), deterministically from a config (seeded init, fixed data, fixed
order), and use its penultimate activations as features for a Frechet distance ("gen_fd") and its
argmax as the oracle that checks whether a generated image shows the class it was conditioned on.

The trained net is cached under the content hash of its config (and of the probe set's fingerprint
for real data). Its name, `gen_fd_network = shapes-cnn-<sha8>` (built-in shapes) or
`probe-cnn-<sha8>` (a real probe set), carries the sha256 of its saved weights file, and reference
statistics are keyed by that hash: a retrained network is never scored against stale statistics.
Its held-out accuracy (a disjoint index range: the far end of the stream, or the last images of the
probe set's seeded order) is stored beside it and reported with every figure that uses it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vtp.config import to_dict
from vtp.data.sets import LabelledImages
from vtp.data.synthetic import NUM_CLASSES, render_batch  # render_batch: imported from here elsewhere
from vtp.eval.feature_config import FeatureNetConfig
from vtp.eval.filehash import file_sha256  # the one sha256 of a weights file (also imported from here)


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
    content_hash: str  # of its recipe (and data): the cache key
    weights_sha256: str = ""  # of its saved weights file: its identity in names and statistics keys
    family: str = "shapes"  # "probe" when trained on a real probe set

    @property
    def name(self) -> str:
        return f"{self.family}-cnn-{self.weights_sha256[:8]}"


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> float:
    with torch.no_grad():
        pred = torch.cat([model(x[i:i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])
    return (pred == y).float().mean().item()


def random_blur(x: torch.Tensor, max_sigma: float, g: torch.Generator) -> torch.Tensor:
    """Half of the images (B, C, H, W) blurred by a separable Gaussian of sigma ~ U(0.3, max_sigma)
    each (5 taps, reflect padding); the rest unchanged."""
    b, c, h, w = x.shape
    sigma = 0.3 + (max_sigma - 0.3) * torch.rand(b, generator=g)  # (B,)
    keep = torch.rand(b, generator=g) < 0.5
    taps = torch.arange(-2, 3, dtype=x.dtype)  # (5,)
    k = torch.exp(-0.5 * (taps[None] / sigma[:, None]) ** 2)
    k = (k / k.sum(1, keepdim=True)).repeat_interleave(c, 0)  # (B*C, 5)
    y = x.reshape(1, b * c, h, w)
    y = F.conv2d(F.pad(y, (2, 2, 0, 0), mode="reflect"), k[:, None, None, :], groups=b * c)
    y = F.conv2d(F.pad(y, (0, 0, 2, 2), mode="reflect"), k[:, None, :, None], groups=b * c)
    return torch.where(keep[:, None, None, None], x, y.reshape(b, c, h, w))


def _real(probe: LabelledImages | None) -> bool:
    return probe is not None and probe.cfg.kind != "synthetic"


def train_feature_net(cfg: FeatureNetConfig, probe: LabelledImages | None = None) -> FeatureNet:
    """Train from scratch; deterministic for a given config (and torch build / thread count). On a
    real `probe` set: its first `train_samples` images, held out: its last `heldout_samples`."""
    if _real(probe):
        if cfg.train_samples + cfg.heldout_samples > len(probe):
            raise ValueError(f"{probe.cfg.path}: the feature net needs {cfg.train_samples} + {cfg.heldout_samples} "
                             f"images (eval.feature_net.train_samples + heldout_samples), it holds {len(probe)}")
        x, y = probe.batch(0, cfg.train_samples)
    else:
        x, y = render_batch(0, cfg.train_samples, image_size=cfg.image_size, seed=cfg.dataset_seed)
    n_train = len(x)  # fewer than train_samples when unreadable images were skipped (counted by probe)
    g = torch.Generator().manual_seed(cfg.seed)
    model = ShapesCNN(cfg.width, probe.num_classes) if _real(probe) else ShapesCNN(cfg.width)
    with torch.no_grad():  # init from our generator, nothing from the global RNG (GroupNorm: ones/zeros)
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2 / m.weight[0].numel()) ** 0.5)
                m.bias.zero_()
    steps = cfg.epochs * (n_train // cfg.batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps)
    model.train()
    for _ in range(cfg.epochs):
        order = torch.randperm(n_train, generator=g)
        for i in range(n_train // cfg.batch_size):
            idx = order[i * cfg.batch_size:(i + 1) * cfg.batch_size]
            xb = x[idx]
            flip = torch.rand(len(idx), generator=g) < 0.5  # flips keep the class: be invariant to them
            xb = torch.where(flip[:, None, None, None], xb.flip(-1), xb)  # (B, 3, H, W)
            if cfg.blur > 0:
                xb = random_blur(xb, cfg.blur, g)
            loss = F.cross_entropy(model(xb), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    if _real(probe):
        xh, yh = probe.batch(len(probe) - cfg.heldout_samples, cfg.heldout_samples)
    else:
        xh, yh = render_batch(cfg.heldout_offset, cfg.heldout_samples, image_size=cfg.image_size, seed=cfg.dataset_seed)
    return FeatureNet(model, accuracy(model, xh, yh), _cache_hash(cfg, probe), family=_family(probe))


def _family(probe: LabelledImages | None) -> str:
    return "probe" if _real(probe) else "shapes"


def _cache_hash(cfg: FeatureNetConfig, probe: LabelledImages | None) -> str:
    if not _real(probe):
        return cfg.content_hash()
    blob = f"{cfg.content_hash()}:{probe.listing.sha256}:{probe.cfg.seed}:{probe.image_size}"
    return hashlib.sha256(blob.encode()).hexdigest()




def load_or_train_feature_net(cfg: FeatureNetConfig, cache_dir: str | Path,
                              probe: LabelledImages | None = None) -> FeatureNet:
    """The net for `cfg` (on the probe set `probe`; None or the built-in shapes: the shapes stream)
    from `<cache_dir>/featnet-<hash>.pt`, training and caching it on a miss."""
    h = _cache_hash(cfg, probe)
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
                model = ShapesCNN(cfg.width, blob["state_dict"]["head.weight"].shape[0])
                model.load_state_dict(blob["state_dict"])
                return FeatureNet(model.eval(), float(blob["heldout_accuracy"]), h, file_sha256(path), _family(probe))
            net = train_feature_net(cfg, probe)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            torch.save({"state_dict": net.model.state_dict(), "heldout_accuracy": net.heldout_accuracy,
                        "config": to_dict(cfg), "data": probe.listing.sha256 if _real(probe) else "synthetic"}, tmp)
            os.replace(tmp, path)
            net.weights_sha256 = file_sha256(path)
            return net
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
