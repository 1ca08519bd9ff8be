"""The README's main command (scripts/demo.sh on sweeps/mini.yaml), shrunk by command-line overrides
to a few-minute variant: killed midway and run again it finishes only the remaining runs, and run
again after it finished it trains nothing and re-renders the report with its three panels."""

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
    "grids=[{params: [cpu-xs, cpu-s]}, {data: [500, 2000]}]",  # 3 tokenizer configs per objective
    "stages.tokenizer.config.budget_steps=20",
    "stages.tokenizer.config.checkpoints=[20, 40]",
    "stages.decoder.config.steps=5",
    "stages.decoder.config.checkpoint_every=5",
    "stages.extract.config.num_images=200",
    "stages.extract.config.stats_samples=100",
    "stages.dit.config.steps=20",
    "stages.eval.config.num_samples=50",
    "stages.eval.config.reference_images=200",
    "stages.eval.config.probe_train_images=200",
    "stages.eval.config.probe_test_images=100",
    "stages.eval.config.feature_net={train_samples: 500, epochs: 1, width: 8}",
]
N_RUNS = 6 + 4 * 12  # 6 tokenizers, 2 checkpoints each, decoder -> extract -> dit -> eval per checkpoint

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
    panels = md.split("\n## ")[2:5]
    assert [p.split(" (")[0] for p in panels] == ["Training scaling", "Parameter scaling", "Data scaling"]
    for p in panels:
        assert "objective=ae" in p and "objective=vtp" in p, p
    assert "summary:" in out and "Frechet distance (shapes-cnn-" in md and "gFID" not in md
