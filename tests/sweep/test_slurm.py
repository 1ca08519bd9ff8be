"""The SLURM executor on the real localhost cluster (session fixture `slurm_cluster`, MaxArraySize 5).
Tiny jobs: 1 CPU, 1 GB, the engine's smoke stage."""

import json
import subprocess
import time
from pathlib import Path

import pytest

from cluster.slurm_query import max_array_size
from vtp.jobs.ledger import read_json, read_ledger
from vtp.stages.smoke import expected
from vtp.sweep.launcher import cancel, launch, wait
from vtp.sweep.planner import plan
from vtp.sweep.spec import load_sweep

pytestmark = pytest.mark.slurm
SMOKE = Path(__file__).resolve().parents[2] / "sweeps" / "smoke.yaml"
JOB = ["executor.options.partition=debug", "executor.options.poll_s=1", "tracking.enabled=false"]

SPEC = """
name: NAME
axes: {seed: SEEDS, fail: FAILS}
executor: {profile: slurm, options: {gres: null, cpus_per_task: 1, mem_gb: 1, time_min: 5}}
stages:
  - name: parent
    target: vtp.stages.smoke:run
    fanout: checkpoints
    config: {steps: STEPS, seed: "${axes.seed}", fail: "${axes.fail}", save_every: 5, sleep_s: SLEEP,
             checkpoints: [40]}
  - name: child
    target: vtp.stages.smoke:run
    after: parent
    config: {steps: 3}
"""


def spec(tmp_path, name="s", seeds="[0]", fails="[false]", steps=10, sleep=0.0, extra=()):
    text = (SPEC.replace("NAME", name).replace("SEEDS", seeds).replace("FAILS", fails)
            .replace("STEPS", str(steps)).replace("SLEEP", str(sleep)))
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return load_sweep(path, [f"root={tmp_path / 'out'}", *JOB, *extra])


def job_ids(folder):
    return {k: e["job_id"] for k, e in read_ledger(folder)["runs"].items()}


