"""In-process, sequential, parents first: the twin of the remote path for tests and debuggers."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from cluster.executors.base import Submission
from vtp.jobs.ledger import read_json, read_state, write_json
from vtp.jobs.states import JobState
from vtp.jobs.worker import run_job


class DebugExecutor:
    def _file(self, sweep_dir: Path, key: str) -> Path:
        return Path(sweep_dir) / "debug" / f"{key}.json"

    def submit(self, sweep_dir: Path, runs: Sequence[Submission],
               on_submitted: Callable[[Mapping[str, str]], None],
               on_intent: Callable[[str, Sequence[str]], None] | None = None) -> dict[str, str]:
        ids = {r.key: f"debug:{r.key}" for r in runs}
        on_submitted(ids)
        for r in runs:
            parent = read_state(sweep_dir, r.parent) if r.parent else {"status": "done"}
            if not parent or parent.get("status") != "done":
                write_json(self._file(sweep_dir, r.key), {"status": "failed", "failure": "dependency"})
                continue
            try:
                run_job(sweep_dir, r.key)
                write_json(self._file(sweep_dir, r.key), {"status": "completed"})
            except Exception:  # noqa: BLE001 -- recorded in state.json by the worker
                write_json(self._file(sweep_dir, r.key), {"status": "failed", "failure": "error"})
        return ids

    def states(self, sweep_dir: Path, jobs: Mapping[str, str]) -> dict[str, JobState]:
        out = {}
        for key in jobs:
            info = read_json(self._file(sweep_dir, key))
            if info:
                out[key] = JobState(info["status"], info.get("failure"))
        return out

    def find(self, sweep_dir: Path, intents: Mapping[str, Mapping]) -> dict[str, str]:
        return {}  # in-process: a killed launcher took its runs with it

    def cancel(self, sweep_dir: Path, jobs: Mapping[str, str]) -> None:
        pass  # nothing is ever left running
