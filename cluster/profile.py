"""Executor profiles: named YAML files in cluster/profiles/, typed and range-checked.

A sweep names a profile (`executor: slurm`) and may override any field; each stage may override
the resource fields (`resources:`). Unknown names list the available profiles.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from vtp.config import ConfigError, from_dict, load_yaml, to_dict

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"


@dataclass(frozen=True)
class ExecutorProfile:
    """Where and how runs execute. `kind` picks the executor implementation."""

    kind: Literal["slurm", "local", "debug"]
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    gres: str | None = None  # e.g. "gpu:1"
    nodes: int = 1
    # tasks (processes) per node; 0 = decided by the engine per stage: one per GPU of `gres` for the
    # data-parallel stages (tokenizer, decoder, dit), one for the others (vtp.stages.configs.LAUNCH)
    tasks_per_node: int = 0
    cpus_per_task: int = 1
    mem_gb: float = 1.0
    time_min: int = 60
    array_parallelism: int = 256  # the %N throttle of an array
    max_array_size: int | None = None  # None: read MaxArraySize from `scontrol show config`
    max_workers: int = 0  # local: runs at once; 0 = all cores
    warm_start: bool = True  # local: fork workers from a scheduler that imported their modules once
    submit_retries: int = 5  # sbatch attempts when it times out
    submit_backoff_s: float = 2.0  # first back-off, doubled per retry
    poll_s: float = 2.0
    setup: tuple[str, ...] = ()  # shell lines run before the job (module load ...)
    additional: Mapping[str, Any] = field(default_factory=dict)  # raw extra sbatch parameters
    max_num_timeout: int = 3  # SLURM: requeues after reaching the time limit (USR2) before it fails
    # SLURM: USR2 comes this many seconds before the time limit (submitit's default 90): the window in
    # which a run checkpoints and requeues. slurmctld checks limits periodically, so it can come ~30 s
    # earlier; a time limit below signal_delay_s + 30 s can signal a job as soon as it starts.
    signal_delay_s: int = 90


# field -> (min, max); None = unbounded
RANGES: dict[str, tuple[float | None, float | None]] = {
    "nodes": (1, None),
    "tasks_per_node": (0, 1024),
    "cpus_per_task": (1, 1024),
    "mem_gb": (0.01, None),
    "time_min": (1, None),
    "array_parallelism": (1, None),
    "max_array_size": (1, None),
    "max_workers": (0, None),
    "submit_retries": (1, 100),
    "submit_backoff_s": (0, None),
    "poll_s": (0.05, None),
    "max_num_timeout": (0, 100),
    "signal_delay_s": (1, None),
}
RESOURCE_FIELDS = ("partition", "account", "qos", "gres", "nodes", "tasks_per_node", "cpus_per_task", "mem_gb",
                   "time_min", "additional", "setup")


def gpus_per_node(gres: str | None) -> int:
    """GPUs a `gres` string asks for per node: "gpu:8" and "gpu:a100:8" -> 8, "gpu" -> 1, none -> 0."""
    for item in (gres or "").split(","):
        parts = item.strip().split(":")
        if parts[0] == "gpu":
            return int(parts[-1]) if len(parts) > 1 and parts[-1].isdigit() else 1
    return 0


def available_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def check_ranges(profile: ExecutorProfile, *, where: Any, key: str) -> None:
    for name, (lo, hi) in RANGES.items():
        value = getattr(profile, name)
        if value is None:
            continue
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            bound = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
            raise ConfigError(where, f"{key}.{name}" if key else name, f"expected a value {bound}, got {value!r}")


def check_lines(profile: ExecutorProfile, *, where: Any, key: str) -> None:
    """No text value may hold a line break: each becomes one `#SBATCH` line (or one shell line of
    `setup`), and a newline would smuggle a second directive or command into the job script."""
    texts: list[tuple[str, Any]] = [(n, getattr(profile, n)) for n in ("partition", "account", "qos", "gres")]
    texts += [(f"setup[{i}]", line) for i, line in enumerate(profile.setup)]
    texts += [(f"additional.{k}", v) for k, v in profile.additional.items()]
    texts += [(f"additional.{k}", k) for k in profile.additional]
    for name, value in texts:
        if isinstance(value, str) and ("\n" in value or "\r" in value):
            raise ConfigError(where, f"{key}.{name}" if key else name,
                              f"line breaks are not allowed (each value becomes one #SBATCH or shell line), got {value!r}")


def load_profile(name: str, options: Mapping[str, Any] | None = None, *, where: Any = None,
                 key: str = "executor") -> ExecutorProfile:
    """Profile `name` with `options` applied on top; errors name `where` and `key`."""
    names = available_profiles()
    if name not in names:
        raise ConfigError(where, f"{key}.profile", f"unknown executor profile {name!r}; available: {', '.join(names)}")
    path = PROFILE_DIR / f"{name}.yaml"
    base = load_yaml(path) or {}
    profile = from_dict(ExecutorProfile, base, where=path)
    check_ranges(profile, where=path, key="")
    check_lines(profile, where=path, key="")
    return with_options(profile, options or {}, where=where, key=f"{key}.options")


def with_options(profile: ExecutorProfile, options: Mapping[str, Any], *, where: Any, key: str,
                 allowed: tuple[str, ...] | None = None) -> ExecutorProfile:
    """A copy with `options` applied, each type-checked like the profile file itself."""
    valid = allowed or tuple(to_dict(profile))
    for k in options:
        if k not in valid:
            raise ConfigError(where, f"{key}.{k}", f"unknown key; valid keys are: {', '.join(sorted(valid))}")
    merged = {**to_dict(profile), **options}
    # Re-built from the merged mapping so types are checked; errors point at the option.
    out = from_dict(ExecutorProfile, merged, where=where, key=key)
    check_ranges(out, where=where, key=key)
    check_lines(out, where=where, key=key)
    return out
