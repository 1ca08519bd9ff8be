"""The batched refit (analysis/batchfit.py) against the scipy path it stands in for, draw by draw.

For each form of the benchmark's verdict set (saturating, power, loglinear, broken), series like the
benchmark's (9 log-spaced checkpoints, 2 % + AR(1) noise) are fitted, then perturbed or reweighted
as the parametric and run bootstraps do, and each replicate is refitted twice: by scipy
(fit_form_unlimited warm-started at the full fit, min_agree=1, as bootstrap.py/parametric.py did)
and by batch_minimise. Tolerance: every parameter within 1e-5 x (1 + |theta|) (measured worst
4e-6, typically 1e-9; scipy's ftol/gtol stop short of the minimum, the batch goes to machine
precision), the batch's loss never above scipy's, and every replicate scipy brings to convergence
also passes fit.py's test from the batch. Parameters are compared where the minimum is unique, i.e.
at least p points lie inside the Huber threshold at scipy's answer; with fewer the loss is flat
along a line (piecewise linear there) and both answers are minima (their losses agree to 1e-15).
"""

from __future__ import annotations

import numpy as np
import pytest

from analysis.batchfit import batch_minimise, box, refit_many
from analysis.bootstrap import bootstrap_fit
from analysis.fit import (
    DEFAULT_FIT,
    HUBER_K,
    fit_form,
    fit_form_unlimited,
    objective,
    prepare_x,
    projected_grad_norm,
    refit_settings,
)
from analysis.forms import get_form

X = np.geomspace(1e4, 10**6.5, 9)
RTOL = 1e-5


def _noise(rng: np.random.Generator, m: int) -> np.ndarray:
    c = np.empty(m)
    c[0] = rng.normal(0.0, 0.01)
    for t in range(1, m):
        c[t] = 0.7 * c[t - 1] + np.sqrt(1 - 0.49) * 0.01 * rng.normal()
    return rng.normal(0.0, 0.02, m) + c


