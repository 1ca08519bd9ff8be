"""A small real stage for smoke-testing the engine and a cluster: resumable and deterministic.

It iterates x <- (x * 6364136223846793005 + 1442695040888963407 + step) mod 2**64 for `steps`
steps (an LCG: cheap, exact, and any missed or repeated step changes the answer), saving its state
to the run folder every `save_every` steps. A requeued or preempted job resumes from the saved
state, so "requeued == uninterrupted" is an exact check. Runs fanned out per checkpoint start from
the parent's value at that checkpoint. Writes `checkpoints/<k>.json` like the tokenizer stage so
downstream fan-out works the same way.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vtp.config import from_dict
from vtp.jobs.context import RunContext

MOD = 2**64


@dataclass(frozen=True)
class SmokeConfig:
    steps: int = 20
    seed: int = 0
    save_every: int = 5
    sleep_s: float = 0.0  # per step, to make runs long enough to requeue or cancel
    fail: bool = False  # raise at the end, to test failure handling
    checkpoints: tuple[int, ...] = ()  # numerators over checkpoint_denominator
    checkpoint_denominator: int = 40
    label: str = ""  # free text: lets a sweep put axis values into the config

    def validate(self) -> None:
        if self.steps < 1 or self.save_every < 1 or self.sleep_s < 0:
            raise ValueError("steps and save_every must be >= 1 and sleep_s >= 0")
        if any(not 0 < k <= self.checkpoint_denominator for k in self.checkpoints):
            raise ValueError(f"checkpoints must lie in (0, {self.checkpoint_denominator}]")


def step(x: int, i: int) -> int:
    return (x * 6364136223846793005 + 1442695040888963407 + i) % MOD


def expected(seed: int, steps: int, start: int | None = None) -> int:
    """The uninterrupted answer (for tests)."""
    x = start if start is not None else seed
    for i in range(steps):
        x = step(x, i)
    return x


def _start_value(ctx: RunContext, cfg: SmokeConfig) -> int:
    if ctx.checkpoint is None or not ctx.parents:
        return cfg.seed
    parent = list(ctx.parents.values())[-1]  # the nearest ancestor (parents are in stage order)
    ck = Path(parent) / "checkpoints" / f"{ctx.checkpoint}.json"
    data = json.loads((ck if ck.exists() else Path(parent) / "result.json").read_text())
    if "value" in data:
        return int(data["value"])
    # A real stage's checkpoint (e.g. the tokenizer's {k, step, flops, ...}): start from its digest,
    # so the smoke stage can stand in for any downstream stage.
    return int(hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16], 16)


def run(ctx: RunContext) -> Mapping[str, Any]:
    cfg = from_dict(SmokeConfig, dict(ctx.config), where=f"run {ctx.key} config")
    state_path = ctx.run_dir / "smoke_state.json"
    if state_path.exists():  # resume after requeue/preemption
        saved = json.loads(state_path.read_text())
        i, x, resumes = saved["step"], saved["x"], saved["resumes"] + 1
    else:
        i, x, resumes = 0, _start_value(ctx, cfg), 0
    marks = {round(k * cfg.steps / cfg.checkpoint_denominator): k for k in cfg.checkpoints}
    (ctx.run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    while i < cfg.steps:
        x = step(x, i)
        i += 1
        if cfg.sleep_s:
            time.sleep(cfg.sleep_s)
        if i in marks:
            _write(ctx.run_dir / "checkpoints" / f"{marks[i]}.json", {"k": marks[i], "step": i, "value": x})
        if i % cfg.save_every == 0 or i == cfg.steps:
            _write(state_path, {"step": i, "x": x, "resumes": resumes})
            ctx.tracker.log_metrics({"x_frac": x / MOD}, step=i)
    if cfg.fail:
        raise RuntimeError(f"smoke stage asked to fail (key {ctx.key})")
    return {"value": x, "steps": cfg.steps, "resumes": resumes}


def _write(path: Path, data: Mapping[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)
