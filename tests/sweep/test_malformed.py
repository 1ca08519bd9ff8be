"""Every malformed spec fails at load with the file and the key path in the message, and leaves
nothing on disk."""

from pathlib import Path

import pytest

from vtp.config import ConfigError
from vtp.sweep.spec import load_sweep

HERE = Path(__file__).parent / "malformed"

# file -> (key path that must appear, a word of what was expected)
EXPECTED = {
    "unknown_top_key.yaml": ("axez", "valid keys"),
    "unknown_stage_key.yaml": ("stages[0].depends", "valid keys"),
    "missing_name.yaml": ("name", "required"),
    "missing_target.yaml": ("stages[0].target", "required"),
    "empty_axis.yaml": ("axes.size", "non-empty"),
    "axis_not_list.yaml": ("axes.size", "list"),
    "axis_duplicate_value.yaml": ("axes.params[2]", "duplicate"),
    "axis_value_not_scalar.yaml": ("axes.params[1]", "scalar"),
    "duplicate_stage.yaml": ("stages[1].name", "duplicate"),
    "duplicate_yaml_key.yaml": ("axes.params", "duplicate key"),
    "cycle.yaml": ("stages[0].after", "cycle"),
    "self_dependency.yaml": ("stages[0].after", "cycle"),
    "unknown_after.yaml": ("stages[1].after", "unknown stage"),
    "unknown_profile.yaml": ("executor.profile", "available"),
    "unknown_executor_option.yaml": ("executor.options.gpus", "valid keys"),
    "negative_time.yaml": ("executor.options.time_min", ">= 1"),
    "wrong_type_cpus.yaml": ("executor.options.max_workers", "integer"),
    "bad_resource_key.yaml": ("stages[0].resources.max_workers", "valid keys"),
    "resource_out_of_range.yaml": ("stages[0].resources.mem_gb", ">= 0.01"),
    "unknown_reference.yaml": ("stages[0].config.encoder", "axes has: params"),
    "unknown_section_reference.yaml": ("stages[0].config.steps", "unknown reference"),
    "derived_code.yaml": ("derived.steps", "not allowed"),
    "derived_unknown_name.yaml": ("derived.steps", "unknown name"),
    "derived_divide_zero.yaml": ("derived.steps", "division by zero"),
    "bad_target.yaml": ("stages[0]", "package.module:function"),
    "bad_name.yaml": ("name", "expected a name"),
    "no_stages.yaml": ("stages", "at least one"),
    "fanout_missing_key.yaml": ("stages[0].fanout", "checkpoints"),
    "fanout_not_list.yaml": ("stages[0].config.checkpoints", "checkpoint numbers"),
    "tracking_wrong_type.yaml": ("tracking.uri", "expected a string"),
    "python_tag.yaml": ("<root>", "python/object"),
    "stages_not_list.yaml": ("stages", "list"),
    "grid_unknown_axis.yaml": ("grids[1].sise", "unknown axis"),
    "grid_empty_values.yaml": ("grids[0].data", "non-empty"),
    # stages that run as one process refuse several nodes (the tokenizer above them may have them)
    "undistributed_nodes.yaml": ("stages[1].resources.nodes", "not as a distributed job"),
    "undistributed_nodes_executor.yaml": ("executor.options.nodes", "not as a distributed job"),
    # a built-in stage's config is checked against its dataclass for every run, before submission
    "stage_config_unknown_key.yaml": ("stages[0].config.stepz", "valid keys"),
    "stage_config_wrong_type.yaml": ("stages[1].config.num_images", "integer"),
    "stage_config_bad_axis_value.yaml": ("stages[0].config", "unknown preset 'XXL'"),
    "stage_config_nested_key.yaml": ("stages[0].config.feature_net.epoch", "valid keys"),
}


def test_every_fixture_has_an_expectation():
    assert sorted(p.name for p in HERE.glob("*.yaml")) == sorted(EXPECTED)
    assert len(EXPECTED) >= 20


def _load_and_expand(path: Path, root: Path) -> None:
    from vtp.sweep.runs import expand

    sweep = load_sweep(path, [f"root={root}"])
    expand(sweep, "test")  # fan-out values are only known per run


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_malformed_spec_names_file_and_key(name, tmp_path):
    key, words = EXPECTED[name]
    root = tmp_path / "out"
    with pytest.raises(ConfigError) as err:
        _load_and_expand(HERE / name, root)
    msg = str(err.value)
    assert name in msg and f": {key}" in msg and words in msg, msg
    assert not root.exists()


@pytest.mark.parametrize("name, words", [
    ("cycle.yaml", "stages[0].after"),
    ("stage_config_bad_axis_value.yaml", "XXL"),  # found only when the runs are expanded
])
def test_cli_launch_of_a_malformed_spec_creates_nothing(tmp_path, capsys, name, words):
    from vtp.cli.sweep import main

    root = tmp_path / "out"
    assert main(["launch", str(HERE / name), f"root={root}"]) == 2
    err = capsys.readouterr().err
    assert name in err and words in err
    assert not root.exists()


CLUSTER_SPECS = ("compute.yaml", "params.yaml", "data.yaml")  # their data lives on the cluster only


def test_shipped_sweeps_pass_the_stage_config_check():
    from vtp.sweep.runs import expand

    for path in sorted((Path(__file__).parents[2] / "sweeps").glob("*.yaml")):
        # the cluster specs' datasets are not on this machine: their configs are checked, their data not
        assert expand(load_sweep(path), "test", check_data=path.name not in CLUSTER_SPECS), path


def test_cluster_specs_name_their_missing_data_without_the_preview_flag():
    from vtp.sweep.runs import expand

    path = Path(__file__).parents[2] / "sweeps" / "compute.yaml"
    with pytest.raises(ConfigError, match=r"compute.yaml: stages\[0\].config.dataset: /datasets/datacomp/shards: does not exist"):
        expand(load_sweep(path), "test")
