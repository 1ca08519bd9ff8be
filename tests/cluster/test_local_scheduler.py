"""The local scheduler's polling costs nothing while nothing changes (it polls every 0.1 s beside
the jobs it runs on 2 cores), and still sees every change: a queued run, a cancel, an ended job."""

import time

import cluster.executors.local as local
from cluster.executors.local import LocalExecutor, _dirs, _Scheduler
from cluster.profile import ExecutorProfile
from vtp.jobs.ledger import read_json, write_json


def _queue(sweep, key, parent=None):
    queue, jobs, _ = _dirs(sweep)
    write_json(jobs / f"{key}.json", {"status": "pending", "submitted": time.time()})
    write_json(queue / f"{key}.json", {"key": key, "parent": parent, "submitted": time.time()})


def _counting(monkeypatch):
    reads = []
    real = local.read_json

    def counted(path, *a, **k):
        reads.append(path)
        return real(path, *a, **k)

    monkeypatch.setattr(local, "read_json", counted)
    return reads


def test_an_idle_pass_reads_no_file_and_a_change_is_seen_at_the_next(tmp_path, monkeypatch):
    for i in range(20):
        _queue(tmp_path, f"r{i:02d}", parent=f"r{i - 1:02d}" if i % 5 else None)
    s = _Scheduler(tmp_path, n_workers=0)  # starts nothing: only its bookkeeping is measured
    reads = _counting(monkeypatch)
    assert s.step()
    assert len(reads) >= 20  # the first pass reads the queue
    reads.clear()
    for _ in range(50):
        assert s.step()
    assert reads == []  # before the change: 50 passes x (20 queue + 20 job files + parents' markers)
    _queue(tmp_path, "new")
    s.step()
    assert any(p.name == "new.json" for p in reads)


def test_a_cancel_is_seen_without_waiting_for_the_rescan(tmp_path):
    _queue(tmp_path, "a")
    s = _Scheduler(tmp_path, n_workers=0)
    s.step()
    LocalExecutor(ExecutorProfile("local")).cancel(tmp_path, {"a": "local:a"})
    _, jobs, _ = _dirs(tmp_path)
    s.step()
    assert read_json(jobs / "a.json")["status"] == "failed"
    assert read_json(jobs / "a.json")["failure"] == "cancelled"


def test_states_asks_whether_the_scheduler_lives_once_per_call(tmp_path, monkeypatch):
    for i in range(30):
        _queue(tmp_path, f"r{i:02d}")
        write_json(_dirs(tmp_path)[1] / f"r{i:02d}.json", {"status": "pending", "submitted": 0})
    calls = []
    monkeypatch.setattr(local, "scheduler_alive", lambda d: calls.append(d) or False)
    states = LocalExecutor(ExecutorProfile("local")).states(tmp_path, {f"r{i:02d}": "x" for i in range(30)})
    assert {s.failure for s in states.values()} == {"lost"} and len(calls) == 1
