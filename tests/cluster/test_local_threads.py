"""The local executor shares the machine's cores between its concurrent workers."""

import os

from cluster.executors.local import THREAD_VARS, worker_env


def test_each_worker_gets_its_share_of_the_cores():
    cores = os.cpu_count() or 1
    env = worker_env(2, {"PATH": "/bin"})
    assert env["PATH"] == "/bin"
    assert {env[v] for v in THREAD_VARS} == {str(max(1, cores // 2))}
    assert worker_env(10 * cores, {})["OMP_NUM_THREADS"] == "1"  # never zero


def test_a_users_thread_setting_wins():
    env = worker_env(2, {"OMP_NUM_THREADS": "7"})
    assert env["OMP_NUM_THREADS"] == "7" and "MKL_NUM_THREADS" in env


def test_deepest_queued_runs_go_first():
    from cluster.executors.local import _depth

    items = {"tok": {"parent": None}, "ext": {"parent": "tok"}, "dit": {"parent": "ext"},
             "eval": {"parent": "dit"}, "other": {"parent": "from-an-earlier-launch"}}
    assert [_depth(k, items) for k in items] == [0, 1, 2, 3, 0]
    assert sorted(items, key=lambda k: -_depth(k, items))[:2] == ["eval", "dit"]
    loop = {"a": {"parent": "b"}, "b": {"parent": "a"}}  # never written by us; must not hang
    assert _depth("a", loop) >= 1
