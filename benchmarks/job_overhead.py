"""Per-job overhead of the local executor: a fresh python per run against a warm (forking) scheduler.

Issue 17, "Speed to pay for it": per-job overhead on the local executor. Each run of the sweep here
does what a stage job does around its work and nothing else: the worker's run folder and markers,
the tracker (the sweep's MLflow SQLite store: a RUNNING flush at open, one metric, the FINISHED
flush at close) and `import torch` plus a one-element op. The same sweep runs twice in this process,
once with `warm_start: false` (each run `python -m vtp.jobs.worker`: interpreter start, imports,
teardown) and once with the default warm start (the scheduler imports the modules once and forks
every worker from itself), one worker at a time so that nothing overlaps.

    RESULT cold_job_s=<wall seconds per run, fresh python>  warm_job_s=<... forked>
    RESULT warm_over_cold=<ratio>  preload_s=<the warm scheduler's one-time imports>

    PYTHONPATH=. python benchmarks/job_overhead.py [--runs 12] [--quick]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PRELOAD = ("torch",)  # what `job` imports inside: the warm scheduler imports it once (as the stages list theirs)


def job(ctx):  # noqa: ANN001, ANN201 - a RunContext; the stage target of every run here
    import torch

    ctx.tracker.log_metrics({"x": float(torch.ones(1).sum())}, step=0)
    return {"ok": True}


SPEC = """\
name: overhead_{mode}
root: {root}
axes:
  seed: {seeds}
executor:
  profile: local
  options: {{max_workers: 1, warm_start: {warm}}}
tracking:
  uri: null
stages:
  - name: job
    target: benchmarks.job_overhead:job
    config:
      seed: ${{axes.seed}}
"""


def measure(root: Path, runs: int, warm: bool) -> tuple[float, float]:
    """(wall seconds of the sweep's runs, preload seconds) for one launch until done."""
    from vtp.sweep.launcher import launch_until_done
    from vtp.sweep.spec import load_sweep

    mode = "warm" if warm else "cold"
    spec = root / f"{mode}.yaml"
    spec.write_text(SPEC.format(mode=mode, root=root, seeds=list(range(runs)), warm=str(warm).lower()))
    t0 = time.perf_counter()
    status = launch_until_done(load_sweep(spec), timeout_s=1800, poll_s=0.2)
    wall = time.perf_counter() - t0
    log = (root / f"overhead_{mode}" / "local" / "scheduler.log").read_text()
    m = re.search(r"preloaded \d+ modules in ([0-9.]+) s", log)
    done = sum(1 for st in status.runs.values() if st.status == "done")
    if done != runs:
        raise SystemExit(f"{mode}: {done} of {runs} runs done: {status.counts()} {status.failures()}")
    return wall, float(m.group(1)) if m else 0.0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=12)
    p.add_argument("--quick", action="store_true", help="3 runs each: checks the plumbing")
    args = p.parse_args(argv)
    runs = 3 if args.quick else args.runs
    with tempfile.TemporaryDirectory() as tmp:
        cold, _ = measure(Path(tmp), runs, warm=False)
        warm, preload = measure(Path(tmp), runs, warm=True)
    print(f"RESULT runs={runs} cold_sweep_s={cold:.2f} warm_sweep_s={warm:.2f} preload_s={preload:.2f}")
    print(f"RESULT cold_job_s={cold / runs:.3f} warm_job_s={warm / runs:.3f} warm_over_cold={warm / cold:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
