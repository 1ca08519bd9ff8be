"""The live table's progress bars: what a run writes, and what the table draws from it."""

from vtp.cli.sweep import render
from vtp.jobs.context import RunContext
from vtp.jobs.progress import bar, read_progress
from vtp.jobs.states import RunState
from vtp.sweep.status import SweepStatus


def test_bar_is_proportional_and_clamped():
    assert bar(0, 10, width=10) == "[----------]  0/10"
    assert bar(5, 10, width=10) == "[#####-----]  5/10"
    assert bar(12, 10, width=10).startswith("[##########]")
    assert bar(3, 0, width=4) == "[----] 3/0"


def test_running_runs_get_a_bar_from_their_progress_file(tmp_path):
    ctx = RunContext(key="abcdef0123", stage="tokenizer", config={}, run_dir=tmp_path / "runs" / "abcdef0123")
    ctx.progress(30, 120)
    assert read_progress(ctx.run_dir)["done"] == 30
    entries = {
        "abcdef0123": {"stage": "tokenizer", "axes": {"objective": "vtp", "params": "cpu-s"}, "checkpoint": None},
        "fedcba9876": {"stage": "dit", "axes": {"objective": "ae"}, "checkpoint": 20},
        "0000000000": {"stage": "dit", "axes": {}, "checkpoint": 40},
    }
    runs = {"abcdef0123": RunState("running"), "fedcba9876": RunState("running"), "0000000000": RunState("done")}
    text = render(SweepStatus(tmp_path, runs, entries, ("tokenizer", "dit")))
    lines = text.splitlines()
    assert lines[0].split()[:4] == ["stage", "new", "pending", "running"]
    tok = next(line for line in lines if "abcdef01" in line)
    assert "[#####---------------]  30/120 steps" in tok and "objective=vtp params=cpu-s" in tok
    dit = next(line for line in lines if "fedcba98" in line)
    assert "starting" in dit and "ckpt=20" in dit  # no progress file yet
    assert "00000000" not in text  # finished runs are counted, not listed
