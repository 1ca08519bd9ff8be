"""The report: a self-contained HTML page (PNG figures embedded as base64), its Markdown twin,
and the PNG files, with the fits tables, comparisons and provenance.

Panels with a snapshot: training scaling (x = tokenizer FLOPs, one line per tokenizer config),
parameter scaling (x = tokenizer params, final checkpoints, one line per objective and data size)
and data scaling (x = the data axis, final checkpoints, one line per objective and size), each only
when its column is present and varies, each line only where its x varies (see `along`); and
reconstruction scaling (y = rFID, else the reconstruction Frechet distance `recon_fd`; x = tokenizer
FLOPs, one line per tokenizer config like training scaling) when the snapshot has that metric.
A plain table gets one panel. With the probe's controls in the snapshot (analysis.controls), a
"Probe controls" section shows each configuration's oracle accuracy against its control and chance,
and only configurations whose probe passes enter the fits.
"""

from __future__ import annotations

import base64
import html
import json
import subprocess
import sys
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import pandas as pd

from analysis.controls import (
    CHECK_HEADER,
    ProbeCheck,
    check_row,
    passing_rows,
    probe_checks,
    rule_text,
    summary_line,
)
from analysis.figures import scaling_figure
from analysis.laws import DEFAULT_LAWS, LawSettings, LawsResult, fit_laws
from analysis.table import DATA_COLUMNS, Columns, Table, final_checkpoints, recon_column, varies, y_label
from analysis.text import comparison_lines, header, series_rows, summary_lines, verdict_rule


@dataclass(frozen=True)
class Panel:
    name: str
    title: str
    x_label: str
    frame: pd.DataFrame
    columns: Columns


LIBRARIES = ("numpy", "scipy", "pandas", "pyarrow", "matplotlib")


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=Path(__file__).parent, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def code_version() -> str:
    """Package version plus the git commit of this checkout when there is one, marked `.dirty` when
    tracked files differ from that commit (the numbers may then come from uncommitted code)."""
    try:
        version = metadata.version("vtp-scaling")
    except metadata.PackageNotFoundError:
        version = "unknown"
    sha = _git("rev-parse", "HEAD")
    if not sha:
        return version
    dirty = ".dirty" if _git("status", "--porcelain", "--untracked-files=no") else ""
    return f"{version}+{sha}{dirty}"


def library_versions() -> str:
    out = []
    for name in LIBRARIES:
        try:
            out.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            out.append(f"{name} not installed")
    return ", ".join(out)


def along(frame: pd.DataFrame, x: str, by: tuple[str, ...]) -> pd.DataFrame:
    """The rows of the series (groups of `by`) in which x takes at least two values: in a sweep made
    of one-axis studies (spec `grids`), the parameter study is the series where size varies, and a
    run of the data study is not a one-point series of it."""
    if not by:
        return frame
    x_values = pd.to_numeric(frame[x], errors="coerce")
    counts = x_values.groupby([frame[c] for c in by], dropna=False).transform("nunique")
    return frame[counts >= 2]


def default_panels(table: Table, frame: pd.DataFrame, cols: Columns) -> list[Panel]:
    if table.snapshot_version is None or cols.x2:
        return [Panel("training", "Training scaling", cols.x, frame, cols)]
    # a configuration probed only at its last checkpoint (its seeds) is a point of the parameter or
    # data study, not a one-x series of training scaling
    panels = [Panel("training", "Training scaling", cols.x, along(frame, cols.x, cols.by), cols)]
    final = final_checkpoints(frame)
    fam = (cols.family,) if cols.family else ()
    data_col = next((c for c in DATA_COLUMNS if varies(final, c)), None)
    if varies(final, "metric.tokenizer_params") and cols.x != "metric.tokenizer_params":
        by = fam + ((data_col,) if data_col else ())
        panels.append(Panel("parameters", "Parameter scaling", "tokenizer parameters",
                            along(final, "metric.tokenizer_params", by),
                            replace(cols, x="metric.tokenizer_params", by=by)))
    if data_col and data_col != cols.x:
        by = fam + tuple(c for c in cols.by if c not in fam and c != data_col)
        panels.append(Panel("data", "Data scaling", "training images", along(final, data_col, by),
                            replace(cols, x=data_col, by=by)))
    recon = recon_column(frame)
    if recon and recon != cols.y and "metric.tokenizer_flops" in frame.columns:
        panels.append(Panel("reconstruction", "Reconstruction scaling", "tokenizer FLOPs",
                            along(frame, "metric.tokenizer_flops", cols.by),
                            replace(cols, x="metric.tokenizer_flops", y=recon, y_label=y_label(frame, recon), probe=None)))
    return panels


