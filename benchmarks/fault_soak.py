"""Exactly once, nothing lost, under a storm of faults (issue #15).

    PYTHONPATH=. python benchmarks/fault_soak.py [--runs 200] [--seed 0]
    PYTHONPATH=. python benchmarks/fault_soak.py --quick     # 4 runs, SQLite store, no server restarts

A sweep of short local runs (`tests.faults.stages:relog`: logs a point every step, saves its state
every 3 steps, so a killed run logs some steps again when it resumes) is driven to completion
while, from a seeded random schedule, workers are SIGKILLed mid-run, launchers are SIGKILLed mid-
launch (mid-planning, mid-MLflow-preparation, mid-submission), and the MLflow server is killed and
restarted twice (full mode). Launches are repeated until every run is done; then the sweep is
exported to Parquet. Counted from the run folders (`runs/<key>/executions.jsonl`, the workers' log
of every start and end) and the exported snapshot:

    duplicate_executions  a run's stage running while another copy of it ran, or after it was done
    lost_points           (run, step) points missing from the exported curves
    duplicated_points     (run, metric, step) rows more than once in the exported curves, plus run
                          keys with more than one row in the run table
    runs                  rows in the exported run table

Ends with `RESULT duplicate_executions=0 lost_points=0 duplicated_points=0 runs=<n>` and a second
line with what was injected.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEPS = 9

SPEC = """
name: soak
axes: {seed: SEEDS}
executor: {profile: local, options: {max_workers: 2, poll_s: 0.1}}
tracking: {uri: URI, experiment: soak}
stages:
  - name: main
    target: tests.faults.stages:relog
    config: {steps: STEPS, sleep_s: 0.05, save_every: 3, seed: "${axes.seed}"}
"""


def launcher(spec: Path, root: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "vtp.cli.sweep", "launch", str(spec), f"root={root}",
                             "--retry-failed"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def running_workers(folder: Path) -> list[int]:
    out = []
    for path in (folder / "local" / "jobs").glob("*.json"):
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if info.get("status") == "running" and info.get("pid"):
            out.append(int(info["pid"]))
    return out


def all_done(folder: Path, keys: Sequence[str]) -> bool:
    for key in keys:
        try:
            if json.loads((folder / "runs" / key / "state.json").read_text()).get("status") != "done":
                return False
        except (OSError, ValueError):
            return False
    return True


def duplicate_executions(folder: Path, killed: dict[int, float]) -> int:
    """Starts that overlap another start of the same run (its end: its `end` event, or when the
    soak killed it), or that come after the run's `end status=done`."""
    dups = 0
    for log in folder.glob("runs/*/executions.jsonl"):
        events = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        ends = {e["pid"]: e["t"] for e in events if e["event"] == "end"}
        done_at = min((e["t"] for e in events if e["event"] == "end" and e.get("status") == "done"), default=None)
        spans = sorted((e["t"], ends.get(e["pid"], killed.get(e["pid"], float("inf")))) for e in events
                       if e["event"] == "start")
        for (_, e0), (s1, _) in zip(spans, spans[1:]):
            dups += s1 < e0
        dups += sum(1 for s, _ in spans if done_at is not None and s > done_at)
    return dups


