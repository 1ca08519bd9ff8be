"""Helpers of the fault-injection suite: wrappers put on PATH in front of the real SLURM client
commands (a slow or lying sbatch, a sacct that forgets a job), sweeps of the smoke stage, and
counts of what really ran (`runs/<key>/executions.jsonl`, sacct by job name).

Every fault is injected at a boundary a real cluster can break (a client command's reply, a
process killed at a chosen moment, a file's bytes, a server's process); the parts themselves are
real: the localhost SLURM cluster, MLflow over SQLite or a real server, the worker subprocesses.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def executions(folder: Path, key: str, event: str = "start") -> list[dict]:
    """The worker's log of what happened on run `key` (start / end / refused)."""
    path = Path(folder) / "runs" / key / "executions.jsonl"
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [e for e in lines if e["event"] == event]


def jobs_of_sweep(folder: Path) -> list[str]:
    """Every SLURM job (array tasks one by one) this sweep ever queued, from sacct + squeue by name
    prefix: the ground truth for "submitted once"."""
    prefix = f"vtp-{Path(folder).name}"
    out = subprocess.run(["sacct", "-n", "-X", "--parsable2", "--allusers", "-S", "now-1hour",
                          "--format=JobID,JobName%200"], capture_output=True, text=True, check=True).stdout
    ids = {line.split("|")[0] for line in out.splitlines() if "|" in line and line.split("|")[1].startswith(prefix)}
    out = subprocess.run(["squeue", "-h", "-r", "--states=all", "-o", "%i|%j"], capture_output=True, text=True,
                         check=True).stdout
    ids |= {line.split("|")[0] for line in out.splitlines() if "|" in line and line.split("|")[1].startswith(prefix)}
    return sorted(i for i in ids if "[" not in i)


@pytest.fixture
def fake_bin(tmp_path, monkeypatch):
    """A folder in front of PATH; `fake_bin.wrap(name, body)` writes a bash wrapper `name` whose
    body may call the real command as "$REAL" "$@"."""

    class Bin:
        dir = tmp_path / "bin"

        def wrap(self, name: str, body: str) -> Path:
            self.dir.mkdir(exist_ok=True)
            real = shutil.which(name)
            assert real, f"{name} not on PATH"
            path = self.dir / name
            path.write_text(f"#!/bin/bash\nREAL={real}\n" + textwrap.dedent(body))
            path.chmod(0o755)
            return path

    b = Bin()
    b.dir.mkdir(exist_ok=True)
    monkeypatch.setenv("PATH", f"{b.dir}{os.pathsep}{os.environ['PATH']}")
    return b


def cli(*args: str, env: dict | None = None, timeout: float = 120, check: bool = False,
        cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """`vtp-sweep ...` in a subprocess (its own session, so a wrapper may kill its whole group).
    `python -m` puts `cwd` first on sys.path: it picks the checkout that runs."""
    return subprocess.run([sys.executable, "-m", "vtp.cli.sweep", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})}, check=check,
                          start_new_session=True, cwd=cwd)


def popen_cli(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "vtp.cli.sweep", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})},
                            start_new_session=True, cwd=ROOT)


SLURM_SPEC = """
name: NAME
axes: {seed: SEEDS}
executor: {profile: slurm, options: {gres: null, cpus_per_task: 1, mem_gb: 0.5, time_min: 5, poll_s: 1,
                                     partition: debug, submit_backoff_s: 0.5}}
tracking: {enabled: TRACKING}
stages:
  - name: parent
    target: vtp.stages.smoke:run
    fanout: checkpoints
    config: {steps: STEPS, seed: "${axes.seed}", save_every: 5, sleep_s: SLEEP, checkpoints: [40]}
  - name: child
    target: vtp.stages.smoke:run
    after: parent
    config: {steps: 3}
"""


def slurm_spec(tmp_path: Path, name: str, *, seeds: str = "[0, 1]", steps: int = 5, sleep: float = 0.0,
               tracking: bool = False) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(SLURM_SPEC.replace("NAME", name).replace("SEEDS", seeds).replace("STEPS", str(steps))
                    .replace("SLEEP", str(sleep)).replace("TRACKING", "true" if tracking else "false"))
    return path
