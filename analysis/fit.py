"""Robust fit of one law form: Huber on log residuals, a grid of starts, bounded L-BFGS-B.

The Huber threshold is scaled to the noise unless given: a least-squares pass finds the residuals,
and delta = 1.345 x their robust scale (1.4826 x MAD, corrected for the p fitted parameters).
1.345 sigma is Huber's constant for 95 % efficiency under Gaussian errors (Huber 1981, sec. 4.6);
a fixed delta = 1e-3 (Hoffmann et al.) turns a fit of 2 %-noise data into least absolute
deviations, which measured a 9.2 % median error on alpha against 6.5 % near least squares.

Why so careful: Chinchilla's own fit averaged its Huber loss and stopped at its start point
without anyone noticing (Besiroglu et al. 2024, "Chinchilla Scaling: A replication attempt").
So the loss is SUMMED (not averaged), divided by delta so that it is O(1) whatever delta is
(L-BFGS-B's ftol/gtol are absolute near zero), tolerances are tight, and every fit carries a
convergence report: final projected-gradient norm, how many starts reached the same minimum,
and whether the optimiser moved at all. A fit that fails these checks has `converged=False`
and a `reason`; callers must not print its parameters as a result.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from scipy.optimize import minimize

from analysis.forms import Form
from analysis.threads import single_threaded_blas


@dataclass(frozen=True)
class FitSettings:
    """How to fit. `reduce="mean"` exists only to reproduce Chinchilla's failure in a test."""

    delta: float | None = None  # Huber threshold on log residuals; None: 1.345 x robust noise scale
    reduce: str = "sum"
    maxiter: int = 3000
    gtol: float = 1e-10
    ftol: float = 1e-13
    grad_rtol: float = 1e-3  # converged when |proj grad| <= grad_rtol * n (of the loss / delta)
    agree_rtol: float = 1e-4  # starts "agree" when their loss is within this of the best
    min_agree: int = 2


DEFAULT_FIT = FitSettings()
HUBER_K = 1.345  # delta in units of the noise scale (95 % Gaussian efficiency)
LS_DELTA = 10.0  # a Huber threshold no log residual reaches: the pass is least squares
MIN_DELTA = 1e-8  # floor for noiseless data (a zero threshold would divide the loss by zero)


@dataclass(frozen=True)
class FitResult:
    form: str
    theta: np.ndarray  # fit coordinates (see forms.py)
    lref: np.ndarray  # ln x_ref per x column
    loss: float  # Huber loss as reduced (sum by default), not divided by delta
    converged: bool
    reason: str  # "" when converged
    grad_norm: float  # projected gradient norm of the canonical (summed loss / delta) objective
    n_starts: int
    n_agree: int
    n_iter: int
    moved: bool  # False when the optimiser stopped at its start point
    n_points: int
    rss_log: float  # sum of squared log residuals (for AIC/BIC)
    natural: dict[str, float] = field(default_factory=dict)
    delta: float = float("nan")  # the Huber threshold used
    at_bound: tuple[str, ...] = ()  # fit-coordinate parameters that sit on a bound

    def report(self) -> dict:
        return {
            "converged": self.converged,
            "reason": self.reason,
            "grad_norm": self.grad_norm,
            "n_starts": self.n_starts,
            "n_agree": self.n_agree,
            "n_iter": self.n_iter,
            "moved_from_start": self.moved,
            "loss": self.loss,
            "huber_delta": self.delta,
            "at_bound": list(self.at_bound),
        }


def refit_settings(settings: FitSettings, full: FitResult) -> FitSettings:
    """Settings for refits of resampled or simulated data: the full fit's threshold, so that every
    replicate uses the same estimator as the fit whose uncertainty it measures."""
    return replace(settings, delta=full.delta)


def huber(r: np.ndarray, delta: float) -> np.ndarray:
    """Huber loss: r^2/2 inside |r|<=delta, linear outside (value and slope continuous)."""
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def objective(theta: np.ndarray, form: Form, lx: np.ndarray, ly: np.ndarray, w: np.ndarray,
              delta: float, scale: float) -> tuple[float, np.ndarray]:
    """scale * sum_i w_i huber(ly_i - log f_i) and its analytic gradient."""
    logf, jac = form.log_pred(theta, lx)
    r = ly - logf
    psi = np.clip(r, -delta, delta)
    value = scale * float(np.dot(w, huber(r, delta)))
    # einsum, not `jac.T @ v`: a BLAS call on a (50, 3) matrix wakes a multithreaded BLAS whose
    # spinning threads made fits ~10x slower on a busy 2-core machine.
    grad = -scale * np.einsum("ij,i->j", jac, w * psi)
    return value, grad


