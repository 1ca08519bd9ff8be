"""How long `export_snapshot` takes on a 2,000-run SQLite store (goal: under 10 s).

    PYTHONPATH=. python benchmarks/export_parquet.py [--runs 2000] [--dir DIR]
    PYTHONPATH=. python benchmarks/export_parquet.py --quick     # 40 runs: what the test suite runs

The store is built the way a sweep builds it: `prepare_sweep` creates the experiment, parent run
and 2,000 child runs (tags + ~30 params each; its bulk SQLite path). Metric points are then
inserted with direct SQL into MLflow's `metrics` / `latest_metrics` tables, because logging them
run by run through the API would make building take minutes and is not what is measured: every
run gets 8 final metrics and every tokenizer run (1 in 10) a 100-step curve of 3 metrics.
Ends with `RESULT export_2k_s=<seconds>` (plus the build and sizes as extra RESULT lines).
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from vtp.tracking import RunRecord, prepare_sweep
from vtp.tracking.export import curves_path, export_snapshot

OBJECTIVES = ("ae", "clip+ae", "ssl+ae", "vtp")
EVAL_METRICS = ("gen_fd", "oracle_accuracy", "linear_probe", "tokenizer_flops", "tokenizer_params",
                "tokenizer_samples_seen", "recon_psnr", "recon_fd")  # fmt: skip


def make_records(n: int) -> list[RunRecord]:
    out = []
    for i in range(n):
        root = f"tok{i // 10:05d}"
        is_tok = i % 10 == 0
        axes = {"objective": OBJECTIVES[(i // 10) % 4], "params": "SBL"[(i // 40) % 3], "compute": 10.0 ** (14 + (i // 120) % 4)}
        config = {
            "encoder": {"preset": axes["params"], "depth": 12, "width": 384},
            "optim": {"lr": 1e-3, "weight_decay": 0.05, "warmup_fraction": 0.05},
            "objective": axes["objective"], "batch_size": 64, "seed": i, "checkpoints": [1, 2, 4, 7, 12, 19, 27, 35, 40],
            **{f"extra.k{j}": j * 0.5 for j in range(20)},
        }  # fmt: skip
        out.append(
            RunRecord(key=root if is_tok else f"{root}-eval{i % 10}", stage="tokenizer" if is_tok else "eval",
                      axes=axes, parents=() if is_tok else (root,), config=config, code_version="bench",
                      checkpoint=None if is_tok else i % 10, root=root)  # fmt: skip
        )
    return out


def insert_metrics(db_path: Path, ids: dict[str, str], records: list[RunRecord]) -> int:
    rows, latest = [], []
    t0 = int(time.time() * 1000)
    for r in records:
        run_id = ids[r.key]
        if r.stage == "tokenizer":
            for name in ("loss", "flops", "samples_seen"):
                points = [(name, 1.0 / (s + 1) if name == "loss" else s * 1e12, t0 + s, run_id, s, 0) for s in range(100)]
                rows += points
                latest.append((name, points[-1][1], points[-1][2], 99, 0, run_id))
        else:
            for j, name in enumerate(EVAL_METRICS):
                rows.append((name, 10.0 + j, t0, run_id, r.checkpoint or 0, 0))
                latest.append((name, 10.0 + j, t0, r.checkpoint or 0, 0, run_id))
    db = sqlite3.connect(db_path)
    with db:
        db.executemany("INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?,?,?,?,?,?)", rows)
        db.executemany("INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES (?,?,?,?,?,?)", latest)
    db.close()
    return len(rows)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=2000)
    p.add_argument("--dir", type=Path, default=None, help="where to build the store (default: a temp folder)")
    p.add_argument("--quick", action="store_true", help="40 runs: checks the plumbing, not the figure")
    args = p.parse_args(argv)
    if args.quick:
        args.runs = 40
    with tempfile.TemporaryDirectory() as tmp:
        sweep = (args.dir or Path(tmp)) / "bench-sweep"
        records = make_records(args.runs)
        t = time.perf_counter()
        ids = prepare_sweep(sweep, name="bench", uri=f"sqlite:///{sweep.resolve()}/mlflow.db", runs=records)
        prepare_s = time.perf_counter() - t
        points = insert_metrics(sweep / "mlflow.db", ids, records)
        t = time.perf_counter()
        out = export_snapshot(sweep, sweep / "snapshot" / "runs.parquet")
        export_s = time.perf_counter() - t
        import pyarrow.parquet as pq

        table, curves = pq.read_table(out), pq.read_table(curves_path(out))
        assert table.num_rows == args.runs and curves.num_rows == points, (table.num_rows, curves.num_rows, points)
        print(f"RESULT prepare_{args.runs}_runs_s={prepare_s:.2f}")
        print(f"RESULT snapshot_columns={table.num_columns}")
        print(f"RESULT curve_rows={curves.num_rows}")
        print(f"RESULT export_2k_s={export_s:.2f}" if args.runs == 2000 else f"RESULT export_{args.runs}_s={export_s:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
