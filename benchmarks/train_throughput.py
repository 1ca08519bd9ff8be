"""Training throughput of the tokenizer against this machine's dense GEMM speed, in one run.

1. fp32 GEMM FLOP/s: square matmuls (the best of a few sizes), all threads.
2. The tokenizer's achieved training FLOP/s at a CPU preset: full training steps (losses, backward,
   clip, AdamW, EMA) on a fixed pre-rendered batch, FLOPs from `vtp.flops.tokenizer` (which matches
   FlopCounterMode exactly). Data rendering is excluded: it is the loader's cost, not the model's.
3. A bare timm ViT classifier with the preset's width, depth, heads and token count, trained on the
   same batch shape (cross-entropy, AdamW): what a plain ViT step reaches on this machine. Its FLOPs
   are counted by FlopCounterMode (attention spelled out as matmuls for the count).
4. On CUDA: bf16 model FLOP utilisation (MFU) of preset B at 256 px against the GPU's dense bf16 peak.

Ends with `RESULT flops_ratio=<achieved / GEMM>` and `RESULT vtp_over_timm=<VTP step FLOP/s over the
bare ViT's>` (the cost of the extra heads, losses, crops and teacher; goal >= 0.9).

    PYTHONPATH=. python benchmarks/train_throughput.py [--preset cpu-m --batch 256 --steps 5]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

import torch

from vtp.config import from_dict
from vtp.flops.tokenizer import step_flops
from vtp.losses.ema import ema_update
from vtp.train.budget import resolve
from vtp.train.config import TokenizerTrainConfig
from vtp.train.loop import autocast_context, build_model, make_optimizer
from vtp.train.step import Centers, compute_losses, make_teacher, student_ssl_modules

# dense bf16 peak FLOP/s by device-name fragment (vendor data sheets, without sparsity)
BF16_PEAK = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def seconds_per_step(step: Callable[[int], None], device: torch.device, *, warmup: int, steps: int) -> float:
    """Mean wall seconds of step(i), i = warmup .. warmup + steps - 1, after `warmup` untimed steps;
    the device's queued work is waited for before each clock read."""
    for i in range(warmup):
        step(i)
    _sync(device)
    t0 = time.perf_counter()
    for i in range(warmup, warmup + steps):
        step(i)
    _sync(device)
    return (time.perf_counter() - t0) / steps


def gemm_flops_per_s(device: torch.device, dtype: torch.dtype, sizes=(512, 1024, 2048), seconds: float = 1.0) -> float:
    best = 0.0
    for n in sizes:
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        a @ b
        _sync(device)
        reps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            a @ b
            reps += 1
            _sync(device)
        best = max(best, 2 * n**3 * reps / (time.perf_counter() - t0))
    return best


def training_flops_per_s(cfg: TokenizerTrainConfig, device: torch.device, steps: int, warmup: int = 2) -> float:
    sizes = resolve(cfg)
    torch.manual_seed(0)
    model = build_model(cfg, sizes).to(device).train()
    teacher = make_teacher(model).to(device) if sizes.use_ssl else None
    opt = make_optimizer(model, cfg)
    k = model.ssl_head.prototypes.shape[0] if sizes.use_ssl else 1
    centers = Centers(torch.zeros(1, k, device=device), torch.zeros(1, k, device=device))
    from vtp.data.synthetic import SyntheticShapes

    ds = SyntheticShapes(cfg.batch_size, image_size=cfg.image_size)
    items = [ds[i] for i in range(cfg.batch_size)]
    images = torch.stack([it[0] for it in items]).to(device)  # (B, 3, H, W)
    captions = [it[1] for it in items]

    def one_step(i: int) -> None:
        nonlocal centers
        with autocast_context(device):
            out = compute_losses(model, teacher, images, captions, cfg, sizes, centers, 0.04, torch.Generator().manual_seed(i))
        opt.zero_grad(set_to_none=True)
        out.total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        if teacher is not None:
            ema_update(teacher, student_ssl_modules(model), 0.996)
            centers = out.centers

    return step_flops(cfg, sizes) / seconds_per_step(one_step, device, warmup=warmup, steps=steps)


