"""The engine and the worker under faults, on the local executor (real worker subprocesses, real
MLflow over SQLite): a corrupt ledger, a duplicate grid point, two workers on one key, a run
resumed mid-way, a worker killed by the OOM killer."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.faults.conftest import ROOT, cli, executions
from vtp.jobs.ledger import read_json, read_ledger
from vtp.sweep.launcher import launch, wait
from vtp.sweep.planner import plan
from vtp.sweep.spec import load_sweep

SPEC = """
name: NAME
axes: AXES
executor: {profile: local, options: {max_workers: 2, poll_s: 0.1}}
stages:
  - name: main
    target: TARGET
    config: CONFIG
"""


def sweep_of(tmp_path, name, *, axes="{seed: [0]}", target="vtp.stages.smoke:run",
             config='{steps: 10, seed: "${axes.seed}", sleep_s: 0.0}', extra=()):
    path = tmp_path / f"{name}.yaml"
    path.write_text(SPEC.replace("NAME", name).replace("AXES", axes).replace("TARGET", target)
                    .replace("CONFIG", config))
    return load_sweep(path, [f"root={tmp_path / 'out'}", *extra]), path


def mlflow_runs(folder):
    db = sqlite3.connect(folder / "mlflow.db")
    try:
        return db.execute("select t.value, count(*) from tags t where t.key = 'vtp.run_key' group by t.value").fetchall()
    finally:
        db.close()


def wait_until(check, timeout_s=60, what="condition"):
    deadline = time.time() + timeout_s
    while not check():
        assert time.time() < deadline, f"{what} never happened"
        time.sleep(0.05)


def test_a_corrupt_ledger_is_an_error_not_an_empty_sweep(tmp_path):
    sweep, spec = sweep_of(tmp_path, "corrupt", axes="{seed: [0, 1]}",
                           config='{steps: 40, seed: "${axes.seed}", sleep_s: 0.1}', extra=["tracking.enabled=false"])
    launch(sweep)
    ledger = sweep.folder / "ledger.json"
    ledger.write_text(ledger.read_text()[:-40])  # torn by hand, or by a disk
    def submissions():  # when each local job was (last) submitted
        return sorted(json.loads(p.read_text())["submitted"] for p in (sweep.folder / "local" / "jobs").glob("*.json"))

    jobs_before = submissions()
    out = cli("launch", str(spec), f"root={tmp_path / 'out'}", "tracking.enabled=false")
    assert out.returncode == 1 and "ledger.json: not valid JSON" in out.stderr, (out.stdout, out.stderr)
    assert submissions() == jobs_before  # nothing submitted again
    assert cli("cancel", str(sweep.folder)).returncode == 1  # refuses as well, naming the file


def test_a_duplicate_grid_point_is_one_run_and_one_mlflow_run(tmp_path):
    # `repeat` is in no stage config: both of its values give the same run keys
    sweep, _ = sweep_of(tmp_path, "dup", axes="{seed: [0, 1], repeat: [1, 2]}", extra=["executor=debug"])
    planned = plan(sweep)
    assert len(planned) == len({p.run.key for p in planned}) == 2
    report = launch(sweep)
    assert len(report.submitted) == 2
    assert sorted(n for _, n in mlflow_runs(sweep.folder)) == [1, 1]
    for p in planned:
        assert len(executions(sweep.folder, p.run.key)) == 1


def test_a_second_worker_on_the_same_key_exits_without_running(tmp_path):
    sweep, _ = sweep_of(tmp_path, "owner", config='{steps: 20, seed: "${axes.seed}", sleep_s: 0.2, save_every: 1}')
    launch(sweep)
    key = plan(sweep)[0].run.key
    wait_until(lambda: (sweep.folder / "runs" / key / "smoke_state.json").exists(), what="first worker's start")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.time()
    second = subprocess.run([sys.executable, "-m", "vtp.jobs.worker", str(sweep.folder), key], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert second.returncode == 0 and "is being run by pid" in second.stderr, second.stderr
    assert time.time() - t0 < 30  # it did not run the stage (4 s of steps) nor wait for the first one
    st = wait(sweep.folder, timeout_s=120, poll_s=0.2)
    assert st.runs[key].status == "done"
    assert len(executions(sweep.folder, key)) == 1
    db = sqlite3.connect(sweep.folder / "mlflow.db")
    steps = [s for (s,) in db.execute("select step from metrics where key = 'x_frac' order by step")]
    assert steps == list(range(1, 21)), steps  # each step once: the second copy logged nothing


def test_a_run_resumed_mid_way_has_each_step_once_in_the_exported_curve(tmp_path):
    import pyarrow.parquet as pq

    from vtp.tracking.export import curves_path, export_snapshot

    sweep, _ = sweep_of(tmp_path, "resume", target="tests.faults.stages:relog", config="{steps: 12, sleep_s: 0.25}")
    launch(sweep)
    key = plan(sweep)[0].run.key
    buffer = sweep.folder / "tracking" / key / "buffer.jsonl"
    wait_until(lambda: buffer.exists() and '"s":7,' in buffer.read_text(), what="step 7")  # saved at 5
    job = read_json(sweep.folder / "local" / "jobs" / f"{key}.json")
    os.kill(job["pid"], signal.SIGKILL)  # steps 6 and 7 are logged, not saved
    st = wait(sweep.folder, timeout_s=60, poll_s=0.2)
    assert (st.runs[key].status, st.runs[key].failure) == ("failed", "lost")
    assert len(launch(sweep).submitted) == 1  # a lost job is retried; it resumes from step 5
    st = wait(sweep.folder, timeout_s=60, poll_s=0.2)
    assert st.runs[key].status == "done"
    out = export_snapshot(sweep.folder, tmp_path / "snap.parquet")
    curve = [(r["step"], r["value"]) for r in pq.read_table(curves_path(out)).to_pylist() if r["run_key"] == key]
    assert curve == [(s, float(s)) for s in range(1, 13)], curve


def _cgroup(tmp_path) -> Path:
    base = Path("/sys/fs/cgroup/memory")
    if os.geteuid() != 0 or not (base / "memory.limit_in_bytes").exists():
        pytest.skip("needs root and the cgroup v1 memory controller to make a real OOM kill")
    group = base / f"vtp-oom-{os.getpid()}-{tmp_path.name[-8:]}"
    try:
        group.mkdir()
        (group / "memory.limit_in_bytes").write_text(str(300 << 20))
    except OSError as e:
        pytest.skip(f"cannot make a memory cgroup here: {e}")
    return group


def test_a_local_job_killed_by_the_oom_killer_is_out_of_memory_not_lost(tmp_path):
    group = _cgroup(tmp_path)
    sweep, spec = sweep_of(tmp_path, "oom", target="tests.faults.stages:hog", config="{mb: 1000}",
                           extra=["tracking.enabled=false"])
    try:  # the launcher, its scheduler and the worker all live in the 300 MB cgroup
        cmd = (f"echo $$ > {group}/cgroup.procs && exec {sys.executable} -m vtp.cli.sweep launch {spec} "
               f"root={tmp_path / 'out'} tracking.enabled=false --wait --timeout 120")
        subprocess.run(["sh", "-c", cmd], cwd=ROOT, capture_output=True, text=True, timeout=180,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
        st = wait(sweep.folder, timeout_s=60, poll_s=0.2)
    finally:
        for _ in range(50):
            try:
                group.rmdir()
                break
            except OSError:
                time.sleep(0.2)
    key = plan(sweep)[0].run.key
    assert (st.runs[key].status, st.runs[key].failure) == ("failed", "out_of_memory")
    assert launch(sweep).submitted == ()  # not retried forever
    assert json.dumps(read_ledger(sweep.folder)["runs"][key]["attempts"]) == "1"
