"""Expanding a validated spec into runs with content-addressed keys.

Every combination of the axes gives one run of each root stage; a stage with `after` gets one run
per run of its parent stage, or one per checkpoint when the parent stage has `fanout`. A run key is
a short sha256 of (stage, target, resolved config, ancestor keys, checkpoint, code version): the
same spec launched twice yields the same keys, so finished work is never redone.

A tune stage (vtp.tune.spec) gets one run per value of its `per` axes. A run whose config uses
`${<tune>.best.<key>}` takes the values from that search's `best.json` (matched on the `per` axes),
so they enter its key: a new tuning result makes new runs, the same result finds the old ones.
Until the search is done such a run (and its descendants) is provisional: `waits_for` names the
tune run, the key is computed from placeholders, and the launcher does not submit it.

One key is one run: grid points that resolve to the same key (an axis no stage config uses, a
`grids:` entry that repeats a point) collapse into the first of them, so they make one job and one
MLflow run, and its children are expanded once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vtp.config import ConfigError, to_dict
from vtp.jobs.ledger import read_json, read_state, run_dir
from vtp.stages.configs import DataCheck, check_config
from vtp.sweep.expr import REF, ExprError, has_ref, interpolate
from vtp.sweep.spec import (
    StageSpec,
    Sweep,
    axis_combos,
    best_section,
    resolve_derived,
    search_scope,
    stage_when,
    tune_stages,
)

PENDING = "<pending tune result>"  # stands in for a best value before the search has ended

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
    waits_for: str | None = None  # a tune run whose best.json this run's config needs (key provisional)


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


def tune_result(sweep_dir: Path, key: str) -> Mapping[str, Any] | None:
    """The best values of a finished tune run (`best.json` "config"), or None while it is not done."""
    marker = read_state(sweep_dir, key)
    if not marker or marker.get("status") != "done":
        return None
    best = read_json(run_dir(sweep_dir, key) / "best.json")
    return best.get("config") if isinstance(best, Mapping) else None


def expand(sweep: Sweep, code_version: str,
           best: Callable[[str], Mapping[str, Any] | None] | None = None, *, check_data: bool = True) -> list[Run]:
    """All runs of the sweep, parents before children (tune stages first). `best(tune_key)` gives a
    finished search's best values (default: `tune_result` in the sweep folder). `check_data`: also
    list each stage's dataset (vtp.data.source.DataCheck); off only to preview a spec away from its data."""
    spec, where = sweep.spec, sweep.source
    best = best or (lambda key: tune_result(sweep.folder, key))
    combos = axis_combos(spec)
    index = {s.name: i for i, s in enumerate(spec.stages)}
    by_stage: dict[str, list[tuple[Run, dict]]] = {}
    runs: list[Run] = []
    seen: dict[str, Run] = {}
    searches = tune_stages(spec)
    order = stage_order(sweep)
    data = DataCheck() if check_data else None
    for stage in [s for s in order if s.tune is not None] + [s for s in order if s.tune is None]:
        i = index[stage.name]
        made: list[tuple[Run, dict]] = []
        if stage.tune is not None:  # one search per value of its `per` axes
            per = {tuple(c[a] for a in stage.tune.per): {a: c[a] for a in stage.tune.per} for c in combos}
            sources = [(None, axes) for axes in per.values()]
        elif stage.after is None:
            sources = [(None, combo) for combo in combos]
        else:
            sources = [(r, scope_axes) for r, scope_axes in by_stage[stage.after]]
        parent_stage = sweep.stage(stage.after) if stage.after else None
        config_cache: dict[tuple, tuple[dict, str | None]] = {}
        for parent, axes in sources:
            cache_key = tuple(axes.items())
            if cache_key not in config_cache:
                config_cache[cache_key] = _stage_config(sweep, stage, i, axes, searches, by_stage, best)
                resolved, pending = config_cache[cache_key]
                if stage.tune is None and pending is None:  # a job would fail on it: stop before submitting
                    check_config(stage.target, resolved, where=where, key=f"stages[{i}].config", data=data)
            config, waits_for = config_cache[cache_key]
            waits_for = waits_for or (parent.waits_for if parent else None)
            if parent is None:
                checkpoints: list[int | None] = [None]
            elif parent_stage is not None and parent_stage.fanout:
                checkpoints = _checkpoints(parent, parent_stage, index[parent_stage.name], where)
            else:
                checkpoints = [parent.checkpoint]
            when_scope = _when_scope(sweep, axes) if stage.when is not None else None
            for ck in checkpoints:
                if when_scope is not None and not stage_when(stage, {**when_scope, "run": {"checkpoint": ck}}, where, i):
                    continue
                ancestors = {**parent.ancestors, parent.stage: parent.key} if parent else {}
                key = run_key(stage.name, stage.target, config, ancestors, ck, code_version)
                if key in seen and waits_for is None:
                    # the same run from another grid point: one run, still reachable from this
                    # point's axes (a tune stage's `per` lookup and the children's scope use them).
                    # A provisional key (waiting for a search) is a placeholder: not merged.
                    made.append((seen[key], axes))
                    continue
                run = Run(key=key, stage=stage.name, target=stage.target, config=config, axes=axes,
                          ancestors=ancestors, parent=parent.key if parent else None, checkpoint=ck,
                          root=parent.root if parent else key, code_version=code_version, waits_for=waits_for)
                seen.setdefault(key, run)
                made.append((run, axes))
                runs.append(run)
        by_stage[stage.name] = made
    return runs


