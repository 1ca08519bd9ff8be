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


class LedgerError(RuntimeError):
    """ledger.json exists but cannot be read; the message names the file and what to do."""


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return default
    except json.JSONDecodeError:
        return default  # markers and progress files: a hand-edited or torn one reads as absent


def run_dir(sweep_dir: Path, key: str) -> Path:
    return Path(sweep_dir) / "runs" / key


def read_ledger(sweep_dir: Path) -> dict[str, Any] | None:
    """The ledger, or None when the sweep was never launched. A ledger that exists but does not
    parse is an error, not an empty sweep: read as empty, every run would be submitted again."""
    path = Path(sweep_dir) / LEDGER
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise LedgerError(f"{path}: not valid JSON ({e}); it is only written atomically, so it was "
                          "edited or damaged by hand: restore it (or move it away to start the sweep's "
                          "bookkeeping afresh; finished runs are still found by their markers)") from None
    if not isinstance(data, dict) or not isinstance(data.get("runs", {}), dict):
        raise LedgerError(f"{path}: expected an object with a `runs` mapping; restore it or move it away")
    return data


def write_ledger(sweep_dir: Path, ledger: Mapping[str, Any]) -> None:
    write_json(Path(sweep_dir) / LEDGER, {**ledger, "version": VERSION})


def read_state(sweep_dir: Path, key: str) -> dict[str, Any] | None:
    return read_json(run_dir(sweep_dir, key) / "state.json")