def soak(n_runs: int, seed: int, restarts: int, workdir: Path) -> dict[str, int]:
    from vtp.tracking.server import start_server

    rng = random.Random(seed)
    root = workdir / "out"
    server = start_server(workdir / "server", log_path=workdir / "server.log") if restarts else None
    uri = server.uri if server else "null"
    spec = workdir / "soak.yaml"
    spec.write_text(SPEC.replace("SEEDS", json.dumps(list(range(n_runs)))).replace("URI", uri)
                    .replace("STEPS", str(STEPS)))
    folder = root / "soak"
    killed: dict[int, float] = {}
    counts = {"launches": 0, "launchers_killed": 0, "workers_killed": 0, "server_restarts": 0}
    keys: list[str] = []
    restart_at = sorted(rng.uniform(0.15, 0.7) for _ in range(restarts))  # fractions of the runs done
    deadline = time.time() + 60 * 30
    try:
        while time.time() < deadline:
            proc = launcher(spec, root)
            counts["launches"] += 1
            if rng.random() < 0.35:  # kill it at a random moment of its launch
                time.sleep(rng.uniform(0.0, 2.5))
                if proc.poll() is None:
                    proc.kill()
                    counts["launchers_killed"] += 1
            proc.wait()
            if not keys and (folder / "ledger.json").exists():
                try:
                    keys = sorted(json.loads((folder / "ledger.json").read_text())["runs"])
                except (OSError, ValueError, KeyError):
                    keys = []
            for _ in range(rng.randint(5, 20)):  # watch a while, killing workers now and then
                time.sleep(0.2)
                workers = running_workers(folder)
                if workers and rng.random() < 0.08:
                    pid = rng.choice(workers)
                    try:
                        os.kill(pid, signal.SIGKILL)
                        killed[pid] = time.time()
                        counts["workers_killed"] += 1
                    except ProcessLookupError:
                        pass
                done = sum(1 for k in keys if (folder / "runs" / k / "state.json").exists())
                if server and restart_at and keys and done / len(keys) >= restart_at[0]:
                    restart_at.pop(0)
                    server.kill()  # as if its node died; workers keep logging to their buffers
                    time.sleep(rng.uniform(0.5, 3.0))
                    server = start_server(workdir / "server", server.port, store=server.store,
                                          log_path=workdir / "server.log")
                    counts["server_restarts"] += 1
            if keys and len(keys) == n_runs and all_done(folder, keys) and not restart_at:
                break
        else:
            raise TimeoutError("the sweep did not finish in 30 minutes")
        from vtp.sweep.launcher import wait

        wait(folder, timeout_s=120, poll_s=0.2)  # the scheduler's last reap; syncs the buffers
        result = count(folder, workdir / "snapshot.parquet", keys, killed)
    finally:
        subprocess.run(["pkill", "-KILL", "-f", f"cluster.executors.local {folder}"], check=False)
        if server:
            server.stop()
    return {**result, **counts}


def count(folder: Path, out: Path, keys: Sequence[str], killed: dict[int, float]) -> dict[str, int]:
    import pyarrow.parquet as pq

    from vtp.tracking.export import curves_path, export_snapshot

    export_snapshot(folder, out)  # syncs what is still buffered, or refuses
    runs = pq.read_table(out).to_pylist()
    curves = pq.read_table(curves_path(out)).to_pylist()
    seen: dict[tuple, int] = {}
    for c in curves:
        seen[(c["run_key"], c["metric"], c["step"])] = seen.get((c["run_key"], c["metric"], c["step"]), 0) + 1
    run_rows: dict[str, int] = {}
    for r in runs:
        run_rows[r["run_key"]] = run_rows.get(r["run_key"], 0) + 1
    expected = {(k, "v", s) for k in keys for s in range(1, STEPS + 1)}
    return {
        "duplicate_executions": duplicate_executions(folder, killed),
        "lost_points": len(expected - set(seen)) + len(set(keys) - set(run_rows)),
        "duplicated_points": sum(n - 1 for n in seen.values()) + sum(n - 1 for n in run_rows.values()),
        "runs": len(runs),
        "relaunched_starts": sum(1 for log in folder.glob("runs/*/executions.jsonl")
                                 for line in log.read_text().splitlines() if '"start"' in line) - len(keys),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--server-restarts", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="4 runs, SQLite store, no server restarts")
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: a temporary one)")
    args = parser.parse_args(argv)
    n, restarts = (4, 0) if args.quick else (args.runs, args.server_restarts)
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="vtp-soak-") as tmp:
        r = soak(n, args.seed, restarts, args.dir or Path(tmp))
    print(f"RESULT duplicate_executions={r['duplicate_executions']} lost_points={r['lost_points']} "
          f"duplicated_points={r['duplicated_points']} runs={r['runs']}")
    print(f"RESULT launches={r['launches']} launchers_killed={r['launchers_killed']} "
          f"workers_killed={r['workers_killed']} server_restarts={r['server_restarts']} "
          f"relaunched_starts={r['relaunched_starts']} seconds={time.time() - t0:.0f}")
    ok = r["duplicate_executions"] == r["lost_points"] == r["duplicated_points"] == 0 and r["runs"] == n
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
