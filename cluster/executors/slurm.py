"""SLURM via submitit: job arrays per (stage, parent job), afterok chains, one sacct per poll.

- Runs of one stage that wait for the same parent job go as one job array (`map_array`), split into
  chunks of at most MaxArraySize: that setting caps the array *index*, and submitit numbers each
  array from 0, so every chunk is its own array with indexes 0..n-1 (the offset into the run list
  is the chunk start; each task's run key travels in its pickled arguments).
- A child depends on its parent's job (`afterok:<id>`, or `<array id>_<task>`) with
  `--kill-on-invalid-dep=yes`, so a failed parent cancels its children instead of leaving them
  pending forever (DependencyNeverSatisfied).
- sbatch is throttled (submitit's own pause) and retried with exponential back-off. Exactly once:
  each array is named `vtp-<sweep>-<token>`, and the token and its keys reach the ledger before
  sbatch runs (`on_intent`). An sbatch that fails after slurmctld queued the job (a reply lost to a
  socket timeout) is looked up by that name (`squeue --name`, then `sacct --name`) before any retry,
  and so is every token a killed launcher left in the ledger (`find`): a job found is adopted (its
  pickled calls put in place, since submitit only moves them after sbatch returned), never queued twice.
- States come from ONE batched `sacct --parsable2` call per poll (cluster.slurm_query); the
  worker's state.json marker wins. A job accounting does not know (slurmdbd lags or lost it) is
  looked up in `squeue`, so a live job is never declared lost and resubmitted.
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
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import submitit
from submitit.core.utils import DelayedSubmission, JobPaths, UncompletedJobError

from cluster import slurm_query
from cluster.executors.base import Submission
from cluster.profile import ExecutorProfile
from vtp.jobs.ledger import read_json, run_dir, write_json
from vtp.jobs.states import TIMEOUT, JobState
from vtp.jobs.worker import RunOwned, run_job

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
MAX_NUM_TIMEOUT = 3  # submitit requeues a timed-out job this many times, then it fails as `timeout`


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
        try:
            return dict(run_job(sweep_dir, key, primary=env.global_rank == 0))
        except RunOwned as e:  # a duplicate copy: it did nothing, and that is not a failure
            print(f"vtp: {e}", flush=True)
            return {}
        except UncompletedJobError:
            # submitit raises this from its USR2 handler when the time limit came once more than
            # max_num_timeout allows: the worker's marker says "error", but the run timed out.
            marker = run_dir(Path(sweep_dir), key) / "state.json"
            info = read_json(marker)
            if isinstance(info, dict) and info.get("status") == "failed":
                write_json(marker, {**info, "failure": TIMEOUT})
            raise


def job_folder(sweep_dir: Path) -> Path:
    """Where submitit keeps each job's pickles and logs: one flat folder, not one per job id
    (`%j`). It exists before sbatch runs, so a job that starts before its submission was recorded
    (a launcher killed after sbatch, a reply lost) can open its log files and wait for its pickled
    call; under a `%j` folder, created only after sbatch returned, slurmd fails it at once."""
    folder = Path(sweep_dir) / "slurm"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def job_name(sweep_dir: Path, token: str) -> str:
    return f"vtp-{Path(sweep_dir).name}-{token}"


PENDING_STATES = ("PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED")


def job_state(info: slurm_query.JobInfo) -> JobState:
    """cluster.slurm_query's view of a job -> the engine's (its failure classes are the engine's)."""
    if info.active:
        status = "pending" if info.state in PENDING_STATES else "running"
        return JobState(status, None, info.gpu_seconds, info.requeues)
    if info.succeeded:
        return JobState("completed", None, info.gpu_seconds, info.requeues)
    return JobState("failed", info.failure, info.gpu_seconds, info.requeues)


def _queued(state: str) -> JobState:
    """A state from squeue (no accounting record): active as it says; ended, we cannot tell how."""
    if state in slurm_query.ACTIVE_STATES:
        return JobState("pending" if state in PENDING_STATES else "running")
    if state == "COMPLETED":
        return JobState("completed")
    return JobState("failed", slurm_query.classify(state))


def _by_key(job_ids: Sequence[str], keys: Sequence[str]) -> dict[str, str]:
    """Job ids of one submission -> its keys: array task i is keys[i]; a single run is a plain job."""
    out = {}
    for job_id in job_ids:
        base, _, task = job_id.partition("_")
        i = int(task) if task.isdigit() else (0 if not task and len(keys) == 1 else None)
        if i is not None and i < len(keys):
            out[keys[i]] = f"{base}_{task}" if task else base
    return out


def chunks(items: Sequence, size: int) -> list[Sequence]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def sbatch_parameters(profile: ExecutorProfile, dependency: str | None, name: str) -> dict[str, Any]:
    """submitit.SlurmExecutor.update_parameters(**...) for one array of `profile`'s runs."""
    additional = dict(profile.additional)
    if dependency:
        additional.update({"dependency": f"afterok:{dependency}", "kill-on-invalid-dep": "yes"})
    tasks = max(1, profile.tasks_per_node)
    params = {"time": profile.time_min, "mem": f"{max(1, round(profile.mem_gb * 1024))}MB",
              "cpus_per_task": profile.cpus_per_task, "nodes": profile.nodes, "ntasks_per_node": tasks,
              "array_parallelism": profile.array_parallelism, "job_name": name,
              "signal_delay_s": profile.signal_delay_s,
              "setup": [f"export PYTHONPATH={PACKAGE_ROOT}:${{PYTHONPATH:-}}",
                        # each task's torch uses the CPUs SLURM gave it, not every core of the node
                        "export OMP_NUM_THREADS=${OMP_NUM_THREADS:-${SLURM_CPUS_PER_TASK:-1}}",
                        *profile.setup],
              "additional_parameters": additional}
    if tasks * profile.nodes > 1:
        params["srun_args"] = ["--kill-on-bad-exit=1"]  # one failed rank ends the job, not a hang
    for field_name in ("partition", "account", "qos", "gres"):
        if getattr(profile, field_name):
            params[field_name] = getattr(profile, field_name)
    return params


class SlurmExecutor:
    def __init__(self, profile: ExecutorProfile):
        self.profile = profile
        self._max_array: int | None = profile.max_array_size

    def _executor(self, sweep_dir: Path, profile: ExecutorProfile, dependency: str | None,
                  name: str) -> submitit.SlurmExecutor:
        ex = submitit.SlurmExecutor(folder=job_folder(sweep_dir), max_num_timeout=self._max_num_timeout())
        ex.update_parameters(**sbatch_parameters(profile, dependency, name))
        return ex

    def _max_num_timeout(self) -> int:
        return getattr(self.profile, "max_num_timeout", MAX_NUM_TIMEOUT)

    def _submit_array(self, sweep_dir: Path, profile: ExecutorProfile, dependency: str | None,
                      keys: Sequence[str], token: str) -> list[str]:
        delay = self.profile.submit_backoff_s
        for attempt in range(self.profile.submit_retries):
            try:
                ex = self._executor(sweep_dir, profile, dependency, job_name(sweep_dir, token))
                jobs = ex.map_array(SlurmJob(), [str(sweep_dir)] * len(keys), list(keys))
                return [j.job_id for j in jobs]
            except Exception:  # noqa: BLE001 -- sbatch timeouts surface as generic failures
                # sbatch may have failed after slurmctld queued the array (a lost reply):
                # look for it by name before submitting again.
                found = self._adopt(sweep_dir, token, keys, profile, active_only=False)
                if found:
                    return [found[k] for k in keys]
                if attempt + 1 == self.profile.submit_retries:
                    raise
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    def _adopt(self, sweep_dir: Path, token: str, keys: Sequence[str], profile: ExecutorProfile, *,
               active_only: bool, since: float | None = None) -> dict[str, str]:
        """key -> job id of the array queued under `token`, with its pickled calls put in place;
        {} when none was queued. `active_only`: a job that already ended without its pickles can
        not have run the body (it waited 60 s for them, then failed), so it is not adopted."""
        found = slurm_query.jobs_named(job_name(sweep_dir, token), since=since, active_only=active_only)
        ids = _by_key(found, keys)
        for key, job_id in ids.items():
            path = JobPaths(job_folder(sweep_dir), job_id=job_id).submitted_pickle
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                call = DelayedSubmission(SlurmJob(), str(sweep_dir), key)
                call.set_timeout(profile.time_min, self._max_num_timeout())
                call.dump(path)
        return ids

    def find(self, sweep_dir: Path, intents: Mapping[str, Mapping]) -> dict[str, str]:
        """Jobs queued under the tokens a killed launcher left in the ledger (token -> {"keys",
        "at"}): key -> job id for those still queued or running, adopted; the rest were never
        queued or can not have run, and are planned again. Raises SlurmCommandError when squeue
        cannot be asked (then nobody can tell; the launch must stop)."""
        out: dict[str, str] = {}
        for token, intent in intents.items():
            out.update(self._adopt(sweep_dir, token, list(intent["keys"]), self.profile, active_only=True,
                                   since=float(intent.get("at") or 0) or None))
        return out

    def submit(self, sweep_dir: Path, runs: Sequence[Submission],
               on_submitted: Callable[[Mapping[str, str]], None],
               on_intent: Callable[[str, Sequence[str]], None] | None = None) -> dict[str, str]:
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
                token = uuid.uuid4().hex[:12]
                if on_intent is not None:  # in the ledger before sbatch: a relaunch looks for it
                    on_intent(token, [m.key for m in chunk])
                job_ids = self._submit_array(sweep_dir, profile, dependency, [m.key for m in chunk], token)
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
        out = {k: job_state(infos[j]) for k, j in jobs.items() if j in infos}
        missing = {k: j for k, j in jobs.items() if k not in out}
        if missing:  # accounting lags or lost them: the controller's queue is the live truth
            try:
                queued = slurm_query.queue_states(missing.values())
            except (slurm_query.SlurmCommandError, OSError, subprocess.TimeoutExpired):
                return {**out, **{k: JobState("unknown") for k in missing}}
            out.update({k: _queued(queued[j]) for k, j in missing.items() if j in queued})
        return out

    def cancel(self, sweep_dir: Path, jobs: Mapping[str, str]) -> None:
        slurm_query.cancel(sorted(set(jobs.values())))
