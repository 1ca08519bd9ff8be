"""Keep BLAS single-threaded while fitting.

The fits are thousands of tiny problems (tens of points, <= 5 parameters); a multithreaded BLAS
called from scipy's L-BFGS-B wakes worker threads that spin, which measured ~10x slower on a busy
2-core machine. threadpoolctl limits the pools for the duration of a call only (no global state
left behind); without it, set OPENBLAS_NUM_THREADS=1 (the CLI does so before importing numpy).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: the CLI's environment default covers command-line use
        yield
        return
    with threadpool_limits(limits=1):
        yield
