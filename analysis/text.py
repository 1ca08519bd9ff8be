"""Plain-text and Markdown tables of a LawsResult (what fit-laws prints, what the report shows)."""

from __future__ import annotations

from analysis.compare import BEYOND
from analysis.laws import LawSettings, LawsResult, SeriesResult


def fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if v != v:  # NaN
        return "-"
    if v in (float("inf"), float("-inf")):
        return "inf" if v > 0 else "-inf"
    return f"{v:.3g}"


def ci(est, lo, hi) -> str:
    return f"{fmt(est)} [{fmt(lo)}, {fmt(hi)}]"


def series_name(r: SeriesResult) -> str:
    return ", ".join(f"{k.split('.')[-1]}={v}" for k, v in r.series.key.items()) or "all"


def pct(level: float) -> str:
    return f"{100 * level:g}%"


def header(level: float) -> list[str]:
    p = pct(level)
    return ["series", "family", "n", "form", f"parameters [{p} CI]", f"local slope at largest x [{p} CI]",
            "verdict", f"whole-range log-log slope [{p} CI]", "interval method", "convergence"]


def _params(r: SeriesResult, level: float) -> str:
    if r.draws is None or not r.draws.informative:
        why = "not requested" if r.draws is None else (r.draws.why_none or "the draws do not vary")
        return "; ".join(f"{k}={fmt(v)}" for k, v in r.fit.natural.items()) + f" (no CI: {why})"
    return "; ".join(f"{k}={ci(v, *r.draws.ci(k, level))}" for k, v in r.fit.natural.items())


def _slope_cell(est, lo, hi, why: str) -> str:
    return f"{fmt(est)} (no CI: {why})" if why else ci(est, lo, hi)


def _method(r: SeriesResult) -> str:
    law = r.draws.method if r.draws is not None else "none"
    line = r.slope.method if r.slope is not None else "none"
    return law if law == line else f"law: {law}; line: {line}"


def series_rows(res: LawsResult) -> list[list[str]]:
    """One row per series; a fit that did not converge shows its reason, never parameters."""
    rows, level = [], res.settings.level
    for r in res.series:
        slope = _slope_cell(r.slope.slope, r.slope.lo, r.slope.hi, r.slope.why_none) if r.slope else "-"
        if r.fit is not None:
            params = _params(r, level)
            local = _slope_cell(r.local.estimate, r.local.lo, r.local.hi, r.local.why_none)
            conv = f"ok (grad {r.fit.grad_norm:.1e}, {r.fit.n_agree}/{r.fit.n_starts} starts agree)"
            conv += "".join(f"; warning: {w}" for w in r.warnings)
            form, method = r.chosen, _method(r)
        else:
            params, local, form, conv = "-", "-", "no fit", r.reason
            method = r.slope.method if r.slope is not None else "-"
        rows.append([series_name(r), r.series.family or "-", str(r.series.y.size), form, params, local,
                     r.verdict, slope, method, conv])
    return rows


def _test_text(t: dict) -> str:
    if t.get("p_value") is None:
        return f"shared-slope test: {t.get('note', 'not possible')}"
    df, rel = t["df"], "<=" if t.get("p_value_is_bound") else "="
    return f"shared-slope F({df[0]}, {df[1]}) = {fmt(t['statistic'])}, p {rel} {fmt(t['p_value'])} ({t['method']})"


def _ends(d: dict) -> str:
    if d.get("no_interval_because"):
        return f"{fmt(d['estimate'])} (no CI: {d['no_interval_because']})"
    if d["estimate"] == BEYOND and list(d["ci"]) == [BEYOND, BEYOND]:
        return BEYOND
    return ci(d["estimate"], *d["ci"])


