"""The job body: one run, in whatever process the executor chose (in-process twin of the remote path).

Loads `runs/<key>/config.json`, imports the stage target (only here, so planning never imports
torch), builds a RunContext, calls it, writes `result.json` and the `state.json` marker. A failure
writes the marker with the traceback and re-raises, so the scheduler sees the job fail too.

Which tracker a run logs to is named in its `config.json` too (`"tracker": "module:function"`,
called as `fn(sweep_dir, key)`; written by the engine when tracking is on), so this package needs
no import of the tracking layer: the arrow points from the engine down, never from here up.

    python -m vtp.jobs.worker SWEEP_DIR KEY
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

from vtp.jobs.context import RunContext
from vtp.jobs.ledger import read_json, run_dir, write_json
from vtp.jobs.tracker import NullTracker, Tracker


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


def run_job(sweep_dir: str | Path, key: str, *, primary: bool = True) -> Mapping[str, Any]:
    """Run one run to completion (or resume it). Returns the stage's result.

    primary=False: one of the other tasks of a job of several (ranks > 0 of a data-parallel run):
    it runs the stage too, but logs nothing to the tracker and writes no result or done marker; a
    failure still writes its failed marker with its traceback.
    """
    sweep_dir = Path(sweep_dir).resolve()
    folder = run_dir(sweep_dir, key)
    started = time.time()
    cfg = read_json(folder / "config.json")
    tracker = open_tracker(sweep_dir, key, (cfg or {}).get("tracker")) if primary else NullTracker()
    try:
        if cfg is None:
            raise FileNotFoundError(f"{folder / 'config.json'} is missing: was the run launched?")
        ctx = context(sweep_dir, key, cfg, tracker)
        fn = import_target(cfg["target"])
        result = dict(fn(ctx) or {})
    except Exception as e:
        write_json(folder / "state.json", {
            "status": "failed", "failure": "error", "error": f"{type(e).__name__}: {e}",
            "traceback": traceback.format_exc(), "host": socket.gethostname(),
            "started": started, "ended": time.time()})
        close_tracker(tracker, "FAILED")
        raise
    if not primary:
        return result
    write_json(folder / "result.json", result)
    write_json(folder / "state.json", {"status": "done", "host": socket.gethostname(),
                                       "started": started, "ended": time.time()})
    close_tracker(tracker, "FINISHED")
    return result


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m vtp.jobs.worker SWEEP_DIR KEY", file=sys.stderr)
        return 2
    try:
        run_job(args[0], args[1])
    except Exception:
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
