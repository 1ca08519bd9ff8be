"""Slope of y against x on log-log axes, with a confidence interval and draws for comparisons.

ln y = a + b ln x by least squares; b is negative when y falls as x grows. The interval resamples
whole runs when there are enough of them (>= MIN_UNITS_FOR_BOOTSTRAP); otherwise it is the
t-interval with n-2 degrees of freedom (points treated as independent, said in `method`).
Draws of (a, b) come with either method so that differences, multipliers and crossovers
get intervals the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from analysis.bootstrap import resample_weights, unit_codes

MIN_UNITS_FOR_BOOTSTRAP = 8


@dataclass(frozen=True)
class Slope:
    intercept: float  # a in ln y = a + b ln x
    slope: float  # b
    lo: float
    hi: float
    method: str
    draws: np.ndarray  # (k, 2): (a, b) draws
    n: int


def _wls(lx: np.ndarray, ly: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    sw = w.sum()
    mx, my = np.dot(w, lx) / sw, np.dot(w, ly) / sw
    sxx = np.dot(w, (lx - mx) ** 2)
    if sxx <= 0:
        return float("nan"), float("nan")
    b = np.dot(w, (lx - mx) * (ly - my)) / sxx
    return float(my - b * mx), float(b)


def loglog_slope(x: np.ndarray, y: np.ndarray, *, units: np.ndarray | None = None, n_boot: int = 1000,
                 seed: int = 0, level: float = 0.95) -> Slope:
    """Log-log slope with its `level` interval (needs >= 3 points with varying x)."""
    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    n = ly.size
    a, b = _wls(lx, ly, np.ones(n))
    rng = np.random.default_rng(seed)
    codes, n_units = unit_codes(units, n)
    q = (1.0 - level) / 2.0
    if n_units >= MIN_UNITS_FOR_BOOTSTRAP and n_boot > 0:
        draws = np.array([_wls(lx, ly, resample_weights(codes, n_units, rng)) for _ in range(n_boot)])
        draws = draws[np.all(np.isfinite(draws), axis=1)]
        lo, hi = np.quantile(draws[:, 1], [q, 1.0 - q])
        return Slope(a, b, float(lo), float(hi), f"bootstrap over {n_units} units", draws, n)
    df = n - 2
    resid = ly - (a + b * lx)
    s2 = float(resid @ resid) / df
    sxx = float(((lx - lx.mean()) ** 2).sum())
    se_b = np.sqrt(s2 / sxx)
    t = stats.t.ppf(1.0 - q, df)
    cov = s2 * np.array([[1.0 / n + lx.mean() ** 2 / sxx, -lx.mean() / sxx], [-lx.mean() / sxx, 1.0 / sxx]])
    # Parametric draws from the multivariate t of the OLS estimate (what the t-interval assumes).
    z = rng.multivariate_normal(np.zeros(2), cov, size=max(n_boot, 200), method="cholesky")
    chi = np.sqrt(rng.chisquare(df, size=(len(z), 1)) / df)
    draws = np.array([a, b]) + z / chi
    return Slope(a, b, float(b - t * se_b), float(b + t * se_b), f"t-interval (df={df})", draws, n)


def verdict(s: Slope | None, *, higher_is_better: bool = False) -> str:
    """scales / stagnates (CI includes 0) / worsens / insufficient-data."""
    if s is None or not (np.isfinite(s.lo) and np.isfinite(s.hi)):
        return "insufficient-data"
    if s.lo <= 0.0 <= s.hi:
        return "stagnates"
    improving = s.hi < 0.0 if not higher_is_better else s.lo > 0.0
    return "scales" if improving else "worsens"
