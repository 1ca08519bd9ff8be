"""The import boundaries STYLE.md promises, checked on the source (static) and at run time."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCIENCE = ["vtp/models", "vtp/losses", "vtp/data", "vtp/train", "vtp/eval", "vtp/flops"]
LAUNCHER = ["vtp/sweep", "vtp/tracking", "cluster"]
# The stage contract (RunContext, the Tracker protocol) is plain Python that every side may read.
ALLOWED = {"vtp.stages.api"}
# (folders, forbidden top-level import prefixes, why)
RULES = [
    (SCIENCE, ("vtp.sweep", "vtp.tracking", "cluster", "vtp.cli", "vtp.stages"), "the science knows no scheduler"),
    (LAUNCHER, ("torch", "torchvision", "timm", "vtp.models", "vtp.losses", "vtp.train", "vtp.eval", "vtp.cli"),
     "the launcher knows no science (plan must work without a GPU stack)"),
    (["analysis"], ("torch", "torchvision", "timm", "vtp.models", "vtp.train", "vtp.losses", "vtp.cli"),
     "analysis reads tables, not trainers"),
    (["vtp/stages", "vtp/sweep", "vtp/tracking", "cluster", "analysis"] + SCIENCE, ("vtp.cli",), "CLIs are faces"),
]


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def _cases():
    for folders, forbidden, why in RULES:
        for folder in folders:
            for path in sorted((ROOT / folder).rglob("*.py")):
                yield pytest.param(path, forbidden, why, id=f"{path.relative_to(ROOT)}")


@pytest.mark.parametrize("path, forbidden, why", list(_cases()))
def test_module_respects_import_boundaries(path, forbidden, why):
    bad = [
        n for n in _imports(path)
        if n not in ALLOWED and any(n == f or n.startswith(f + ".") for f in forbidden)
    ]
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}: {why}"


def test_launcher_and_analysis_import_without_torch():
    code = (
        "import importlib, pkgutil, sys\n"
        "for pkg in ('vtp.sweep', 'vtp.tracking', 'cluster', 'analysis'):\n"
        "    m = importlib.import_module(pkg)\n"
        "    for info in pkgutil.walk_packages(m.__path__, pkg + '.'):\n"
        "        importlib.import_module(info.name)\n"
        "heavy = [name for name in ('torch', 'torchvision', 'timm') if name in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
