"""Stage adapter: the sweep's `tokenizer` stage (`vtp.stages.tokenizer:run`).

Validates the run's config into `TokenizerTrainConfig`, trains (resuming from the newest checkpoint
in `ctx.run_dir`), and returns the summary written to result.json. In a job of several tasks each
is one rank of a data-parallel run (the process group comes from RANK/WORLD_SIZE/MASTER_ADDR/
MASTER_PORT, which the SLURM executor exports).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from vtp.config import from_dict
from vtp.jobs.context import RunContext
from vtp.train.config import TokenizerTrainConfig

# The modules this stage's job imports inside functions (planning imports this module without torch);
# a warm local scheduler imports them once and forks each worker from itself (cluster.executors.local).
PRELOAD = ("torch", "vtp.train.loop", "vtp.train.distributed", "vtp.data.source")

log = logging.getLogger(__name__)


def run(ctx: RunContext) -> Mapping[str, Any]:
    from vtp.data.source import describe
    from vtp.train.distributed import process_group  # torch is imported inside the job only
    from vtp.train.loop import train

    cfg = from_dict(TokenizerTrainConfig, dict(ctx.config), where=f"run {ctx.key} config", key="")
    data = describe(cfg.dataset).record(image_size=cfg.image_size)  # the same fingerprint every stage records
    ctx.tracker.set_tags({"stage": "tokenizer", "objective": cfg.objective, "encoder": cfg.encoder, **data})

    def say(msg: str) -> None:
        print(msg, flush=True)  # the job log
        log.info(msg)

    with process_group() as dist:
        summary = train(cfg, run_dir=ctx.run_dir, tracker=ctx.tracker, log=say, progress=ctx.progress, dist=dist)
    return {**summary, **data} if isinstance(summary, Mapping) else summary
