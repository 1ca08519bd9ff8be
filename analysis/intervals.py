"""Which interval method a series gets, by what its data allow (the method is printed with it).

- >= MIN_UNITS_FOR_BOOTSTRAP runs: resample whole runs (bootstrap.py), widened by t_{K-1}/z.
- fewer runs (the common case: one run, 9 checkpoints): parametric bootstrap-t with the noise's
  within-run correlation estimated from the residuals (parametric.py).
- fewer than parametric.MIN_DF residual degrees of freedom: no interval, and the reason.

The thresholds are checked by benchmarks/ci_coverage.py (1, 3 and 10 runs per series).
"""

from __future__ import annotations

import numpy as np

from analysis.bootstrap import bootstrap_fit, unit_codes
from analysis.draws import Draws
from analysis.fit import DEFAULT_FIT, FitResult, FitSettings
from analysis.forms import Form
from analysis.parametric import parametric_fit

MIN_UNITS_FOR_BOOTSTRAP = 8


def interval_draws(form: Form, x: np.ndarray, y: np.ndarray, *, full: FitResult, units: np.ndarray | None,
                   n_boot: int = 1000, seed: int = 0, settings: FitSettings = DEFAULT_FIT,
                   level: float = 0.95) -> Draws:
    """Calibrated draws of `form`'s parameters around the full fit, by the method the data allow."""
    _, n_units = unit_codes(units, len(y))
    if n_units >= MIN_UNITS_FOR_BOOTSTRAP:
        return bootstrap_fit(form, x, y, full=full, units=units, n_boot=n_boot, seed=seed, settings=settings,
                             level=level)
    return parametric_fit(form, x, y, full=full, units=units, n_boot=n_boot, seed=seed, settings=settings)
