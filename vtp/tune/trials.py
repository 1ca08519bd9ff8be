"""Every Ray Tune trial as an MLflow child run of the tune stage's run (tag `mlflow.parentRunId`).

A Tune callback in the driver (one process: no two writers race) creates the trial's run when the
trial starts, logs each reported result at step = `training_iteration`, and ends it FINISHED
(completed or stopped early by the scheduler, tagged `vtp.trial_status`) or FAILED. The trial id ->
MLflow run id map is kept in `<run_dir>/trials/mlflow.json`, so a resumed search logs into the same
runs. A tracking error is printed and never fails the search.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from ray.tune import Callback

from vtp.tracking import records as rec
from vtp.tracking.store import client, with_retry

TAG_TRIAL_OF = "vtp.trial_of"  # the tune run's key (not vtp.run_key: that names sweep runs only)
TAG_TRIAL_ID = "vtp.trial_id"
TAG_TRIAL_STATUS = "vtp.trial_status"


class MlflowTrials(Callback):
    def __init__(self, *, uri: str, experiment_id: str, parent_run_id: str, key: str, sweep: str,
                 folder: Path, max_t: int):
        self.uri, self.experiment_id, self.parent_run_id = uri, experiment_id, parent_run_id
        self.key, self.sweep, self.folder, self.max_t = key, sweep, Path(folder), max_t
        self._client: Any = None

    def __getstate__(self) -> dict[str, Any]:  # Tune pickles its callbacks with the experiment
        return {**self.__dict__, "_client": None}

    # --- bookkeeping ----------------------------------------------------------------------
    @property
    def c(self) -> Any:
        if self._client is None:
            self._client = client(self.uri)
        return self._client

    def _ids(self) -> dict[str, str]:
        try:
            return json.loads((self.folder / "mlflow.json").read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def _save(self, ids: dict[str, str]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f"mlflow.json.tmp{os.getpid()}"
        tmp.write_text(json.dumps(ids, indent=1, sort_keys=True))
        os.replace(tmp, self.folder / "mlflow.json")

    def run_id(self, trial: Any) -> str:
        ids = self._ids()
        if trial.trial_id not in ids:
            tags = {"mlflow.parentRunId": self.parent_run_id, "mlflow.runName": f"{self.key}/{trial.trial_id}",
                    TAG_TRIAL_OF: self.key, TAG_TRIAL_ID: trial.trial_id, rec.TAG_SWEEP: self.sweep,
                    rec.TAG_STAGE: "tune.trial"}
            run = with_retry(lambda: self.c.create_run(self.experiment_id, tags=tags, run_name=tags["mlflow.runName"]))
            params = {k: rec.clip(rec.format_value(v), rec.MAX_PARAM_VALUE) for k, v in rec.flatten(trial.config).items()}
            if params:
                from mlflow.entities import Param

                with_retry(lambda: self.c.log_batch(run.info.run_id, params=[Param(k, v) for k, v in params.items()]))
            ids[trial.trial_id] = run.info.run_id
            self._save(ids)
        return ids[trial.trial_id]

    def _safely(self, what: str, call: Any) -> None:
        try:
            call()
        except Exception as e:  # noqa: BLE001 -- tracking must never fail the search
            print(f"tune: MLflow {what} failed: {type(e).__name__}: {e}", flush=True)

    # --- Tune's hooks -------------------------------------------------------------------
    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._safely("create", lambda: self.run_id(trial))

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        def log() -> None:
            from mlflow.entities import Metric

            step = int(result.get("training_iteration", 0))
            now = int(result.get("timestamp", 0) * 1000)
            metrics = [Metric(k, float(v), now, step) for k, v in result.items()
                       if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                       and k not in ("timestamp", "pid", "time_this_iter_s", "time_since_restore", "done")]
            with_retry(lambda: self.c.log_batch(self.run_id(trial), metrics=metrics))

        self._safely("log", log)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        reached = int((trial.last_result or {}).get("training_iteration", 0))
        status = "completed" if reached >= self.max_t else "stopped_early"
        self._end(trial, "FINISHED", status)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._end(trial, "FAILED", "error")

    def _end(self, trial: Any, status: str, trial_status: str) -> None:
        def end() -> None:
            run_id = self.run_id(trial)
            with_retry(lambda: self.c.set_tag(run_id, TAG_TRIAL_STATUS, trial_status))
            with_retry(lambda: self.c.set_terminated(run_id, status))

        self._safely("end", end)
