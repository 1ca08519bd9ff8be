"""A run's on-disk log of everything it tracked, replayed into MLflow exactly once.

Every call a worker makes (metrics, params, tags, status, artifacts) is first appended as one JSON
line to `<sweep_dir>/tracking/<key>/buffer.jsonl` and fsync'd, so a dead server, a locked SQLite
file or a killed job loses nothing. `flush` sends the lines in `log_batch`es and records how far
it got in `synced.json`, so nothing is sent twice.

Exactly once needs one more step: MLflow keeps duplicate (key, step, timestamp, value) rows, and a
batch whose reply was lost may or may not have been stored. So before sending a batch we write its
range to `inflight.json`; if a flush starts and finds that marker, it first reads the metric
history of those keys and drops the points already there. Params and tags are idempotent in MLflow
(same value again is accepted), status updates too.

Only one process flushes a run at a time (flock on `flush.lock`): the worker, or the launcher's
`sync`/`set_status`. Appends need no lock: one `write` to an O_APPEND file.

Damage stays local. Each record is written as "\n<json>\n": the leading newline ends a line torn
by a writer that died (or by a disk that filled up) mid-write, so only that torn line is lost; a
line that does not parse is skipped and counted in `corrupt.json` (offset -> its first bytes), never
raised on every flush. A metric name MLflow refuses for good is set aside in `rejected.jsonl` with
the reason, and every other point still goes through.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vtp.jobs.locks import FileLock, LockHeld
from vtp.tracking.store import is_permanent, quick_http, server_alive, with_retry

MAX_METRICS = 1000  # per log_batch (mlflow.utils.validation)
MAX_PARAMS_TAGS = 100

Position = tuple[int, int]  # (byte offset of a record, index of an item inside it)


@dataclass(frozen=True)
class Item:
    kind: str  # m (metric), p (param), g (tag), s (status), a (artifact)
    pos: Position
    name: str = ""
    value: Any = None
    step: int = 0
    ts: int = 0


def buffer_dir(sweep_dir: str | Path, key: str) -> Path:
    return Path(sweep_dir) / "tracking" / re.sub(r"[^A-Za-z0-9._-]", "_", key)


def append(path: Path, record: dict[str, Any], fd: int | None = None) -> None:
    """Append one record durably (fsync): after this returns, a crash cannot lose it. A short
    write (disk full) raises OSError(ENOSPC); the torn piece it left is ended by the next line."""
    line = ("\n" + json.dumps(record, separators=(",", ":")) + "\n").encode()
    own = fd is None
    if own:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        if os.write(fd, line) != len(line):
            raise OSError(errno.ENOSPC, f"short write to {path} (disk full?)")
        os.fsync(fd)
    finally:
        if own:
            os.close(fd)


def _items(offset: int, record: dict[str, Any]) -> list[Item]:
    """One record -> its items in a fixed order (positions must be the same on every replay)."""
    kind = record["k"]
    if kind == "m":
        return [
            Item("m", (offset, i), name, value, record["s"], record["t"])
            for i, (name, value) in enumerate(sorted(record["v"].items()))
        ]
    if kind in ("p", "g"):
        return [Item(kind, (offset, i), name, value) for i, (name, value) in enumerate(sorted(record["v"].items()))]
    return [Item(kind, (offset, 0), record.get("d") or "", record["v"], 0, record.get("t", 0))]


def _read_items(path: Path, start: Position) -> tuple[list[Item], Position, dict[int, str]]:
    """Items at or after `start`, the position after the last complete line, and the lines that
    do not parse (offset -> their first bytes)."""
    items: list[Item] = []
    corrupt: dict[int, str] = {}
    offset = start[0]
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return items, start, corrupt
    for line in data.split(b"\n")[:-1]:  # the last piece is "" or a line still being written
        if line.strip():
            try:
                items += [it for it in _items(offset, json.loads(line)) if it.pos >= start]
            except (ValueError, KeyError, TypeError, AttributeError):  # torn or damaged: skip it
                corrupt[offset] = line[:80].decode(errors="replace")
        offset += len(line) + 1
    return items, (offset, 0), corrupt


class RunBuffer:
    """The buffer of one run: append records, flush them into MLflow run `run_id` at `uri`."""

    def __init__(self, sweep_dir: str | Path, key: str, uri: str, run_id: str):
        self.dir = buffer_dir(sweep_dir, key)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / "buffer.jsonl"
        self.uri, self.run_id = uri, run_id

    # --- progress files -----------------------------------------------------------------
    def _load(self, name: str) -> dict[str, Any] | None:
        try:
            return json.loads((self.dir / name).read_text())
        except (FileNotFoundError, ValueError):
            return None

    def _save(self, name: str, data: dict[str, Any]) -> None:
        tmp = self.dir / f"{name}.tmp"
        with open(tmp, "w") as f:
            json.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.dir / name)

    def synced(self) -> Position:
        s = self._load("synced.json") or {"offset": 0, "skip": 0}
        return (s["offset"], s["skip"])

    def pending(self) -> int:
        """Items not yet in MLflow."""
        return len(_read_items(self.path, self.synced())[0])

    def corrupt(self) -> int:
        """Lines skipped because they did not parse (torn by a crash or a full disk)."""
        return len(self._load("corrupt.json") or {})

    def _note_corrupt(self, lines: dict[int, str]) -> None:
        if lines:
            self._save("corrupt.json", {**(self._load("corrupt.json") or {}), **{str(k): v for k, v in lines.items()}})

    @contextlib.contextmanager
    def _lock(self, wait_s: float) -> Iterator[bool]:
        """One flusher at a time per buffer (the job and a `sync` may both try); yields False when
        another holds it past `wait_s`: the caller leaves the points for later."""
        try:
            lock = FileLock(self.dir / "flush.lock", "flush", wait_s=wait_s).acquire()
        except LockHeld:
            yield False
            return
        try:
            yield True
        finally:
            lock.release()

    # --- flushing ------------------------------------------------------------------------
    def flush(self, *, wait_s: float = 0.0, attempts: int = 6) -> bool:
        """Send everything pending. True when nothing is left; False leaves the rest for later."""
        if not server_alive(self.uri):
            return False
        try:
            with self._lock(wait_s) as locked:
                if not locked:
                    return False
                with quick_http():
                    return self._flush_locked(attempts)
        except OSError as e:  # no room for the progress files: sending now could send twice later
            if e.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            return False

    def _flush_locked(self, attempts: int) -> bool:
        from vtp.tracking.store import client

        start = self.synced()
        items, end, corrupt = _read_items(self.path, start)
        self._note_corrupt(corrupt)
        if not items:
            if end > start:
                self._save("synced.json", {"offset": end[0], "skip": end[1]})
            return True
        c = client(self.uri)
        inflight = self._load("inflight.json")
        if inflight and tuple(inflight["start"]) == start:
            items = self._drop_stored(c, items, tuple(inflight["end"]), attempts)
        i = 0
        while i < len(items):
            batch = _next_batch(items, i)
            stop = items[i + len(batch)].pos if i + len(batch) < len(items) else end
            self._save("inflight.json", {"start": list(batch[0].pos), "end": list(stop)})
            try:
                self._send(c, batch, attempts)
            except Exception:
                return False  # inflight.json stays: the next flush checks what arrived
            self._save("synced.json", {"offset": stop[0], "skip": stop[1]})
            i += len(batch)
        (self.dir / "inflight.json").unlink(missing_ok=True)
        return True

    def _drop_stored(self, c: Any, items: list[Item], until: Position, attempts: int) -> list[Item]:
        """Drop metric points of the uncertain range that MLflow already has."""
        names = {it.name for it in items if it.kind == "m" and it.pos < until}
        stored: set[tuple[str, int, int, str]] = set()
        for name in names:
            history = with_retry(lambda name=name: c.get_metric_history(self.run_id, name), attempts=attempts)
            stored |= {(name, m.step, m.timestamp, repr(float(m.value))) for m in history}
        return [
            it
            for it in items
            if not (it.kind == "m" and it.pos < until and (it.name, it.step, it.ts, repr(float(it.value))) in stored)
        ]

    def _send(self, c: Any, batch: list[Item], attempts: int) -> None:
        first = batch[0]
        if first.kind == "s":
            if first.value == "RUNNING":
                with_retry(lambda: c.update_run(self.run_id, status="RUNNING"), attempts=attempts)
            else:
                with_retry(
                    lambda: c.set_terminated(self.run_id, status=first.value, end_time=first.ts), attempts=attempts
                )
            return
        if first.kind == "a":
            if not Path(first.value).exists():
                self._reject(first, "file no longer exists")
                return
            try:
                with_retry(lambda: c.log_artifact(self.run_id, first.value, first.name or None), attempts=attempts)
            except Exception as e:
                if not is_permanent(e):
                    raise
                self._reject(first, str(e))
            return
        try:
            with_retry(lambda: c.log_batch(self.run_id, **_entities(batch)), attempts=attempts)
        except Exception as e:
            if not is_permanent(e):
                raise
            self._send_one_by_one(c, batch, attempts)

    def _send_one_by_one(self, c: Any, batch: list[Item], attempts: int) -> None:
        """A batch MLflow refused (e.g. a param changed value, a metric name it does not allow):
        keep every item it accepts; metrics go one name at a time, a refused name is set aside."""
        by_name: dict[str, list[Item]] = {}
        for it in batch:
            if it.kind == "m":
                by_name.setdefault(it.name, []).append(it)
        for points in by_name.values():
            try:
                with_retry(lambda points=points: c.log_batch(self.run_id, **_entities(points)), attempts=attempts)
            except Exception as e:
                if not is_permanent(e):
                    raise
                for it in points:
                    self._reject(it, str(e))
        for it in batch:
            if it.kind == "m":
                continue
            try:
                with_retry(lambda it=it: c.log_batch(self.run_id, **_entities([it])), attempts=attempts)
            except Exception as e:
                if not is_permanent(e):
                    raise
                self._reject(it, str(e))

    def _reject(self, item: Item, reason: str) -> None:
        """Keep what MLflow refused, with the reason, instead of retrying it forever."""
        append(self.dir / "rejected.jsonl", {"kind": item.kind, "name": item.name, "value": item.value,
                                             "step": item.step, "error": reason[:500]})

    def rejected(self) -> int:
        try:
            return sum(1 for line in (self.dir / "rejected.jsonl").read_bytes().split(b"\n") if line.strip())
        except FileNotFoundError:
            return 0

    def send_direct(self, records: list[dict[str, Any]], *, attempts: int = 6) -> None:
        """Send records that never reached the buffer file (a full disk) straight to MLflow."""
        from vtp.tracking.store import client

        items = [it for i, r in enumerate(records) for it in _items(-1 - i, r)]
        c = client(self.uri)
        with quick_http():
            i = 0
            while i < len(items):
                batch = _next_batch(items, i)
                self._send(c, batch, attempts)
                i += len(batch)


def _next_batch(items: list[Item], i: int) -> list[Item]:
    """The longest run of metric/param/tag items from i within log_batch limits; or one status or
    artifact item alone (they are separate calls, and keep their place in the order)."""
    if items[i].kind in ("s", "a"):
        return [items[i]]
    batch: list[Item] = []
    n_metrics = n_other = 0
    for it in items[i:]:
        if it.kind in ("s", "a"):
            break
        if it.kind == "m":
            if n_metrics == MAX_METRICS:
                break
            n_metrics += 1
        else:
            if n_other == MAX_PARAMS_TAGS:
                break
            n_other += 1
        batch.append(it)
    return batch


def _entities(batch: list[Item]) -> dict[str, list[Any]]:
    from mlflow.entities import Metric, Param, RunTag

    return {
        "metrics": [Metric(it.name, float(it.value), it.ts, it.step) for it in batch if it.kind == "m"],
        "params": [Param(it.name, it.value) for it in batch if it.kind == "p"],
        "tags": [RunTag(it.name, it.value) for it in batch if it.kind == "g"],
    }
