"""tokenizer -> extract -> dit -> eval with the real VisualTokenizer and load_tokenizer (tiny sizes)."""

import json

import pytest
import torch

import vtp.stages.eval as eval_stage
import vtp.stages.extract as extract_stage
from vtp.config import from_dict
from vtp.jobs.context import RunContext
from vtp.stages import dit as dit_stage
from vtp.train.config import TokenizerTrainConfig
from vtp.train.loop import train

FEAT = {"train_samples": 400, "heldout_samples": 100, "epochs": 2, "batch_size": 50, "width": 8}


class Recorder:
    def __init__(self):
        self.metrics, self.params, self.tags = {}, {}, {}

    def log_metrics(self, m, step):
        self.metrics.update(m)

    def log_params(self, p):
        self.params.update(p)

    def log_artifact(self, p):
        pass

    def set_tags(self, t):
        self.tags.update(t)


@pytest.mark.parametrize("objective", ["ae", "clip+ae"])
def test_real_tokenizer_checkpoint_through_all_stages(tmp_path, objective):
    tok_dir = tmp_path / "runs" / "tok"
    cfg = from_dict(TokenizerTrainConfig, {"encoder": "cpu-xs", "objective": objective, "image_size": 16, "patch_size": 4,
                                           "latent_dim": 8, "batch_size": 16, "budget_steps": 4, "unique_samples": 64,
                                           "checkpoints": [40], "log_every": 100})
    train(cfg, run_dir=tok_dir, device="cpu", log=lambda s: None)
    info = json.loads((tok_dir / "checkpoints" / "40.json").read_text())

    def ctx(stage, config, tracker=None):
        run_dir = tmp_path / "runs" / stage
        run_dir.mkdir(parents=True, exist_ok=True)
        parents = {"tokenizer": tok_dir, "extract": tmp_path / "runs" / "extract", "dit": tmp_path / "runs" / "dit"}
        return RunContext(key=stage, stage=stage, config=config, run_dir=run_dir, parents=parents, checkpoint=40,
                          tracker=tracker or Recorder())

    ext = extract_stage.run(ctx("extract", {"num_images": 64, "stats_samples": 64}))
    assert ext["latent_shape"] == [8, 4, 4] and ext["num_latents"] == 128
    dit_stage.run(ctx("dit", {"steps": 5, "batch_size": 8}))
    rec = Recorder()
    eval_stage.run(ctx("eval", {"num_samples": 20, "steps": 2, "reference_images": 50, "feature_net": FEAT,
                                  "probe_train_images": 100, "probe_test_images": 50, "recon_images": 40}, rec))
    assert torch.isfinite(torch.tensor(rec.metrics["gen_fd"]))
    assert rec.metrics["tokenizer_flops"] == info["flops"] > 0
    assert rec.metrics["tokenizer_samples_seen"] == info["samples_seen"] > 0 and rec.metrics["tokenizer_params"] == info["encoder_params"]
    held_out = {"recon_psnr", "recon_ssim", "recon_fd", "oracle_accuracy_real", "oracle_accuracy_recon"}
    # zero-shot accuracy only where the objective trains the text tower (class names from the data)
    assert held_out | {"linear_probe"} <= set(rec.metrics)
    assert ("zero_shot_accuracy" in rec.metrics) == (objective == "clip+ae")
    assert all(torch.isfinite(torch.tensor(rec.metrics[k])) for k in held_out)
