"""A versioned Parquet snapshot of a sweep's runs, so analysis never needs a live MLflow.

    export_snapshot("out/compute", "runs.parquet")   # -> runs.parquet + runs.curves.parquet

Run table: one row per run (`run_key, stage, status, sweep, root_key, checkpoint, run_id`,
`axis.<name>`, `param.<flat.key>`, `metric.<name>` = last value, `tag.<name>`), key-value metadata
`vtp_snapshot_version=1`. Curves: one row per logged point (`run_key, metric, step, value`).

A SQLite store is read with plain SQL (read-only): `search_runs` takes minutes for tens of
thousands of runs, four SELECTs take seconds. A server is read through its REST API, page by page.

Nothing missing, nothing doubled. Exporting a sweep folder first replays the runs' offline buffers
(`sync`); when points are still unsent (the store is away), it refuses with their count rather than
write a snapshot without them (`allow_unsent=True` writes it anyway and records the count in the
metadata). One run key is one row: should the store hold several runs with one key, the one
tracking.json names wins (else the one with most points). One (run, metric, step) is one curve
point: a resumed run logs again the steps between its last checkpoint and the interruption, and
the last value logged for a step is kept.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vtp.tracking import records as rec
from vtp.tracking.store import TRACKING_FILE, TrackingError, is_http, read_tracking

SNAPSHOT_VERSION = "1"


class UnsentPoints(TrackingError):
    """Tracked points are still in runs' offline buffers; the message has the count and the fix."""


@dataclass
class _Run:
    run_id: str
    status: str
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


def _source(source: str | Path) -> tuple[str, str | None]:
    """(tracking URI, experiment id or None for all experiments)."""
    text = str(source)
    if "://" in text:
        return text, None
    folder = Path(source)
    if not (folder / TRACKING_FILE).exists():
        raise TrackingError(f"{folder}: not a sweep folder (no {TRACKING_FILE}) and not a tracking URI")
    tracking = read_tracking(folder)
    return tracking.uri, tracking.experiment_id


# --- reading a SQLite store ------------------------------------------------------------
def _sqlite_path(uri: str) -> Path:
    path = Path(uri.removeprefix("sqlite:///"))  # sqlite:////abs/path -> /abs/path
    if not path.exists():
        raise TrackingError(f"{uri}: no such SQLite store")
    return path


def _read_sqlite(uri: str, experiment_id: str | None) -> tuple[list[_Run], list[tuple[str, str, int, float]]]:
    db = sqlite3.connect(f"file:{_sqlite_path(uri)}?mode=ro", uri=True, timeout=60)
    try:
        where = "r.lifecycle_stage = 'active' AND EXISTS (SELECT 1 FROM tags k WHERE k.run_uuid = r.run_uuid AND k.key = ?)"
        args: list[Any] = [rec.TAG_RUN_KEY]
        if experiment_id is not None:
            where += " AND r.experiment_id = ?"
            args.append(int(experiment_id))
        db.execute(f"CREATE TEMP TABLE sel AS SELECT r.run_uuid AS id, r.status FROM runs r WHERE {where}", args)
        runs = {rid: _Run(rid, status) for rid, status in db.execute("SELECT id, status FROM sel")}
        for table, attr in (("tags", "tags"), ("params", "params")):
            for rid, key, value in db.execute(f"SELECT t.run_uuid, t.key, t.value FROM {table} t JOIN sel ON sel.id = t.run_uuid"):
                getattr(runs[rid], attr)[key] = value
        q = "SELECT m.run_uuid, m.key, m.value, m.is_nan FROM latest_metrics m JOIN sel ON sel.id = m.run_uuid"
        for rid, key, value, is_nan in db.execute(q):
            runs[rid].metrics[key] = math.nan if is_nan else value
        q = (
            "SELECT m.run_uuid, m.key, m.step, m.value, m.is_nan FROM metrics m JOIN sel ON sel.id = m.run_uuid "
            "ORDER BY m.run_uuid, m.key, m.step, m.timestamp"
        )
        curves = [(rid, key, step, math.nan if is_nan else value) for rid, key, step, value, is_nan in db.execute(q)]
    finally:
        db.close()
    return list(runs.values()), curves


