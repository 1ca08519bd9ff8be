"""Stage `decoder` (`vtp.stages.decoder:run`): the optional second stage of the tokenizer, after
`tokenizer`, one run per tokenizer checkpoint. It freezes the encoder and fine-tunes the pixel
decoder with a GAN loss (vtp.train.gan), then writes `<run_dir>/checkpoints/<k>.pt` and `.json` in
the tokenizer's format. Downstream stages placed after it (`extract: {after: decoder}`) read that
checkpoint instead of the tokenizer's: the latents are the same, the decoded images are sharper.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vtp.config import from_dict, to_dict
from vtp.jobs.context import RunContext
from vtp.train.gan_config import DecoderGANConfig

# The modules this stage's job imports inside functions (planning imports this module without torch);
# a warm local scheduler imports them once and forks each worker from itself (cluster.executors.local).
PRELOAD = ("torch", "vtp.train.gan", "vtp.models.tokenizer", "vtp.train.checkpoint", "vtp.data.sets",
           "vtp.data.source", "vtp.stages.extract", "vtp.train.distributed")


def run(ctx: RunContext) -> Mapping[str, Any]:
    from vtp.data.sets import open_images
    from vtp.data.source import describe
    from vtp.models.tokenizer import VisualTokenizer, spec_from_dict
    from vtp.stages.extract import checkpoint_paths
    from vtp.train.checkpoint import load_state, save_checkpoint
    from vtp.train.distributed import process_group
    from vtp.train.gan import finetune_decoder

    cfg = from_dict(DecoderGANConfig, dict(ctx.config), where=f"run {ctx.key} config", key="decoder")
    pt, meta = checkpoint_paths(ctx)
    state = load_state(pt)
    tokenizer = VisualTokenizer(spec_from_dict(state["spec"]))
    tokenizer.load_state_dict(state["model"])
    dataset = open_images(cfg.dataset, image_size=tokenizer.image_size, num_samples=cfg.unique_samples, captions=False)
    data = describe(cfg.dataset).record(image_size=tokenizer.image_size)
    ctx.tracker.set_tags(data)

    def say(msg: str) -> None:
        print(msg, flush=True)  # the job log

    with process_group() as dist:
        summary = finetune_decoder(tokenizer, cfg, dataset, run_dir=ctx.run_dir, tracker=ctx.tracker, log=say,
                                   progress=ctx.progress, dist=dist)
    if not dist.primary:  # rank 0 alone writes
        return {}
    info = json.loads(meta.read_text()) if meta.is_file() else {}
    info.pop("k", None)
    # Only what load_tokenizer needs: the fine-tune is not resumable as tokenizer training.
    save_checkpoint(ctx.run_dir, ctx.checkpoint, {"spec": state["spec"], "model": tokenizer.cpu().state_dict()},
                    {**info, "decoder_gan": to_dict(cfg), "source_checkpoint": str(Path(pt))})
    # The resume state (decoder, discriminator, both optimizers) is not read again once the
    # checkpoint exists: 5 MB per run at cpu size, a fifth of the embedded study's disk. A job
    # killed before its result is recorded redoes the (seeded) fine-tune from step 0.
    (Path(ctx.run_dir) / "gan_state.pt").unlink(missing_ok=True)
    ctx.tracker.log_params({f"decoder.{k}": v for k, v in to_dict(cfg).items()})
    return {**{f"gan_{k}_last": v for k, v in summary["last"].items()}, "steps": summary["steps"],
            "disc_params": summary["disc_params"], "corrupt_images": getattr(dataset, "corrupt_count", 0), **data}
