"""Family comparison and correlation against hand-computed values."""

import numpy as np
import pytest

from analysis.compare import (
    BEYOND,
    correlation,
    crossover,
    shared_slope_test,
    slope_difference,
    x_ratio_to_reach,
)
from analysis.slope import loglog_slope

X = np.geomspace(1e2, 1e4, 6)
RNG = np.random.default_rng(0)


def _noisy(y):
    return y * np.exp(RNG.normal(0, 1e-4, y.size))


def test_multiplier_and_crossover_hand_computed():
    # a: y = 10 x^-0.1, b: y = 20 x^-0.2.  b at its largest x (1e4): 20 * 1e4^-0.2 = 20 * 10^-0.8.
    # a reaches that when 10 x^-0.1 = 20 * 10^-0.8 -> x = (2 * 10^-0.8)^-10 = 10^8 / 2^10 = 97656.25,
    # so a needs 97656.25 / 1e4 = 9.765625x the x.  Lines cross where x^0.1 = 2 -> x = 1024.
    sa, sb = loglog_slope(X, _noisy(10 * X ** -0.1)), loglog_slope(X, _noisy(20 * X ** -0.2))
    y_target = 20 * 1e4 ** -0.2
    m = x_ratio_to_reach(sa, sb, y_target, x_range=(1e2, 1e4), beyond_factor=100)
    assert m["estimate"] == pytest.approx(9.765625, rel=0.02)
    assert m["ci"][0] <= m["estimate"] <= m["ci"][1]
    c = crossover(sa, sb, x_range=(1e2, 1e4), beyond_factor=10)
    assert c["estimate"] == pytest.approx(1024, rel=0.05)
    d = slope_difference(sa, sb)
    assert d["estimate"] == pytest.approx(-0.1, abs=1e-3) and d["ci"][1] < 0
    assert "slope(b) - slope(a)" in d["definition"]


def test_extrapolation_beyond_the_factor_is_not_a_number():
    # Same lines: a reaches b's target at x = 97656 (9.77x the largest observed x = 1e4).
    sa, sb = loglog_slope(X, _noisy(10 * X ** -0.1)), loglog_slope(X, _noisy(20 * X ** -0.2))
    m = x_ratio_to_reach(sa, sb, 20 * 1e4 ** -0.2, x_range=(1e2, 1e4), beyond_factor=5)
    assert m["estimate"] == BEYOND
    # the crossing at x = 1024 lies inside the data; with lines crossing at 1e-10 it would not be
    sc = loglog_slope(X, _noisy(20 * X ** -0.1))
    c = crossover(sa, sc, x_range=(1e2, 1e4), beyond_factor=10)
    assert c["estimate"] == BEYOND and c["ci"] == [BEYOND, BEYOND]  # parallel lines never cross


def test_ratio_is_beyond_when_a_never_improves_on_either_side():
    sa, sb = loglog_slope(X, _noisy(10 * X ** 0.05)), loglog_slope(X, _noisy(20 * X ** -0.2))
    m = x_ratio_to_reach(sa, sb, 20 * 1e4 ** -0.2, x_range=(1e2, 1e4), beyond_factor=10)
    assert m["estimate"] == BEYOND and m["ci"][1] == BEYOND
    # and with higher-is-better, a line that falls never reaches a higher target
    m = x_ratio_to_reach(sb, sa, 10 * 1e4 ** 0.05, x_range=(1e2, 1e4), beyond_factor=10, lower_is_better=False)
    assert m["estimate"] == BEYOND


def test_f_test_separates_shared_from_different_slopes():
    rng = np.random.default_rng(1)
    noise = lambda: np.exp(rng.normal(0, 0.02, X.size))  # noqa: E731
    same = shared_slope_test(X, 10 * X ** -0.2 * noise(), X, 20 * X ** -0.2 * noise())
    diff = shared_slope_test(X, 10 * X ** -0.05 * noise(), X, 20 * X ** -0.3 * noise())
    assert same["p_value"] > 0.01
    assert diff["p_value"] < 1e-4
    assert same["df"] == [1, 2 * X.size - 4]


def test_f_test_is_the_exact_f_distribution_by_hand():
    # Independent points: F = (RSS_shared - RSS_sep) / (RSS_sep / (n - 4)) against F(1, n - 4).
    from scipy import stats

    rng = np.random.default_rng(3)
    ya, yb = 10 * X ** -0.2 * np.exp(rng.normal(0, 0.02, 6)), 20 * X ** -0.25 * np.exp(rng.normal(0, 0.02, 6))
    lx, g = np.log(np.concatenate([X, X])), np.repeat([0.0, 1.0], 6)
    ly = np.log(np.concatenate([ya, yb]))
    sep = np.column_stack([1 - g, g, lx * (1 - g), lx * g])
    sh = np.column_stack([1 - g, g, lx])
    rss = [float(np.sum((ly - m @ np.linalg.lstsq(m, ly, rcond=None)[0]) ** 2)) for m in (sh, sep)]
    f = (rss[0] - rss[1]) / (rss[1] / 8)
    got = shared_slope_test(X, ya, X, yb)
    assert got["statistic"] == pytest.approx(f, rel=1e-9)
    assert got["p_value"] == pytest.approx(stats.f.sf(f, 1, 8), rel=1e-9)


def test_f_test_false_positive_rate_with_equal_slopes_is_nominal():
    # The old n ln(RSS0/RSS1) ~ chi2(1) rejected 19 % of 4+4 null series at a nominal 5 %.
    rng = np.random.default_rng(5)
    x4 = np.geomspace(1e2, 1e5, 4)
    rejected = 0
    for _ in range(400):
        ya = 10 * x4 ** -0.2 * np.exp(rng.normal(0, 0.02, 4))
        yb = 20 * x4 ** -0.2 * np.exp(rng.normal(0, 0.02, 4))
        rejected += shared_slope_test(x4, ya, x4, yb)["p_value"] < 0.05
    assert 0.02 <= rejected / 400 <= 0.08


def test_correlation_fisher_and_units():
    rng = np.random.default_rng(2)
    probe = np.linspace(0.2, 0.8, 24)
    gen = 60 - 40 * probe + rng.normal(0, 1.0, probe.size)
    c = correlation(probe, gen)
    assert c["pearson"]["estimate"] < -0.9
    assert c["spearman"]["ci"][1] < 0
    assert "Fisher" in c["method"]
    units = np.repeat(np.arange(12), 2)
    cu = correlation(probe, gen, units=units, n_boot=200)
    assert "bootstrap over 12 units" in cu["method"]
    assert cu["pearson"]["ci"][0] <= c["pearson"]["estimate"] <= cu["pearson"]["ci"][1]
    assert correlation(probe[:3], gen[:3])["status"] == "insufficient-data"
