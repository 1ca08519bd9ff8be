"""The code version that goes into every run key: the git commit (+ "-dirty") or the package version."""

from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def code_version(root: Path = PACKAGE_ROOT) -> str:
    """Computed by the caller once per command and passed along (no module-level cache)."""
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
                              capture_output=True, text=True, timeout=10)
        if head.returncode == 0:
            dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, timeout=10)
            return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.TimeoutExpired):
        pass
    try:
        return metadata.version("vtp-scaling")
    except metadata.PackageNotFoundError:
        return "unknown"
