"""How long `plan` takes on a generated 10,000-run spec (goal: under 2 s on a login node).

    PYTHONPATH=. python benchmarks/plan_scale.py
Prints `RESULT plan_10k_s=<seconds>` (load + validate + expand + keys + actions + table) and the
same for the shipped cluster sweeps.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vtp.sweep.planner import format_table, plan  # noqa: E402
from vtp.sweep.spec import load_sweep  # noqa: E402
from vtp.sweep.version import code_version  # noqa: E402

# 50 x 20 x 10 tokenizer runs = 10,000 runs, fanned out 0 times (all root runs), plus a variant
# with fan-out: 250 tokenizer runs x 9 checkpoints x 4 downstream stages ~ 10k runs.
GRID = """
name: scale
axes:
  lr: [{lr}]
  seed: [{seeds}]
  params: [S, B, L, cpu-xs, cpu-s, cpu-m, X1, X2, X3, X4]
fixed: {{batch: 16384}}
derived:
  steps: "1.6e9 // ${{fixed.batch}}"
executor: debug
stages:
  - name: tokenizer
    target: vtp.stages.tokenizer:run
    flops: vtp.flops.tokenizer:train_flops
    config: {{encoder: "${{axes.params}}", lr: "${{axes.lr}}", seed: "${{axes.seed}}", steps: "${{derived.steps}}",
              checkpoints: [1, 2, 4, 7, 12, 19, 27, 35, 40]}}
"""
DOWNSTREAM = """
  - {name: extract, target: vtp.stages.extract:run, after: tokenizer, config: {batch_size: 256}}
  - {name: dit, target: vtp.stages.dit:run, after: extract, config: {steps: 400000}}
  - {name: eval, target: vtp.stages.eval:run, after: dit, config: {num_samples: 10000}}
"""


def timed(path: Path, root: str, version: str) -> tuple[float, int]:
    t0 = time.perf_counter()
    planned = plan(load_sweep(path, [f"root={root}"]), code_version=version)
    format_table(planned)
    return time.perf_counter() - t0, len(planned)


def main() -> None:
    version = code_version()
    with tempfile.TemporaryDirectory() as tmp:
        grid = Path(tmp) / "grid.yaml"
        grid.write_text(GRID.format(lr=", ".join(f"{i}e-5" for i in range(1, 51)),
                                    seeds=", ".join(map(str, range(20)))))
        fan = Path(tmp) / "fanout.yaml"
        fan.write_text(GRID.format(lr=", ".join(f"{i}e-5" for i in range(1, 26)), seeds="0")
                       .replace("    config:", "    fanout: checkpoints\n    config:") + DOWNSTREAM)
        s, n = timed(grid, tmp, version)
        print(f"grid: {n} runs in {s:.3f} s")
        print(f"RESULT plan_10k_s={s:.3f}")
        s, n = timed(fan, tmp, version)
        print(f"fan-out: {n} runs in {s:.3f} s")
        print(f"RESULT plan_fanout_{n}_s={s:.3f}")
        for name in ("compute", "params", "data"):
            s, n = timed(ROOT / "sweeps" / f"{name}.yaml", tmp, version)
            print(f"RESULT plan_{name}_s={s:.3f}  ({n} runs)")


if __name__ == "__main__":
    main()
