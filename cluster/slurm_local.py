"""Start and stop the private localhost SLURM cluster of `cluster/slurm/start.sh` from Python.

    with LocalSlurmCluster("/tmp/my-slurm", max_array_size=5) as cluster:
        subprocess.run(["sinfo"], env={**os.environ, **cluster.env})

The shell scripts do the work (a user can run them by hand); this is a thin, typed wrapper.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent / "slurm"
REQUIRED_BINARIES = ("munged", "mariadbd", "mariadb-install-db", "slurmdbd", "slurmctld", "slurmd",
                     "sbatch", "sacct", "sacctmgr", "scontrol", "sinfo")
DEBIAN_PACKAGES = "munge slurmctld slurmd slurm-client slurmdbd mariadb-server"


class SlurmStartError(RuntimeError):
    """start.sh failed; the message carries its output (log tails of every daemon)."""


def missing_binaries() -> list[str]:
    """The programs start.sh needs that are not on PATH (empty when the packages are installed)."""
    return [b for b in REQUIRED_BINARIES if shutil.which(b) is None]


class LocalSlurmCluster:
    """A single-host SLURM cluster living in `state_dir`; a context manager that stops it on exit."""

    def __init__(self, state_dir: str | Path, *, max_array_size: int = 1001, nodes: int = 1,
                 cpus: int | None = None, gpus: int = 0, timeout_s: int = 90) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.max_array_size = max_array_size
        self.nodes = nodes
        self.cpus = cpus
        self.gpus = gpus
        self.timeout_s = timeout_s
        self.start_log = ""

    @property
    def slurm_conf(self) -> Path:
        return self.state_dir / "etc" / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        """Environment additions for SLURM clients (sbatch, sacct, submitit) to reach this cluster."""
        return {"SLURM_CONF": str(self.slurm_conf)}

    @property
    def cluster_name(self) -> str:
        return (self.state_dir / "cluster_name").read_text().strip()

    def start(self) -> LocalSlurmCluster:
        """Run start.sh; raises SlurmStartError with its output when the cluster does not come up."""
        cmd = ["bash", str(SCRIPTS / "start.sh"), str(self.state_dir),
               "--max-array-size", str(self.max_array_size), "--nodes", str(self.nodes),
               "--gpus", str(self.gpus), "--timeout", str(self.timeout_s)]
        if self.cpus is not None:
            cmd += ["--cpus", str(self.cpus)]
        # start.sh bounds its own waits; the extra margin covers mariadb-install-db and stop on failure.
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout_s + 120,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            self.stop()  # start.sh was killed mid-way: stop whatever it had launched
            raise SlurmStartError(f"{SCRIPTS / 'start.sh'} {self.state_dir} hung") from exc
        self.start_log = proc.stdout + proc.stderr
        if proc.returncode != 0:
            raise SlurmStartError(f"{SCRIPTS / 'start.sh'} {self.state_dir} failed "
                                  f"(exit {proc.returncode}):\n{self.start_log}")
        return self

    def stop(self) -> None:
        """Run stop.sh: cancel the jobs, stop every daemon by its recorded PID, wait for them."""
        if not self.state_dir.is_dir():
            return
        proc = subprocess.run(["bash", str(SCRIPTS / "stop.sh"), str(self.state_dir)],
                              capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise RuntimeError(f"stop.sh {self.state_dir} failed:\n{proc.stdout}{proc.stderr}")

    def __enter__(self) -> LocalSlurmCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
