"""torch.distributed for the training loops: the process group from the environment, and the few
collectives the loops use. One process per device; with one process every call is a no-op.

The launcher exports the standard variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
MASTER_PORT; submitit's TorchDistributedEnvironment does it in a SLURM job, `torchrun` elsewhere);
the science reads only those, so it knows no scheduler.

Gradients are summed across ranks in flat buckets after the last micro-batch (`all_reduce_grads`):
what DDP's reducer does, without its overlap of communication with the backward pass, because the
tokenizer's step calls several modules (encoder, decoder, text tower, SSL head, the CLIP
gradient-cache pass) rather than one `forward` that DDP could wrap.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import torch
import torch.distributed as torch_dist


@dataclass(frozen=True)
class Dist:
    """This process's place in the job. `world_size == 1`: no process group, collectives are no-ops."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    grouped: bool = False  # a process group exists (also with one rank: a 1-process NCCL smoke run)

    @property
    def primary(self) -> bool:
        """Rank 0 alone logs, writes checkpoints and progress."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1 or self.grouped


def env_world(env: Mapping[str, str] = os.environ) -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from the standard variables; (0, 1, 0) when they are absent."""
    return int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0))


def default_device(local_rank: int = 0) -> torch.device:
    """This rank's GPU (by LOCAL_RANK among the visible ones; the only one when the scheduler shows
    each task one GPU), else the CPU."""
    if not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", local_rank if local_rank < torch.cuda.device_count() else 0)


def init_from_env(device: str | torch.device | None = None, env: Mapping[str, str] = os.environ) -> Dist:
    """Join the job's process group (NCCL on GPUs, gloo on CPUs) when WORLD_SIZE > 1.

    Idempotent: a process group that already exists (a test, torchrun) is used as it is.
    """
    rank, world, local = env_world(env)
    dev = torch.device(device) if device is not None else default_device(local)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world > 1 and not torch_dist.is_initialized():
        torch_dist.init_process_group("nccl" if dev.type == "cuda" else "gloo", init_method="env://",
                                      rank=rank, world_size=world)
    grouped = torch_dist.is_initialized()
    if grouped:
        rank, world = torch_dist.get_rank(), torch_dist.get_world_size()
    return Dist(rank=rank, world_size=world, local_rank=local, device=dev, grouped=grouped)


@contextlib.contextmanager
def process_group(device: str | torch.device | None = None) -> Iterator[Dist]:
    """`init_from_env` for the length of a stage; the group it created is destroyed afterwards."""
    existed = torch_dist.is_initialized()
    dist = init_from_env(device)
    try:
        yield dist
    finally:
        if dist.grouped and not existed and torch_dist.is_initialized():
            torch_dist.destroy_process_group()


def all_reduce_sum(x: torch.Tensor, dist: Dist) -> torch.Tensor:
    """Sum over ranks (in place; returns x)."""
    if dist.active:
        torch_dist.all_reduce(x)
    return x


def all_reduce_grads(params: Iterable[torch.nn.Parameter], dist: Dist, bucket_elems: int = 2**25) -> None:
    """Sum every parameter's gradient over ranks, in flat buckets of one dtype (DDP's buckets)."""
    if not dist.active:
        return
    grads = [p.grad for p in params if p.grad is not None]
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for g in grads:
        by_dtype.setdefault(g.dtype, []).append(g)
    for group in by_dtype.values():
        buckets, current, size = [], [], 0
        for g in group:
            if current and size + g.numel() > bucket_elems:
                buckets.append(current)
                current, size = [], 0
            current.append(g)
            size += g.numel()
        buckets.append(current)
        for bucket in buckets:
            flat = torch.cat([g.reshape(-1) for g in bucket])  # (bucket size,)
            torch_dist.all_reduce(flat)
            for g, chunk in zip(bucket, flat.split([g.numel() for g in bucket])):
                g.copy_(chunk.view_as(g))


def all_gather(x: torch.Tensor, dist: Dist) -> torch.Tensor:
    """(n, ...) on every rank -> (world * n, ...) in rank order, no gradient."""
    if not dist.active:
        return x
    out = [torch.empty_like(x) for _ in range(dist.world_size)]
    torch_dist.all_gather(out, x.contiguous())
    return torch.cat(out)


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward sums every rank's gradient of the gathered tensor and keeps this
    rank's rows (open_clip's `gather_with_grad`), with all_reduce, which every backend has."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, rank: int, world: int) -> torch.Tensor:  # noqa: ANN001
        ctx.rank, ctx.n = rank, x.shape[0]
        out = [torch.empty_like(x) for _ in range(world)]
        torch_dist.all_gather(out, x.contiguous())
        return torch.cat(out)  # (world * n, ...)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: ANN001, ANN205
        grad = grad.contiguous()
        torch_dist.all_reduce(grad)
        return grad[ctx.rank * ctx.n:(ctx.rank + 1) * ctx.n], None, None


def gather_with_grad(x: torch.Tensor, dist: Dist) -> torch.Tensor:
    """(n, ...) -> (world * n, ...); gradients flow back to every rank's own rows."""
    if not dist.active:
        return x
    return _GatherWithGrad.apply(x, dist.rank, dist.world_size)


def broadcast_module(module: torch.nn.Module, dist: Dist) -> None:
    """Rank 0's parameters and buffers on every rank (DDP does the same at construction)."""
    if not dist.active:
        return
    with torch.no_grad():
        for t in [*module.parameters(), *module.buffers()]:
            torch_dist.broadcast(t.data, src=0)


def broadcast_object(value: object, dist: Dist) -> object:
    """Rank 0's (picklable) value on every rank: so all ranks resume from the same checkpoint."""
    if not dist.active:
        return value
    box = [value]
    torch_dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(obj: object, dist: Dist) -> list[object]:
    """Every rank's `obj`, in rank order, on every rank."""
    if not dist.active:
        return [obj]
    out: list[object] = [None] * dist.world_size
    torch_dist.all_gather_object(out, obj)
    return out


def agree(flag: bool, dist: Dist) -> bool:
    """True on every rank when rank 0's flag is True (a decision only rank 0's clock may make)."""
    if not dist.active:
        return flag
    t = torch.tensor([1.0 if (flag and dist.primary) else 0.0], device=dist.device)
    torch_dist.all_reduce(t)
    return bool(t.item() > 0)


def barrier(dist: Dist) -> None:
    if dist.active:
        torch_dist.barrier()
