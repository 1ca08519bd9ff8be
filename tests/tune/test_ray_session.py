"""Ray for a tune job: the CPUs it takes, free ports, and two jobs' Ray instances side by side."""

import subprocess
import sys
import time
from pathlib import Path

from vtp.tune.cluster import free_ports, job_cpus

ROOT = Path(__file__).resolve().parents[2]
TWO_JOBS = """
import sys, time
from vtp.tune.cluster import ray_session
with ray_session(1) as address:
    import ray
    time.sleep(4)  # both instances up at once
    print(address, sum(ray.get([ray.remote(lambda x: x * 2).remote(i) for i in range(4)])), flush=True)
"""


def test_job_cpus_is_what_slurm_granted_else_the_affinity():
    assert job_cpus({"SLURM_CPUS_PER_TASK": "6", "SLURM_CPUS_ON_NODE": "32"}) == 6
    assert job_cpus({"SLURM_CPUS_ON_NODE": "3"}) == 3
    assert 1 <= job_cpus({}) <= 4096


def test_free_ports_are_distinct():
    ports = free_ports(3)
    assert len(set(ports)) == 3 and all(1024 <= p < 65536 for p in ports)


def test_two_tune_jobs_on_one_node_get_their_own_ray(tmp_path):
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-c", TWO_JOBS], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env, cwd=ROOT) for _ in range(2)]
    outs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outs]
    addresses = [out.split()[0] for out, _ in outs]
    assert [out.split()[1] for out, _ in outs] == ["12", "12"]
    assert addresses[0] != addresses[1]  # separate instances, each on ports it found free


def _alive_in_group(pgid):
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(stat.parent.name)
    return alive


def test_cleanup_stops_only_the_processes_this_job_started(tmp_path, monkeypatch):
    """A multi-node tune job's cleanup: its own `ray start --block` process groups, not `ray stop`
    (which stops every Ray process of the user on the node, another job's Ray included)."""
    import signal

    from vtp.tune import cluster

    calls = []
    monkeypatch.setattr(cluster.subprocess, "run", lambda cmd, **kw: calls.append(cmd))
    # stand-ins for `ray start --block`: a process group with a child of its own
    ours = [subprocess.Popen(["sh", "-c", "sleep 60 & wait"], start_new_session=True) for _ in range(2)]
    other = subprocess.Popen(["sleep", "60"], start_new_session=True)  # another job's Ray
    try:
        cluster.stop_own(ours, timeout_s=5)
        assert [p.poll() for p in ours] == [-signal.SIGTERM] * 2
        time.sleep(0.2)
        assert [_alive_in_group(p.pid) for p in ours] == [[], []]  # their children are gone too
        assert other.poll() is None and calls == []
    finally:
        other.kill()
        other.wait()
