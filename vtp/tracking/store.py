"""Where a sweep's runs live: the tracking URI, `tracking.json`, and careful calls into MLflow.

`tracking.json` (written by `prepare_sweep`) maps every run key to its MLflow run id, so a worker
never searches the store: searching is slow, and a search under load is one more lock holder.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

TRACKING_FILE = "tracking.json"
DB_FILE = "mlflow.db"

# MLflow errors that retrying cannot fix (the request itself is wrong).
PERMANENT_CODES = frozenset({"INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST", "INVALID_STATE", "BAD_REQUEST"})


class TrackingError(RuntimeError):
    """Tracking is misconfigured (no tracking.json, unknown run key, ...); the message says where."""


@dataclass(frozen=True)
class SweepTracking:
    """The content of `<sweep_dir>/tracking.json`."""

    uri: str
    experiment_id: str
    parent_run_id: str
    sweep: str
    runs: Mapping[str, str] = field(default_factory=dict)  # run key -> MLflow run id


def default_uri(sweep_dir: str | Path) -> str:
    """The embedded store: SQLite inside the sweep folder."""
    return f"sqlite:///{Path(sweep_dir).resolve() / DB_FILE}"


def resolve_uri(sweep_dir: str | Path, uri: str | None) -> str:
    """The spec's `tracking.uri`, else MLFLOW_TRACKING_URI, else the sweep's SQLite store."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or default_uri(sweep_dir)


def is_http(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def read_tracking(sweep_dir: str | Path) -> SweepTracking:
    path = Path(sweep_dir) / TRACKING_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise TrackingError(f"{path}: missing; the launcher writes it with prepare_sweep()") from None
    except (OSError, ValueError) as e:
        raise TrackingError(f"{path}: unreadable ({e})") from None
    return SweepTracking(**data)


def write_tracking(sweep_dir: str | Path, tracking: SweepTracking) -> Path:
    """Atomic and durable (tmp + fsync + rename): a worker never reads half a file, and a crash of
    the machine right after cannot leave an empty one (it maps keys to runs already created)."""
    path = Path(sweep_dir) / TRACKING_FILE
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    data = {**tracking.__dict__, "runs": dict(tracking.runs)}
    with open(tmp, "w") as f:
        f.write(json.dumps(data, indent=1, sort_keys=True))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def run_id_of(tracking: SweepTracking, key: str, sweep_dir: str | Path) -> str:
    try:
        return tracking.runs[key]
    except KeyError:
        raise TrackingError(
            f"{Path(sweep_dir) / TRACKING_FILE}: no run key {key!r} ({len(tracking.runs)} known); "
            "was the sweep prepared with this run?"
        ) from None


def client(uri: str) -> Any:
    """An MlflowClient bound to `uri` (imported here: mlflow takes seconds to import)."""
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def server_alive(uri: str, timeout: float = 2.0) -> bool:
    """True when an http tracking server answers /health (always True for a local store)."""
    if not is_http(uri):
        return True
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as r:
            return r.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def quick_http() -> Iterator[None]:
    """Short HTTP retries inside MLflow's REST client while we flush.

    MLflow's defaults (7 retries, back-off factor 2, 120 s timeout) make one call to a dead server
    hang for minutes; we retry ourselves and keep points on disk instead, so training goes on.
    """
    wanted = {
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
    }
    saved = {k: os.environ.get(k) for k in wanted}
    for k, v in wanted.items():
        if saved[k] is None:  # a user's own setting wins
            os.environ[k] = v
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)


@contextlib.contextmanager
def no_http_retry() -> Iterator[None]:
    """No retries inside MLflow's REST client: for calls that are not idempotent (create_run), where
    a request resent after a lost reply makes a second object. We retry those ourselves, after
    looking up whether the first one arrived."""
    saved = os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES")
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("MLFLOW_HTTP_REQUEST_MAX_RETRIES", None)
        else:
            os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = saved


def is_permanent(error: BaseException) -> bool:
    """An MLflow error that will fail the same way again (bad value, unknown run)."""
    return getattr(error, "error_code", None) in PERMANENT_CODES


def with_retry(call: Callable[[], T], *, attempts: int = 8, base_s: float = 0.05, cap_s: float = 4.0) -> T:
    """Call with full-jitter exponential back-off on transient errors (SQLite "database is locked",
    a server restarting). Permanent MLflow errors and the last failure are raised.

    Full jitter spreads many workers that failed together (AWS architecture blog, "Exponential
    Backoff And Jitter").
    """
    for attempt in range(attempts):
        try:
            return call()
        except Exception as e:
            if is_permanent(e) or attempt == attempts - 1:
                raise
            time.sleep(random.uniform(0, min(cap_s, base_s * 2**attempt)))
    raise AssertionError("unreachable")
