"""Run a training function on N local processes (gloo, CPU, one thread each), as a SLURM job with N
tasks would: each process gets RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT and joins the group from
them (vtp.train.distributed.init_from_env). What rank 0 returns comes back through a file."""

from __future__ import annotations

import json
import os
import socket
import traceback
from pathlib import Path

import torch
import torch.multiprocessing as mp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Recorder:
    """A Tracker that keeps what it is given."""

    def __init__(self):
        self.metrics: list[tuple[int, dict]] = []

    def log_params(self, params):
        pass

    def log_metrics(self, metrics, step):
        self.metrics.append((step, dict(metrics)))

    def log_artifact(self, path):
        pass

    def set_tags(self, tags):
        pass


def _entry(rank: int, world: int, port: int, target: str, kwargs: dict, out: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from vtp.train.distributed import process_group

    try:
        with process_group("cpu") as dist:
            result = globals()[target](dist=dist, **kwargs)
        if rank == 0:
            Path(out).write_text(json.dumps(result))
    except Exception:
        Path(f"{out}.rank{rank}.err").write_text(traceback.format_exc())
        raise


def run_ranks(world: int, target: str, out: Path, **kwargs) -> dict:
    """`target(dist=..., **kwargs)` (a function of this module) on `world` processes; rank 0's result."""
    mp.start_processes(_entry, args=(world, free_port(), target, kwargs, str(out)), nprocs=world,
                       start_method="spawn", join=True)
    return json.loads(Path(out).read_text())


def tokenizer(dist, cfg: dict, run_dir: str, stop_after_step: int | None = None) -> dict:
    from vtp.config import from_dict
    from vtp.train.config import TokenizerTrainConfig
    from vtp.train.loop import train

    rec = Recorder()
    summary = train(from_dict(TokenizerTrainConfig, cfg), run_dir=run_dir, tracker=rec, log=lambda _m: None,
                    dist=dist, stop_after_step=stop_after_step)
    return {"summary": summary, "metrics": rec.metrics}


def dit(dist, cfg: dict, run_dir: str) -> dict:
    from vtp.train.dit import train_dit
    from vtp.train.dit_config import DiTTrainConfig

    g = torch.Generator().manual_seed(0)
    latents, labels = torch.randn(32, 4, 4, 4, generator=g), torch.randint(5, (32,), generator=g)
    rec = Recorder()
    summary = train_dit(DiTTrainConfig(**cfg), latents=latents, labels=labels, num_classes=5, run_dir=run_dir,
                        tracker=rec, dist=dist)
    return {"summary": summary, "metrics": rec.metrics}


def several(dist, jobs: list[tuple[str, dict]]) -> list[dict]:
    """Several runs in one process group (one start-up of the processes for all of them)."""
    return [globals()[name](dist=dist, **kwargs) for name, kwargs in jobs]
