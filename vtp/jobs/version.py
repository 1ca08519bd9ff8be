"""The code version that goes into every run key: a hash of the code that computes results.

A run's result depends on the science (models, losses, training, data, evaluation, FLOP counts),
the stage adapters and the config loader, not on the sweep engine, the CLI, tracking, docs, tests
or the specs themselves (a spec's values are in the key already). Hashing only that code means a
commit to the README, or an edit to a spec in a dirty checkout, does not re-run a finished study;
a change to a loss does. The git commit stays provenance (MLflow tags, report), not identity.

The job contract (`vtp/jobs`: run folders, ledger, job states, the worker, progress files,
RunContext, the Tracker protocol) is left out on purpose: it decides how, where and how reliably a
run executes, not what it computes. A fix to resuming or exactly-once delivery must not re-run a
finished study; a change that alters a stage's inputs shows up in `vtp/stages`, which is hashed.

It lives in the job contract because the worker checks it too: a job queued under one code version
that starts after a checkout changed the result code would otherwise file the new code's results
under the old key (see `vtp.jobs.worker.check_code`).
"""

from __future__ import annotations

import hashlib
from importlib import metadata
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
RESULT_CODE = ("vtp/models", "vtp/losses", "vtp/train", "vtp/data", "vtp/eval", "vtp/flops", "vtp/stages",
               "vtp/tune", "vtp/config.py")


def source_hash(root: Path = PACKAGE_ROOT, parts: tuple[str, ...] = RESULT_CODE) -> str:
    """sha256 over (relative path, bytes) of every .py file under `parts`, in sorted order."""
    h = hashlib.sha256()
    files = []
    for part in parts:
        p = Path(root) / part
        files += [p] if p.is_file() else sorted(p.rglob("*.py"))
    for f in sorted(files):
        h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:12]


def code_version(root: Path = PACKAGE_ROOT) -> str:
    """`<package version>+src.<hash>`; computed by the caller once per command and passed along."""
    try:
        version = metadata.version("vtp-scaling")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return f"{version}+src.{source_hash(root)}"
