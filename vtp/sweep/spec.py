"""The sweep spec: typed frozen dataclasses loaded from YAML and validated before anything runs.

    name: tiny                         # the sweep folder is <root>/<name>/
    axes: {params: [S, B], objective: [ae, vtp]}   # the grid (cartesian product)
    grids: [{params: [S]}, {data: [1e5, 1e6]}]     # optional: a union of sub-grids instead (below)
    fixed: {seed: 0}
    derived: {steps: "${fixed.base} * 2"}          # safe arithmetic, see expr.py
    executor: local                    # or {profile: slurm, options: {partition: gpu}}
    tracking: {uri: null}              # null: SQLite store in the sweep folder
    stages:
      - {name: tokenizer, target: pkg.mod:fn, config: {...}, fanout: checkpoints, flops: pkg.mod:fn}
      - {name: extract, target: pkg.mod:fn, after: tokenizer, config: {...}}

`grids` (optional), as in scikit-learn's ParameterGrid given a list: each entry overrides some axes'
lists, and the sweep is the union of the products, each distinct axis combination once. Three
one-axis studies that share a centre point cost the sum of their sizes, not the product.

A stage with a `tune:` section (vtp.tune.spec.TuneSpec) is a hyper-parameter search: one run per
value of its `tune.per` axes, writing `best.json`; other stages use `${<its name>.best.<key>}`.

Every error names the file, the dotted key path and what was expected (vtp.config.ConfigError).
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cluster.profile import RESOURCE_FIELDS, ExecutorProfile, gpus_per_node, load_profile, with_options
from vtp.config import ConfigError, from_dict, load_yaml, parse_yaml
from vtp.sweep.expr import ExprError, evaluate, interpolate
from vtp.tune.spec import TuneSpec

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
COMMAND_LINE = "command line"


@dataclass(frozen=True)
class StageSpec:
    name: str
    target: str  # "package.module:function", imported only inside the job
    after: str | None = None  # the stage this one depends on (one run per parent run)
    config: Mapping[str, Any] = field(default_factory=dict)
    fanout: str | None = None  # config key listing checkpoints: downstream runs per checkpoint
    flops: str | None = None  # "package.module:function" f(config) -> float, torch-free
    resources: Mapping[str, Any] = field(default_factory=dict)
    tune: TuneSpec | None = None  # a search stage: its runs write best.json (see vtp.tune.spec)
    # A condition (expr.py) over ${axes.*}, ${fixed.*}, ${derived.*} and ${run.checkpoint}: the stage
    # gets a run for a parent run (and checkpoint) only where it holds, e.g. probe every checkpoint of
    # the centre configuration but only the last one elsewhere. Skipped runs have no descendants.
    when: str | None = None

    def validate(self) -> None:
        if not NAME.match(self.name):
            raise ValueError(f"stage name {self.name!r} must match {NAME.pattern}")
        for what in ("target", "flops"):
            value = getattr(self, what)
            if value is not None and not TARGET.match(value):
                raise ValueError(f"{what} {value!r} must be a dotted path 'package.module:function'")


@dataclass(frozen=True)
class ExecutorSpec:
    profile: str = "local"
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrackingSpec:
    uri: str | None = None  # None: sqlite:///<sweep folder>/mlflow.db
    experiment: str | None = None  # None: the sweep name
    enabled: bool = True


@dataclass(frozen=True)
class SweepSpec:
    name: str
    stages: tuple[StageSpec, ...]
    axes: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    grids: tuple[Mapping[str, tuple[Any, ...]], ...] = ()  # union of sub-grids; empty: the product of axes
    fixed: Mapping[str, Any] = field(default_factory=dict)
    derived: Mapping[str, Any] = field(default_factory=dict)
    executor: ExecutorSpec = field(default_factory=ExecutorSpec)
    tracking: TrackingSpec = field(default_factory=TrackingSpec)
    root: str = "out"


@dataclass(frozen=True)
class Sweep:
    """A validated spec with its executor profile resolved (per stage, resources applied)."""

    spec: SweepSpec
    source: str
    profile: ExecutorProfile
    stage_profiles: Mapping[str, ExecutorProfile]

    @property
    def folder(self) -> Path:
        return Path(self.spec.root) / self.spec.name

    def stage(self, name: str) -> StageSpec:
        return next(s for s in self.spec.stages if s.name == name)


# ---------------------------------------------------------------- command-line overrides
def parse_override(text: str) -> tuple[str, Any]:
    """`key.path=value`; the value is read as a YAML scalar or flow list/mapping."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or not all(NAME.match(p) or p.isdigit() for p in key.split(".")):
        raise ConfigError(COMMAND_LINE, key or text, f"expected key.path=value, got {text!r}")
    try:
        value = parse_yaml(raw) if raw.strip() else ""
    except yaml.YAMLError as e:
        raise ConfigError(COMMAND_LINE, key, f"cannot read value {raw!r} as YAML: {e}") from None
    return key, value


