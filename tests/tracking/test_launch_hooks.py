"""What the launcher asks of tracking at scale: job ids tagged with tracking.json read once per
launch (not once per run: quadratic), and tracking.json written durably."""

import os

from tests.tracking.helpers import records
from vtp.sweep.hooks import tag_job_ids
from vtp.tracking import prepare_sweep, store, sync
from vtp.tracking import run as run_module


def test_tag_job_ids_reads_tracking_json_once_per_launch(sweep_dir, monkeypatch):
    prepare_sweep(sweep_dir, name="tags", uri=None, runs=records(30))
    reads = []
    real = store.read_tracking

    def counted(folder):
        reads.append(folder)
        return real(folder)

    monkeypatch.setattr(run_module, "read_tracking", counted)
    tag_job_ids(sweep_dir, {f"run{i:03d}": f"{100 + i}_0" for i in range(30)})
    assert len(reads) == 1
    monkeypatch.undo()
    assert sync(sweep_dir) == {}
    from mlflow.tracking import MlflowClient

    tracking = store.read_tracking(sweep_dir)
    tags = MlflowClient(tracking.uri).get_run(tracking.runs["run007"]).data.tags
    assert tags["vtp.job_id"] == "107_0"


def test_tracking_json_is_fsynced_before_it_replaces_the_old_one(sweep_dir, monkeypatch):
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")), real(fd)))
    sweep_dir.mkdir()
    store.write_tracking(sweep_dir, store.SweepTracking("sqlite:///x", "1", "p", "s", {"k": "r"}))
    assert any(".tmp" in path and "tracking" in path for path in synced), synced
