"""Progress inside a run, for the live table: a run writes `<run_dir>/progress.json` as it goes
(done, total, unit, rate), and `vtp-sweep launch --wait` / `status --watch` draw a bar per running
run from it. One small file a run owns, replaced atomically: no locks, works on any shared disk."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vtp.jobs.ledger import read_json, write_json

FILE = "progress.json"


def write_progress(run_dir: str | Path, done: int, total: int, unit: str = "steps") -> None:
    write_json(Path(run_dir) / FILE, {"done": int(done), "total": int(total), "unit": unit, "time": time.time()})


def read_progress(run_dir: str | Path) -> Mapping[str, Any] | None:
    got = read_json(Path(run_dir) / FILE)
    return got if isinstance(got, Mapping) and {"done", "total"} <= set(got) else None


def bar(done: int, total: int, width: int = 20) -> str:
    """`[#########-----------]  45/100` (clamped, so a resumed run never overflows its bar)."""
    frac = min(1.0, max(0.0, done / total)) if total > 0 else 0.0
    filled = round(frac * width)
    return f"[{'#' * filled}{'-' * (width - filled)}] {done:>{len(str(total))}}/{total}"
