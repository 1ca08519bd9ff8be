"""`plan`: every run of a spec with what `launch` would do to it. Reads, never writes.

Actions: run | skip (done) | wait (pending or running) | failed (not retried without
--retry-failed) | blocked (an ancestor failed and will not be retried) | tune (its config needs the
best values of a search that has not ended: planned again, with its real key, by a later launch).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cluster.executors import Executor, make_executor
from cluster.profile import ExecutorProfile
from vtp.config import from_dict
from vtp.jobs.ledger import read_ledger
from vtp.jobs.states import ACTIVE, JobState, RunState, merge, retryable
from vtp.sweep.runs import Run, expand
from vtp.sweep.spec import Sweep
from vtp.sweep.version import code_version as current_code_version

ACTION_LABEL = {"run": "run", "skip": "skip(done)", "wait": "wait(running)", "failed": "failed",
                "blocked": "blocked(dependency failed)", "tune": "wait(tune pending)"}


@dataclass(frozen=True)
class PlannedRun:
    run: Run
    action: str
    state: RunState
    flops: float | None = None


def plan(sweep: Sweep, *, code_version: str | None = None, retry_failed: bool = False,
         job_states: Callable[[Path, Mapping[str, str]], Mapping[str, JobState]] | None = None,
         with_flops: bool = True, check_data: bool = True) -> list[PlannedRun]:
    """Runs in parent-first order with their action. `job_states(sweep_dir, {key: job_id})` asks
    the executor; it is only called when the ledger holds submitted jobs. `check_data=False` skips
    listing the datasets (to preview a cluster spec on a machine without its data; launch never does)."""
    version = code_version if code_version is not None else current_code_version()
    runs = expand(sweep, version, check_data=check_data)
    folder = sweep.folder
    ledger = (read_ledger(folder) or {}) if folder.exists() else {}
    entries = ledger.get("runs", {})
    submitted = submitted_jobs(ledger)
    if submitted and job_states is None:
        job_states = ledger_executor(folder, ledger).states
    jobs = dict(job_states(folder, submitted)) if (job_states and submitted) else {}
    flops_of = _flops_estimators(sweep) if with_flops else {}
    actions: dict[str, str] = {}
    out = []
    for run in runs:
        if run.waits_for is not None:  # a provisional key: nothing on disk can belong to it
            search = actions.get(run.waits_for)
            state = RunState("new")
            actions[run.key] = action = "blocked" if search in ("failed", "blocked") else "tune"
            out.append(PlannedRun(run, action, state, None))
            continue
        entry = entries.get(run.key, {})
        state = merge(folder, run.key, entry, jobs.get(run.key)) if entry or folder.exists() else RunState("new")
        actions[run.key] = action = _action(state, actions.get(run.parent or ""), retry_failed)
        estimator = flops_of.get(run.stage)
        out.append(PlannedRun(run, action, state, _estimate(estimator, run.config)))
    return out


def submitted_jobs(ledger: Mapping[str, Any]) -> dict[str, str]:
    """key -> job id of the runs submitted through the ledger's current executor. Jobs of an
    executor used before (a sweep moved from local to SLURM) are judged by their markers alone."""
    kind = ledger.get("executor", {}).get("kind")
    return {k: e["job_id"] for k, e in ledger.get("runs", {}).items()
            if e.get("job_id") and e.get("executor", kind) == kind}


def ledger_executor(folder: Path, ledger: Mapping[str, Any]) -> Executor:
    """The executor the sweep was launched with (from the ledger), to ask about its jobs."""
    return make_executor(from_dict(ExecutorProfile, ledger["executor"], where=folder / "ledger.json", key="executor"))


def _action(state: RunState, parent_action: str | None, retry_failed: bool) -> str:
    if state.status == "done":
        return "skip"
    if state.status in ACTIVE:
        return "wait"
    if state.status == "failed" and not retryable(state.failure, retry_failed):
        return "failed"
    if parent_action in ("failed", "blocked"):
        return "blocked"
    return "run"


def _flops_estimators(sweep: Sweep) -> dict[str, Callable[[Mapping[str, Any]], float] | None]:
    """Import each stage's torch-free estimator once; an import that fails shows "-"."""
    out = {}
    for s in sweep.spec.stages:
        if s.flops:
            module, _, name = s.flops.partition(":")
            try:
                out[s.name] = getattr(importlib.import_module(module), name)
            except Exception:  # noqa: BLE001 -- plan must not crash on a stage not written yet
                out[s.name] = None
    return out


def _estimate(fn: Callable[[Mapping[str, Any]], float] | None, config: Mapping[str, Any]) -> float | None:
    if fn is None:
        return None
    try:
        return float(fn(dict(config)))
    except Exception:  # noqa: BLE001 -- an estimator bug shows "-" rather than hiding the plan
        return None


def _cell(v: Any) -> str:
    return format(v, "g") if isinstance(v, float) else str(v)


def fmt_flops(x: float | None) -> str:
    return "-" if x is None else f"{x:.3g}"


def format_table(planned: Sequence[PlannedRun], *, limit: int | None = None) -> str:
    """The run table then per-stage totals, as plain text."""
    axis_names = list(dict.fromkeys(a for p in planned for a in p.run.axes))  # a tune run has only its `per` axes
    header = ["key", "stage", *axis_names, "ckpt", "action", "est_flops"]
    rows = [[p.run.key, p.run.stage, *(_cell(p.run.axes.get(a, "")) for a in axis_names),
             "-" if p.run.checkpoint is None else str(p.run.checkpoint), ACTION_LABEL[p.action], fmt_flops(p.flops)]
            for p in planned]
    shown = rows if limit is None else rows[:limit]
    lines = _columns([header, *shown])
    if limit is not None and len(rows) > limit:
        lines.append(f"... {len(rows) - limit} more runs")
    lines += ["", *summary(planned)]
    return "\n".join(lines)


def summary(planned: Sequence[PlannedRun]) -> list[str]:
    totals: dict[str, dict[str, Any]] = {}
    for p in planned:
        t = totals.setdefault(p.run.stage, {"runs": 0, "flops": 0.0, "flops_known": True,
                                            **{a: 0 for a in ACTION_LABEL}})
        t["runs"] += 1
        t[p.action] += 1
        if p.flops is None:
            t["flops_known"] = False
        else:
            t["flops"] += p.flops
    header = ["stage", "runs", *ACTION_LABEL, "est_flops"]
    rows = [[stage, str(t["runs"]), *(str(t[a]) for a in ACTION_LABEL),
             fmt_flops(t["flops"]) if t["flops_known"] else "-"] for stage, t in totals.items()]
    return _columns([header, *rows])


def _columns(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
