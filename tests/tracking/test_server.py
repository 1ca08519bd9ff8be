"""Against a real `mlflow server` on 127.0.0.1 (one per module): 16 concurrent workers, an outage
mid-run, and a requeue that must land in the same run. The outage test runs last: it restarts
the server."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.tracking.helpers import records, start_worker, steps_logged, wait_all
from tests.tracking.test_concurrency_sqlite import POINTS, WORKERS, check_all_points
from vtp.tracking import open_run, prepare_sweep, sync

pytestmark = pytest.mark.mlflow_server


@pytest.mark.slow  # 16 processes each importing mlflow: ~1-2 min on 2 cores
def test_16_workers_server(mlflow_server, sweep_dir: Path):
    ids = prepare_sweep(sweep_dir, name="concurrent-server", uri=mlflow_server.uri, runs=records(WORKERS))
    results = wait_all([start_worker(sweep_dir, key, POINTS) for key in ids])
    for key, (rc, out, err) in zip(ids, results):
        assert rc == 0, f"{key}: exit {rc}\n{out}\n{err[-3000:]}"
        assert "Traceback" not in err, err[-3000:]
    check_all_points(sweep_dir, ids)


def test_requeue_logs_into_same_run_on_server(mlflow_server, sweep_dir: Path):
    from mlflow.tracking import MlflowClient

    runs = records(2)
    first = prepare_sweep(sweep_dir, name="requeue-server", uri=mlflow_server.uri, runs=runs)
    again = prepare_sweep(sweep_dir, name="requeue-server", uri=mlflow_server.uri, runs=runs)  # relaunch
    assert first == again
    for attempt in range(2):  # the job runs, is requeued, runs again
        tracker = open_run(sweep_dir, "run000")
        tracker.log_metrics({"loss": float(attempt)}, step=attempt)
        assert tracker.close("FINISHED" if attempt else "KILLED")
    client = MlflowClient(mlflow_server.uri)
    exp = client.get_experiment_by_name("requeue-server")
    found = client.search_runs([exp.experiment_id], filter_string="tags.`vtp.run_key` = 'run000'")
    assert [r.info.run_id for r in found] == [first["run000"]]
    assert steps_logged(mlflow_server.uri, first["run000"]) == [0, 1]
    assert found[0].info.status == "FINISHED"


def test_server_killed_mid_run_loses_nothing(mlflow_server, sweep_dir: Path):
    ids = prepare_sweep(sweep_dir, name="outage", uri=mlflow_server.uri, runs=records(2))
    ready = {k: sweep_dir / f"{k}.ready" for k in ids}
    go = sweep_dir / "go"
    procs = [
        start_worker(sweep_dir, k, POINTS, "--flush-every", "50", "--pause-at", "200",
                     "--ready-file", str(ready[k]), "--go-file", str(go), "--allow-unsynced")
        for k in ids
    ]  # fmt: skip
    deadline = time.monotonic() + 300
    while not all(p.exists() for p in ready.values()):
        assert time.monotonic() < deadline, "workers never reached the pause point"
        assert all(p.poll() is None for p in procs), wait_all(procs)
        time.sleep(0.1)
    mlflow_server.kill()  # the first 200 points are in; the other 300 are logged with no server
    go.write_text("go")
    results = wait_all(procs, timeout_s=200)
    for rc, out, err in results:
        assert rc == 0, f"exit {rc}\n{out}\n{err[-3000:]}"
        assert "synced=False" in out  # close() could not reach the server, and said so
    mlflow_server.restart()
    assert sync(sweep_dir) == {}
    for key, run_id in ids.items():
        assert steps_logged(mlflow_server.uri, run_id) == list(range(POINTS)), key


def test_export_round_trip_server(mlflow_server, sweep_dir: Path, tmp_path: Path):
    from tests.tracking.test_export import _sweep, check_snapshot
    from vtp.tracking.export import export_snapshot

    ids = _sweep(sweep_dir, mlflow_server.uri)
    check_snapshot(export_snapshot(sweep_dir, tmp_path / "runs.parquet"), ids)
