"""The sweep engine: a YAML grid to chained runs on SLURM or this machine. No torch here.

Public API (the CLI `vtp-sweep` is a thin face over these). The engine sits above `cluster/`
(executors) and `vtp.jobs` (the job contract); nothing below imports it.
"""

from vtp.sweep.launcher import LaunchReport, cancel, launch, launch_until_done, wait
from vtp.sweep.planner import PlannedRun, format_table, plan
from vtp.sweep.runs import Run, expand, run_key
from vtp.sweep.spec import Sweep, SweepSpec, load_sweep
from vtp.sweep.status import SweepStatus, status

__all__ = ["LaunchReport", "PlannedRun", "Run", "Sweep", "SweepSpec", "SweepStatus", "cancel", "expand",
           "format_table", "launch", "launch_until_done", "load_sweep", "plan", "run_key", "status", "wait"]
