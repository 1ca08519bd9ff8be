"""The job body: one run, in whatever process the executor chose (in-process twin of the remote path).

Loads `runs/<key>/config.json`, imports the stage target (only here, so planning never imports
torch), builds a RunContext, calls it, writes `result.json` and the `state.json` marker. A failure
writes the marker with the traceback and re-raises, so the scheduler sees the job fail too.

Which tracker a run logs to is named in its `config.json` too (`"tracker": "module:function"`,
called as `fn(sweep_dir, key)`; written by the engine when tracking is on), so this package needs
no import of the tracking layer: the arrow points from the engine down, never from here up.

Exactly once: the worker first takes an exclusive lock on `runs/<key>/owner.lock` (flock: dropped by
the kernel when the worker dies, however it dies). A second copy of the same key (a duplicate
submission, a second scheduler) finds it held and exits without running and without touching the
run's MLflow run; a copy that starts after the run finished finds its `done` marker and returns the
stored result. Then it checks the code: a job queued under one code version that starts after the
checkout's result code changed refuses to run (marker `stale_code`), so the next launch submits
the run under the key of the code that is there now.

    python -m vtp.jobs.worker SWEEP_DIR KEY
"""

from __future__ import annotations

import importlib
import json
import os
import socket
import sys
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vtp.jobs.context import RunContext
from vtp.jobs.ledger import read_json, run_dir, write_json
from vtp.jobs.locks import FileLock, LockHeld, describe
from vtp.jobs.tracker import NullTracker, Tracker
from vtp.jobs.version import source_hash

OWNER_LOCK = "owner.lock"
EXECUTIONS = "executions.jsonl"  # one line per start / end / refusal of a worker on this run


def note(folder: Path, event: str, **info: Any) -> None:
    """Append an event to the run's execution log (one O_APPEND write; provenance for a person,
    and how tests and the fault soak count executions)."""
    line = json.dumps({"event": event, "pid": os.getpid(), "host": socket.gethostname(), "t": time.time(),
                       "job": os.environ.get("SLURM_JOB_ID", ""), **info}) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / EXECUTIONS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


class RunOwned(RuntimeError):
    """Another worker runs this key right now; this copy exits without running (not a failure)."""


class StaleCode(RuntimeError):
    """The run was launched with other result code than the checkout this job starts from."""


def open_tracker(sweep_dir: Path, key: str, target: str | None) -> Tracker:
    """The tracker the run's config names (imported in the job only: MLflow is heavy), else a NullTracker."""
    return import_target(target)(sweep_dir, key) if target else NullTracker()


def close_tracker(tracker: Tracker, status: str) -> None:
    close = getattr(tracker, "close", None)
    if callable(close):
        close(status)


def import_target(target: str) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def context(sweep_dir: Path, key: str, cfg: Mapping[str, Any], tracker: Tracker) -> RunContext:
    folder = run_dir(sweep_dir, key)
    parents = {stage: run_dir(sweep_dir, k) for stage, k in cfg.get("parents", {}).items()}
    return RunContext(key=key, stage=cfg["stage"], config=cfg["config"], run_dir=folder, parents=parents,
                      checkpoint=cfg.get("checkpoint"), tracker=tracker)


def check_code(folder: Path, cfg: Mapping[str, Any], source: str | None = None) -> None:
    """Refuse a run whose result code changed since launch (config.json `code_hash`, written by
    the launcher). Raises StaleCode naming both hashes and what to do."""
    launched = cfg.get("code_hash")
    here = source or source_hash()
    if launched and launched != here:
        raise StaleCode(f"{folder}: launched with result code {launched}, but this checkout's is {here} "
                        "(vtp/{models,losses,train,data,eval,flops,stages,tune}, vtp/config.py changed since "
                        "launch); not run, so no result of the new code is filed under the old key. Launch "
                        "the spec again: the run gets the key of the code that is checked out now.")


def run_job(sweep_dir: str | Path, key: str, *, primary: bool = True) -> Mapping[str, Any]:
    """Run one run to completion (or resume it). Returns the stage's result. Raises RunOwned when
    another worker holds the run (this copy did nothing).

    primary=False: one of the other tasks of a job of several (ranks > 0 of a data-parallel run):
    it runs the stage too, but takes no owner lock (its rank 0 holds it for the whole job), logs
    nothing to the tracker and writes no result or done marker; a failure still writes its failed
    marker with its traceback.
    """
    sweep_dir = Path(sweep_dir).resolve()
    folder = run_dir(sweep_dir, key)
    if not primary:
        return _run_owned(sweep_dir, key, folder, primary=False)
    lock = FileLock(folder / OWNER_LOCK, f"run {key}")
    try:
        lock.acquire()
    except LockHeld as e:
        note(folder, "refused", reason="owned", owner=e.holder.get("pid"))
        raise RunOwned(f"{folder}: run {key} is being run by {describe(e.holder)}; this copy exits "
                       "without running") from None
    try:
        return _run_owned(sweep_dir, key, folder, primary=True)
    finally:
        lock.release()


def _failed(folder: Path, started: float, failure: str, e: BaseException) -> None:
    write_json(folder / "state.json", {
        "status": "failed", "failure": failure, "error": f"{type(e).__name__}: {e}",
        "traceback": traceback.format_exc(), "host": socket.gethostname(),
        "started": started, "ended": time.time()})


def _run_owned(sweep_dir: Path, key: str, folder: Path, *, primary: bool) -> Mapping[str, Any]:
    started = time.time()
    marker = read_json(folder / "state.json")
    if isinstance(marker, Mapping) and marker.get("status") == "done":
        if primary:
            note(folder, "refused", reason="done")
        return read_json(folder / "result.json", {})  # a duplicate started after the owner finished
    cfg = read_json(folder / "config.json")
    try:
        if cfg is not None:
            check_code(folder, cfg)
    except StaleCode as e:
        if primary:
            note(folder, "refused", reason="stale_code")
        _failed(folder, started, "stale_code", e)
        raise
    if primary:
        note(folder, "start")
    tracker = open_tracker(sweep_dir, key, (cfg or {}).get("tracker")) if primary else NullTracker()
    try:
        if cfg is None:
            raise FileNotFoundError(f"{folder / 'config.json'} is missing: was the run launched?")
        ctx = context(sweep_dir, key, cfg, tracker)
        fn = import_target(cfg["target"])
        result = dict(fn(ctx) or {})
    except Exception as e:
        _failed(folder, started, "error", e)
        if primary:
            note(folder, "end", status="failed")
        close_tracker(tracker, "FAILED")
        raise
    if not primary:
        return result
    write_json(folder / "result.json", result)
    write_json(folder / "state.json", {"status": "done", "host": socket.gethostname(),
                                       "started": started, "ended": time.time()})
    note(folder, "end", status="done")
    close_tracker(tracker, "FINISHED")
    return result


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m vtp.jobs.worker SWEEP_DIR KEY", file=sys.stderr)
        return 2
    try:
        run_job(args[0], args[1])
    except RunOwned as e:
        print(f"vtp.jobs.worker: {e}", file=sys.stderr)
        return 0
    except Exception:
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
