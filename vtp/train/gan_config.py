"""The decoder GAN fine-tune stage's typed config (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass, field

from vtp.data.config import DataNeed, DatasetConfig


@dataclass(frozen=True)
class DecoderGANConfig:
    """Second stage of the tokenizer: the encoder and bottleneck are frozen (the latent space the DiT
    sees does not change), the pixel decoder is fine-tuned with L1 (+ optional perceptual) plus a
    hinge GAN loss against a PatchGAN discriminator, which starts after `disc_start` steps."""

    steps: int = 200
    batch_size: int = 32
    lr: float = 1e-4
    disc_lr: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.9)  # VQGAN's GAN-training betas
    lambda_gan: float = 0.1
    lambda_perceptual: float = 0.0
    perceptual_weights: str = ""  # VGG16 `features` state dict by local path; needed when lambda_perceptual > 0
    disc_width: int = 32
    disc_layers: int = 2
    disc_start: int = 0  # steps of reconstruction-only fine-tuning before the GAN term
    unique_samples: int = 10_000
    dataset: DatasetConfig = field(default_factory=DatasetConfig)  # the pre-training data, as the tokenizer's
    seed: int = 0
    log_every: int = 20
    checkpoint_every: int = 100

    def validate(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("steps and batch_size must be >= 1")
        if self.lambda_gan < 0 or self.lambda_perceptual < 0:
            raise ValueError("loss weights must be >= 0")
        if self.lambda_perceptual > 0 and not self.perceptual_weights:
            raise ValueError("lambda_perceptual > 0 needs perceptual_weights (a local VGG16 weights path)")
        if not 0 <= self.disc_start < self.steps:
            raise ValueError(f"disc_start must be in [0, steps), got {self.disc_start}")

    def data_needs(self) -> tuple[DataNeed, ...]:
        return (DataNeed("dataset", self.dataset, images=self.unique_samples),)
