"""One step's losses: Total = lambda_rec * L_rec + lambda_clip * L_clip + lambda_ssl * L_ssl,
with L_rec = L1 (+ lambda_perceptual * LPIPS when that is on).

Batch subsets (VTP: CLIP on all of B, SSL on B/4, reconstruction on B/8) are prefixes of the batch.
CLIP and reconstruction share one un-augmented encoder pass; SSL runs the student on masked global
crops and local crops and the EMA teacher on the unmasked global crops (DINOv2). What this computes
is exactly what `vtp.flops.tokenizer` counts.

Data parallelism (vtp.train.shards): a rank trains its micro-batches one after the other and the
gradients are summed over micro-batches and ranks. Every loss is a mean over equal shares, so each
micro-batch's loss is weighted 1 / shards and the sum is the loss of the whole batch, except:
- CLIP needs the whole batch's negatives. One micro-batch per rank: the features are gathered
  from every rank with gradients (open_clip's gather_with_grad + local_loss). Several: a gradient
  cache (`clip_gradient_cache`) computes the whole batch's loss and its gradient with respect to
  each embedding first, then each micro-batch backpropagates its own rows of it.
- the DINO/iBOT centres are updated with the mean of the teacher's logits over all ranks.
- KoLeo is computed within each rank's micro-batch, as DINOv2 computes it per rank (its
  nearest neighbours come from the images that rank holds): its value depends on the per-device
  batch, so 2 ranks match 1 rank that accumulates 2 micro-batches of the same size.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from vtp.losses.clip import clip_loss_and_grads, clip_loss_rows
from vtp.losses.dino import center_ema, dino_loss, entropy, ibot_loss, teacher_probs
from vtp.losses.koleo import koleo_loss
from vtp.losses.masking import block_patch_mask, random_patch_mask
from vtp.losses.reconstruction import l1_loss
from vtp.models.text import tokenize
from vtp.models.tokenizer import VisualTokenizer
from vtp.train import photometric
from vtp.train.config import Resolved, TokenizerTrainConfig
from vtp.train.distributed import Dist, all_gather, all_reduce_grads, all_reduce_sum, gather_with_grad
from vtp.train.shards import Sharding, plan_sharding
from vtp.train.views import apply_crops, crop_params

GLOBAL_SCALE = (0.32, 1.0)  # DINOv2's crop scales
LOCAL_SCALE = (0.05, 0.32)


@dataclass
class Centers:
    """DINO (class token) and iBOT (patch) centres of the teacher's logits, (1, K) each."""

    cls: torch.Tensor
    patch: torch.Tensor


@dataclass(frozen=True)
class SSLDraws:
    """A step's random draws for its SSL images, one row per image: the same image gets the same
    crops and masks whichever rank and micro-batch train it."""

    global_crops: torch.Tensor  # (2, n, 4)
    mask: torch.Tensor  # (2, n, N) bool
    local_crops: torch.Tensor  # (L, n, 4)
    photo: torch.Tensor | None = None  # (2 + L, n, 7): photometric parameters, when on

    def rows(self, idx: list[int]) -> SSLDraws:
        photo = self.photo[:, idx] if self.photo is not None else None
        return SSLDraws(self.global_crops[:, idx], self.mask[:, idx], self.local_crops[:, idx], photo)


@dataclass(frozen=True)
class MicroBatch:
    """One shard of a step: its images (prefix subsets as in the global batch) and SSL draws."""

    images: torch.Tensor  # (n_images, 3, H, W) on the training device
    captions: list[str]
    ssl: SSLDraws | None


@dataclass
class StepOutput:
    total: torch.Tensor
    parts: dict[str, torch.Tensor]  # detached, for logging
    centers: Centers | None


@dataclass(frozen=True)
class ClipCache:
    """The whole batch's CLIP loss and its gradient w.r.t. this rank's embeddings (rows in micro order)."""

    loss: torch.Tensor
    g_image: torch.Tensor  # (M n, E)
    g_text: torch.Tensor  # (M n, E)
    g_scale: torch.Tensor  # ()


