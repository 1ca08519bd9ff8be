"""Run one search: TuneSpec -> Ray Tune Tuner over a trainable, resumed from the run folder, and
the pick of the best trial. Imported only inside the tune job (it imports Ray).

    <run_dir>/ray/search/        Tune's experiment state (Tuner.restore continues from it)
    <run_dir>/trials/<trial_id>/ each trial's own folder (the tokenizer's checkpoints)
    <run_dir>/best.json          {"metric", "mode", "value", "config", "trial_id", "trials": [...]}
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search.basic_variant import BasicVariantGenerator

from vtp.jobs.worker import import_target
from vtp.tune.spec import TuneSpec

EXPERIMENT = "search"


class SearchFailed(RuntimeError):
    """Every trial of a search failed; the message carries the first trial's error."""


def param_space(space: Mapping[str, Any]) -> dict[str, Any]:
    """The spec's distributions as Ray Tune's (randint is [low, high), as in Ray)."""
    out: dict[str, Any] = {}
    for name, dist in space.items():
        if not isinstance(dist, Mapping):
            out[name] = dist
            continue
        kind, args = next(iter(dist.items()))
        out[name] = {"grid": lambda a: tune.grid_search(list(a)), "choice": lambda a: tune.choice(list(a)),
                     "uniform": lambda a: tune.uniform(*a), "loguniform": lambda a: tune.loguniform(*a),
                     "randint": lambda a: tune.randint(*a)}[kind](args)
    return out


def scheduler(spec: TuneSpec, reports: int) -> Any:
    if spec.scheduler.kind == "fifo":
        return FIFOScheduler()
    return ASHAScheduler(time_attr="training_iteration", max_t=spec.scheduler.max_t or reports,
                         grace_period=spec.scheduler.grace_period, reduction_factor=spec.scheduler.reduction_factor)


def _trial(params: dict[str, Any], *, fn: Callable[..., None], base: Mapping[str, Any], trials_dir: str) -> None:
    """What Ray runs: the spec's trainable in the trial's own, stable folder (trial ids survive a restore)."""
    trial_id = tune.get_context().get_trial_id()
    fn(params, base=base, trial_dir=Path(trials_dir) / trial_id, report=tune.report)


def run_search(spec: TuneSpec, base: Mapping[str, Any], run_dir: Path, *, reports: int,
               callbacks: Sequence[Any] = ()) -> dict[str, Any]:
    """Run (or resume) the search in `run_dir` and return what goes to best.json. `reports` is the
    number of results a full trial reports (ASHA's max_t unless the spec sets one)."""
    run_dir = Path(run_dir).resolve()
    fn = import_target(spec.trainable)
    trainable = tune.with_resources(
        tune.with_parameters(functools.partial(_trial, fn=fn, trials_dir=str(run_dir / "trials")), base=dict(base)),
        {"cpu": spec.cpus_per_trial, "gpu": spec.gpus_per_trial})
    space = param_space(spec.space)
    path = run_dir / "ray" / EXPERIMENT
    if tune.Tuner.can_restore(str(path)):  # a relaunched job: finished trials are kept, the rest go on
        tuner = tune.Tuner.restore(str(path), trainable=trainable, param_space=space,
                                   resume_unfinished=True, resume_errored=False, restart_errored=False)
    else:
        tuner = tune.Tuner(
            trainable, param_space=space,
            tune_config=tune.TuneConfig(
                metric=spec.metric, mode=spec.mode, num_samples=spec.num_samples, scheduler=scheduler(spec, reports),
                search_alg=BasicVariantGenerator(random_state=spec.seed, max_concurrent=spec.max_concurrent)),
            run_config=tune.RunConfig(name=EXPERIMENT, storage_path=str(run_dir / "ray"), verbose=1,
                                      failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
                                      callbacks=list(callbacks)))
    grid = tuner.fit()
    rows = [trial_row(r, spec.metric, sorted(spec.space)) for r in grid]
    return best_of(rows, spec.metric, spec.mode)


def trial_row(result: Any, metric: str, keys: Sequence[str]) -> dict[str, Any]:
    metrics = result.metrics or {}
    return {"trial_id": metrics.get("trial_id") or Path(result.path).name,
            "config": {k: result.config.get(k) for k in keys},
            "value": metrics.get(metric), "iterations": int(metrics.get("training_iteration") or 0),
            "error": None if result.error is None else f"{type(result.error).__name__}: {result.error}"}


def best_of(rows: Sequence[Mapping[str, Any]], metric: str, mode: str) -> dict[str, Any]:
    """The best trial among those that got furthest (ASHA stops weak trials early; comparing an
    early-stopped trial's metric with a finished one's would favour less training), by `mode`."""
    ok = [r for r in rows if r["error"] is None and isinstance(r["value"], (int, float))]
    if not ok:
        first = next((r["error"] for r in rows if r["error"]), "no trial reported the metric")
        raise SearchFailed(f"all {len(rows)} trials failed or reported no {metric!r}; first: {first}")
    furthest = max(r["iterations"] for r in ok)
    finalists = [r for r in ok if r["iterations"] == furthest]
    sign = 1 if mode == "min" else -1
    best = min(finalists, key=lambda r: (sign * r["value"], r["trial_id"]))
    return {"metric": metric, "mode": mode, "value": best["value"], "config": dict(best["config"]),
            "trial_id": best["trial_id"], "iterations": furthest,
            "errors": sum(r["error"] is not None for r in rows), "trials": list(rows)}
