"""The shipped specs mirror the paper (issue 13, item 8): one pixel decoder across encoder sizes, the AE
baseline's reconstruction batch defined one way in every spec, and the cluster studies on the real
probe set (an ImageNet-layout folder and an ADM reference batch .npz, checked at plan time)."""

from pathlib import Path

import numpy as np
import pytest

from vtp.config import ConfigError
from vtp.sweep.runs import expand
from vtp.sweep.spec import load_sweep
from vtp.train.config import TokenizerTrainConfig, resolve_sizes

SWEEPS = Path(__file__).parents[2] / "sweeps"
CLUSTER_SPECS = ("compute.yaml", "params.yaml", "data.yaml")
REC_FRACTION = {"ae": 1.0}  # every other objective: 0.125 (VTP's B/8, the paper's split)


def tokenizer_configs(path: Path) -> list[dict]:
    runs = expand(load_sweep(path), "test", check_data=False)  # as plan --no-data-check
    return [dict(r.config) for r in runs if r.stage == "tokenizer"]


@pytest.mark.parametrize("name", ["compute.yaml", "params.yaml", "data.yaml", "mini.yaml", "tiny.yaml"])
def test_the_reconstruction_batch_is_one_definition_in_every_spec(name):
    configs = tokenizer_configs(SWEEPS / name)
    assert {c["objective"] for c in configs} == {"ae", "vtp"}
    for c in configs:
        assert c.get("rec_fraction", 0.125) == REC_FRACTION.get(c["objective"], 0.125), (name, c["objective"])


def test_params_yaml_scales_the_encoder_and_keeps_one_decoder():
    configs = tokenizer_configs(SWEEPS / "params.yaml")
    assert {c["encoder"] for c in configs} == {"S", "B", "L"}
    from vtp.config import from_dict

    decoders = {(resolve_sizes(from_dict(TokenizerTrainConfig, c, where="params.yaml", key="tokenizer")).decoder_width,
                 c["decoder_depth"]) for c in configs}
    assert decoders == {(768, 4)}  # with decoder_width 0 it would follow the encoder: 384 / 768 / 1024
    # and the other two studies use that same decoder
    for name in ("compute.yaml", "data.yaml"):
        assert {(c["decoder_width"], c["decoder_depth"]) for c in tokenizer_configs(SWEEPS / name)} == {(768, 4)}


@pytest.mark.parametrize("name", CLUSTER_SPECS)
def test_cluster_specs_use_the_real_probe_set_and_a_reference_batch(name):
    runs = expand(load_sweep(SWEEPS / name), "test", check_data=False)
    for r in runs:
        if r.stage in ("extract", "eval"):
            assert r.config["dataset"] == {"kind": "imagefolder", "path": "/datasets/imagenet/train"}, r.stage
    evals = [r for r in runs if r.stage == "eval"]
    assert evals and all(r.config["inception_reference"].endswith(".npz") and r.config["inception_weights"]
                         for r in evals)


def test_plan_checks_the_reference_batch_of_a_cluster_spec(tmp_path):
    """With the data present (a test-written probe folder and Parquet store), the reference batch is
    what plan reads next: a missing file and one of the wrong shape stop it, naming the key."""
    from tests.imagefolders import write_imagefolder, write_parquet

    probe = write_imagefolder(tmp_path / "imagenet", per_class=2)
    shards = write_parquet(tmp_path / "datacomp" / "s.parquet").parent
    small = ["axes.objective=[ae]", "axes.compute=[2.0e8]", "fixed.checkpoints=[40]",
             f"fixed.pretrain_data.path={shards}", f"fixed.probe_data.path={probe}",
             "stages.tokenizer.config.unique_samples=4", "stages.extract.config.num_images=4",
             "stages.eval.config.num_samples=2", "stages.eval.config.reference_images=2",
             "stages.eval.config.probe_train_images=2", "stages.eval.config.probe_test_images=2",
             "stages.eval.config.recon_images=2",
             "stages.eval.config.feature_net={train_samples: 2, heldout_samples: 2}"]
    weights = tmp_path / "pt_inception.pth"
    weights.write_bytes(b"")  # plan checks that it is there, the job what it holds
    small.append(f"fixed.inception_weights={weights}")
    npz = tmp_path / "ref.npz"
    sweep = load_sweep(SWEEPS / "compute.yaml", [*small, f"fixed.inception_reference={npz}"])
    with pytest.raises(ConfigError, match=r"compute.yaml: stages\[3\].config.inception_reference: .*ref.npz"):
        expand(sweep, "test")
    np.savez(npz, mu=np.zeros(16), sigma=np.eye(16))  # not the Inception pool3 shape (2048,)
    with pytest.raises(ConfigError, match=r"stages\[3\].config.inception_reference: .*2048"):
        expand(load_sweep(SWEEPS / "compute.yaml", [*small, f"fixed.inception_reference={npz}"]), "test")
    np.savez(npz, mu=np.zeros(2048), sigma=np.eye(2048))
    assert expand(load_sweep(SWEEPS / "compute.yaml", [*small, f"fixed.inception_reference={npz}"]), "test")
