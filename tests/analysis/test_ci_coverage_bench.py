"""benchmarks/ci_coverage.py --quick runs and prints a parseable RESULT line (every benchmark has a
quick mode the suite runs; the full figures are in benchmarks/RESULTS.md)."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KEYS = ("coverage_1run", "coverage_3runs", "coverage_10runs", "lrt_false_positive", "lrt_false_positive_4x4",
        "lrt_false_positive_9x9", "verdict_accuracy")


def test_quick_mode_prints_result():
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "ci_coverage.py"), "--quick", "--workers", "1"],
                          capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    got = dict(re.findall(r"(\w+)=([\d.]+)", line))
    assert tuple(got) == KEYS
    assert all(0.0 <= float(v) <= 1.0 for v in got.values())
