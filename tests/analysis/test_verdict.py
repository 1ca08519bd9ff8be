"""Verdicts from the law's local slope: the rules, the slope formulas, and the cases a straight
line gets wrong (flat tail, U-shape, too few points)."""

import math

import numpy as np
import pandas as pd
import pytest

from analysis.fit import prepare_x
from analysis.forms import JOINT, LOGLINEAR, POWER, SATURATING, local_log_slope
from analysis.laws import LawSettings, fit_laws
from analysis.table import Columns
from analysis.verdict import band_from_per_decade, verdict

BAND = band_from_per_decade(0.05)


def test_band_is_five_percent_per_decade():
    # 10x more x changes y by a factor 10^band = 1.05
    assert 10 ** BAND == pytest.approx(1.05)
    assert BAND == pytest.approx(math.log(1.05) / math.log(10))


@pytest.mark.parametrize("est, lo, hi, higher, want", [
    (-0.10, -0.15, -0.05, False, "scales"),
    (-0.10, -0.15, -0.05, True, "worsens"),
    (0.10, 0.05, 0.15, False, "worsens"),
    (0.001, -0.01, 0.012, False, "stagnates"),
    (-0.005, -0.01, -0.001, False, "stagnates"),  # non-zero but negligible: inside the band wins
    (-0.05, -0.20, 0.10, False, "inconclusive"),  # the old rule called this "stagnates"
    (-0.05, float("nan"), float("nan"), False, "inconclusive"),
])
def test_verdict_rules(est, lo, hi, higher, want):
    assert verdict(est, lo, hi, band=BAND, higher_is_better=higher) == want


def test_local_slopes_match_closed_forms():
    lref = np.log(np.array([1e5]))
    x = 3e6
    lx = np.log([x]) - lref
    th = np.array([np.log(40.0) - 0.3 * lref[0], 0.3])
    assert local_log_slope(POWER, th, lx) == pytest.approx(-0.3, abs=1e-8)
    e, a, alpha = 2.0, 60.0, 0.35  # d ln(E + A x^-a) / d ln x = -a A x^-a / (E + A x^-a)
    th = np.array([e, np.log(a) - alpha * lref[0], alpha])
    p = a * x**-alpha
    assert local_log_slope(SATURATING, th, lx) == pytest.approx(-alpha * p / (e + p), rel=1e-7)
    a0, b = 50.0, -4.0  # d ln(a + b log10 x) / d ln x = (b / ln 10) / f
    th = np.array([a0 + b * lref[0] / math.log(10), b])
    assert local_log_slope(LOGLINEAR, th, lx) == pytest.approx(b / math.log(10) / (a0 + b * math.log10(x)), rel=1e-7)


def test_joint_local_slope_grows_both_columns():
    # d ln f / d ln s at (sN, sD) = -(alpha A N^-alpha + beta B D^-beta) / f: both terms, not N only
    c = {"E": 1.7, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
    lref = np.log(np.array([1e8, 1e10]))
    th = np.array([c["E"], np.log(c["A"]) - c["alpha"] * lref[0], np.log(c["B"]) - c["beta"] * lref[1],
                   c["alpha"], c["beta"]])
    n, d = 7e9, 1.4e11
    pa, pb = c["A"] * n ** -c["alpha"], c["B"] * d ** -c["beta"]
    want = -(c["alpha"] * pa + c["beta"] * pb) / (c["E"] + pa + pb)
    got = local_log_slope(JOINT, th, prepare_x(np.array([[n, d]]), lref)[0][0])
    assert got == pytest.approx(want, rel=1e-7)


def _one_run(y):
    x = np.geomspace(1e4, 10**6.5, y.size)
    return pd.DataFrame({"x": x, "y": y, "run": "r0"})


COLS = Columns(x="x", y="y", y_label="y", unit="run")
SETTINGS = LawSettings(forms=("power", "saturating", "loglinear", "broken"), n_boot=100)


def test_flat_last_two_decades_stagnates_not_scales():
    # Falls over the first half decade, flat after: the whole-range line is steeply negative, the
    # law's slope at the largest x is ~0 and its interval inside the band.
    rng = np.random.default_rng(4)
    u = np.geomspace(1, 10**2.5, 9)
    (r,) = fit_laws(_one_run(5 * (1 + 2 * u**-3.0) * np.exp(rng.normal(0, 0.01, 9))), COLS, SETTINGS).series
    assert r.slope.slope < -0.1  # a steep whole-range line
    assert r.verdict == "stagnates", (r.chosen, r.local)


def test_u_shape_worsens_not_stagnates():
    rng = np.random.default_rng(5)
    v = np.geomspace(10**-1.25, 10**1.25, 9)
    (r,) = fit_laws(_one_run(10 * (v**-0.4 + v**0.4) * np.exp(rng.normal(0, 0.01, 9))), COLS, SETTINGS).series
    assert r.slope.lo < 0 < r.slope.hi  # what the old rule read as "stagnates"
    assert r.chosen == "broken" and r.verdict == "worsens", (r.chosen, r.local)
