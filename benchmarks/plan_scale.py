"""How long `plan` takes on a generated 10,000-run spec (goal: under 2 s on a login node).

    PYTHONPATH=. python benchmarks/plan_scale.py            # the figure in RESULTS.md
    PYTHONPATH=. python benchmarks/plan_scale.py --quick    # 60 runs: what the test suite runs
Prints `RESULT plan_10k_s=<seconds>` (load + validate + expand + keys + actions + table) and the
same for the shipped cluster sweeps. Every generated run's config passes the stage-config check
that `plan` applies to every sweep, so the benchmark breaks the day the schema moves away from it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vtp.sweep.planner import format_table, plan  # noqa: E402
from vtp.sweep.spec import load_sweep  # noqa: E402
from vtp.sweep.version import code_version  # noqa: E402

# 50 x 20 x 5 x 2 tokenizer runs = 10,000 runs, fanned out 0 times (all root runs), plus a variant
# with fan-out: 250 tokenizer runs x 9 checkpoints x 4 downstream stages ~ 10k runs.
GRID = """
name: scale
axes:
  lr: [{lr}]
  seed: [{seeds}]
  params: [S, B, L, cpu-s, cpu-m]
  objective: [ae, vtp]
fixed: {{batch: 16384}}
derived:
  steps: "1.6e9 // ${{fixed.batch}}"
executor: debug
stages:
  - name: tokenizer
    target: vtp.stages.tokenizer:run
    flops: vtp.flops.tokenizer:train_flops
    config: {{encoder: "${{axes.params}}", objective: "${{axes.objective}}", lr: "${{axes.lr}}", seed: "${{axes.seed}}", budget_steps: "${{derived.steps}}",
              checkpoints: [1, 2, 4, 7, 12, 19, 27, 35, 40]}}
"""
DOWNSTREAM = """
  - {name: extract, target: vtp.stages.extract:run, after: tokenizer, config: {batch_size: 256}}
  - {name: dit, target: vtp.stages.dit:run, after: extract, config: {steps: 400000}}
  - {name: eval, target: vtp.stages.eval:run, after: dit, config: {num_samples: 10000}}
"""


def timed(path: Path, root: str, version: str, *, check_data: bool = True) -> tuple[float, int]:
    t0 = time.perf_counter()
    planned = plan(load_sweep(path, [f"root={root}"]), code_version=version, check_data=check_data)
    format_table(planned)
    return time.perf_counter() - t0, len(planned)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="3 x 2 x 10 runs: checks the plumbing, not the figure")
    args = ap.parse_args(argv)
    n_lr, n_seed, n_fan_lr = (3, 2, 2) if args.quick else (50, 20, 25)
    version = code_version()
    with tempfile.TemporaryDirectory() as tmp:
        grid = Path(tmp) / "grid.yaml"
        grid.write_text(GRID.format(lr=", ".join(f"{i}e-5" for i in range(1, n_lr + 1)),
                                    seeds=", ".join(map(str, range(n_seed)))))
        fan = Path(tmp) / "fanout.yaml"
        fan.write_text(GRID.format(lr=", ".join(f"{i}e-5" for i in range(1, n_fan_lr + 1)), seeds="0")
                       .replace("    config:", "    fanout: checkpoints\n    config:") + DOWNSTREAM)
        s, n = timed(grid, tmp, version)
        print(f"grid: {n} runs in {s:.3f} s")
        print(f"RESULT plan_{n // 1000}k_s={s:.3f}" if n >= 1000 else f"RESULT plan_{n}_s={s:.3f}")
        s, n = timed(fan, tmp, version)
        print(f"fan-out: {n} runs in {s:.3f} s")
        print(f"RESULT plan_fanout_{n}_s={s:.3f}")
        for name in ("compute", "params", "data"):
            # their datasets live on the cluster: planned as `vtp-sweep plan --no-data-check` does
            s, n = timed(ROOT / "sweeps" / f"{name}.yaml", tmp, version, check_data=False)
            print(f"RESULT plan_{name}_s={s:.3f}  ({n} runs)")


if __name__ == "__main__":
    main()
