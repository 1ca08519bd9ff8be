"""What a run may log: the `Tracker` protocol, and a tracker that logs nothing.

The one piece of the job contract that the science sees (training loops log through it), so it
imports nothing. The MLflow implementation lives in `vtp.tracking` (`RunTracker`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol


class Tracker(Protocol):
    """What a stage may log. The MLflow implementation lives in `vtp.tracking`."""

    def log_params(self, params: Mapping[str, Any]) -> None: ...

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None: ...

    def log_artifact(self, path: str | Path) -> None: ...

    def set_tags(self, tags: Mapping[str, str]) -> None: ...


class NullTracker:
    """Logs nothing. For in-process use from a notebook or a unit test."""

    def log_params(self, params: Mapping[str, Any]) -> None:
        pass

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        pass

    def log_artifact(self, path: str | Path) -> None:
        pass

    def set_tags(self, tags: Mapping[str, str]) -> None:
        pass
