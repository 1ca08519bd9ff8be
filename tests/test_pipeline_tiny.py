"""sweeps/tiny.yaml end to end with the real stages (tokenizer -> extract -> dit -> eval), shrunk by
command-line overrides to one objective and one checkpoint: on the local executor with MLflow,
and on the localhost SLURM cluster."""

from pathlib import Path

import pandas as pd
import pytest

from analysis.laws import LawSettings
from analysis.report import write_report
from analysis.table import choose_columns, load_table
from vtp.sweep.launcher import launch, wait
from vtp.sweep.spec import load_sweep
from vtp.tracking.export import export_snapshot

TINY = Path(__file__).resolve().parents[1] / "sweeps" / "tiny.yaml"
SHRINK = [
    "axes.objective=[vtp]",
    "stages.tokenizer.config.budget_steps=30",
    "stages.tokenizer.config.checkpoints=[40]",
    "stages.extract.config.num_images=300",
    "stages.dit.config.steps=40",
    "stages.eval.config.num_samples=100",
    "stages.eval.config.reference_images=300",
    "stages.eval.config.probe_train_images=300",
    "stages.eval.config.probe_test_images=200",
    "stages.eval.config.recon_images=100",
    "stages.eval.config.feature_net={train_samples: 500, epochs: 1, width: 8}",
]


def _check_eval_row(folder: Path, tmp_path: Path) -> None:
    snap = export_snapshot(folder, tmp_path / "runs.parquet")
    runs = pd.read_parquet(snap)
    assert set(runs["stage"]) == {"tokenizer", "extract", "dit", "eval"}
    assert (runs["status"] == "FINISHED").all(), runs[["stage", "status"]]
    ev = runs[runs["stage"] == "eval"].iloc[0]
    # the honest name: a Frechet distance over the built-in shapes network, never "gfid" without Inception
    assert ev["metric.gen_fd"] > 0 and "metric.gfid" not in runs.columns
    assert ev["tag.gen_fd_network"].startswith("shapes-cnn-")
    assert ev["metric.tokenizer_flops"] > 0 and 0 <= ev["metric.linear_probe"] <= 1
    # reconstruction of held-out images and the oracle's controls; vtp trains CLIP: zero-shot too
    assert ev["metric.recon_fd"] > 0 and ev["metric.recon_psnr"] > 0 and 0 < ev["metric.recon_ssim"] <= 1
    for name in ("oracle_accuracy_real", "oracle_accuracy_recon", "zero_shot_accuracy"):
        assert 0 <= ev[f"metric.{name}"] <= 1
    table = load_table(snap)
    frame, cols = choose_columns(table)
    # one configuration of a few steps: its probe fails its controls, so only --all-series fits it
    _, summary = write_report(table, frame, cols, tmp_path / "report", settings=LawSettings(n_boot=5, forms=("power",)),
                              fit_failing=True)
    assert summary[0].startswith("Probe controls: 0 of 1 configurations pass") and "--all-series" in summary[0]
    assert (tmp_path / "report" / "reconstruction.png").is_file()


def test_tiny_pipeline_local(tmp_path):
    sweep = load_sweep(TINY, [f"root={tmp_path / 'out'}", *SHRINK])
    assert len(launch(sweep).submitted) == 4
    st = wait(sweep.folder, timeout_s=900, poll_s=1)
    assert st.counts() == {s: {"done": 1} for s in ("tokenizer", "extract", "dit", "eval")}
    _check_eval_row(sweep.folder, tmp_path)
    assert len(launch(load_sweep(TINY, [f"root={tmp_path / 'out'}", *SHRINK])).submitted) == 0


@pytest.mark.slurm
def test_tiny_pipeline_on_slurm(slurm_cluster, tmp_path):
    job = ["executor=slurm", "executor.options.partition=debug", "executor.options.gres=null",
           "executor.options.cpus_per_task=1", "executor.options.mem_gb=2", "executor.options.time_min=20",
           "executor.options.poll_s=2"]
    sweep = load_sweep(TINY, [f"root={tmp_path / 'out'}", *SHRINK, *job])
    assert len(launch(sweep).submitted) == 4
    st = wait(sweep.folder, timeout_s=900, poll_s=2)
    assert st.counts() == {s: {"done": 1} for s in ("tokenizer", "extract", "dit", "eval")}
    _check_eval_row(sweep.folder, tmp_path)
