"""16 worker processes log into one SQLite store at once: nothing lost, nothing doubled, no error."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tracking.helpers import records, start_worker, steps_logged, wait_all
from vtp.tracking import prepare_sweep
from vtp.tracking.store import read_tracking

WORKERS, POINTS = 16, 500


def check_all_points(sweep_dir: Path, ids: dict[str, str]) -> None:
    from mlflow.tracking import MlflowClient

    uri = read_tracking(sweep_dir).uri
    total = 0
    for key, run_id in ids.items():
        steps = steps_logged(uri, run_id)
        assert steps == list(range(POINTS)), f"{key}: {len(steps)} points, {len(set(steps))} distinct"
        total += len(steps)
        assert MlflowClient(uri).get_run(run_id).info.status == "FINISHED"
        assert not (sweep_dir / "tracking" / key / "rejected.jsonl").exists()
    assert total == WORKERS * POINTS


@pytest.mark.slow  # 16 processes each importing mlflow: ~1-2 min on 2 cores
def test_16_workers_sqlite(sweep_dir: Path):
    ids = prepare_sweep(sweep_dir, name="concurrent", uri=None, runs=records(WORKERS))
    procs = [start_worker(sweep_dir, key, POINTS) for key in ids]
    results = wait_all(procs)
    for key, (rc, out, err) in zip(ids, results):
        assert rc == 0, f"{key}: exit {rc}\n{out}\n{err[-3000:]}"
        assert "Traceback" not in err, err[-3000:]
    check_all_points(sweep_dir, ids)