def apply_overrides(data: Any, overrides: Sequence[str]) -> tuple[dict, list[str]]:
    """Apply `key=value` overrides to the raw spec; `stages.NAME.x` addresses a stage by name."""
    data = _copy(data if isinstance(data, Mapping) else {})
    keys = []
    for text in overrides:
        key, value = parse_override(text)
        keys.append(key)
        parts = key.split(".")
        node: Any = data
        for i, part in enumerate(parts[:-1]):
            node = _child(node, part, ".".join(parts[: i + 1]), create=True)
        last = parts[-1]
        if isinstance(node, list):
            node[_stage_index(node, last, key)] = value
        elif isinstance(node, dict):
            if last == "executor" and node is data and isinstance(value, str) and isinstance(node.get(last), dict):
                node[last] = {**node[last], "profile": value}  # keep the spec's options
            else:
                node[last] = value
        else:
            raise ConfigError(COMMAND_LINE, key, f"cannot set a key inside {node!r}")
    return data, keys


def _copy(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {k: _copy(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_copy(x) for x in v]
    return v


def _stage_index(items: list, part: str, key: str) -> int:
    if part.isdigit() and int(part) < len(items):
        return int(part)
    for i, item in enumerate(items):
        if isinstance(item, Mapping) and item.get("name") == part:
            return i
    names = [str(x.get("name")) for x in items if isinstance(x, Mapping)]
    raise ConfigError(COMMAND_LINE, key, f"no item {part!r}; have: {', '.join(names)}")


def _child(node: Any, part: str, key: str, *, create: bool) -> Any:
    if isinstance(node, list):
        return node[_stage_index(node, part, key)]
    if not isinstance(node, dict):
        raise ConfigError(COMMAND_LINE, key, f"cannot descend into {node!r}")
    if not isinstance(node.get(part), (dict, list)):
        if node.get(part) is not None and not create:
            raise ConfigError(COMMAND_LINE, key, "not a mapping")
        if isinstance(node.get(part), str) and part == "executor":
            node[part] = {"profile": node[part]}
        else:
            node[part] = {}
    return node[part]


# ---------------------------------------------------------------- load + validate
def load_sweep(path: str | Path, overrides: Sequence[str] = ()) -> Sweep:
    """Read, override, type-check and validate a spec. Creates nothing on disk."""
    where = str(path)
    raw = load_yaml(path)
    if not isinstance(raw, Mapping):
        raise ConfigError(where, "", f"expected a mapping at the top of the spec, got {raw!r}")
    data, keys = apply_overrides(raw, overrides)
    try:
        return _validated(data, where)
    except ConfigError as e:
        hit = next((k for k in keys if e.key == k or e.key.startswith(k + ".") or e.key.startswith(k + "[")
                    or k.startswith(e.key + ".")), None)
        if hit is not None and e.where == where:
            raise ConfigError(COMMAND_LINE, e.key, str(e).split(": ", 2)[-1] + f" (from override {hit}=...)") from None
        raise


def _validated(data: Mapping[str, Any], where: str) -> Sweep:
    if isinstance(data.get("executor"), str):
        data = {**data, "executor": {"profile": data["executor"]}}
    _precheck_tune(data, where)
    spec = from_dict(SweepSpec, data, where=where)
    if not NAME.match(spec.name):
        raise ConfigError(where, "name", f"expected a name matching {NAME.pattern}, got {spec.name!r}")
    _check_axes(spec, where)
    _check_stages(spec, where)
    profile = load_profile(spec.executor.profile, spec.executor.options, where=where, key="executor")
    stage_profiles = {}
    for i, s in enumerate(spec.stages):
        stage_profile = with_options(profile, s.resources, where=where, key=f"stages[{i}].resources",
                                     allowed=RESOURCE_FIELDS)
        stage_profiles[s.name] = with_tasks(stage_profile, s, i, where)
    _check_references(spec, where)
    return Sweep(spec=spec, source=where, profile=profile, stage_profiles=stage_profiles)


def with_tasks(profile: ExecutorProfile, stage: StageSpec, i: int, where: str) -> ExecutorProfile:
    """The stage's tasks per node resolved (vtp.stages.configs.LAUNCH): one per GPU of `gres` for a
    data-parallel stage, one for the others; a stage that is not distributed on several nodes is an error."""
    from vtp.stages.configs import LAUNCH

    kind = LAUNCH.get(stage.target)
    for name, value in (("nodes", profile.nodes), ("tasks_per_node", profile.tasks_per_node)):
        if kind in ("single", "ray") and value > 1 and not (kind == "ray" and name == "nodes"):
            key = f"stages[{i}].resources.{name}" if name in stage.resources else f"executor.options.{name}"
            raise ConfigError(where, key, f"stage {stage.name!r} ({stage.target}) runs as one process, not as a "
                              f"distributed job: {name} must be 1, got {value} (set stages[{i}].resources.{name}: 1)")
    if profile.tasks_per_node:
        return profile
    tasks = max(1, gpus_per_node(profile.gres)) if kind == "ddp" else 1
    return dataclasses.replace(profile, tasks_per_node=tasks)


def axis_combos(spec: SweepSpec) -> list[dict[str, Any]]:
    """Every axis combination of the sweep, in spec order: the product of `axes`, or with `grids`
    the union of each sub-grid's product (axes it does not name keep their lists), without repeats."""
    names = list(spec.axes)
    out: list[dict[str, Any]] = []
    seen: set[tuple] = set()
    for grid in spec.grids or ({},):
        lists = [grid.get(n, spec.axes[n]) for n in names]
        for values in itertools.product(*lists):
            if values not in seen:
                seen.add(values)
                out.append(dict(zip(names, values)))
    return out


def _check_values(values: Sequence[Any], key: str, where: str) -> None:
    if not values:
        raise ConfigError(where, key, "expected a non-empty list of values")
    seen = set()
    for i, v in enumerate(values):
        if not isinstance(v, (str, int, float, bool)):
            raise ConfigError(where, f"{key}[{i}]", f"expected a scalar (string or number), got {v!r}")
        if v in seen:
            raise ConfigError(where, f"{key}[{i}]", f"duplicate value {v!r}")
        seen.add(v)


def _check_axes(spec: SweepSpec, where: str) -> None:
    for name, values in spec.axes.items():
        key = f"axes.{name}"
        if not NAME.match(str(name)):
            raise ConfigError(where, key, f"axis names must match {NAME.pattern}")
        _check_values(values, key, where)
    for i, grid in enumerate(spec.grids):
        if not grid:
            raise ConfigError(where, f"grids[{i}]", "expected a mapping of axis name -> list of values")
        for name, values in grid.items():
            if name not in spec.axes:
                raise ConfigError(where, f"grids[{i}].{name}",
                                  f"unknown axis {name!r}; axes: {', '.join(spec.axes) or '(none)'}")
            _check_values(values, f"grids[{i}].{name}", where)
    for section in ("fixed", "derived"):
        for name in getattr(spec, section):
            if not NAME.match(str(name)):
                raise ConfigError(where, f"{section}.{name}", f"names must match {NAME.pattern}")
    clash = set(spec.fixed) & set(spec.derived)
    if clash:
        raise ConfigError(where, f"derived.{sorted(clash)[0]}", "already defined in fixed")


def _check_stages(spec: SweepSpec, where: str) -> None:
    if not spec.stages:
        raise ConfigError(where, "stages", "expected at least one stage")
    index: dict[str, int] = {}
    for i, s in enumerate(spec.stages):
        if s.name in index:
            raise ConfigError(where, f"stages[{i}].name", f"duplicate stage name {s.name!r} (also stages[{index[s.name]}])")
        index[s.name] = i
    for i, s in enumerate(spec.stages):
        if s.after is not None and s.after not in index:
            raise ConfigError(where, f"stages[{i}].after", f"unknown stage {s.after!r}; stages: {', '.join(index)}")
        if s.tune is not None:
            _check_tune_stage(spec, i, s, s.tune, where)
        elif s.after is not None and spec.stages[index[s.after]].tune is not None:
            raise ConfigError(where, f"stages[{i}].after", f"{s.after!r} is a tune stage: refer to its result "
                              f"with ${{{s.after}.best.NAME}} in the config instead of `after`")
        if s.fanout is not None and s.fanout not in s.config:
            raise ConfigError(where, f"stages[{i}].fanout",
                              f"expected a key of this stage's config listing checkpoints, got {s.fanout!r}")
    for i, s in enumerate(spec.stages):  # follow `after` links; a chain longer than the stage count loops
        seen, cur = [s.name], s
        while cur.after is not None:
            cur = spec.stages[index[cur.after]]
            if cur.name in seen:
                raise ConfigError(where, f"stages[{i}].after", "cycle between stages: " + " -> ".join(seen + [cur.name]))
            seen.append(cur.name)


RESERVED_SECTIONS = ("axes", "fixed", "derived")


def _precheck_tune(data: Mapping[str, Any], where: str) -> None:
    """Type-check each `tune:` section on its own first: inside `TuneSpec | None` vtp.config reports
    only "expected TuneSpec or NoneType", not which key inside it is wrong."""
    stages = data.get("stages")
    for i, s in enumerate(stages if isinstance(stages, list) else []):
        if isinstance(s, Mapping) and isinstance(s.get("tune"), Mapping):
            from_dict(TuneSpec, s["tune"], where=where, key=f"stages[{i}].tune")


def _check_tune_stage(spec: SweepSpec, i: int, s: StageSpec, tune: TuneSpec, where: str) -> None:
    if s.name in RESERVED_SECTIONS:
        raise ConfigError(where, f"stages[{i}].name", f"a tune stage cannot be named {s.name!r} "
                          f"(references ${{{s.name}.best.NAME}} would clash)")
    for what in ("after", "fanout"):
        if getattr(s, what) is not None:
            raise ConfigError(where, f"stages[{i}].{what}", "a tune stage runs first, on its own: no after/fanout")
    for j, axis in enumerate(tune.per):
        if axis not in spec.axes:
            raise ConfigError(where, f"stages[{i}].tune.per[{j}]",
                              f"unknown axis {axis!r}; axes: {', '.join(spec.axes) or '(none)'}")


def tune_stages(spec: SweepSpec) -> dict[str, StageSpec]:
    return {s.name: s for s in spec.stages if s.tune is not None}


def best_section(values: Mapping[str, Any]) -> dict[str, Any]:
    """The scope section `${<tune stage>.best.<key>}` references resolve in."""
    return {f"best.{k}": v for k, v in values.items()}


def _placeholder(dist: Any) -> Any:
    """A value of the right type for checking references at load (the real one comes from best.json)."""
    if isinstance(dist, Mapping):
        return next(iter(dist.values()))[0]
    return dist


def first_scope(spec: SweepSpec) -> dict[str, dict[str, Any]]:
    return {"axes": {k: v[0] for k, v in spec.axes.items()}, "fixed": dict(spec.fixed)}


def resolve_derived(spec: SweepSpec, scope: dict[str, dict[str, Any]], where: str) -> dict[str, Any]:
    """Derived values in order; each may use axes, fixed and the derived values above it."""
    scope["derived"] = {}
    for name, expr in spec.derived.items():
        try:
            # Strings are arithmetic expressions (text templates belong in stage configs).
            value = evaluate(expr, scope) if isinstance(expr, str) else interpolate(expr, scope)
        except ExprError as e:
            raise ConfigError(where, f"derived.{name}", str(e)) from None
        scope["derived"][name] = value
    return scope["derived"]


def search_scope(spec: SweepSpec, stage: StageSpec, axes: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The scope of a tune stage's config: its `per` axes, fixed values, and the derived values that
    need no other axis (the rest stay undefined, so a reference to them fails by name)."""
    scope: dict[str, dict[str, Any]] = {"axes": dict(axes), "fixed": dict(spec.fixed), "derived": {}}
    for name, expr in spec.derived.items():
        try:
            scope["derived"][name] = evaluate(expr, scope) if isinstance(expr, str) else interpolate(expr, scope)
        except ExprError:
            continue
    return scope


def _check_references(spec: SweepSpec, where: str) -> None:
    """Resolve every reference once with the first value of each axis: unknown names fail here."""
    scope = first_scope(spec)
    resolve_derived(spec, scope, where)
    tuned = {name: best_section({k: _placeholder(d) for k, d in t.tune.space.items()})
             for name, t in tune_stages(spec).items()}
    for i, s in enumerate(spec.stages):
        if s.tune is not None:  # a search sees only its own axes; trial configs know no tune results
            here = search_scope(spec, s, {a: scope["axes"][a] for a in s.tune.per})
        else:
            here = {**scope, **tuned}
        for k, v in s.config.items():
            try:
                interpolate(v, here)
            except ExprError as e:
                raise ConfigError(where, f"stages[{i}].config.{k}", str(e)) from None
        if s.when is not None:
            if s.tune is not None or s.after is None:
                raise ConfigError(where, f"stages[{i}].when", "only a stage with `after` can be conditional")
            stage_when(s, {**scope, "run": {"checkpoint": 1}}, where, i)


def stage_when(stage: StageSpec, scope: Mapping[str, Mapping[str, Any]], where: str, i: int) -> bool:
    """Whether `stage` gets a run in `scope` (axes, fixed, derived and run.checkpoint); always
    without a `when`. Anything but a true/false result is an error naming the key."""
    if stage.when is None:
        return True
    try:
        value = evaluate(stage.when, scope)
    except ExprError as e:
        raise ConfigError(where, f"stages[{i}].when", str(e)) from None
    if not isinstance(value, bool):
        raise ConfigError(where, f"stages[{i}].when", f"expected a condition (true/false), got {value!r}")
    return value
