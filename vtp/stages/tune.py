"""Stage adapter: a tune stage (`vtp.stages.tune:run`), one Ray Tune search per run.

The run's config is `{"trial": <each trial's base config>, "tune": <vtp.tune.spec.TuneSpec>}` (the
engine builds it from the stage's `config:` and `tune:` sections). Ray is imported here, inside
the job only. Writes `<run_dir>/best.json`, which later launches read to resolve `${<stage>.best.*}`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vtp.config import ConfigError, from_dict
from vtp.jobs.context import RunContext
from vtp.jobs.ledger import write_json
from vtp.tune.spec import DEFAULT_TRAINABLE, TuneSpec


def run(ctx: RunContext) -> Mapping[str, Any]:
    if int(os.environ.get("RANK", "0")) > 0:
        # A search on several nodes is one SLURM task per node: task 0 starts the Ray head, the
        # driver and (by srun) a Ray worker on every other node; the other tasks have nothing to do.
        return {}
    from vtp.tune.cluster import job_cpus, ray_session  # Ray: inside the job only
    from vtp.tune.search import run_search

    where = f"run {ctx.key} config"
    spec = from_dict(TuneSpec, ctx.config.get("tune"), where=where, key="tune")
    base = dict(ctx.config.get("trial") or {})
    reports = _reports(spec, base, where)
    ctx.tracker.set_tags({"stage": "tune", "tune.metric": spec.metric, "tune.mode": spec.mode})
    callbacks = _mlflow_callbacks(ctx, reports)
    cpus = job_cpus()
    with ray_session(cpus) as address:
        print(f"tune {ctx.key}: Ray at {address} with {cpus} CPUs, {spec.num_samples} samples of "
              f"{sorted(spec.space)}", flush=True)
        best = run_search(spec, base, ctx.run_dir, reports=reports, callbacks=callbacks)
    write_json(Path(ctx.run_dir) / "best.json", best)
    ctx.tracker.log_params({f"best.{k}": v for k, v in best["config"].items()})
    ctx.tracker.log_metrics({f"best_{spec.metric}": float(best["value"]), "trials": float(len(best["trials"])),
                             "trial_errors": float(best["errors"])}, step=0)
    return {"best": best["config"], "value": best["value"], "metric": spec.metric, "trials": len(best["trials"]),
            "errors": best["errors"], "cpus": cpus}


def _reports(spec: TuneSpec, base: Mapping[str, Any], where: str) -> int:
    """How many results a full trial reports (ASHA's max_t): one per tokenizer checkpoint."""
    if spec.scheduler.max_t:
        return spec.scheduler.max_t
    if spec.trainable.partition(":")[0] == DEFAULT_TRAINABLE.partition(":")[0]:
        from vtp.train.config import TokenizerTrainConfig

        return len(set(base.get("checkpoints", TokenizerTrainConfig.checkpoints)))
    raise ConfigError(where, "tune.scheduler.max_t", f"set it: how many results {spec.trainable} reports")


def _mlflow_callbacks(ctx: RunContext, reports: int) -> list[Any]:
    """The trial -> MLflow child run callback, when the launcher prepared tracking for this sweep."""
    sweep_dir = Path(ctx.run_dir).resolve().parent.parent
    if not (sweep_dir / "tracking.json").exists():
        return []
    from vtp.tracking.store import read_tracking
    from vtp.tune.trials import MlflowTrials

    tracking = read_tracking(sweep_dir)
    return [MlflowTrials(uri=tracking.uri, experiment_id=tracking.experiment_id, parent_run_id=tracking.runs[ctx.key],
                         key=ctx.key, sweep=tracking.sweep, folder=Path(ctx.run_dir) / "trials", max_t=reports)]
