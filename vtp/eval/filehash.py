"""The one sha256 of a weights file (Inception, the fallback feature network, a reference batch).

Its own module, torch- and torchvision-free: the eval stage needs it in every job, and importing
vtp.eval.inception for it would load torchvision (~2 s a job) when no Inception weights are given.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
