"""A trainable for tests: the real tokenizer trainable, except that a trial whose sampled params hold
`fail: true` raises before training (a failing trial must not fail the search)."""

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from vtp.tune.trainables import tokenizer


def failing(params: Mapping[str, Any], *, base: Mapping[str, Any], trial_dir: Path,
            report: Callable[[dict[str, float]], None]) -> None:
    if params.get("fail"):
        raise RuntimeError(f"trial {trial_dir.name}: asked to fail")
    tokenizer({k: v for k, v in params.items() if k != "fail"}, base=base, trial_dir=trial_dir, report=report)
