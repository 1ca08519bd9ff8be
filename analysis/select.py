"""Choosing among law forms: AICc/AIC/BIC and leave-largest-out extrapolation error.

Information criteria use the Gaussian likelihood of the log residuals (the Huber threshold is
scaled to the noise, so the fit is near least squares on Gaussian-like data):
AIC = n ln(RSS/n) + 2K, BIC = n ln(RSS/n) + K ln n, and the small-sample
AICc = AIC + 2K(K+1)/(n-K-1) (Hurvich & Tsai 1989; Burnham & Anderson 2002, eq. 2.2),
with K = k + 1: the k law parameters and the noise variance. At n = 9 and k = 3 the correction
is 10, larger than the AIC penalty itself; where n <= K + 1 AICc is infinite (no ranking), and
`choose` falls back on the form with the fewest parameters (then the lowest AIC).
The extrapolation check refits without the points at the largest x and reports the mean
|ln(prediction / observed)| on those held-out points: what a scaling law is for.
"""

from __future__ import annotations

import numpy as np

from analysis.fit import DEFAULT_FIT, FitResult, FitSettings, fit_form
from analysis.forms import Form, predict


def information_criteria(fit: FitResult) -> dict[str, float]:
    n, k = fit.n_points, len(fit.theta) + 1  # + the noise variance
    rss = max(fit.rss_log, 1e-300)
    ll = n * np.log(rss / n)
    aic = float(ll + 2 * k)
    aicc = aic + 2 * k * (k + 1) / (n - k - 1) if n - k - 1 > 0 else float("inf")
    return {"aic": aic, "aicc": float(aicc), "bic": float(ll + k * np.log(n)), "n_params": k - 1}


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


def choose(candidates: dict[str, dict], criterion: str = "aicc") -> tuple[str | None, str]:
    """(name, how chosen) of the converged candidate with the lowest criterion (aicc, aic, bic or
    extrapolation); (None, "") when no candidate converged.

    When no converged candidate has a finite score (AICc with too few points, or no held-out
    check possible), the simplest converged form wins: fewest parameters, then lowest AIC.
    """
    ok = {name: c for name, c in candidates.items() if c.get("converged")}
    scored = [(c[criterion], name) for name, c in ok.items()
              if c.get(criterion) is not None and np.isfinite(c[criterion])]
    if scored:
        return min(scored)[1], f"lowest {criterion}"
    simplest = [(c.get("n_params", 0), c.get("aic", 0.0), name) for name, c in ok.items()]
    if not simplest:
        return None, ""
    return min(simplest)[2], f"fewest parameters, then lowest aic (no candidate has a finite {criterion})"