def _series(name: str, seed: int, n_runs: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    u = X / X[0]
    if name == "saturating":
        e = rng.uniform(1, 3)
        clean = e + rng.uniform(2, 6) * e * u ** -rng.uniform(0.2, 0.6)
    elif name == "power":
        clean = 50.0 * u ** -rng.uniform(0.15, 0.5)
    elif name == "loglinear":
        clean = 5.0 - rng.uniform(0.4, 0.8) * np.log10(u)
    else:  # broken: a U-shape about the middle, as the benchmark's "worsens" series
        v = X / np.sqrt(X[0] * X[-1])
        clean = 10.0 * (v ** -rng.uniform(0.3, 0.5) + 0.3 * v ** rng.uniform(0.3, 0.5))
    x = np.tile(X, n_runs)
    return x, np.concatenate([clean * np.exp(_noise(rng, X.size)) for _ in range(n_runs)])


def _compare(form, x, ys, ws, full):
    settings = refit_settings(DEFAULT_FIT, full)
    lx, _ = prepare_x(x, full.lref)
    boxes = [box(form.bounds(lx[w > 0], y[w > 0])) for y, w in zip(ys, ws)]
    lo, hi = np.array([b[0] for b in boxes]), np.array([b[1] for b in boxes])
    got = batch_minimise(form, lx, np.log(ys), ws, lo, hi, np.clip(full.theta, lo, hi), full.delta)
    n_scipy = n_unique = 0
    for k in range(len(ys)):
        ref = fit_form_unlimited(form, x, ys[k], settings=settings, weights=ws[k], starts=full.theta[None, :],
                                 lref=full.lref, min_agree=1)
        theta = got.thetas[k]
        _, grad = objective(theta, form, lx, np.log(ys[k]), ws[k], full.delta, 1.0 / full.delta)
        gnorm = projected_grad_norm(theta, grad, form.bounds(lx[ws[k] > 0], ys[k][ws[k] > 0]))
        if not ref.converged:
            continue
        n_scipy += 1
        assert gnorm <= settings.grad_rtol * ws[k].sum() and got.n_iter[k] > 0, (k, gnorm)
        ref_loss = objective(ref.theta, form, lx, np.log(ys[k]), ws[k], full.delta, 1.0 / full.delta)[0]
        assert got.losses[k] <= ref_loss + 1e-12 * max(1.0, ref_loss)
        r = np.log(ys[k]) - form.log_pred(ref.theta, lx)[0]
        if np.count_nonzero((np.abs(r) < full.delta) & (ws[k] > 0)) >= len(theta):
            assert np.all(np.abs(theta - ref.theta) <= RTOL * (1 + np.abs(ref.theta))), (k, theta, ref.theta)
            n_unique += 1
    assert n_scipy >= len(ys) - 1  # the comparison must not be empty (scipy converges on these)
    assert n_unique >= len(ys) // 2


@pytest.mark.parametrize("name", ["saturating", "power", "loglinear", "broken"])
@pytest.mark.parametrize("seed", [0, 1])
def test_batch_matches_scipy_on_simulated_series(name, seed):
    form = get_form(name)
    x, y = _series(name, seed)
    full = fit_form(form, x, y)
    assert full.converged, full.reason
    rng = np.random.default_rng(100 + seed)
    # Simulated noise at the fit's own residual scale, as parametric.py draws it.
    sd = full.delta / HUBER_K
    ys = np.exp(form.log_pred(full.theta, prepare_x(x, full.lref)[0])[0] + rng.normal(0.0, sd, (8, y.size)))
    _compare(form, x, ys, np.ones_like(ys), full)


@pytest.mark.parametrize("name", ["saturating", "power", "broken"])
def test_batch_matches_scipy_on_run_resamples(name):
    """Weighted refits (the run bootstrap): bounds follow the points drawn (E <= min of those)."""
    form = get_form(name)
    x, y = _series(name, 7, n_runs=10)
    full = fit_form(form, x, y)
    assert full.converged, full.reason
    rng = np.random.default_rng(3)
    codes = np.repeat(np.arange(10), X.size)
    ws = np.array([np.bincount(rng.integers(0, 10, 10), minlength=10)[codes] for _ in range(8)], float)
    _compare(form, x, np.broadcast_to(y, ws.shape), ws, full)


def test_every_accepted_step_lowers_the_loss_and_bounds_hold():
    form = get_form("saturating")
    x, y = _series("saturating", 4)
    full = fit_form(form, x, y)
    lx, _ = prepare_x(x, full.lref)
    ys = y * np.exp(np.random.default_rng(0).normal(0.0, 0.2, (20, y.size)))  # far from the full fit
    ws = np.ones_like(ys)
    lo, hi = map(np.array, zip(*[box(form.bounds(lx, yy)) for yy in ys]))
    start = np.clip(full.theta, lo, hi)
    got = batch_minimise(form, lx, np.log(ys), ws, lo, hi, start, full.delta)
    assert np.all(got.thetas >= lo) and np.all(got.thetas <= hi)
    f0 = np.array([objective(s, form, lx, np.log(yy), ws[0], full.delta, 1 / full.delta)[0]
                   for s, yy in zip(start, ys)])
    assert np.all(got.losses <= f0)


def test_refit_many_falls_back_to_scipy_when_the_batch_does_not_converge(monkeypatch):
    """A batch stopped after one step fails fit.py's test; the scipy path then gives the answer."""
    import analysis.batchfit as bf

    form = get_form("power")
    x, y = _series("power", 0)
    full = fit_form(form, x, y)
    settings = refit_settings(DEFAULT_FIT, full)
    ys = y * np.exp(np.random.default_rng(1).normal(0.0, 0.03, (4, y.size)))
    ws = np.ones_like(ys)
    real = bf.batch_minimise
    monkeypatch.setattr(bf, "batch_minimise", lambda *a, **k: real(*a, **{**k, "max_iter": 0}))
    got = refit_many(form, x, ys, ws, full=full, settings=settings)
    for k in range(len(ys)):
        ref = fit_form_unlimited(form, x, ys[k], settings=settings, starts=full.theta[None, :], lref=full.lref,
                                 min_agree=1)
        np.testing.assert_array_equal(got[k], ref.theta)  # bit for bit: the very same scipy call


def test_bootstrap_draws_match_the_scipy_refits():
    """bootstrap_fit through refit_many gives, draw for draw, the per-replicate scipy answers."""
    form = get_form("saturating")
    x, y = _series("saturating", 5, n_runs=10)
    units = np.repeat([f"r{i}" for i in range(10)], X.size)
    full = fit_form(form, x, y)
    draws = bootstrap_fit(form, x, y, full=full, units=units, n_boot=15, seed=2)
    rng = np.random.default_rng(2)
    codes = np.unique(units, return_inverse=True)[1]
    settings = refit_settings(DEFAULT_FIT, full)
    ref = []
    for _ in range(15):
        w = np.bincount(rng.integers(0, 10, 10), minlength=10)[codes].astype(float)
        rep = fit_form_unlimited(form, x, y, settings=settings, weights=w, starts=full.theta[None, :],
                                 lref=full.lref, min_agree=1)
        assert rep.converged
        ref.append(rep.theta)
    factor = draws.details["width_factor"]
    unstretched = full.theta + (draws.thetas - full.theta) / factor
    assert len(unstretched) == 15
    lx, _ = prepare_x(x, full.lref)
    lo, hi = box(form.bounds(lx, y))
    inside = np.all((draws.thetas > lo) & (draws.thetas < hi), axis=1)  # stretch() clips at the bounds
    ref = np.array(ref)
    assert np.all(np.abs(unstretched[inside] - ref[inside]) <= 2 * RTOL * (1 + np.abs(ref[inside])))


def test_ordinary_draws_never_reach_scipy(monkeypatch):
    """The speed-up is real only if the batch converges on ordinary draws by itself: a judgement bug
    that sent every draw to the scipy fallback would keep the answers and lose the time unseen."""
    import analysis.batchfit as bf

    def scipy_called(*a, **k):
        raise AssertionError("a draw fell back to scipy")

    form = get_form("saturating")
    x, y = _series("saturating", 2)
    full = fit_form(form, x, y)
    lx, _ = prepare_x(x, full.lref)
    eps = np.random.default_rng(4).normal(0.0, full.delta / HUBER_K, (20, y.size))
    ys = np.exp(form.log_pred(full.theta, lx)[0] + eps)
    monkeypatch.setattr(bf, "fit_form_unlimited", scipy_called)
    got = refit_many(form, x, ys, np.ones_like(ys), full=full, settings=refit_settings(DEFAULT_FIT, full))
    assert all(t is not None for t in got)
