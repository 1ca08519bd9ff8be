"""Load a results table (CSV or Parquet), detect a vtp snapshot, and choose the columns.

A snapshot (vtp.tracking.export) is one Parquet file with `vtp_snapshot_version` in its key-value
metadata; with one, these defaults apply: eval rows, x = tokenizer FLOPs,
y = gfid when present else gen_fd (labelled with its network, never called FID), one series per
(objective, params, data size when it varies), family = objective, bootstrap unit = root_key.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

SNAPSHOT_KEY = b"vtp_snapshot_version"
# Where a snapshot keeps the data-scaling x (number of unique training images), first match wins.
DATA_COLUMNS = ("axis.data", "axis.unique_samples", "param.unique_samples", "metric.tokenizer_unique_samples")


class TableError(ValueError):
    """Bad input table: the message names the file and the column."""

    def __init__(self, where: str | Path, column: str, message: str):
        super().__init__(f"{where}: {column}: {message}")


@dataclass(frozen=True)
class Table:
    frame: pd.DataFrame
    path: str
    sha256: str
    snapshot_version: int | None  # None for a plain CSV/Parquet table


@dataclass(frozen=True)
class Columns:
    """Which columns play which role."""

    x: str
    y: str
    y_label: str
    by: tuple[str, ...] = ()
    family: str | None = None
    unit: str | None = None
    x2: str | None = None
    probe: str | None = None  # linear-probe column for the understanding/generation correlation


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_table(path: str | Path) -> Table:
    """Read CSV or Parquet; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise TableError(path, "<file>", "no such file")
    version = None
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            meta = pq.read_schema(path).metadata or {}
            if SNAPSHOT_KEY in meta:
                version = int(meta[SNAPSHOT_KEY].decode())
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path)
    except (OSError, ValueError) as e:
        raise TableError(path, "<file>", f"cannot read table ({e})") from None
    if version is not None and version != 1:
        raise TableError(path, "vtp_snapshot_version", f"unsupported snapshot version {version} (know 1)")
    return Table(frame=frame, path=str(path), sha256=file_sha256(path), snapshot_version=version)


def varies(frame: pd.DataFrame, col: str) -> bool:
    return col in frame.columns and pd.to_numeric(frame[col], errors="coerce").nunique() > 1


def _present(frame: pd.DataFrame, col: str) -> bool:
    return col in frame.columns and frame[col].notna().any()


def _require(table: Table, frame: pd.DataFrame, col: str | None, role: str) -> None:
    if col is not None and col not in frame.columns:
        known = ", ".join(map(str, frame.columns))
        raise TableError(table.path, col, f"no such column (wanted as {role}); columns are: {known}")


def _networks(frame: pd.DataFrame, name: str) -> str:
    nets: set[str] = set()
    for col in (f"param.{name}", f"tag.{name}", name):
        if col in frame.columns:
            nets.update(str(v) for v in frame[col].dropna().unique())
    return ", ".join(sorted(nets)) if nets else "unnamed network"


def y_label(frame: pd.DataFrame, y: str) -> str:
    """Honest metric name: a gen_fd (recon_fd) is a Frechet distance over a named network, not
    (r)FID; gFID and rFID are the standard Inception weights' (vtp.stages.eval)."""
    base = y.split(".")[-1]
    if base == "gfid":
        return "gFID"
    if base == "rfid":
        return "rFID"
    if base == "gen_fd":
        return f"Frechet distance ({_networks(frame, 'gen_fd_network')})"
    if base == "recon_fd":  # over the same network as gen_fd
        return f"reconstruction Frechet distance ({_networks(frame, 'gen_fd_network')})"
    if base == "inception_recon_fd":
        return f"reconstruction Frechet distance ({_networks(frame, 'inception_network')})"
    return y


# The reconstruction metric of an eval row (vtp.stages.eval), first present wins: rFID only with the
# standard Inception weights, else the distance over the generation metric's network.
RECON_COLUMNS = ("metric.rfid", "metric.recon_fd")


def recon_column(frame: pd.DataFrame) -> str | None:
    """The snapshot's reconstruction metric column, or None (snapshots from before it was logged)."""
    return next((c for c in RECON_COLUMNS if _present(frame, c)), None)


def final_checkpoints(frame: pd.DataFrame) -> pd.DataFrame:
    """Each run's last checkpoint row (parameter and data scaling compare finished runs; the probe's
    controls are read there)."""
    if "checkpoint" not in frame.columns or "root_key" not in frame.columns:
        return frame
    last = frame.groupby("root_key")["checkpoint"].transform("max")
    return frame[frame["checkpoint"] == last]


