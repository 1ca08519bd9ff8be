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

from analysis.bootstrap import unit_codes
from analysis.compare import (
    correlation,
    crossover,
    shared_slope_test,
    slope_difference,
    x_ratio_to_reach,
)
from analysis.draws import Draws
from analysis.fit import FitResult, FitSettings, fit_form
from analysis.forms import Form, get_form, predict
from analysis.intervals import interval_draws
from analysis.select import choose, information_criteria, leave_largest_out
from analysis.slope import Slope, loglog_slope
from analysis.table import Columns, Series, split_series
from analysis.threads import single_threaded_blas
from analysis.verdict import DEFAULT_FLAT_PER_DECADE, LocalSlope, band_from_per_decade, local_slope, verdict

DEFAULT_BEYOND_FACTOR = 10.0


@dataclass(frozen=True)
class LawSettings:
    forms: tuple[str, ...] = ("power", "saturating", "loglinear")
    delta: float | None = None  # Huber threshold; None: scaled to the noise (fit.py)
    n_boot: int = 1000
    seed: int = 0
    level: float = 0.95
    select: str = "aicc"  # aicc | aic | bic | extrapolation
    higher_is_better: bool = False
    families: tuple[str, ...] | None = None  # the pair to compare; None: every pair present
    flat_per_decade: float = DEFAULT_FLAT_PER_DECADE  # "stagnates": |change| per 10x x below this
    beyond_factor: float = DEFAULT_BEYOND_FACTOR  # extrapolations further than this outside the data: not numbers

    def fit_settings(self) -> FitSettings:
        return FitSettings(delta=self.delta)

    @property
    def band(self) -> float:
        return band_from_per_decade(self.flat_per_decade)


DEFAULT_LAWS = LawSettings()


