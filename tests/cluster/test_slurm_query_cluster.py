"""cluster.slurm_query against the real localhost cluster, with jobs submitted by submitit."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from cluster import slurm_query as sq
from tests.plugins.slurm import result_within

pytestmark = pytest.mark.slurm
submitit = pytest.importorskip("submitit")


def _executor(folder: Path, **params):
    executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
    executor.update_parameters(slurm_partition="debug", cpus_per_task=1, mem_gb=1, timeout_min=5, **params)
    return executor


def _accounted(job_ids: list[str], *, until, timeout_s: float = 60) -> dict[str, sq.JobInfo]:
    """Poll job_states until `until(infos)` holds: accounting lags the controller by a moment."""
    deadline = time.monotonic() + timeout_s
    while True:
        infos = sq.job_states(job_ids)
        if all(j in infos for j in job_ids) and until(infos):
            return infos
        if time.monotonic() > deadline:
            pytest.fail(f"sacct never showed the expected states: {infos}", pytrace=False)
        time.sleep(1)


def _square(x: int) -> int:
    return x * x


def _boom() -> None:
    raise ValueError("boom on purpose")


def test_max_array_size_is_the_test_clusters(slurm_cluster):
    assert sq.max_array_size() == slurm_cluster.max_array_size == 5


def test_single_job_array_and_failure_in_one_batched_query(slurm_cluster, tmp_path):
    single = _executor(tmp_path, gpus_per_node=1).submit(_square, 7)
    array = _executor(tmp_path).map_array(_square, [1, 2, 3, 4])  # 4 tasks: within MaxArraySize=5
    failing = _executor(tmp_path).submit(_boom)

    assert result_within(single, 180) == 49
    assert [result_within(j, 180) for j in array] == [1, 4, 9, 16]
    with pytest.raises(submitit.core.utils.FailedJobError, match="boom on purpose"):
        result_within(failing, 180)

    ids = [single.job_id, failing.job_id, *(j.job_id for j in array)]
    assert all("_" in j.job_id for j in array)  # array tasks: '<array id>_<index>'
    infos = _accounted(ids, until=lambda i: not any(x.active for x in i.values()))
    assert [infos[j.job_id].state for j in array] == ["COMPLETED"] * 4
    assert infos[single.job_id].succeeded and infos[single.job_id].gpus == 1
    assert sq.gpu_hours([infos[single.job_id]]) == pytest.approx(infos[single.job_id].elapsed_s / 3600)
    bad = infos[failing.job_id]
    assert (bad.state, bad.failure, bad.retryable) == ("FAILED", "error", False)
    assert bad.exit_code != 0


def test_cancel_running_job_is_classified_cancelled(slurm_cluster, tmp_path):
    job = _executor(tmp_path).submit(time.sleep, 300)
    _accounted([job.job_id], until=lambda i: i[job.job_id].state == "RUNNING", timeout_s=120)
    sq.cancel([job.job_id])
    info = _accounted([job.job_id], until=lambda i: not i[job.job_id].active)[job.job_id]
    assert (info.state, info.failure) == ("CANCELLED", "cancelled")
    sq.cancel([job.job_id])  # cancelling a finished job again is not an error


class CountTo(submitit.helpers.Checkpointable):
    """Counts to n, one step every `pause_s`, saving progress to a file: a requeued attempt resumes."""

    def __init__(self, n: int, state_file: str, pause_s: float = 0.5) -> None:
        self.n, self.state_file, self.pause_s = n, state_file, pause_s

    def __call__(self) -> list[int]:
        path = Path(self.state_file)
        state = json.loads(path.read_text()) if path.exists() else {"done": [], "starts": []}
        state["starts"].append(len(state["done"]))
        path.write_text(json.dumps(state))
        for i in range(len(state["done"]), self.n):
            time.sleep(self.pause_s)
            state["done"].append(i * i)
            path.write_text(json.dumps(state))
        return state["done"]


def test_checkpointable_job_requeued_resumes_and_is_counted(slurm_cluster, tmp_path):
    state_file = tmp_path / "progress.json"
    job = _executor(tmp_path).submit(CountTo(24, str(state_file)))
    deadline = time.monotonic() + 120
    while not (state_file.exists() and len(json.loads(state_file.read_text())["done"]) >= 4):
        assert time.monotonic() < deadline, "the job never made progress"
        time.sleep(0.5)
    sq.requeue(job.job_id)

    assert result_within(job, 240) == [i * i for i in range(24)]  # same as an uninterrupted run
    starts = json.loads(state_file.read_text())["starts"]
    assert len(starts) == 2 and starts[0] == 0 and starts[1] >= 4  # the second attempt resumed
    info = _accounted([job.job_id], until=lambda i: i[job.job_id].succeeded)[job.job_id]
    assert info.previous_states == ("REQUEUED",) and info.requeues == 1
