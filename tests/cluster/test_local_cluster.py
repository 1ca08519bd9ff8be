"""The localhost cluster itself: it is up, configured as the tests need, and runs submitit jobs."""

from __future__ import annotations

import subprocess

import pytest

from tests.plugins.slurm import result_within

pytestmark = pytest.mark.slurm


def _scontrol_config() -> str:
    return subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True,
                          check=True, timeout=30).stdout


def test_cluster_config_is_the_one_tests_rely_on(slurm_cluster):
    config = _scontrol_config()
    assert f"ClusterName             = {slurm_cluster.cluster_name}" in config
    assert "MaxArraySize            = 5" in config
    assert "cred_expire=10" in config
    assert "accounting_storage/slurmdbd" in config
    nodes = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %t %P %G"], capture_output=True, text=True,
                           check=True, timeout=30).stdout.split()
    assert nodes[:3] == ["vtp1", "idle", "debug*"] or nodes[1] in ("mix", "alloc")


def test_submitit_job_runs_and_is_accounted(slurm_cluster, tmp_path):
    submitit = pytest.importorskip("submitit")
    executor = submitit.AutoExecutor(folder=tmp_path, cluster="slurm")
    executor.update_parameters(slurm_partition="debug", cpus_per_task=1, mem_gb=1, timeout_min=5)
    job = executor.submit(sum, [1, 2, 3])
    assert result_within(job, 120) == 6
    sacct = subprocess.run(["sacct", "-n", "-X", "-P", "-j", job.job_id, "--format=JobID,State"],
                           capture_output=True, text=True, check=True, timeout=30).stdout
    assert f"{job.job_id}|COMPLETED" in sacct
