"""A tune job killed mid-search is run again by the next launch (same key) and Tune resumes from the
run folder: the finished trial is not run again, the interrupted one restarts in its own folder, and
the trials keep their MLflow runs."""

import json
import os
import signal
import time
from pathlib import Path

import pytest

from vtp.jobs.ledger import read_json
from vtp.sweep.launcher import launch, launch_until_done, wait
from vtp.sweep.spec import load_sweep

pytestmark = pytest.mark.slow
SPEC = Path(__file__).resolve().parents[2] / "sweeps" / "tune_tiny.yaml"


def _recorded_done(run: Path, trial_id: str) -> bool:
    """Whether Tune's saved experiment state lists the trial as TERMINATED. Tune saves that state
    every few seconds, not when a trial ends: a trial killed in between is run again on restore."""
    for path in (run / "ray" / "search").glob("experiment_state-*.json"):
        for entry in (read_json(path) or {}).get("trial_data", []):
            trial = json.loads(entry[0])
            if trial.get("trial_id") == trial_id and trial.get("status") == "TERMINATED":
                return True
    return False


def test_killed_search_resumes_without_rerunning_finished_trials(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNE_GLOBAL_CHECKPOINT_S", "0")  # the worker's Tune saves its state every loop
    sweep = load_sweep(SPEC, [f"root={tmp_path}", "stages.tune.tune.max_concurrent=1",
                              "stages.tokenizer.config.budget_steps=2"])
    report = launch(sweep)
    (key,) = [p.run.key for p in report.planned if p.run.stage == "tune"]
    run = sweep.folder / "runs" / key
    deadline = time.time() + 300
    while len(read_json(run / "trials" / "mlflow.json") or {}) < 2:  # trial 0 ended, trial 1 started
        assert time.time() < deadline, "the search did not reach its second trial"
        time.sleep(0.2)
    first = json.loads((run / "trials" / "mlflow.json").read_text())
    while not _recorded_done(run, sorted(first)[0]):  # trial 0's end is in Tune's saved state
        assert time.time() < deadline, "Tune never saved trial 0 as finished"
        time.sleep(0.2)
    first = json.loads((run / "trials" / "mlflow.json").read_text())
    os.killpg(read_json(sweep.folder / "local" / "jobs" / f"{key}.json")["pid"], signal.SIGKILL)
    recorded = {t for t in first if _recorded_done(run, t)}  # read after the kill: final
    st = wait(sweep.folder, timeout_s=120, poll_s=0.5)
    assert st.runs[key].status == "failed"  # the killed job; the next launch runs the same key again

    st = launch_until_done(sweep, timeout_s=420, poll_s=0.5, retry_failed=True)
    assert {s.status for s in st.runs.values()} == {"done"}
    log = (run / "worker.log").read_text()
    assert "Restoring the run from the latest experiment state" in log
    assert sorted(first)[0] in recorded
    for t in first:  # recorded as finished before the kill: kept; interrupted (or not yet saved): run again
        assert log.count(f"Trial tune_with_parameters_{t} started") == (1 if t in recorded else 2), t
    trials = json.loads((run / "trials" / "mlflow.json").read_text())
    assert {k: trials[k] for k in first} == first and len(trials) == 4
    assert len(json.loads((run / "best.json").read_text())["trials"]) == 4
