"""A real `mlflow server` for one sweep folder, bound to 127.0.0.1.

    python -m vtp.tracking.server SWEEP_DIR [--port 5000]

serves `<sweep_dir>/mlflow.db` (artifacts under `<sweep_dir>/mlartifacts`) until Ctrl-C. Reach it
from a laptop with `ssh -L 5000:127.0.0.1:5000 login-node`. Point workers at it with
`tracking.uri: http://127.0.0.1:5000` in the spec or MLFLOW_TRACKING_URI.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vtp.tracking.store import default_uri, server_alive


@dataclass
class ServerProcess:
    """A started server: its URL, and the process group to stop."""

    uri: str
    process: subprocess.Popen
    port: int
    store: str

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stop the server and its workers (its own process group), by PID."""
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=timeout_s)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """Hard stop (SIGKILL to the group), as when a node dies: for outage tests."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(timeout=15)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _mlflow_exe() -> list[str]:
    beside = Path(sys.executable).with_name("mlflow")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("mlflow")
    if found:
        return [found]
    return [sys.executable, "-m", "mlflow"]


def start_server(
    sweep_dir: str | Path,
    port: int | None = None,
    *,
    store: str | None = None,
    log_path: str | Path | None = None,
    timeout_s: float = 120.0,
) -> ServerProcess:
    """Start `mlflow server` on 127.0.0.1:`port` (a free one if None) over the sweep's SQLite store
    (or `store`), and wait until /health answers. Job execution is off: 5 processes, not 13."""
    sweep_dir = Path(sweep_dir).resolve()
    sweep_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    store = store or default_uri(sweep_dir)
    cmd = [
        *_mlflow_exe(), "server",
        "--backend-store-uri", store,
        "--artifacts-destination", str(sweep_dir / "mlartifacts"),
        "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    log = open(log_path or sweep_dir / "mlflow-server.log", "ab")
    process = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    server = ServerProcess(f"http://127.0.0.1:{port}", process, port, store)
    deadline = time.monotonic() + timeout_s
    while not server_alive(server.uri, timeout=1.0):
        if process.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {process.returncode}; see {log.name}")
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"mlflow server not healthy after {timeout_s:.0f} s; see {log.name}")
        time.sleep(0.25)
    return server


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vtp.tracking.server", description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args(argv)
    server = start_server(args.sweep_dir, args.port)
    print(f"MLflow for {args.sweep_dir}: {server.uri} (Ctrl-C stops it)", flush=True)
    try:
        server.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
