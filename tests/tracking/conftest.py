"""Fixtures for the tracking tests (helpers live in tests/tracking/helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def sweep_dir(tmp_path: Path) -> Path:
    return tmp_path / "sweep"
