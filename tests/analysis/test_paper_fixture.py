"""The paper's data-scaling numbers (VTP arXiv 2512.13687): gFID at 1e5 / 1e6 / 1e7 / 1e8 images."""

import pandas as pd
import pytest

from analysis.laws import LawSettings, fit_laws
from analysis.slope import loglog_slope, verdict
from analysis.table import Columns

IMAGES = [1e5, 1e6, 1e7, 1e8]
VTP = [47.59, 40.57, 30.98, 27.45]
AE = [58.37, 58.39, 57.23, 56.71]


def test_vtp_slope_hand_computed():
    # OLS of ln gFID on ln images: ln y = 3.8627, 3.7033, 3.4334, 3.3123 at ln x = 11.513 ... 18.421;
    # slope = S_xy / S_xx = -0.0834.
    s = loglog_slope(IMAGES, VTP)
    assert s.slope == pytest.approx(-0.08340, abs=1e-4)
    assert s.hi < 0
    assert verdict(s) == "scales"


def test_ae_stagnates():
    s = loglog_slope(IMAGES, AE)
    assert s.lo <= 0 <= s.hi
    assert verdict(s) == "stagnates"


def test_pipeline_verdicts_and_comparison():
    frame = pd.DataFrame({"images": IMAGES * 2, "gfid": VTP + AE, "objective": ["vtp"] * 4 + ["ae"] * 4})
    cols = Columns(x="images", y="gfid", y_label="gFID", by=("objective",), family="objective")
    res = fit_laws(frame, cols, LawSettings(n_boot=100))
    got = {r.series.family: r for r in res.series}
    assert got["vtp"].verdict == "scales" and got["vtp"].slope.slope < 0 and got["vtp"].slope.hi < 0
    assert got["ae"].verdict == "stagnates"
    (comp,) = res.comparisons
    assert comp["status"] == "ok"
    lo, hi = comp["exponent_difference"]["ci"]
    assert hi < 0  # vtp's slope is steeper (more negative) than ae's
    assert comp["shared_exponent_lrt"]["p_value"] < 0.05


def test_worsening_series():
    s = loglog_slope(IMAGES, list(reversed(VTP)))
    assert verdict(s) == "worsens"
    assert verdict(s, higher_is_better=True) == "scales"
