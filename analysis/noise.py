"""The noise of a series' log residuals, with the correlation of checkpoints within one run.

Checkpoints of one training run are not independent draws: a run that is ahead at one checkpoint
tends to stay ahead at the next. The model is a stationary AR(1) process along each run's
checkpoints (ordered by x), independent between runs:

    eps_t = rho * eps_{t-1} + sqrt(1 - rho^2) * sigma * z_t,     Var eps_t = sigma^2

sigma^2 = RSS / (n - p) (the residual degrees of freedom, not n), and rho is the pooled lag-1
autocorrelation of the residuals within runs, minus what independent errors would give: residuals
of a fitted curve are pulled towards alternating signs (with n = 9 and p = 3 their lag-1
autocorrelation averages about -0.4 when the errors are independent). That offset is
tr(M A) / tr(M), with M = I - H the residual maker of the fit (H from its Jacobian) and A the
lag-pair matrix (E r'Ar = sigma^2 tr(M A) for independent errors). The result is clipped to
[0, RHO_MAX]: a negative estimate is never evidence that checkpoints are *less* alike than
independent draws. With one point per run there are no lag pairs and rho = 0, which is then the
truth (runs are independent).

Both estimates are biased low with few points; the intervals do not correct them by a formula
but studentize (intervals.py), so the same bias in the simulated worlds cancels it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RHO_MAX = 0.95


@dataclass(frozen=True)
class NoiseModel:
    sigma: float  # marginal standard deviation of the log residuals
    rho: float  # lag-1 correlation of consecutive checkpoints of one run
    df: int  # residual degrees of freedom, n - p
    n_pairs: int  # lag-1 pairs rho was estimated from (0: every run has one point)


def runs_in_order(codes: np.ndarray, x1: np.ndarray) -> list[np.ndarray]:
    """Point indices of each run, sorted by x (the order of its checkpoints)."""
    return [idx[np.argsort(x1[idx], kind="stable")] for idx in (np.flatnonzero(codes == c) for c in np.unique(codes))]


def _lag_pairs(runs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    later = np.concatenate([r[1:] for r in runs] + [np.array([], int)])
    earlier = np.concatenate([r[:-1] for r in runs] + [np.array([], int)])
    return earlier.astype(int), later.astype(int)


def independent_offset(jac: np.ndarray, runs: list[np.ndarray]) -> float:
    """tr(M A) / tr(M): the lag-1 residual autocorrelation that independent errors give a fit with
    Jacobian jac (n, p) (see the module docstring)."""
    n = jac.shape[0]
    m = np.eye(n) - jac @ np.linalg.pinv(jac)
    earlier, later = _lag_pairs(runs)
    if earlier.size == 0:
        return 0.0
    return float(np.sum(m[earlier, later]) / np.trace(m))


def estimate_many(resid: np.ndarray, runs: list[np.ndarray], p: int,
                  offset: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(sigma, rho) for each row of resid (k, n): the estimator of `estimate`, vectorised."""
    resid = np.atleast_2d(resid)
    n = resid.shape[1]
    ss = np.sum(resid * resid, axis=1)
    sigma = np.sqrt(ss / max(n - p, 1))
    earlier, later = _lag_pairs(runs)
    if earlier.size == 0:
        return sigma, np.zeros_like(sigma)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.sum(resid[:, earlier] * resid[:, later], axis=1) / ss - offset
    return sigma, np.clip(np.nan_to_num(rho), 0.0, RHO_MAX)


def estimate(resid: np.ndarray, runs: list[np.ndarray], p: int, offset: float = 0.0) -> NoiseModel:
    sigma, rho = estimate_many(resid, runs, p, offset)
    return NoiseModel(sigma=float(sigma[0]), rho=float(rho[0]), df=resid.size - p, n_pairs=int(_lag_pairs(runs)[0].size))


def ar1_corr(m: int, rho: float) -> np.ndarray:
    """(m, m) correlation matrix of m consecutive AR(1) values: rho^|s-t|."""
    lag = np.abs(np.subtract.outer(np.arange(m), np.arange(m)))
    return rho ** lag


def simulate(model: NoiseModel, runs: list[np.ndarray], n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """(k, n) draws of the noise: independent runs, AR(1) along each run's checkpoints."""
    out = np.empty((k, n))
    for idx in runs:
        chol = np.linalg.cholesky(ar1_corr(idx.size, model.rho) + 1e-12 * np.eye(idx.size))
        out[:, idx] = model.sigma * rng.standard_normal((k, idx.size)) @ chol.T
    return out


def slope_variance(sigma: np.ndarray, rho: np.ndarray, runs: list[np.ndarray], lx: np.ndarray) -> np.ndarray:
    """Variance of the least-squares slope of ln y on ln x under the model, per (sigma, rho) pair.

    Var b = x_c' Sigma x_c / (x_c' x_c)^2 with x_c the centred ln x and Sigma block AR(1): the
    studentizer of the intervals (how uncertain a slope-like quantity is at this noise level).
    """
    xc = lx - lx.mean()
    sxx = float(xc @ xc)
    lags = max(r.size for r in runs)
    c = np.zeros(lags)  # c_k = sum over runs and |s - t| = k of x_s x_t
    for idx in runs:
        v = xc[idx]
        c[0] += v @ v
        for k in range(1, idx.size):
            c[k] += 2.0 * (v[k:] @ v[:-k])
    powers = np.power.outer(np.asarray(rho, float), np.arange(lags))  # (m, lags)
    return np.asarray(sigma, float) ** 2 * (powers @ c) / sxx**2