@dataclass(frozen=True)
class SeriesResult:
    series: Series
    status: str  # ok | insufficient-data | no-converged-fit
    reason: str
    verdict: str
    slope: Slope | None = None  # whole-range log-log line (a summary, not the verdict)
    candidates: dict[str, dict] = field(default_factory=dict)  # form -> summary (aicc, bic, ...)
    chosen: str | None = None
    chosen_by: str = ""
    fit: FitResult | None = None
    draws: Draws | None = None
    local: LocalSlope | None = None  # the chosen law's slope at the largest x: the verdict's basis

    @property
    def form(self) -> Form | None:
        return None if self.chosen is None else get_form(self.chosen)

    @property
    def warnings(self) -> list[str]:
        out = []
        if self.fit is not None and self.fit.at_bound:
            out.append(f"parameter(s) at a bound: {', '.join(self.fit.at_bound)} (the bound, not the data, "
                       "sets them; their intervals are truncated there)")
        return out

    def band(self, xs: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fitted curve and its pointwise band at xs (rows of x values; one column for one-x laws)."""
        mid = predict(self.form, self.fit.theta, xs, self.fit.lref)
        if self.draws is None or len(self.draws.thetas) == 0 or not self.draws.informative:
            return mid, mid, mid
        preds = np.array([predict(self.form, t, xs, self.fit.lref) for t in self.draws.thetas])
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


def series_forms(s: Series, settings: LawSettings) -> tuple[str, ...]:
    """The candidate forms that take as many x columns as the series has (the CLI checks that
    at least one does)."""
    n_x = 1 if s.x.ndim == 1 else s.x.shape[1]
    return tuple(f for f in settings.forms if get_form(f).n_x == n_x)


def fit_series(s: Series, settings: LawSettings) -> SeriesResult:
    """Fit every candidate form, choose one, draw its intervals, and give the verdict."""
    if s.problem:
        return SeriesResult(series=s, status="insufficient-data", reason=s.problem, verdict="insufficient-data")
    x1 = s.x if s.x.ndim == 1 else s.x[:, 0]
    slope = loglog_slope(x1, s.y, units=s.units, n_boot=min(settings.n_boot, 1000), seed=settings.seed,
                         level=settings.level)
    fs = settings.fit_settings()
    fits, candidates = {}, {}
    for name in series_forms(s, settings):
        candidates[name], fits[name] = _candidate(get_form(name), s, fs)
    chosen, chosen_by = choose(candidates, settings.select)
    if chosen is None:
        reasons = "; ".join(f"{k}: {c['reason']}" for k, c in candidates.items()) or "no candidate form"
        return SeriesResult(series=s, status="no-converged-fit", reason=reasons, verdict="inconclusive",
                            slope=slope, candidates=candidates)
    fit, form = fits[chosen], get_form(chosen)
    draws = interval_draws(form, s.x, s.y, full=fit, units=s.units, n_boot=settings.n_boot, seed=settings.seed,
                           settings=fs, level=settings.level) if settings.n_boot > 0 else None
    local = local_slope(form, fit, draws, s.x, settings.level)
    v = verdict(local.estimate, local.lo, local.hi, band=settings.band, higher_is_better=settings.higher_is_better)
    return SeriesResult(series=s, status="ok", reason="", verdict=v, slope=slope, candidates=candidates,
                        chosen=chosen, chosen_by=chosen_by, fit=fit, draws=draws, local=local)


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
        if not present:  # no series at all (e.g. every configuration's probe failed its controls)
            return []
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
    lvl, seed, factor = settings.level, settings.seed, settings.beyond_factor
    xb1 = rb.series.x if rb.series.x.ndim == 1 else rb.series.x[:, 0]
    xa1 = ra.series.x if ra.series.x.ndim == 1 else ra.series.x[:, 0]
    x_range = (float(min(xa1.min(), xb1.min())), float(max(xa1.max(), xb1.max())))
    y_target = float(np.exp(rb.slope.intercept + rb.slope.slope * np.log(xb1.max())))
    return {
        **row, "status": "ok",
        "loglog_slope_b_minus_a": slope_difference(ra.slope, rb.slope, level=lvl, seed=seed),
        "shared_slope_test": shared_slope_test(xa1, ra.series.y, xb1, rb.series.y, units_a=ra.series.units,
                                               units_b=rb.series.units, seed=seed),
        "x_ratio_a_over_b": {**x_ratio_to_reach(ra.slope, rb.slope, y_target, x_range=x_range, beyond_factor=factor,
                                                level=lvl, seed=seed, lower_is_better=not settings.higher_is_better),
                             "meaning": f"x that {fa} needs / x that {fb} needs to reach {fb}'s fitted y at its largest x"},
        "crossover_x": crossover(ra.slope, rb.slope, x_range=x_range, beyond_factor=factor, level=lvl, seed=seed),
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


def _interval(est, lo, hi, method: str, why: str = "") -> dict:
    out = {"estimate": est, "ci": [lo, hi], "method": method}
    if why:
        out["no_interval_because"] = why
    return out


def series_json(r: SeriesResult, level: float) -> dict:
    s = r.series
    out = {"key": s.key, "family": s.family, "n_points": int(s.y.size), "dropped_rows": s.dropped,
           "n_units": unit_codes(s.units, s.y.size)[1], "status": r.status, "reason": r.reason,
           "verdict": r.verdict}
    if r.local is not None:
        out["local_slope_at_largest_x"] = {
            "at_x": r.local.at_x, "definition": "d ln y / d ln x of the chosen law at the largest observed x",
            **_interval(r.local.estimate, r.local.lo, r.local.hi, r.local.method, r.local.why_none)}
    if r.slope is not None:
        out["loglog_slope_whole_range"] = {
            "definition": "least-squares slope of ln y on ln x over all points (a summary, not the verdict)",
            **_interval(r.slope.slope, r.slope.lo, r.slope.hi, r.slope.method, r.slope.why_none)}
    if r.candidates:
        out["candidates"] = r.candidates
    if r.fit is not None:
        method = r.draws.method if r.draws is not None else "none"
        why = "no interval requested (n_boot = 0)" if r.draws is None else r.draws.why_none
        params = {}
        for name, val in r.fit.natural.items():
            lo, hi = r.draws.ci(name, level) if r.draws is not None and r.draws.informative else (float("nan"),) * 2
            params[name] = {"estimate": val, "ci": [lo, hi]}
        out.update({"form": r.chosen, "chosen_by": r.chosen_by, "params": params,
                    "params_interval": {"method": method, **({"no_interval_because": why} if why else {})},
                    "convergence": r.fit.report(),
                    "draws": None if r.draws is None else r.draws.summary()})
    if r.warnings:
        out["warnings"] = r.warnings
    return _num(out)


def to_json(res: LawsResult) -> dict:
    return _num({
        "columns": asdict(res.columns), "settings": asdict(res.settings),
        "series": [series_json(r, res.settings.level) for r in res.series],
        "comparisons": res.comparisons, "correlations": res.correlations,
    })
