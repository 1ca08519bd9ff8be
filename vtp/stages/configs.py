"""Each built-in stage's config dataclass, found from its target without importing torch.

A job validates its config when it starts; the planner validates every run's resolved config here,
when the sweep is expanded, so a typo in `stages[i].config` (an unknown key, a wrong type, a value
out of range) stops `vtp-sweep launch` before anything is submitted or written, naming the spec file
and the key. A target not listed (a user's own stage) is checked only by its job.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from vtp.config import from_dict
from vtp.data.config import DataNeed, DatasetConfig
from vtp.data.source import DataCheck
from vtp.eval.feature_config import FeatureNetConfig

# target -> "module:Class" of the dataclass its `run` builds from the whole run config
SCHEMAS: Mapping[str, str] = {
    "vtp.stages.tokenizer:run": "vtp.train.config:TokenizerTrainConfig",
    "vtp.stages.decoder:run": "vtp.train.gan_config:DecoderGANConfig",
    "vtp.stages.extract:run": "vtp.stages.configs:ExtractConfig",
    "vtp.stages.dit:run": "vtp.train.dit_config:DiTTrainConfig",
    "vtp.stages.eval:run": "vtp.stages.configs:EvalConfig",
}


# target -> how a job of it runs (torch-free, read by the engine when it resolves each stage's tasks):
#   ddp:    one process per GPU of `gres` on each of `nodes` nodes, one torch.distributed job
#   single: one process on one node; `nodes > 1` is refused at plan time
#   ray:    one task per node; the first starts the Ray head and the driver, the others return
LAUNCH: Mapping[str, Literal["ddp", "single", "ray"]] = {
    "vtp.stages.tokenizer:run": "ddp",
    "vtp.stages.decoder:run": "ddp",
    "vtp.stages.dit:run": "ddp",
    "vtp.stages.extract:run": "single",
    "vtp.stages.eval:run": "single",
    "vtp.stages.tune:run": "ray",
}


def check_config(target: str, config: Mapping[str, Any], *, where: Any, key: str,
                 data: DataCheck | None = None) -> None:
    """Raise ConfigError (naming `where` and `key`.<field>) if `config` is not valid for `target`;
    with `data`, also if a dataset it reads is missing, malformed or too small (listings only)."""
    schema = SCHEMAS.get(target)
    if schema is None:
        return
    module, _, name = schema.partition(":")
    cfg = from_dict(getattr(importlib.import_module(module), name), dict(config), where=where, key=key)
    if data is None:
        return
    for need in getattr(cfg, "data_needs", tuple)():
        data(need, where=where, key=key)
    if isinstance(cfg, EvalConfig) and cfg.inception_weights:
        data.weights_file(cfg.inception_weights, where=where, key=f"{key}.inception_weights")
    if isinstance(cfg, EvalConfig) and cfg.inception_reference:
        data.reference_batch(cfg.inception_reference, where=where, key=f"{key}.inception_reference")


@dataclass(frozen=True)
class ExtractConfig:
    dataset: DatasetConfig = field(default_factory=DatasetConfig)  # the probe set (its classes condition the DiT)
    num_images: int = 5000  # the first N images of the probe set (the built-in shapes: the tokenizer's prefix)
    flip: bool = True
    batch_size: int = 256
    shard_size: int = 4096
    stats_samples: int = 2000
    seed: int = 0

    def validate(self) -> None:
        for name in ("num_images", "batch_size", "shard_size", "stats_samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    def data_needs(self) -> tuple[DataNeed, ...]:
        return (DataNeed("dataset", self.dataset, images=self.num_images, labels=True),)


@dataclass(frozen=True)
class EvalConfig:
    # Given, the probe set is checked at plan time and must be the extract run's data (same fingerprint).
    dataset: DatasetConfig | None = None  # the probe set, as extract's; None = the extract run's own (its latents.json)
    num_samples: int = 2000
    sampler: Literal["euler", "heun"] = "euler"
    steps: int = 50
    guidance: float = 1.0  # off, as in the VTP paper's probe
    batch_size: int = 250
    reference_images: int = 5000
    inception_weights: str = ""  # path to pytorch-fid's pt_inception-2015-12-05-6726825d.pth; "" = skip
    inception_reference_images: int = 10000
    # e.g. the ADM suite's VIRTUAL_imagenet256_labeled.npz; its shapes are checked at plan time
    inception_reference: str = ""  # reference batch .npz (mu (2048,), sigma (2048, 2048)) by path; "" = the probe set's images
    feature_net: FeatureNetConfig = field(default_factory=FeatureNetConfig)
    cache_dir: str = ""  # "" = <sweep folder>/cache (run dirs are <sweep>/runs/<key>)
    # bottleneck linear probe of the same checkpoint (understanding, the paper's scaling metric),
    # logged beside gen_fd so analysis can correlate the two; 0 images = skip
    probe_train_images: int = 2000
    probe_test_images: int = 1000
    precision_recall: bool = False  # k-NN precision/recall (k=3) against num_samples real images
    # held-out real probe images (never trained on) for the reconstruction metrics and the oracle's
    # controls, see vtp.stages.eval
    recon_images: int = 1000  # recon_psnr/ssim/fd, rfid, oracle_accuracy_real/recon; 0 = skip
    seed: int = 0
    # the upstream stage whose DiT this run samples: `dit`, or a probe control's (sweeps/mini.yaml's
    # `dit_shuffled`, trained on shuffled labels: the negative control)
    dit_stage: str = "dit"

    def validate(self) -> None:
        for name in ("num_samples", "steps", "batch_size", "reference_images"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.num_samples < 2:
            raise ValueError("num_samples must be >= 2 for a covariance")
        if self.recon_images < 0 or self.recon_images == 1:
            raise ValueError(f"recon_images must be 0 (skip) or >= 2 for a covariance, got {self.recon_images}")
        if self.inception_reference and not self.inception_weights:
            raise ValueError("inception_reference needs inception_weights (the generated side's network)")

    def probe_images(self) -> int:
        """Images of a real probe set the eval reads (see vtp.stages.eval for the split): reference
        statistics from its head, the feature net's and the linear probe's held-out images from its tail."""
        fn = self.feature_net
        return max(self.reference_images, self.num_samples if self.precision_recall else 0,
                   self.inception_reference_images if self.inception_weights and not self.inception_reference else 0,
                   fn.train_samples + fn.heldout_samples, self.probe_train_images + self.probe_test_images,
                   self.recon_images)

    def data_needs(self) -> tuple[DataNeed, ...]:
        if self.dataset is None:
            return ()  # the extract run's data, checked with it
        return (DataNeed("dataset", self.dataset, images=self.probe_images(), labels=True),)
