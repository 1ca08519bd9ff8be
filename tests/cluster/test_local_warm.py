"""Warm workers: the local scheduler imports what the queued runs import once, then forks each
worker from itself. A forked worker must be the same job a fresh `python -m vtp.jobs.worker` is
(own session, worker env, log, exit status), and a source change must turn forking off."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

import tests.cluster.warm_preloaded as preloaded
from cluster.executors.base import Submission
from cluster.executors.local import LocalExecutor, _own_sources, _Scheduler, preload_modules, worker_env
from cluster.profile import ExecutorProfile
from vtp.jobs.ledger import read_json, run_dir, write_json

TARGET = "tests.cluster.warm_target:run"


def _launch(sweep: Path, runs: dict[str, dict], *, warm: bool, parents: dict[str, str] | None = None) -> dict:
    for key, config in runs.items():
        write_json(run_dir(sweep, key) / "config.json", {"stage": "warm", "config": config, "target": TARGET})
    profile = ExecutorProfile("local", max_workers=2, warm_start=warm)
    ex = LocalExecutor(profile)
    subs = [Submission(key=k, stage="warm", profile=profile, parent=(parents or {}).get(k)) for k in runs]
    ex.submit(sweep, subs, on_submitted=lambda ids: None)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        states = ex.states(sweep, {k: f"local:{k}" for k in runs})
        if len(states) == len(runs) and all(s.status in ("completed", "failed") for s in states.values()):
            return states
        time.sleep(0.2)
    raise AssertionError(f"runs did not end: {states}")


@pytest.mark.parametrize("warm", [True, False])
def test_a_worker_is_its_own_job_warm_or_cold(tmp_path, warm):
    states = _launch(tmp_path, {"a": {}, "b": {}, "bad": {"fail": True}}, warm=warm, parents={"b": "a"})
    assert {k: s.status for k, s in states.items()} == {"a": "completed", "b": "completed", "bad": "failed"}
    assert states["bad"].failure == "error"
    assert read_json(run_dir(tmp_path, "bad") / "state.json")["status"] == "failed"
    log = (tmp_path / "local" / "scheduler.log").read_text()
    assert ("workers are forked" in log) == warm
    for key in ("a", "b"):
        info = json.loads((run_dir(tmp_path, key) / "proc.json").read_text())
        assert info["sid"] == info["pid"]  # its own session: killpg of the job reaches all of it, only it
        assert info["omp"] == worker_env(2, {})["OMP_NUM_THREADS"]
        assert info["stdin_is_null"] and info["argv"] == [str(tmp_path.resolve()), key]
        assert f"hello from {key}" in (run_dir(tmp_path, key) / "worker.log").read_text()
        assert read_json(run_dir(tmp_path, key) / "state.json")["status"] == "done"
        if warm:  # imported once, by the scheduler, which forked the worker
            assert info["imported_by"] == info["ppid"] != info["pid"]
        else:
            assert info["imported_by"] == info["pid"]


def test_a_forked_worker_does_not_hold_the_schedulers_lock(tmp_path):
    """The scheduler's flock must end with the scheduler: a worker that inherited its fd would make a
    dead scheduler look alive (and block its replacement) for as long as the worker runs."""
    from cluster.executors.local import scheduler_alive

    _launch(tmp_path, {"a": {}}, warm=True)
    deadline = time.monotonic() + 30
    while scheduler_alive(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not scheduler_alive(tmp_path)
    lock = str((tmp_path / "local" / "scheduler.lock").resolve())
    info = json.loads((run_dir(tmp_path, "a") / "proc.json").read_text())
    assert not Path(f"/proc/{info['pid']}").exists() or lock not in {
        os.path.realpath(f"/proc/{info['pid']}/fd/{fd}") for fd in os.listdir(f"/proc/{info['pid']}/fd")}


def test_preload_imports_the_runs_modules_and_what_they_list(tmp_path):
    write_json(run_dir(tmp_path, "a") / "config.json", {"stage": "warm", "config": {}, "target": TARGET,
                                                        "tracker": "vtp.no_such_module:open_run"})
    names = preload_modules(tmp_path, ["a", "missing"])  # a broken name is left to the job to report
    assert names == ["tests.cluster.warm_target", "tests.cluster.warm_preloaded"]


def test_a_changed_source_file_turns_forking_off(tmp_path):
    s = _Scheduler(tmp_path, n_workers=1, warm=True)
    s._sources = _own_sources()
    assert preloaded.__file__ in s._sources and s._still_warm()
    st = os.stat(preloaded.__file__)
    try:
        os.utime(preloaded.__file__, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        assert not s._still_warm() and not s.warm  # and stays off: a fresh python per run from now on
    finally:
        os.utime(preloaded.__file__, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_a_forked_worker_leads_its_session_when_the_fork_returns(tmp_path):
    """A cancel may killpg the job in the next scheduler pass: the group must exist by then, as it
    does when Popen(start_new_session=True) returns."""
    from cluster.executors.local import _fork_worker

    write_json(run_dir(tmp_path, "a") / "config.json", {"stage": "warm", "config": {}, "target": TARGET})
    proc = _fork_worker(tmp_path, "a", run_dir(tmp_path, "a") / "worker.log", ())
    try:
        assert os.getsid(proc.pid) == proc.pid
    finally:
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    assert proc.returncode == 0
    assert read_json(run_dir(tmp_path, "a") / "state.json")["status"] == "done"
