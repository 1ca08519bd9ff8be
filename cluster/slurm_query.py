"""Low-level SLURM queries for the sweep engine: states, failure classes, GPU-hours, cancel, requeue.

Plain subprocess calls to sacct/scontrol/scancel (no torch, no submitit), so a login node can run
`vtp-sweep status` instantly. States come from ONE batched `sacct --parsable2` call per poll
(accounting via slurmdbd), not one call per job: a sweep of thousands of runs polls in a second.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from vtp.jobs.states import AUTO_RETRY, CANCELLED, ERROR, NODE_FAILURE, OUT_OF_MEMORY, PREEMPTED, TIMEOUT

SACCT_FIELDS = ("JobID", "JobIDRaw", "State", "ExitCode", "Elapsed", "AllocTRES", "Reason", "NodeList")

# The failure classes a SLURM state can map to, and the retry policy: both the job contract's
# (vtp.jobs.states), so `vtp-sweep status` and the launcher never disagree on what is retried.
FAILURE_CLASSES = (TIMEOUT, OUT_OF_MEMORY, NODE_FAILURE, PREEMPTED, ERROR, CANCELLED)
RETRYABLE_BY_DEFAULT = AUTO_RETRY & frozenset(FAILURE_CLASSES)

_STATE_TO_CLASS = {
    "TIMEOUT": TIMEOUT, "DEADLINE": TIMEOUT,
    "OUT_OF_MEMORY": OUT_OF_MEMORY,
    "NODE_FAIL": NODE_FAILURE, "BOOT_FAIL": NODE_FAILURE,
    "PREEMPTED": PREEMPTED,
    "FAILED": ERROR, "SPECIAL_EXIT": ERROR,
    "CANCELLED": CANCELLED, "REVOKED": CANCELLED,
}
ACTIVE_STATES = frozenset({
    "PENDING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SUSPENDED",
    "CONFIGURING", "COMPLETING", "STOPPED", "SIGNALING", "STAGE_OUT", "RESV_DEL_HOLD",
})


class SlurmCommandError(RuntimeError):
    """A SLURM command failed; the message has the command line and its stderr."""


@dataclass(frozen=True)
class JobInfo:
    """What accounting knows about one job or array task (its latest attempt)."""

    job_id: str                 # as submitted/printed: "123" or "123_4" for an array task
    state: str                  # SLURM base state, e.g. COMPLETED, RUNNING, CANCELLED (no "by uid")
    exit_code: int              # of the batch script (0 while running)
    signal: int                 # that killed it, 0 if none
    elapsed_s: int              # wall time of the latest attempt
    gpus: int                   # GPUs allocated (gres/gpu in AllocTRES); 0 while pending
    reason: str = ""            # why it is pending / failed ("None" when SLURM has nothing to say)
    nodes: str = ""
    step_states: tuple[str, ...] = ()      # states of its steps (batch, extern, srun steps)
    previous_states: tuple[str, ...] = ()  # final states of earlier attempts (requeues), oldest first
    gpu_seconds: float = 0.0               # GPUs x elapsed, summed over every attempt

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def succeeded(self) -> bool:
        return self.state == "COMPLETED"

    @property
    def failure(self) -> str | None:
        """Failure class (one of FAILURE_CLASSES) of a finished job, None if running or succeeded."""
        return classify(self.state, step_states=self.step_states)

    @property
    def retryable(self) -> bool:
        return self.failure in RETRYABLE_BY_DEFAULT

    @property
    def requeues(self) -> int:
        return len(self.previous_states)


def classify(state: str, *, step_states: Iterable[str] = ()) -> str | None:
    """Map a SLURM job state (and its steps' states) to a failure class; None when not a failure.

    A job whose step was killed for memory may end as FAILED at job level (depends on the plugins),
    so a step's OUT_OF_MEMORY wins over the job's FAILED.
    """
    base = base_state(state)
    if base == "COMPLETED" or base in ACTIVE_STATES:
        return None
    cls = _STATE_TO_CLASS.get(base, ERROR)
    if cls == ERROR and any(base_state(s) == "OUT_OF_MEMORY" for s in step_states):
        return OUT_OF_MEMORY
    return cls


def base_state(state: str) -> str:
    """'CANCELLED by 0' -> 'CANCELLED'; 'RUNNING+' stays itself minus flags."""
    return state.split(" ", 1)[0].rstrip("+").upper()


# ---------------------------------------------------------------- parsing (pure, unit-tested)

def parse_elapsed(text: str) -> int:
    """SLURM durations '[D-]HH:MM:SS', 'MM:SS', 'MM:SS.mmm' -> seconds."""
    text = text.strip()
    if not text or text in ("INVALID", "UNLIMITED", "Partition_Limit"):
        return 0
    days, _, clock = text.rpartition("-")
    parts = [float(p) for p in clock.split(":")]
    while len(parts) < 3:
        parts.insert(0, 0.0)
    h, m, s = parts
    return int((int(days or 0) * 24 + h) * 3600 + m * 60 + s)


def parse_tres(text: str) -> dict[str, str]:
    """'billing=1,cpu=1,gres/gpu=2,mem=1000M,node=1' -> {'cpu': '1', 'gres/gpu': '2', ...}."""
    out = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        out[key] = value
    return out


def gpus_in(tres: dict[str, str]) -> int:
    """GPU count of a TRES dict: 'gres/gpu', else the sum of typed 'gres/gpu:<type>' entries."""
    if "gres/gpu" in tres:
        return int(tres["gres/gpu"] or 0)
    return sum(int(v or 0) for k, v in tres.items() if k.startswith("gres/gpu:"))


def expand_array_id(job_id: str) -> list[str]:
    """'12_[1,3-5%2]' (a pending array's summary line) -> ['12_1', '12_3', '12_4', '12_5']."""
    m = re.fullmatch(r"(\d+)_\[([^\]]+)\]", job_id)
    if not m:
        return [job_id]
    base, spec = m.group(1), m.group(2).split("%", 1)[0]
    out = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        step = 1
        if ":" in hi:
            hi, step_text = hi.split(":", 1)
            step = int(step_text)
        out += [f"{base}_{i}" for i in range(int(lo), int(hi or lo) + 1, step)]
    return out


def _split_step(job_id: str) -> tuple[str, str | None]:
    """'123_4.batch' -> ('123_4', 'batch'); '123' -> ('123', None)."""
    head, dot, step = job_id.partition(".")
    return head, (step if dot else None)


def parse_sacct(text: str, fields: Sequence[str] = SACCT_FIELDS) -> dict[str, JobInfo]:
    """Parse `sacct --parsable2 --noheader --duplicates --format=<fields>` output into JobInfo by id.

    Job lines come in submission order; a requeued job appears once per attempt (its earlier
    attempts as REQUEUED, PREEMPTED, NODE_FAIL...), the latest last. Step lines ('.batch',
    '.extern', '.0') follow the attempt they belong to. A pending array is one summary line
    '12_[3-9%2]' whose range may still name tasks that already have their own line: those win.
    """
    attempts: dict[str, list[tuple[dict[str, str], list[str]]]] = {}
    pending_summaries: list[dict[str, str]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        values = line.split("|")
        if len(values) != len(fields):
            raise ValueError(f"sacct line has {len(values)} fields, expected {len(fields)} "
                             f"({','.join(fields)}): {line!r}")
        row = dict(zip(fields, values))
        job, step = _split_step(row["JobID"])
        if step is not None:
            if job in attempts:
                attempts[job][-1][1].append(base_state(row["State"]))
        elif "[" in job:
            pending_summaries.append(row)
        else:
            attempts.setdefault(job, []).append((row, []))
    for row in pending_summaries:
        for job_id in expand_array_id(row["JobID"]):
            attempts.setdefault(job_id, [(row, [])])
    return {job_id: _job_info(job_id, rows) for job_id, rows in attempts.items()}


def _job_info(job_id: str, attempts: list[tuple[dict[str, str], list[str]]]) -> JobInfo:
    last, step_states = attempts[-1]
    exit_code, _, signal = last.get("ExitCode", "0:0").partition(":")
    gpu_seconds = 0.0
    for row, _ in attempts:
        gpu_seconds += gpus_in(parse_tres(row.get("AllocTRES", ""))) * parse_elapsed(row.get("Elapsed", ""))
    return JobInfo(
        job_id=job_id,
        state=base_state(last["State"]),
        exit_code=int(exit_code or 0),
        signal=int(signal or 0),
        elapsed_s=parse_elapsed(last.get("Elapsed", "")),
        gpus=gpus_in(parse_tres(last.get("AllocTRES", ""))),
        reason=last.get("Reason", ""),
        nodes=last.get("NodeList", ""),
        step_states=tuple(step_states),
        previous_states=tuple(base_state(row["State"]) for row, _ in attempts[:-1]),
        gpu_seconds=gpu_seconds,
    )


def parse_max_array_size(config_text: str) -> int:
    """The MaxArraySize value in `scontrol show config` output."""
    m = re.search(r"^MaxArraySize\s*=\s*(\d+)", config_text, re.MULTILINE)
    if not m:
        raise ValueError("no 'MaxArraySize = N' line in `scontrol show config` output")
    return int(m.group(1))


def gpu_hours(infos: Iterable[JobInfo]) -> float:
    """GPU-hours used: allocated GPUs x elapsed time, over every attempt of every job."""
    return sum(i.gpu_seconds for i in infos) / 3600.0


# ---------------------------------------------------------------- commands

def _run(cmd: list[str], *, timeout_s: float = 60, retries: int = 2) -> str:
    """Run a SLURM client command; retry transient failures (slurmctld/slurmdbd busy) with back-off."""
    err = ""
    for attempt in range(retries + 1):
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            err = f"timed out after {timeout_s:.0f} s"
        except FileNotFoundError as exc:
            raise SlurmCommandError(f"{cmd[0]} not found: is SLURM installed and on PATH? ({exc})") from exc
        else:
            if proc.returncode == 0:
                return proc.stdout
            err = f"exit {proc.returncode}: {proc.stderr.strip()}"
        if attempt < retries:
            time.sleep(2.0 * 2**attempt)
    raise SlurmCommandError(f"`{' '.join(cmd)}` failed ({err})")


def max_array_size(*, timeout_s: float = 30) -> int:
    """The cluster's MaxArraySize (the highest array *index* + 1 allowed, not a count)."""
    return parse_max_array_size(_run(["scontrol", "show", "config"], timeout_s=timeout_s))


def job_states(job_ids: Iterable[str], *, chunk: int = 2000, timeout_s: float = 60) -> dict[str, JobInfo]:
    """JobInfo per job id known to accounting, from one batched sacct call (per `chunk` ids).

    Ids may be plain ('123') or array tasks ('123_4'); an array's own id returns all its tasks.
    Ids sacct does not know (yet: accounting lags submission by a moment) are absent from the result.
    """
    ids = list(dict.fromkeys(str(j) for j in job_ids))
    out: dict[str, JobInfo] = {}
    for start in range(0, len(ids), chunk):
        text = _run(["sacct", "--parsable2", "--noheader", "--duplicates", "--allusers",
                     "--format=" + ",".join(SACCT_FIELDS), "-j", ",".join(ids[start:start + chunk])],
                    timeout_s=timeout_s)
        out.update(parse_sacct(text))
    return out


def _user() -> str:
    import getpass

    return getpass.getuser()


def queue_states(job_ids: Iterable[str], *, timeout_s: float = 60) -> dict[str, str]:
    """job id -> SLURM base state of the given jobs the controller still holds (one `squeue` call
    over this user's jobs: `-j` with an id the controller has forgotten fails the whole call).

    The live truth for a job that accounting does not know yet (slurmdbd lags or was down)."""
    wanted = {str(j) for j in job_ids}
    text = _run(["squeue", "--noheader", "--array", "--states=all", "--user", _user(), "--format=%i|%T"],
                timeout_s=timeout_s)
    out = {}
    for line in text.splitlines():
        job_id, _, state = line.strip().partition("|")
        for one in expand_array_id(job_id):
            if one in wanted:
                out[one] = base_state(state)
    return out


def jobs_named(name: str, *, since: float | None = None, active_only: bool = False,
               timeout_s: float = 60) -> list[str]:
    """Ids of the jobs (array tasks one by one) named `name`: queued or running ones from
    `squeue --name`; with `active_only=False` also ended ones from `sacct --name` (since `since`,
    a Unix time; accounting keeps them after the controller forgets them)."""
    text = _run(["squeue", "--noheader", "--array", "--states=all", f"--name={name}", "--format=%i|%T"],
                timeout_s=timeout_s)
    found: dict[str, None] = {}
    for line in text.splitlines():
        job_id, _, state = line.strip().partition("|")
        if job_id and (not active_only or base_state(state) in ACTIVE_STATES):
            found.update(dict.fromkeys(expand_array_id(job_id)))
    if not active_only:
        start = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime((since or time.time() - 86400) - 60))
        text = _run(["sacct", "--noheader", "--parsable2", "--allocations", "--allusers", f"--name={name}",
                     f"--starttime={start}", "--format=JobID"], timeout_s=timeout_s)
        for line in text.splitlines():
            if line.strip():
                found.update(dict.fromkeys(expand_array_id(line.strip())))
    return list(found)


_GONE = ("already completing or completed", "Invalid job id")


def cancel(job_ids: Iterable[str], *, timeout_s: float = 60) -> None:
    """scancel the jobs in one call; jobs already finished are not an error."""
    ids = [str(j) for j in job_ids]
    if not ids:
        return
    proc = subprocess.run(["scancel", *ids], capture_output=True, text=True, timeout=timeout_s,
                          stdin=subprocess.DEVNULL)
    errors = [ln for ln in proc.stderr.splitlines() if ln.strip() and not any(g in ln for g in _GONE)]
    if proc.returncode != 0 and errors:
        raise SlurmCommandError(f"`scancel {' '.join(ids)}` failed: {'; '.join(errors)}")


def requeue(job_id: str, *, timeout_s: float = 60) -> None:
    """Put a running (or finished) batch job back in the queue, as preemption would."""
    _run(["scontrol", "requeue", str(job_id)], timeout_s=timeout_s, retries=0)
