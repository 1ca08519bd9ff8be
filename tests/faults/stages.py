"""Stage targets the fault tests need and the built-in stages do not offer (imported by the
workers from the repository root on PYTHONPATH)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from vtp.jobs.context import RunContext


def relog(ctx: RunContext) -> Mapping[str, Any]:
    """Logs a point every step but saves its state every 5 steps, as a training loop does: a run
    killed between two saves logs the steps since the last save again when it resumes."""
    steps, sleep_s = int(ctx.config["steps"]), float(ctx.config.get("sleep_s", 0.0))
    state = ctx.run_dir / "relog_state.json"
    i = json.loads(state.read_text())["step"] if state.exists() else 0
    while i < steps:
        i += 1
        time.sleep(sleep_s)
        ctx.tracker.log_metrics({"v": float(i)}, step=i)
        if i % int(ctx.config.get("save_every", 5)) == 0:  # atomically: a kill may land anywhere
            tmp = state.with_suffix(".tmp")
            tmp.write_text(json.dumps({"step": i}))
            tmp.replace(state)
    return {"steps": i}


def hog(ctx: RunContext) -> Mapping[str, Any]:
    """Touches `mb` MiB of memory, a page at a time (the OOM killer's target)."""
    chunks = [bytearray(1 << 20) for _ in range(int(ctx.config["mb"]))]
    return {"mb": len(chunks)}
