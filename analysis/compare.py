"""Comparing two families (e.g. ae vs vtp) and correlating understanding with generation.

All intervals come from draws of each family's whole-range log-log line (see slope.py), so the
slope difference, the x ratio and the crossover share one method. Extrapolations are guarded: an
x the lines reach further than `beyond_factor` outside the observed x range is reported as
"beyond the data", never as a number (a line fitted over two decades says nothing about x = 1e-10).

The shared-slope test is an F-test (one restriction, n - 4 residual degrees of freedom; exact
for independent Gaussian log errors). Checkpoints of one run are correlated, so the data are
first prewhitened with the within-run AR(1) correlation of the residuals (Prais & Winsten 1954),
and the p-value then comes from the statistic's distribution in simulated null worlds (shared
slope, same noise model, rho re-estimated each time), because a rho estimated from a few
residuals is too small. With one point per run the plain F distribution is used.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from analysis import noise
from analysis.bootstrap import resample_weights, unit_codes
from analysis.intervals import MIN_UNITS_FOR_BOOTSTRAP
from analysis.slope import Slope

BEYOND = "beyond the data"
N_NULL = 999  # simulated null worlds for the correlated-noise F-test


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


def _no_interval(sa: Slope, sb: Slope) -> str:
    return "; ".join(f"{w}: {s.why_none}" for w, s in (("a", sa), ("b", sb)) if s.why_none)


def slope_difference(sa: Slope, sb: Slope, *, level: float = 0.95, seed: int = 0) -> dict:
    """slope_b - slope_a of the whole-range log-log lines (negative: b falls faster)."""
    out = {"definition": "slope(b) - slope(a) of the whole-range log-log lines", "estimate": sb.slope - sa.slope}
    why = _no_interval(sa, sb)
    if why:
        return {**out, "ci": [None, None], "no_interval_because": why}
    da, db = _paired(sa.draws, sb.draws, np.random.default_rng(seed))
    return {**out, "ci": list(_q(db[:, 1] - da[:, 1], level))}


def _design(lx: np.ndarray, g: np.ndarray, shared: bool) -> np.ndarray:
    if shared:
        return np.column_stack([1 - g, g, lx])
    return np.column_stack([1 - g, g, lx * (1 - g), lx * g])


def _prewhiten(m: np.ndarray, runs: list[np.ndarray], rho: float) -> np.ndarray:
    """Prais-Winsten transform along each run: first row x sqrt(1 - rho^2), then row_t - rho row_{t-1}."""
    out = np.empty_like(m)
    for idx in runs:
        out[idx[0]] = np.sqrt(1.0 - rho * rho) * m[idx[0]]
        out[idx[1:]] = m[idx[1:]] - rho * m[idx[:-1]]
    return out


def _rss(m: np.ndarray, v: np.ndarray) -> float:
    r = v - m @ np.linalg.lstsq(m, v, rcond=None)[0]
    return float(r @ r)


def _f_stat(lx: np.ndarray, ly: np.ndarray, g: np.ndarray, runs: list[np.ndarray], rho: float) -> float:
    sep, sh = _design(lx, g, False), _design(lx, g, True)
    if rho > 0:
        sep, sh, ly = _prewhiten(sep, runs, rho), _prewhiten(sh, runs, rho), _prewhiten(ly[:, None], runs, rho)[:, 0]
    rss_sep, rss_sh = _rss(sep, ly), _rss(sh, ly)
    return (rss_sh - rss_sep) / (rss_sep / (ly.size - 4)) if rss_sep > 0 else float("inf")


def _rho(lx: np.ndarray, ly: np.ndarray, g: np.ndarray, runs: list[np.ndarray]) -> float:
    sep = _design(lx, g, False)
    r = ly - sep @ np.linalg.lstsq(sep, ly, rcond=None)[0]
    return float(noise.estimate_many(r, runs, 4, noise.independent_offset(sep, runs))[1][0])


def shared_slope_test(xa: np.ndarray, ya: np.ndarray, xb: np.ndarray, yb: np.ndarray, *,
                      units_a: np.ndarray | None = None, units_b: np.ndarray | None = None,
                      seed: int = 0, n_null: int = N_NULL) -> dict:
    """F-test of one shared log-log slope (separate intercepts) against two slopes."""
    lx = np.log(np.concatenate([xa, xb]).astype(float))
    ly = np.log(np.concatenate([ya, yb]).astype(float))
    g = np.concatenate([np.zeros(len(xa)), np.ones(len(xb))])
    n = ly.size
    ua = np.asarray(units_a).astype(str) if units_a is not None else np.array([f"a{i}" for i in range(len(xa))])
    ub = np.asarray(units_b).astype(str) if units_b is not None else np.array([f"b{i}" for i in range(len(xb))])
    codes, _ = unit_codes(np.concatenate([np.char.add("a:", ua), np.char.add("b:", ub)]), n)
    runs = noise.runs_in_order(codes, lx)
    if n - 4 < 1:
        return {"statistic": None, "p_value": None, "df": None, "note": "too few points (need 5)"}
    rho = _rho(lx, ly, g, runs)
    f = _f_stat(lx, ly, g, runs, rho)
    df = [1, n - 4]
    if not np.isfinite(f):
        return {"statistic": None, "p_value": None, "df": df, "note": "a perfect fit: nothing to test"}
    has_pairs = any(r.size > 1 for r in runs)
    if not has_pairs:
        return {"statistic": f, "p_value": float(stats.f.sf(f, *df)), "df": df,
                "method": "F-test, exact for independent points (one per run)"}
    sh = _design(lx, g, True)
    coef = np.linalg.lstsq(sh, ly, rcond=None)[0]
    model = noise.estimate(ly - sh @ coef, runs, 3, noise.independent_offset(sh, runs))
    sims = sh @ coef + noise.simulate(model, runs, n, n_null, np.random.default_rng(seed))
    null = np.array([_f_stat(lx, s, g, runs, _rho(lx, s, g, runs)) for s in sims])
    exceed = int(np.sum(null >= f))
    p = (1.0 + exceed) / (n_null + 1.0)
    return {"statistic": f, "p_value": float(p), "p_value_is_bound": exceed == 0, "df": df, "within_run_rho": rho,
            "method": f"F-test on AR(1)-prewhitened data (rho = {rho:.2f}), p from {n_null} simulated null series"}


def _guard(lnx: float, allowed: tuple[float, float]) -> float | str:
    """x (from ln x) when inside the allowed range, else BEYOND."""
    if not np.isfinite(lnx) or not (np.log(allowed[0]) <= lnx <= np.log(allowed[1])):
        return BEYOND
    return float(np.exp(lnx))


def allowed_range(x_range: tuple[float, float], factor: float) -> tuple[float, float]:
    return x_range[0] / factor, x_range[1] * factor


def _ln_x_at(ln_target: np.ndarray | float, draws: np.ndarray, lower_is_better: bool) -> np.ndarray:
    """ln x where the line ln y = a + b ln x reaches the target; +inf when it heads away from it."""
    a, b = draws[:, 0], draws[:, 1]
    away = (b >= 0) if lower_is_better else (b <= 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        lx = (ln_target - a) / b
    return np.where(away, np.inf, lx)


def x_ratio_to_reach(sa: Slope, sb: Slope, y_target: float, *, x_range: tuple[float, float],
                     beyond_factor: float, level: float = 0.95, seed: int = 0, lower_is_better: bool = True) -> dict:
    """How many times more x family a needs than family b to reach y_target (b's fitted y at its
    largest x). Where a's line reaches y_target outside the observed x range by more than
    `beyond_factor` (or never, heading away from it), the ratio is "beyond the data"."""
    allowed = allowed_range(x_range, beyond_factor)
    lt = np.log(y_target)
    est_a = _ln_x_at(lt, np.array([[sa.intercept, sa.slope]]), lower_is_better)[0]
    est_b = _ln_x_at(lt, np.array([[sb.intercept, sb.slope]]), lower_is_better)[0]
    out = {"y_target": y_target, "observed_x_range": list(x_range), "beyond_factor": beyond_factor,
           "definition": "x that a's line needs / x that b's line needs to reach y_target"}
    xa = _guard(est_a, allowed)
    xb = _guard(est_b, allowed)
    out["estimate"] = BEYOND if BEYOND in (xa, xb) else xa / xb
    why = _no_interval(sa, sb)
    if why:
        return {**out, "ci": [None, None], "no_interval_because": why}
    da, db = _paired(sa.draws, sb.draws, np.random.default_rng(seed))
    la, lb = _ln_x_at(lt, da, lower_is_better), _ln_x_at(lt, db, lower_is_better)
    with np.errstate(invalid="ignore"):
        ln_ratio = la - lb
    lo, hi = _q(ln_ratio, level)
    # An end of the interval is a number only where the x it implies for a (b's x being its own
    # largest observed x) lies inside the allowed range.
    ln_b = np.log(x_range[1]) if not np.isfinite(est_b) else est_b
    ends = [_guard(e + ln_b, allowed) for e in (lo, hi)]
    out["ci"] = [e if e == BEYOND else float(np.exp(v)) for e, v in zip(ends, (lo, hi))]
    return out


def crossover(sa: Slope, sb: Slope, *, x_range: tuple[float, float], beyond_factor: float,
              level: float = 0.95, seed: int = 0) -> dict:
    """x where the two fitted lines cross, ln x* = (a_b - a_a) / (b_a - b_b); "beyond the data"
    outside the allowed range. When the slope difference's interval holds 0 the lines may be
    parallel, so the crossing may lie at either infinity: both ends of the interval are beyond."""
    allowed = allowed_range(x_range, beyond_factor)
    with np.errstate(divide="ignore", invalid="ignore"):
        est = (sb.intercept - sa.intercept) / (sa.slope - sb.slope)
    out = {"estimate": _guard(est, allowed), "observed_x_range": list(x_range), "beyond_factor": beyond_factor}
    why = _no_interval(sa, sb)
    if why:
        return {**out, "ci": [None, None], "no_interval_because": why}
    da, db = _paired(sa.draws, sb.draws, np.random.default_rng(seed))
    diff = da[:, 1] - db[:, 1]
    dlo, dhi = _q(diff, level)
    if dlo <= 0.0 <= dhi:
        return {**out, "ci": [BEYOND, BEYOND], "note": "the slopes' difference may be 0: the lines may never cross"}
    with np.errstate(divide="ignore", invalid="ignore"):
        lo, hi = _q((db[:, 0] - da[:, 0]) / diff, level)
    return {**out, "ci": [_guard(lo, allowed), _guard(hi, allowed)]}


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
