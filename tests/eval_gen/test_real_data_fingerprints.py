"""tokenizer -> decoder -> extract -> dit -> eval stage adapters with the real VisualTokenizer on one
test-written ImageFolder: every stage records the same dataset fingerprint, and eval's linear probe
runs on the folder's classes."""

import json

from tests.eval_gen.test_real_tokenizer_pipeline import Recorder
from tests.imagefolders import write_imagefolder
from vtp.data.config import DatasetConfig
from vtp.data.source import describe
from vtp.jobs.context import RunContext


def test_every_stage_records_the_same_fingerprint(tmp_path):
    import vtp.stages.decoder as decoder_stage
    import vtp.stages.dit as dit_stage
    import vtp.stages.eval as eval_stage
    import vtp.stages.extract as extract_stage
    import vtp.stages.tokenizer as tokenizer_stage

    root = write_imagefolder(tmp_path / "images", per_class=12)  # 36 images, 3 classes
    data = {"kind": "imagefolder", "path": str(root)}
    runs = tmp_path / "runs"
    recorders = {}

    def ctx(stage, config, parents):
        recorders[stage] = Recorder()
        (runs / stage).mkdir(parents=True, exist_ok=True)
        return RunContext(key=stage, stage=stage, config=config, run_dir=runs / stage, parents=parents, checkpoint=40,
                          tracker=recorders[stage])

    tok = tokenizer_stage.run(ctx("tokenizer", {
        "encoder": "cpu-xs", "objective": "ae", "image_size": 16, "patch_size": 4, "latent_dim": 8, "batch_size": 8,
        "budget_steps": 2, "unique_samples": 36, "checkpoints": [40], "log_every": 100, "dataset": data}, {}))
    dec = decoder_stage.run(ctx("decoder", {"steps": 2, "batch_size": 4, "lambda_gan": 0.0, "unique_samples": 36,
                                            "dataset": data, "checkpoint_every": 2}, {"tokenizer": runs / "tokenizer"}))
    parents = {"tokenizer": runs / "tokenizer", "decoder": runs / "decoder"}
    ext = extract_stage.run(ctx("extract", {"dataset": data, "num_images": 36, "stats_samples": 36}, parents))
    dit_stage.run(ctx("dit", {"steps": 2, "batch_size": 8}, {**parents, "extract": runs / "extract"}))
    eval_stage.run(ctx("eval", {
        "dataset": data, "num_samples": 6, "steps": 2, "reference_images": 24, "probe_train_images": 24, "recon_images": 8,
        "probe_test_images": 12, "feature_net": {"train_samples": 24, "heldout_samples": 12, "epochs": 1,
                                                 "batch_size": 12, "width": 8}},
        {**parents, "extract": runs / "extract", "dit": runs / "dit"}))

    fingerprint = describe(DatasetConfig(**data)).sha256[:16]
    for stage in ("tokenizer", "decoder", "extract", "eval"):
        assert recorders[stage].tags["dataset.fingerprint"] == fingerprint, stage
        assert recorders[stage].tags["dataset.num_images"] == 36 and recorders[stage].tags["dataset.num_classes"] == 3
    assert tok["dataset.fingerprint"] == dec["dataset.fingerprint"] == ext["dataset.fingerprint"] == fingerprint
    assert json.loads((runs / "extract" / "latents.json").read_text())["num_classes"] == 3
    ev = recorders["eval"]
    assert 0 <= ev.metrics["linear_probe"] <= 1 and ev.tags["gen_fd_network"].startswith("probe-cnn-")
    assert ev.metrics["corrupt_images"] == 0
