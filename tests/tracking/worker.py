"""A stand-alone worker process for the tracking tests: logs N metric points into run KEY.

    python -m tests.tracking.worker SWEEP_DIR KEY N [--pause-at M --go-file F --ready-file R]

With --pause-at it writes READY after M points and waits for GO before the rest (outage test).
Exit code 0 only if every call succeeded and close() synced everything (unless --allow-unsynced).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from vtp.tracking import open_run


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("sweep_dir")
    p.add_argument("key")
    p.add_argument("n", type=int)
    p.add_argument("--flush-every", type=int, default=100)
    p.add_argument("--pause-at", type=int, default=-1)
    p.add_argument("--ready-file", type=Path)
    p.add_argument("--go-file", type=Path)
    p.add_argument("--allow-unsynced", action="store_true")
    args = p.parse_args(argv)
    tracker = open_run(args.sweep_dir, args.key, flush_every=args.flush_every)
    tracker.log_params({"worker": {"n": args.n}})
    for step in range(args.n):
        if step == args.pause_at:
            tracker.flush(wait_s=30)
            args.ready_file.write_text("ready")
            while not args.go_file.exists():
                time.sleep(0.05)
        tracker.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
    synced = tracker.close("FINISHED")
    print(f"synced={synced}")
    return 0 if synced or args.allow_unsynced else 3


if __name__ == "__main__":
    sys.exit(main())