# A CLIP term: (image, text embeddings of the micro-batch, logit_scale) -> (term to backpropagate, value to log)
ClipTerm = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def autocast_context(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def make_perceptual(cfg: TokenizerTrainConfig) -> nn.Module | None:
    """The frozen LPIPS network of the reconstruction loss, or None when it is off (lambda_perceptual 0).
    Raises PerceptualWeightsError naming `perceptual_weights` and the path if the file is wrong."""
    if cfg.lambda_perceptual <= 0:
        return None
    from vtp.losses.perceptual import load_perceptual

    return load_perceptual(cfg.perceptual_weights, key="perceptual_weights")


def make_teacher(model: VisualTokenizer) -> nn.ModuleDict:
    """EMA teacher: a frozen copy of the student's encoder and SSL head (same parameter names as
    `student_ssl_modules`)."""
    teacher = nn.ModuleDict({"encoder": copy.deepcopy(model.encoder), "ssl_head": copy.deepcopy(model.ssl_head)})
    return teacher.requires_grad_(False)


def student_ssl_modules(model: VisualTokenizer) -> nn.ModuleDict:
    return nn.ModuleDict({"encoder": model.encoder, "ssl_head": model.ssl_head})


def draw_ssl(cfg: TokenizerTrainConfig, sizes: Resolved, gen: torch.Generator) -> SSLDraws:
    """The step's crops and masks for all n_ssl images of the global batch, from the step's generator."""
    n = sizes.n_ssl
    glob = torch.stack([crop_params(n, GLOBAL_SCALE, gen) for _ in range(2)])  # (2, n, 4)
    h = cfg.image_size // cfg.patch_size
    if cfg.mask_mode == "block":
        mask = block_patch_mask(2 * n, h, h, sizes.n_mask, gen).view(2, n, h * h)  # (2, n, N)
    else:
        mask = random_patch_mask(2 * n, h * h, sizes.n_mask, gen).view(2, n, h * h)  # (2, n, N)
    loc = [crop_params(n, LOCAL_SCALE, gen) for _ in range(cfg.n_local_crops)]
    local = torch.stack(loc) if loc else torch.zeros(0, n, 4)  # (L, n, 4)
    photo = None
    if cfg.photometric:
        kinds = ["global0", "global1"] + ["local"] * cfg.n_local_crops
        photo = torch.stack([photometric.draw(n, kind, gen) for kind in kinds])  # (2 + L, n, 7)
    return SSLDraws(glob, mask, local, photo)


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
    draws: SSLDraws,
    cfg: TokenizerTrainConfig,
    sizes: Resolved,
    centers: Centers,
    teacher_temp: float,
) -> tuple[dict[str, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """SSL losses of one micro-batch x (n, 3, H, W); also the sums of the teacher's class and patch
    logits, for the centre update over the whole batch."""
    n = x.shape[0]
    views = [apply_crops(x, cfg.image_size, p) for p in draws.global_crops]
    if draws.photo is not None:
        views = [photometric.apply(v, p) for v, p in zip(views, draws.photo[:2])]
    g = torch.cat(views)  # (2n, 3, H, W)
    mask = draws.mask.reshape(2 * n, -1).to(x.device)  # (2n, N)
    s_glob = model.encoder(g, mask=mask)  # (2n, 1+N, D)
    cls = [s_glob[:, 0]]
    if cfg.n_local_crops:
        locs = [apply_crops(x, sizes.local_crop_size, p) for p in draws.local_crops]
        if draws.photo is not None:
            locs = [photometric.apply(v, p) for v, p in zip(locs, draws.photo[2:])]
        loc = torch.cat(locs)  # (L n, 3, h, w)
        cls.append(model.encoder(loc)[:, 0])  # (L n, D)
    s_cls = model.ssl_head(torch.cat(cls))  # ((2+L) n, K)
    s_patch = model.ssl_head(_masked(s_glob[:, 1:], mask, sizes.n_mask))  # (2n * n_mask, K)

    with torch.no_grad():
        t_glob = teacher["encoder"](g)  # (2n, 1+N, D)
        t_cls = teacher["ssl_head"](t_glob[:, 0]).float()  # (2n, K)
        t_patch = teacher["ssl_head"](_masked(t_glob[:, 1:], mask, sizes.n_mask)).float()  # (2n * n_mask, K)
    t_cls_p = teacher_probs(t_cls, centers.cls, teacher_temp)
    t_patch_p = teacher_probs(t_patch, centers.patch, teacher_temp)

    dino = dino_loss(list(s_cls.float().split(n)), list(t_cls_p.split(n)), cfg.student_temp)
    ibot = ibot_loss(s_patch.float(), t_patch_p, cfg.student_temp)
    # KoLeo on the class token of each global crop, summed over the two (DINOv2's
    # `sum(koleo(p) for p in student_global_cls.chunk(2))`), within this rank's micro-batch.
    koleo = sum(koleo_loss(c) for c in s_glob[:, 0].float().chunk(2))
    parts = {"dino": dino, "ibot": ibot, "koleo": koleo}
    parts["ssl"] = dino + cfg.ibot_weight * ibot + cfg.koleo_weight * koleo
    # Diagnostics, not optimised: cross-entropy minus the teacher's entropy = KL(teacher || student),
    # the part the student can still reduce. The cross-entropy itself rises while the teacher
    # temperature warms up (softer targets have a higher entropy floor); the KL shows learning.
    with torch.no_grad():
        parts["dino_kl"] = dino - entropy(t_cls_p).mean()
        parts["ibot_kl"] = ibot - entropy(t_patch_p).mean()
    return parts, (t_cls.sum(dim=0, keepdim=True), t_patch.sum(dim=0, keepdim=True))


def micro_losses(
    model: VisualTokenizer,
    teacher: nn.ModuleDict | None,
    mb: MicroBatch,
    cfg: TokenizerTrainConfig,
    sizes: Resolved,
    sh: Sharding,
    centers: Centers | None,
    teacher_temp: float,
    clip_term: ClipTerm,
    perceptual: nn.Module | None = None,
) -> tuple[StepOutput, tuple[torch.Tensor, torch.Tensor] | None]:
    """Losses of one micro-batch (each a mean over it); `total` is what to backpropagate.
    `perceptual`: the frozen LPIPS network when cfg.lambda_perceptual > 0 (see `make_perceptual`)."""
    images = mb.images
    parts: dict[str, torch.Tensor] = {}
    tokens = model.encoder(images[: sh.n_plain])  # (n_plain, 1+N, D)
    h = cfg.image_size // cfg.patch_size

    z = model.bottleneck(tokens[: sh.n_rec, 1:])  # (n_rec, N, d)
    x_hat = model.decode(model.tokens_to_grid(z, h))  # (n_rec, 3, H, W)
    parts["rec"] = l1_loss(x_hat.float(), images[: sh.n_rec])
    if (perceptual is None) != (cfg.lambda_perceptual <= 0):  # never a term silently dropped (the FLOPs count it)
        raise ValueError("lambda_perceptual > 0 needs the perceptual network (make_perceptual(cfg)), and only then")
    if perceptual is not None:  # L_rec = L1 + lambda_p * LPIPS; without it the L1 alone, as ever
        parts["rec_l1"] = parts["rec"]
        parts["rec_perceptual"] = perceptual(x_hat.float(), images[: sh.n_rec])
        parts["rec"] = parts["rec_l1"] + cfg.lambda_perceptual * parts["rec_perceptual"]
    total = cfg.lambda_rec * parts["rec"]
    logged = total.detach()

    if sizes.use_clip:
        ids = tokenize(mb.captions[: sh.n_clip], model.text.context_length).to(images.device)
        img = model.embed_image(tokens[: sh.n_clip, 0])  # (n_clip, E)
        txt = model.embed_text(ids)  # (n_clip, E)
        term, parts["clip"] = clip_term(img.float(), txt.float(), model.logit_scale)
        total = total + cfg.lambda_clip * term
        logged = logged + cfg.lambda_clip * parts["clip"].detach()

    sums = None
    if sizes.use_ssl:
        ssl, sums = _ssl_losses(model, teacher, images[: sh.n_ssl], mb.ssl, cfg, sizes, centers, teacher_temp)
        parts.update(ssl)
        total = total + cfg.lambda_ssl * parts["ssl"]
        logged = logged + cfg.lambda_ssl * parts["ssl"].detach()

    parts["total"] = logged
    return StepOutput(total, {k: v.detach() for k, v in parts.items()}, centers), sums


def gathered_clip(dist: Dist, offset: int) -> ClipTerm:
    """One micro-batch per rank: negatives gathered from every rank with gradients."""

    def term(img: torch.Tensor, txt: torch.Tensor, scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        loss = clip_loss_rows(img, txt, gather_with_grad(img, dist), gather_with_grad(txt, dist), scale, offset)
        return loss, loss

    return term


def cached_clip(cache: ClipCache, micro: int, n: int, shards: int) -> ClipTerm:
    """Micro-batch `micro` of a gradient cache: a surrogate whose gradient is this micro-batch's part
    of the whole batch's CLIP gradient (times `shards`, undone by the 1/shards weight of every micro-batch)."""
    rows = slice(micro * n, (micro + 1) * n)

    def term(img: torch.Tensor, txt: torch.Tensor, scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        surrogate = shards * ((img * cache.g_image[rows]).sum() + (txt * cache.g_text[rows]).sum())
        return surrogate + scale * cache.g_scale, cache.loss

    return term


@torch.no_grad()
def clip_gradient_cache(model: VisualTokenizer, micro: list[MicroBatch], sh: Sharding, dist: Dist) -> ClipCache:
    """First pass of the gradient cache: every micro-batch's embeddings without a graph, gathered over
    ranks, then the whole batch's loss and its gradient w.r.t. each embedding."""
    imgs, txts = [], []
    for mb in micro:
        with autocast_context(mb.images.device):
            tokens = model.encoder(mb.images[: sh.n_clip])  # (n, 1+N, D)
            ids = tokenize(mb.captions[: sh.n_clip], model.text.context_length).to(mb.images.device)
            imgs.append(model.embed_image(tokens[:, 0]).float())  # (n, E)
            txts.append(model.embed_text(ids).float())  # (n, E)
    img, txt = torch.cat(imgs), torch.cat(txts)  # (M n, E): this rank's rows
    loss, g_img, g_txt, g_scale = clip_loss_and_grads(all_gather(img, dist), all_gather(txt, dist), model.logit_scale)
    rows = slice(dist.rank * img.shape[0], (dist.rank + 1) * img.shape[0])
    return ClipCache(loss, g_img[rows], g_txt[rows], g_scale)


def train_step(
    model: VisualTokenizer,
    teacher: nn.ModuleDict | None,
    micro: list[MicroBatch],
    cfg: TokenizerTrainConfig,
    sizes: Resolved,
    sh: Sharding,
    centers: Centers | None,
    teacher_temp: float,
    dist: Dist,
    perceptual: nn.Module | None = None,
) -> tuple[dict[str, float], Centers | None]:
    """Forward and backward of one optimizer step over this rank's micro-batches; on return every
    rank holds the whole batch's gradient. Returns the whole batch's losses and the new centres."""
    cache = clip_gradient_cache(model, micro, sh, dist) if sizes.use_clip and sh.accumulation > 1 else None
    logged: dict[str, torch.Tensor] = {}
    t_cls = t_patch = None
    for j, mb in enumerate(micro):
        clip = cached_clip(cache, j, sh.n_clip, sh.shards) if cache else gathered_clip(dist, dist.rank * sh.n_clip)
        with autocast_context(mb.images.device):
            out, sums = micro_losses(model, teacher, mb, cfg, sizes, sh, centers, teacher_temp, clip, perceptual)
        (out.total / sh.shards).backward()
        for k, v in out.parts.items():
            logged[k] = logged.get(k, 0.0) + v.float() / sh.shards
        if sums is not None:
            t_cls = sums[0] if t_cls is None else t_cls + sums[0]
            t_patch = sums[1] if t_patch is None else t_patch + sums[1]
    all_reduce_grads(model.parameters(), dist)
    names = sorted(logged)
    values = all_reduce_sum(torch.stack([logged[k] for k in names]), dist).tolist()  # (parts,)
    if t_cls is not None and centers is not None:
        all_reduce_sum(t_cls, dist)
        all_reduce_sum(t_patch, dist)
        centers = Centers(
            center_ema(centers.cls, t_cls / (2 * sizes.n_ssl), cfg.center_momentum),
            center_ema(centers.patch, t_patch / (2 * sizes.n_ssl * sizes.n_mask), cfg.center_momentum),
        )
    return dict(zip(names, values)), centers


def sharding(sizes: Resolved, world_size: int, micro_batch_size: int) -> Sharding:
    subsets = {k: getattr(sizes, k) for k in ("n_images", "n_plain", "n_clip", "n_ssl", "n_rec")}
    return plan_sharding(subsets, world_size=world_size, micro_batch_size=micro_batch_size)


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
    perceptual: nn.Module | None = None,
) -> StepOutput:
    """The whole batch in one process and one pass (benchmarks, the FLOP test): images (B,3,H,W) in
    [-1,1]; `gen` drives crops and masks."""
    draws = draw_ssl(cfg, sizes, gen) if sizes.use_ssl else None
    sh = sharding(sizes, 1, 0)
    clip = gathered_clip(Dist(device=images.device), 0)
    out, sums = micro_losses(model, teacher, MicroBatch(images, captions, draws), cfg, sizes, sh, centers,
                             teacher_temp, clip, perceptual)
    if sums is not None and centers is not None:
        out.centers = Centers(
            center_ema(centers.cls, sums[0] / (2 * sizes.n_ssl), cfg.center_momentum),
            center_ema(centers.patch, sums[1] / (2 * sizes.n_ssl * sizes.n_mask), cfg.center_momentum),
        )
    return out
