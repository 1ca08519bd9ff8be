"""The tokenizer stage's typed config (every key is listed in docs/stage-configs.md, generated
from it). Torch-free: the sweep engine and the FLOP formula read it at plan time.

Load with `vtp.config.from_dict(TokenizerTrainConfig, data, where=..., key=...)`; derived values
(per-objective batch sizes, number of steps) come from `resolve(cfg)` in one named step.

`batch_size` is B; each objective trains on a prefix of the step's images of size fraction * B
(VTP: CLIP on B, SSL on B/4, reconstruction on B/8). A step loads, and counts as "seen", only the
largest of those subsets: an `ae` run at rec_fraction 1/8 sees B/8 images a step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from vtp.data.config import DataNeed, DatasetConfig  # the schema every stage shares
from vtp.models.presets import PRESETS

OBJECTIVES = ("ae", "clip+ae", "ssl+ae", "vtp")
Objective = Literal["ae", "clip+ae", "ssl+ae", "vtp"]


@dataclass(frozen=True)
class TokenizerTrainConfig:
    encoder: str = "cpu-xs"
    decoder_depth: int = 2
    decoder_width: int = 0  # 0 = encoder width
    objective: Objective = "vtp"
    image_size: int = 32
    patch_size: int = 4
    latent_dim: int = 16
    batch_size: int = 64
    clip_fraction: float = 1.0
    ssl_fraction: float = 0.25
    rec_fraction: float = 0.125
    lambda_rec: float = 0.1
    # L_rec = L1 + lambda_perceptual * LPIPS-VGG16 (vtp.losses.perceptual). VTP (arXiv 2512.13687,
    # its pre-training reconstruction objective) writes L_rec = L1 + L_perceptual: weight 1.0, also
    # the LDM and VA-VAE tokenizers' weight. 0 = L1 only: the default, and the CPU specs' (VGG16
    # costs far more than a tiny tokenizer)
    lambda_perceptual: float = 0.0  # L_rec = L1 + this x LPIPS-VGG16; the paper's value is 1.0; 0 = off
    perceptual_weights: str = ""  # LPIPS-VGG16 state dict by local path; needed when lambda_perceptual > 0
    lambda_clip: float = 1.0  # applied only when the objective includes CLIP
    lambda_ssl: float = 1.0  # applied only when the objective includes SSL
    budget_samples: int | None = None
    budget_steps: int | None = None
    budget_flops: float | None = None
    unique_samples: int = 10_000
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_fraction: float = 0.05
    min_lr_fraction: float = 0.01
    grad_clip: float = 1.0
    seed: int = 0
    checkpoints: tuple[int, ...] = (1, 2, 4, 7, 12, 19, 27, 35, 40)
    checkpoint_denominator: int = 40
    # "last": only the newest checkpoint keeps the optimizer/teacher state a resume needs; "all":
    # every one does (to branch training from an intermediate checkpoint, at ~4x the disk)
    full_state_checkpoints: Literal["last", "all"] = "last"
    # SSL (DINOv2) extras
    n_local_crops: int = 2
    local_crop_size: int = 0  # 0 = 3/8 of image_size rounded to a multiple of the patch (>= 2 patches)
    mask_ratio: float = 0.3  # fraction of global-crop patches masked for iBOT (fixed count per crop)
    mask_mode: Literal["random", "block"] = "random"  # block: BEiT/iBOT/DINOv2 rectangles, same count
    # DINOv2's colour jitter, grayscale, blur, solarisation on the SSL crops (vtp.train.photometric);
    # off by default: on the built-in dataset colour is half of the class. For real images.
    photometric: bool = False
    teacher_momentum: tuple[float, float] = (0.994, 1.0)  # start, end (cosine)
    teacher_temp: tuple[float, float] = (0.04, 0.07)  # start, end of the linear warm-up
    teacher_temp_warmup_fraction: float = 0.3
    student_temp: float = 0.1
    center_momentum: float = 0.9
    koleo_weight: float = 0.1
    ibot_weight: float = 1.0
    swiglu: bool = False
    log_every: int = 10
    # Data parallelism and preemption (do not change what is computed, only where and when it is saved)
    micro_batch_size: int = 0  # images per forward/backward on one device; 0 = its whole share at once
    resume_every_s: float = 600.0  # rolling resume state between checkpoints; 0 = only checkpoints
    activation_checkpointing: bool = False  # recompute encoder blocks in the backward (memory for compute)

    def validate(self) -> None:
        if self.encoder not in PRESETS:
            raise ValueError(f"encoder: unknown preset {self.encoder!r}; valid presets are: {', '.join(PRESETS)}")
        budgets = [b for b in (self.budget_samples, self.budget_steps, self.budget_flops) if b is not None]
        if len(budgets) != 1:
            raise ValueError("give exactly one of budget_samples, budget_steps, budget_flops")
        if budgets[0] <= 0:
            raise ValueError("the budget must be positive")
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}")
        if self.local_crop_size and self.local_crop_size % self.patch_size:
            raise ValueError(f"local_crop_size {self.local_crop_size} is not a multiple of patch_size")
        for name in ("clip_fraction", "ssl_fraction", "rec_fraction"):
            v = getattr(self, name)
            if not 0 < v <= 1:
                raise ValueError(f"{name} must be in (0, 1], got {v}")
        if self.batch_size < 1 or self.unique_samples < 1:
            raise ValueError("batch_size and unique_samples must be >= 1")
        if not self.checkpoints or any(not 0 < k <= self.checkpoint_denominator for k in self.checkpoints):
            raise ValueError(f"checkpoints must lie in 1..{self.checkpoint_denominator}, got {self.checkpoints}")
        if self.micro_batch_size < 0 or self.resume_every_s < 0:
            raise ValueError("micro_batch_size and resume_every_s must be >= 0")
        if self.lambda_perceptual < 0:
            raise ValueError(f"lambda_perceptual must be >= 0, got {self.lambda_perceptual}")
        if self.lambda_perceptual > 0 and not self.perceptual_weights:
            raise ValueError("perceptual_weights: lambda_perceptual > 0 needs a local LPIPS-VGG16 weights path")
        if self.lambda_perceptual > 0 and not Path(self.perceptual_weights).is_file():
            raise ValueError(f"perceptual_weights: {self.perceptual_weights}: file not found (LPIPS-VGG16 weights)")
        if not 0 < self.mask_ratio < 1:
            raise ValueError(f"mask_ratio must be in (0, 1), got {self.mask_ratio}")

    def data_needs(self) -> tuple[DataNeed, ...]:
        """What `vtp-sweep plan` checks of the data before submitting (vtp.data.source.DataCheck)."""
        return (DataNeed("dataset", self.dataset, images=self.unique_samples, captions=True),)


@dataclass(frozen=True)
class Resolved:
    """Values derived once from a TokenizerTrainConfig (see `resolve`)."""

    use_clip: bool
    use_ssl: bool
    n_clip: int  # images per step in the CLIP loss (0 when off)
    n_ssl: int  # images per step in the SSL losses (0 when off)
    n_rec: int  # images per step in the reconstruction loss
    n_plain: int  # images per step through the un-augmented encoder pass (CLIP and rec share it)
    n_images: int  # images loaded per step = samples seen per step (the largest subset; all are prefixes)
    decoder_width: int
    local_crop_size: int
    n_mask: int  # masked patches per global crop
    steps: int  # total optimizer steps (set by the FLOP formula for a FLOP budget)


def objective_parts(objective: str) -> tuple[bool, bool]:
    """(uses CLIP, uses SSL); reconstruction is part of every objective."""
    return objective in ("clip+ae", "vtp"), objective in ("ssl+ae", "vtp")


def default_local_crop(image_size: int, patch_size: int) -> int:
    return max(2 * patch_size, round(image_size * 3 / 8 / patch_size) * patch_size)


def resolve_sizes(cfg: TokenizerTrainConfig) -> Resolved:
    """Per-objective batch subsets and view sizes; `steps` is left 0 (see vtp.flops.tokenizer)."""
    use_clip, use_ssl = objective_parts(cfg.objective)
    b = cfg.batch_size
    n_clip = max(1, round(cfg.clip_fraction * b)) if use_clip else 0
    n_ssl = max(2, round(cfg.ssl_fraction * b)) if use_ssl else 0  # KoLeo needs >= 2
    n_rec = max(1, round(cfg.rec_fraction * b))
    n_tokens = (cfg.image_size // cfg.patch_size) ** 2
    return Resolved(
        use_clip=use_clip,
        use_ssl=use_ssl,
        n_clip=n_clip,
        n_ssl=n_ssl,
        n_rec=n_rec,
        n_plain=max(n_clip, n_rec),
        n_images=max(n_clip, n_rec, n_ssl),
        decoder_width=cfg.decoder_width or PRESETS[cfg.encoder].encoder.width,
        local_crop_size=cfg.local_crop_size or default_local_crop(cfg.image_size, cfg.patch_size),
        n_mask=max(1, math.floor(cfg.mask_ratio * n_tokens)),
        steps=0,
    )
