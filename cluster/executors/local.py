"""The embedded default: runs on this machine, up to `max_workers` at once, dependencies honoured.

`submit` writes one queue file per run under `<sweep>/local/queue/` and starts a detached
scheduler process (`python -m cluster.executors.local SWEEP_DIR WORKERS`). The scheduler holds an
exclusive lock on `<sweep>/local/scheduler.lock` for its lifetime (a second one waits for it, then
finds the work done), starts each run whose parent finished well as a worker subprocess, cancels
runs whose parent failed (like SLURM's kill-on-invalid-dep), writes each job's state to
`<sweep>/local/jobs/<key>.json` and exits when nothing is left. All its state is on disk, so
`status` reattaches from the sweep folder alone, and a killed scheduler is replaced by the next
launch.

Warm workers (the default; `warm_start: false` in the profile turns them off): the scheduler first
imports what the queued runs will import -- each run's stage module, the modules that module lists
in `PRELOAD`, and its tracker's -- and then forks every worker from itself, like a forkserver with
a preload (gunicorn's --preload, multiprocessing's set_forkserver_preload). A worker then starts in
milliseconds instead of paying torch's, timm's and MLflow's imports again (measured on a 2-core
machine: 6-10 s a job, ~7 minutes of the 118-run embedded study) and leaves with os._exit (no
interpreter teardown: ~1 s with torch loaded). The child is the same job as `python -m vtp.jobs.worker`
would be: its own session (killpg reaches it), the same environment (the scheduler sets the
workers' thread variables on itself before it imports anything), stdout and stderr to the run's
worker.log, its exit code or signal as the returncode. The scheduler never runs torch itself, so
no OpenMP pool exists to be forked. When a preloaded source file of this checkout changes while it
runs, it goes back to a fresh `python -m vtp.jobs.worker` per run, so no run executes stale code.
"""

from __future__ import annotations

import fcntl
import importlib
import os
import signal
import subprocess
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from cluster.executors.base import Submission
from cluster.profile import ExecutorProfile
from vtp.jobs.ledger import read_json, run_dir, write_json
from vtp.jobs.states import CANCELLED, ERROR, LOST, OUT_OF_MEMORY, JobState

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
STARTUP_GRACE_S = 30.0  # a just-submitted run counts as pending while its scheduler starts


def _dirs(sweep_dir: Path) -> tuple[Path, Path, Path]:
    base = Path(sweep_dir) / "local"
    return base / "queue", base / "jobs", base / "cancel"


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of a dead scheduler still answers kill(0): look at /proc where there is one.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return True


