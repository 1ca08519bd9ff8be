"""Many refits of one form at once: bounded Levenberg-Marquardt on the Huber objective, in numpy.

A bootstrap or parametric interval refits the same form hundreds of times, each from the full
fit's parameters. One scipy L-BFGS-B call per refit spent about half its time in scipy's per-call
Python overhead (~25 iterations x ~0.7 ms); here every refit of a batch takes its step together.

What is minimised is exactly fit.py's canonical objective, sum_i w_i huber(ly_i - log f_i) / delta,
over the same bounds. The step is Gauss-Newton for the Huber loss (IRLS: the Hessian of huber(r) is
1 inside |r| <= delta, 0 outside; Holland & Welsch 1977) damped as in Levenberg-Marquardt (More
1978: lambda x diag(H), raised on a rejected step, lowered on an accepted one), on the parameters
not held by an active bound (projected Newton, Bertsekas 1982), and the trial point is clipped back
into the box. A step is kept only if it lowers the objective, so every refit ends no higher than
its start.

The result is judged by the caller with fit.py's own test (projected gradient norm of the
canonical objective <= grad_rtol x n, moved from the start); refits that fail it go through the
scipy path as before, so this can only add converged refits, never lose one
(tests/analysis/test_batchfit.py compares the two draw by draw).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.fit import (
    FitResult,
    FitSettings,
    _failure_reason,
    fit_form_unlimited,
    objective,
    prepare_x,
    projected_grad_norm,
)
from analysis.forms import Form

LAMBDA0 = 1e-3  # initial damping (relative to diag(H))
LAMBDA_MAX = 1e12  # a refit whose every step is rejected at this damping has stopped
PG_TOL = 1e-9  # stop when |projected gradient| <= PG_TOL x n: far inside fit.py's 1e-3 x n
REL_F_TOL = 1e-15  # ... or when an accepted step lowers the objective by less than this, relatively
MAX_ITER = 400


@dataclass(frozen=True)
class BatchFit:
    thetas: np.ndarray  # (B, p) final parameters
    n_iter: np.ndarray  # (B,) accepted steps
    losses: np.ndarray  # (B,) canonical objective at thetas


def box(bounds: list) -> tuple[np.ndarray, np.ndarray]:
    """A form's bounds list as (lo, hi) arrays, None -> -inf / inf."""
    lo = np.array([-np.inf if b[0] is None else b[0] for b in bounds], float)
    hi = np.array([np.inf if b[1] is None else b[1] for b in bounds], float)
    return lo, hi