def timm_vit_flops_per_s(cfg: TokenizerTrainConfig, device: torch.device, steps: int, warmup: int = 2) -> float:
    """A bare timm ViT (the preset's encoder, same patch and image size, a 1000-way head) trained on
    a batch of cfg.batch_size images: FLOP/s of forward, backward and AdamW."""
    from timm.models.vision_transformer import VisionTransformer
    from torch.utils.flop_counter import FlopCounterMode

    from vtp.models.presets import get_preset

    enc = get_preset(cfg.encoder).encoder
    torch.manual_seed(0)
    model = VisionTransformer(img_size=cfg.image_size, patch_size=cfg.patch_size, embed_dim=enc.width, depth=enc.depth,
                              num_heads=enc.heads, mlp_ratio=enc.mlp_ratio, num_classes=1000).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randn(cfg.batch_size, 3, cfg.image_size, cfg.image_size, device=device)  # (B, 3, H, W)
    y = torch.randint(1000, (cfg.batch_size,), device=device)

    def one_step() -> None:
        with autocast_context(device):
            loss = torch.nn.functional.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for blk in model.blocks:  # count attention as matmuls (FlopCounterMode does not count CPU SDPA)
        blk.attn.fused_attn = False
    with FlopCounterMode(display=False) as counter:
        with autocast_context(device):
            torch.nn.functional.cross_entropy(model(x).float(), y).backward()
    flops = float(counter.get_total_flops())
    for blk in model.blocks:
        blk.attn.fused_attn = True
    return flops / seconds_per_step(lambda i: one_step(), device, warmup=warmup, steps=steps)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="cpu-m")
    p.add_argument("--objective", default="vtp")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--gpu-batch", type=int, default=64)
    p.add_argument("--quick", action="store_true", help="cpu-xs, batch 8, 2 steps: checks the plumbing")
    args = p.parse_args(argv)
    if args.quick:
        args.preset, args.batch, args.steps = "cpu-xs", 8, 2
    if args.threads:
        torch.set_num_threads(args.threads)
    cpu = torch.device("cpu")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")

    gemm = gemm_flops_per_s(cpu, torch.float32)
    cfg = from_dict(
        TokenizerTrainConfig,
        dict(encoder=args.preset, objective=args.objective, batch_size=args.batch, budget_steps=args.steps),
    )
    achieved = training_flops_per_s(cfg, cpu, args.steps)
    bare = timm_vit_flops_per_s(cfg, cpu, args.steps)
    print(f"RESULT cpu_gemm_fp32_gflops={gemm / 1e9:.2f}")
    print(f"RESULT cpu_train_gflops={achieved / 1e9:.2f}")
    print(f"RESULT cpu_timm_vit_gflops={bare / 1e9:.2f} timm_flops_ratio={bare / gemm:.3f}")

    if torch.cuda.is_available():
        dev = torch.device("cuda")
        name = torch.cuda.get_device_name()
        peak = next((v for k, v in BF16_PEAK.items() if k in name), None)
        gpu_cfg = from_dict(
            TokenizerTrainConfig,
            dict(encoder="B", objective="vtp", image_size=256, patch_size=16, latent_dim=64, decoder_depth=4,
                 batch_size=args.gpu_batch, budget_steps=10),
        )
        gpu = training_flops_per_s(gpu_cfg, dev, steps=10, warmup=3)
        gpu_gemm = gemm_flops_per_s(dev, torch.bfloat16, sizes=(4096, 8192))
        print(f"RESULT gpu_name={name!r}")
        print(f"RESULT gpu_train_bf16_tflops={gpu / 1e12:.1f}")
        print(f"RESULT gpu_gemm_bf16_tflops={gpu_gemm / 1e12:.1f}")
        if peak:
            print(f"RESULT gpu_mfu_B={gpu / peak:.3f}")
    print(f"RESULT flops_ratio={achieved / gemm:.3f}")
    print(f"RESULT vtp_over_timm={achieved / bare:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
