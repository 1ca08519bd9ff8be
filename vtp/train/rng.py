"""RNG states in checkpoints: each rank's CPU and CUDA generator states, saved by rank 0.

The training loops draw their data, crops, masks and noise from generators seeded by (seed, step),
so these states matter only for code that uses the global generators (none in the loops today);
they are kept so a resume is exact whatever a model adds. States are CPU ByteTensors, the only form
`torch.set_rng_state` and `torch.cuda.set_rng_state` accept, whatever device the job runs on.
"""

from __future__ import annotations

from typing import Any

import torch

from vtp.train.distributed import Dist, gather_objects


def capture(dist: Dist) -> dict[str, Any]:
    """Every rank's states (a collective: all ranks call it at the same step)."""
    cuda = torch.cuda.get_rng_state(dist.device) if dist.device.type == "cuda" else None
    mine = {"cpu": torch.get_rng_state(), "cuda": cuda}
    per_rank = gather_objects(mine, dist)
    return {"cpu": [s["cpu"] for s in per_rank], "cuda": [s["cuda"] for s in per_rank]}


def restore(states: dict[str, Any] | None, dist: Dist, log=print) -> None:  # noqa: ANN001
    """This rank's states; a checkpoint from another world size restores what it has (rank r's if
    it exists, else rank 0's CPU state) and says so."""
    if not states:
        return
    cpu, cuda = states.get("cpu") or [], states.get("cuda") or []
    if len(cpu) != dist.world_size and dist.primary:
        log(f"RNG states of {len(cpu)} rank(s) restored into {dist.world_size}: ranks beyond them reuse rank 0's")
    mine = dist.rank if dist.rank < len(cpu) else 0
    if cpu:
        torch.set_rng_state(cpu[mine].cpu())
    if dist.device.type == "cuda" and mine < len(cuda) and cuda[mine] is not None:
        torch.cuda.set_rng_state(cuda[mine].cpu(), dist.device)
