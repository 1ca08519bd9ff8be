"""The code version in run keys follows the code that computes results, and nothing else."""

import shutil
from pathlib import Path

from vtp.sweep.version import PACKAGE_ROOT, RESULT_CODE, code_version, source_hash


def _tree(tmp: Path) -> Path:
    root = tmp / "repo"
    for part in RESULT_CODE + ("vtp/sweep", "vtp/cli", "vtp/jobs"):
        src = PACKAGE_ROOT / part
        if src.is_file():
            (root / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, root / part)
        else:
            shutil.copytree(src, root / part, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "README.md").write_text("docs\n")
    return root


def test_only_result_code_changes_the_version(tmp_path):
    root = _tree(tmp_path)
    base = source_hash(root)
    assert base == source_hash(PACKAGE_ROOT)  # the same files, wherever the checkout is
    (root / "README.md").write_text("edited docs\n")
    (root / "vtp" / "cli" / "sweep.py").write_text("# the CLI changed\n")
    (root / "vtp" / "sweep" / "launcher.py").write_text("# the engine changed\n")
    (root / "vtp" / "jobs" / "worker.py").write_text("# the job contract changed (e.g. a reliability fix)\n")
    assert source_hash(root) == base
    loss = root / "vtp" / "losses" / "clip.py"
    loss.write_text(loss.read_text() + "\n# a loss changed\n")
    assert source_hash(root) != base
    assert code_version().endswith("+src." + source_hash())
