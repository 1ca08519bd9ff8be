"""Intervals for series with few runs: a parametric bootstrap-t with within-run correlated noise.

Resampling 1 run reproduces it, and resampling 3 runs gives at most 10 distinct replicates, so
with few runs the intervals come from simulated worlds instead: the fitted law plus noise drawn
from the noise model of the residuals (noise.py: AR(1) along each run's checkpoints, so the
checkpoints are never treated as independent). Each simulated series is refitted with the same
estimator (the full fit's Huber threshold).

The noise model itself is estimated from a handful of residuals, and too optimistically (sigma and
rho are biased low). The draws are therefore studentized (bootstrap-t; Efron & Tibshirani 1993,
ch. 12; Davison & Hinkley 1997, sec. 5.2): replicate j re-estimates the noise model from its own
residuals, giving a slope variance v_j, and its deviation from the estimate is scaled by
sqrt(v / v_j). Replicates whose noise looked smaller than it was count for more, which is how
a t-interval's heavy tails arise; the bias of the noise estimate is the same in the simulated
worlds as in ours, so it cancels. Coverage is measured by benchmarks/ci_coverage.py.

No honest interval exists with fewer than MIN_DF residual degrees of freedom (the noise scale is
then a guess): the draws say so instead.
"""

from __future__ import annotations

import numpy as np

from analysis import noise
from analysis.batchfit import refit_many
from analysis.bootstrap import unit_codes
from analysis.draws import Draws, make_draws, no_draws, stretch
from analysis.fit import DEFAULT_FIT, FitResult, FitSettings, prepare_x, refit_settings
from analysis.forms import Form
from analysis.threads import single_threaded_blas

MIN_DF = 2


def parametric_fit(form: Form, x: np.ndarray, y: np.ndarray, *, full: FitResult,
                   units: np.ndarray | None = None, n_boot: int = 1000, seed: int = 0,
                   settings: FitSettings = DEFAULT_FIT) -> Draws:
    """Studentized parametric-bootstrap draws of `form`'s parameters (see the module docstring)."""
    with single_threaded_blas():
        return _parametric(form, np.asarray(x, float), np.asarray(y, float), full=full, units=units,
                           n_boot=n_boot, seed=seed, settings=refit_settings(settings, full))


def _parametric(form: Form, x: np.ndarray, y: np.ndarray, *, full: FitResult, units: np.ndarray | None,
                n_boot: int, seed: int, settings: FitSettings) -> Draws:
    n, p = y.size, len(form.params)
    codes, n_units = unit_codes(units, n)
    if n - p < MIN_DF:
        return no_draws(form, n_units, f"{n} points leave {n - p} residual degree(s) of freedom for "
                                       f"{p} parameters (need {MIN_DF}): the noise cannot be estimated")
    lx, _ = prepare_x(x, full.lref)
    x1 = lx[:, 0]
    runs = noise.runs_in_order(codes, x1)
    logf, jac = form.log_pred(full.theta, lx)
    offset = noise.independent_offset(jac, runs)
    model = noise.estimate(np.log(y) - logf, runs, p, offset)
    eps = noise.simulate(model, runs, n, n_boot, np.random.default_rng(seed))
    ys = np.exp(logf + eps)  # (n_boot, n) simulated series
    fitted = refit_many(form, x, ys, np.ones_like(ys), full=full, settings=settings)
    ok = [k for k, t in enumerate(fitted) if t is not None]
    thetas = [fitted[k] for k in ok]
    resid = [np.log(ys[k]) - form.log_pred(fitted[k], lx)[0] for k in ok]
    arr = np.array(thetas).reshape(-1, p)
    if len(arr):
        sig, rho = noise.estimate_many(np.array(resid), runs, p, offset)
        v_rep = noise.slope_variance(sig, rho, runs, x1)
        v_hat = noise.slope_variance(np.array([model.sigma]), np.array([model.rho]), runs, x1)[0]
        factor = np.sqrt(v_hat / np.maximum(v_rep, 1e-300))
        arr = stretch(full.theta, arr, factor, form.bounds(lx, y))
    how = f"AR(1) within runs, rho={model.rho:.2f}" if model.n_pairs else "independent points, one per run"
    return make_draws(form, arr, full.lref, method=f"parametric bootstrap-t, {how}, {n_units} run(s)",
                      n_requested=n_boot, n_units=n_units,
                      details={"noise_sigma": model.sigma, "noise_rho": model.rho, "residual_df": model.df})
