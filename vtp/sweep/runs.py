"""Expanding a validated spec into runs with content-addressed keys.

Every combination of the axes gives one run of each root stage; a stage with `after` gets one run
per run of its parent stage, or one per checkpoint when the parent stage has `fanout`. A run key is
a short sha256 of (stage, target, resolved config, ancestor keys, checkpoint, code version): the
same spec launched twice yields the same keys, so finished work is never redone.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vtp.config import ConfigError
from vtp.sweep.expr import ExprError, has_ref, interpolate
from vtp.sweep.spec import StageSpec, Sweep, resolve_derived

KEY_LENGTH = 16  # hex digits of sha256: 64 bits, collisions negligible at any sweep size


@dataclass(frozen=True)
class Run:
    key: str
    stage: str
    target: str
    config: Mapping[str, Any]
    axes: Mapping[str, Any]
    ancestors: Mapping[str, str] = field(default_factory=dict)  # stage -> key, all upstream runs
    parent: str | None = None  # key of the run this one waits for
    checkpoint: int | None = None
    root: str = ""  # key of the root (tokenizer) ancestor; its own key for a root run
    code_version: str = ""


def canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)


def run_key(stage: str, target: str, config: Mapping[str, Any], ancestors: Mapping[str, str],
            checkpoint: int | None, code_version: str) -> str:
    blob = canonical({"stage": stage, "target": target, "config": config, "parents": ancestors,
                      "checkpoint": checkpoint, "code": code_version})
    return hashlib.sha256(blob.encode()).hexdigest()[:KEY_LENGTH]


def stage_order(sweep: Sweep) -> list[StageSpec]:
    """Stages with every parent before its children (the spec is already cycle-free)."""
    done: list[StageSpec] = []
    names: set[str] = set()
    pending = list(sweep.spec.stages)
    while pending:
        for s in pending:
            if s.after is None or s.after in names:
                done.append(s)
                names.add(s.name)
                pending.remove(s)
                break
    return done


def expand(sweep: Sweep, code_version: str) -> list[Run]:
    """All runs of the sweep, parents before children."""
    spec, where = sweep.spec, sweep.source
    names = list(spec.axes)
    combos = [dict(zip(names, values)) for values in itertools.product(*(spec.axes[n] for n in names))]
    index = {s.name: i for i, s in enumerate(spec.stages)}
    by_stage: dict[str, list[tuple[Run, dict]]] = {}
    runs: list[Run] = []
    for stage in stage_order(sweep):
        i = index[stage.name]
        made: list[tuple[Run, dict]] = []
        if stage.after is None:
            sources = [(None, combo) for combo in combos]
        else:
            sources = [(r, scope_axes) for r, scope_axes in by_stage[stage.after]]
        parent_stage = sweep.stage(stage.after) if stage.after else None
        config_cache: dict[tuple, dict] = {}
        for parent, axes in sources:
            cache_key = tuple(axes.items())
            config = config_cache.get(cache_key)
            if config is None:
                config = config_cache[cache_key] = _resolve_config(sweep, stage, i, axes, where)
            if parent is None:
                checkpoints: list[int | None] = [None]
            elif parent_stage is not None and parent_stage.fanout:
                checkpoints = _checkpoints(parent, parent_stage, index[parent_stage.name], where)
            else:
                checkpoints = [parent.checkpoint]
            for ck in checkpoints:
                ancestors = {**parent.ancestors, parent.stage: parent.key} if parent else {}
                key = run_key(stage.name, stage.target, config, ancestors, ck, code_version)
                run = Run(key=key, stage=stage.name, target=stage.target, config=config, axes=axes,
                          ancestors=ancestors, parent=parent.key if parent else None, checkpoint=ck,
                          root=parent.root if parent else key, code_version=code_version)
                made.append((run, axes))
                runs.append(run)
        by_stage[stage.name] = made
    return runs


def _resolve_config(sweep: Sweep, stage: StageSpec, i: int, axes: Mapping[str, Any], where: str) -> dict:
    scope: dict[str, dict[str, Any]] = {"axes": dict(axes), "fixed": dict(sweep.spec.fixed)}
    resolve_derived(sweep.spec, scope, where)
    out = {}
    for k, v in stage.config.items():
        if not has_ref(v):
            out[k] = v  # shared between runs: configs are never mutated
            continue
        try:
            out[k] = interpolate(v, scope)
        except ExprError as e:
            raise ConfigError(where, f"stages[{i}].config.{k}", str(e)) from None
    return out


def _checkpoints(parent: Run, stage: StageSpec, i: int, where: str) -> list[int | None]:
    values = parent.config.get(stage.fanout)
    ok = isinstance(values, (list, tuple)) and values and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values)
    if not ok:
        raise ConfigError(where, f"stages[{i}].config.{stage.fanout}",
                          f"expected a non-empty list of checkpoint numbers (fanout), got {values!r}")
    if len(set(values)) != len(values):
        raise ConfigError(where, f"stages[{i}].config.{stage.fanout}", f"duplicate checkpoints in {values!r}")
    return list(values)
