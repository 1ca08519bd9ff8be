"""The import boundaries STYLE.md promises, checked on the source (static) and at run time.

Every file of the project stands on one floor; a floor imports only the floors listed for it
(its own always). Arrows run one way: Face -> Engine -> Cluster -> jobs; Stages -> Science,
Tracking and jobs; Science -> nothing of ours but the config loader (and the Tracker protocol).
Imports inside functions and under TYPE_CHECKING count too: a lazy import is still an arrow.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FLOORS = {  # floor: the folders (or files) on it
    "face": ["vtp/cli"],
    "engine": ["vtp/sweep"],
    "cluster": ["cluster"],
    "stages": ["vtp/stages", "vtp/tune"],
    "tracking": ["vtp/tracking"],
    "analysis": ["analysis"],
    "science": ["vtp/models", "vtp/losses", "vtp/train", "vtp/data", "vtp/eval", "vtp/flops"],
    "jobs": ["vtp/jobs"],
    "config": ["vtp/config.py", "vtp/__init__.py"],
}

#             floor        may import (besides itself)
MAY_IMPORT = {
    "face":     {"engine", "cluster", "tracking", "analysis", "jobs", "config"},
    "engine":   {"cluster", "tracking", "jobs", "config"},
    "cluster":  {"jobs", "config"},
    "stages":   {"science", "tracking", "jobs", "config"},
    "tracking": {"jobs", "config"},
    "science":  {"config"},
    "analysis": set(),
    "jobs":     {"config"},
    "config":   set(),
}

# The few arrows that cross a floor on purpose, each with its reason: (importer floor, module).
EXCEPTIONS = {
    ("engine", "vtp.stages.configs"): "the torch-free stage config schemas that plan checks every run against",
    ("engine", "vtp.tune.spec"): "the torch-free schema of a stage's `tune:` section, checked at load",
    ("science", "vtp.jobs.tracker"): "training loops log through the Tracker protocol (and nothing else of jobs)",
}

NO_GPU_STACK = ("torch", "torchvision", "timm")
LIGHT_FLOORS = {"face", "engine", "cluster", "tracking", "analysis", "jobs", "config"}  # plan runs on a login node


def floor_of(path: Path) -> str | None:
    rel = path.relative_to(ROOT).as_posix()
    for floor, parts in FLOORS.items():
        if any(rel == p or rel.startswith(p + "/") for p in parts):
            return floor
    return None


def module_file(module: str) -> Path | None:
    """The project file a dotted module name is, or None when it is not ours."""
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(path: Path, source: str | None = None) -> list[str]:
    """Every module a file imports (absolute or relative; `from pkg import sub` names the submodule)."""
    tree = ast.parse(path.read_text() if source is None else source, filename=str(path))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for a in node.names:
                sub = f"{base}.{a.name}"
                names.append(sub if module_file(sub) else base)
    return list(dict.fromkeys(names))


def violations(path: Path, source: str | None = None) -> list[str]:
    """One line per import against the floors' direction: both files, both floors, the rule."""
    floor = floor_of(path)
    if floor is None:
        return []
    out = []
    for module in imported_modules(path, source):
        top = module.split(".")[0]
        if floor in LIGHT_FLOORS and top in NO_GPU_STACK:
            out.append(f"{path.relative_to(ROOT)} imports {module}: the {floor} floor imports no GPU stack")
            continue
        target = module_file(module)
        if target is None:
            continue
        other = floor_of(target)
        if other in (floor, None) or other in MAY_IMPORT[floor] or (floor, module) in EXCEPTIONS:
            continue
        out.append(f"{path.relative_to(ROOT)} ({floor}) imports {target.relative_to(ROOT)} ({other}): "
                   f"{floor} may import only {sorted(MAY_IMPORT[floor]) or 'nothing of ours'}")
    return out


def project_files() -> list[Path]:
    return sorted(p for parts in FLOORS.values() for part in parts
                  for p in ([ROOT / part] if part.endswith(".py") else (ROOT / part).rglob("*.py")))


def test_every_project_file_stands_on_a_floor():
    unplaced = [str(p.relative_to(ROOT)) for p in [*ROOT.glob("vtp/**/*.py"), *ROOT.glob("cluster/**/*.py"),
                                                   *ROOT.glob("analysis/**/*.py")] if floor_of(p) is None]
    assert not unplaced, f"add these to FLOORS: {unplaced}"


@pytest.mark.parametrize("path", project_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_run_one_way(path):
    bad = violations(path)
    assert not bad, "\n".join(bad)


def test_exceptions_are_still_needed():
    used = {(floor_of(p), m) for p in project_files() for m in imported_modules(p)}
    stale = [e for e in EXCEPTIONS if e not in used]
    assert not stale, f"these exceptions no longer cross a floor; remove them: {stale}"


@pytest.mark.parametrize("module", ["vtp.sweep.spec", "cluster.executors", "vtp.stages.tokenizer", "vtp.jobs.worker"])
def test_a_science_file_importing_upwards_is_caught(module):
    """The check itself can fail: a training loop that imports the engine, the cluster, the stages or
    the worker is reported with both file names."""
    loop = ROOT / "vtp/train/loop.py"
    bad = violations(loop, loop.read_text() + f"\nimport {module}\n")
    assert len(bad) == 1 and "vtp/train/loop.py (science)" in bad[0] and str(module_file(module).relative_to(ROOT)) in bad[0]


def _cycle(graph: dict[Path, set[Path]]) -> list[Path] | None:
    """A circle of files in the import graph, or None (depth-first search with a path stack)."""
    state: dict[Path, int] = {}  # 1: on the stack, 2: finished
    stack: list[Path] = []

    def visit(node: Path) -> list[Path] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def import_graph() -> dict[Path, set[Path]]:
    return {p: {t for m in imported_modules(p) if (t := module_file(m)) and t != p} for p in project_files()}


def test_no_circle_of_files():
    found = _cycle(import_graph())
    assert found is None, "import circle: " + " -> ".join(str(p.relative_to(ROOT)) for p in found)


def test_cycle_finder_finds_a_circle():
    a, b, c = (ROOT / n for n in ("a.py", "b.py", "c.py"))
    assert _cycle({a: {b}, b: {c}, c: {a}}) == [a, b, c, a]
    assert _cycle({a: {b}, b: {c}, c: set()}) is None


def test_light_floors_import_without_torch():
    code = (
        "import importlib, pkgutil, sys\n"
        "import cluster.executors, vtp.sweep\n"
        "for pkg in ('vtp.jobs', 'vtp.sweep', 'vtp.tracking', 'cluster', 'analysis'):\n"
        "    m = importlib.import_module(pkg)\n"
        "    for info in pkgutil.walk_packages(m.__path__, pkg + '.'):\n"
        "        importlib.import_module(info.name)\n"
        "heavy = [name for name in ('torch', 'torchvision', 'timm') if name in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
