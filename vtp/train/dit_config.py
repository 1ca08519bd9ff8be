"""Typed config of the DiT probe's training (one fixed spec per sweep, part of every run key)."""

from __future__ import annotations

from dataclasses import dataclass

# Kept in sync with vtp.models.dit.PRESETS (a test checks); listed here so loading a config never imports torch.
DIT_PRESETS = ("DiT-cpu", "DiT-cpu-s", "DiT-S", "DiT-B", "DiT-L", "DiT-XL")


@dataclass(frozen=True)
class DiTTrainConfig:
    """Defaults follow the VTP paper's probe (LightningDiT: AdamW 2e-4, EMA 0.9999, rectified flow with
    a cosine term, logit-normal t); `model`, `steps` and `batch_size` are what a CPU sweep shrinks.

    ema_warmup: decay_k = min(ema_decay, (1 + k) / (10 + k)) so that short runs get a usable average
    (diffusers' EMAModel warm-up); at 0.9999 it reaches the nominal decay after ~90k steps.
    """

    model: str = "DiT-cpu"
    # latent positions per token side: 1 = LightningDiT's (one token per position), 2 = DiT's "/2" models
    # (a finer tokenizer grid, e.g. patch 4 at 32 px: 8 x 8, probed with as many tokens as a coarse one)
    patch_size: int = 1
    steps: int = 2000
    batch_size: int = 64
    lr: float = 2e-4
    weight_decay: float = 0.0
    # LightningDiT's configs: AdamW(betas=(0.9, optimizer.beta2 = 0.95), weight_decay=0), lr 2e-4,
    # `transport.use_lognorm: true` (t = sigmoid(N(0, 1)): t_mean 0, t_std 1 below)
    betas: tuple[float, float] = (0.9, 0.95)
    warmup_steps: int = 0
    grad_clip: float = 1.0
    ema_decay: float = 0.9999
    ema_warmup: bool = True
    label_dropout: float = 0.1
    cos_weight: float = 1.0
    t_mean: float = 0.0
    t_std: float = 1.0
    seed: int = 0
    checkpoint_every: int = 500
    log_every: int = 50
    micro_batch_size: int = 0  # samples per forward/backward on one device; 0 = its whole share at once
    # The probe's negative control: the latents' class labels permuted (seeded by `seed`), so the DiT
    # cannot learn which class is which and its samples' oracle accuracy must stay near chance.
    shuffle_labels: bool = False

    def validate(self) -> None:
        if self.model not in DIT_PRESETS:
            raise ValueError(f"model: unknown DiT preset {self.model!r}; choose from {list(DIT_PRESETS)}")
        for name in ("steps", "batch_size", "checkpoint_every", "log_every", "patch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.micro_batch_size < 0:
            raise ValueError(f"micro_batch_size must be >= 0, got {self.micro_batch_size}")
        if not 0 <= self.label_dropout < 1:
            raise ValueError(f"label_dropout must be in [0, 1), got {self.label_dropout}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.lr <= 0 or self.t_std <= 0:
            raise ValueError("lr and t_std must be > 0")
