"""cluster.slurm_query on recorded sacct text (no cluster needed).

data/sacct_recorded.txt and data/sacct_pending_array.txt were recorded from the localhost test
cluster (cluster/slurm/start.sh, MaxArraySize=5, 2 stand-in GPUs) with
`sacct -a --parsable2 --noheader --duplicates --format=<SACCT_FIELDS>` after: a job that succeeds
(1), one that exits 3 (2), a 3 s job on 2 GPUs (3), a job cancelled while running (4), an array
0-4%1 (5), a 1-GPU job requeued with `scontrol requeue` after 10 s that then ran 40 s (6), an
array 0-3 (11). data/sacct_failures_handwritten.txt holds states this cluster cannot produce
(timeout after 1 min, out of memory, node failure, preemption), written in the same format.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cluster import slurm_query as sq
from vtp.jobs.states import retryable

DATA = Path(__file__).parent / "data"


def _parse(name: str) -> dict[str, sq.JobInfo]:
    return sq.parse_sacct((DATA / name).read_text())


def test_recorded_jobs_states_and_classes():
    jobs = _parse("sacct_recorded.txt")
    assert sorted(jobs) == sorted(["1", "2", "3", "4", "6", "5_0", "5_1", "5_2", "5_3", "5_4",
                                   "11_0", "11_1", "11_2", "11_3"])
    assert jobs["1"].succeeded and jobs["1"].failure is None and jobs["1"].exit_code == 0
    assert (jobs["2"].state, jobs["2"].exit_code, jobs["2"].failure) == ("FAILED", 3, "error")
    assert not jobs["2"].retryable
    assert (jobs["4"].state, jobs["4"].failure) == ("CANCELLED", "cancelled")  # "CANCELLED by 0"
    assert jobs["4"].step_states == ("CANCELLED",)
    assert jobs["5_4"].active and jobs["5_4"].failure is None and jobs["5_4"].state == "RUNNING"
    assert [jobs[f"5_{i}"].state for i in range(4)] == ["COMPLETED"] * 4
    assert jobs["11_0"].succeeded
    assert [jobs[f"11_{i}"].state for i in (1, 2, 3)] == ["PENDING"] * 3


def test_requeued_job_keeps_its_latest_attempt_and_counts_the_earlier_one():
    job = _parse("sacct_recorded.txt")["6"]
    assert job.state == "COMPLETED" and job.succeeded
    assert job.previous_states == ("REQUEUED",) and job.requeues == 1
    assert job.step_states == ("COMPLETED",)  # the first attempt's CANCELLED batch step is not its
    assert job.elapsed_s == 40 and job.gpus == 1
    assert job.gpu_seconds == 1 * 10 + 1 * 40  # both attempts held the GPU


def test_gpu_hours_over_every_attempt():
    jobs = _parse("sacct_recorded.txt")
    # job 3: 2 GPUs x 3 s; job 6: 1 GPU x (10 s + 40 s); everything else ran without GPUs.
    assert sq.gpu_hours(jobs.values()) == pytest.approx((2 * 3 + 50) / 3600)
    assert sq.gpu_hours([]) == 0.0


def test_pending_array_summary_does_not_hide_a_task_that_already_runs():
    jobs = _parse("sacct_pending_array.txt")
    assert jobs["5_0"].state == "RUNNING"  # the summary line '5_[0-4%1]' still names task 0
    assert [jobs[f"5_{i}"].state for i in (1, 2, 3, 4)] == ["PENDING"] * 4
    assert jobs["6"].active and jobs["6"].gpus == 1


def test_failure_classes_of_states_the_test_cluster_cannot_produce():
    jobs = _parse("sacct_failures_handwritten.txt")
    classes = {k: (j.failure, j.retryable) for k, j in jobs.items()}
    assert classes == {
        "20": ("timeout", False),
        "21": ("out_of_memory", False),
        "22": ("out_of_memory", False),  # job FAILED, but its batch step ran out of memory
        "23": ("node_failure", True),
        "24_3": (None, False),           # preempted once, pending again
        "25": ("node_failure", True),
        "26": ("cancelled", True),     # retried by the launcher: one retry table (vtp.jobs.states)
    }
    assert jobs["20"].elapsed_s == 67 and jobs["20"].reason == "TimeLimit"
    assert jobs["21"].elapsed_s == 26 * 3600 + 3 * 60 + 4 and jobs["21"].signal == 125
    assert jobs["22"].gpus == 2  # typed gres/gpu:a100=2
    assert jobs["24_3"].previous_states == ("PREEMPTED",) and jobs["24_3"].gpu_seconds == 7200


@pytest.mark.parametrize("state, cls", [
    ("COMPLETED", None), ("RUNNING", None), ("PENDING", None), ("REQUEUED", None),
    ("TIMEOUT", "timeout"), ("DEADLINE", "timeout"), ("OUT_OF_MEMORY", "out_of_memory"),
    ("NODE_FAIL", "node_failure"), ("BOOT_FAIL", "node_failure"), ("PREEMPTED", "preempted"),
    ("FAILED", "error"), ("CANCELLED by 1234", "cancelled"), ("SOMETHING_NEW", "error"),
])
def test_classify(state, cls):
    assert sq.classify(state) == cls
    # one retry table: what the launcher retries (vtp.jobs.states) is what slurm_query calls retryable
    assert (cls in sq.RETRYABLE_BY_DEFAULT) == retryable(cls, False)


@pytest.mark.parametrize("text, seconds", [
    ("00:00:00", 0), ("00:01:07", 67), ("1-02:03:04", 93784), ("05:07.123", 307), ("", 0),
    ("INVALID", 0),
])
def test_parse_elapsed(text, seconds):
    assert sq.parse_elapsed(text) == seconds


def test_expand_array_id():
    assert sq.expand_array_id("12_[1,3-5%2]") == ["12_1", "12_3", "12_4", "12_5"]
    assert sq.expand_array_id("7_[0-8:4]") == ["7_0", "7_4", "7_8"]
    assert sq.expand_array_id("7_3") == ["7_3"]


def test_parse_sacct_rejects_a_line_with_the_wrong_field_count():
    with pytest.raises(ValueError, match="3 fields, expected 8"):
        sq.parse_sacct("1|COMPLETED|0:0\n")


def test_max_array_size_from_recorded_config():
    assert sq.parse_max_array_size((DATA / "scontrol_show_config.txt").read_text()) == 5
    with pytest.raises(ValueError, match="MaxArraySize"):
        sq.parse_max_array_size("ClusterName = x\n")


def _fake_command(bin_dir: Path, name: str, body: str) -> Path:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def test_job_states_asks_sacct_once_for_all_ids(tmp_path, monkeypatch):
    # A stand-in sacct (the only faked boundary): logs each call, answers with the recorded text.
    calls = tmp_path / "calls.txt"
    _fake_command(tmp_path, "sacct",
                  f'echo "$@" >> {calls}\ncat {DATA / "sacct_recorded.txt"}\n')
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    infos = sq.job_states(["1", "2", "6", "5_4", "2"])
    lines = calls.read_text().splitlines()
    assert len(lines) == 1
    assert "--parsable2" in lines[0] and "--duplicates" in lines[0]
    assert lines[0].endswith("-j 1,2,6,5_4")  # deduplicated, order kept
    assert infos["6"].requeues == 1


def test_failing_sacct_raises_with_its_message(tmp_path, monkeypatch):
    _fake_command(tmp_path, "sacct", 'echo "sacct: error: Problem talking to the database" >&2\nexit 1\n')
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(sq.time, "sleep", lambda s: None)
    with pytest.raises(sq.SlurmCommandError, match="Problem talking to the database"):
        sq.job_states(["1"])


def test_cancel_ignores_jobs_that_already_ended(tmp_path, monkeypatch):
    _fake_command(tmp_path, "scancel",
                  'echo "scancel: error: Kill job error on job id 5: Job/step already completing or completed" >&2\nexit 1\n')
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    sq.cancel(["5"])
    _fake_command(tmp_path, "scancel", 'echo "scancel: error: Access/permission denied" >&2\nexit 1\n')
    with pytest.raises(sq.SlurmCommandError, match="permission denied"):
        sq.cancel(["5"])
