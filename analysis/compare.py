"""Comparing two families (e.g. ae vs vtp) and correlating understanding with generation.

All intervals come from draws of each family's log-log line (see slope.py), so the exponent
difference, the effective-compute multiplier and the crossover share one method.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from analysis.bootstrap import resample_weights, unit_codes
from analysis.slope import MIN_UNITS_FOR_BOOTSTRAP, Slope


def _q(v: np.ndarray, level: float) -> tuple[float, float]:
    """Percentile interval that tolerates infinities (no interpolation across them)."""
    v = v[~np.isnan(v)]
    if v.size == 0:
        return float("nan"), float("nan")
    q = (1.0 - level) / 2.0
    lo, hi = np.quantile(v, [q, 1.0 - q], method="inverted_cdf")
    return float(lo), float(hi)


def _paired(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    k = min(len(a), len(b))
    return a[rng.choice(len(a), k, replace=False)], b[rng.choice(len(b), k, replace=False)]


def exponent_difference(sa: Slope, sb: Slope, *, level: float = 0.95, seed: int = 0) -> dict:
    """slope_b - slope_a with its interval (negative: b falls faster)."""
    da, db = _paired(sa.draws, sb.draws, np.random.default_rng(seed))
    lo, hi = _q(db[:, 1] - da[:, 1], level)
    return {"estimate": sb.slope - sa.slope, "ci": [lo, hi]}


def shared_exponent_lrt(xa: np.ndarray, ya: np.ndarray, xb: np.ndarray, yb: np.ndarray) -> dict:
    """Likelihood-ratio test of one shared log-log slope (separate intercepts) vs two slopes.

    Gaussian errors on ln y: LR = n ln(RSS_shared / RSS_separate) ~ chi2(1) under the null.
    """
    lx = np.log(np.concatenate([xa, xb]))
    ly = np.log(np.concatenate([ya, yb]))
    g = np.concatenate([np.zeros(len(xa)), np.ones(len(xb))])
    shared = np.column_stack([1 - g, g, lx])
    separate = np.column_stack([1 - g, g, lx * (1 - g), lx * g])
    rss = [float(np.sum((ly - m @ np.linalg.lstsq(m, ly, rcond=None)[0]) ** 2)) for m in (shared, separate)]
    n = ly.size
    if rss[1] <= 0 or n <= 4:
        return {"statistic": None, "p_value": None, "note": "too few points or a perfect fit"}
    lr = float(n * np.log(rss[0] / rss[1]))
    return {"statistic": lr, "p_value": float(stats.chi2.sf(lr, 1))}


def _log_x_at(y_target: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """ln x where the line ln y = a + b ln x reaches ln y_target (inf when it never gets there)."""
    a, b = draws[:, 0], draws[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        lx = (np.log(y_target) - a) / b
    return lx


def compute_multiplier(sa: Slope, sb: Slope, y_target: float, *, level: float = 0.95, seed: int = 0,
                       lower_is_better: bool = True) -> dict:
    """How many times more x family a needs than family b to reach y_target.

    Draws where a's line never improves towards y_target count as an infinite multiplier.
    """
    def multiplier(da: np.ndarray, db: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            m = np.exp(_log_x_at(y_target, da) - _log_x_at(y_target, db))
        heads_away = (da[:, 1] >= 0) if lower_is_better else (da[:, 1] <= 0)
        return np.where(heads_away, np.inf, m)

    est = multiplier(np.array([[sa.intercept, sa.slope]]), np.array([[sb.intercept, sb.slope]]))[0]
    da, db = _paired(sa.draws, sb.draws, np.random.default_rng(seed))
    lo, hi = _q(multiplier(da, db), level)
    return {"y_target": y_target, "estimate": float(est), "ci": [lo, hi]}


def crossover(sa: Slope, sb: Slope, *, level: float = 0.95, seed: int = 0) -> dict:
    """x where the two fitted lines cross: ln x* = (a_b - a_a) / (b_a - b_b)."""
    def cross(da: np.ndarray, db: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return np.exp((db[:, 0] - da[:, 0]) / (da[:, 1] - db[:, 1]))

    est = cross(np.array([[sa.intercept, sa.slope]]), np.array([[sb.intercept, sb.slope]]))[0]
    da, db = _paired(sa.draws, sb.draws, np.random.default_rng(seed))
    c = cross(da, db)
    lo, hi = _q(np.where(c > 0, c, np.nan), level)
    return {"estimate": float(est), "ci": [lo, hi]}


def _fisher_ci(r: float, n: int, se_scale: float, level: float) -> tuple[float, float]:
    z = np.arctanh(np.clip(r, -0.999999, 0.999999))
    h = stats.norm.ppf(0.5 + level / 2.0) * se_scale / np.sqrt(n - 3)
    return float(np.tanh(z - h)), float(np.tanh(z + h))


def correlation(u: np.ndarray, v: np.ndarray, *, units: np.ndarray | None = None, n_boot: int = 1000,
                seed: int = 0, level: float = 0.95) -> dict:
    """Pearson and Spearman correlation of u and v with intervals.

    Intervals resample whole runs when there are >= 8 of them; otherwise Fisher's z
    (Spearman with Fieller's 1.06 variance factor), which treats points as independent.
    """
    ok = np.isfinite(u) & np.isfinite(v)
    u, v = np.asarray(u, float)[ok], np.asarray(v, float)[ok]
    units = None if units is None else np.asarray(units)[ok]
    n = u.size
    if n < 4 or np.ptp(u) == 0 or np.ptp(v) == 0:
        return {"n": int(n), "status": "insufficient-data", "reason": "need >= 4 points that vary"}
    pr, sr = float(stats.pearsonr(u, v)[0]), float(stats.spearmanr(u, v)[0])
    codes, n_units = unit_codes(units, n)
    rs = np.empty((0, 2))
    if units is not None and n_units >= MIN_UNITS_FOR_BOOTSTRAP:
        rng = np.random.default_rng(seed)
        reps = []
        for _ in range(n_boot):
            idx = np.repeat(np.arange(n), resample_weights(codes, n_units, rng).astype(int))
            if np.ptp(u[idx]) > 0 and np.ptp(v[idx]) > 0:
                reps.append((stats.pearsonr(u[idx], v[idx])[0], stats.spearmanr(u[idx], v[idx])[0]))
        rs = np.array(reps).reshape(-1, 2)
    if len(rs):
        p_ci, s_ci, method = _q(rs[:, 0], level), _q(rs[:, 1], level), f"bootstrap over {n_units} units"
    else:
        p_ci, s_ci = _fisher_ci(pr, n, 1.0, level), _fisher_ci(sr, n, np.sqrt(1.06), level)
        method = "Fisher z (points treated as independent)"
    return {"n": int(n), "status": "ok", "pearson": {"estimate": pr, "ci": list(p_ci)},
            "spearman": {"estimate": sr, "ci": list(s_ci)}, "method": method}
