"""One step's losses: Total = lambda_rec * L_rec + lambda_clip * L_clip + lambda_ssl * L_ssl.

Batch subsets (VTP: CLIP on all of B, SSL on B/4, reconstruction on B/8) are prefixes of the batch.
CLIP and reconstruction share one un-augmented encoder pass; SSL runs the student on masked global
crops and local crops and the EMA teacher on the unmasked global crops (DINOv2). What this computes
is exactly what `vtp.flops.tokenizer` counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vtp.losses.clip import clip_loss
from vtp.losses.dino import dino_loss, entropy, ibot_loss, teacher_probs, update_center
from vtp.losses.koleo import koleo_loss
from vtp.losses.masking import random_patch_mask
from vtp.losses.reconstruction import l1_loss
from vtp.models.text import tokenize
from vtp.models.tokenizer import VisualTokenizer
from vtp.train.config import Resolved, TokenizerTrainConfig
from vtp.train.views import random_resized_crops

GLOBAL_SCALE = (0.32, 1.0)  # DINOv2's crop scales
LOCAL_SCALE = (0.05, 0.32)


@dataclass
class Centers:
    """DINO (class token) and iBOT (patch) centres of the teacher's logits, (1, K) each."""

    cls: torch.Tensor
    patch: torch.Tensor


@dataclass
class StepOutput:
    total: torch.Tensor
    parts: dict[str, torch.Tensor]  # detached, for logging
    centers: Centers | None


def make_teacher(model: VisualTokenizer) -> nn.ModuleDict:
    """EMA teacher: a frozen copy of the student's encoder and SSL head (same parameter names as
    `student_ssl_modules`)."""
    import copy

    teacher = nn.ModuleDict({"encoder": copy.deepcopy(model.encoder), "ssl_head": copy.deepcopy(model.ssl_head)})
    return teacher.requires_grad_(False)


def student_ssl_modules(model: VisualTokenizer) -> nn.ModuleDict:
    return nn.ModuleDict({"encoder": model.encoder, "ssl_head": model.ssl_head})


def _masked(tokens: torch.Tensor, mask: torch.Tensor, n_mask: int) -> torch.Tensor:
    """The masked tokens of (B, N, D), row by row in position order -> (B * n_mask, D).
    Same as `tokens[mask]` given exactly n_mask per row, without a data-dependent shape."""
    idx = mask.to(torch.int8).argsort(dim=1, descending=True, stable=True)[:, :n_mask]  # (B, n_mask)
    picked = tokens.gather(1, idx.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))  # (B, n_mask, D)
    return picked.reshape(-1, tokens.shape[-1])


def _ssl_losses(
    model: VisualTokenizer,
    teacher: nn.ModuleDict,
    x: torch.Tensor,
    cfg: TokenizerTrainConfig,
    sizes: Resolved,
    centers: Centers,
    teacher_temp: float,
    gen: torch.Generator,
) -> tuple[dict[str, torch.Tensor], Centers]:
    n = x.shape[0]
    g = torch.cat([random_resized_crops(x, cfg.image_size, GLOBAL_SCALE, gen) for _ in range(2)])  # (2n, 3, H, W)
    num_patches = (cfg.image_size // cfg.patch_size) ** 2
    mask = random_patch_mask(2 * n, num_patches, sizes.n_mask, gen).to(x.device)  # (2n, N)
    s_glob = model.encoder(g, mask=mask)  # (2n, 1+N, D)
    cls = [s_glob[:, 0]]
    if cfg.n_local_crops:
        loc = torch.cat(
            [random_resized_crops(x, sizes.local_crop_size, LOCAL_SCALE, gen) for _ in range(cfg.n_local_crops)]
        )  # (L n, 3, h, w)
        cls.append(model.encoder(loc)[:, 0])  # (L n, D)
    s_cls = model.ssl_head(torch.cat(cls))  # ((2+L) n, K)
    s_patch = model.ssl_head(_masked(s_glob[:, 1:], mask, sizes.n_mask))  # (2n * n_mask, K)

    with torch.no_grad():
        t_glob = teacher["encoder"](g)  # (2n, 1+N, D)
        t_cls = teacher["ssl_head"](t_glob[:, 0])  # (2n, K)
        t_patch = teacher["ssl_head"](_masked(t_glob[:, 1:], mask, sizes.n_mask))  # (2n * n_mask, K)
    t_cls_p = teacher_probs(t_cls.float(), centers.cls, teacher_temp)
    t_patch_p = teacher_probs(t_patch.float(), centers.patch, teacher_temp)

    dino = dino_loss(list(s_cls.float().split(n)), list(t_cls_p.split(n)), cfg.student_temp)
    ibot = ibot_loss(s_patch.float(), t_patch_p, cfg.student_temp)
    koleo = koleo_loss(s_glob[:n, 0].float())
    new = Centers(
        update_center(centers.cls, t_cls.float(), cfg.center_momentum),
        update_center(centers.patch, t_patch.float(), cfg.center_momentum),
    )
    parts = {"dino": dino, "ibot": ibot, "koleo": koleo}
    parts["ssl"] = dino + cfg.ibot_weight * ibot + cfg.koleo_weight * koleo
    # Diagnostics, not optimised: cross-entropy minus the teacher's entropy = KL(teacher || student),
    # the part the student can still reduce. The cross-entropy itself rises while the teacher
    # temperature warms up (softer targets have a higher entropy floor); the KL shows learning.
    with torch.no_grad():
        parts["dino_kl"] = dino - entropy(t_cls_p).mean()
        parts["ibot_kl"] = ibot - entropy(t_patch_p).mean()
    return parts, new


def compute_losses(
    model: VisualTokenizer,
    teacher: nn.ModuleDict | None,
    images: torch.Tensor,
    captions: list[str],
    cfg: TokenizerTrainConfig,
    sizes: Resolved,
    centers: Centers | None,
    teacher_temp: float,
    gen: torch.Generator,
) -> StepOutput:
    """images (B,3,H,W) in [-1,1]; `gen` drives crops and masks (seeded per step by the loop)."""
    parts: dict[str, torch.Tensor] = {}
    tokens = model.encoder(images[: sizes.n_plain])  # (n_plain, 1+N, D)
    h = cfg.image_size // cfg.patch_size

    z = model.bottleneck(tokens[: sizes.n_rec, 1:])  # (n_rec, N, d)
    x_hat = model.decode(model.tokens_to_grid(z, h))  # (n_rec, 3, H, W)
    parts["rec"] = l1_loss(x_hat.float(), images[: sizes.n_rec])
    total = cfg.lambda_rec * parts["rec"]

    if sizes.use_clip:
        ids = tokenize(captions[: sizes.n_clip], model.text.context_length).to(images.device)
        img = model.embed_image(tokens[: sizes.n_clip, 0])  # (n_clip, E)
        txt = model.embed_text(ids)  # (n_clip, E)
        parts["clip"] = clip_loss(img.float(), txt.float(), model.logit_scale)
        total = total + cfg.lambda_clip * parts["clip"]

    if sizes.use_ssl:
        ssl, centers = _ssl_losses(model, teacher, images[: sizes.n_ssl], cfg, sizes, centers, teacher_temp, gen)
        parts.update(ssl)
        total = total + cfg.lambda_ssl * parts["ssl"]

    parts["total"] = total
    return StepOutput(total, {k: v.detach() for k, v in parts.items()}, centers)