def _blocks(table: Table, settings: LawSettings, fitted: list[tuple[Panel, LawsResult, Path]],
            summary: list[str], command: str | None, version: str, checks: list[ProbeCheck] = ()) -> list[tuple]:
    metric = fitted[0][1].columns.y_label
    blocks: list[tuple] = [("h1", "vtp-scaling report"), ("p", f"Metric: {metric} (column `{fitted[0][1].columns.y}`).")]
    blocks += [("h2", "Summary"), ("p", verdict_rule(settings)), ("ul", summary)]
    if checks:
        blocks += [("h2", "Probe controls"),
                   ("p", f"Whether the DiT probe learned the classes, per tokenizer configuration: {rule_text()}. "
                         "Laws are fitted only on configurations whose probe passes. The negative control is the "
                         "same probe with its DiT trained on shuffled labels."),
                   ("table", CHECK_HEADER, [check_row(c) for c in checks])]
    for panel, res, png in fitted:
        label = res.columns.y_label
        y = "" if res.columns.y == fitted[0][1].columns.y else f"y = {label} (`{res.columns.y}`), "
        blocks += [("h2", f"{panel.title} ({y}x = {panel.columns.x})"), ("img", png, f"{panel.title}: {label} vs {panel.columns.x}"),
                   ("table", header(settings.level), series_rows(res))]
        lines = comparison_lines(res)
        if lines:
            blocks.append(("ul", lines))
    provenance = [
        f"table: {Path(table.path).name}",
        f"sha256: {table.sha256}",
        f"snapshot version: {table.snapshot_version if table.snapshot_version is not None else 'not a snapshot'}",
        f"fit settings: {json.dumps(asdict(settings), sort_keys=True)}",
        "fit method: Huber loss on log residuals (summed; threshold "
        + ("1.345 x the robust noise scale of a least-squares pass" if settings.delta is None else f"{settings.delta:g}")
        + "), grid of starts, bounded L-BFGS-B, form chosen by " + settings.select
        + "; intervals: bootstrap over runs (>= 8 runs) or parametric bootstrap-t with AR(1) noise within runs",
        f"command: {command or 'library call (no command line)'}",
        f"code version: {version}",
        f"libraries: python {sys.version.split()[0]}, {library_versions()}",
        f"generated: {datetime.now(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')}",
    ]
    blocks += [("h2", "Provenance"), ("ul", provenance)]
    return blocks


def to_markdown(blocks: list[tuple]) -> str:
    out = []
    for b in blocks:
        if b[0] == "h1":
            out.append(f"# {b[1]}")
        elif b[0] == "h2":
            out.append(f"## {b[1]}")
        elif b[0] == "p":
            out.append(b[1])
        elif b[0] == "img":
            out.append(f"![{b[2]}]({b[1].name})")
        elif b[0] == "table":
            out.append("\n".join(["| " + " | ".join(b[1]) + " |", "|" + "---|" * len(b[1])]
                                 + ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in b[2]]))
        elif b[0] == "ul":
            out.append("\n".join(f"- {line}" for line in b[1]))
    return "\n\n".join(out) + "\n"


def to_html(blocks: list[tuple]) -> str:
    e = html.escape
    body = []
    for b in blocks:
        if b[0] in ("h1", "h2"):
            body.append(f"<{b[0]}>{e(b[1])}</{b[0]}>")
        elif b[0] == "p":
            body.append(f"<p>{e(b[1])}</p>")
        elif b[0] == "img":
            data = base64.b64encode(b[1].read_bytes()).decode()
            body.append(f'<figure><img alt="{e(b[2])}" src="data:image/png;base64,{data}"></figure>')
        elif b[0] == "table":
            head = "".join(f"<th>{e(c)}</th>" for c in b[1])
            rows = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in b[2])
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif b[0] == "ul":
            body.append("<ul>" + "".join(f"<li>{e(x)}</li>" for x in b[1]) + "</ul>")
    style = ("body{font-family:sans-serif;max-width:72em;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;font-size:85%}td,th{border:1px solid #ccc;padding:3px 6px}"
             "img{max-width:100%}")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>vtp-scaling report</title>'
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def write_report(table: Table, frame: pd.DataFrame, cols: Columns, out_dir: Path, *,
                 settings: LawSettings = DEFAULT_LAWS, panels: list[Panel] | None = None,
                 command: str | None = None, fit_failing: bool = False) -> tuple[list[Path], list[str]]:
    """Fit every panel and write report.html, report.md, fits.json and one PNG per panel.
    `command` is the command line recorded in the provenance. Returns (the files written, the
    Summary section's lines). `fit_failing`: fit configurations whose probe failed its controls too
    (the controls are still shown; the default leaves them out of the fits)."""
    from analysis.laws import to_json

    version = code_version()  # before writing: the report's own files may be tracked (docs/mini) and mark the tree dirty
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    checks = probe_checks(table.frame, cols.by) if table.snapshot_version is not None and panels is None else []
    if not fit_failing:
        frame = passing_rows(frame, checks, cols.by)
    fitted = []
    for panel in panels or default_panels(table, frame, cols):
        res = fit_laws(panel.frame, panel.columns, settings)
        png = scaling_figure(res, out_dir / f"{panel.name}.png", title=panel.title, x_label=panel.x_label)
        fitted.append((panel, res, png))
    summary = [summary_line(checks, fitted_anyway=fit_failing)] if checks else []
    summary += [line for panel, res, _ in fitted for line in summary_lines(panel.title, res)]
    blocks = _blocks(table, settings, fitted, summary, command, version, checks)
    md, page, js = out_dir / "report.md", out_dir / "report.html", out_dir / "fits.json"
    md.write_text(to_markdown(blocks))
    page.write_text(to_html(blocks))
    js.write_text(json.dumps({p.name: to_json(r) for p, r, _ in fitted}, indent=2) + "\n")
    return [page, md, js, *(png for _, _, png in fitted)], summary
