"""The sweep engine: a YAML grid to chained runs on SLURM or this machine. No torch here.

Public API (keyword-only where it matters; the CLI `vtp-sweep` is a thin face over these):
"""

from vtp.sweep.launch import LaunchReport, SweepStatus, cancel, launch, status, wait
from vtp.sweep.plan import PlannedRun, format_table, plan
from vtp.sweep.runs import Run, expand, run_key
from vtp.sweep.spec import Sweep, SweepSpec, load_sweep
from vtp.sweep.worker import run_job

__all__ = ["LaunchReport", "PlannedRun", "Run", "Sweep", "SweepSpec", "SweepStatus", "cancel", "expand",
           "format_table", "launch", "load_sweep", "plan", "run_job", "run_key", "status", "wait"]
