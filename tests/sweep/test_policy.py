"""Plan actions from the scheduler's word and the retry policy per failure class (a fake boundary:
the executor's state query; everything else is the real planner on a real ledger)."""

from pathlib import Path

import pytest

from vtp.jobs.ledger import write_json, write_ledger
from vtp.jobs.states import JobState
from vtp.sweep.planner import plan
from vtp.sweep.spec import load_sweep

TINY = Path(__file__).resolve().parents[2] / "sweeps" / "smoke_local.yaml"


def setup(tmp_path, parent_job: JobState):
    sweep = load_sweep(TINY, [f"root={tmp_path}", "axes.size=[1]", "axes.seed=[0]"])
    runs = [p.run for p in plan(sweep, code_version="t")]
    entries = {r.key: {"stage": r.stage, "parent": r.parent, "job_id": f"1_{i}", "submitted": 0}
               for i, r in enumerate(runs)}
    write_ledger(sweep.folder, {"executor": {"kind": "debug"}, "runs": entries})
    tok = runs[0]

    def states(folder, jobs):
        return {k: parent_job if k == tok.key else JobState("pending") for k in jobs}

    return sweep, tok, states


@pytest.mark.parametrize("job, retry_failed, action, child", [
    (JobState("running"), False, "wait", "wait"),
    (JobState("pending"), False, "wait", "wait"),
    (JobState("unknown"), False, "wait", "wait"),  # sacct away: never resubmit blindly
    (JobState("failed", "preempted"), False, "run", "wait"),
    (JobState("failed", "node_failure"), False, "run", "wait"),
    (JobState("failed", "timeout"), False, "failed", "wait"),
    (JobState("failed", "timeout"), True, "run", "wait"),
    (JobState("failed", "out_of_memory"), False, "failed", "wait"),
    (JobState("completed"), False, "run", "wait"),  # completed without a marker: lost, rerun
])
def test_actions_follow_the_scheduler_and_the_policy(tmp_path, job, retry_failed, action, child):
    sweep, tok, states = setup(tmp_path, job)
    actions = [p.action for p in plan(sweep, code_version="t", job_states=states, retry_failed=retry_failed)]
    assert actions[0] == action and set(actions[1:]) == {child}


def test_marker_wins_and_children_of_a_failed_run_are_blocked(tmp_path):
    sweep, tok, states = setup(tmp_path, JobState("failed", "error"))
    write_json(sweep.folder / "runs" / tok.key / "state.json", {"status": "failed", "failure": "error"})
    downstream = lambda s: [p.action for p in plan(sweep, code_version="t", job_states=s)]  # noqa: E731
    no_children = lambda folder, jobs: {k: JobState("failed", "dependency") for k in jobs}  # noqa: E731
    assert downstream(no_children) == ["failed", "blocked", "blocked"]
    write_json(sweep.folder / "runs" / tok.key / "state.json", {"status": "done"})
    assert downstream(no_children) == ["skip", "run", "run"]  # dependency failures are retried
