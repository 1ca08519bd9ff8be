"""Dependencies whose internals we use carry an upper bound."""

import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def test_mlflow_has_an_upper_bound_since_its_tables_are_written_directly():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    [mlflow] = [d for d in deps if re.match(r"mlflow\b", d)]
    assert "<" in mlflow, mlflow  # vtp.tracking.prepare._bulk_create_sqlite inserts into MLflow's tables
    from importlib.metadata import version

    from packaging.specifiers import SpecifierSet

    assert version("mlflow") in SpecifierSet(mlflow.removeprefix("mlflow").split(";")[0])
