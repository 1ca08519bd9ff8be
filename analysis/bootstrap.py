"""Intervals from resampling whole runs, for series with enough runs (intervals.py decides).

The checkpoints of one tokenizer run are not independent draws, so the resampling unit is a
run (e.g. the snapshot's `root_key`); when no unit column is given, each point is its own unit.
A replicate is a weighted refit (weights = how often each point's unit was drawn, same Huber
threshold as the full fit), warm-started from the full-data fit and retried from the full start
grid only when that fails (batchfit.py first refits them all at once). Replicates that do not
converge are counted and left out.

With K runs the percentile interval is too narrow (its spread estimates the sampling spread with
K - 1 degrees of freedom, like a z-interval where a t-interval is due), so the draws are
stretched about the estimate by t_{K-1}/z at the requested level; measured by
benchmarks/ci_coverage.py (10 runs: see benchmarks/RESULTS.md).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from analysis.batchfit import refit_many
from analysis.draws import Draws, make_draws, stretch
from analysis.fit import DEFAULT_FIT, FitResult, FitSettings, prepare_x, refit_settings
from analysis.forms import Form
from analysis.threads import single_threaded_blas


def unit_codes(units: np.ndarray | None, n: int) -> tuple[np.ndarray, int]:
    """Integer code per point and the number of units (each point its own unit when None).

    Codes follow the units' first appearance in the points' order, not the sorted unit names: the
    names are run keys, which change with the code version, and the resample stream follows the
    codes, so sorting by name made the intervals of identical data move with every code change."""
    if units is None:
        return np.arange(n), n
    _, first, codes = np.unique(np.asarray(units).astype(str), return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size)
    codes = rank[codes.reshape(-1)]
    return codes, int(codes.max()) + 1 if codes.size else 0


def resample_weights(codes: np.ndarray, n_units: int, rng: np.random.Generator) -> np.ndarray:
    """Point weights for one replicate: how many times each point's unit was drawn."""
    counts = np.bincount(rng.integers(0, n_units, n_units), minlength=n_units)
    return counts[codes].astype(float)


def t_width_factor(n_units: int, level: float) -> float:
    """t_{K-1} / z quantile ratio at `level`: how much wider a K-unit interval must be."""
    q = 0.5 + level / 2.0
    return float(stats.t.ppf(q, max(n_units - 1, 1)) / stats.norm.ppf(q))


def bootstrap_fit(form: Form, x: np.ndarray, y: np.ndarray, *, full: FitResult,
                  units: np.ndarray | None = None, n_boot: int = 1000, seed: int = 0,
                  settings: FitSettings = DEFAULT_FIT, level: float = 0.95) -> Draws:
    """Refit `form` on `n_boot` unit-resampled replicates of (x, y); draws stretched by t_{K-1}/z."""
    with single_threaded_blas():
        return _bootstrap(form, x, y, full=full, units=units, n_boot=n_boot, seed=seed,
                          settings=refit_settings(settings, full), level=level)


def _bootstrap(form: Form, x: np.ndarray, y: np.ndarray, *, full: FitResult, units: np.ndarray | None,
               n_boot: int, seed: int, settings: FitSettings, level: float) -> Draws:
    rng = np.random.default_rng(seed)
    codes, n_units = unit_codes(units, len(y))
    # A refit is a pure function of the weights: with few units many replicates repeat a draw,
    # so each distinct weight vector is fitted once (all of them together: batchfit.py).
    weights = [resample_weights(codes, n_units, rng) for _ in range(n_boot)]
    weights = [w for w in weights if np.count_nonzero(w) >= form.min_points]  # fewer identify nothing
    distinct = {w.tobytes(): w for w in weights}
    ws = np.array(list(distinct.values())).reshape(-1, len(y))
    y = np.asarray(y, float)
    fitted = refit_many(form, x, np.broadcast_to(y, ws.shape), ws, full=full, settings=settings)
    memo = dict(zip(distinct, fitted))
    thetas = [memo[w.tobytes()] for w in weights if memo[w.tobytes()] is not None]
    factor = t_width_factor(n_units, level)
    arr = np.array(thetas).reshape(-1, len(form.params))
    lx, _ = prepare_x(x, full.lref)
    arr = stretch(full.theta, arr, factor, form.bounds(lx, np.asarray(y, float)))
    what = "runs" if units is not None else "points (no run column)"
    return make_draws(form, arr, full.lref, method=f"bootstrap over {n_units} {what}, width x t{n_units - 1}/z",
                      n_requested=n_boot, n_units=n_units, details={"width_factor": factor})
