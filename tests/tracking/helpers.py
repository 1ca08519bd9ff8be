"""Helpers shared by the tracking tests: start worker processes, read back what MLflow stored."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from vtp.tracking import RunRecord

REPO = Path(__file__).resolve().parents[2]


def records(n: int, stage: str = "tokenizer") -> list[RunRecord]:
    return [
        RunRecord(
            key=f"run{i:03d}",
            stage=stage,
            axes={"objective": "vtp" if i % 2 else "ae", "params": "S", "compute": 10 ** (i % 3)},
            config={"encoder": "cpu-xs", "optim": {"lr": 1e-3, "warmup_fraction": 0.05}, "checkpoints": [1, 2, 4]},
            code_version="test",
            checkpoint=None,
            root=f"run{i:03d}",
        )
        for i in range(n)
    ]


def start_worker(sweep_dir: Path, key: str, n: int, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONWARNINGS": "ignore::DeprecationWarning"}
    cmd = [sys.executable, "-m", "tests.tracking.worker", str(sweep_dir), key, str(n), *extra]
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_all(procs: Sequence[subprocess.Popen], timeout_s: float = 400) -> list[tuple[int, str, str]]:
    out = []
    for p in procs:
        try:
            stdout, stderr = p.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            p.kill()
            stdout, stderr = p.communicate()
        out.append((p.returncode, stdout, stderr))
    return out


def steps_logged(uri: str, run_id: str, name: str = "loss") -> list[int]:
    from mlflow.tracking import MlflowClient

    return sorted(m.step for m in MlflowClient(uri).get_metric_history(run_id, name))
