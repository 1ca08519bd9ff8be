"""launch / status / cancel / relaunch on the debug (in-process) and local (detached) executors."""

import json
import time
from pathlib import Path

import pytest

from vtp.cli.sweep import main
from vtp.jobs.ledger import read_json
from vtp.stages.smoke import expected
from vtp.sweep.launcher import cancel, launch, wait
from vtp.sweep.planner import plan
from vtp.sweep.spec import load_sweep
from vtp.sweep.status import status

TINY = Path(__file__).resolve().parents[2] / "sweeps" / "smoke_local.yaml"

CHAIN = """
name: chain
axes: {fail: [false, true]}
executor: EXECUTOR
stages:
  - name: parent
    target: vtp.stages.smoke:run
    fanout: checkpoints
    config: {steps: 8, seed: 3, fail: "${axes.fail}", checkpoints: [20, 40], sleep_s: SLEEP}
  - name: child
    target: vtp.stages.smoke:run
    after: parent
    config: {steps: 4}
  - name: grandchild
    target: vtp.stages.smoke:run
    after: child
    config: {steps: 2}
"""


def chain(tmp_path, executor="debug", sleep=0.0, extra=()):
    spec = tmp_path / "chain.yaml"
    spec.write_text(CHAIN.replace("EXECUTOR", executor).replace("SLEEP", str(sleep)))
    return load_sweep(spec, [f"root={tmp_path / 'out'}", "tracking.enabled=false", *extra])


def results(folder: Path) -> dict:
    return {p.parent.name: json.loads(p.read_text()) for p in folder.glob("runs/*/result.json")}


def test_debug_launch_runs_dag_and_second_launch_submits_nothing(tmp_path):
    sweep = load_sweep(TINY, [f"root={tmp_path}", "executor=debug", "tracking.enabled=false"])
    first = launch(sweep, code_version="t")
    assert len(first.submitted) == 12
    planned = plan(sweep, code_version="t")
    assert {p.action for p in planned} == {"skip"}
    res = results(sweep.folder)
    for p in planned:
        if p.run.stage == "tokenizer":
            assert res[p.run.key]["value"] == expected(p.run.config["seed"], p.run.config["steps"])
        else:  # fanned out: starts from the parent's value at that checkpoint
            ck = read_json(sweep.folder / "runs" / p.run.parent / "checkpoints" / f"{p.run.checkpoint}.json")
            assert res[p.run.key]["value"] == expected(0, 10, start=ck["value"])
    assert launch(sweep, code_version="t").submitted == ()
    cfg = read_json(sweep.folder / "runs" / planned[-1].run.key / "config.json")
    assert cfg["code_version"] == "t" and cfg["parents"] == {"tokenizer": planned[-1].run.parent}


def test_failed_parent_blocks_children_and_retry_policy(tmp_path):
    sweep = chain(tmp_path)
    report = launch(sweep, code_version="t")
    assert len(report.submitted) == 2 + 4 + 4
    st = status(sweep.folder)
    assert st.counts() == {"parent": {"done": 1, "failed": 1}, "child": {"done": 2, "blocked": 2},
                           "grandchild": {"done": 2, "blocked": 2}}
    [(key, stage, cls)] = st.failures()
    assert stage == "parent" and cls == "error"
    marker = read_json(sweep.folder / "runs" / key / "state.json")
    assert "RuntimeError: smoke stage asked to fail" in marker["traceback"]
    actions = {p.run.key: p.action for p in plan(sweep, code_version="t")}
    assert actions[key] == "failed"
    assert sorted(actions.values()).count("blocked") == 4
    # a Python exception is not retried unless asked; children of a retried run are resubmitted
    assert launch(sweep, code_version="t").submitted == ()
    again = launch(sweep, code_version="t", retry_failed=True)
    assert key in again.submitted and len(again.submitted) == 5


def test_plan_changes_nothing(tmp_path):
    sweep = load_sweep(TINY, [f"root={tmp_path / 'out'}"])
    assert main(["plan", str(TINY), f"root={tmp_path / 'out'}"]) == 0
    assert not (tmp_path / "out").exists()
    assert len(plan(sweep)) == 12


