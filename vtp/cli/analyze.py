"""vtp-analyze: fit scaling laws, write the report, export a snapshot. A thin face over `analysis`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path


def _add_table_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("table", help="snapshot Parquet (vtp-analyze export) or any CSV/Parquet table")
    p.add_argument("--x", help="x column (snapshot default: metric.tokenizer_flops)")
    p.add_argument("--x2", help="second x column: fits the joint law L(N, D) = E + A/N^alpha + B/D^beta")
    p.add_argument("--y", help="y column (snapshot default: metric.gfid, else metric.gen_fd)")
    p.add_argument("--by", nargs="+", help="columns that split the table into series")
    p.add_argument("--family", help="column whose values are compared (snapshot default: axis.objective)")
    p.add_argument("--unit", help="bootstrap unit column (snapshot default: root_key)")
    p.add_argument("--forms", default="power,saturating,loglinear", help="candidate law forms, comma-separated")
    p.add_argument("--delta", type=float, default=None,
                   help="Huber threshold on log residuals (default: 1.345 x the robust noise scale)")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap replicates")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--select", choices=("aicc", "aic", "bic", "extrapolation"), default="aicc",
                   help="how the form is chosen (default: aicc, the small-sample criterion)")
    p.add_argument("--level", type=float, default=0.95, help="interval level (default 0.95)")
    p.add_argument("--higher-better", action="store_true", help="y improves upward (e.g. accuracy)")
    p.add_argument("--flat-per-decade", type=float, default=0.05,
                   help="'stagnates' when the local slope's interval rules out a change larger than this "
                        "fraction per 10x of x (default 0.05)")
    p.add_argument("--beyond-factor", type=float, default=10.0,
                   help="x ratios and crossovers further than this factor outside the observed x range are "
                        "reported as 'beyond the data' (default 10)")
    p.add_argument("--compare", nargs=2, metavar=("FAMILY_A", "FAMILY_B"), help="the family pair to compare")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vtp-analyze", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    fit = sub.add_parser("fit-laws", help="fit scaling laws with CIs; print a table and write fits.json")
    _add_table_args(fit)
    fit.add_argument("-o", "--output", default="fits.json", help="where to write fits.json")
    rep = sub.add_parser("report", help="write an HTML report, its Markdown twin and PNG figures")
    _add_table_args(rep)
    rep.add_argument("-o", "--output", required=True, help="output folder")
    rep.add_argument("--all-series", action="store_true",
                     help="fit every configuration, also those whose DiT probe failed its controls (shown, not "
                          "left out: for looking at a study whose probe does not work yet)")
    exp = sub.add_parser("export", help="export a sweep (folder or tracking URI) to a snapshot Parquet")
    exp.add_argument("sweep", nargs="?", default=".", help="sweep folder or tracking URI")
    exp.add_argument("-o", "--output", default="snapshot.parquet")
    exp.add_argument("--allow-unsent", action="store_true",
                     help="export even when tracked points are still in offline buffers (the store is away)")
    return parser


def _inputs(args: argparse.Namespace):
    from analysis.laws import LawSettings
    from analysis.table import choose_columns, load_table

    table = load_table(args.table)
    frame, cols = choose_columns(table, x=args.x, y=args.y, by=tuple(args.by) if args.by else None,
                                 family=args.family, unit=args.unit, x2=args.x2)
    settings = LawSettings(forms=args.form_names, delta=args.delta, n_boot=args.n_boot, seed=args.seed,
                           select=args.select, level=args.level, higher_is_better=args.higher_better,
                           families=tuple(args.compare) if args.compare else None,
                           flat_per_decade=args.flat_per_decade, beyond_factor=args.beyond_factor)
    return table, frame, cols, settings


class UsageError(ValueError):
    """A flag combination that cannot work; the message says which flag to change."""


def _forms(args: argparse.Namespace) -> tuple[str, ...]:
    """The candidate forms, checked against --x2: a two-x law needs --x2, and --x2 needs one."""
    from analysis.forms import FORMS

    names = tuple(f.strip() for f in args.forms.split(",") if f.strip())
    unknown = [f for f in names if f not in FORMS]
    if unknown:
        raise UsageError(f"--forms: unknown form(s) {', '.join(unknown)}; known: {', '.join(FORMS)}")
    n_x = 2 if args.x2 else 1
    fitting = tuple(f for f in names if FORMS[f].n_x == n_x)
    if not fitting:
        want = ", ".join(f for f, form in FORMS.items() if form.n_x == n_x)
        if args.x2:
            raise UsageError(f"--x2 given but --forms {args.forms} has no two-x law; use --forms {want}")
        raise UsageError(f"--forms {args.forms} takes two x columns: name the second with --x2 "
                         f"(or use one-x forms: {want})")
    skipped = [f for f in names if f not in fitting]
    if skipped:
        print(f"vtp-analyze: --forms: {', '.join(skipped)} ignored: "
              f"{'one' if args.x2 else 'two'}-x law(s) for {'two' if args.x2 else 'one'} x column(s)", file=sys.stderr)
    return fitting


def _command(argv: Sequence[str] | None) -> str:
    import shlex

    return "vtp-analyze " + shlex.join(sys.argv[1:] if argv is None else list(argv))


def _fit_laws(args: argparse.Namespace) -> int:
    from analysis.laws import fit_laws, to_json
    from analysis.text import plain_table

    _, frame, cols, settings = _inputs(args)
    res = fit_laws(frame, cols, settings)
    print(plain_table(res))
    Path(args.output).write_text(json.dumps(to_json(res), indent=2) + "\n")
    print(f"\nwrote {args.output}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from analysis.report import write_report

    table, frame, cols, settings = _inputs(args)
    paths, summary = write_report(table, frame, cols, Path(args.output), settings=settings, command=args.command_line,
                                  fit_failing=args.all_series)
    for p in paths:
        print(f"wrote {p}")
    print("\n".join(["", "summary:", *(f"  {line}" for line in summary)]))
    return 0


def _export(args: argparse.Namespace) -> int:
    from vtp.tracking.export import export_snapshot  # written by the tracking layer
    from vtp.tracking.store import TrackingError

    try:
        print(f"wrote {export_snapshot(args.sweep, Path(args.output), allow_unsent=args.allow_unsent)}")
    except TrackingError as e:
        print(f"vtp-analyze: export: {e}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    # Before numpy loads: thousands of tiny fits run ~10x slower with a spinning multithreaded BLAS.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    args = build_parser().parse_args(argv)
    args.command_line = _command(argv)
    from analysis.table import TableError

    try:
        if hasattr(args, "forms"):
            args.form_names = _forms(args)  # before reading the table: a bad flag fails fast
        return {"fit-laws": _fit_laws, "report": _report, "export": _export}[args.command](args)
    except (TableError, UsageError) as e:
        print(f"vtp-analyze: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
