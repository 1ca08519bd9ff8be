"""A data-parallel tokenizer stage on the real localhost SLURM cluster (session fixture
`slurm_cluster`; its node has 2 stand-in GPUs): `gres: gpu:2` starts 2 tasks that train as one
torch.distributed job (gloo on the CPU). Rank 0 alone logs to MLflow and writes checkpoints; a job
requeued mid-run resumes to the same final weights as an uninterrupted 2-task run."""

import re
import sqlite3
import time

import pytest
import torch

from cluster.slurm_query import requeue
from vtp.jobs.ledger import read_ledger
from vtp.sweep.launcher import launch, wait
from vtp.sweep.planner import plan
from vtp.sweep.spec import load_sweep
from vtp.train.checkpoint import load_state

pytestmark = pytest.mark.slurm

SPEC = """
name: NAME
executor: {profile: slurm, options: {partition: debug, gres: "gpu:2", cpus_per_task: 1, mem_gb: 2, time_min: 10,
           poll_s: 1}}
stages:
  - name: tokenizer
    target: vtp.stages.tokenizer:run
    fanout: checkpoints
    config: {encoder: cpu-xs, objective: vtp, batch_size: 16, budget_steps: 120, unique_samples: 64, latent_dim: 8,
             decoder_depth: 1, checkpoints: [5, 20, 40], log_every: 1, resume_every_s: 0}
"""


def _sweep(tmp_path, name, *overrides):
    path = tmp_path / f"{name}.yaml"
    path.write_text(SPEC.replace("NAME", name))
    return load_sweep(path, [f"root={tmp_path / 'out'}", *overrides])


def _logs(sweep) -> str:
    return "\n".join(p.read_text() for p in sorted((sweep.folder / "slurm").rglob("*_log.out")))


def test_two_tasks_train_as_one_ddp_job_and_resume_after_requeue(slurm_cluster, tmp_path):
    # The node's 2 (stand-in) GPUs go to the run that is requeued; the other asks for 2 tasks
    # without GPUs (the executor is not part of a run's key: both are the same run).
    cut = _sweep(tmp_path, "cut")
    whole = _sweep(tmp_path, "whole", "executor.options.gres=null", "executor.options.tasks_per_node=2")
    assert [p.tasks_per_node for p in (cut.stage_profiles["tokenizer"], whole.stage_profiles["tokenizer"])] == [2, 2]
    launch(whole)
    launch(cut)
    run = next(p.run for p in plan(cut))
    ckpt = cut.folder / "runs" / run.key / "checkpoints"
    deadline = time.time() + 240
    # `scontrol requeue` sends SIGTERM, which submitit ignores; slurmd kills the tasks KillWait (5 s)
    # later. The run must not be able to finish inside that window, or the "requeued" job is simply
    # done before it is killed: at 12 steps left it was (9 steps took 4.6 s), and at 45 left on a
    # machine with twice the GEMM rate (45 steps in < 5 s). 105 steps remain here: ~10 s on that one.
    while not (ckpt / "5.json").exists():  # step 15 of 120: requeue it, as preemption would
        assert time.time() < deadline, "the job never wrote its checkpoint 5/40"
        time.sleep(0.2)
    job = read_ledger(cut.folder)["runs"][run.key]["job_id"]
    requeue(job)
    for sweep in (whole, cut):
        st = wait(sweep.folder, timeout_s=400, poll_s=1)
        assert st.counts() == {"tokenizer": {"done": 1}}, st.counts()
    assert wait(cut.folder, timeout_s=5, poll_s=1).runs[run.key].requeues >= 1

    # the same final weights, resumed or not
    a = load_state(whole.folder / "runs" / run.key / "checkpoints/40.pt")
    b = load_state(ckpt / "40.pt")
    for part in ("model", "teacher"):
        for k, t in a[part].items():
            torch.testing.assert_close(t, b[part][k], rtol=1e-6, atol=1e-6, msg=f"{part}.{k}")

    logs = _logs(whole)
    assert "ranks=2" in logs  # 2 tasks, one DDP job
    for k in (5, 20, 40):  # each checkpoint written once (rank 0 only)
        assert len(re.findall(rf"^checkpoint {k}/40 at step", logs, re.M)) == 1, k
    cut_logs = _logs(cut)
    assert "resumed from" in cut_logs  # the second attempt resumed: the first was killed mid-run
    assert len(re.findall(r"^checkpoint 40/40 at step", cut_logs, re.M)) == 1
    for sweep in (whole, cut):  # one MLflow run holds the metrics, with every logged step
        db = sqlite3.connect(sweep.folder / "mlflow.db")
        rows = db.execute("select r.run_uuid, r.status from runs r join tags t on t.run_uuid = r.run_uuid "
                          "where t.key = 'vtp.run_key' and t.value = ?", (run.key,)).fetchall()
        assert len(rows) == 1 and rows[0][1] == "FINISHED", rows
        steps = {s for (s,) in db.execute("select distinct step from metrics where run_uuid = ? and "
                                          "key = 'loss/total'", (rows[0][0],))}
        assert steps == set(range(1, 121))
