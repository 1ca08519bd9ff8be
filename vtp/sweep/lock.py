"""One command at a time changes a sweep folder: `launch` and `cancel` hold `<sweep>/sweep.lock`.

Two launchers on one spec would both plan the same runs as `run` and both submit them; a `cancel`
racing a `launch` would miss the jobs the launch queues after cancel read the ledger. The lock is
an flock (vtp.jobs.locks): the kernel drops it when its holder dies, so a killed launcher never
leaves the folder locked. `status`, `plan` and `wait` only read and take no lock.
"""

from __future__ import annotations

from pathlib import Path

from vtp.jobs.locks import FileLock, LockHeld, describe

LOCK_FILE = "sweep.lock"


class SweepBusy(RuntimeError):
    """Another launch or cancel holds the sweep folder; the message names it."""


def sweep_lock(folder: Path, what: str, *, wait_s: float = 0.0) -> FileLock:
    """The held lock of sweep `folder` for command `what` (release it, or use it in a `with`)."""
    try:
        return FileLock(Path(folder) / LOCK_FILE, what, wait_s=wait_s).acquire()
    except LockHeld as e:
        raise SweepBusy(
            f"{folder}: another `vtp-sweep {e.holder.get('what', '?')}` is working on this sweep "
            f"({describe(e.holder)}; lock {e.path}). Wait for it to end and run the command again. "
            "The lock goes away with its holder, so if that process is gone, simply run it again."
        ) from None
