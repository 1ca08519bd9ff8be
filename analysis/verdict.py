"""Verdicts from the fitted law: the local slope at the largest observed x, with its interval.

d ln y / d ln x of the chosen law at the largest x says whether *more x still helps there*; a
straight line through all points does not (a curve flat over its last decades has a negative
whole-range slope; a U-shape has a slope near 0). Rules, for y that is better lower
(`higher_is_better` flips the sign of "improving"):

  stagnates     the interval lies inside (-band, band): meaningful improvement is ruled out
                (checked first: a statistically non-zero but negligible slope is stagnation)
  scales        the slope is below 0 and its interval excludes 0
  worsens       the slope is above 0 and its interval excludes 0
  inconclusive  anything else, and whenever no honest interval exists

The band is a practical equivalence margin (TOST logic: Schuirmann 1987), set as the largest
change per 10x of x that counts as "no change": 5 % per decade -> ln(1.05)/ln(10) = 0.0212.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from analysis.draws import Draws
from analysis.fit import FitResult
from analysis.forms import Form, local_log_slope

VERDICTS = ("scales", "stagnates", "worsens", "inconclusive", "insufficient-data")
DEFAULT_FLAT_PER_DECADE = 0.05


def band_from_per_decade(change: float) -> float:
    """Slope band (d ln y / d ln x) equivalent to a relative change of `change` per 10x of x."""
    if not 0.0 < change < 1.0:
        raise ValueError(f"flat-per-decade change must be in (0, 1), got {change}")
    return math.log1p(change) / math.log(10.0)


@dataclass(frozen=True)
class LocalSlope:
    at_x: list[float]  # the point (one value per x column) where the slope is taken
    estimate: float
    lo: float
    hi: float
    method: str
    why_none: str = ""  # why there is no interval ("" when there is one)


def largest_x_point(x: np.ndarray) -> np.ndarray:
    """The observed point with the largest x (joint law: the largest product of its x columns)."""
    x2 = np.asarray(x, float).reshape(len(x), -1)
    return x2[int(np.argmax(np.log(x2).sum(axis=1)))]


def local_slope(form: Form, fit: FitResult, draws: Draws | None, x: np.ndarray, level: float) -> LocalSlope:
    """The law's slope at the largest observed x, with the percentile interval of the draws."""
    point = largest_x_point(x)
    lx = np.log(point) - fit.lref
    est = local_log_slope(form, fit.theta, lx)
    if draws is None or not draws.informative:
        why = "no interval requested" if draws is None else (draws.why_none or "the draws do not vary")
        return LocalSlope(point.tolist(), est, float("nan"), float("nan"), "none", why)
    vals = np.array([local_log_slope(form, t, lx) for t in draws.thetas])
    q = 100.0 * (1.0 - level) / 2.0
    lo, hi = np.percentile(vals, [q, 100.0 - q])
    return LocalSlope(point.tolist(), est, float(lo), float(hi), draws.method)


def verdict(est: float, lo: float, hi: float, *, band: float, higher_is_better: bool = False) -> str:
    """scales / stagnates / worsens / inconclusive from a slope and its interval (rules above)."""
    if not (np.isfinite(lo) and np.isfinite(hi) and np.isfinite(est)):
        return "inconclusive"
    if -band < lo and hi < band:
        return "stagnates"
    if lo > 0.0 or hi < 0.0:
        improving = hi < 0.0 if not higher_is_better else lo > 0.0
        return "scales" if improving else "worsens"
    return "inconclusive"
