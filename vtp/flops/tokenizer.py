"""Training FLOPs of the VTP tokenizer, as one documented formula (torch-free: the sweep engine
calls `train_flops` at plan time).

Conventions (those of `torch.utils.flop_counter.FlopCounterMode`, which the tests compare against):
a matmul of (m, k) by (k, n) costs 2*m*k*n; only matmuls (linear layers, attention's QK^T and AV,
the patch-embedding convolution) are counted; norms, softmax, activations and RoPE are not.
Backward costs twice the forward (grad wrt input and wrt weight), so a trained part costs 3x its
forward. Two exceptions, both exact: the patch embedding's input is the image, which needs no
gradient (2x), and the EMA teacher runs forward only (1x).

What one step contains (see `vtp.train.step`):
- plain pass: student encoder on `n_plain` images at full size (CLIP and reconstruction share it),
- reconstruction: bottleneck + pixel decoder on `n_rec` of them (+ the frozen LPIPS-VGG16 on the
  reconstructions and their targets when `lambda_perceptual` > 0),
- CLIP: image projection and text tower on `n_clip` images/captions, the (n_clip x n_clip) logits,
- SSL: student encoder on 2 masked global crops and `n_local_crops` local crops of `n_ssl` images,
  the shared DINO/iBOT head on their class tokens and on the masked patch tokens, KoLeo on the first
  global crop's class tokens; teacher encoder and head forward on the 2 unmasked global crops.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from vtp.models.presets import EncoderPreset, SSLHeadPreset, TextPreset, get_preset
from vtp.train.config import Resolved, TokenizerTrainConfig, resolve_sizes


def block_forward(tokens: int, width: int, mlp_hidden: int, *, swiglu: bool = False) -> float:
    """Forward FLOPs of one transformer block on one sequence of `tokens` tokens."""
    t, d, h = tokens, width, mlp_hidden
    qkv_proj = 2 * t * d * 3 * d + 2 * t * d * d
    attention = 2 * t * t * d * 2  # QK^T and AV, summed over heads
    mlp = 2 * t * d * (2 * h if swiglu else h) + 2 * t * h * d
    return float(qkv_proj + attention + mlp)


def encoder_forward(enc: EncoderPreset, patches: int, patch_size: int) -> tuple[float, float]:
    """(patch-embedding FLOPs, transformer FLOPs) of one image with `patches` patches (+1 cls)."""
    embed = 2.0 * patches * 3 * patch_size**2 * enc.width
    blocks = enc.depth * block_forward(patches + 1, enc.width, enc.mlp_hidden(), swiglu=enc.swiglu)
    return embed, blocks


def decoder_forward(
    patches: int, *, latent_dim: int, width: int, depth: int, patch_size: int
) -> float:
    """Pixel decoder on one image: 1x1 projection, `depth` blocks (MLP ratio 4), projection to pixels."""
    proj_in = 2.0 * patches * latent_dim * width
    blocks = depth * block_forward(patches, width, 4 * width)
    proj_out = 2.0 * patches * width * 3 * patch_size**2
    return proj_in + blocks + proj_out


def text_forward(text: TextPreset, clip_dim: int) -> float:
    """Text tower on one caption padded to the context length, plus its output projection."""
    blocks = text.depth * block_forward(text.context_length, text.width, int(text.width * text.mlp_ratio))
    return blocks + 2.0 * text.width * clip_dim


def ssl_head_forward(width: int, head: SSLHeadPreset) -> float:
    """DINO/iBOT head on one token: MLP width->hidden->hidden->bottleneck, then prototypes."""
    return 2.0 * (width * head.hidden + head.hidden**2 + head.hidden * head.bottleneck + head.bottleneck * head.prototypes)


# torchvision vgg16 `features` up to relu5_3, the LPIPS network: output channels, "M" = 2x2 max-pool
VGG16_LPIPS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)


def lpips_forward(image_size: int) -> tuple[float, float]:
    """(VGG16 convolutions, LPIPS 1x1 channel weights) forward FLOPs on one square image
    (vtp.losses.perceptual). A 3x3 convolution costs 2*H*W*C_in*C_out*9; the weights read the
    output of the last convolution before each pool and of the last one."""
    side, c_in, convs, lin = image_size, 3, 0.0, 0.0
    for i, c in enumerate(VGG16_LPIPS):
        if c == "M":
            side //= 2
            continue
        convs += 2.0 * side * side * c_in * c * 9
        c_in = c
        if i + 1 == len(VGG16_LPIPS) or VGG16_LPIPS[i + 1] == "M":
            lin += 2.0 * side * side * c
    return convs, lin


def step_breakdown(cfg: TokenizerTrainConfig, sizes: Resolved) -> dict[str, float]:
    """Training FLOPs of one optimizer step, by part (sum them for the total)."""
    preset = get_preset(cfg.encoder)
    enc, p = preset.encoder, cfg.patch_size
    if cfg.swiglu != enc.swiglu:
        enc = EncoderPreset(enc.width, enc.depth, enc.heads, enc.mlp_ratio, cfg.swiglu)
    n_glob = (cfg.image_size // p) ** 2
    n_loc = (sizes.local_crop_size // p) ** 2
    d = enc.width
    out: dict[str, float] = {}

    emb, blk = encoder_forward(enc, n_glob, p)
    out["encoder_plain"] = sizes.n_plain * (2 * emb + 3 * blk)

    dec = decoder_forward(
        n_glob, latent_dim=cfg.latent_dim, width=sizes.decoder_width, depth=cfg.decoder_depth, patch_size=p
    )
    out["reconstruction"] = 3 * sizes.n_rec * (2.0 * n_glob * d * cfg.latent_dim + dec)
    if cfg.lambda_perceptual > 0:
        # frozen network: the reconstruction's pass is forward + input gradient (2x), the target's forward
        # only (1x); the channel weights act on the difference, forward + input gradient (2x)
        convs, lin = lpips_forward(cfg.image_size)
        out["perceptual"] = sizes.n_rec * (3 * convs + 2 * lin)

    if sizes.use_clip:
        n = sizes.n_clip
        image_proj = 2.0 * d * preset.clip_dim
        logits = 2.0 * n * n * preset.clip_dim
        out["clip"] = 3 * (n * (image_proj + text_forward(preset.text, preset.clip_dim)) + logits)

    if sizes.use_ssl:
        n, n_local = sizes.n_ssl, cfg.n_local_crops
        emb_l, blk_l = encoder_forward(enc, n_loc, p)
        student_enc = n * (2 * (2 * emb + 3 * blk) + n_local * (2 * emb_l + 3 * blk_l))
        head = ssl_head_forward(d, preset.ssl_head)
        student_tokens = n * (2 + n_local) + n * 2 * sizes.n_mask
        teacher_tokens = n * 2 + n * 2 * sizes.n_mask
        koleo = 2 * 2.0 * n * n * d  # a similarity matrix per global crop, forward only (argmax picks the neighbour)
        out["ssl_student"] = student_enc + 3 * student_tokens * head + koleo
        out["ssl_teacher"] = n * 2 * (emb + blk) + teacher_tokens * head
    return out


def step_flops(cfg: TokenizerTrainConfig, sizes: Resolved | None = None) -> float:
    """Training FLOPs of one optimizer step."""
    return float(sum(step_breakdown(cfg, sizes or resolve_sizes(cfg)).values()))


def num_steps(cfg: TokenizerTrainConfig) -> int:
    """Optimizer steps for the config's budget (steps, samples seen, or FLOPs), at least 1."""
    if cfg.budget_steps is not None:
        return int(cfg.budget_steps)
    if cfg.budget_samples is not None:
        # a step sees only the images some objective uses (an `ae` run at rec_fraction 1/8 sees B/8)
        return max(1, math.ceil(cfg.budget_samples / resolve_sizes(cfg).n_images))
    return max(1, math.floor(float(cfg.budget_flops) / step_flops(cfg)))


def train_flops(config: Mapping[str, Any] | TokenizerTrainConfig) -> float:
    """Total training FLOPs of a tokenizer run (plain-data config as written by the sweep)."""
    from vtp.config import from_dict

    cfg = config if isinstance(config, TokenizerTrainConfig) else from_dict(TokenizerTrainConfig, config)
    return num_steps(cfg) * step_flops(cfg)