class LocalExecutor:
    def __init__(self, profile: ExecutorProfile):
        self.profile = profile

    def submit(self, sweep_dir: Path, runs: Sequence[Submission],
               on_submitted: Callable[[Mapping[str, str]], None],
               on_intent: Callable[[str, Sequence[str]], None] | None = None) -> dict[str, str]:
        queue, jobs, cancel = _dirs(sweep_dir)
        if on_intent is not None and runs:
            on_intent(uuid.uuid4().hex[:12], [r.key for r in runs])
        ids = {}
        for r in runs:
            (cancel / r.key).unlink(missing_ok=True)
            write_json(jobs / f"{r.key}.json", {"status": "pending", "submitted": time.time()})
            write_json(queue / f"{r.key}.json", {"key": r.key, "parent": r.parent, "submitted": time.time()})
            ids[r.key] = f"local:{r.key}"
        on_submitted(ids)
        if runs:
            start_scheduler(Path(sweep_dir), workers(self.profile), warm=self.profile.warm_start)
        return ids

    def states(self, sweep_dir: Path, jobs: Mapping[str, str]) -> dict[str, JobState]:
        _, jobs_dir, _ = _dirs(sweep_dir)
        out = {}
        alive: list[bool] = []  # asked once per call, not once per pending job (an open + flock each)

        def no_scheduler() -> bool:
            if not alive:
                alive.append(scheduler_alive(Path(sweep_dir)))
            return not alive[0]

        for key in jobs:
            info = read_json(jobs_dir / f"{key}.json")
            if not info:
                continue
            status = info["status"]
            if status == "running" and not _alive(info.get("pid")) and no_scheduler():
                status, info = "failed", {**info, "failure": "lost"}  # the scheduler died before reaping it
            elif (status == "pending" and time.time() - info.get("submitted", 0) > STARTUP_GRACE_S
                  and no_scheduler()):
                status, info = "failed", {**info, "failure": "lost"}
            out[key] = JobState(status, info.get("failure"))
        return out

    def find(self, sweep_dir: Path, intents: Mapping[str, Mapping]) -> dict[str, str]:
        """Runs a killed launcher queued (a queue file and a job file written after its intent)."""
        queue, jobs, _ = _dirs(sweep_dir)
        out = {}
        for intent in intents.values():
            for key in intent["keys"]:
                info = read_json(jobs / f"{key}.json") or {}
                if (queue / f"{key}.json").exists() and info.get("submitted", 0) >= float(intent.get("at") or 0):
                    out[key] = f"local:{key}"
        return out

    def reattach(self, sweep_dir: Path) -> None:
        """Start a scheduler when runs are queued and none is alive. Without it, runs queued by a
        launch whose scheduler was killed within STARTUP_GRACE_S would look pending to the next
        launch (so it submits nothing), then lost. A second scheduler is harmless: it waits for
        the first one's lock, then finds the work done."""
        _, jobs, _ = _dirs(sweep_dir)
        queued = any((read_json(p) or {}).get("status") == "pending" for p in jobs.glob("*.json"))
        if queued and not scheduler_alive(Path(sweep_dir)):
            start_scheduler(Path(sweep_dir), workers(self.profile), warm=self.profile.warm_start)

    def cancel(self, sweep_dir: Path, jobs: Mapping[str, str]) -> None:
        _, _, cancel = _dirs(sweep_dir)
        cancel.mkdir(parents=True, exist_ok=True)
        for key in jobs:
            (cancel / key).touch()


def oom_kills() -> int:
    """The kernel's count of processes its OOM killer ended (`oom_kill` in /proc/vmstat, Linux >=
    4.13; a cgroup's memory limit counts too); -1 where it cannot be read."""
    try:
        for line in Path("/proc/vmstat").read_text().splitlines():
            if line.startswith("oom_kill "):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return -1


def exit_failure(returncode: int, cancelled: bool, oom_before: int, oom_after: int) -> str:
    """Failure class of a worker that exited with `returncode` (negative: killed by that signal).
    A SIGKILL we did not send while the OOM killer's count rose is out_of_memory (retrying it would
    fail again, so it is not retried by default); other kills are `lost` (retried). With workers
    side by side, another one's OOM kill in the same window is read as this one's: the class then
    errs towards not retrying, never towards retrying forever."""
    if cancelled:
        return CANCELLED
    if returncode > 0:
        return ERROR
    if returncode == -signal.SIGKILL and oom_before >= 0 and oom_after > oom_before:
        return OUT_OF_MEMORY
    return LOST


def workers(profile: ExecutorProfile) -> int:
    return profile.max_workers or os.cpu_count() or 1


