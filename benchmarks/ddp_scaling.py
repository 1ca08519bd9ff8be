"""Data-parallel scaling on this machine: tokenizer training throughput of 2 processes (gloo, one
thread each) over 1 process (one thread) at the same global batch.

Each process times full training steps (its share of the batch: crops, losses, backward, the
gradient all-reduce, clip, AdamW, EMA) on pre-rendered images, after warm-up steps; the 2-process
figure is the slower rank's. Data rendering is excluded, as in train_throughput.py.

    PYTHONPATH=. python benchmarks/ddp_scaling.py [--preset cpu-s --batch 64 --steps 8]

Ends with `RESULT ddp_2proc_over_1proc=<samples/s of 2 processes / samples/s of 1>` (2.0 is perfect
scaling; on 2 cores shared with other work it is bounded by what the cores give).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.multiprocessing as mp

from vtp.config import from_dict
from vtp.train.config import TokenizerTrainConfig


def samples_per_s(cfg: TokenizerTrainConfig, dist, steps: int, warmup: int) -> float:
    from vtp.data.synthetic import SyntheticShapes
    from vtp.losses.ema import ema_update
    from vtp.train.budget import resolve
    from vtp.train.data import SampleOrder
    from vtp.train.distributed import barrier, broadcast_module
    from vtp.train.loop import build_model, make_optimizer, micro_batches
    from vtp.train.step import Centers, make_teacher, sharding, student_ssl_modules, train_step

    sizes = resolve(cfg)
    sh = sharding(sizes, dist.world_size, cfg.micro_batch_size)
    torch.manual_seed(0)
    model = build_model(cfg, sizes).train()
    broadcast_module(model, dist)
    teacher = make_teacher(model) if sizes.use_ssl else None
    opt = make_optimizer(model, cfg)
    k = model.ssl_head.prototypes.shape[0] if sizes.use_ssl else 1
    centers = Centers(torch.zeros(1, k), torch.zeros(1, k))
    dataset = SyntheticShapes(cfg.unique_samples, image_size=cfg.image_size)
    cached = [dataset[i] for i in range(len(dataset))]  # pre-rendered: time the training, not the renderer
    order = SampleOrder(len(cached), seed=0)

    def one(step: int) -> None:
        nonlocal centers
        micro = micro_batches(cached, order, step, cfg, sizes, sh, dist)
        opt.zero_grad(set_to_none=True)
        _, new = train_step(model, teacher, micro, cfg, sizes, sh, centers, 0.04, dist)
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        if teacher is not None:
            ema_update(teacher, student_ssl_modules(model), 0.996)
            centers = new

    for i in range(warmup):
        one(i)
    barrier(dist)
    t0 = time.perf_counter()
    for i in range(steps):
        one(warmup + i)
    barrier(dist)
    return steps * sizes.n_images / (time.perf_counter() - t0)


def _rank(rank: int, world: int, port: int, cfg: dict, steps: int, warmup: int, out: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from vtp.train.distributed import process_group

    with process_group("cpu") as dist:
        rate = samples_per_s(from_dict(TokenizerTrainConfig, cfg), dist, steps, warmup)
    Path(f"{out}.{rank}").write_text(json.dumps(rate))


def two_process_rate(cfg: dict, steps: int, warmup: int) -> float:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = Path(tempfile.mkdtemp()) / "rate"
    mp.start_processes(_rank, args=(2, port, cfg, steps, warmup, str(out)), nprocs=2, start_method="spawn")
    return min(json.loads(Path(f"{out}.{r}").read_text()) for r in range(2))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="cpu-s")
    p.add_argument("--objective", default="vtp")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="cpu-xs, batch 16, 2 steps: checks the plumbing")
    args = p.parse_args(argv)
    if args.quick:
        args.preset, args.batch, args.steps, args.warmup = "cpu-xs", 16, 2, 1
    cfg = dict(encoder=args.preset, objective=args.objective, batch_size=args.batch, budget_steps=args.steps,
               unique_samples=4 * args.batch)
    torch.set_num_threads(1)
    from vtp.train.distributed import Dist

    one = samples_per_s(from_dict(TokenizerTrainConfig, cfg), Dist(), args.steps, args.warmup)
    two = two_process_rate(cfg, args.steps, args.warmup)
    print(f"torch {torch.__version__}, {os.cpu_count()} cores; {args.preset} {args.objective} batch {args.batch}")
    print(f"RESULT ddp_1proc_samples_per_s={one:.2f}")
    print(f"RESULT ddp_2proc_samples_per_s={two:.2f}")
    print(f"RESULT ddp_2proc_over_1proc={two / one:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
