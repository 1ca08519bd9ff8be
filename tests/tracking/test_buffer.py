"""The buffer's promises on a SQLite store: resume into one run, exactly-once replay, status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.tracking.helpers import records, steps_logged
from vtp.tracking import TrackingError, open_run, prepare_sweep, set_job_id, set_status, sync
from vtp.tracking.buffer import buffer_dir
from vtp.tracking.records import flatten, params_of, tags_of
from vtp.tracking.store import read_tracking


def test_flatten_and_tags_are_mlflow_safe():
    r = records(1)[0]
    assert flatten({"a": {"b": {"c": 1}}, "d": [1, 2], "e": {}}) == {"a.b.c": 1, "d": [1, 2], "e": {}}
    params = params_of(type(r)(key="k", stage="s", config={"x": "y" * 7000, "lr": 1e-3, "on": True}))
    assert len(params["x"]) == 6000 and params["x"].endswith("...[truncated]")
    assert params["lr"] == "0.001" and params["on"] == "true"
    tags = tags_of(r, sweep="sw")
    assert tags["vtp.run_key"] == "run000" and tags["vtp.axis.compute"] == "1" and "vtp.checkpoint" not in tags
    assert json.loads(tags["vtp.axes"]) == {"objective": "ae", "params": "S", "compute": 1}


def test_prepare_is_idempotent_and_requeue_resumes_one_run(sweep_dir: Path):
    from mlflow.tracking import MlflowClient

    runs = records(3)
    ids = prepare_sweep(sweep_dir, name="resume", uri=None, runs=runs)
    (sweep_dir / "tracking.json").unlink()  # even without tracking.json the store's tags are found
    assert prepare_sweep(sweep_dir, name="resume", uri=None, runs=runs) == ids
    more = prepare_sweep(sweep_dir, name="resume", uri=None, runs=records(4))  # sweep grew by one
    assert {k: more[k] for k in ids} == ids and len(more) == 4
    for attempt in range(2):  # killed once, requeued
        t = open_run(sweep_dir, "run001")
        t.log_metrics({"loss": 1.0}, step=attempt)
        assert t.close("KILLED" if attempt == 0 else "FINISHED")
    client = MlflowClient(read_tracking(sweep_dir).uri)
    exp = client.get_experiment_by_name("resume")
    all_runs = client.search_runs([exp.experiment_id])
    assert len(all_runs) == 4 + 1  # one per key plus the sweep's parent run
    assert steps_logged(read_tracking(sweep_dir).uri, ids["run001"]) == [0, 1]
    assert client.get_run(ids["run001"]).info.status == "FINISHED"
    assert client.get_run(ids["run002"]).info.status == "SCHEDULED"
    assert client.get_run(ids["run002"]).data.tags["mlflow.parentRunId"] == read_tracking(sweep_dir).parent_run_id


def test_uncertain_batch_is_not_duplicated(sweep_dir: Path):
    """A batch stored but never acknowledged (crash between log_batch and synced.json) is replayed
    without doubling its points."""
    ids = prepare_sweep(sweep_dir, name="replay", uri=None, runs=records(1))
    t = open_run(sweep_dir, "run000", flush_every=10**9)
    for step in range(30):
        t.log_metrics({"loss": 0.5, "acc": float(step)}, step=step)
    assert t.flush()
    folder = buffer_dir(sweep_dir, "run000")
    stop = json.loads((folder / "synced.json").read_text())
    (folder / "synced.json").write_text(json.dumps({"offset": 0, "skip": 0}))  # as if never acknowledged
    (folder / "inflight.json").write_text(json.dumps({"start": [0, 0], "end": [stop["offset"], stop["skip"]]}))
    t.log_metrics({"loss": 0.25}, step=30)
    assert t.close("FINISHED")
    uri = read_tracking(sweep_dir).uri
    assert steps_logged(uri, ids["run000"], "loss") == list(range(31))
    assert steps_logged(uri, ids["run000"], "acc") == list(range(30))


def test_launcher_status_job_id_and_sync(sweep_dir: Path):
    from mlflow.tracking import MlflowClient

    ids = prepare_sweep(sweep_dir, name="status", uri=None, runs=records(2))
    assert set_job_id(sweep_dir, "run000", "4242_3")
    assert set_status(sweep_dir, "run000", "KILLED")
    client = MlflowClient(read_tracking(sweep_dir).uri)
    run = client.get_run(ids["run000"])
    assert run.info.status == "KILLED" and run.data.tags["vtp.job_id"] == "4242_3"
    assert sync(sweep_dir) == {}
    with pytest.raises(ValueError, match="RUNNING"):
        set_status(sweep_dir, "run000", "RUNNING")
    with pytest.raises(TrackingError, match="no run key 'nope'"):
        open_run(sweep_dir, "nope")


def test_unreachable_server_keeps_points_on_disk(sweep_dir: Path):
    """Nothing listens on the URI: logging goes on, close() says unsynced, the buffer holds all."""
    from vtp.tracking.store import SweepTracking, write_tracking

    sweep_dir.mkdir()
    write_tracking(sweep_dir, SweepTracking("http://127.0.0.1:9", "1", "p", "s", {"k": "r"}))
    t = open_run(sweep_dir, "k", flush_every=5)
    for step in range(20):
        t.log_metrics({"loss": 1.0}, step=step)
    assert not t.close("FINISHED")
    assert t.buffer.pending() == 20 + 2  # 20 points, RUNNING and FINISHED
    assert sync(sweep_dir, wait_s=0) == {"k": 22}
