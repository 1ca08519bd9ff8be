"""The job body: one run, in whatever process the executor chose (in-process twin of the remote path).

Loads `runs/<key>/config.json`, imports the stage target (only here, so planning never imports
torch), builds a RunContext, calls it, writes `result.json` and the `state.json` marker. A failure
writes the marker with the traceback and re-raises, so the scheduler sees the job fail too.

    python -m vtp.sweep.worker SWEEP_DIR KEY
"""

from __future__ import annotations

import importlib
import socket
import sys
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vtp.stages.api import NullTracker, RunContext, Tracker
from vtp.sweep.ledger import read_json, run_dir, write_json


def open_tracker(sweep_dir: Path, key: str) -> Tracker:
    """The run's MLflow tracker when the launcher prepared tracking (tracking.json), else a NullTracker."""
    if not (Path(sweep_dir) / "tracking.json").exists():
        return NullTracker()
    from vtp.tracking import open_run  # imported in the job only: MLflow is heavy

    return open_run(sweep_dir, key)


def close_tracker(tracker: Tracker, status: str) -> None:
    close = getattr(tracker, "close", None)
    if callable(close):
        close(status)


def import_target(target: str) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def context(sweep_dir: Path, key: str, tracker: Tracker) -> RunContext:
    folder = run_dir(sweep_dir, key)
    cfg = read_json(folder / "config.json")
    if cfg is None:
        raise FileNotFoundError(f"{folder / 'config.json'} is missing: was the run launched?")
    parents = {stage: run_dir(sweep_dir, k) for stage, k in cfg.get("parents", {}).items()}
    return RunContext(key=key, stage=cfg["stage"], config=cfg["config"], run_dir=folder, parents=parents,
                      checkpoint=cfg.get("checkpoint"), tracker=tracker)


def run_job(sweep_dir: str | Path, key: str) -> Mapping[str, Any]:
    """Run one run to completion (or resume it). Returns the stage's result."""
    sweep_dir = Path(sweep_dir).resolve()
    folder = run_dir(sweep_dir, key)
    started = time.time()
    tracker = open_tracker(sweep_dir, key)
    try:
        ctx = context(sweep_dir, key, tracker)
        fn = import_target(read_json(folder / "config.json")["target"])
        result = dict(fn(ctx) or {})
    except Exception as e:
        write_json(folder / "state.json", {
            "status": "failed", "failure": "error", "error": f"{type(e).__name__}: {e}",
            "traceback": traceback.format_exc(), "host": socket.gethostname(),
            "started": started, "ended": time.time()})
        close_tracker(tracker, "FAILED")
        raise
    write_json(folder / "result.json", result)
    write_json(folder / "state.json", {"status": "done", "host": socket.gethostname(),
                                       "started": started, "ended": time.time()})
    close_tracker(tracker, "FINISHED")
    return result


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m vtp.sweep.worker SWEEP_DIR KEY", file=sys.stderr)
        return 2
    try:
        run_job(args[0], args[1])
    except Exception:
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