def _stage_config(sweep: Sweep, stage: StageSpec, i: int, axes: Mapping[str, Any],
                  searches: Mapping[str, StageSpec], by_stage: Mapping[str, list[tuple[Run, dict]]],
                  best: Callable[[str], Mapping[str, Any] | None]) -> tuple[dict, str | None]:
    """(resolved config, the tune run it still waits for or None)."""
    if stage.tune is not None:  # the trial's base config and the search settings, both in the key
        scope = search_scope(sweep.spec, stage, axes)
        return {"trial": _resolve_config(sweep, stage, i, scope), "tune": to_dict(stage.tune)}, None
    scope: dict[str, dict[str, Any]] = {"axes": dict(axes), "fixed": dict(sweep.spec.fixed)}
    resolve_derived(sweep.spec, scope, sweep.source)
    waits_for = None
    for name in _referenced(stage.config) & set(searches):
        per = searches[name].tune.per  # type: ignore[union-attr]
        run = next(r for r, a in by_stage[name] if all(a[x] == axes[x] for x in per))
        values = best(run.key)
        if values is None:
            waits_for = waits_for or run.key
            values = {k: PENDING for k in searches[name].tune.space}  # type: ignore[union-attr]
        scope[name] = best_section(values)
    return _resolve_config(sweep, stage, i, scope), waits_for


def _when_scope(sweep: Sweep, axes: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """A `when:` condition's scope for one grid point, without `run` (added per checkpoint)."""
    scope: dict[str, dict[str, Any]] = {"axes": dict(axes), "fixed": dict(sweep.spec.fixed)}
    resolve_derived(sweep.spec, scope, sweep.source)
    return scope


def _referenced(value: Any) -> set[str]:
    """Scope sections named by the `${section.name}` references in plain data."""
    if isinstance(value, str):
        return {m.group(1).strip().partition(".")[0] for m in REF.finditer(value)}
    if isinstance(value, Mapping):
        return set().union(*(_referenced(v) for v in value.values())) if value else set()
    if isinstance(value, (list, tuple)):
        return set().union(*(_referenced(v) for v in value)) if value else set()
    return set()


def _resolve_config(sweep: Sweep, stage: StageSpec, i: int, scope: dict[str, dict[str, Any]]) -> dict:
    where = sweep.source
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
