"""Acceptance: a real Ray Tune search (ASHA, the CPU tokenizer preset, 4 trials that train plus one
made to fail) on the local executor picks the best trial, the downstream tokenizer trains with its
values, every trial is an MLflow child run of the tune run, and relaunching runs no new trial."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from vtp.sweep.launcher import launch, launch_until_done
from vtp.sweep.planner import plan
from vtp.sweep.spec import load_sweep

pytestmark = pytest.mark.slow  # ~40-80 s: Ray start-up and five real trials
SPEC = Path(__file__).resolve().parents[2] / "sweeps" / "tune_tiny.yaml"
TIMEOUT_S = 480


def ray_processes() -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "raylet" in line or "gcs_server" in line]


def read(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """The spec with a fifth trial that raises (`fail: true`); launched until the downstream ran."""
    root = tmp_path_factory.mktemp("tune")
    before = set(ray_processes())
    sweep = load_sweep(SPEC, [f"root={root}", "stages.tune.tune.trainable=tests.tune.trainables:failing",
                              "stages.tune.tune.scheduler.max_t=3",
                              "stages.tune.tune.num_samples=1",
                              "stages.tune.tune.space.fail={grid: [false, false, false, false, true]}",
                              "stages.tokenizer.config.budget_steps=2"])
    st = launch_until_done(sweep, timeout_s=TIMEOUT_S, poll_s=0.5)
    yield sweep, st
    assert set(ray_processes()) <= before, "the tune job left Ray processes behind"


def test_search_picks_the_best_and_the_downstream_trains_with_it(swept):
    sweep, st = swept
    assert {s.status for s in st.runs.values()} == {"done"}, st.runs
    (tune,) = [p.run for p in plan(sweep, with_flops=False) if p.run.stage == "tune"]
    (tok,) = [p.run for p in plan(sweep, with_flops=False) if p.run.stage == "tokenizer"]
    best = read(sweep.folder / "runs" / tune.key / "best.json")
    trials = best["trials"]
    assert len(trials) == 5 and best["errors"] == 1
    assert sum(t["iterations"] == 3 for t in trials) >= 1  # three checkpoints = three ASHA rungs
    finalists = [t for t in trials if t["error"] is None and t["iterations"] == best["iterations"]]
    assert best["value"] == min(t["value"] for t in finalists)
    assert 0 < best["value"] < 1  # mean |x_hat - x| of held-out images in [-1, 1]
    # the downstream run's key and config carry the best values; it trained (a real checkpoint)
    assert tok.waits_for is None
    cfg = read(sweep.folder / "runs" / tok.key / "config.json")["config"]
    assert {k: cfg[k] for k in ("lr", "weight_decay", "warmup_fraction")} == \
        {k: best["config"][k] for k in ("lr", "weight_decay", "warmup_fraction")}
    assert (sweep.folder / "runs" / tok.key / "checkpoints" / "40.pt").exists()


def test_every_trial_is_an_mlflow_child_run_of_the_tune_run(swept):
    from mlflow.tracking import MlflowClient

    sweep, _ = swept
    tracking = read(sweep.folder / "tracking.json")
    (tune_key,) = [k for k, e in read(sweep.folder / "ledger.json")["runs"].items() if e["stage"] == "tune"]
    c = MlflowClient(tracking_uri=tracking["uri"])
    children = c.search_runs([tracking["experiment_id"]],
                             filter_string=f"tags.mlflow.parentRunId = '{tracking['runs'][tune_key]}'")
    assert len(children) == 5
    statuses = sorted(r.info.status for r in children)
    assert statuses == ["FAILED", "FINISHED", "FINISHED", "FINISHED", "FINISHED"]
    finished = [r for r in children if r.info.status == "FINISHED"]
    assert all("val_rec_l1" in r.data.metrics and "lr" in r.data.params for r in finished)
    assert {r.data.tags["vtp.trial_status"] for r in finished} <= {"completed", "stopped_early"}


def test_relaunch_runs_no_new_trial(swept):
    sweep, _ = swept
    (tune_dir,) = [d for d in (sweep.folder / "runs").iterdir() if (d / "best.json").exists()]
    trials_before = sorted(p.name for p in (tune_dir / "trials").iterdir())
    mtime = os.stat(tune_dir / "best.json").st_mtime_ns
    report = launch(sweep)
    assert report.submitted == () and report.deferred == 0
    assert {p.action for p in report.planned} == {"skip"}
    assert sorted(p.name for p in (tune_dir / "trials").iterdir()) == trials_before
    assert os.stat(tune_dir / "best.json").st_mtime_ns == mtime