# --- reading a server --------------------------------------------------------------------
def _read_server(uri: str, experiment_id: str | None) -> tuple[list[_Run], list[tuple[str, str, int, float]]]:
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    c = MlflowClient(uri)
    if experiment_id is None:
        experiment_ids = [e.experiment_id for e in c.search_experiments(view_type=ViewType.ACTIVE_ONLY)]
    else:
        experiment_ids = [experiment_id]
    runs: list[_Run] = []
    token = None
    while experiment_ids:
        page = c.search_runs(experiment_ids, max_results=1000, page_token=token)
        for r in page:
            if rec.TAG_RUN_KEY in r.data.tags:
                runs.append(_Run(r.info.run_id, r.info.status, r.data.tags, r.data.params, r.data.metrics))
        token = page.token
        if not token:
            break
    curves = [
        (run.run_id, name, m.step, m.value)
        for run in runs
        for name in sorted(run.metrics)
        for m in sorted(c.get_metric_history(run.run_id, name), key=lambda m: (m.step, m.timestamp))
    ]
    return runs, curves


# --- building the tables -----------------------------------------------------------------
def _decode(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _column(values: list[Any]) -> Any:
    """A typed Arrow column: int64, float64 or bool when every present value is one, else string."""
    import pyarrow as pa

    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return pa.array(values, pa.bool_())
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return pa.array(values, pa.int64())
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return pa.array([None if v is None else float(v) for v in values], pa.float64())
    return pa.array([None if v is None else (v if isinstance(v, str) else json.dumps(v)) for v in values], pa.string())


def _text_column(values: list[str | None]) -> Any:
    """Param texts typed by JSON decoding (they were written with records.format_value)."""
    decoded = [_decode(v) for v in values]
    if all(v is None or isinstance(v, (bool, int, float)) for v in decoded):
        return _column(decoded)
    return _column(values)


def _run_table(runs: list[_Run]) -> Any:
    import pyarrow as pa

    def names(attr: str) -> list[str]:
        return sorted({k for r in runs for k in getattr(r, attr)})

    axes = [json.loads(r.tags.get(rec.TAG_AXES) or "{}") for r in runs]
    cols: dict[str, Any] = {
        "run_key": pa.array([r.tags[rec.TAG_RUN_KEY] for r in runs], pa.string()),
        "stage": pa.array([r.tags.get(rec.TAG_STAGE) for r in runs], pa.string()),
        "status": pa.array([r.status for r in runs], pa.string()),
        "sweep": pa.array([r.tags.get(rec.TAG_SWEEP) for r in runs], pa.string()),
        "root_key": pa.array([r.tags.get(rec.TAG_ROOT) for r in runs], pa.string()),
        "checkpoint": pa.array(
            [int(r.tags[rec.TAG_CHECKPOINT]) if r.tags.get(rec.TAG_CHECKPOINT) else None for r in runs], pa.int64()
        ),
        "run_id": pa.array([r.run_id for r in runs], pa.string()),
    }
    for name in sorted({k for a in axes for k in a}):
        cols[f"axis.{name}"] = _column([a.get(name) for a in axes])
    for name in names("params"):
        cols[f"param.{name}"] = _text_column([r.params.get(name) for r in runs])
    for name in names("metrics"):
        cols[f"metric.{name}"] = pa.array([r.metrics.get(name) for r in runs], pa.float64())
    for name in names("tags"):
        if not name.startswith("mlflow."):
            cols[f"tag.{name}"] = pa.array([r.tags.get(name) for r in runs], pa.string())
    return pa.table(cols)


def _curve_table(runs: list[_Run], curves: Iterable[tuple[str, str, int, float]]) -> Any:
    import pyarrow as pa

    key_of = {r.run_id: r.tags[rec.TAG_RUN_KEY] for r in runs}
    rows = list(curves)
    return pa.table(
        {
            "run_key": pa.array([key_of[r[0]] for r in rows], pa.string()),
            "metric": pa.array([r[1] for r in rows], pa.string()),
            "step": pa.array([r[2] for r in rows], pa.int64()),
            "value": pa.array([r[3] for r in rows], pa.float64()),
        }
    )


def curves_path(out_path: str | Path) -> Path:
    out_path = Path(out_path)
    return out_path.with_name(f"{out_path.stem}.curves.parquet")


def replay_buffers(folder: Path) -> int:
    """Sync a sweep folder's offline buffers into its store; the number of items still unsent."""
    from vtp.tracking.run import sync

    return sum(sync(folder).values())


def one_run_per_key(runs: list[_Run], curves: list[tuple[str, str, int, float]],
                    preferred: set[str]) -> tuple[list[_Run], list[tuple[str, str, int, float]]]:
    """Keep one MLflow run per run key (the preferred id, else the one with most curve points,
    then the first id) and one point per (run, metric, step): the last one logged, since `curves`
    come ordered by step then timestamp within each run and metric."""
    points: dict[str, int] = {}
    for c in curves:
        points[c[0]] = points.get(c[0], 0) + 1
    best: dict[str, _Run] = {}
    for r in sorted(runs, key=lambda r: r.run_id):
        key = r.tags[rec.TAG_RUN_KEY]
        old = best.get(key)
        rank = (r.run_id in preferred, points.get(r.run_id, 0))
        if old is None or rank > (old.run_id in preferred, points.get(old.run_id, 0)):
            best[key] = r
    kept = {r.run_id for r in best.values()}
    last: dict[tuple[str, str, int], float] = {}
    for rid, name, step, value in curves:
        if rid in kept:
            last[(rid, name, step)] = value  # a later point of the same step replaces the earlier
    return list(best.values()), [(rid, name, step, v) for (rid, name, step), v in last.items()]


def export_snapshot(source: str | Path, out_path: str | Path, *, allow_unsent: bool = False) -> Path:
    """Write the run table to `out_path` and the curves to `<stem>.curves.parquet` beside it.

    source: a sweep folder (its tracking.json names store and experiment; its runs' offline
    buffers are synced first, see UnsentPoints) or a tracking URI (`sqlite:///...` or
    `http://...`: every run with a vtp run key, across experiments).
    """
    import pyarrow.parquet as pq

    uri, experiment_id = _source(source)
    read = _read_server if is_http(uri) else _read_sqlite
    if not (is_http(uri) or uri.startswith("sqlite:")):
        raise TrackingError(f"{uri}: export reads sqlite:/// stores and http(s) servers only")
    unsent, preferred = 0, set()
    if "://" not in str(source):
        unsent = replay_buffers(Path(source))
        if unsent and not allow_unsent:
            raise UnsentPoints(f"{source}: {unsent} tracked items are still in the runs' offline buffers "
                               f"({Path(source) / 'tracking'}/*/buffer.jsonl) because {uri} did not take them; "
                               "start the tracking store and export again (the export syncs them), or pass "
                               "allow_unsent / --allow-unsent to export without them")
        preferred = set(read_tracking(source).runs.values())
    runs, curves = read(uri, experiment_id)
    runs, curves = one_run_per_key(runs, curves, preferred)
    runs.sort(key=lambda r: r.tags[rec.TAG_RUN_KEY])
    meta = {
        "vtp_snapshot_version": SNAPSHOT_VERSION,
        "vtp_source": str(source),
        "vtp_tracking_uri": uri,
        "vtp_exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "vtp_unsent_items": str(unsent),
    }
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    table = _run_table(runs)
    pq.write_table(table.replace_schema_metadata(meta), out_path)
    pq.write_table(_curve_table(runs, curves).replace_schema_metadata(meta), curves_path(out_path))
    return out_path