def snapshot_rows(table: Table) -> pd.DataFrame:
    """A snapshot's eval rows; a plain table unchanged."""
    frame = table.frame
    if table.snapshot_version is not None and "stage" in frame.columns:
        frame = frame[frame["stage"] == "eval"]
    return frame.reset_index(drop=True)


def choose_columns(table: Table, *, x: str | None = None, y: str | None = None,
                   by: tuple[str, ...] | None = None, family: str | None = None,
                   unit: str | None = None, x2: str | None = None) -> tuple[pd.DataFrame, Columns]:
    """Rows to use and the column roles; snapshot defaults fill what the caller left out."""
    frame = snapshot_rows(table)
    snap = table.snapshot_version is not None
    if snap:
        if x is None:
            x = "metric.tokenizer_flops"
        if y is None:
            y = "metric.gfid" if _present(frame, "metric.gfid") else "metric.gen_fd"
        if by is None:  # one series per tokenizer config: (objective, size) and the data size if it varies
            by = tuple(c for c in ("axis.objective", "axis.params") if c in frame.columns)
            by += next(((c,) for c in DATA_COLUMNS if varies(frame, c)), ())
        if family is None and "axis.objective" in frame.columns:
            family = "axis.objective"
        if unit is None and "root_key" in frame.columns:
            unit = "root_key"
    if x is None or y is None:
        raise TableError(table.path, "--x/--y", "not a vtp snapshot: name the x and y columns")
    by = tuple(by or ())
    if family is not None and family not in by:
        by = (family, *by)
    for col, role in [(x, "x"), (y, "y"), (family, "family"), (unit, "unit"), (x2, "x2")] + [(b, "by") for b in by]:
        _require(table, frame, col, role)
    probe = next((c for c in ("metric.linear_probe", "linear_probe") if c in frame.columns), None)
    return frame, Columns(x=x, y=y, y_label=y_label(frame, y), by=by, family=family, unit=unit, x2=x2,
                          probe=probe)


@dataclass(frozen=True)
class Series:
    """One series' usable points plus why it may be unusable."""

    key: dict  # by-column -> value
    family: str | None
    x: np.ndarray  # (n,) or (n, 2) with x2
    y: np.ndarray
    units: np.ndarray | None
    probe: np.ndarray | None
    dropped: int  # rows dropped for NaN / non-positive values
    problem: str  # "" when usable


def _numeric(frame: pd.DataFrame, col: str) -> np.ndarray:
    return pd.to_numeric(frame[col], errors="coerce").to_numpy(float)


def series_problem(x: np.ndarray, y: np.ndarray, min_points: int = 3) -> str:
    """Why a series cannot be fitted ('' when it can)."""
    if y.size < min_points:
        return f"{y.size} usable point(s), need at least {min_points}"
    x1 = x if x.ndim == 1 else x[:, 0]
    if np.unique(x1).size < 2:
        return "x does not vary"
    if np.ptp(y) == 0:
        return "constant series (y does not vary)"
    return ""


def split_series(frame: pd.DataFrame, cols: Columns) -> list[Series]:
    """One Series per combination of the by-columns (a single series when there are none)."""
    groups = frame.groupby(list(cols.by), sort=True, dropna=False) if cols.by else [((), frame)]
    out = []
    for values, g in groups:
        values = values if isinstance(values, tuple) else (values,)
        key = {c: _plain(v) for c, v in zip(cols.by, values)}
        x = _numeric(g, cols.x)
        if cols.x2:
            x = np.column_stack([x, _numeric(g, cols.x2)])
        y = _numeric(g, cols.y)
        finite = np.isfinite(y) & (y > 0) & np.all(np.isfinite(x.reshape(len(y), -1)) & (x.reshape(len(y), -1) > 0), axis=1)
        units = g[cols.unit].to_numpy()[finite] if cols.unit else None
        probe = _numeric(g, cols.probe)[finite] if cols.probe else None
        xs, ys = x[finite], y[finite]
        # Points in the order of their values (x, then y), not of the rows (run keys): the bootstrap's
        # draws follow the point order, so the same data gives the same intervals whatever its keys.
        order = np.lexsort((ys, *(xs.reshape(len(ys), -1).T[::-1])))
        xs, ys = xs[order], ys[order]
        units = None if units is None else units[order]
        probe = None if probe is None else probe[order]
        out.append(Series(key=key, family=None if cols.family is None else str(key[cols.family]),
                          x=xs, y=ys, units=units, probe=probe, dropped=int((~finite).sum()),
                          problem=series_problem(xs, ys)))
    return out


def _plain(v):
    """numpy scalars -> Python scalars (JSON-friendly)."""
    return v.item() if hasattr(v, "item") else v
