"""Scaling figures in the style of the paper's: log x, one line per size, one colour per family,
fitted curve with its bootstrap band, held-out (largest-x) points marked.

Uses matplotlib's object API with the Agg canvas: no pyplot, so no global figure state.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from analysis.laws import LawsResult
from analysis.select import largest_x_mask
from analysis.text import series_name

FAMILY_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", ":", "-.")


def family_colours(res: LawsResult) -> dict[str | None, str]:
    fams = sorted({r.series.family for r in res.series}, key=str)
    return {f: FAMILY_COLOURS[i % len(FAMILY_COLOURS)] for i, f in enumerate(fams)}


MAX_X2_CURVES = 6


def curve_grids(x: np.ndarray, xs: np.ndarray) -> list[tuple[float | None, np.ndarray]]:
    """Where to draw the law: along xs for a one-x law; for a joint law, one curve along xs per
    observed x2 value when there are few of them, else one at the median x2."""
    if x.ndim == 1:
        return [(None, xs)]
    values = np.unique(x[:, 1])
    if values.size > MAX_X2_CURVES:
        values = np.array([np.median(x[:, 1])])
    return [(float(v), np.column_stack([xs, np.full_like(xs, v)])) for v in values]


def scaling_figure(res: LawsResult, path: Path, *, title: str, x_label: str) -> Path:
    """One panel; returns the PNG path."""
    fig = Figure(figsize=(6.4, 4.4), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    colours = family_colours(res)
    size_index: dict[str, int] = {}
    held_drawn = False
    for r in res.series:
        s = r.series
        if s.y.size == 0:
            continue
        x1 = s.x if s.x.ndim == 1 else s.x[:, 0]
        colour = colours[s.family]
        size = ", ".join(f"{v}" for k, v in s.key.items() if k != res.columns.family) or "all"
        i_size = size_index.setdefault(size, len(size_index))
        marker, style = MARKERS[i_size % len(MARKERS)], LINESTYLES[i_size % len(LINESTYLES)]
        # Marked only where the leave-largest-out check really held them out.
        checked = r.chosen is not None and r.candidates[r.chosen].get("extrapolation") is not None
        held = largest_x_mask(s.x) if checked else np.zeros(s.y.size, bool)
        ax.scatter(x1[~held], s.y[~held], color=colour, marker=marker, s=22, zorder=3,
                   label=f"{series_name(r)} ({r.verdict})")
        if held.any():
            ax.scatter(x1[held], s.y[held], facecolors="none", edgecolors=colour, marker=marker, s=60,
                       linewidths=1.5, zorder=3, label=None if held_drawn else "held out (largest x)")
            held_drawn = True
        if r.fit is not None:
            xs = np.geomspace(x1.min(), x1.max(), 60)
            for x2, grid in curve_grids(s.x, xs):
                mid, lo, hi = r.band(grid, res.settings.level)
                ax.plot(xs, mid, color=colour, ls=style, lw=1.4 if x2 is None else 0.9, zorder=2)
                ax.fill_between(xs, lo, hi, color=colour, alpha=0.15, lw=0, zorder=1)
    ax.set_xscale("log")
    ax.set_xlabel(x_label)
    ax.set_ylabel(res.columns.y_label)
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, format="png", metadata={"Software": None})
    return path
