"""The paper's data-scaling numbers (VTP arXiv 2512.13687): gFID at 1e5 / 1e6 / 1e7 / 1e8 images."""

import pandas as pd
import pytest

from analysis.laws import LawSettings, fit_laws
from analysis.slope import loglog_slope
from analysis.table import Columns
from analysis.verdict import band_from_per_decade, verdict

BAND = band_from_per_decade(0.05)


def _verdict(s, **kw):
    return verdict(s.slope, s.lo, s.hi, band=BAND, **kw)

IMAGES = [1e5, 1e6, 1e7, 1e8]
VTP = [47.59, 40.57, 30.98, 27.45]
AE = [58.37, 58.39, 57.23, 56.71]


def test_vtp_slope_hand_computed():
    # OLS of ln gFID on ln images: ln y = 3.8627, 3.7033, 3.4334, 3.3123 at ln x = 11.513 ... 18.421;
    # slope = S_xy / S_xx = -0.0834.
    s = loglog_slope(IMAGES, VTP)
    assert s.slope == pytest.approx(-0.08340, abs=1e-4)
    assert s.hi < 0
    assert _verdict(s) == "scales"


def test_ae_stagnates():
    # AE loses 3 % over three decades: its line's interval lies inside +-0.0212 (5 % per decade)
    s = loglog_slope(IMAGES, AE)
    assert -BAND < s.lo < s.hi < BAND  # (whether or not it holds 0: negligible either way)
    assert _verdict(s) == "stagnates"


def test_pipeline_verdicts_and_comparison():
    frame = pd.DataFrame({"images": IMAGES * 2, "gfid": VTP + AE, "objective": ["vtp"] * 4 + ["ae"] * 4})
    cols = Columns(x="images", y="gfid", y_label="gFID", by=("objective",), family="objective")
    res = fit_laws(frame, cols, LawSettings(n_boot=100))
    got = {r.series.family: r for r in res.series}
    assert got["vtp"].verdict == "scales" and got["vtp"].local.estimate < 0 and got["vtp"].local.hi < 0
    assert got["vtp"].slope.slope < 0 and got["vtp"].slope.hi < 0
    assert got["ae"].verdict == "stagnates"
    assert -BAND < got["ae"].local.lo and got["ae"].local.hi < BAND
    (comp,) = res.comparisons
    assert comp["status"] == "ok"
    lo, hi = comp["loglog_slope_b_minus_a"]["ci"]
    assert hi < 0  # vtp's slope is steeper (more negative) than ae's
    test = comp["shared_slope_test"]
    assert test["df"] == [1, 4] and test["p_value"] < 0.05


def test_worsening_series():
    s = loglog_slope(IMAGES, list(reversed(VTP)))
    assert _verdict(s) == "worsens"
    assert _verdict(s, higher_is_better=True) == "scales"
