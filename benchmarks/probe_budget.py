"""How much DiT does the embedded study's probe need before it learns the classes?

Trains the mini study's centre tokenizers (cpu-xs, patch 4, latent 8, 2000 unique images, 240 steps;
`ae` and `vtp`; every size is an option, the defaults are sweeps/mini.yaml's),
fine-tunes their decoders as the study does, extracts the probe set, then trains the fixed-spec DiT
probe for increasing budgets (resuming one run: the step count is the only difference) and, at each
budget and classifier-free guidance scale, prints the oracle accuracy of its samples against the
control (the oracle on decode(encode(real held-out images))) and chance. A shuffled-label DiT on the
same latents is the negative control: it cannot learn which class is which, so it must stay near chance.

    PYTHONPATH=. python benchmarks/probe_budget.py --objectives vtp   # ~6 min on 2 free cores
    PYTHONPATH=. python benchmarks/probe_budget.py --quick    # plumbing check, seconds

Each line: `RESULT kind=probe tokenizer=<ae|vtp> model=<preset> steps=<n> guidance=<g> labels=<true|shuffled>
oracle=<acc> control=<acc> chance=<1/classes> pass=<0|1>` where pass means oracle >= half the control
and >= 5x chance (the study's rule, analysis.controls).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch

import vtp.stages.decoder as decoder_stage
import vtp.stages.dit as dit_stage
import vtp.stages.eval as eval_stage
import vtp.stages.extract as extract_stage
from analysis.controls import probe_passes
from vtp.config import from_dict
from vtp.jobs import NullTracker, RunContext
from vtp.stages.configs import EvalConfig
from vtp.train.config import TokenizerTrainConfig
from vtp.train.dit import load_dit_ema
from vtp.train.loop import train


def ctx(base: Path, stage: str, config: dict, parents: dict, tracker=None) -> RunContext:
    (base / stage).mkdir(parents=True, exist_ok=True)
    return RunContext(key=f"{base.name}-{stage}", stage=stage, config=config, run_dir=base / stage, parents=parents,
                      checkpoint=40, tracker=tracker or NullTracker())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("out/bench_probe_budget"))
    ap.add_argument("--quick", action="store_true", help="tiny sizes: checks the plumbing, not the claim")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--objectives", default="ae,vtp")
    ap.add_argument("--models", default="DiT-cpu", help="comma-separated DiT presets")
    ap.add_argument("--steps", default="1000,1500,2000", help="DiT budgets (cumulative, one resumed run)")
    ap.add_argument("--guidance", default="1,2,3")
    ap.add_argument("--num-images", type=int, default=1000, help="probe images extract encodes (plus flips)")
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--lr", type=float, default=3e-3, help="DiT learning rate")
    ap.add_argument("--patch-size", type=int, default=4, help="tokenizer patch size (tokens per image: (32/p)^2)")
    ap.add_argument("--latent-dim", type=int, default=8, help="tokenizer latent width")
    ap.add_argument("--tok-steps", type=int, default=240)
    ap.add_argument("--decoder-steps", type=int, default=120)
    ap.add_argument("--encoder", default="cpu-xs")
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--dit-patch", type=int, default=2, help="latent positions per DiT token side")
    ap.add_argument("--batch", type=int, default=64, help="DiT batch")
    ap.add_argument("--sample-steps", type=int, default=20, help="Euler steps of the sampler")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    q = args.quick
    steps = [5, 10] if q else [int(s) for s in args.steps.split(",")]
    guidance = [float(g) for g in args.guidance.split(",")]
    models = args.models.split(",")[:1] if q else args.models.split(",")
    root = args.out
    if root.exists():
        shutil.rmtree(root)
    ext_cfg = {"num_images": 100 if q else args.num_images, "stats_samples": 100 if q else 500}
    eval_cfg = from_dict(EvalConfig, {
        "num_samples": 40 if q else args.samples, "steps": args.sample_steps, "reference_images": 100 if q else 1000,
        "recon_images": 40 if q else 200, "probe_train_images": 0, "cache_dir": str(root / "cache"),
        "feature_net": {"train_samples": 400, "epochs": 1} if q else {"train_samples": 8000, "epochs": 8, "width": 24}})
    print(f"config: dit steps {steps} models {models} guidance {guidance} lr {args.lr} extract {ext_cfg} "
          f"tokenizer {args.encoder} image {args.image_size} patch {args.patch_size} latent {args.latent_dim} steps {args.tok_steps} "
          f"decoder steps {args.decoder_steps} dit patch {args.dit_patch} batch {args.batch} threads {args.threads}", flush=True)
    for objective in args.objectives.split(","):
        t0 = time.time()
        base = root / objective
        tok_cfg = from_dict(TokenizerTrainConfig, {
            "encoder": args.encoder, "objective": objective, "image_size": args.image_size, "patch_size": args.patch_size,
            "latent_dim": args.latent_dim,
            "decoder_depth": 2, "batch_size": 32, "rec_fraction": 1.0 if objective == "ae" else 0.125,
            "budget_steps": 10 if q else args.tok_steps, "unique_samples": 2000, "lr": 1e-3, "checkpoints": [40],
            "log_every": 20})
        train(tok_cfg, run_dir=base / "tokenizer", log=lambda _s: None)
        decoder_stage.run(ctx(base, "decoder", {"steps": 5 if q else args.decoder_steps, "batch_size": 32, "lr": 1e-3,
                                                "lambda_gan": 0.0, "unique_samples": 2000, "log_every": 20,
                                                "checkpoint_every": 120}, {"tokenizer": base / "tokenizer"}))
        extract_stage.run(ctx(base, "extract", ext_cfg, {"tokenizer": base / "tokenizer", "decoder": base / "decoder"}))
        manifest = json.loads((base / "extract" / "latents.json").read_text())
        chance = 1.0 / manifest["num_classes"]
        tokenizer, _ = extract_stage.load_checkpoint_tokenizer(ctx(base, "eval", {}, {"tokenizer": base / "tokenizer", "decoder": base / "decoder"}))
        probe = eval_stage.probe_set(eval_cfg, manifest, where="bench")
        control = eval_stage.evaluate_heldout(tokenizer, cfg=eval_cfg, probe=probe, cache=root / "cache")
        print(f"RESULT kind=control tokenizer={objective} real={control['oracle_accuracy_real']:.3f} "
              f"recon={control['oracle_accuracy_recon']:.3f} psnr={control['recon_psnr']:.2f} "
              f"setup_s={time.time() - t0:.0f}", flush=True)
        for model in models:
            for shuffled in (False, True):
                run = base / f"dit-{model}-{'shuffled' if shuffled else 'true'}"
                for n in steps:
                    if shuffled and n != steps[-1]:
                        continue
                    t1 = time.time()
                    dit_cfg = {"model": model, "steps": n, "batch_size": args.batch, "lr": args.lr, "patch_size": args.dit_patch, "ema_decay": 0.999,
                               "log_every": 50, "checkpoint_every": 100000, "shuffle_labels": shuffled}
                    c = RunContext(key=run.name, stage="dit", config=dit_cfg, run_dir=run, checkpoint=40,
                                   parents={"extract": base / "extract"}, tracker=NullTracker())
                    run.mkdir(parents=True, exist_ok=True)
                    summary = dit_stage.run(c)
                    train_s = time.time() - t1
                    dit = load_dit_ema(run / "dit_ema.pt")
                    for g in guidance:
                        cfg = from_dict(EvalConfig, {**eval_cfg.__dict__, "feature_net": eval_cfg.feature_net.__dict__,
                                                     "guidance": g})
                        images, labels = eval_stage.generate(dit, tokenizer, manifest, cfg, "cpu")
                        m, _ = eval_stage.evaluate(images, labels, cfg=cfg, probe=probe, cache=root / "cache")
                        ok = probe_passes(m["oracle_accuracy"], control["oracle_accuracy_recon"], chance)
                        print(f"RESULT kind=probe tokenizer={objective} model={model} steps={n} guidance={g:g} "
                              f"labels={'shuffled' if shuffled else 'true'} oracle={m['oracle_accuracy']:.3f} "
                              f"control={control['oracle_accuracy_recon']:.3f} chance={chance:.3f} "
                              f"pass={int(ok)} gen_fd={m['gen_fd']:.3f} dit_loss={summary['final_loss']:.4f} "
                              f"train_s={train_s:.0f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
