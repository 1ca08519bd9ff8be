"""The fit-laws pipeline: series -> candidate forms -> chosen form with CIs -> verdicts -> comparisons.

`fit_laws(frame, cols, settings)` is the library entry point behind `vtp-analyze fit-laws`;
`to_json` gives the fits.json document. Degenerate series become rows with a status and a reason.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from analysis.bootstrap import BootstrapResult, bootstrap_fit, unit_codes
from analysis.compare import (
    compute_multiplier,
    correlation,
    crossover,
    exponent_difference,
    shared_exponent_lrt,
)
from analysis.fit import FitResult, FitSettings, fit_form
from analysis.forms import Form, get_form, predict
from analysis.select import choose, information_criteria, leave_largest_out
from analysis.slope import MIN_UNITS_FOR_BOOTSTRAP, Slope, loglog_slope, verdict
from analysis.table import Columns, Series, split_series
from analysis.threads import single_threaded_blas


@dataclass(frozen=True)
class LawSettings:
    forms: tuple[str, ...] = ("power", "saturating", "loglinear")
    delta: float = 1e-3
    n_boot: int = 1000
    seed: int = 0
    level: float = 0.95
    select: str = "bic"  # bic | aic | extrapolation
    higher_is_better: bool = False
    families: tuple[str, ...] | None = None  # the pair to compare; None: every pair present

    def fit_settings(self) -> FitSettings:
        return FitSettings(delta=self.delta)


DEFAULT_LAWS = LawSettings()


@dataclass(frozen=True)
class SeriesResult:
    series: Series
    status: str  # ok | insufficient-data | no-converged-fit
    reason: str
    verdict: str
    slope: Slope | None = None
    candidates: dict[str, dict] = field(default_factory=dict)  # form -> summary (aic, bic, ...)
    chosen: str | None = None
    fit: FitResult | None = None
    boot: BootstrapResult | None = None

    @property
    def form(self) -> Form | None:
        return None if self.chosen is None else get_form(self.chosen)

    def band(self, xs: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fitted curve and its pointwise bootstrap band at xs (first x column only)."""
        mid = predict(self.form, self.fit.theta, xs, self.fit.lref)
        if self.boot is None or len(self.boot.thetas) == 0 or not self.boot.informative:
            return mid, mid, mid
        preds = np.array([predict(self.form, t, xs, self.fit.lref) for t in self.boot.thetas])
        q = 100 * (1 - level) / 2
        return mid, np.percentile(preds, q, axis=0), np.percentile(preds, 100 - q, axis=0)


def _candidate(form: Form, s: Series, fs: FitSettings) -> tuple[dict, FitResult | None]:
    if s.y.size < form.min_points:
        return {"converged": False, "reason": f"needs >= {form.min_points} points"}, None
    fit = fit_form(form, s.x, s.y, settings=fs)
    out = {"converged": fit.converged, "reason": fit.reason, **information_criteria(fit),
           "extrapolation": leave_largest_out(form, s.x, s.y, settings=fs) if fit.converged else None,
           "convergence": fit.report()}
    return out, fit


def fit_series(s: Series, settings: LawSettings) -> SeriesResult:
    """Fit every candidate form, choose one, bootstrap its CIs, and give the verdict."""
    if s.problem:
        return SeriesResult(series=s, status="insufficient-data", reason=s.problem, verdict="insufficient-data")
    x1 = s.x if s.x.ndim == 1 else s.x[:, 0]
    slope = loglog_slope(x1, s.y, units=s.units, n_boot=min(settings.n_boot, 1000), seed=settings.seed,
                         level=settings.level)
    fs = settings.fit_settings()
    forms = ("joint",) if s.x.ndim == 2 else settings.forms
    fits, candidates = {}, {}
    for name in forms:
        candidates[name], fits[name] = _candidate(get_form(name), s, fs)
    chosen = choose(candidates, settings.select)
    v = verdict(slope, higher_is_better=settings.higher_is_better)
    if chosen is None:
        reasons = "; ".join(f"{k}: {c['reason']}" for k, c in candidates.items())
        return SeriesResult(series=s, status="no-converged-fit", reason=reasons, verdict=v, slope=slope,
                            candidates=candidates)
    fit = fits[chosen]
    boot = bootstrap_fit(get_form(chosen), s.x, s.y, full=fit, units=s.units, n_boot=settings.n_boot,
                         seed=settings.seed, settings=fs) if settings.n_boot > 0 else None
    return SeriesResult(series=s, status="ok", reason="", verdict=v, slope=slope, candidates=candidates,
                        chosen=chosen, fit=fit, boot=boot)


@dataclass(frozen=True)
class LawsResult:
    columns: Columns
    settings: LawSettings
    series: list[SeriesResult]
    comparisons: list[dict]
    correlations: list[dict]


def fit_laws(frame: pd.DataFrame, cols: Columns, settings: LawSettings = DEFAULT_LAWS) -> LawsResult:
    with single_threaded_blas():
        results = [fit_series(s, settings) for s in split_series(frame, cols)]
    comps = compare_all(results, cols, settings) if cols.family else []
    return LawsResult(columns=cols, settings=settings, series=results, comparisons=comps,
                      correlations=correlate_all(results, cols, settings))


def _size_key(r: SeriesResult, cols: Columns) -> tuple:
    return tuple((k, v) for k, v in r.series.key.items() if k != cols.family)


