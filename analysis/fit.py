"""Robust fit of one law form: Huber on log residuals, a grid of starts, bounded L-BFGS-B.

Why so careful: Chinchilla's own fit averaged its Huber loss and stopped at its start point
without anyone noticing (Besiroglu et al. 2024, "Chinchilla Scaling: A replication attempt").
So the loss is SUMMED (not averaged), divided by delta so that it is O(1) whatever delta is
(L-BFGS-B's ftol/gtol are absolute near zero), tolerances are tight, and every fit carries a
convergence report: final projected-gradient norm, how many starts reached the same minimum,
and whether the optimiser moved at all. A fit that fails these checks has `converged=False`
and a `reason`; callers must not print its parameters as a result.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize

from analysis.forms import Form
from analysis.threads import single_threaded_blas


@dataclass(frozen=True)
class FitSettings:
    """How to fit. `reduce="mean"` exists only to reproduce Chinchilla's failure in a test."""

    delta: float = 1e-3  # Huber threshold on log residuals (Hoffmann et al. use 1e-3)
    reduce: str = "sum"
    maxiter: int = 3000
    gtol: float = 1e-10
    ftol: float = 1e-13
    grad_rtol: float = 1e-3  # converged when |proj grad| <= grad_rtol * n (of the loss / delta)
    agree_rtol: float = 1e-4  # starts "agree" when their loss is within this of the best
    min_agree: int = 2


DEFAULT_FIT = FitSettings()


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
        }


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
    n_eff = float(w.sum())
    canonical = 1.0 / settings.delta  # summed loss / delta: O(1) at any delta, what tolerances assume
    if settings.reduce == "mean":
        scale = 1.0 / n_eff  # the Chinchilla mistake, kept reproducible: plain averaged Huber loss
    elif settings.reduce == "sum":
        scale = canonical
    else:
        raise ValueError(f"FitSettings.reduce must be 'sum' or 'mean', got {settings.reduce!r}")
    used = w > 0
    bounds = form.bounds(lx[used], y[used])
    grid = form.starts(lx[used], y[used]) if starts is None else np.atleast_2d(np.asarray(starts, float))
    grid = np.array([_clip_to_bounds(s, bounds) for s in grid])

    runs = []
    for x0 in grid:
        res = minimize(objective, x0, args=(form, lx, ly, w, settings.delta, scale), jac=True,
                       method="L-BFGS-B", bounds=bounds,
                       options={"maxiter": settings.maxiter, "gtol": settings.gtol, "ftol": settings.ftol})
        runs.append((float(res.fun), res, x0))
    best_fun, best, x0 = min(runs, key=lambda t: t[0])
    theta = np.asarray(best.x, float)
    _, grad = objective(theta, form, lx, ly, w, settings.delta, scale)
    # Judged on the canonical objective whatever was minimised: an averaged loss's tiny gradient
    # must not pass for convergence (that is how Chinchilla's fit stopped early unnoticed).
    gnorm = projected_grad_norm(theta, grad, bounds) * canonical / scale
    tol_agree = settings.agree_rtol * max(abs(best_fun), 1e-12)
    n_agree = sum(1 for f, _, _ in runs if f <= best_fun + tol_agree)
    moved = bool(best.nit > 0 and np.linalg.norm(theta - x0) > 1e-8 * (1.0 + np.linalg.norm(x0)))
    need = min(settings.min_agree if min_agree is None else min_agree, len(grid))
    grad_tol = settings.grad_rtol * n_eff
    reason = _failure_reason(moved, gnorm, grad_tol, n_agree, need, theta)
    r = ly - form.log_pred(theta, lx)[0]
    loss = best_fun / scale * (1.0 / n_eff if settings.reduce == "mean" else 1.0)  # as reduced
    return FitResult(
        form=form.name, theta=theta, lref=lref, loss=loss, converged=reason == "", reason=reason,
        grad_norm=gnorm, n_starts=len(grid), n_agree=n_agree, n_iter=int(best.nit), moved=moved,
        n_points=int(used.sum()), rss_log=float(np.dot(w, r * r)),
        natural=form.natural(theta, lref),
    )


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