def comparison_lines(res: LawsResult) -> list[str]:
    lines = []
    for c in res.comparisons:
        match = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in c.get("match", {}).items()) or "all"
        if c["status"] != "ok":
            lines.append(f"{' vs '.join(c['families'])} ({match}): {c['status']}: {c['reason']}")
            continue
        fa, fb = c["families"][0], c["families"][-1]
        d, m, x = c["loglog_slope_b_minus_a"], c["x_ratio_a_over_b"], c["crossover_x"]
        lines.append(
            f"{fa} vs {fb} ({match}): whole-range slope({fb}) - slope({fa}) = {_ends(d)}; "
            f"{_test_text(c['shared_slope_test'])}; "
            f"x ratio {fa}/{fb} to reach y = {fmt(m['y_target'])}: {_ends(m)}; "
            f"lines cross at x = {_ends(x)} "
            f"(\"{BEYOND}\": further than {fmt(res.settings.beyond_factor)}x outside the observed x range "
            f"{fmt(x['observed_x_range'][0])}-{fmt(x['observed_x_range'][1])})")
    for c in res.correlations:
        if c["status"] != "ok":
            lines.append(f"correlation {c['u']} vs {c['v']} ({c['group']}): {c['status']}: {c['reason']}")
        else:
            lines.append(
                f"correlation {c['u']} vs {c['v']} ({c['group']}, n={c['n']}): "
                f"Pearson {ci(c['pearson']['estimate'], *c['pearson']['ci'])}, "
                f"Spearman {ci(c['spearman']['estimate'], *c['spearman']['ci'])} ({c['method']})")
    return lines


def plain_table(res: LawsResult) -> str:
    head = header(res.settings.level)
    rows = [head, *series_rows(res)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    x2 = (f", x2 = {res.columns.x2} (joint law; local slope as x and x2 grow together, whole-range slope "
          "against x)") if res.columns.x2 else ""
    out = [f"y = {res.columns.y_label} ({res.columns.y}), x = {res.columns.x}{x2}"]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    comps = comparison_lines(res)
    if comps:
        out += ["", *comps]
    return "\n".join(out)


def markdown_table(res: LawsResult) -> str:
    rows, head = series_rows(res), header(res.settings.level)
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(out)


def verdict_rule(settings: LawSettings) -> str:
    """The verdict rule in words, with this run's level, direction and band."""
    better = "higher" if settings.higher_is_better else "lower"
    improving, worsening = ("above 0", "below 0") if settings.higher_is_better else ("below 0", "above 0")
    return (f"Verdict of each series from the chosen law's local slope d ln y / d ln x at the largest observed x "
            f"and its {pct(settings.level)} interval ({better} y is better): `stagnates` (interval inside "
            f"+-{settings.band:.4f}, i.e. less than {100 * settings.flat_per_decade:g}% change per 10x x), "
            f"`scales` ({improving}, interval excludes 0), `worsens` ({worsening}, interval excludes 0), "
            f"`inconclusive` (anything else, or no honest interval). The whole-range log-log slope is a "
            f"separate summary of the observed range, not the verdict.")


def summary_lines(panel_title: str, res: LawsResult) -> list[str]:
    """One line per family: how many of its series scale, stagnate, worsen or are inconclusive."""
    lines = []
    families = sorted({r.series.family or "all" for r in res.series})
    for fam in families:
        rs = [r for r in res.series if (r.series.family or "all") == fam]
        counts: dict[str, int] = {}
        for r in rs:
            counts[r.verdict] = counts.get(r.verdict, 0) + 1
        told = ", ".join(f"{n} {v}" for v, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
        local = [_slope_cell(r.local.estimate, r.local.lo, r.local.hi, r.local.why_none) for r in rs if r.local]
        whole = [_slope_cell(r.slope.slope, r.slope.lo, r.slope.hi, r.slope.why_none) for r in rs if r.slope]
        line = f"{panel_title}: {fam}: {len(rs)} series: {told}"
        if local:
            line += f"; local slopes at largest x {'; '.join(local)}"
        if whole:
            line += f"; whole-range log-log slopes {'; '.join(whole)}"
        lines.append(line)
    return lines
