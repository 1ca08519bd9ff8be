"""Every sweep run in MLflow: created up front by the launcher, logged through an on-disk buffer
by the worker, exported to a Parquet snapshot for analysis. No torch here."""

from vtp.tracking.prepare import prepare_sweep
from vtp.tracking.records import RunRecord
from vtp.tracking.run import RunTracker, open_run, pending, set_job_id, set_job_ids, set_status, sync
from vtp.tracking.store import TrackingError

# What a worker's tracker imports when it first flushes (MLflow's client and its SQL store: ~3 s on
# 2 cores); a warm local scheduler imports these once (cluster.executors.local.preload_modules).
PRELOAD = ("mlflow.tracking", "mlflow.entities", "mlflow.store.tracking.sqlalchemy_store", "mlflow.store.db.utils",
           "alembic.command", "alembic.migration")


def start_server(sweep_dir, port=None, **options):  # noqa: ANN001, ANN201 -- see vtp.tracking.server
    """`vtp.tracking.server.start_server`, imported on use so `python -m vtp.tracking.server`
    does not find its module already imported by this package."""
    from vtp.tracking.server import start_server as start

    return start(sweep_dir, port, **options)


__all__ = [
    "RunRecord",
    "RunTracker",
    "TrackingError",
    "open_run",
    "pending",
    "prepare_sweep",
    "set_job_id",
    "set_job_ids",
    "set_status",
    "start_server",
    "sync",
]