def projected_grad_norm(theta: np.ndarray, grad: np.ndarray, bounds: list) -> float:
    """Gradient norm ignoring components that push against an active bound (KKT-stationary)."""
    g = grad.copy()
    for j, (lo, hi) in enumerate(bounds):
        if lo is not None and theta[j] <= lo + 1e-12 * max(1.0, abs(lo)) and g[j] > 0:
            g[j] = 0.0
        if hi is not None and theta[j] >= hi - 1e-12 * max(1.0, abs(hi)) and g[j] < 0:
            g[j] = 0.0
    return float(np.linalg.norm(g))


def prepare_x(x: np.ndarray, lref: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """ln x centred on the geometric mean (or on `lref`): (n, n_x) and lref (n_x,)."""
    lx = np.log(np.asarray(x, float).reshape(len(x), -1))
    if lref is None:
        lref = lx.mean(axis=0)
    return lx - lref, lref


def fit_form(form: Form, x: np.ndarray, y: np.ndarray, *, settings: FitSettings = DEFAULT_FIT,
             weights: np.ndarray | None = None, starts: np.ndarray | None = None,
             lref: np.ndarray | None = None, min_agree: int | None = None) -> FitResult:
    """Fit `form` to (x, y > 0). `weights` are point multiplicities (bootstrap)."""
    with single_threaded_blas():
        return fit_form_unlimited(form, x, y, settings=settings, weights=weights, starts=starts, lref=lref,
                                  min_agree=min_agree)


def fit_form_unlimited(form: Form, x: np.ndarray, y: np.ndarray, *, settings: FitSettings = DEFAULT_FIT,
                       weights: np.ndarray | None = None, starts: np.ndarray | None = None,
                       lref: np.ndarray | None = None, min_agree: int | None = None) -> FitResult:
    """fit_form without its BLAS thread limit, for loops that already hold one (bootstrap)."""
    y = np.asarray(y, float)
    lx, lref = prepare_x(x, lref)
    ly = np.log(y)
    w = np.ones_like(y) if weights is None else np.asarray(weights, float)
    used = w > 0
    bounds = form.bounds(lx[used], y[used])
    grid = form.starts(lx[used], y[used]) if starts is None else np.atleast_2d(np.asarray(starts, float))
    grid = np.array([_clip_to_bounds(s, bounds) for s in grid])
    delta = settings.delta
    if delta is None:
        ls = _minimise(form, lx, ly, w, grid, bounds, settings, LS_DELTA)
        theta_ls = min(ls, key=lambda t: t[0])[1].x
        delta = noise_scaled_delta(ly - form.log_pred(theta_ls, lx)[0], w, len(form.params))
        # The Huber pass starts from the same grid (not from the least-squares optimum, where it would
        # often not move and so fail the "moved from its start" check it exists to pass).
    runs = _minimise(form, lx, ly, w, grid, bounds, settings, delta)
    return _result(form, lx, ly, w, lref, runs, bounds, settings, delta, len(grid), min_agree)


def noise_scaled_delta(r: np.ndarray, w: np.ndarray, p: int) -> float:
    """HUBER_K x robust scale of the residuals r (weights = multiplicities), floored at MIN_DELTA."""
    rr = np.repeat(r, np.round(w).astype(int)) if not np.all(w == 1) else r
    n = rr.size
    mad = 1.4826 * float(np.median(np.abs(rr - np.median(rr))))
    scale = mad * np.sqrt(n / (n - p)) if n > p else mad
    if not scale > 0:  # e.g. half the residuals exactly zero: fall back on the root mean square
        scale = float(np.sqrt(np.mean(rr * rr) * n / max(n - p, 1)))
    return max(HUBER_K * scale, MIN_DELTA)


def _scale(settings: FitSettings, delta: float, n_eff: float) -> float:
    if settings.reduce == "mean":
        return 1.0 / n_eff  # the Chinchilla mistake, kept reproducible: plain averaged Huber loss
    if settings.reduce == "sum":
        return 1.0 / delta  # summed loss / delta: O(1) at any delta, what tolerances assume
    raise ValueError(f"FitSettings.reduce must be 'sum' or 'mean', got {settings.reduce!r}")


def _minimise(form: Form, lx: np.ndarray, ly: np.ndarray, w: np.ndarray, grid: np.ndarray, bounds: list,
              settings: FitSettings, delta: float) -> list[tuple]:
    scale = _scale(settings, delta, float(w.sum()))
    runs = []
    for x0 in grid:
        res = minimize(objective, x0, args=(form, lx, ly, w, delta, scale), jac=True,
                       method="L-BFGS-B", bounds=bounds,
                       options={"maxiter": settings.maxiter, "gtol": settings.gtol, "ftol": settings.ftol})
        runs.append((float(res.fun), res, x0))
    return runs


def _result(form: Form, lx: np.ndarray, ly: np.ndarray, w: np.ndarray, lref: np.ndarray, runs: list,
            bounds: list, settings: FitSettings, delta: float, n_grid: int, min_agree: int | None) -> FitResult:
    n_eff = float(w.sum())
    canonical, scale = 1.0 / delta, _scale(settings, delta, n_eff)
    best_fun, best, x0 = min(runs, key=lambda t: t[0])
    theta = np.asarray(best.x, float)
    _, grad = objective(theta, form, lx, ly, w, delta, scale)
    # Judged on the canonical objective whatever was minimised: an averaged loss's tiny gradient
    # must not pass for convergence (that is how Chinchilla's fit stopped early unnoticed).
    gnorm = projected_grad_norm(theta, grad, bounds) * canonical / scale
    tol_agree = settings.agree_rtol * max(abs(best_fun), 1e-12)
    n_agree = sum(1 for f, _, _ in runs if f <= best_fun + tol_agree)
    moved = bool(best.nit > 0 and np.linalg.norm(theta - x0) > 1e-8 * (1.0 + np.linalg.norm(x0)))
    need = min(settings.min_agree if min_agree is None else min_agree, n_grid)
    reason = _failure_reason(moved, gnorm, settings.grad_rtol * n_eff, n_agree, need, theta)
    r = ly - form.log_pred(theta, lx)[0]
    loss = best_fun / scale * (1.0 / n_eff if settings.reduce == "mean" else 1.0)  # as reduced
    return FitResult(
        form=form.name, theta=theta, lref=lref, loss=loss, converged=reason == "", reason=reason,
        grad_norm=gnorm, n_starts=n_grid, n_agree=n_agree, n_iter=int(best.nit), moved=moved,
        n_points=int((w > 0).sum()), rss_log=float(np.dot(w, r * r)),
        natural=form.natural(theta, lref), delta=float(delta), at_bound=params_at_bound(form, theta, bounds),
    )


def params_at_bound(form: Form, theta: np.ndarray, bounds: list) -> tuple[str, ...]:
    """Names of the parameters sitting on a bound: their interval and the law's shape are then set by
    the bound (e.g. E = min y: the fit wants a floor above a measured value), not by the data."""
    out = []
    for name, t, (lo, hi) in zip(form.params, theta, bounds):
        for b in (lo, hi):
            if b is not None and abs(t - b) <= 1e-6 * max(1.0, abs(b)):
                out.append(name)
                break
    return tuple(out)


def _failure_reason(moved: bool, gnorm: float, grad_tol: float, n_agree: int, need: int,
                    theta: np.ndarray) -> str:
    if not np.all(np.isfinite(theta)):
        return "non-finite parameters"
    if not moved:
        return "optimiser stopped at its start point"
    if not gnorm <= grad_tol:
        return f"final gradient norm {gnorm:.3g} > tolerance {grad_tol:.3g}"
    if n_agree < need:
        return f"only {n_agree} start(s) reached the best minimum (need {need})"
    return ""


def _clip_to_bounds(x0: np.ndarray, bounds: list) -> np.ndarray:
    lo = np.array([-np.inf if b[0] is None else b[0] for b in bounds])
    hi = np.array([np.inf if b[1] is None else b[1] for b in bounds])
    return np.clip(x0, lo, hi)
