"""Exclusive locks on files, held for a process's lifetime, that say who holds them.

`fcntl.flock` locks belong to an open file description: the kernel drops them when the holder
exits, however it exits (SIGKILL, OOM killer, node reboot of a local disk), so a lock can never go
stale the way a pid file can. Linux emulates flock over NFS with POSIX byte-range locks, so the
same call works on a shared sweep folder.

The holder writes who it is (pid, host, what it does, since when) into the lock file once it holds
the lock, so the next comer's error can name it instead of just saying "busy".
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Any


class LockHeld(RuntimeError):
    """Someone else holds the lock; `holder` is what they wrote into the lock file (may be {})."""

    def __init__(self, path: Path, holder: dict[str, Any], message: str):
        super().__init__(message)
        self.path, self.holder = path, holder


def describe(holder: dict[str, Any]) -> str:
    """`pid 123 on node7, launch since 12:03:04` (or `an unknown process` for an empty file)."""
    if not holder:
        return "an unknown process"
    since = time.strftime("%H:%M:%S", time.localtime(float(holder.get("since", 0))))
    return f"pid {holder.get('pid')} on {holder.get('host')}, {holder.get('what', '?')} since {since}"


def read_holder(path: Path, *, settle_s: float = 0.0) -> dict[str, Any]:
    """The holder's note; {} if there is none. `settle_s`: how long to wait for a note that is not
    written yet (a holder writes it just after taking the lock: a second comer that arrives in that
    instant would otherwise report "an unknown process")."""
    deadline = time.monotonic() + settle_s
    while True:
        try:
            data = json.loads(Path(path).read_text() or "{}")
        except (OSError, ValueError):  # unreadable, or caught mid-write
            data = {}
        if (data and isinstance(data, dict)) or time.monotonic() >= deadline:
            return data if isinstance(data, dict) else {}
        time.sleep(0.02)


class FileLock:
    """`with FileLock(path, "launch"):` or `.acquire()` / `.release()`. Waits at most `wait_s`
    (default: not at all, so a second launcher fails at once instead of queueing behind the
    first), then raises LockHeld."""

    def __init__(self, path: str | Path, what: str, *, wait_s: float = 0.0):
        self.path, self.what, self.wait_s = Path(path), what, wait_s
        self._fd: int | None = None

    def acquire(self) -> FileLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by children (O_CLOEXEC)
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    holder = read_holder(self.path, settle_s=1.0)
                    raise LockHeld(self.path, holder, f"{self.path} is held by {describe(holder)}") from None
                time.sleep(0.05)
        # Who we are, for the next comer's message. Written through the locked fd, in place.
        info = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "what": self.what,
                           "since": time.time()}).encode()
        try:  # the new note over the old, then cut to its length: a reader never sees it empty
            os.pwrite(fd, info, 0)
            os.ftruncate(fd, len(info))
        except OSError:  # a full disk: the lock holds all the same, only the courtesy note is lost
            pass
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.ftruncate(fd, 0)
            finally:
                os.close(fd)  # closing drops the flock

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> FileLock:
        return self if self.held else self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
