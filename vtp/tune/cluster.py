"""Ray for a tune job: in-process on this machine, or a head plus srun workers in a SLURM allocation.

- One node (the local executor, or a one-node SLURM job): `ray.init(num_cpus=<the job's CPUs>)`
  starts a private Ray instance in the job; Ray picks free ports for its own services and the
  dashboard is off, so two tune jobs on one node do not clash.
- Several nodes (SLURM_JOB_NUM_NODES > 1): this task starts a head (`ray start --head --block`) on
  ports found free on this node (GCS, client server, dashboard agent), then one Ray worker per other
  node with `srun --nodes=N-1 --ntasks=N-1 --exclude=<this node> ray start --address=HEAD:PORT --block`,
  and the driver connects to `HEAD:PORT`. All of them are stopped when the search ends.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path


def job_cpus(env: Mapping[str, str] = os.environ) -> int:
    """CPUs this job may use: SLURM's grant, else the CPUs this process is allowed to run on."""
    for name in ("SLURM_CPUS_PER_TASK", "SLURM_CPUS_ON_NODE"):
        if env.get(name, "").isdigit():
            return int(env[name])
    return len(os.sched_getaffinity(0))


def free_ports(n: int) -> list[int]:
    """`n` distinct TCP ports free on this node right now (bound together, so no duplicates)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def ray_env() -> dict[str, str]:
    """No auth token file in ~/.ray (NOTES.md), no usage-stats call home."""
    return {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def _ray_bin() -> str:
    return shutil.which("ray", path=str(Path(sys.executable).parent)) or "ray"


@contextlib.contextmanager
def ray_session(num_cpus: int | None = None, env: Mapping[str, str] = os.environ) -> Iterator[str]:
    """Start Ray for this job and stop it afterwards; yields the address the driver is connected to."""
    for k, v in ray_env().items():
        os.environ.setdefault(k, v)
    import ray

    cpus = num_cpus or job_cpus(env)
    nodes = int(env.get("SLURM_JOB_NUM_NODES", "1") or 1)
    procs: list[subprocess.Popen] = []
    try:
        if nodes > 1:
            address = _start_slurm_cluster(cpus, nodes, env, procs)
            ray.init(address=address, log_to_driver=False)
        else:
            ctx = ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
            address = ctx.address_info.get("gcs_address", "local")
        yield address
    finally:
        ray.shutdown()
        stop_own(procs)


def stop_own(procs: list[subprocess.Popen], timeout_s: float = 30.0) -> None:
    """Stop the Ray processes this job started, and only those: each `ray start --block` (and the
    srun step) runs in a session of its own, so its process group holds what it spawned. `ray stop`
    would stop every Ray process of the user on the node, another job's included."""
    for p in reversed(procs):  # the srun step first, then the head
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=timeout_s)
        with contextlib.suppress(ProcessLookupError):  # whatever outlived the polite stop
            os.killpg(p.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=timeout_s)


def _start_slurm_cluster(cpus: int, nodes: int, env: Mapping[str, str], procs: list[subprocess.Popen]) -> str:
    host = socket.gethostname()
    ip = socket.gethostbyname(host)
    gcs, client, agent = free_ports(3)
    ray = _ray_bin()
    procs.append(subprocess.Popen([ray, "start", "--head", f"--node-ip-address={ip}", f"--port={gcs}",
                                   f"--ray-client-server-port={client}", f"--dashboard-agent-listen-port={agent}",
                                   f"--num-cpus={cpus}", "--include-dashboard=false", "--block"],
                                  start_new_session=True))
    address = f"{ip}:{gcs}"
    _wait_for_port(ip, gcs, timeout_s=120)
    procs.append(subprocess.Popen(["srun", f"--nodes={nodes - 1}", f"--ntasks={nodes - 1}", "--ntasks-per-node=1",
                                   f"--exclude={host}", "--overlap", ray, "start", f"--address={address}",
                                   f"--num-cpus={cpus}", "--block"], start_new_session=True))
    return address


def _wait_for_port(ip: str, port: int, timeout_s: float) -> None:
    end = time.time() + timeout_s
    while time.time() < end:
        with contextlib.suppress(OSError), socket.create_connection((ip, port), timeout=2):
            return
        time.sleep(0.5)
    raise TimeoutError(f"Ray head did not listen on {ip}:{port} within {timeout_s:.0f} s")
