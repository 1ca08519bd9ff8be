"""Session fixture `slurm_cluster`: one real localhost SLURM cluster for the whole test session.

The cluster (munged, MariaDB, slurmdbd, slurmctld, slurmd; see cluster/slurm/start.sh) runs in a
fresh temporary folder with MaxArraySize=5, so array chunking is exercised. While it is up,
os.environ["SLURM_CONF"] points at it: submitit's sbatch/sacct/scontrol calls find it unaided.
Without root or the Debian packages the tests that use it skip, unless VTP_REQUIRE_SLURM=1
(scripts/test.sh sets it as root), where failing to start is an error showing the start log.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator

import pytest

from cluster.slurm_local import DEBIAN_PACKAGES, LocalSlurmCluster, SlurmStartError, missing_binaries

TEST_MAX_ARRAY_SIZE = 5
TEST_GPUS_PER_NODE = 2  # stand-in GPUs (no hardware), so gres requests and GPU-hours are testable
# More job slots than cores: test jobs mostly wait, and queueing behind each other only costs time.
TEST_CPUS_PER_NODE = 4


def _unavailable_reason() -> str | None:
    if os.geteuid() != 0:
        return "the localhost SLURM cluster needs root (slurmd runs job steps as root)"
    missing = missing_binaries()
    if missing:
        return f"SLURM packages missing ({', '.join(missing)}); apt-get install {DEBIAN_PACKAGES}"
    return None


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("VTP_REQUIRE_SLURM") == "1":
        pytest.fail(f"VTP_REQUIRE_SLURM=1 but the SLURM cluster is unavailable: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[LocalSlurmCluster]:
    reason = _unavailable_reason()
    if reason:
        _skip_or_fail(reason)
    # Not pytest's tmp_path: a short path under /tmp keeps the munge socket path well below the
    # 108-byte limit of a Unix socket name.
    state_dir = tempfile.mkdtemp(prefix="vtp-slurm-")
    cluster = LocalSlurmCluster(state_dir, max_array_size=TEST_MAX_ARRAY_SIZE, cpus=TEST_CPUS_PER_NODE,
                                gpus=TEST_GPUS_PER_NODE)
    try:
        cluster.start()
    except SlurmStartError as err:
        shutil.rmtree(state_dir, ignore_errors=True)
        _skip_or_fail(str(err))
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(cluster.slurm_conf)
    try:
        yield cluster
    finally:
        if previous is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous
        cluster.stop()
        shutil.rmtree(state_dir, ignore_errors=True)  # ~150 MB, mostly MariaDB's files


def result_within(job, timeout_s: float = 120, poll_s: float = 1.0):
    """`job.result()` of a submitit job, failing the test (and cancelling the job) after timeout_s.

    submitit's own `result()` waits forever: a job killed from outside can leave it hanging.
    """
    deadline = time.monotonic() + timeout_s
    while not job.done():
        if time.monotonic() > deadline:
            state = job.state
            job.cancel(check=False)
            pytest.fail(f"job {job.job_id} not done after {timeout_s:.0f} s (state {state}); "
                        f"stderr:\n{job.stderr() or ''}", pytrace=False)
        time.sleep(poll_s)
    return job.result()
