"""Choosing among law forms: AIC/BIC and leave-largest-out extrapolation error.

Information criteria use the Gaussian likelihood of the log residuals:
AIC = n ln(RSS/n) + 2k, BIC = n ln(RSS/n) + k ln n (k = number of fitted parameters).
The extrapolation check refits without the points at the largest x and reports the mean
|ln(prediction / observed)| on those held-out points: what a scaling law is for.
"""

from __future__ import annotations

import numpy as np

from analysis.fit import DEFAULT_FIT, FitResult, FitSettings, fit_form
from analysis.forms import Form, predict


def information_criteria(fit: FitResult) -> dict[str, float]:
    n, k = fit.n_points, len(fit.theta)
    rss = max(fit.rss_log, 1e-300)
    ll = n * np.log(rss / n)
    return {"aic": float(ll + 2 * k), "bic": float(ll + k * np.log(n))}


def largest_x_mask(x: np.ndarray) -> np.ndarray:
    """The held-out points: those at the largest x (first x column)."""
    x1 = x if x.ndim == 1 else x[:, 0]
    return x1 >= x1.max()


def leave_largest_out(form: Form, x: np.ndarray, y: np.ndarray, *,
                      settings: FitSettings = DEFAULT_FIT) -> float | None:
    """Mean |ln(pred/y)| on the largest-x points of a fit without them; None when not possible."""
    held = largest_x_mask(x)
    keep = ~held
    if keep.sum() < form.min_points + 1:
        return None
    fit = fit_form(form, x[keep], y[keep], settings=settings)
    if not fit.converged:
        return None
    pred = predict(form, fit.theta, x[held], fit.lref)
    return float(np.mean(np.abs(np.log(pred / y[held]))))


def choose(candidates: dict[str, dict], criterion: str = "bic") -> str | None:
    """Name of the converged candidate with the lowest criterion (bic, aic or extrapolation)."""
    scored = [(c[criterion], name) for name, c in candidates.items()
              if c.get("converged") and c.get(criterion) is not None]
    return min(scored)[1] if scored else None
