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