def test_local_executor_cli_wait_and_relaunch(tmp_path, capsys):
    root = f"root={tmp_path / 'out'}"
    assert main(["launch", str(TINY), root, "tracking.enabled=false", "executor.options.max_workers=2",
                 "--wait", "--timeout", "120"]) == 0
    out = capsys.readouterr().out
    assert "submitted 12 of 12 runs" in out
    assert main(["launch", str(TINY), root, "tracking.enabled=false"]) == 0
    assert "submitted 0 of 12 runs" in capsys.readouterr().out
    assert main(["status", str(tmp_path / "out" / "smoke-local")]) == 0
    text = capsys.readouterr().out
    header, *rows = [line.split() for line in text.splitlines()[:3]]
    assert header == ["stage", "new", "pending", "running", "done", "failed", "blocked", "cancelled"]
    # the counts under the headers, not the headers: all done, none failed
    assert rows == [["tokenizer", "0", "0", "0", "4", "0", "0", "0"],
                    ["downstream", "0", "0", "0", "8", "0", "0", "0"]]
    st = status(tmp_path / "out" / "smoke-local")
    assert st.counts() == {"tokenizer": {"done": 4}, "downstream": {"done": 8}}
    assert main(["status", str(tmp_path / "out" / "smoke-local"), "--watch"]) == 0  # returns once nothing is active
    assert main(["cancel", str(tmp_path / "out" / "smoke-local")]) == 0
    assert "cancelled 0 jobs" in capsys.readouterr().out


def test_local_chain_failure_is_blocked(tmp_path):
    sweep = chain(tmp_path, executor="local")
    launch(sweep, code_version="t")
    st = wait(sweep.folder, timeout_s=120, poll_s=0.2)
    assert st.counts()["child"] == {"done": 2, "blocked": 2}
    assert st.counts()["grandchild"] == {"done": 2, "blocked": 2}


def test_local_cancel_then_relaunch_resumes(tmp_path):
    sweep = chain(tmp_path, executor="local", sleep=0.5, extra=["axes.fail=[false]"])
    launch(sweep, code_version="t")
    planned = plan(sweep, code_version="t")
    parent = next(p.run for p in planned if p.run.stage == "parent")
    state_file = sweep.folder / "runs" / parent.key / "smoke_state.json"
    deadline = time.time() + 60
    while not state_file.exists():  # first save after save_every=5 steps
        assert time.time() < deadline, "parent never saved state"
        time.sleep(0.1)
    assert {p.action for p in plan(sweep, code_version="t")} == {"wait"}
    assert parent.key in cancel(sweep.folder)
    st = wait(sweep.folder, timeout_s=60, poll_s=0.2)
    assert st.runs[parent.key].status == "cancelled"
    assert st.counts()["child"] == {"cancelled": 2}
    # cancelled runs are retried on the next launch and resume from their saved state
    again = launch(sweep, code_version="t")
    assert len(again.submitted) == 5
    wait(sweep.folder, timeout_s=120, poll_s=0.2)
    res = results(sweep.folder)[parent.key]
    assert res["value"] == expected(3, 8) and res["resumes"] == 1


@pytest.mark.parametrize("bad", ["no_such_dir"])
def test_status_of_missing_folder(tmp_path, bad, capsys):
    assert main(["status", str(tmp_path / bad)]) == 1
    assert "no ledger.json" in capsys.readouterr().err


def test_tracking_runs_created_before_submit_and_logged_by_the_worker(tmp_path):
    import sqlite3

    sweep = chain(tmp_path, extra=["tracking.enabled=true", "stages.child.config.steps=5"])
    launch(sweep, code_version="t")
    folder = sweep.folder
    assert read_json(folder / "tracking.json")
    db = sqlite3.connect(folder / "mlflow.db")
    statuses = dict(db.execute(
        "select t.value, r.status from runs r join tags t on t.run_uuid = r.run_uuid where t.key = 'vtp.run_key'"))
    st = status(folder)
    # one MLflow run per submitted run, closed by the worker with the run's outcome
    expect = {"done": "FINISHED", "failed": "FAILED", "blocked": "KILLED"}
    assert statuses == {k: expect[s.status] for k, s in st.runs.items()}
    n_metrics = db.execute("select count(*) from metrics where key = 'x_frac'").fetchone()[0]
    assert n_metrics == 2 * 2 + 2 * 2  # parents: 8 steps saved every 5 -> 2 each; children: 5 steps -> 1 each x 2 x 2


