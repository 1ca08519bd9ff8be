"""SLURM via submitit: job arrays per (stage, parent job), afterok chains, one sacct per poll.

- Runs of one stage that wait for the same parent job go as one job array (`map_array`), split into
  chunks of at most MaxArraySize: that setting caps the array *index*, and submitit numbers each
  array from 0, so every chunk is its own array with indexes 0..n-1 (the offset into the run list
  is the chunk start; each task's run key travels in its pickled arguments).
- A child depends on its parent's job (`afterok:<id>`, or `<array id>_<task>`) with
  `--kill-on-invalid-dep=yes`, so a failed parent cancels its children instead of leaving them
  pending forever (DependencyNeverSatisfied).
- sbatch is throttled (submitit's own pause) and retried with exponential back-off.
- States come from ONE `sacct --parsable2` call per poll; the worker's state.json marker wins.
- The job body is a `submitit.helpers.Checkpointable`: on preemption or timeout submitit requeues it
  with the same arguments, and the stage resumes from its run folder.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import submitit

from cluster.executors.base import Submission
from cluster.profile import ExecutorProfile
from vtp.sweep.states import JobState
from vtp.sweep.worker import run_job

PACKAGE_ROOT = Path(__file__).resolve().parents[2]

# sacct State (first word) -> (status, failure class)
SACCT_STATES: dict[str, tuple[str, str | None]] = {
    "PENDING": ("pending", None), "REQUEUED": ("pending", None), "REQUEUE_HOLD": ("pending", None),
    "REQUEUE_FED": ("pending", None), "RESV_DEL_HOLD": ("pending", None), "CONFIGURING": ("running", None),
    "RUNNING": ("running", None), "COMPLETING": ("running", None), "SUSPENDED": ("running", None),
    "RESIZING": ("running", None), "STAGE_OUT": ("running", None), "SIGNALING": ("running", None),
    "COMPLETED": ("completed", None), "FAILED": ("failed", "error"), "BOOT_FAIL": ("failed", "node_fail"),
    "NODE_FAIL": ("failed", "node_fail"), "TIMEOUT": ("failed", "timeout"), "OUT_OF_MEMORY": ("failed", "oom"),
    "PREEMPTED": ("failed", "preempted"), "DEADLINE": ("failed", "timeout"), "CANCELLED": ("failed", "cancelled"),
    "REVOKED": ("failed", "cancelled"),
}


class SlurmJob(submitit.helpers.Checkpointable):
    """The job body. Checkpointable's default `checkpoint` resubmits the same call on requeue."""

    def __call__(self, sweep_dir: str, key: str) -> dict:
        return dict(run_job(sweep_dir, key))


def expand_array_ids(job_id: str) -> list[str]:
    """`123_[0-3,7%2]` (a pending array in sacct) -> ['123_0', ..., '123_3', '123_7']."""
    m = re.fullmatch(r"(\d+)_\[([^\]]+)\]", job_id)
    if not m:
        return [job_id]
    base, spec = m.group(1), m.group(2).split("%")[0]
    out = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        out += [f"{base}_{i}" for i in range(int(lo), int(hi or lo) + 1)]
    return out


def parse_sacct(text: str) -> dict[str, JobState]:
    """Rows of `sacct -X -D -n --parsable2 -o JobID,State,ElapsedRaw,AllocTRES` -> job id -> state.

    With -D (duplicates) a requeued job has one row per attempt, oldest first: the last row is its
    state, the earlier ones count as requeues (SLURM's own record, not a guess from wall time), and
    the elapsed time is the sum over attempts (GPU-hours used include the lost work)."""
    out: dict[str, JobState] = {}
    for line in text.splitlines():
        fields = line.split("|")
        if len(fields) < 2 or not fields[0]:
            continue
        state_word = fields[1].split()[0] if fields[1].split() else "UNKNOWN"
        status, failure = SACCT_STATES.get(state_word, ("unknown", None))
        elapsed = float(fields[2]) if len(fields) > 2 and fields[2].isdigit() else 0.0
        gpus = 0
        if len(fields) > 3:
            g = re.search(r"gres/gpu=(\d+)", fields[3])
            gpus = int(g.group(1)) if g else 0
        for jid in expand_array_ids(fields[0]):
            before = out.get(jid)
            if before is None:
                out[jid] = JobState(status, failure, elapsed, gpus)
            else:
                out[jid] = JobState(status, failure, before.elapsed_s + elapsed, max(gpus, before.gpus),
                                    before.requeues + 1)
    return out


