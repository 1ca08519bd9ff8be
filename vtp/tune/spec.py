"""The `tune:` section of a sweep stage: what to search, how to prune, what to optimise. Pure data.

    - name: tune
      target: vtp.stages.tune:run
      config: {encoder: "${axes.encoder}", objective: ae, budget_steps: 8, ...}   # each trial's base config
      tune:
        per: [encoder]                 # one search per value of these axes (the others are not expanded)
        space:
          lr: {loguniform: [1.0e-4, 3.0e-3]}
          weight_decay: {choice: [0.0, 0.05]}
          warmup_fraction: {uniform: [0.0, 0.1]}
          lambda_rec: {grid: [0.1, 1.0]}   # every value, times num_samples
        metric: val_rec_l1
        mode: min
        num_samples: 4
        scheduler: {kind: asha, grace_period: 1, reduction_factor: 2}

Downstream stages refer to the result as `${tune.best.lr}` (the stage's name, `best`, the key).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

DISTRIBUTIONS = ("grid", "choice", "uniform", "loguniform", "randint")
DEFAULT_TRAINABLE = "vtp.tune.trainables:tokenizer"


@dataclass(frozen=True)
class SchedulerSpec:
    kind: Literal["asha", "fifo"] = "asha"
    grace_period: int = 1  # ASHA: reports a trial makes before it may be stopped
    reduction_factor: float = 2.0  # ASHA's eta: keep the top 1/eta at each rung
    max_t: int = 0  # reports of a full trial; 0 = the number of checkpoints the trainable reports at

    def validate(self) -> None:
        if self.grace_period < 1 or self.max_t < 0:
            raise ValueError("grace_period must be >= 1 and max_t >= 0")
        if self.reduction_factor <= 1:
            raise ValueError(f"reduction_factor must be > 1, got {self.reduction_factor}")


@dataclass(frozen=True)
class TuneSpec:
    space: Mapping[str, Any]  # name -> {grid|choice: [...]} | {uniform|loguniform|randint: [lo, hi]} | constant
    metric: str
    mode: Literal["min", "max"] = "min"
    per: tuple[str, ...] = ()  # the axes searched separately; () = one search for the whole sweep
    num_samples: int = 4  # samples of the space (each grid point this many times)
    scheduler: SchedulerSpec = field(default_factory=SchedulerSpec)
    trainable: str = DEFAULT_TRAINABLE  # "package.module:function", imported inside the job
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0  # Ray finds the job's GPUs (CUDA_VISIBLE_DEVICES, set by SLURM's gres)
    max_concurrent: int = 0  # 0 = as many as the job's CPUs allow
    seed: int = 0  # of the search algorithm's random draws

    def validate(self) -> None:
        if not self.space:
            raise ValueError("space: expected at least one parameter to search")
        if self.num_samples < 1 or self.cpus_per_trial <= 0 or self.gpus_per_trial < 0 or self.max_concurrent < 0:
            raise ValueError("num_samples must be >= 1, cpus_per_trial > 0, gpus_per_trial >= 0, max_concurrent >= 0")
        for name, dist in self.space.items():
            check_distribution(name, dist)


def check_distribution(name: str, dist: Any) -> None:
    """Raise ValueError naming `space.<name>` when a distribution is malformed."""
    where = f"space.{name}"
    if not isinstance(dist, Mapping):
        if isinstance(dist, (str, int, float, bool)):
            return  # a constant
        raise ValueError(f"{where}: expected {{{'|'.join(DISTRIBUTIONS)}: ...}} or a constant, got {dist!r}")
    if len(dist) != 1 or next(iter(dist)) not in DISTRIBUTIONS:
        raise ValueError(f"{where}: expected exactly one of {', '.join(DISTRIBUTIONS)}, got keys {list(dist)}")
    kind, args = next(iter(dist.items()))
    if not isinstance(args, (list, tuple)) or not args:
        raise ValueError(f"{where}.{kind}: expected a non-empty list, got {args!r}")
    if kind in ("grid", "choice"):
        return
    if len(args) != 2 or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args):
        raise ValueError(f"{where}.{kind}: expected [low, high] numbers, got {args!r}")
    lo, hi = args
    if not lo < hi:
        raise ValueError(f"{where}.{kind}: expected low < high, got {args!r}")
    if kind == "loguniform" and lo <= 0:
        raise ValueError(f"{where}.loguniform: bounds must be > 0, got {args!r}")
    if kind == "randint" and not all(isinstance(a, int) for a in args):
        raise ValueError(f"{where}.randint: expected integer bounds, got {args!r}")


def grid_size(spec: TuneSpec) -> int:
    """Trials the search runs: num_samples times the product of the grid sizes."""
    n = spec.num_samples
    for dist in spec.space.values():
        if isinstance(dist, Mapping) and "grid" in dist:
            n *= len(dist["grid"])
    return n
