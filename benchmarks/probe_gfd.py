"""Does a trained VTP tokenizer give a better latent space for generation than a random encoder?

Trains one `vtp`-objective tokenizer on the built-in dataset, then runs the real stage adapters
(extract -> dit -> eval) with the same fixed DiT spec and the same DiT steps on three latent spaces:
  trained      the trained tokenizer's encoder and decoder (checkpoint 40/40)
  random       a random-init tokenizer (encoder and decoder both untrained): the literal baseline
  random_fit   the same random encoder, frozen, with its decoder fitted to reconstruct pixels (MSE,
               full batch, as many steps as the tokenizer trained): isolates the latent space from
               the decoder's quality
and prints RESULT lines: gen_fd (Frechet distance over the fallback network `shapes-cnn-<hash>`,
NOT Inception FID), oracle accuracy, held-out reconstruction MSE, and the floor (FD of held-out real
images vs the reference statistics, same count as the samples).

    PYTHONPATH=. python benchmarks/probe_gfd.py            # ~15 min on 2 CPU cores, ~40 min very busy
    PYTHONPATH=. python benchmarks/probe_gfd.py --quick    # plumbing check, ~3 min
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import time
from pathlib import Path

import torch

import vtp.stages.dit as dit_stage
import vtp.stages.eval as eval_stage
import vtp.stages.extract as extract_stage
from vtp.config import from_dict
from vtp.eval.features import FeatureNetConfig, load_or_train_feature_net, render_batch
from vtp.eval.frechet import RunningStats, frechet_distance
from vtp.eval.refstats import synthetic_reference_stats
from vtp.jobs import NullTracker, RunContext
from vtp.train.budget import resolve
from vtp.train.checkpoint import load_tokenizer, save_checkpoint
from vtp.train.config import TokenizerTrainConfig
from vtp.train.loop import build_model, train


class Recorder(NullTracker):
    def __init__(self):
        self.metrics: dict = {}
        self.tags: dict = {}

    def log_metrics(self, m, step):
        self.metrics.update(m)

    def set_tags(self, t):
        self.tags.update(t)


def save_untrained(cfg: TokenizerTrainConfig, run_dir: Path, *, seed: int, fit_steps: int, batch: int) -> None:
    """A random-init tokenizer as checkpoint 40; with fit_steps > 0 its decoder is fitted (encoder frozen)."""
    torch.manual_seed(seed)
    model = build_model(cfg, resolve(cfg))
    opt = torch.optim.Adam(model.decoder.parameters(), lr=cfg.lr)
    for step in range(fit_steps):
        x, _ = render_batch((step * batch) % cfg.unique_samples, batch, image_size=cfg.image_size, seed=cfg.dataset.seed)
        with torch.no_grad():
            z = model.encode(x)  # (B, d, h, w), frozen random encoder
        loss = (model.decode(z) - x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    meta = {"step": 0, "samples_seen": 0, "flops": 0.0, "encoder_params": model.encoder_params()}
    save_checkpoint(run_dir, 40, {"spec": dataclasses.asdict(model.spec), "model": model.state_dict()}, meta)


@torch.no_grad()
def rec_mse(ckpt: Path, image_size: int, n: int = 256) -> float:
    tok = load_tokenizer(ckpt)
    x, _ = render_batch(50_000_000, n, image_size=image_size, seed=0)  # held-out indices
    return (tok.decode(tok.encode(x)) - x).pow(2).mean().item()


def real_floor(eval_cfg: dict, image_size: int, cache: Path) -> tuple[float, object]:
    """FD of n held-out real images against the reference stats: what a perfect generator would score."""
    ecfg = from_dict(eval_stage.EvalConfig, eval_cfg)
    fcfg = FeatureNetConfig(**{**ecfg.feature_net.__dict__, "image_size": image_size})
    net = load_or_train_feature_net(fcfg, cache)
    mu, cov = synthetic_reference_stats(net.model.features, network_id=net.weights_sha256, dim=net.model.feature_dim,
                                        image_size=image_size, dataset_seed=0, num_images=ecfg.reference_images,
                                        cache_dir=cache)
    x, _ = render_batch(60_000_000, ecfg.num_samples, image_size=image_size, seed=0)
    st = RunningStats(net.model.feature_dim)
    with torch.no_grad():
        st.update(net.model.features(x).double().numpy())
    return frechet_distance(st.mean(), st.cov(), mu, cov), net


def probe(name: str, tok_dir: Path, root: Path, ext_cfg: dict, dit_cfg: dict, eval_cfg: dict) -> dict:
    base = root / name
    parents = {"tokenizer": tok_dir, "extract": base / "extract", "dit": base / "dit"}

    def ctx(stage, config, tracker):
        (base / stage).mkdir(parents=True, exist_ok=True)
        return RunContext(key=f"{name}-{stage}", stage=stage, config=config, run_dir=base / stage, parents=parents,
                          checkpoint=40, tracker=tracker)

    t0 = time.time()
    extract_stage.run(ctx("extract", ext_cfg, NullTracker()))
    d = dit_stage.run(ctx("dit", dit_cfg, NullTracker()))
    rec = Recorder()
    eval_stage.run(ctx("eval", {**eval_cfg, "cache_dir": str(root / "cache")}, rec))
    return {**rec.metrics, **rec.tags, "dit_final_loss": d["final_loss"], "seconds": time.time() - t0}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("out/bench_probe_gfd"))
    ap.add_argument("--quick", action="store_true", help="tiny sizes: checks the plumbing, not the claim")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tok-steps", type=int, default=200, help="tokenizer steps (batch 32)")
    ap.add_argument("--dit-steps", type=int, default=800)
    ap.add_argument("--samples", type=int, default=500, help="generated samples per probe")
    ap.add_argument("--featnet", choices=["light", "default"], default="light",
                    help="light: width 16, 6k images x 8 epochs; default: FeatureNetConfig() (99.1%% held-out)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    q = args.quick
    tok_steps, dit_steps = (20, 30) if q else (args.tok_steps, args.dit_steps)
    tok_cfg = from_dict(TokenizerTrainConfig, {
        "encoder": "cpu-xs", "objective": "vtp", "image_size": 32, "patch_size": 8, "latent_dim": 16,
        "batch_size": 32, "budget_steps": tok_steps, "unique_samples": 5000, "checkpoints": [40], "log_every": 20})
    ext_cfg = {"num_images": 500 if q else 5000, "stats_samples": 1000}
    dit_cfg = {"model": "DiT-cpu-s", "steps": dit_steps, "batch_size": 64, "lr": 5e-4, "ema_decay": 0.999,
               "log_every": 100, "checkpoint_every": 500}
    feat = {"train_samples": 1000, "epochs": 2} if q else (
        {"train_samples": 6000, "epochs": 8, "width": 16} if args.featnet == "light" else {})
    eval_cfg = {"num_samples": 200 if q else args.samples, "steps": 10 if q else 20,
                "reference_images": 1000 if q else 2000, "feature_net": feat}
    if args.out.exists():
        shutil.rmtree(args.out)
    root = args.out
    print(f"config: tokenizer {json.dumps({'steps': tok_steps, 'encoder': 'cpu-xs', 'objective': 'vtp'})} "
          f"dit {json.dumps(dit_cfg)} eval {json.dumps(eval_cfg)} threads={args.threads}", flush=True)

    t0 = time.time()
    tok_dirs = {"trained": root / "tok_trained", "random": root / "tok_random", "random_fit": root / "tok_random_fit"}
    train(tok_cfg, run_dir=tok_dirs["trained"], device="cpu", log=lambda s: print(f"  {s}", flush=True))
    save_untrained(tok_cfg, tok_dirs["random"], seed=1, fit_steps=0, batch=32)
    save_untrained(tok_cfg, tok_dirs["random_fit"], seed=1, fit_steps=tok_steps, batch=32)
    print(f"RESULT tokenizer_seconds={time.time() - t0:.1f}", flush=True)

    print("feature network ...", flush=True)
    floor, net = real_floor(eval_cfg, 32, root / "cache")
    print(f"RESULT feature_network={net.name}")
    print(f"RESULT feature_network_heldout_accuracy={net.heldout_accuracy:.4f}")
    print(f"RESULT gen_fd_real_images_floor={floor:.4f}", flush=True)
    for name, tdir in tok_dirs.items():
        r = probe(name, tdir, root, ext_cfg, dit_cfg, eval_cfg)
        print(f"RESULT rec_mse_{name}={rec_mse(tdir / 'checkpoints' / '40.pt', 32):.5f}")
        print(f"RESULT gen_fd_{name}={r['gen_fd']:.4f}")
        print(f"RESULT oracle_accuracy_{name}={r['oracle_accuracy']:.4f}")
        print(f"RESULT dit_final_loss_{name}={r['dit_final_loss']:.4f}")
        print(f"RESULT probe_seconds_{name}={r['seconds']:.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
