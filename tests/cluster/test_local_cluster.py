"""The localhost cluster itself: it is up, configured as the tests need, and runs submitit jobs."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from cluster.slurm_local import SCRIPTS, LocalSlurmCluster, SlurmStartError
from tests.plugins.slurm import result_within


def _scontrol_config() -> str:
    return subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True,
                          check=True, timeout=30).stdout


@pytest.mark.slurm
def test_cluster_config_is_the_one_tests_rely_on(slurm_cluster):
    config = _scontrol_config()
    assert f"ClusterName             = {slurm_cluster.cluster_name}" in config
    assert "MaxArraySize            = 5" in config
    assert "cred_expire=10" in config
    assert "accounting_storage/slurmdbd" in config
    nodes = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %t %P %G"], capture_output=True, text=True,
                           check=True, timeout=30).stdout.split()
    assert nodes[:3] == ["vtp1", "idle", "debug*"] or nodes[1] in ("mix", "alloc")


@pytest.mark.slurm
def test_submitit_job_runs_and_is_accounted(slurm_cluster, tmp_path):
    submitit = pytest.importorskip("submitit")
    executor = submitit.AutoExecutor(folder=tmp_path, cluster="slurm")
    executor.update_parameters(slurm_partition="debug", cpus_per_task=1, mem_gb=1, timeout_min=5)
    job = executor.submit(sum, [1, 2, 3])
    assert result_within(job, 120) == 6
    # Accounting lags the controller by a moment: poll raw sacct until the job's record is final.
    deadline = time.monotonic() + 60
    while True:
        sacct = subprocess.run(["sacct", "-n", "-X", "-P", "-j", job.job_id, "--format=JobID,State"],
                               capture_output=True, text=True, check=True, timeout=30).stdout
        if f"{job.job_id}|COMPLETED" in sacct or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert f"{job.job_id}|COMPLETED" in sacct


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")  # our PID 1 may be slow to reap


@pytest.mark.slurm
def test_second_cluster_with_two_nodes_stops_by_pid_and_restarts(slurm_cluster, tmp_path):
    # A second cluster beside the session's one: private munge, DB and ports, so no clash.
    with tempfile.TemporaryDirectory(prefix="vtp-slurm2-") as state:
        cluster = LocalSlurmCluster(state, nodes=2, max_array_size=3, timeout_s=120)
        with cluster:
            env = {**os.environ, **cluster.env}
            nodes = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %t"], env=env, capture_output=True,
                                   text=True, check=True, timeout=30).stdout.split("\n")
            assert nodes[:2] == ["vtp1 idle", "vtp2 idle"]
            pids = {p.stem: int(p.read_text()) for p in Path(state, "pids").glob("*.pid")}
            assert sorted(pids) == ["mariadb", "munged", "slurmctld", "slurmd-vtp1", "slurmd-vtp2", "slurmdbd"]
            assert all(_alive(p) for p in pids.values())
            name = cluster.cluster_name
            assert name != slurm_cluster.cluster_name
        assert not any(_alive(p) for p in pids.values())
        assert subprocess.run(["sinfo"], capture_output=True, timeout=30).returncode == 0  # session's lives on
        with cluster:  # the same folder brings the same cluster back
            assert cluster.cluster_name == name
            assert "MaxArraySize            = 3" in subprocess.run(
                ["scontrol", "show", "config"], env={**os.environ, **cluster.env}, capture_output=True,
                text=True, check=True, timeout=30).stdout
        # slurmctld refuses a renamed cluster: start.sh must say so at once, not wait out its timeout.
        Path(state, "cluster_name").write_text("vtprenamed\n")
        with pytest.raises(SlurmStartError, match="slurmctld exited during start-up"):
            cluster.start()
        assert not any(_alive(int(p.read_text())) for p in Path(state, "pids").glob("*.pid"))


@pytest.mark.parametrize("args, message", [
    (["--nodes", "0"], "must be >= 1"),
    (["--cpus", "two"], "--cpus must be a non-negative integer"),
    (["--frobnicate"], "start.sh STATE_DIR"),
])
def test_start_script_rejects_bad_arguments(tmp_path, args, message):
    proc = subprocess.run(["bash", str(SCRIPTS / "start.sh"), str(tmp_path / "s"), *args],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0 and message in proc.stderr
    assert not (tmp_path / "s" / "pids").exists()
