"""launch / status / cancel: the library API behind `vtp-sweep`.

`launch` submits exactly the runs `plan` marks `run` and returns; the ledger is written before
and after submission, atomically, so a launcher killed at any moment can simply be run again.

Exactly once, step by step: `launch` and `cancel` hold the sweep folder's lock (vtp.sweep.lock);
before each submission the executor's token and the keys it carries go into the ledger
(`submitting`), and the next launch first asks the executor what was queued under the tokens a
killed launcher left there (`find`: squeue by job name on SLURM) and adopts those jobs instead of
submitting them again. Workers then hold an owner lock on their run folder (vtp.jobs.worker).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cluster.executors import Executor, Submission, make_executor
from cluster.profile import ExecutorProfile
from vtp.config import to_dict
from vtp.jobs.ledger import read_ledger, run_dir, write_json, write_ledger
from vtp.jobs.states import ACTIVE
from vtp.sweep.hooks import prepare_tracking, reconcile_tracking, sync_tracking, tag_job_ids, tracker_target
from vtp.sweep.lock import sweep_lock
from vtp.sweep.planner import PlannedRun, ledger_executor, plan
from vtp.sweep.runs import Run, expand
from vtp.sweep.spec import Sweep
from vtp.sweep.status import SweepStatus, status
from vtp.sweep.version import code_version as current_code_version
from vtp.sweep.version import source_hash

CANCEL_WAIT_S = 120.0  # a cancel waits this long for a running launch to finish submitting


@dataclass(frozen=True)
class LaunchReport:
    sweep_dir: Path
    submitted: tuple[str, ...]
    planned: tuple[PlannedRun, ...] = field(repr=False)

    @property
    def deferred(self) -> int:
        """Runs left for a later launch: their config waits for a tune search to end."""
        return sum(p.action == "tune" for p in self.planned)


def executor_for(profile: ExecutorProfile) -> Executor:
    return make_executor(profile)


def launch(sweep: Sweep, *, retry_failed: bool = False, code_version: str | None = None,
           executor: Executor | None = None) -> LaunchReport:
    """Submit what `plan` marks `run`. Raises SweepBusy when another launch or cancel holds the
    sweep folder, LedgerError when its ledger is damaged."""
    folder = sweep.folder.resolve()
    if not folder.exists():  # a spec that fails its checks must create nothing, not even the lock
        expand(sweep, code_version if code_version is not None else current_code_version())
    with sweep_lock(folder, "launch"):
        return _launch(sweep, folder, retry_failed=retry_failed, code_version=code_version, executor=executor)


def adopt_queued(folder: Path, executor: Executor, ledger: dict[str, Any]) -> dict[str, Any]:
    """Settle the submissions a killed launcher left in the ledger (`submitting`: token -> keys):
    the jobs the executor finds queued under a token get their job ids; the rest were never queued
    and are planned again. Returns the (rewritten) ledger."""
    intents = dict(ledger.get("submitting") or {})
    if not intents:
        return ledger
    kind = ledger.get("executor", {}).get("kind")
    mine = {t: i for t, i in intents.items() if i.get("executor", kind) == kind}
    same = getattr(getattr(executor, "profile", None), "kind", None) == kind
    finder = executor if same else ledger_executor(folder, ledger)
    find = getattr(finder, "find", None)
    found = find(folder, mine) if (mine and callable(find)) else {}
    entries = dict(ledger.get("runs", {}))
    for intent in mine.values():
        for key in intent["keys"]:
            if key in found and key in entries:
                e = entries[key]
                entries[key] = {**e, "job_id": found[key], "attempts": e.get("attempts", 0) + 1,
                                "submitted": float(intent.get("at") or time.time()), "executor": kind}
    ledger = {**ledger, "runs": entries, "submitting": {}}
    write_ledger(folder, ledger)
    return ledger


def _launch(sweep: Sweep, folder: Path, *, retry_failed: bool, code_version: str | None,
            executor: Executor | None) -> LaunchReport:
    executor = executor or executor_for(sweep.profile)
    ledger = read_ledger(folder)
    if ledger is not None:
        adopt_queued(folder, executor, ledger)
        sync_tracking(folder)  # points buffered while the store was away (best effort)
    version = code_version if code_version is not None else current_code_version()
    planned = plan(sweep, code_version=version, retry_failed=retry_failed, job_states=executor.states,
                   with_flops=False)
    todo = [p.run for p in planned if p.action == "run"]
    ledger = read_ledger(folder) or {}
    entries: dict[str, Any] = dict(ledger.get("runs", {}))
    for p in planned:  # every run of the spec is in the ledger, submitted or not (once its key is known)
        r = p.run
        if r.waits_for is not None:
            continue
        entries.setdefault(r.key, {"stage": r.stage, "axes": dict(r.axes), "checkpoint": r.checkpoint,
                                   "parent": r.parent, "root": r.root, "job_id": None, "attempts": 0})
    ledger = {**ledger, "name": sweep.spec.name, "source": sweep.source, "code_version": version,
              "executor": to_dict(sweep.profile), "stages": [s.name for s in sweep.spec.stages], "runs": entries}
    write_ledger(folder, ledger)
    code_hash = source_hash()
    for r in todo:
        _write_run_config(folder, r, sweep, code_hash)
    prepare_tracking(sweep, folder, todo)
    by_key = {p.run.key: p for p in planned}
    subs = []
    for r in todo:
        parent = by_key.get(r.parent or "")
        active_parent = parent is not None and parent.action in ("run", "wait")
        subs.append(Submission(key=r.key, stage=r.stage, profile=sweep.stage_profiles[r.stage],
                               parent=r.parent if active_parent else None,
                               # a parent queued by an earlier launch; parents in this batch are
                               # resolved by the executor from the ids it just got
                               parent_job=entries[r.parent]["job_id"] if parent and parent.action == "wait" else None))

    submitting: dict[str, Any] = {}

    def intend(token: str, keys: Sequence[str]) -> None:
        submitting[token] = {"keys": list(keys), "at": time.time(), "executor": sweep.profile.kind}
        write_ledger(folder, {**ledger, "runs": entries, "submitting": submitting})

    def record(ids: Mapping[str, str]) -> None:
        now = time.time()
        for key, job_id in ids.items():
            e = entries[key]
            entries[key] = {**e, "job_id": job_id, "attempts": e.get("attempts", 0) + 1, "submitted": now,
                            "executor": sweep.profile.kind}
        for token in list(submitting):
            left = [k for k in submitting[token]["keys"] if k not in ids]
            if left:
                submitting[token] = {**submitting[token], "keys": left}
            else:
                del submitting[token]
        write_ledger(folder, {**ledger, "runs": entries, "submitting": submitting})

    submitted = executor.submit(folder, subs, record, on_intent=intend) if subs else {}
    reattach = getattr(executor, "reattach", None)
    if reattach is not None:  # queued runs whose runner died (a crash just after a launch) run again
        reattach(folder)
    if sweep.profile.kind == "slurm":
        tag_job_ids(folder, submitted)
    if sweep.profile.kind == "debug":  # everything has ended already
        reconcile_tracking(status(folder, executor=executor))
        sync_tracking(folder)
    return LaunchReport(folder, tuple(submitted), tuple(planned))


def _write_run_config(folder: Path, r: Run, sweep: Sweep, code_hash: str) -> None:
    d = run_dir(folder, r.key)
    d.mkdir(parents=True, exist_ok=True)
    (d / "state.json").unlink(missing_ok=True)  # a retried run starts without its old marker
    write_json(d / "config.json", {
        "key": r.key, "stage": r.stage, "target": r.target, "config": dict(r.config), "axes": dict(r.axes),
        "parents": dict(r.ancestors), "checkpoint": r.checkpoint, "root": r.root,
        "code_version": r.code_version, "code_hash": code_hash, "sweep": sweep.spec.name,
        "tracker": tracker_target(sweep)})


def launch_until_done(sweep: Sweep, *, timeout_s: float | None = None, poll_s: float | None = None,
                      on_poll: Callable[[SweepStatus], None] | None = None,
                      on_launch: Callable[[LaunchReport], None] | None = None, **options: Any) -> SweepStatus:
    """launch and wait, again while runs wait for a tune result: each round plans the runs whose
    search has ended, with their real keys. Without tune stages: one launch and one wait.
    The code version is read once: a commit made meanwhile must not give the search a new key."""
    start, before = time.time(), None
    options = {**options, "code_version": options.get("code_version") or current_code_version()}
    while True:
        report = launch(sweep, **options)
        if on_launch:
            on_launch(report)
        left = None if timeout_s is None else max(0.0, timeout_s - (time.time() - start))
        st = wait(report.sweep_dir, timeout_s=left, poll_s=poll_s, on_poll=on_poll)
        if not report.deferred or (not report.submitted and report.deferred == before):
            return st  # done, or a search ended without a result (its dependants stay unplanned)
        before = report.deferred


# ---------------------------------------------------------------- cancel / wait
def cancel(sweep_dir: str | Path, *, executor: Executor | None = None, wait_s: float = CANCEL_WAIT_S) -> list[str]:
    """Cancel every queued or running job of the sweep; returns their keys. Waits up to `wait_s`
    for a launch in progress to finish submitting (then cancels what it queued too)."""
    folder = Path(sweep_dir).resolve()
    if read_ledger(folder) is None:
        status(folder)  # the usual "no ledger.json here" error, without creating a lock file
    with sweep_lock(folder, "cancel", wait_s=wait_s):
        ledger = read_ledger(folder) or {}
        if ledger.get("submitting"):  # a killed launcher's submissions: cancel them too
            adopt_queued(folder, executor or ledger_executor(folder, ledger), ledger)
        st = status(folder, executor=executor)
        executor = executor or ledger_executor(st.sweep_dir, read_ledger(folder) or {})
        jobs = {k: s.job_id for k, s in st.runs.items() if s.status in ACTIVE and s.job_id}
        if jobs:
            executor.cancel(st.sweep_dir, jobs)
        return sorted(jobs)


def wait(sweep_dir: str | Path, *, timeout_s: float | None = None, poll_s: float | None = None,
         on_poll: Callable[[SweepStatus], None] | None = None) -> SweepStatus:
    """Block until no run is pending or running (or the timeout passes; then TimeoutError).
    Polls every `poll_s`, by default the executor profile's (SLURM: 10 s, one sacct call each)."""
    start = time.time()
    if poll_s is None:
        poll_s = float((read_ledger(Path(sweep_dir)) or {}).get("executor", {}).get("poll_s", 1.0))
    while True:
        st = status(sweep_dir)
        if on_poll:
            on_poll(st)
        if not st.active():
            reconcile_tracking(st)
            sync_tracking(st.sweep_dir)  # what workers buffered while the store was away
            return st
        if timeout_s is not None and time.time() - start > timeout_s:
            raise TimeoutError(f"{sweep_dir}: runs still active after {timeout_s:.0f} s")
        time.sleep(poll_s)