def max_array_size(run: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> int:
    """MaxArraySize from `scontrol show config` (SLURM's default 1001 if it cannot be read)."""
    try:
        text = run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return 1001
    m = re.search(r"^MaxArraySize\s*=\s*(\d+)", text, re.M)
    return int(m.group(1)) if m else 1001


def chunks(items: Sequence, size: int) -> list[Sequence]:
    return [items[i:i + size] for i in range(0, len(items), size)]


class SlurmExecutor:
    def __init__(self, profile: ExecutorProfile):
        self.profile = profile
        self._max_array: int | None = profile.max_array_size

    def _executor(self, sweep_dir: Path, profile: ExecutorProfile, dependency: str | None) -> submitit.SlurmExecutor:
        ex = submitit.SlurmExecutor(folder=Path(sweep_dir) / "slurm" / "%j", max_num_timeout=3)
        additional = dict(profile.additional)
        if dependency:
            additional.update({"dependency": f"afterok:{dependency}", "kill-on-invalid-dep": "yes"})
        params = {"time": profile.time_min, "mem": f"{max(1, round(profile.mem_gb * 1024))}MB",
                  "cpus_per_task": profile.cpus_per_task, "nodes": profile.nodes,
                  "array_parallelism": profile.array_parallelism, "job_name": f"vtp-{Path(sweep_dir).name}",
                  "setup": [f"export PYTHONPATH={PACKAGE_ROOT}:${{PYTHONPATH:-}}", *profile.setup],
                  "additional_parameters": additional}
        for name in ("partition", "account", "qos", "gres"):
            if getattr(profile, name):
                params[name] = getattr(profile, name)
        ex.update_parameters(**params)
        return ex

    def _submit_array(self, sweep_dir: Path, profile: ExecutorProfile, dependency: str | None,
                      keys: Sequence[str]) -> list[str]:
        delay = self.profile.submit_backoff_s
        for attempt in range(self.profile.submit_retries):
            try:
                ex = self._executor(sweep_dir, profile, dependency)
                jobs = ex.map_array(SlurmJob(), [str(sweep_dir)] * len(keys), list(keys))
                return [j.job_id for j in jobs]
            except Exception:  # noqa: BLE001 -- sbatch timeouts surface as generic failures
                if attempt + 1 == self.profile.submit_retries:
                    raise
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    def submit(self, sweep_dir: Path, runs: Sequence[Submission],
               on_submitted: Callable[[Mapping[str, str]], None]) -> dict[str, str]:
        if self._max_array is None:
            self._max_array = max_array_size()
        ids: dict[str, str] = {}
        groups: dict[tuple, list[Submission]] = {}
        for r in runs:  # parents come first, so a parent in this batch has its id before its children
            groups.setdefault((r.stage, r.parent, r.parent_job), []).append(r)
        for (_, parent, parent_job), members in groups.items():
            dependency = ids.get(parent) if parent else None
            dependency = dependency or parent_job
            profile = members[0].profile
            for chunk in chunks(members, self._max_array):
                job_ids = self._submit_array(sweep_dir, profile, dependency, [m.key for m in chunk])
                new = dict(zip((m.key for m in chunk), job_ids))
                ids.update(new)
                on_submitted(new)
        return ids

    def states(self, sweep_dir: Path, jobs: Mapping[str, str]) -> dict[str, JobState]:
        if not jobs:
            return {}
        bases = sorted({j.split("_")[0] for j in jobs.values()})
        try:
            proc = subprocess.run(["sacct", "-X", "-D", "-n", "--parsable2", "-o", "JobID,State,ElapsedRaw,AllocTRES",
                                   "-j", ",".join(bases)], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            proc = None
        if proc is None or proc.returncode != 0:  # accounting away: say "unknown", markers still decide
            return {k: JobState("unknown") for k in jobs}
        table = parse_sacct(proc.stdout)
        return {k: table[j] for k, j in jobs.items() if j in table}

    def cancel(self, sweep_dir: Path, jobs: Mapping[str, str]) -> None:
        subprocess.run(["scancel", *sorted(set(jobs.values()))], capture_output=True, text=True, timeout=60)
