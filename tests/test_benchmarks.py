"""Every benchmark runs in its quick mode (seconds, tiny sizes), so none can rot unnoticed.

Found by listing benchmarks/*.py: a new benchmark without `--quick` fails here the day it lands.
The quick mode checks the plumbing (it runs and prints its RESULT lines), not the figure; the
full-size runs and their figures live in benchmarks/RESULTS.md.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Benchmarks whose quick mode has a test of its own that also checks the RESULT keys.
OWN_TEST = {"ci_coverage": ROOT / "tests" / "analysis" / "test_ci_coverage_bench.py"}
BENCHMARKS = sorted(p for p in (ROOT / "benchmarks").glob("*.py") if not p.name.startswith("_") and p.stem not in OWN_TEST)
RESULT = re.compile(r"^RESULT (\S+=\S+)( \S+=\S+)*", re.M)


# Named here too, so that removing or renaming a benchmark is a visible change to this test.
KNOWN = {"ddp_scaling", "dit_throughput", "export_parquet", "fault_soak", "fit_bootstrap", "gpu_check", "job_overhead", "parquet_reader", "plan_scale", "probe_budget", "probe_gfd", "tokenizer_probe", "train_throughput"}


def test_there_are_benchmarks():
    assert {p.stem for p in BENCHMARKS} == KNOWN
    assert all(test.is_file() for test in OWN_TEST.values())


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda p: p.stem)
def test_benchmark_quick_mode_runs(script, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(script), "--quick"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, f"{script.name} --quick exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    assert RESULT.search(proc.stdout), f"{script.name} --quick printed no RESULT line:\n{proc.stdout[-2000:]}"
