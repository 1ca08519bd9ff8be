"""The whole-range log-log slope: a straight line through all points, ln y = a + b ln x.

A summary of the observed range, labelled as such; verdicts come from the fitted law's local
slope instead (verdict.py). Its interval is made the way the law's are (intervals.py), in closed
form because the line is linear: resampling whole runs when there are enough (widened by
t_{K-1}/z), otherwise a parametric bootstrap-t with AR(1) noise within runs (noise.py). With one
point per run and no correlation this reproduces the classic t-interval with n - 2 df.
Draws of (a, b) come with either method so that differences, multipliers and crossovers get
intervals the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis import noise
from analysis.bootstrap import resample_weights, t_width_factor, unit_codes
from analysis.intervals import MIN_UNITS_FOR_BOOTSTRAP
from analysis.parametric import MIN_DF

MIN_LINE_DRAWS = 200  # the line is cheap: never fewer draws than this, whatever n_boot says


@dataclass(frozen=True)
class Slope:
    intercept: float  # a in ln y = a + b ln x
    slope: float  # b
    lo: float
    hi: float
    method: str
    draws: np.ndarray  # (k, 2): (a, b) draws (empty without an honest interval)
    n: int
    why_none: str = ""


def _lines(lx: np.ndarray, ly: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted least-squares (a, b) for each row of weights w (k, n) and values ly (k, n) or (n,)."""
    sw = w.sum(axis=1)
    mx = (w @ lx) / sw
    my = np.sum(w * ly, axis=1) / sw
    dx = lx[None, :] - mx[:, None]
    sxx = np.sum(w * dx * dx, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        b = np.sum(w * dx * (ly - my[:, None]), axis=1) / sxx
    return np.column_stack([my - b * mx, b])


def loglog_slope(x: np.ndarray, y: np.ndarray, *, units: np.ndarray | None = None, n_boot: int = 1000,
                 seed: int = 0, level: float = 0.95) -> Slope:
    """Log-log slope with its `level` interval (needs >= 3 points with varying x)."""
    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    n = ly.size
    a, b = _lines(lx, ly, np.ones((1, n)))[0]
    rng = np.random.default_rng(seed)
    codes, n_units = unit_codes(units, n)
    k = max(n_boot, MIN_LINE_DRAWS)
    q = 100.0 * (1.0 - level) / 2.0
    if n_units >= MIN_UNITS_FOR_BOOTSTRAP:
        draws = _lines(lx, ly, np.array([resample_weights(codes, n_units, rng) for _ in range(k)]))
        draws = draws[np.all(np.isfinite(draws), axis=1)]
        factor = t_width_factor(n_units, level)
        draws = np.array([a, b]) + factor * (draws - np.array([a, b]))
        what = "runs" if units is not None else "points (no run column)"
        method = f"bootstrap over {n_units} {what}, width x t{n_units - 1}/z"
    elif n - 2 < MIN_DF:
        why = f"{n} points leave {n - 2} residual degree(s) of freedom for a line (need {MIN_DF})"
        return Slope(a, b, float("nan"), float("nan"), "none", np.empty((0, 2)), n, why)
    else:
        runs = noise.runs_in_order(codes, lx)
        offset = noise.independent_offset(np.column_stack([np.ones(n), lx]), runs)
        model = noise.estimate(ly - (a + b * lx), runs, 2, offset)
        sims = a + b * lx + noise.simulate(model, runs, n, k, rng)  # (k, n)
        reps = _lines(lx, sims, np.ones_like(sims))
        sig, rho = noise.estimate_many(sims - reps[:, :1] - reps[:, 1:] * lx, runs, 2, offset)
        v_hat = noise.slope_variance(np.array([model.sigma]), np.array([model.rho]), runs, lx)[0]
        factor = np.sqrt(v_hat / np.maximum(noise.slope_variance(sig, rho, runs, lx), 1e-300))
        draws = np.array([a, b]) + factor[:, None] * (reps - np.array([a, b]))
        how = f"AR(1) within runs, rho={model.rho:.2f}" if model.n_pairs else "independent points, one per run"
        method = f"parametric bootstrap-t, {how}, {n_units} run(s)"
    lo, hi = np.percentile(draws[:, 1], [q, 100.0 - q])
    return Slope(float(a), float(b), float(lo), float(hi), method, draws, n)
