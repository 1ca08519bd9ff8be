"""A tune job killed mid-search is run again by the next launch (same key) and Tune resumes from the
run folder: the finished trial is not run again, the interrupted one restarts in its own folder, and
the trials keep their MLflow runs."""

import json
import os
import signal
import time
from pathlib import Path

import pytest

from vtp.sweep.launcher import launch, launch_until_done, wait
from vtp.sweep.ledger import read_json
from vtp.sweep.spec import load_sweep

pytestmark = pytest.mark.slow
SPEC = Path(__file__).resolve().parents[2] / "sweeps" / "tune_tiny.yaml"


def test_killed_search_resumes_without_rerunning_finished_trials(tmp_path):
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
    os.killpg(read_json(sweep.folder / "local" / "jobs" / f"{key}.json")["pid"], signal.SIGKILL)
    st = wait(sweep.folder, timeout_s=120, poll_s=0.5)
    assert st.runs[key].status == "failed"  # the killed job; the next launch runs the same key again

    st = launch_until_done(sweep, timeout_s=420, poll_s=0.5, retry_failed=True)
    assert {s.status for s in st.runs.values()} == {"done"}
    log = (run / "worker.log").read_text()
    assert "Restoring the run from the latest experiment state" in log
    (trial0, trial1) = sorted(first)[:2]
    assert log.count(f"Trial tune_with_parameters_{trial0} started") == 1  # finished before the kill: kept
    assert log.count(f"Trial tune_with_parameters_{trial1} started") == 2  # interrupted: run again
    trials = json.loads((run / "trials" / "mlflow.json").read_text())
    assert {k: trials[k] for k in first} == first and len(trials) == 4
    assert len(json.loads((run / "best.json").read_text())["trials"]) == 4