def _eval(form: Form, thetas: np.ndarray, lx: np.ndarray, ly: np.ndarray, w: np.ndarray,
          delta: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Canonical objective (B,), its gradient (B, p), Gauss-Newton Hessian (B, p, p) and the
    diagonal of the IRLS matrix (B, p), the scale of the damping."""
    b, n = ly.shape
    p = thetas.shape[1]
    logf, jac = np.empty((b, n)), np.empty((b, n, p))
    for k in range(b):  # the forms are written for one theta; the loop costs ~10 us a draw
        logf[k], jac[k] = form.log_pred(thetas[k], lx)
    r = ly - logf  # (B, n)
    a = np.abs(r)
    inside = a <= delta
    loss = np.where(inside, 0.5 * r * r, delta * (a - 0.5 * delta))
    f = np.einsum("bi,bi->b", w, loss) / delta
    g = -np.einsum("bij,bi->bj", jac, w * np.clip(r, -delta, delta)) / delta
    h = np.einsum("bij,bik->bjk", jac, (w * inside)[:, :, None] * jac) / delta
    # IRLS weights psi(r)/r = min(1, delta/|r|) (Holland & Welsch 1977) are positive at every point,
    # so their diagonal gives each parameter a curvature scale even when all of its points lie
    # past delta, where the Gauss-Newton Hessian has none.
    irls = w * np.minimum(1.0, delta / np.maximum(a, 1e-300))
    d = np.einsum("bij,bi->bj", jac * jac, irls) / delta
    return f, g, h, d
def _free(thetas: np.ndarray, g: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Parameters not held by a bound (fit.projected_grad_norm's rule: at a bound, pushing out)."""
    with np.errstate(invalid="ignore"):  # an infinite bound is never reached: inf - inf is nan, never <=
        at_lo = (thetas <= lo + 1e-12 * np.maximum(1.0, np.abs(lo))) & (g > 0)
        at_hi = (thetas >= hi - 1e-12 * np.maximum(1.0, np.abs(hi))) & (g < 0)
    return ~(at_lo | at_hi)


def _step(g: np.ndarray, h: np.ndarray, d: np.ndarray, free: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """Damped Newton step on the free parameters; zero on those held by a bound."""
    p = g.shape[1]
    # The floor keeps the system regular where a parameter has no curvature at all (a Jacobian
    # column of zeros, e.g. a log-linear law gone non-positive): the step there is gradient descent.
    damp = lam[:, None] * np.maximum(d, 1e-12 * np.maximum(d.max(axis=1, keepdims=True), 1.0))
    a = h + damp[:, :, None] * np.eye(p)
    mask = free[:, :, None] & free[:, None, :]
    a = np.where(mask, a, 0.0) + np.where(free, 0.0, 1.0)[:, :, None] * np.eye(p)
    rhs = np.where(free, -g, 0.0)
    try:
        return np.linalg.solve(a, rhs[:, :, None])[:, :, 0]
    except np.linalg.LinAlgError:  # one singular system: solve one by one, gradient step where singular
        out = np.empty_like(rhs)
        for k in range(len(rhs)):
            try:
                out[k] = np.linalg.solve(a[k], rhs[k])
            except np.linalg.LinAlgError:
                out[k] = rhs[k] / np.maximum(np.diagonal(a[k]), 1.0)
        return out


def batch_minimise(form: Form, lx: np.ndarray, ly: np.ndarray, w: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                   theta0: np.ndarray, delta: float, *, max_iter: int = MAX_ITER) -> BatchFit:
    """Minimise sum_i w_bi huber(ly_bi - log f(theta_b, lx_i)) / delta for every row b, with theta_b
    in [lo_b, hi_b].

    lx (n, n_x) is shared; ly, w are (B, n); lo, hi, theta0 are (B, p) (theta0 inside the box).
    """
    thetas = np.array(theta0, float, copy=True)
    nb = len(thetas)
    n = ly.shape[1]
    f, g, h, dg = _eval(form, thetas, lx, ly, w, delta)
    lam = np.full(nb, LAMBDA0)
    nit = np.zeros(nb, int)
    active = np.ones(nb, bool)
    for _ in range(max_iter):
        free = _free(thetas, g, lo, hi)
        pg = np.linalg.norm(np.where(free, g, 0.0), axis=1)
        active &= (pg > PG_TOL * n) & (lam < LAMBDA_MAX) & np.all(np.isfinite(thetas), axis=1)
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        d = _step(g[idx], h[idx], dg[idx], free[idx], lam[idx])
        trial = np.clip(thetas[idx] + d, lo[idx], hi[idx])
        ft, gt, ht, dt = _eval(form, trial, lx, ly[idx], w[idx], delta)
        better = np.isfinite(ft) & (ft < f[idx])
        ok, bad = idx[better], idx[~better]
        tiny = (f[ok] - ft[better]) <= REL_F_TOL * np.maximum(np.abs(f[ok]), 1e-300)
        thetas[ok], f[ok], g[ok] = trial[better], ft[better], gt[better]
        h[ok], dg[ok] = ht[better], dt[better]
        nit[ok] += 1
        lam[ok] = np.maximum(lam[ok] / 3.0, 1e-12)
        lam[bad] *= 4.0
        active[ok[tiny]] = False  # no measurable progress left: at the minimum to machine precision
    return BatchFit(thetas=thetas, n_iter=nit, losses=f)


def refit_many(form: Form, x: np.ndarray, ys: np.ndarray, ws: np.ndarray, *, full: FitResult,
               settings: FitSettings) -> list[np.ndarray | None]:
    """Refit `form` to each row of ys (B, n) with point weights ws (B, n), warm-started at the full fit;
    the fitted parameters per row, or None where no fit converged.

    Same estimator and judgement as fit_form_unlimited(..., starts=full.theta, min_agree=1) followed,
    where that fails, by the full start grid: rows that the batched solver brings to fit.py's
    convergence test keep its answer, the others take that scipy path unchanged.
    """
    lx, _ = prepare_x(x, full.lref)
    ly = np.log(ys)
    out: list[np.ndarray | None] = [None] * len(ys)
    done = np.zeros(len(ys), bool)
    if settings.reduce == "sum" and len(ys):
        delta = float(settings.delta)
        boxes = [box(form.bounds(lx[w > 0], y[w > 0])) for y, w in zip(ys, ws)]
        lo, hi = np.array([b[0] for b in boxes]), np.array([b[1] for b in boxes])
        x0 = np.clip(full.theta, lo, hi)
        res = batch_minimise(form, lx, ly, ws, lo, hi, x0, delta)
        for k, theta in enumerate(res.thetas):
            bounds = form.bounds(lx[ws[k] > 0], ys[k][ws[k] > 0])
            _, grad = objective(theta, form, lx, ly[k], ws[k], delta, 1.0 / delta)
            gnorm = projected_grad_norm(theta, grad, bounds)
            step = np.linalg.norm(theta - x0[k])
            moved = bool(res.n_iter[k] > 0 and step > 1e-8 * (1.0 + np.linalg.norm(x0[k])))  # as fit._result
            if _failure_reason(moved, gnorm, settings.grad_rtol * float(ws[k].sum()), 1, 1, theta) == "":
                out[k], done[k] = theta, True
    for k in np.flatnonzero(~done):  # the scipy path, exactly as before the batched solver
        rep = fit_form_unlimited(form, x, ys[k], settings=settings, weights=ws[k], starts=full.theta[None, :],
                                 lref=full.lref, min_agree=1)
        if not rep.converged:
            rep = fit_form_unlimited(form, x, ys[k], settings=settings, weights=ws[k], lref=full.lref,
                                     min_agree=1)
        out[k] = rep.theta if rep.converged else None
    return out