def test_array_of_runs_then_second_launch_submits_nothing(slurm_cluster, tmp_path):
    sweep = load_sweep(SMOKE, [f"root={tmp_path / 'out'}", *JOB])
    assert len(launch(sweep).submitted) == 12
    st = wait(sweep.folder, timeout_s=180, poll_s=1)
    assert st.counts() == {"tokenizer": {"done": 4}, "downstream": {"done": 8}}
    tok = [p.run for p in plan(sweep) if p.run.stage == "tokenizer"]
    ids = job_ids(sweep.folder)
    cap = max_array_size()
    assert len({ids[r.key].split("_")[0] for r in tok}) == -(-4 // cap)  # one array per MaxArraySize chunk
    for r in tok:
        res = read_json(sweep.folder / "runs" / r.key / "result.json")
        assert res["value"] == expected(r.config["seed"], r.config["steps"])
    assert launch(sweep).submitted == ()


def test_child_of_failed_parent_is_cancelled_and_blocked(slurm_cluster, tmp_path):
    sweep = spec(tmp_path, fails="[false, true]")
    launch(sweep)
    st = wait(sweep.folder, timeout_s=180, poll_s=1)
    assert st.counts() == {"parent": {"done": 1, "failed": 1}, "child": {"done": 1, "blocked": 1}}
    blocked = next(k for k, s in st.runs.items() if s.status == "blocked")
    sacct = subprocess.run(["sacct", "-X", "-n", "--parsable2", "-o", "State", "-j", job_ids(sweep.folder)[blocked]],
                           capture_output=True, text=True, check=True).stdout
    assert "CANCELLED" in sacct  # --kill-on-invalid-dep=yes: not left pending forever
    [(_, stage, cls)] = st.failures()
    assert (stage, cls) == ("parent", "error")
    assert launch(sweep).submitted == ()  # a Python exception is not retried unless asked


def test_requeued_job_resumes_to_the_uninterrupted_result(slurm_cluster, tmp_path):
    """The time-limit path: USR2 (what SLURM sends before the limit; submitit's handler counts it
    as a timeout with a limit this short), checkpoint, requeue, resume. `scontrol requeue` sends
    SIGTERM, which submitit ignores, so it never exercised this path."""
    sweep = spec(tmp_path, steps=30, sleep=0.3, extra=["tracking.enabled=true"])
    launch(sweep)
    parent = next(p.run for p in plan(sweep) if p.run.stage == "parent")
    state_file = sweep.folder / "runs" / parent.key / "smoke_state.json"
    deadline = time.time() + 120
    while not state_file.exists():
        assert time.time() < deadline, "the job never saved its state"
        time.sleep(0.2)
    job = job_ids(sweep.folder)[parent.key]
    subprocess.run(["scancel", "--signal=USR2", job], check=True)
    st = wait(sweep.folder, timeout_s=180, poll_s=1)
    assert st.runs[parent.key].status == "done" and st.runs[parent.key].requeues >= 1  # from sacct
    res = read_json(sweep.folder / "runs" / parent.key / "result.json")
    assert res["value"] == expected(0, 30) and res["resumes"] >= 1
    assert job_ids(sweep.folder)[parent.key] == job  # same job, same run key
    assert st.counts()["child"] == {"done": 1}
    # the requeued job logged into the same MLflow run: exactly one run for its key, finished,
    # with every saved step of both attempts, each once
    import sqlite3

    db = sqlite3.connect(sweep.folder / "mlflow.db")
    rows = db.execute("select r.run_uuid, r.status from runs r join tags t on t.run_uuid = r.run_uuid "
                      "where t.key = 'vtp.run_key' and t.value = ?", (parent.key,)).fetchall()
    assert len(rows) == 1 and rows[0][1] == "FINISHED", rows
    steps = [s for (s,) in db.execute("select step from metrics where run_uuid = ? and key = 'x_frac' order by step",
                                      (rows[0][0],))]
    assert steps == list(range(5, 31, 5)), steps
    starts = [line for line in (sweep.folder / "runs" / parent.key / "executions.jsonl").read_text().splitlines()
              if '"start"' in line]
    assert len(starts) == 2  # both attempts ran the stage, one after the other


def test_arrays_are_chunked_by_max_array_size(slurm_cluster, tmp_path):
    sweep = spec(tmp_path, name="chunks", seeds="[0, 1, 2, 3, 4]", extra=["executor.options.max_array_size=2"])
    launch(sweep)
    ids = job_ids(sweep.folder)
    parents = [p.run.key for p in plan(sweep) if p.run.stage == "parent"]
    arrays = {ids[k].split("_")[0] for k in parents}
    assert len(arrays) == 3  # 5 runs in chunks of 2
    assert all(int(ids[k].split("_")[1]) < 2 for k in parents if "_" in ids[k])  # indexes below the cap
    st = wait(sweep.folder, timeout_s=180, poll_s=1)
    assert st.counts() == {"parent": {"done": 5}, "child": {"done": 5}}
    assert json.loads((sweep.folder / "ledger.json").read_text())["executor"]["max_array_size"] == 2


def test_cancel_stops_running_and_pending_jobs(slurm_cluster, tmp_path):
    sweep = spec(tmp_path, name="cancel", steps=200, sleep=0.5)
    launch(sweep)
    parent = next(p.run for p in plan(sweep) if p.run.stage == "parent")
    deadline = time.time() + 120
    while not (sweep.folder / "runs" / parent.key / "smoke_state.json").exists():
        assert time.time() < deadline, "the job never started"
        time.sleep(0.2)
    assert len(cancel(sweep.folder)) == 2
    st = wait(sweep.folder, timeout_s=120, poll_s=1)
    assert st.counts() == {"parent": {"cancelled": 1}, "child": {"cancelled": 1}}
    assert len(launch(sweep).submitted) == 2  # cancelled runs are retried by the next launch
    cancel(sweep.folder)  # leave nothing running
