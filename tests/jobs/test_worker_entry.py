"""`python -m vtp.jobs.worker` (how every job starts) runs its module once: the package must not
import the worker first (runpy then warns in every worker log and runs the module's top level twice)."""

import subprocess
import sys


def test_the_worker_entry_point_is_not_imported_twice():
    p = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-m", "vtp.jobs.worker"],
                       capture_output=True, text=True, timeout=120)
    assert "found in sys.modules" not in p.stderr, p.stderr
    assert "usage: python -m vtp.jobs.worker" in p.stdout + p.stderr
