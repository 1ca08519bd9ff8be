"""The sweep engine: a YAML grid to chained runs on SLURM or this machine. No torch here.

Public API (the CLI `vtp-sweep` is a thin face over these). Names resolve lazily so that
`cluster.executors` and the engine can import each other's modules without a cycle at start-up.
"""

from __future__ import annotations

import importlib
from typing import Any

_API = {
    "load_sweep": "spec", "Sweep": "spec", "SweepSpec": "spec",
    "Run": "runs", "expand": "runs", "run_key": "runs",
    "PlannedRun": "planner", "plan": "planner", "format_table": "planner",
    "LaunchReport": "launcher", "SweepStatus": "launcher", "launch": "launcher", "status": "launcher",
    "cancel": "launcher", "wait": "launcher",
    "run_job": "worker",
}
__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(f"vtp.sweep.{_API[name]}"), name)
    raise AttributeError(f"module 'vtp.sweep' has no attribute {name!r}")
