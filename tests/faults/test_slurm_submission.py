"""Exactly once on the real localhost SLURM cluster: a launcher killed between `sbatch` and the
ledger write (and between two arrays), two launchers at once, `cancel` racing a `launch`, an
`sbatch` that fails after slurmctld queued the job. Faults are injected by a wrapper in front of
the real `sbatch` on PATH; "submitted once" is counted from sacct/squeue by job name, "ran once"
from the workers' execution logs."""

import json
import time

import pytest

from tests.faults.conftest import cli, executions, jobs_of_sweep, popen_cli, slurm_spec
from vtp.jobs.ledger import read_ledger
from vtp.sweep.launcher import cancel, launch, wait
from vtp.sweep.spec import load_sweep

pytestmark = pytest.mark.slurm

# Counts calls in $VTP_COUNT; on call $VTP_KILL_AT, once slurmctld has queued the job, kills the
# launcher's whole process group (it runs in its own session): dead before the ledger write.
KILL_AFTER_SBATCH = """
n=$(( $(cat "$VTP_COUNT" 2>/dev/null || echo 0) + 1 )); echo $n > "$VTP_COUNT"
"$REAL" "$@"; rc=$?
if [ -n "$VTP_KILL_AT" ] && [ "$n" = "$VTP_KILL_AT" ]; then kill -KILL 0; fi
exit $rc
"""

# The first call queues the job, then answers as an sbatch whose reply timed out does.
LOST_REPLY = """
n=$(( $(cat "$VTP_COUNT" 2>/dev/null || echo 0) + 1 )); echo $n > "$VTP_COUNT"
if [ "$n" = 1 ]; then
  "$REAL" "$@" > /dev/null; sleep 1
  echo "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation" >&2
  exit 1
fi
exec "$REAL" "$@"
"""

SLOW = """
sleep "${VTP_SBATCH_DELAY:-0}"
exec "$REAL" "$@"
"""


def run_keys(folder):
    return sorted(read_ledger(folder)["runs"])


def assert_each_ran_once(folder):
    for key in run_keys(folder):
        assert len(executions(folder, key)) == 1, (key, executions(folder, key, "refused"))


@pytest.mark.parametrize("kill_at", [1, 2], ids=["after_first_sbatch", "between_two_arrays"])
def test_launcher_killed_between_sbatch_and_the_ledger_write(slurm_cluster, tmp_path, fake_bin, kill_at):
    fake_bin.wrap("sbatch", KILL_AFTER_SBATCH)
    spec = slurm_spec(tmp_path, f"killed{kill_at}")
    args = ["launch", str(spec), f"root={tmp_path / 'out'}"]
    killed = cli(*args, env={"VTP_KILL_AT": str(kill_at), "VTP_COUNT": str(tmp_path / "count")})
    assert killed.returncode == -9, killed.stderr
    folder = tmp_path / "out" / f"killed{kill_at}"
    # sbatch 1 queues the parents' array; each child waits for its own parent: one job each
    queued, left = {1: (2, 2), 2: (3, 1)}[kill_at]
    assert len(jobs_of_sweep(folder)) == queued  # the killed launcher did queue them
    again = cli(*args, env={"VTP_COUNT": str(tmp_path / "count")})
    assert again.returncode == 0, again.stderr
    # what the killed launcher queued is adopted; only the rest is new
    assert f"submitted {left} of 4 runs" in again.stdout, (again.stdout, read_ledger(folder), jobs_of_sweep(folder))
    st = wait(folder, timeout_s=150, poll_s=1)
    assert st.counts() == {"parent": {"done": 2}, "child": {"done": 2}}
    assert len(jobs_of_sweep(folder)) == 4  # one job per run, ever
    assert_each_ran_once(folder)


def test_two_launchers_at_once_submit_each_run_once(slurm_cluster, tmp_path, fake_bin):
    fake_bin.wrap("sbatch", SLOW)
    spec = slurm_spec(tmp_path, "twice")
    args = ["launch", str(spec), f"root={tmp_path / 'out'}"]
    procs = [popen_cli(*args, env={"VTP_SBATCH_DELAY": "2"}) for _ in range(2)]
    outs = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    codes = sorted(rc for rc, _, _ in outs)
    assert codes == [0, 1], outs
    refused = next(err for rc, _, err in outs if rc == 1)
    assert "another `vtp-sweep launch` is working on this sweep" in refused and "pid " in refused, refused
    folder = tmp_path / "out" / "twice"
    st = wait(folder, timeout_s=150, poll_s=1)
    assert st.counts() == {"parent": {"done": 2}, "child": {"done": 2}}
    assert len(jobs_of_sweep(folder)) == 4
    assert_each_ran_once(folder)


def test_cancel_racing_a_launch_leaves_nothing_running(slurm_cluster, tmp_path, fake_bin):
    fake_bin.wrap("sbatch", SLOW)
    spec = slurm_spec(tmp_path, "race", steps=10, sleep=1.0)  # parents still run when the launch ends
    folder = tmp_path / "out" / "race"
    launcher = popen_cli("launch", str(spec), f"root={tmp_path / 'out'}", env={"VTP_SBATCH_DELAY": "2"})
    deadline = time.time() + 60
    while not (read_ledger(folder) or {}).get("submitting"):  # the launch is inside its first sbatch
        assert time.time() < deadline and launcher.poll() is None, launcher.communicate()
        time.sleep(0.1)
    cancelled = cancel(folder)
    assert launcher.wait(timeout=120) == 0, launcher.communicate()
    assert len(cancelled) == 4  # waited for the launch, then cancelled all it queued
    st = wait(folder, timeout_s=60, poll_s=1)
    assert not st.active()
    queued = [line for line in _squeue() if line.startswith("vtp-race") and line.endswith(("PENDING", "RUNNING"))]
    assert queued == [], queued


def _squeue():
    import subprocess

    out = subprocess.run(["squeue", "-h", "-r", "-o", "%j|%i|%T"], capture_output=True, text=True, check=True)
    return out.stdout.splitlines()


def test_sbatch_failing_after_the_job_was_queued_is_not_submitted_twice(slurm_cluster, tmp_path, fake_bin):
    fake_bin.wrap("sbatch", LOST_REPLY)
    spec = slurm_spec(tmp_path, "lost")
    import os

    os.environ["VTP_COUNT"] = str(tmp_path / "count")
    try:
        sweep = load_sweep(spec, [f"root={tmp_path / 'out'}"])
        report = launch(sweep)
    finally:
        del os.environ["VTP_COUNT"]
    assert len(report.submitted) == 4
    st = wait(sweep.folder, timeout_s=150, poll_s=1)
    assert st.counts() == {"parent": {"done": 2}, "child": {"done": 2}}
    assert len(jobs_of_sweep(sweep.folder)) == 4  # the first array was adopted, not queued again
    assert_each_ran_once(sweep.folder)
    # one sbatch per array: the parents' (lost reply, adopted), then one per child (each has its own parent)
    assert json.loads((tmp_path / "count").read_text()) == 3
