"""The same search inside one SLURM job on the real localhost cluster (Ray started in the job with
the job's 2 CPUs), then the tokenizer submitted by the next launch round with the best values."""

import json
from pathlib import Path

import pytest

from vtp.sweep.launcher import launch, launch_until_done
from vtp.sweep.spec import load_sweep

pytestmark = pytest.mark.slurm
SPEC = Path(__file__).resolve().parents[2] / "sweeps" / "tune_tiny.yaml"


def test_search_in_a_slurm_job_then_downstream_with_the_best(slurm_cluster, tmp_path):
    sweep = load_sweep(SPEC, [
        f"root={tmp_path / 'out'}", "executor=slurm",
        "executor.options={partition: debug, gres: null, cpus_per_task: 1, mem_gb: 1, time_min: 10, poll_s: 1}",
        "stages.tune.resources={cpus_per_task: 2, mem_gb: 3}", "stages.tokenizer.config.budget_steps=2"])
    st = launch_until_done(sweep, timeout_s=480, poll_s=1)
    assert {s.status for s in st.runs.values()} == {"done"}, st.runs
    ledger = json.loads((sweep.folder / "ledger.json").read_text())["runs"]
    (tune,) = [k for k, e in ledger.items() if e["stage"] == "tune"]
    (tok,) = [k for k, e in ledger.items() if e["stage"] == "tokenizer"]
    assert ledger[tune]["job_id"] != ledger[tok]["job_id"]
    best = json.loads((sweep.folder / "runs" / tune / "best.json").read_text())
    assert len(best["trials"]) == 4 and best["errors"] == 0
    cfg = json.loads((sweep.folder / "runs" / tok / "config.json").read_text())["config"]
    assert cfg["lr"] == best["config"]["lr"]
    assert json.loads((sweep.folder / "runs" / tune / "result.json").read_text())["cpus"] == 2  # SLURM's grant
    assert launch(sweep).submitted == ()