def worker_env(n_workers: int, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a worker: each of the n concurrent workers gets cores // n threads (like
    SLURM's cpus-per-task), unless the user set the thread variables. Left alone, torch in every
    worker takes all cores; two workers on 2 cores then ran a tokenizer step 4x slower than one
    thread each did (measured: 16.8 s vs 4.1 s for the same 30 steps)."""
    env = dict(os.environ if environ is None else environ)
    threads = str(max(1, (os.cpu_count() or 1) // max(1, n_workers)))
    return {**env, **{v: threads for v in THREAD_VARS if v not in env}}


def scheduler_alive(sweep_dir: Path) -> bool:
    lock = Path(sweep_dir) / "local" / "scheduler.lock"
    if not lock.exists():
        return False
    with open(lock, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
        return False


def start_scheduler(sweep_dir: Path, n_workers: int, *, warm: bool = True) -> int:
    """Start a detached scheduler; returns its PID. It outlives the launcher."""
    log = Path(sweep_dir) / "local" / "scheduler.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")]))}
    args = [sys.executable, "-m", "cluster.executors.local", str(Path(sweep_dir).resolve()), str(n_workers)]
    with open(log, "a") as out:
        proc = subprocess.Popen(args + ([] if warm else ["--cold"]), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, env=env)
    return proc.pid


def preload_modules(sweep_dir: Path, keys: Sequence[str]) -> list[str]:
    """What the runs `keys` will import: each run's stage module and its tracker's module (from the
    run's config.json), each followed by the names in that module's `PRELOAD` (the heavy imports its
    job makes inside functions, so that planning stays light). Imports them all; returns the names
    imported (one that fails is left to the job itself, which reports the error in its own log)."""
    wanted: list[str] = []
    for key in keys:
        cfg = read_json(run_dir(sweep_dir, key) / "config.json") or {}
        for target in (cfg.get("target"), cfg.get("tracker")):
            module = (target or "").partition(":")[0]
            if module and module not in wanted:
                wanted.append(module)
    done: list[str] = []
    for name in wanted:
        for n in [name, *_listed(name)]:
            if n in done:
                continue
            try:
                importlib.import_module(n)
                done.append(n)
            except Exception as e:  # noqa: BLE001 - the job meets the same error and logs it properly
                print(f"[scheduler] preload {n}: {type(e).__name__}: {e}", flush=True)
    return done


def _listed(name: str) -> tuple[str, ...]:
    try:
        return tuple(getattr(importlib.import_module(name), "PRELOAD", ()))
    except Exception:  # noqa: BLE001
        return ()


def _own_sources() -> dict[str, tuple[int, int]]:
    """(mtime, size) of every loaded module file of this checkout (not of a venv inside it: its
    thousands of torch files would be stat'ed before every fork, and installing is not editing)."""
    out = {}
    root = str(PACKAGE_ROOT) + os.sep
    for mod in list(sys.modules.values()):
        f = getattr(mod, "__file__", None)
        if f and f.startswith(root) and f"{os.sep}site-packages{os.sep}" not in f:
            try:
                st = os.stat(f)
            except OSError:
                continue
            out[f] = (st.st_mtime_ns, st.st_size)
    return out


class _Forked:
    """A worker forked from the scheduler, with the part of Popen's interface the scheduler uses."""

    def __init__(self, pid: int):
        self.pid, self.returncode = pid, None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)  # negative: killed by that signal
        return self.returncode


def _fork_worker(sweep_dir: Path, key: str, log: Path, close_fds: Sequence[int]) -> _Forked:
    sys.stdout.flush()
    sys.stderr.flush()
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid:
        # Return only once the child leads its own session, as Popen(start_new_session=True) does:
        # a cancel right after the start would otherwise killpg a process group that is not there yet.
        os.close(ready_w)
        os.read(ready_r, 1)  # b"" (EOF) if the child died first
        os.close(ready_r)
        return _Forked(pid)
    code = 1
    try:  # the child: never returns into the scheduler's loop
        os.setsid()
        os.close(ready_r)
        os.write(ready_w, b"1")
        os.close(ready_w)
        for fd in close_fds:  # the scheduler's lock must be released when the scheduler dies, not its workers
            os.close(fd)
        out = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(out)
        os.close(null)
        sys.argv = [str(PACKAGE_ROOT / "vtp" / "jobs" / "worker.py"), str(sweep_dir), key]
        from vtp.jobs.worker import main as worker_main

        code = worker_main([str(sweep_dir), key])
    except SystemExit as e:
        code = 0 if e.code is None else e.code if isinstance(e.code, int) else 1
    except BaseException:  # noqa: BLE001
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _depth(key: str, items: Mapping[str, Mapping]) -> int:
    """How many queued ancestors a run has. The scheduler starts the deepest ready runs first, so a
    chain (tokenizer -> ... -> eval) finishes before new chains start: results arrive early and a
    killed sweep leaves few half-done chains."""
    depth, seen, parent = 0, {key}, items[key].get("parent")
    while parent in items and parent not in seen:
        seen.add(parent)
        depth, parent = depth + 1, items[parent].get("parent")
    return depth


RESCAN_S = 2.0  # the longest the scheduler goes without scanning its queue


def _mtime_ns(folder: Path) -> int:
    try:
        return os.stat(folder).st_mtime_ns
    except FileNotFoundError:  # not made yet (cancel/ appears with the first cancel)
        return 0


class _Files:
    """JSON files parsed again only when they changed. The scheduler polls every 0.1 s; re-reading
    every queue item, job file and parent marker of the 170-run embedded study each time cost 48 ms
    of CPU per pass, a third of one of the 2 cores the study runs on. Every writer replaces these
    files whole (write_json: a new inode), so (inode, size, mtime) tells a changed file."""

    def __init__(self) -> None:
        self._seen: dict[Path, tuple[tuple[int, int, int], object]] = {}

    def read(self, path: Path) -> object:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            self._seen.pop(path, None)
            return None
        sig = (st.st_ino, st.st_size, st.st_mtime_ns)
        hit = self._seen.get(path)
        if hit is not None and hit[0] == sig:
            return hit[1]
        data = read_json(path)
        self._seen[path] = (sig, data)
        return data


class _Scheduler:
    def __init__(self, sweep_dir: Path, n_workers: int, poll_s: float = 0.1, *, warm: bool = False,
                 close_fds: Sequence[int] = ()):
        self.sweep_dir, self.n_workers, self.poll_s = sweep_dir, n_workers, poll_s
        self.queue, self.jobs, self.cancel = _dirs(sweep_dir)
        self.procs: dict[str, subprocess.Popen | _Forked] = {}
        self.warm, self.close_fds = warm, tuple(close_fds)
        self._sources: dict[str, tuple[int, int]] = {}
        self.oom_at_start: dict[str, int] = {}
        self.files = _Files()
        self._stamp: tuple[int, ...] = ()
        self._scanned = -RESCAN_S
        self._busy = True

    def job(self, key: str) -> dict:
        return self.files.read(self.jobs / f"{key}.json") or {}

    def set(self, key: str, **info) -> None:
        write_json(self.jobs / f"{key}.json", {**self.job(key), **info})

    def parent_status(self, parent: str | None) -> str:
        """ok | wait | failed"""
        if parent is None:
            return "ok"
        marker = self.files.read(run_dir(self.sweep_dir, parent) / "state.json")
        if marker and marker.get("status") == "done":
            return "ok"
        status = self.job(parent).get("status")
        if status in ("pending", "running") and (parent in self.procs or status == "pending"):
            return "wait"
        return "failed"

    def step(self) -> bool:
        """One pass; returns whether anything is still pending or running. The queue is scanned only
        when something can have changed: a job of ours ended, or an entry of the queue, jobs or
        cancel folder was written (their mtimes), and at least every RESCAN_S for what no folder
        shows (a parent's marker written by a worker this scheduler did not start)."""
        ended = self.reap()
        stamp = tuple(_mtime_ns(d) for d in (self.queue, self.jobs, self.cancel))
        now = time.monotonic()
        if not ended and stamp == self._stamp and now - self._scanned < RESCAN_S:
            return self._busy or bool(self.procs)
        self._stamp, self._scanned = stamp, now
        self._busy = self.scan()
        return self._busy or bool(self.procs)

    def scan(self) -> bool:
        busy = False
        items = {}
        for path in sorted(self.queue.glob("*.json")):
            item = self.files.read(path) or {}
            items[item.get("key", path.stem)] = item
        for key in sorted(items, key=lambda k: -_depth(k, items)):  # stable: key order within a depth
            item = items[key]
            status = self.job(key).get("status")
            if status == "running" and key in self.procs:
                if (self.cancel / key).exists():
                    os.killpg(self.procs[key].pid, signal.SIGTERM)
                busy = True
                continue
            if status != "pending":
                continue
            busy = True
            if (self.cancel / key).exists():
                self.set(key, status="failed", failure="cancelled", ended=time.time())
                continue
            parent = self.parent_status(item.get("parent"))
            if parent == "failed":
                self.set(key, status="failed", failure="dependency", ended=time.time())
            elif parent == "ok" and len(self.procs) < self.n_workers:
                self.start(key)
        return busy

    def preload(self) -> None:
        """Warm start: take on the workers' environment, import what the queued runs will import,
        and remember the checkout's loaded source files (a changed one turns forking off)."""
        if not self.warm:
            return
        t0 = time.monotonic()
        os.environ.update(worker_env(self.n_workers))  # before torch is imported: its threads read these
        keys = sorted(p.stem for p in self.queue.glob("*.json") if self.job(p.stem).get("status") == "pending")
        names = preload_modules(self.sweep_dir, keys)
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_initialized():  # a forked child cannot use CUDA then
            self.warm = False
            print("[scheduler] a preloaded module initialised CUDA: each run starts a fresh python", flush=True)
            return
        self._sources = _own_sources()
        print(f"[scheduler] preloaded {len(names)} modules in {time.monotonic() - t0:.1f} s; workers are forked "
              "from this process", flush=True)

    def _still_warm(self) -> bool:
        if self.warm and _own_sources_changed(self._sources):
            self.warm = False
            print("[scheduler] a preloaded source file changed: each run now starts a fresh python", flush=True)
        return self.warm

    def start(self, key: str) -> None:
        log = self.sweep_dir / "runs" / key / "worker.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        if self._still_warm():
            proc: subprocess.Popen | _Forked = _fork_worker(self.sweep_dir, key, log, self.close_fds)
        else:
            with open(log, "a") as out:
                proc = subprocess.Popen([sys.executable, "-m", "vtp.jobs.worker", str(self.sweep_dir), key],
                                        stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True, env=worker_env(self.n_workers))
        self.procs[key] = proc
        self.oom_at_start[key] = oom_kills()
        self.set(key, status="running", pid=proc.pid, started=time.time())

    def reap(self) -> int:
        """Record the jobs of ours that ended; returns how many."""
        ended = 0
        for key, proc in list(self.procs.items()):
            rc = proc.poll()
            if rc is None:
                continue
            del self.procs[key]
            ended += 1
            if rc == 0:
                self.set(key, status="completed", returncode=rc, ended=time.time())
            else:
                failure = exit_failure(rc, (self.cancel / key).exists(), self.oom_at_start.get(key, -1), oom_kills())
                self.set(key, status="failed", failure=failure, returncode=rc, ended=time.time())
        return ended

    def loop(self) -> None:
        self.preload()
        while self.step():
            time.sleep(self.poll_s)


def _own_sources_changed(seen: Mapping[str, tuple[int, int]]) -> bool:
    for f, sig in seen.items():
        try:
            st = os.stat(f)
        except OSError:
            return True
        if (st.st_mtime_ns, st.st_size) != sig:
            return True
    return False


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    warm = "--cold" not in args
    args = [a for a in args if a != "--cold"]
    sweep_dir, n_workers = Path(args[0]), int(args[1])
    lock_path = sweep_dir / "local" / "scheduler.lock"
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one scheduler per sweep; a later one waits, then finds little to do
        _Scheduler(sweep_dir, n_workers, warm=warm, close_fds=[lock.fileno()]).loop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
