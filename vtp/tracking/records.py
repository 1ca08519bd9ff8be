"""What the launcher tells tracking about a run, and how that becomes MLflow tags and params.

Pure functions only: no MLflow import here, so the tag layout is testable without a store.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# MLflow 3.x limits (mlflow.utils.validation): a param value holds at most 6000 characters,
# a key 250; one log_batch carries at most 100 params + tags and 1000 metrics.
MAX_PARAM_VALUE = 6000
MAX_KEY = 250
MAX_TAG_VALUE = 8000

TAG_RUN_KEY = "vtp.run_key"
TAG_STAGE = "vtp.stage"
TAG_SWEEP = "vtp.sweep"
TAG_ROOT = "vtp.root_key"
TAG_PARENTS = "vtp.parents"
TAG_CHECKPOINT = "vtp.checkpoint"
TAG_CODE_VERSION = "vtp.code_version"
TAG_AXES = "vtp.axes"  # JSON of the axis values, so the export gets their types back
TAG_AXIS_PREFIX = "vtp.axis."  # one readable tag per axis for the MLflow UI
TAG_JOB_ID = "vtp.job_id"
TAG_SWEEP_PARENT = "vtp.sweep_parent"

TERMINAL_STATUSES = ("FINISHED", "FAILED", "KILLED")


@dataclass(frozen=True)
class RunRecord:
    """One run of the sweep, as the launcher knows it before submitting.

    key:          content-addressed run key (stable across relaunches)
    stage:        stage name in the spec (tokenizer, extract, dit, eval, ...)
    axes:         sweep axis name -> value for this run
    parents:      run keys of all ancestors
    config:       resolved config (nested plain data); becomes the run's params
    code_version: e.g. a git describe string
    checkpoint:   tokenizer checkpoint numerator for fanned-out runs, else None
    root:         key of the tokenizer ancestor (its own key for a tokenizer run)
    """

    key: str
    stage: str
    axes: Mapping[str, Any] = field(default_factory=dict)
    parents: tuple[str, ...] = ()
    config: Mapping[str, Any] = field(default_factory=dict)
    code_version: str = ""
    checkpoint: int | None = None
    root: str = ""


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings -> {"a.b.c": leaf}. Lists stay leaves (a list of checkpoints is one param)."""
    out: dict[str, Any] = {}
    for k, v in config.items():
        name = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, Mapping) and v:
            out.update(flatten(v, name))
        else:
            out[name] = v
    return out


def format_value(value: Any) -> str:
    """A param/tag value as text: strings as they are, everything else as JSON (true, 0.001, [1, 2])."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, sort_keys=True)
    except TypeError:
        return str(value)


def clip(text: str, limit: int) -> str:
    """Cut to MLflow's length limit, marking the cut so nobody mistakes it for the full value."""
    if len(text) <= limit:
        return text
    marker = "...[truncated]"
    return text[: limit - len(marker)] + marker


def params_of(record: RunRecord) -> dict[str, str]:
    """The run's params: its flattened resolved config, within MLflow's limits."""
    return {clip(k, MAX_KEY): clip(format_value(v), MAX_PARAM_VALUE) for k, v in flatten(record.config).items()}


def tags_of(record: RunRecord, *, sweep: str) -> dict[str, str]:
    """The run's identifying tags (see TAG_* above)."""
    root = record.root or record.key
    tags = {
        TAG_RUN_KEY: record.key,
        TAG_STAGE: record.stage,
        TAG_SWEEP: sweep,
        TAG_ROOT: root,
        TAG_PARENTS: ",".join(record.parents),
        TAG_CODE_VERSION: record.code_version,
        TAG_AXES: clip(json.dumps(dict(record.axes), sort_keys=True, default=str), MAX_TAG_VALUE),
        "mlflow.runName": record.key,
    }
    if record.checkpoint is not None:
        tags[TAG_CHECKPOINT] = str(record.checkpoint)
    for name, value in record.axes.items():
        tags[clip(TAG_AXIS_PREFIX + name, MAX_KEY)] = clip(format_value(value), MAX_TAG_VALUE)
    return tags
