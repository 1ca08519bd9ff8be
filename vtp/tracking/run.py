"""A worker's handle on its own MLflow run, and the launcher's calls on runs it submitted.

`open_run` never creates a run: the launcher made one per key in `prepare_sweep`, so a requeued or
relaunched job logs into the same MLflow run. Every call goes to the on-disk buffer first
(`vtp.tracking.buffer`) and reaches MLflow in batches; when the store is away, training goes on.
"""

from __future__ import annotations

import errno
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vtp.tracking import records as rec
from vtp.tracking.buffer import RunBuffer, append, buffer_dir
from vtp.tracking.store import TrackingError, read_tracking, run_id_of, server_alive


def _now_ms() -> int:
    return int(time.time() * 1000)


class RunTracker:
    """Implements `vtp.jobs.tracker.Tracker` for one run, plus `flush` and `close(status)`.

    flush_every: pending metric points that trigger a flush
    flush_interval_s: a flush at least this often while logging (so the UI stays current)
    A failed flush is retried after a growing pause (5 s doubling to 5 min), never blocking long.
    """

    def __init__(self, buffer: RunBuffer, *, flush_every: int = 1000, flush_interval_s: float = 15.0):
        self.buffer = buffer
        self._held: list[dict[str, Any]] = []  # records the disk had no room for (ENOSPC), oldest first
        self.flush_every, self.flush_interval_s = flush_every, flush_interval_s
        self._fd: int | None = os.open(buffer.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._unsent = 0
        self._last_flush = time.monotonic()
        self._retry_at = 0.0
        self._pause = 5.0

    @property
    def run_id(self) -> str:
        return self.buffer.run_id

    def _append(self, record: dict[str, Any]) -> None:
        """To the buffer file; when the disk is full, held in memory (in order) and written by the
        next append or close that finds room: a full disk must not kill a training run."""
        if self._fd is None:
            raise TrackingError(f"run {self.run_id}: tracker already closed")
        self._held.append(record)
        try:
            while self._held:
                append(self.buffer.path, self._held[0], self._fd)
                self._held.pop(0)
        except OSError as e:
            if e.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            if len(self._held) == 1:
                print(f"vtp.tracking: {self.buffer.path}: disk full; keeping tracked points in memory "
                      "until there is room", file=sys.stderr, flush=True)

    # --- the Tracker protocol ----------------------------------------------------------
    def log_params(self, params: Mapping[str, Any]) -> None:
        flat = rec.flatten(params)
        values = {rec.clip(k, rec.MAX_KEY): rec.clip(rec.format_value(v), rec.MAX_PARAM_VALUE) for k, v in flat.items()}
        self._append({"k": "p", "v": values})

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        values = {}
        for name, value in metrics.items():
            try:
                values[name] = float(value)
            except (TypeError, ValueError):
                raise TypeError(f"metric {name!r}: {value!r} is not a number") from None
        # JSON has no inf/nan literals in strict mode; Python's json writes and reads them anyway.
        self._append({"k": "m", "s": int(step), "t": _now_ms(), "v": values})
        self._unsent += len(values)
        self._maybe_flush()

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Uploaded at the next flush (small files only: checkpoints stay on disk, log their path
        as a tag or param)."""
        self._append({"k": "a", "v": str(Path(path).resolve()), "d": artifact_path or ""})

    def set_tags(self, tags: Mapping[str, str]) -> None:
        values = {rec.clip(str(k), rec.MAX_KEY): rec.clip(rec.format_value(v), rec.MAX_TAG_VALUE) for k, v in tags.items()}
        self._append({"k": "g", "v": values})

    # --- syncing -----------------------------------------------------------------------
    def _maybe_flush(self) -> None:
        now = time.monotonic()
        due = self._unsent >= self.flush_every or now - self._last_flush >= self.flush_interval_s
        if due and now >= self._retry_at:
            self.flush()

    def flush(self, *, wait_s: float = 0.0, attempts: int = 6) -> bool:
        """Try to sync now; False (points kept on disk) when the store is away or busy."""
        ok = self.buffer.flush(wait_s=wait_s, attempts=attempts)
        now = time.monotonic()
        self._last_flush = now
        if ok:
            self._unsent, self._pause, self._retry_at = 0, 5.0, 0.0
        else:
            self._retry_at, self._pause = now + self._pause, min(300.0, self._pause * 2)
        return ok

    def close(self, status: str = "FINISHED") -> bool:
        """Mark the run ended and sync. True when everything reached MLflow; otherwise the rest
        stays on disk for `sync(sweep_dir)` and the job still ends normally."""
        if status not in rec.TERMINAL_STATUSES:
            raise ValueError(f"status {status!r}: expected one of {', '.join(rec.TERMINAL_STATUSES)}")
        if self._fd is None:
            return self.buffer.pending() == 0
        self._append({"k": "s", "v": status, "t": _now_ms()})
        os.close(self._fd)
        self._fd = None
        ok = self.buffer.flush(wait_s=30.0, attempts=10)
        if self._held:  # the disk is still full: the file has everything before them, send these now
            try:
                self.buffer.send_direct(self._held)
            except Exception as e:
                raise TrackingError(f"run {self.run_id}: {len(self._held)} tracked records could not be "
                                    f"written to {self.buffer.path} (disk full) nor sent to MLflow ({e})") from e
            self._held = []
        return ok

    def __enter__(self) -> RunTracker:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.close("FINISHED" if exc_type is None else ("KILLED" if exc_type is KeyboardInterrupt else "FAILED"))


def _buffer(sweep_dir: str | Path, key: str) -> RunBuffer:
    tracking = read_tracking(sweep_dir)
    return RunBuffer(sweep_dir, key, tracking.uri, run_id_of(tracking, key, sweep_dir))


def open_run(sweep_dir: str | Path, key: str, **options: Any) -> RunTracker:
    """The tracker for run `key` of a prepared sweep (the same MLflow run on every attempt).
    `options` go to RunTracker (flush_every, flush_interval_s)."""
    tracker = RunTracker(_buffer(sweep_dir, key), **options)
    tracker._append({"k": "s", "v": "RUNNING", "t": _now_ms()})
    tracker.flush()
    return tracker


def set_status(sweep_dir: str | Path, key: str, status: str) -> bool:
    """The launcher's verdict on a run whose job ended (FINISHED | FAILED | KILLED).
    True when it reached MLflow; else it is kept and sent by the next `sync`."""
    if status not in rec.TERMINAL_STATUSES:
        raise ValueError(f"status {status!r}: expected one of {', '.join(rec.TERMINAL_STATUSES)}")
    buffer = _buffer(sweep_dir, key)
    append(buffer.path, {"k": "s", "v": status, "t": _now_ms()})
    return buffer.flush(wait_s=10.0)


def set_job_id(sweep_dir: str | Path, key: str, job_id: str) -> bool:
    """Tag the run with its scheduler job id (after submission; again after a resubmission)."""
    buffer = _buffer(sweep_dir, key)
    append(buffer.path, {"k": "g", "v": {rec.TAG_JOB_ID: str(job_id)}})
    return buffer.flush(wait_s=10.0)


def set_job_ids(sweep_dir: str | Path, job_ids: Mapping[str, str]) -> None:
    """Tag many runs with their job ids: tracking.json read once, one line appended per run's
    buffer, nothing sent now (the worker's first flush or `sync` sends it). Per run, reading
    tracking.json (which lists every run) made a launch of n runs cost n^2."""
    tracking = read_tracking(sweep_dir)
    for key, job_id in job_ids.items():
        if key in tracking.runs:
            append(buffer_dir(sweep_dir, key) / "buffer.jsonl", {"k": "g", "v": {rec.TAG_JOB_ID: str(job_id)}})


def pending(sweep_dir: str | Path) -> dict[str, int]:
    """key -> items of that run's buffer not yet in MLflow (runs with nothing pending left out)."""
    tracking = read_tracking(sweep_dir)
    out = {}
    for key, run_id in tracking.runs.items():
        if (buffer_dir(sweep_dir, key) / "buffer.jsonl").exists():
            n = RunBuffer(sweep_dir, key, tracking.uri, run_id).pending()
            if n:
                out[key] = n
    return out


def sync(sweep_dir: str | Path, *, wait_s: float = 10.0) -> dict[str, int]:
    """Flush every run's buffer of the sweep (after an outage). Returns key -> items still pending
    (empty when all synced). A run a live worker is flushing right now is left to it."""
    tracking = read_tracking(sweep_dir)
    todo = pending(sweep_dir)
    if todo and not server_alive(tracking.uri):
        return todo  # one health check, not one per run
    left: dict[str, int] = {}
    for key in todo:
        buffer = RunBuffer(sweep_dir, key, tracking.uri, tracking.runs[key])
        if not buffer.flush(wait_s=wait_s):
            left[key] = buffer.pending()
    return left


__all__ = ["RunTracker", "open_run", "pending", "set_job_id", "set_job_ids", "set_status", "sync"]