def compare_all(results: list[SeriesResult], cols: Columns, settings: LawSettings) -> list[dict]:
    present = sorted({r.series.family for r in results})
    wanted = settings.families
    if wanted is not None:
        missing = [f for f in wanted if f not in present]
        if missing:
            return [{"families": list(wanted), "status": "family-missing",
                     "reason": f"family {', '.join(map(repr, missing))} not in the data (present: {', '.join(present)})"}]
        pairs = list(itertools.combinations(wanted, 2))
    else:
        if len(present) < 2:
            return [{"families": present, "status": "family-missing",
                     "reason": f"only one family present ({', '.join(present)}); nothing to compare"}]
        pairs = list(itertools.combinations(present, 2))
    out = []
    for fa, fb in pairs:
        by_size = {}
        for r in results:
            if r.series.family in (fa, fb):
                by_size.setdefault(_size_key(r, cols), {})[r.series.family] = r
        for size, pair in sorted(by_size.items(), key=lambda kv: str(kv[0])):
            out.append(compare_pair(pair.get(fa), pair.get(fb), fa, fb, dict(size), settings))
    return out


def compare_pair(ra: SeriesResult | None, rb: SeriesResult | None, fa: str, fb: str, size: dict,
                 settings: LawSettings) -> dict:
    row = {"families": [fa, fb], "match": size}
    for fam, r in ((fa, ra), (fb, rb)):
        if r is None:
            return {**row, "status": "family-missing", "reason": f"no {fam!r} series for {size or 'this match'}"}
        if r.slope is None:
            return {**row, "status": "insufficient-data", "reason": f"{fam!r}: {r.reason}"}
    lvl, seed = settings.level, settings.seed
    xb1 = rb.series.x if rb.series.x.ndim == 1 else rb.series.x[:, 0]
    xa1 = ra.series.x if ra.series.x.ndim == 1 else ra.series.x[:, 0]
    y_target = float(np.exp(rb.slope.intercept + rb.slope.slope * np.log(xb1.max())))
    return {
        **row, "status": "ok",
        "exponent_difference": exponent_difference(ra.slope, rb.slope, level=lvl, seed=seed),
        "shared_exponent_lrt": shared_exponent_lrt(xa1, ra.series.y, xb1, rb.series.y),
        "compute_multiplier": {**compute_multiplier(ra.slope, rb.slope, y_target, level=lvl, seed=seed,
                                                    lower_is_better=not settings.higher_is_better),
                               "meaning": f"x that {fa} needs / x that {fb} needs to reach {fb}'s fitted y at its largest x"},
        "crossover": {**crossover(ra.slope, rb.slope, level=lvl, seed=seed),
                      "observed_x_range": [float(min(xa1.min(), xb1.min())), float(max(xa1.max(), xb1.max()))]},
    }


def correlate_all(results: list[SeriesResult], cols: Columns, settings: LawSettings) -> list[dict]:
    """Linear probe vs the y metric over all checkpoints, pooled and per family."""
    if cols.probe is None:
        return []
    groups: dict[str, list[SeriesResult]] = {"all": list(results)}
    for r in results:
        if r.series.family is not None:
            groups.setdefault(r.series.family, []).append(r)
    out = []
    for name, rs in groups.items():
        u = np.concatenate([r.series.probe for r in rs]) if rs else np.array([])
        v = np.concatenate([r.series.y for r in rs]) if rs else np.array([])
        units = np.concatenate([r.series.units.astype(str) for r in rs]) if rs and cols.unit else None
        out.append({"group": name, "u": cols.probe, "v": cols.y,
                    **correlation(u, v, units=units, n_boot=min(settings.n_boot, 500), seed=settings.seed,
                                  level=settings.level)})
    return out


def _num(v):
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if math.isnan(v):
            return None
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return v
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, dict):
        return {str(k): _num(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_num(x) for x in v]
    return v


def series_json(r: SeriesResult, level: float) -> dict:
    s = r.series
    out = {"key": s.key, "family": s.family, "n_points": int(s.y.size), "dropped_rows": s.dropped,
           "n_units": unit_codes(s.units, s.y.size)[1], "status": r.status, "reason": r.reason,
           "verdict": r.verdict}
    if r.slope is not None:
        out["loglog_slope"] = {"estimate": r.slope.slope, "ci": [r.slope.lo, r.slope.hi], "method": r.slope.method}
    if r.candidates:
        out["candidates"] = r.candidates
    if r.fit is not None:
        params = {}
        for name, val in r.fit.natural.items():
            lo, hi = r.boot.ci(name, level) if r.boot is not None and r.boot.informative else (float("nan"), float("nan"))
            params[name] = {"estimate": val, "ci": [lo, hi]}
        out.update({"form": r.chosen, "params": params, "convergence": r.fit.report(),
                    "bootstrap": None if r.boot is None else
                    {"requested": r.boot.n_requested, "converged": r.boot.n_converged, "units": r.boot.n_units}})
        if r.boot is not None and r.boot.n_units < MIN_UNITS_FOR_BOOTSTRAP:
            out["warning"] = (f"parameter intervals resample only {r.boot.n_units} units; "
                              f"below {MIN_UNITS_FOR_BOOTSTRAP} they are unreliable")
    return _num(out)


def to_json(res: LawsResult) -> dict:
    return _num({
        "columns": asdict(res.columns), "settings": asdict(res.settings),
        "series": [series_json(r, res.settings.level) for r in res.series],
        "comparisons": res.comparisons, "correlations": res.correlations,
    })
