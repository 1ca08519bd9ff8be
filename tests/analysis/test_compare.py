"""Family comparison and correlation against hand-computed values."""

import numpy as np
import pytest

from analysis.compare import (
    compute_multiplier,
    correlation,
    crossover,
    exponent_difference,
    shared_exponent_lrt,
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
    m = compute_multiplier(sa, sb, y_target)
    assert m["estimate"] == pytest.approx(9.765625, rel=0.02)
    assert m["ci"][0] <= m["estimate"] <= m["ci"][1]
    c = crossover(sa, sb)
    assert c["estimate"] == pytest.approx(1024, rel=0.05)
    d = exponent_difference(sa, sb)
    assert d["estimate"] == pytest.approx(-0.1, abs=1e-3) and d["ci"][1] < 0


def test_multiplier_is_infinite_when_a_never_improves():
    sa, sb = loglog_slope(X, _noisy(10 * X ** 0.05)), loglog_slope(X, _noisy(20 * X ** -0.2))
    m = compute_multiplier(sa, sb, 20 * 1e4 ** -0.2)
    assert m["estimate"] == float("inf")


def test_lrt_separates_shared_from_different_slopes():
    rng = np.random.default_rng(1)
    noise = lambda: np.exp(rng.normal(0, 0.02, X.size))  # noqa: E731
    same = shared_exponent_lrt(X, 10 * X ** -0.2 * noise(), X, 20 * X ** -0.2 * noise())
    diff = shared_exponent_lrt(X, 10 * X ** -0.05 * noise(), X, 20 * X ** -0.3 * noise())
    assert same["p_value"] > 0.01
    assert diff["p_value"] < 1e-4


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
