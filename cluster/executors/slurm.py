"""SLURM via submitit: job arrays per (stage, parent job), afterok chains, one sacct per poll.

- Runs of one stage that wait for the same parent job go as one job array (`map_array`), split into
  chunks of at most MaxArraySize: that setting caps the array *index*, and submitit numbers each
  array from 0, so every chunk is its own array with indexes 0..n-1 (the offset into the run list
  is the chunk start; each task's run key travels in its pickled arguments).
- A child depends on its parent's job (`afterok:<id>`, or `<array id>_<task>`) with
  `--kill-on-invalid-dep=yes`, so a failed parent cancels its children instead of leaving them
  pending forever (DependencyNeverSatisfied).
- sbatch is throttled (submitit's own pause) and retried with exponential back-off.
- States come from ONE batched `sacct --parsable2` call per poll (cluster.slurm_query); the
  worker's state.json marker wins.
- The job body is a `submitit.helpers.Checkpointable`: on preemption or timeout submitit requeues it
  with the same arguments, and the stage resumes from its run folder.
- A job of several tasks (`nodes` x `tasks_per_node`, one per GPU for the data-parallel stages) is
  one torch.distributed job: each task exports RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and
  MASTER_PORT (submitit's TorchDistributedEnvironment; the port is a function of the job id, so a
  requeued job finds it again), task 0 alone writes the run's markers and logs, and srun's
  --kill-on-bad-exit ends every task when one fails (its traceback is in its own `_<task>_log.err`).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import submitit

from cluster import slurm_query
from cluster.executors.base import Submission
from cluster.profile import ExecutorProfile
from vtp.jobs.states import JobState
from vtp.jobs.worker import run_job

PACKAGE_ROOT = Path(__file__).resolve().parents[2]

class SlurmJob(submitit.helpers.Checkpointable):
    """The job body. Checkpointable's default `checkpoint` resubmits the same call on requeue."""

    def __call__(self, sweep_dir: str, key: str) -> dict:
        env = submitit.JobEnvironment()
        if env.num_tasks > 1:
            # LOCAL_RANK picks the GPU; CUDA_VISIBLE_DEVICES is left as SLURM set it
            dist_env = submitit.helpers.TorchDistributedEnvironment()
            if env.num_nodes == 1:  # the SLURM node name need not resolve (it does not on the test cluster)
                dist_env.master_addr = "127.0.0.1"
            dist_env.export(set_cuda_visible_devices=False)
        return dict(run_job(sweep_dir, key, primary=env.global_rank == 0))


def job_state(info: slurm_query.JobInfo) -> JobState:
    """cluster.slurm_query's view of a job -> the engine's (its failure classes are the engine's)."""
    if info.active:
        status = "pending" if info.state in ("PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED") else "running"
        return JobState(status, None, info.gpu_seconds, info.requeues)
    if info.succeeded:
        return JobState("completed", None, info.gpu_seconds, info.requeues)
    return JobState("failed", info.failure, info.gpu_seconds, info.requeues)


def chunks(items: Sequence, size: int) -> list[Sequence]:
    return [items[i:i + size] for i in range(0, len(items), size)]


class SlurmExecutor:
    def __init__(self, profile: ExecutorProfile):
        self.profile = profile
        self._max_array: int | None = profile.max_array_size

    def _executor(self, sweep_dir: Path, profile: ExecutorProfile, dependency: str | None) -> submitit.SlurmExecutor:
        ex = submitit.SlurmExecutor(folder=Path(sweep_dir) / "slurm" / "%j", max_num_timeout=3)
        additional = dict(profile.additional)
        if dependency:
            additional.update({"dependency": f"afterok:{dependency}", "kill-on-invalid-dep": "yes"})
        tasks = max(1, profile.tasks_per_node)
        params = {"time": profile.time_min, "mem": f"{max(1, round(profile.mem_gb * 1024))}MB",
                  "cpus_per_task": profile.cpus_per_task, "nodes": profile.nodes, "ntasks_per_node": tasks,
                  "array_parallelism": profile.array_parallelism, "job_name": f"vtp-{Path(sweep_dir).name}",
                  "setup": [f"export PYTHONPATH={PACKAGE_ROOT}:${{PYTHONPATH:-}}",
                            # each task's torch uses the CPUs SLURM gave it, not every core of the node
                            "export OMP_NUM_THREADS=${OMP_NUM_THREADS:-${SLURM_CPUS_PER_TASK:-1}}",
                            *profile.setup],
                  "additional_parameters": additional}
        if tasks * profile.nodes > 1:
            params["srun_args"] = ["--kill-on-bad-exit=1"]  # one failed rank ends the job, not a hang
        for name in ("partition", "account", "qos", "gres"):
            if getattr(profile, name):
                params[name] = getattr(profile, name)
        ex.update_parameters(**params)
        return ex

    def _submit_array(self, sweep_dir: Path, profile: ExecutorProfile, dependency: str | None,
                      keys: Sequence[str]) -> list[str]:
        delay = self.profile.submit_backoff_s
        for attempt in range(self.profile.submit_retries):
            try:
                ex = self._executor(sweep_dir, profile, dependency)
                jobs = ex.map_array(SlurmJob(), [str(sweep_dir)] * len(keys), list(keys))
                return [j.job_id for j in jobs]
            except Exception:  # noqa: BLE001 -- sbatch timeouts surface as generic failures
                if attempt + 1 == self.profile.submit_retries:
                    raise
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    def submit(self, sweep_dir: Path, runs: Sequence[Submission],
               on_submitted: Callable[[Mapping[str, str]], None]) -> dict[str, str]:
        if self._max_array is None:
            self._max_array = slurm_query.max_array_size()
        ids: dict[str, str] = {}
        groups: dict[tuple, list[Submission]] = {}
        for r in runs:  # parents come first, so a parent in this batch has its id before its children
            groups.setdefault((r.stage, r.parent, r.parent_job), []).append(r)
        for (_, parent, parent_job), members in groups.items():
            dependency = ids.get(parent) if parent else None
            dependency = dependency or parent_job
            profile = members[0].profile
            for chunk in chunks(members, self._max_array):
                job_ids = self._submit_array(sweep_dir, profile, dependency, [m.key for m in chunk])
                new = dict(zip((m.key for m in chunk), job_ids))
                ids.update(new)
                on_submitted(new)
        return ids

    def states(self, sweep_dir: Path, jobs: Mapping[str, str]) -> dict[str, JobState]:
        """ONE batched sacct call (cluster.slurm_query.job_states); unknown when accounting is away."""
        if not jobs:
            return {}
        try:
            infos = slurm_query.job_states(jobs.values())
        except (slurm_query.SlurmCommandError, OSError, subprocess.TimeoutExpired):
            return {k: JobState("unknown") for k in jobs}  # markers still decide finished runs
        return {k: job_state(infos[j]) for k, j in jobs.items() if j in infos}

    def cancel(self, sweep_dir: Path, jobs: Mapping[str, str]) -> None:
        slurm_query.cancel(sorted(set(jobs.values())))
