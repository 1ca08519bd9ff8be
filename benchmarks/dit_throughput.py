"""Training throughput of the DiT probe at the embedded study's shape against this machine's GEMM rate.

Issue 17, "Speed to pay for it": `RESULT dit_flops_ratio=<achieved FLOP/s over GEMM FLOP/s>`, goal >= 0.5.

Shape: sweeps/mini.yaml's dit stage (DiT-cpu/2: width 64, depth 2, 2 heads, 2 x 2 latent positions a
token; batch 64; 1,800 steps) on the latents its extract stage writes (32 px images, patch 4,
latent_dim 8: (8, 8, 8), i.e. 16 tokens of 32 channels; 1,000 latents; 20 classes of the built-in
shapes). Until 2026-12-01 the probe was DiT-cpu on (16, 4, 4) latents for 300 steps (16 tokens of 16
channels): the analysis below was measured on that shape. The latents here are N(0, 1) draws of
that shape (the stage trains on normalised latents; their values do not change the cost).

Threads: the local executor runs the study with 2 workers and gives each cores // 2 threads
(cluster.executors.local.worker_env); by default this script takes the same count, for both the GEMM
rate and the DiT, so the ratio is the one a worker of the study sees. `--threads N` overrides.

1. fp32 GEMM FLOP/s: train_throughput.py's `gemm_flops_per_s` (square matmuls, best of a few sizes).
2. `vtp.train.dit.train_dit` itself, unchanged, for `--steps` steps (default: the study's 300): its
   own FLOP count (`vtp.flops.dit`, 3 x the forward matmuls) over its own seconds (which include the
   warm-up steps, the final checkpoint and the EMA file, as in the study). -> `dit_flops_ratio`.
3. The same step spelled out with the same functions (train_step_batch, interpolate, flow_loss,
   clip_grad_norm_, AdamW, ema_update), each part timed: data (batch indexing and noise draws),
   forward + backward, optimiser (clip + AdamW), EMA. -> `*_ms` lines and `step_fwd_bwd_flops_ratio`.
4. The project's FLOP formula against torch.utils.flop_counter.FlopCounterMode on one forward +
   backward (attention through SDPA's math backend, so its matmuls are counted).

Why it is slow (measured 2026-12-01 on the code before 2026-12-02). One thread: 0.21 of the GEMM
rate over train_dit; forward + backward is 87 % of a step, clip + AdamW 10 %, EMA 2 %, the batch
draw 1 %. A torch.profiler run of forward + backward (20 steps) put the matmuls (aten::mm + addmm,
~45 calls a step) at 28 % of the time; they run at ~0.6 of the GEMM rate (under the profiler) (at
width 64 every matmul is small: (1024 x 64) @ (64 x 192) and the like), so even with nothing else the
ratio could not pass ~0.6. The rest is element-wise and copy work that scales with tokens x width just
as the matmuls do, so a bigger batch does not shift the balance: aten::mul 18 % (~156 calls a step:
adaLN modulate and gates, RoPE's four products per q and k, SwiGLU, RMSNorm), cat 6 % (RoPE's
stack/cat), copy_ 5 %, SDPA forward + backward 7 %, silu and its backward 5 %. Profiled again with
shapes (2026-12-02): the SwiGLU's silu, product and their backward on the strided chunks of w12's
output cost ~0.4 ms a call, ~2x the same kernels on contiguous halves.

Applied 2026-12-02 (vtp/models/dit.py, vtp/train/dit.py; same maths, rounding ~1e-7): RoPE as one
complex product (was unflatten / four products / stack), addcmul for modulate and the gated
residuals, the SwiGLU halves as two matmuls on w12's halves (contiguous outputs), AdamW with
`foreach=True` and `torch._foreach_lerp_` for the EMA. This script, before and after, back to back on
one machine (RESULTS.md): 23.16 -> 19.5-19.8 ms a step (x1.17), forward + backward 21.6 -> 17.2-17.5
ms (x1.25), dit_flops_ratio 0.165 -> 0.20. Not applied:
torch.compile of the model (fuses modulate, RoPE, SwiGLU and the norms) -- tried once outside this
script, 1 thread, busy machine: forward + backward 48.3 -> 34.5 ms a step (x1.4, a ratio of ~0.28,
not 0.5) after an 80 s compile, which one probe job cannot pay back, and it needs a C++ compiler at
run time; a hand-written RMSNorm backward; the qkv split done by unbind on the token-major layout
(measured: no gain). A wider DiT preset would raise the ratio (matmul work grows as width^2, the
element-wise work as width) but is a study decision, not a speed fix.

    PYTHONPATH=. python benchmarks/dit_throughput.py [--steps 300 --threads 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_throughput import gemm_flops_per_s  # noqa: E402

from cluster.executors.local import worker_env  # noqa: E402
from vtp.config import from_dict  # noqa: E402
from vtp.flops.dit import dit_train_flops  # noqa: E402
from vtp.losses.flow import flow_loss, interpolate  # noqa: E402
from vtp.models.dit import build_dit  # noqa: E402
from vtp.train.dit import ema_decay_at, ema_update, make_optimizer, train_dit, train_step_batch  # noqa: E402
from vtp.train.dit_config import DiTTrainConfig  # noqa: E402

# sweeps/mini.yaml: the dit stage's config and the shape of the latents its extract stage writes
STUDY = dict(model="DiT-cpu", patch_size=2, steps=1800, batch_size=64, lr=3.0e-3, ema_decay=0.999, log_every=100,
             checkpoint_every=500)
LATENT_SHAPE = (8, 8, 8)  # latent_dim 8; 32 px / patch 4; the DiT takes 2 x 2 positions a token: 16 tokens
NUM_LATENTS = 1000  # extract.num_images
NUM_CLASSES = 20  # vtp.data.synthetic.NUM_CLASSES


def study_latents(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(NUM_LATENTS, *LATENT_SHAPE, generator=g), torch.randint(NUM_CLASSES, (NUM_LATENTS,), generator=g)


def counted_step_flops(cfg: DiTTrainConfig, latents: torch.Tensor, labels: torch.Tensor) -> float:
    """FlopCounterMode's count of one forward + backward of the loss on one batch."""
    torch.manual_seed(cfg.seed)
    model = build_dit(cfg.model, in_channels=latents.shape[1], num_classes=NUM_CLASSES, patch_size=cfg.patch_size).train()
    x1, eps, t, y = train_step_batch(0, cfg, latents, labels, model.null_label)
    # the math backend spells attention as bmm + softmax, which the counter sees on CPU
    with torch.nn.attention.sdpa_kernel(torch.nn.attention.SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        loss, _ = flow_loss(model(interpolate(x1, eps, t), t, y), x1, eps, cos_weight=cfg.cos_weight)
        loss.backward()
    return float(counter.get_total_flops())


def split_step_ms(cfg: DiTTrainConfig, latents: torch.Tensor, labels: torch.Tensor, steps: int, warmup: int = 5) -> dict[str, float]:
    """train_dit's step (one process, no micro-batches) with each part timed: mean ms per step."""
    torch.manual_seed(cfg.seed)
    model = build_dit(cfg.model, in_channels=latents.shape[1], num_classes=NUM_CLASSES, patch_size=cfg.patch_size).train()
    ema = build_dit(cfg.model, in_channels=latents.shape[1], num_classes=NUM_CLASSES, patch_size=cfg.patch_size).requires_grad_(False)
    ema.load_state_dict(model.state_dict())
    opt = make_optimizer(model, cfg)
    parts = dict(data=0.0, fwd_bwd=0.0, optimizer=0.0, ema=0.0)
    for step in range(warmup + steps):
        t0 = time.perf_counter()
        x1, eps, t, y = train_step_batch(step, cfg, latents, labels, model.null_label)
        t1 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss, _ = flow_loss(model(interpolate(x1, eps, t), t, y), x1, eps, cos_weight=cfg.cos_weight)
        loss.backward()
        float(loss.detach())  # train_dit reads the loss back every step (.tolist())
        t2 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        t3 = time.perf_counter()
        ema_update(ema, model, ema_decay_at(step, cfg))
        t4 = time.perf_counter()
        if step >= warmup:
            for k, dt in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                parts[k] += dt
    return {k: 1e3 * v / steps for k, v in parts.items()}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=STUDY["steps"], help="train_dit steps (the study: 1800)")
    p.add_argument("--split-steps", type=int, default=100, help="steps of the timed-parts loop")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = a study worker's: cores // 2)")
    p.add_argument("--quick", action="store_true", help="10 + 5 steps, a short GEMM probe: checks the plumbing")
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.split_steps = 10, 5
    threads = args.threads or int(worker_env(2, environ={})["OMP_NUM_THREADS"])
    torch.set_num_threads(threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores")

    cpu = torch.device("cpu")
    gemm = gemm_flops_per_s(cpu, torch.float32, sizes=(512,) if args.quick else (512, 1024, 2048),
                            seconds=0.2 if args.quick else 1.0)
    cfg = from_dict(DiTTrainConfig, {**STUDY, "steps": args.steps, "checkpoint_every": args.steps})
    latents, labels = study_latents()
    model = build_dit(cfg.model, in_channels=LATENT_SHAPE[0], num_classes=NUM_CLASSES, patch_size=cfg.patch_size)
    tokens = LATENT_SHAPE[1] * LATENT_SHAPE[2] // cfg.patch_size**2
    formula = dit_train_flops(model.spec, tokens=tokens, in_channels=LATENT_SHAPE[0] * cfg.patch_size**2,
                              samples=cfg.batch_size)
    counted = counted_step_flops(cfg, latents, labels)

    with tempfile.TemporaryDirectory() as run_dir:
        summary = train_dit(cfg, latents=latents, labels=labels, num_classes=NUM_CLASSES, run_dir=run_dir)
    achieved = summary["dit_flops"] / summary["seconds"]
    split = split_step_ms(cfg, latents, labels, args.split_steps)
    step_ms = sum(split.values())

    print(f"RESULT dit_step_flops_formula={formula:.4g} dit_step_flops_counted={counted:.4g} "
          f"formula_over_counted={formula / counted:.3f}")
    print(f"RESULT cpu_gemm_fp32_gflops={gemm / 1e9:.2f}")
    print(f"RESULT dit_train_dit_s={summary['seconds']:.2f} dit_steps={summary['steps']} "
          f"dit_ms_per_step={1e3 * summary['seconds'] / summary['steps']:.2f} dit_gflops={achieved / 1e9:.3f}")
    print("RESULT " + " ".join(f"{k}_ms={v:.2f}" for k, v in split.items()) + f" step_ms={step_ms:.2f}")
    print("RESULT " + " ".join(f"{k}_share={v / step_ms:.3f}" for k, v in split.items()))
    print(f"RESULT step_fwd_bwd_flops_ratio={formula / (split['fwd_bwd'] / 1e3) / gemm:.3f}")
    print(f"RESULT dit_flops_ratio={achieved / gemm:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
