"""The contract between the sweep engine and the science: what a stage function receives.

A stage is a plain function `run(ctx: RunContext) -> Mapping[str, Any]` named in the sweep spec
by its dotted path (e.g. `vtp.stages.tokenizer:run`). The worker imports it only inside the job,
so planning never imports torch. The returned mapping is the run's result, written to
`<run_dir>/result.json` by the worker; a raised exception marks the run failed.

A stage must be resumable: when its job is preempted or requeued it is called again with the same
`run_dir`, and it continues from the last checkpoint it wrote there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vtp.jobs.progress import write_progress
from vtp.jobs.tracker import NullTracker, Tracker


@dataclass(frozen=True)
class RunContext:
    """Everything one run of one stage needs.

    key:      the run's content-addressed key (stable across relaunches and requeues)
    stage:    the stage name in the spec (`tokenizer`, `extract`, `dit`, `eval`, ...)
    config:   the run's resolved config (plain data; the stage validates it into its dataclass)
    run_dir:  a folder owned by this run; checkpoints and outputs go here
    parents:  stage name -> run_dir of the run this one depends on
    checkpoint: for runs fanned out per tokenizer checkpoint, which one (e.g. 7 of /40); else None
    tracker:  where metrics go
    """

    key: str
    stage: str
    config: Mapping[str, Any]
    run_dir: Path
    parents: Mapping[str, Path] = field(default_factory=dict)
    checkpoint: int | None = None
    tracker: Tracker = field(default_factory=NullTracker)

    def progress(self, done: int, total: int, unit: str = "steps") -> None:
        """Tell the live table how far this run is (`vtp-sweep launch --wait` draws a bar)."""
        write_progress(self.run_dir, done, total, unit)
