"""The GPU path in one short run (benchmarks/gpu_check.sh wraps it with an 8-minute limit):

1. preset-B tokenizer training step in bf16 at 256 px: achieved FLOP/s over this GPU's measured
   bf16 GEMM rate and over its datasheet peak (train_throughput.py's functions);
2. a DiT-B training step on 16 x 16 x 64 latents (the paper's probe on f16d64 latents): FLOP/s;
3. a resume of a checkpoint written on the GPU (the RNG-state crash of issue 14): a run cut after
   2 steps and resumed ends with the uninterrupted run's weights;
4. a 1-process NCCL data-parallel smoke run: the tokenizer loop inside a real process group.

`--quick` runs the same four on the CPU at cpu-xs sizes (gloo for 4), so the test suite keeps the
script alive on machines without a GPU; its figures say nothing about GPUs.

    PYTHONPATH=. python benchmarks/gpu_check.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_throughput import BF16_PEAK, gemm_flops_per_s, seconds_per_step, training_flops_per_s  # noqa: E402

from vtp.config import from_dict  # noqa: E402
from vtp.train.config import TokenizerTrainConfig  # noqa: E402


def tokenizer_step(device: torch.device, quick: bool) -> None:
    geometry = (dict(encoder="cpu-xs", batch_size=16) if quick else
                dict(encoder="B", image_size=256, patch_size=16, latent_dim=64, decoder_depth=4, batch_size=64))
    cfg = from_dict(TokenizerTrainConfig, dict(objective="vtp", budget_steps=10, **geometry))
    achieved = training_flops_per_s(cfg, device, steps=2 if quick else 10, warmup=1 if quick else 3)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    gemm = gemm_flops_per_s(device, dtype, sizes=(256,) if quick else (4096, 8192), seconds=0.3 if quick else 1.0)
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    peak = next((v for k, v in BF16_PEAK.items() if k in name), None)
    print(f"RESULT tokenizer_{cfg.encoder}_tflops={achieved / 1e12:.3f} gemm_tflops={gemm / 1e12:.3f}")
    print(f"RESULT tokenizer_{cfg.encoder}_over_gemm={achieved / gemm:.3f}")
    print(f"RESULT tokenizer_{cfg.encoder}_over_peak={achieved / peak:.3f}" if peak else
          f"RESULT tokenizer_{cfg.encoder}_over_peak=nan  # no datasheet peak for {name!r}")


def dit_step(device: torch.device, quick: bool) -> None:
    from vtp.flops.dit import dit_train_flops
    from vtp.losses.flow import flow_loss, interpolate
    from vtp.models.dit import build_dit
    from vtp.train.step import autocast_context

    name, c, hw, batch = ("DiT-cpu", 8, 4, 16) if quick else ("DiT-B", 64, 16, 256)
    model = build_dit(name, in_channels=c, num_classes=1000).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-4, betas=(0.9, 0.95))
    x1 = torch.randn(batch, c, hw, hw, device=device)  # (B, C, h, w)
    eps, t = torch.randn_like(x1), torch.rand(batch, device=device)
    y = torch.randint(1000, (batch,), device=device)

    def one() -> None:
        with autocast_context(device):
            loss, _ = flow_loss(model(interpolate(x1, eps, t), t, y).float(), x1, eps, cos_weight=1.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    dt = seconds_per_step(lambda i: one(), device, warmup=1 if quick else 3, steps=2 if quick else 20)
    flops = dit_train_flops(model.spec, tokens=hw * hw, in_channels=c, samples=batch)
    print(f"RESULT dit_{name}_step_s={dt:.4f} dit_{name}_tflops={flops / dt / 1e12:.3f} batch={batch}")


def resume_on_device(device: torch.device) -> None:
    from vtp.train.checkpoint import load_state
    from vtp.train.loop import train

    cfg = from_dict(TokenizerTrainConfig, dict(encoder="cpu-xs", batch_size=8, budget_steps=4, unique_samples=16,
                                               latent_dim=8, decoder_depth=1, checkpoints=[20, 40], log_every=1))
    root = Path(tempfile.mkdtemp())
    quiet = lambda _m: None  # noqa: E731
    train(cfg, run_dir=root / "whole", device=device, log=quiet)
    train(cfg, run_dir=root / "cut", device=device, log=quiet, stop_after_step=2)
    train(cfg, run_dir=root / "cut", device=device, log=quiet)  # crashed in torch.set_rng_state before
    a, b = load_state(root / "whole/checkpoints/40.pt"), load_state(root / "cut/checkpoints/40.pt")
    worst = max(float((a["model"][k].float() - b["model"][k].float()).abs().max()) for k in a["model"])
    print(f"RESULT resume_{device.type}_ok=1 resume_max_abs_diff={worst:.3g}")


def _smoke_rank(rank: int, port: int, backend: str, out: str) -> None:
    os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    import torch.distributed as torch_dist

    from vtp.train.distributed import process_group
    from vtp.train.loop import train

    torch_dist.init_process_group(backend, init_method="env://", rank=0, world_size=1)  # a group of one
    try:
        with process_group() as dist:
            assert dist.active, "the loop must run its collectives"
            cfg = from_dict(TokenizerTrainConfig, dict(encoder="cpu-xs", batch_size=8, budget_steps=2,
                                                       unique_samples=16, latent_dim=8, decoder_depth=1,
                                                       checkpoints=[40], log_every=1))
            out_ = train(cfg, run_dir=Path(out).parent / "run", log=lambda _m: None, dist=dist)
        Path(out).write_text(str(out_["steps"]))
    finally:
        torch_dist.destroy_process_group()


def ddp_smoke(device: torch.device) -> None:
    import torch.multiprocessing as mp

    backend = "nccl" if device.type == "cuda" else "gloo"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = Path(tempfile.mkdtemp()) / "steps"
    mp.start_processes(_smoke_rank, args=(port, backend, str(out)), nprocs=1, start_method="spawn")
    print(f"RESULT ddp_smoke_{backend}_ok={int(out.read_text() == '2')}")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="the four checks on the CPU at tiny sizes")
    args = p.parse_args(argv)
    if not args.quick and not torch.cuda.is_available():
        print("no GPU here: run with --quick for the CPU plumbing check", file=sys.stderr)
        return 2
    device = torch.device("cpu" if args.quick else "cuda")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        print(f"GPU: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    for check in (tokenizer_step, dit_step):
        check(device, args.quick)
    resume_on_device(device)
    ddp_smoke(device)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
