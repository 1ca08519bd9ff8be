"""The job contract: what a job is, below everything that launches, runs or tracks one.

A run's folder and the sweep's ledger (`ledger`), a job's state as the scheduler and the worker's
marker tell it (`states`), the worker entry point that runs one run (`worker`), its progress file
(`progress`), the context a stage receives (`context`) and the `Tracker` protocol (`tracker`).
Plain Python; imports nothing of the project but `vtp.config`, so the engine, the executors, the
stages and the training loops all point down here and never at each other's upper floors.
"""

from vtp.jobs.context import RunContext
from vtp.jobs.states import JobState, RunState
from vtp.jobs.tracker import NullTracker, Tracker

# Not re-exported here: vtp.jobs.worker (import_target, run_job). Every job starts as
# `python -m vtp.jobs.worker`; importing it from the package first made runpy warn in every
# worker log that the module was already in sys.modules, and run its top level twice.
__all__ = ["JobState", "NullTracker", "RunContext", "RunState", "Tracker"]
