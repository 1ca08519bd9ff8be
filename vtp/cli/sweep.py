"""`vtp-sweep`: plan | launch | status | cancel. A thin face over vtp.sweep."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from cluster.slurm_query import SlurmCommandError
from vtp.config import ConfigError
from vtp.jobs.ledger import LedgerError
from vtp.jobs.progress import bar, read_progress
from vtp.sweep.launcher import LaunchReport, cancel, launch, launch_until_done, wait
from vtp.sweep.lock import SweepBusy
from vtp.sweep.planner import format_table, plan
from vtp.sweep.spec import load_sweep
from vtp.sweep.status import SweepStatus, status


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vtp-sweep", description="Plan and run scaling sweeps.")
    sub = p.add_subparsers(dest="command", required=True)
    for name, help_ in (("plan", "show every run and what launch would do; changes nothing"),
                        ("launch", "submit the runs plan marks `run`, then exit (or --wait)")):
        c = sub.add_parser(name, help=help_)
        c.add_argument("spec", type=Path)
        c.add_argument("overrides", nargs="*", help="key=value, e.g. executor=local axes.params=[S,B]")
        c.add_argument("--retry-failed", action="store_true", help="also rerun runs that raised an exception")
        if name == "plan":
            c.add_argument("--limit", type=int, default=None, help="show at most this many rows")
            c.add_argument("--no-data-check", action="store_true",
                           help="do not list the datasets (preview a cluster spec away from its data)")
        else:
            c.add_argument("--wait", action="store_true", help="block with a live table until all runs end")
            c.add_argument("--timeout", type=float, default=None, help="with --wait: give up after this many s")
    c = sub.add_parser("folder", help="print the sweep folder a spec (and overrides) resolves to")
    c.add_argument("spec", type=Path)
    c.add_argument("overrides", nargs="*")
    c = sub.add_parser("ui", help="serve the sweep's MLflow store with a real mlflow server on 127.0.0.1")
    c.add_argument("sweep", type=Path, nargs="?", default=None)
    c.add_argument("--port", type=int, default=5000)
    for name, help_ in (("status", "counts per stage and failures, from the sweep folder alone"),
                        ("cancel", "cancel every queued or running job of the sweep")):
        c = sub.add_parser(name, help=help_)
        c.add_argument("sweep", type=Path, nargs="?", default=None,
                       help="the sweep folder (<root>/<name>) or a spec; default: the only one under ./out")
        if name == "status":
            c.add_argument("--watch", action="store_true", help="refresh in place until all runs end")
    return p


def _sweep_dir(arg: Path | None) -> Path:
    if arg is not None and arg.is_file():
        return load_sweep(arg).folder
    if arg is not None:
        return arg
    found = sorted(p.parent for p in Path("out").glob("*/ledger.json"))
    if len(found) != 1:
        raise SystemExit(f"vtp-sweep: name the sweep folder; found {len(found)} under ./out: "
                         + ", ".join(map(str, found)))
    return found[0]


def render(st: SweepStatus) -> str:
    counts = st.counts()
    cols = ["new", "pending", "running", "done", "failed", "blocked", "cancelled"]
    rows = [["stage", *cols]] + [[s, *(str(c.get(k, 0)) for k in cols)] for s, c in counts.items()]
    widths = [max(len(r[i]) for r in rows) for i in range(len(cols) + 1)]
    lines = ["  ".join(x.ljust(w) for x, w in zip(r, widths)).rstrip() for r in rows]
    lines += running_lines(st)
    fails = st.failures()
    if fails:
        lines.append(f"failures ({len(fails)}):")
        for key, stage, cls in fails[:20]:
            lines.append(f"  {key}  {stage}  {cls}  {st.sweep_dir / 'runs' / key}")
    if st.requeues():
        lines.append(f"requeued (preempted, timed out or requeued by hand): {st.requeues()} times")
    gh = st.gpu_hours()
    if gh:
        lines.append(f"GPU-hours used: {gh:.2f}")
    return "\n".join(lines)


def running_lines(st: SweepStatus, limit: int = 8) -> list[str]:
    """One line per running run: stage, key, axis values, checkpoint, and a bar from its progress.json."""
    out = []
    running = [k for k, s in st.runs.items() if s.status == "running"]
    for key in running[:limit]:
        e = st.entries[key]
        what = " ".join(f"{a}={v}" for a, v in (e.get("axes") or {}).items())
        if e.get("checkpoint") is not None:
            what += f" ckpt={e['checkpoint']}"
        p = read_progress(st.sweep_dir / "runs" / key)
        shown = f"{bar(p['done'], p['total'])} {p.get('unit', '')}".rstrip() if p else "starting"
        out.append(f"  {e['stage']:<10} {key[:8]}  {shown}  {what}")
    if len(running) > limit:
        out.append(f"  ... and {len(running) - limit} more running")
    return (["running:"] + out) if out else []


def _live(st: SweepStatus, tty: bool, last: list) -> None:
    """Redraw in place on a terminal; in a log, print when the counts change or every 30 s."""
    text = render(st)
    if tty:
        if last:
            sys.stdout.write(f"\x1b[{last[0].count(chr(10)) + 1}F\x1b[J")
        print(text, flush=True)
        last[:] = [text]
        return
    counts, now = st.counts(), time.monotonic()
    if not last or counts != last[1] or now - last[2] >= 30.0:
        print(text + "\n", flush=True)
        last[:] = [text, counts, now]


def _said(report: LaunchReport) -> None:
    print(f"{report.sweep_dir}: submitted {len(report.submitted)} of {len(report.planned)} runs")
    if report.deferred:
        print(f"{report.deferred} run(s) wait for a tune search; launch again when it has ended (or use --wait)")


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # `vtp-sweep plan ... | head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _main(argv: list[str] | None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "plan":
            t0 = time.perf_counter()
            planned = plan(load_sweep(args.spec, args.overrides), retry_failed=args.retry_failed,
                           check_data=not args.no_data_check)
            print(format_table(planned, limit=args.limit))
            print(f"({len(planned)} runs, planned in {time.perf_counter() - t0:.2f} s)")
            return 0
        if args.command == "launch":
            sweep = load_sweep(args.spec, args.overrides)
            if not args.wait:
                _said(launch(sweep, retry_failed=args.retry_failed))
                return 0
            last: list = []
            tty = sys.stdout.isatty()
            # launches again when a tune search ends, for the runs that use its best values
            st = launch_until_done(sweep, retry_failed=args.retry_failed, timeout_s=args.timeout, on_launch=_said,
                                   on_poll=lambda s: _live(s, tty, last))
            return 1 if st.failures() else 0
        if args.command == "folder":
            print(load_sweep(args.spec, args.overrides).folder)
            return 0
        folder = _sweep_dir(args.sweep)
        if args.command == "ui":
            from vtp.tracking.server import main as serve

            return serve([str(folder), "--port", str(args.port)])
        if args.command == "status":
            if args.watch:
                last: list = []
                wait(folder, on_poll=lambda s: _live(s, sys.stdout.isatty(), last))
            else:
                print(render(status(folder)))
            return 0
        keys = cancel(folder)
        print(f"{folder}: cancelled {len(keys)} jobs")
        return 0
    except ConfigError as e:
        print(f"vtp-sweep: error: {e}", file=sys.stderr)
        return 2
    except (FileNotFoundError, TimeoutError, SweepBusy, LedgerError, SlurmCommandError) as e:
        print(f"vtp-sweep: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
