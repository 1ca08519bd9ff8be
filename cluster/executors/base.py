"""The executor contract the launcher talks to."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cluster.profile import ExecutorProfile
from vtp.jobs.states import JobState


@dataclass(frozen=True)
class Submission:
    """One run to start once its parent (if any) has finished well."""

    key: str
    stage: str
    profile: ExecutorProfile  # the stage's resources applied
    parent: str | None = None  # parent run key; None for a root run or a parent already done
    parent_job: str | None = None  # the parent's job id when it is still queued or running


class Executor(Protocol):
    def submit(self, sweep_dir: Path, runs: Sequence[Submission],
               on_submitted: Callable[[Mapping[str, str]], None],
               on_intent: Callable[[str, Sequence[str]], None] | None = None) -> dict[str, str]:
        """Queue `runs` (parents before children); report job ids through `on_submitted` as
        they are known, so the ledger can be written progressively. Returns key -> job id.

        Before each submission an executor that can lose a reply (SLURM) calls `on_intent(token,
        keys)`, and names what it queues by the token, so that `find` can tell later whether it
        was queued (the launcher records the intent in the ledger before the job can exist)."""
        ...

    def find(self, sweep_dir: Path, intents: Mapping[str, Mapping]) -> dict[str, str]:
        """key -> job id of the runs queued under intents a killed launcher left behind (token ->
        {"keys": [...], "at": time}); runs not returned were never queued and may be submitted."""
        ...

    def states(self, sweep_dir: Path, jobs: Mapping[str, str]) -> dict[str, JobState]:
        """key -> state for the given key -> job id; keys it knows nothing about are left out."""
        ...

    def cancel(self, sweep_dir: Path, jobs: Mapping[str, str]) -> None: ...
