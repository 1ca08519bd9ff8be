"""What a sweep's runs are doing now, read from the sweep folder alone: the ledger, the workers'
markers and ONE executor state query. Below the launcher and the tracking hooks, which both read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cluster.executors import Executor
from vtp.jobs.ledger import read_ledger
from vtp.jobs.states import ACTIVE, RunState, merge
from vtp.sweep.planner import ledger_executor, submitted_jobs


@dataclass(frozen=True)
class SweepStatus:
    sweep_dir: Path
    runs: Mapping[str, RunState]  # key -> state
    entries: Mapping[str, Mapping[str, Any]]
    stages: tuple[str, ...]

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {s: {} for s in self.stages}
        for key, st in self.runs.items():
            c = out.setdefault(self.entries[key]["stage"], {})
            c[st.status] = c.get(st.status, 0) + 1
        return out

    def failures(self) -> list[tuple[str, str, str]]:
        return [(k, self.entries[k]["stage"], st.failure or "error") for k, st in self.runs.items()
                if st.status == "failed"]

    def active(self) -> bool:
        return any(st.status in ACTIVE for st in self.runs.values())

    def requeues(self) -> int:
        return sum(st.requeues for st in self.runs.values())

    def gpu_hours(self) -> float:
        return sum(st.gpu_s for st in self.runs.values()) / 3600


def status(sweep_dir: str | Path, *, executor: Executor | None = None) -> SweepStatus:
    """Reattach from the sweep folder alone: the ledger, markers and ONE executor state query."""
    folder = Path(sweep_dir).resolve()
    ledger = read_ledger(folder)
    if ledger is None:
        raise FileNotFoundError(f"{folder}: no ledger.json here; is this a sweep folder (see `vtp-sweep launch`)?")
    executor = executor or ledger_executor(folder, ledger)
    entries = ledger["runs"]
    jobs = submitted_jobs(ledger)
    states = executor.states(folder, jobs) if jobs else {}
    runs = {k: merge(folder, k, e, states.get(k)) for k, e in entries.items()}
    runs = _blocked(runs, entries)
    return SweepStatus(folder, runs, entries, tuple(ledger.get("stages", ())))


def _blocked(runs: dict[str, RunState], entries: Mapping[str, Any]) -> dict[str, RunState]:
    """For display: a child of a failed run shows as blocked (whether never submitted, or cancelled
    by the scheduler because its dependency can never be met); a cancelled job as cancelled."""
    out: dict[str, RunState] = {}

    def view(key: str) -> RunState:
        if key not in out:
            st, parent = runs[key], entries[key].get("parent")
            parent_bad = parent in runs and view(parent).status in ("failed", "blocked")
            if st.status in ("new", "failed") and st.failure in (None, "dependency", "cancelled") and parent_bad:
                st = RunState("blocked", "dependency", st.job_id)
            elif st.status == "failed" and st.failure == "dependency":
                st = RunState("blocked", "dependency", st.job_id)
            elif st.status == "failed" and st.failure == "cancelled":
                st = RunState("cancelled", "cancelled", st.job_id)
            out[key] = st
        return out[key]

    for key in runs:
        view(key)
    return out


