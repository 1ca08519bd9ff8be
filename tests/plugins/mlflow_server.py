"""A real `mlflow server` on 127.0.0.1 for tests (one per test module: it takes ~10 s to start).

    def test_x(mlflow_server):        # mlflow_server.uri == "http://127.0.0.1:<port>"
        ...
        mlflow_server.kill()           # as if its node died
        mlflow_server.restart()        # same port, same SQLite store

The server runs with MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false (5 processes, ~0.8 GB) and is
stopped by its process-group id when the module ends, whatever happened.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from vtp.tracking.server import ServerProcess, start_server


class MlflowServer:
    """Handle on the running server: uri, folder (its store lives there), kill / restart / stop."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._proc: ServerProcess = start_server(folder, log_path=folder / "server.log")
        self.uri, self.port, self.store = self._proc.uri, self._proc.port, self._proc.store

    def kill(self) -> None:
        self._proc.kill()

    def restart(self) -> None:
        self._proc.stop()
        self._proc = start_server(self.folder, self.port, store=self.store, log_path=self.folder / "server.log")

    def stop(self) -> None:
        self._proc.stop()


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory):
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server"))
    try:
        yield server
    finally:
        server.stop()
