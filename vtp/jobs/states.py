"""What happened to each run: the worker's on-disk marker first, the scheduler's word second.

Failure classes and the retry policy: node failure, preemption, a job lost without a marker, a
cancelled job and a child cancelled because its parent failed are retried on the next launch; a
Python exception, a timeout and out-of-memory only with `--retry-failed` (they would fail again).
A run refused for stale code is never resubmitted under its old key: the next launch plans it
under the key of the code checked out now. This table is the only one: `cluster.slurm_query`
maps scheduler states onto these classes and reads the retry set from here.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vtp.jobs.ledger import read_state

ERROR, TIMEOUT, OUT_OF_MEMORY, NODE_FAILURE, PREEMPTED, CANCELLED, DEPENDENCY, LOST, STALE_CODE = (
    "error", "timeout", "out_of_memory", "node_failure", "preempted", "cancelled", "dependency", "lost",
    "stale_code")
FAILURE_CLASSES = (ERROR, TIMEOUT, OUT_OF_MEMORY, NODE_FAILURE, PREEMPTED, CANCELLED, DEPENDENCY, LOST, STALE_CODE)
# Failures that say nothing about the run itself; a Python exception, a timeout (submitit already
# requeued it up to its limit) or running out of memory would fail the same way again.
AUTO_RETRY = frozenset({NODE_FAILURE, PREEMPTED, CANCELLED, DEPENDENCY, LOST})
RECORD_GRACE_S = 300.0  # how long a submitted job may be missing from the scheduler's accounting
ACTIVE = ("pending", "running", "unknown")  # unknown: the scheduler could not be asked; never resubmit


@dataclass(frozen=True)
class JobState:
    """As the executor sees a job: pending | running | completed | failed | unknown (not reachable)."""

    status: str
    failure: str | None = None  # one of FAILURE_CLASSES when status == "failed"
    gpu_s: float = 0.0  # GPUs x elapsed seconds, summed over every attempt
    requeues: int = 0  # attempts ended by preemption/requeue before this one


@dataclass(frozen=True)
class RunState:
    """The merged view: new | pending | running | unknown | done | failed."""

    status: str
    failure: str | None = None
    job_id: str | None = None
    gpu_s: float = 0.0
    requeues: int = 0


def merge(sweep_dir: Path, key: str, entry: Mapping[str, Any], job: JobState | None) -> RunState:
    job_id = entry.get("job_id")
    gpu_s, requeues = (job.gpu_s, job.requeues) if job else (0.0, 0)
    marker = read_state(sweep_dir, key)
    if marker and marker.get("status") == "done":
        return RunState("done", job_id=job_id, gpu_s=gpu_s, requeues=requeues)
    if job is not None and job.status in ACTIVE:
        return RunState(job.status, job_id=job_id, gpu_s=gpu_s, requeues=requeues)
    if marker and marker.get("status") == "failed":
        failure = marker.get("failure", "error")
        # The scheduler knows better when it killed the job (timeout, memory) after the marker.
        if job is not None and job.failure in ("timeout", "out_of_memory", "node_failure", "preempted"):
            failure = job.failure
        return RunState("failed", failure, job_id, gpu_s, requeues)
    if not job_id:
        return RunState("new")
    if job is None:
        if time.time() - float(entry.get("submitted") or 0) < RECORD_GRACE_S:
            return RunState("pending", job_id=job_id)  # accounting records a new job with some delay
        return RunState("failed", "lost", job_id)  # the scheduler has no record of it
    if job.status == "failed":
        return RunState("failed", job.failure or "error", job_id, gpu_s, requeues)
    return RunState("failed", "lost", job_id, gpu_s)  # completed without a marker


def retryable(failure: str | None, retry_failed: bool) -> bool:
    return retry_failed or failure in AUTO_RETRY
