"""Plain-text and Markdown tables of a LawsResult (what fit-laws prints, what the report shows)."""

from __future__ import annotations

from analysis.laws import LawsResult, SeriesResult


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


def series_rows(res: LawsResult) -> list[list[str]]:
    """One row per series; a fit that did not converge shows its reason, never parameters."""
    rows = []
    for r in res.series:
        slope = ci(r.slope.slope, r.slope.lo, r.slope.hi) if r.slope else "-"
        if r.fit is not None:
            if r.boot is not None and not r.boot.informative:
                # resampling too few runs reproduces the data: a zero-width interval would be a lie
                why = "1 run" if r.boot.n_units < 2 else f"{r.boot.n_units} runs, every usable resample is the data itself"
                params = "; ".join(f"{k}={fmt(v)}" for k, v in r.fit.natural.items()) + f" (no CI: {why})"
            else:
                params = "; ".join(
                    f"{k}={ci(v, *(r.boot.ci(k, res.settings.level) if r.boot else (None, None)))}"
                    for k, v in r.fit.natural.items())
            conv = f"ok (grad {r.fit.grad_norm:.1e}, {r.fit.n_agree}/{r.fit.n_starts} starts agree)"
            form = r.chosen
        else:
            params, form, conv = "-", "no fit", r.reason
        rows.append([series_name(r), r.series.family or "-", str(r.series.y.size), form, params, slope,
                     r.verdict, conv])
    return rows


HEADER = ["series", "family", "n", "form", "parameters [95% CI]", "log-log slope [95% CI]", "verdict",
          "convergence"]


def comparison_lines(res: LawsResult) -> list[str]:
    lines = []
    for c in res.comparisons:
        fa, fb = c["families"][0], c["families"][-1]
        match = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in c.get("match", {}).items()) or "all"
        if c["status"] != "ok":
            lines.append(f"{' vs '.join(c['families'])} ({match}): {c['status']}: {c['reason']}")
            continue
        d, lrt = c["exponent_difference"], c["shared_exponent_lrt"]
        m, x = c["compute_multiplier"], c["crossover"]
        lines.append(
            f"{fa} vs {fb} ({match}): slope({fb}) - slope({fa}) = {ci(d['estimate'], *d['ci'])}; "
            f"shared-exponent LRT p = {fmt(lrt.get('p_value'))}; "
            f"{fa} needs {ci(m['estimate'], *m['ci'])}x the x of {fb} to reach y = {fmt(m['y_target'])}; "
            f"lines cross at x = {ci(x['estimate'], *x['ci'])}")
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
    rows = [HEADER, *series_rows(res)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    x2 = f", x2 = {res.columns.x2} (joint law; the log-log slope is against x)" if res.columns.x2 else ""
    out = [f"y = {res.columns.y_label} ({res.columns.y}), x = {res.columns.x}{x2}"]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    comps = comparison_lines(res)
    if comps:
        out += ["", *comps]
    return "\n".join(out)


def markdown_table(res: LawsResult) -> str:
    rows = series_rows(res)
    out = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(out)


def summary_lines(panel_title: str, res: LawsResult) -> list[str]:
    """One line per family: how many of its series scale, stagnate or worsen, and their slopes."""
    lines = []
    families = sorted({r.series.family or "all" for r in res.series})
    for fam in families:
        rs = [r for r in res.series if (r.series.family or "all") == fam]
        counts: dict[str, int] = {}
        for r in rs:
            counts[r.verdict] = counts.get(r.verdict, 0) + 1
        told = ", ".join(f"{n} {v}" for v, n in sorted(counts.items(), key=lambda kv: -kv[1]))
        slopes = [f"{fmt(r.slope.slope)} [{fmt(r.slope.lo)}, {fmt(r.slope.hi)}]" for r in rs if r.slope]
        lines.append(f"{panel_title}: {fam}: {len(rs)} series: {told}" + (f"; log-log slopes {'; '.join(slopes)}" if slopes else ""))
    return lines
