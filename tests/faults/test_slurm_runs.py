"""What happens to submitted jobs on the real localhost SLURM cluster: accounting that forgets a
live job, a time limit reached (USR2, checkpoint, requeue) until max_num_timeout is spent, and the
code changed between launch and a queued job's start."""

import shutil
import time

import pytest

from tests.faults.conftest import ROOT, cli, executions, slurm_spec
from vtp.jobs.ledger import read_json, read_ledger, write_ledger
from vtp.sweep.launcher import launch, wait
from vtp.sweep.planner import plan
from vtp.sweep.spec import load_sweep

pytestmark = pytest.mark.slurm

# sacct that has no record of the job ids listed in $VTP_HIDE (as when slurmdbd lags or lost them)
HIDE = """
out=$("$REAL" "$@"); rc=$?
if [ -s "$VTP_HIDE" ]; then printf '%s\\n' "$out" | grep -v -E "^($(cat "$VTP_HIDE"))([|._]|$)"; else printf '%s\\n' "$out"; fi
exit $rc
"""


def wait_for(path, timeout_s=90):
    deadline = time.time() + timeout_s
    while not path.exists():
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.2)


def test_a_live_job_missing_from_sacct_is_never_declared_lost(slurm_cluster, tmp_path, fake_bin, monkeypatch):
    fake_bin.wrap("sacct", HIDE)
    hide = tmp_path / "hide"
    monkeypatch.setenv("VTP_HIDE", str(hide))
    sweep = load_sweep(slurm_spec(tmp_path, "hidden", seeds="[0]", steps=16, sleep=0.5), [f"root={tmp_path / 'out'}"])
    launch(sweep)
    parent = next(p.run for p in plan(sweep) if p.run.stage == "parent")
    wait_for(sweep.folder / "runs" / parent.key / "smoke_state.json")  # running
    ledger = read_ledger(sweep.folder)
    hide.write_text(ledger["runs"][parent.key]["job_id"])
    # submitted long ago: past any grace for accounting to catch up
    runs = {k: {**e, "submitted": e["submitted"] - 3600} for k, e in ledger["runs"].items()}
    write_ledger(sweep.folder, {**ledger, "runs": runs})
    actions = {p.run.key: p.action for p in plan(sweep)}
    assert actions[parent.key] == "wait"  # squeue still shows it
    assert launch(sweep).submitted == ()
    st = wait(sweep.folder, timeout_s=120, poll_s=1)
    assert st.counts() == {"parent": {"done": 1}, "child": {"done": 1}}
    assert len(executions(sweep.folder, parent.key)) == 1


def test_time_limit_requeues_through_usr2_until_max_num_timeout(slurm_cluster, tmp_path):
    """A 60 s limit and USR2 20 s before it: slurmctld signals at a periodic check once at most
    20 + ~30 s remain, so 10 s or more into each attempt (measured: 15 s; cluster/README.md);
    submitit checkpoints and requeues; the second time it has spent max_num_timeout=1. (With
    submitit's default 90 s delay the signal came at the first check, sometimes before the first
    attempt had saved anything: resumes 0, a flaky test.)"""
    from vtp.tracking.export import curves_path, export_snapshot

    spec = slurm_spec(tmp_path, "limit", seeds="[0]", steps=2000, sleep=0.05, tracking=True)
    sweep = load_sweep(spec, [f"root={tmp_path / 'out'}", "executor.options.time_min=1",
                              "executor.options.max_num_timeout=1", "executor.options.signal_delay_s=20"])
    launch(sweep)
    parent = next(p.run for p in plan(sweep) if p.run.stage == "parent")
    st = wait(sweep.folder, timeout_s=300, poll_s=2)
    run = st.runs[parent.key]
    assert (run.status, run.failure) == ("failed", "timeout"), run
    assert run.requeues >= 1  # sacct: the first attempt was requeued
    assert st.counts()["child"] == {"blocked": 1}
    starts = executions(sweep.folder, parent.key)
    assert len(starts) == 2 and starts[0]["job"] != "" and len({s["job"] for s in starts}) == 1
    saved = read_json(sweep.folder / "runs" / parent.key / "smoke_state.json")
    assert saved["resumes"] == 1  # the second attempt resumed from the first one's checkpoint
    # one MLflow run for the key, and every saved step of both attempts exactly once in its curve
    import pyarrow.parquet as pq

    out = export_snapshot(sweep.folder, tmp_path / "snap.parquet")
    table = pq.read_table(out).to_pylist()
    assert [r["status"] for r in table if r["run_key"] == parent.key] == ["FAILED"]
    curve = [r["step"] for r in pq.read_table(curves_path(out)).to_pylist() if r["run_key"] == parent.key]
    assert curve == list(range(5, saved["step"] + 1, 5)), curve


def test_code_changed_between_launch_and_a_queued_jobs_start(slurm_cluster, tmp_path):
    code = tmp_path / "code"
    for part in ("vtp", "cluster"):
        shutil.copytree(ROOT / part, code / part, ignore=shutil.ignore_patterns("__pycache__"))
    env = {"PYTHONPATH": str(code)}
    spec = slurm_spec(tmp_path, "stale", seeds="[0]", steps=10, sleep=0.8)
    args = ["launch", str(spec), f"root={tmp_path / 'out'}"]
    assert "submitted 2 of 2" in cli(*args, env=env, check=True, cwd=code).stdout
    folder = tmp_path / "out" / "stale"
    ledger = read_ledger(folder)
    parent = next(k for k, e in ledger["runs"].items() if e["stage"] == "parent")
    child = next(k for k, e in ledger["runs"].items() if e["stage"] == "child")
    wait_for(folder / "runs" / parent / "smoke_state.json")  # the parent runs; the child is queued
    with open(code / "vtp" / "stages" / "smoke.py", "a") as f:
        f.write("\n# a change to result code while the child waits in the queue\n")
    st = wait(folder, timeout_s=120, poll_s=1)
    assert st.runs[parent].status == "done"
    assert (st.runs[child].status, st.runs[child].failure) == ("failed", "stale_code")
    assert executions(folder, child) == []  # refused before the stage ran
    marker = read_json(folder / "runs" / child / "state.json")
    assert "Launch the spec again" in marker["error"]
    again = cli(*args, env=env, check=True, cwd=code)  # the new code's keys: both runs anew
    assert "submitted 2 of 2" in again.stdout, again.stdout
    cli("cancel", str(folder), env=env, check=True, cwd=code)
