"""Where the engine meets vtp.tracking (MLflow): all calls in one place, MLflow imported lazily.

Launcher: `prepare_tracking` before submitting (and `tracker_target`, the opener each run's
config.json names for its worker), `tag_job_ids` after, `reconcile_tracking` when jobs have ended
without their worker closing their MLflow run, `sync_tracking` to replay what workers buffered
while the store was away. The worker side is `vtp.jobs.worker.open_tracker`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from vtp.jobs.ledger import read_json, run_dir, write_json
from vtp.sweep.runs import Run
from vtp.sweep.spec import Sweep
from vtp.sweep.status import SweepStatus

# Called by the worker as fn(sweep_dir, key) -> Tracker (see vtp.jobs.worker): a name, not an
# import, so the job contract below knows nothing of MLflow.
TRACKER_TARGET = "vtp.tracking:open_run"


def tracker_target(sweep: Sweep) -> str | None:
    """What each run's worker opens to log: the MLflow run prepared for it, or nothing."""
    return TRACKER_TARGET if sweep.spec.tracking.enabled else None


def prepare_tracking(sweep: Sweep, sweep_dir: Path, runs: Sequence[Run]) -> None:
    """Create the MLflow runs before submitting (idempotent; found again by run key). Workers then
    log into them (vtp.jobs.worker.open_tracker, through `tracker_target`). Skipped when `tracking.enabled: false`."""
    if not sweep.spec.tracking.enabled or not runs:
        return
    from vtp.tracking import RunRecord, prepare_sweep  # MLflow is only imported when tracking is on

    records = [RunRecord(key=r.key, stage=r.stage, axes=dict(r.axes), parents=tuple(r.ancestors.values()),
                         config=dict(r.config), code_version=r.code_version, checkpoint=r.checkpoint, root=r.root)
               for r in runs]
    prepare_sweep(sweep_dir, name=sweep.spec.tracking.experiment or sweep.spec.name, uri=sweep.spec.tracking.uri,
                  runs=records)


def reconcile_tracking(st: SweepStatus) -> None:
    """Close the MLflow runs of jobs that ended without their worker closing them: blocked children,
    cancelled, timed-out, killed or lost jobs. Remembered in `tracking_closed.json` (sent once)."""
    folder = st.sweep_dir
    if not (folder / "tracking.json").exists():
        return
    closed = set(read_json(folder / "tracking_closed.json", []))
    verdicts: dict[str, list[str]] = {"KILLED": [], "FAILED": []}
    for key, s in st.runs.items():
        marker = read_json(run_dir(folder, key) / "state.json")
        attempt = f"{key}:{s.job_id}"
        refused = isinstance(marker, dict) and marker.get("failure") == "stale_code"  # never opened it
        if (marker is not None and not refused) or attempt in closed or not s.job_id:
            continue  # the worker closed it itself, or it was never submitted
        if s.status in ("blocked", "cancelled"):
            verdicts["KILLED"].append(key)
        elif s.status == "failed":
            verdicts["FAILED"].append(key)
        else:
            continue
        closed.add(attempt)
    for status_, keys in verdicts.items():
        tracking_verdict(folder, keys, status_)
    if verdicts["KILLED"] or verdicts["FAILED"]:
        write_json(folder / "tracking_closed.json", sorted(closed))


def tag_job_ids(sweep_dir: Path, job_ids: Mapping[str, str]) -> None:
    """Tag each MLflow run with its scheduler job id (SLURM only): appended to each run's buffer
    with tracking.json read once; the worker's first flush (or `sync`) sends it."""
    if not job_ids or not (Path(sweep_dir) / "tracking.json").exists():
        return
    from vtp.tracking import set_job_ids

    try:
        set_job_ids(sweep_dir, job_ids)
    except Exception:  # noqa: BLE001 -- a tag only; the launch must not fail on it
        pass


def sync_tracking(sweep_dir: Path) -> dict[str, int]:
    """Replay every run's buffered points into MLflow (after an outage). key -> items still
    unsent; {} when all arrived or tracking is off. Never raises: the store may still be away."""
    if not (Path(sweep_dir) / "tracking.json").exists():
        return {}
    from vtp.tracking import sync

    try:
        return sync(sweep_dir, wait_s=2.0)
    except Exception:  # noqa: BLE001 -- the points stay on disk for the next sync or `export`
        return {"?": -1}


def tracking_verdict(sweep_dir: Path, keys: Sequence[str], status: str) -> None:
    """Tell MLflow about runs whose job ended without the worker closing them (e.g. cancelled)."""
    if not keys or not (Path(sweep_dir) / "tracking.json").exists():
        return
    from vtp.tracking import set_status

    for key in keys:
        try:
            set_status(sweep_dir, key, status)
        except Exception:  # noqa: BLE001 -- kept in the run's buffer; `sync` sends it later
            pass
