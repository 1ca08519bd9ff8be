"""The README's main command (scripts/demo.sh on sweeps/mini.yaml), shrunk by command-line overrides
to a few-minute variant: killed midway and run again it finishes only the remaining runs, and run
again after it finished it trains nothing and re-renders the report. At this size no probe learns
the classes: the report shows every configuration's controls failing and fits nothing; the same
snapshot reported with --all-series shows the three panels."""

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from vtp.jobs.ledger import read_json, read_ledger

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "scripts" / "demo.sh"
SMALL = [
    "grids=[{params: [cpu-xxs, cpu-xs]}, {data: [500, 2000]}]",  # 3 tokenizer configs per objective
    "stages.tokenizer.config.budget_steps=20",
    "stages.tokenizer.config.checkpoints=[20, 40]",
    "stages.decoder.config.steps=5",
    "stages.decoder.config.checkpoint_every=5",
    "stages.extract.config.num_images=200",
    "stages.extract.config.stats_samples=100",
    *(f"stages.{dit}.config.steps=20" for dit in ("dit", "dit_shuffled")),
    *(f"stages.{ev}.config.{k}" for ev in ("eval", "eval_shuffled") for k in (
        "num_samples=50", "reference_images=200", "recon_images=50",
        "feature_net={train_samples: 500, epochs: 1, width: 8}")),
    "stages.eval.config.probe_train_images=200",
    "stages.eval.config.probe_test_images=100",
]
# 12 tokenizers (3 configs x 2 objectives x 2 seeds), checkpoints 20 and 40; decoder -> extract -> dit
# -> eval for both checkpoints of the centre's seed 0 and the last elsewhere (7 per objective), and
# dit_shuffled -> eval_shuffled at VTP's centre last checkpoint of seed 0
N_RUNS = 12 + 4 * 14 + 2

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (ROOT / ".venv" / "bin" / "vtp-sweep").exists(),
                       reason="scripts/demo.sh uses the project's .venv (made by scripts/setup.sh)"),
]


def _demo(root: Path, **kw) -> subprocess.Popen:
    env = {**os.environ, "VTP_SYSTEM": "0"}
    return subprocess.Popen(["bash", str(DEMO), "sweeps/mini.yaml", f"root={root}", *SMALL], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def _states(folder: Path) -> dict[str, dict]:
    return {p.parent.name: read_json(p) or {} for p in (folder / "runs").glob("*/state.json")}


def _kill_everything(proc: subprocess.Popen, folder: Path) -> None:
    """As a crash or a reboot would: the command, its detached scheduler and every worker."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    subprocess.run(["pkill", "-KILL", "-f", str(folder)], check=False)
    deadline = time.time() + 30
    while subprocess.run(["pgrep", "-f", str(folder)], capture_output=True).returncode == 0:
        assert time.time() < deadline, "processes of the sweep survived SIGKILL"
        time.sleep(0.2)


def test_mini_study_killed_resumed_and_rerun(tmp_path):
    folder = tmp_path / "mini"
    first = _demo(tmp_path, start_new_session=True)
    deadline = time.time() + 600
    while sum(s.get("status") == "done" for s in _states(folder).values()) < 10:
        assert first.poll() is None, first.stdout.read()
        assert time.time() < deadline, "the study did not get 10 runs done"
        time.sleep(0.5)
    _kill_everything(first, folder)
    before = {k: s for k, s in _states(folder).items() if s.get("status") == "done"}
    assert 10 <= len(before) < N_RUNS
    killed_at = time.time()

    out, _ = _demo(tmp_path).communicate(timeout=900)
    assert "report: " in out, out[-3000:]
    after = _states(folder)
    assert len(read_ledger(folder)["runs"]) == N_RUNS and len(after) == N_RUNS
    assert all(s.get("status") == "done" for s in after.values()), out[-3000:]
    for key, s in before.items():  # finished before the kill: not run again
        assert after[key]["started"] == s["started"], key
    rerun = [k for k in after if k not in before]
    assert all(after[k]["started"] > killed_at for k in rerun)

    report = folder / "report"
    mtime = (report / "report.html").stat().st_mtime
    out, _ = _demo(tmp_path).communicate(timeout=300)
    assert re.search(rf"submitted 0 of {N_RUNS} runs", out), out[-3000:]
    assert _states(folder) == after  # trained nothing
    assert (report / "report.html").stat().st_mtime > mtime  # re-rendered
    md = (report / "report.md").read_text()
    assert "summary:" in out and "Frechet distance (shapes-cnn-" in md and "gFID" not in md
    # the controls: computed for every configuration (2 seeds averaged), shown, and the fits left out
    controls = md.split("## Probe controls")[1].split("\n## ")[0]
    rows = [r for r in controls.splitlines() if r.startswith("| objective=")]
    assert len(rows) == 6 + 1, controls  # 6 configurations, 1 negative control
    assert sum("| shuffled | 1 |" in r for r in rows) == 1 and sum("| true | 2 |" in r for r in rows) == 6
    assert "0 of 6 configurations pass" in md and "left out of the fits" in md
    for r in rows:  # oracle accuracy of samples, control and chance are numbers
        cells = [c.strip() for c in r.split("|")[1:-1]]
        assert all(0 <= float(cells[i]) <= 1 for i in (3, 4, 5)) and float(cells[5]) == 0.05, r

    # the same snapshot with every configuration fitted: the three panels
    subprocess.run([str(ROOT / ".venv" / "bin" / "vtp-analyze"), "report", str(folder / "runs.parquet"), "-o",
                    str(tmp_path / "all"), "--all-series"], check=True, capture_output=True, timeout=300)
    md = (tmp_path / "all" / "report.md").read_text()
    panels = md.split("\n## ")[3:6]
    assert [p.split(" (")[0] for p in panels] == ["Training scaling", "Parameter scaling", "Data scaling"]
    for p in panels:
        assert "objective=ae" in p and "objective=vtp" in p, p
    assert "fitted anyway (--all-series)" in md
