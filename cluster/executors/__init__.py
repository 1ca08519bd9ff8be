"""Executors: where runs go. `make_executor(profile)` picks one by the profile's `kind`."""

from __future__ import annotations

from cluster.executors.base import Executor, Submission
from cluster.profile import ExecutorProfile


def make_executor(profile: ExecutorProfile) -> Executor:
    if profile.kind == "debug":
        from cluster.executors.debug import DebugExecutor

        return DebugExecutor()
    if profile.kind == "local":
        from cluster.executors.local import LocalExecutor

        return LocalExecutor(profile)
    from cluster.executors.slurm import SlurmExecutor

    return SlurmExecutor(profile)


__all__ = ["Executor", "Submission", "make_executor"]
