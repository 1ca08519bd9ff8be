"""The sweep folder's ledger and the run folders' markers, written atomically.

Every write goes to a temporary file in the same folder and is moved over the old one with
`os.replace`, so a launcher killed at any moment leaves either the old or the new ledger, never a
torn one; running `launch` again then carries on.

    <root>/<sweep>/ledger.json          one entry per run: stage, axes, parent, job id, attempts
    <root>/<sweep>/runs/<key>/config.json   resolved config + code version (written before submit)
    <root>/<sweep>/runs/<key>/state.json    {"status": "done"|"failed", ...} (written by the worker)
    <root>/<sweep>/runs/<key>/result.json   the stage's return value
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

LEDGER = "ledger.json"
VERSION = 1


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return default
    except json.JSONDecodeError:
        return default  # only a file written by hand can be torn; treat as absent


def run_dir(sweep_dir: Path, key: str) -> Path:
    return Path(sweep_dir) / "runs" / key


def read_ledger(sweep_dir: Path) -> dict[str, Any] | None:
    return read_json(Path(sweep_dir) / LEDGER)


def write_ledger(sweep_dir: Path, ledger: Mapping[str, Any]) -> None:
    write_json(Path(sweep_dir) / LEDGER, {**ledger, "version": VERSION})


def read_state(sweep_dir: Path, key: str) -> dict[str, Any] | None:
    return read_json(run_dir(sweep_dir, key) / "state.json")