def test_launcher_killed_mid_submission_can_simply_be_run_again(tmp_path):
    """Killed after the first run was submitted AND recorded: the rest is submitted once."""
    from cluster.executors.debug import DebugExecutor

    class DiesAfterFirst(DebugExecutor):
        def submit(self, sweep_dir, runs, on_submitted, on_intent=None):
            super().submit(sweep_dir, runs[:1], on_submitted, on_intent)
            raise KeyboardInterrupt("launcher killed")

    sweep = load_sweep(TINY, [f"root={tmp_path}", "executor=debug", "tracking.enabled=false"])
    with pytest.raises(KeyboardInterrupt):
        launch(sweep, code_version="t", executor=DiesAfterFirst())
    first = next(iter(results(sweep.folder)))
    started = read_json(sweep.folder / "runs" / first / "state.json")["started"]
    again = launch(sweep, code_version="t")
    assert len(again.submitted) == 11 and first not in again.submitted
    assert read_json(sweep.folder / "runs" / first / "state.json")["started"] == started  # not rerun
    assert {p.action for p in plan(sweep, code_version="t")} == {"skip"}


def test_launcher_killed_after_queueing_but_before_the_ledger_write_submits_nothing_twice(tmp_path):
    """Killed where it hurts: the runs are queued (queue and job files written) but their job ids
    never reached the ledger. The next launch adopts them from the intent it finds there."""
    from cluster.executors.local import LocalExecutor

    def killed(ids):
        raise KeyboardInterrupt("launcher killed before the ledger write")

    class DiesBeforeLedger(LocalExecutor):
        def submit(self, sweep_dir, runs, on_submitted, on_intent=None):
            return super().submit(sweep_dir, runs, killed, on_intent)

    sweep = chain(tmp_path, executor="local", extra=["axes.fail=[false]"])
    with pytest.raises(KeyboardInterrupt):
        launch(sweep, code_version="t", executor=DiesBeforeLedger(sweep.profile))
    again = launch(sweep, code_version="t")
    assert again.submitted == ()  # adopted, not submitted a second time
    st = wait(sweep.folder, timeout_s=120, poll_s=0.2)
    assert {s.status for s in st.runs.values()} == {"done"}
    for key in st.runs:
        assert len(executions(sweep.folder, key)) == 1


def executions(folder: Path, key: str) -> list[dict]:
    path = folder / "runs" / key / "executions.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()
            and json.loads(line)["event"] == "start"] if path.exists() else []


def test_moving_a_sweep_to_another_executor_reruns_only_unfinished_runs(tmp_path):
    sweep = chain(tmp_path, extra=["axes.fail=[false]"])
    launch(sweep, code_version="t")  # debug: all done
    local = chain(tmp_path, executor="local", extra=["axes.fail=[false]"])
    assert {p.action for p in plan(local, code_version="t")} == {"skip"}
    assert launch(local, code_version="t").submitted == ()


def test_folder_command_prints_where_the_sweep_lives(tmp_path, capsys):
    assert main(["folder", str(TINY), f"root={tmp_path}"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "smoke-local")


def test_scheduler_killed_right_after_launch_is_replaced_by_the_next_launch(tmp_path):
    """A crash within the scheduler's start-up grace: the queued runs look pending, so the next
    launch submits nothing, and must still get them run (LocalExecutor.reattach)."""
    import subprocess

    sweep = chain(tmp_path, executor="local", sleep=0.2, extra=["axes.fail=[false]"])
    launch(sweep, code_version="t")
    folder = str(sweep.folder.resolve())
    deadline = time.time() + 30
    while subprocess.run(["pkill", "-KILL", "-f", f"cluster.executors.local {folder}"]).returncode != 0:
        assert time.time() < deadline, "the scheduler never showed up"
        time.sleep(0.02)
    subprocess.run(["pkill", "-KILL", "-f", f"vtp.jobs.worker {folder}"], check=False)
    again = launch(sweep, code_version="t")  # within the grace: nothing looks lost yet
    st = wait(sweep.folder, timeout_s=120, poll_s=0.2)
    assert {s.status for s in st.runs.values()} == {"done"}, (len(again.submitted), st.counts())
