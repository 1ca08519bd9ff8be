"""Profile text values become #SBATCH lines and setup shell lines: no line break may pass."""

import pytest

from cluster.profile import load_profile
from vtp.config import ConfigError


@pytest.mark.parametrize("options, key", [
    ({"partition": "gpu\n#SBATCH --account=someone-else"}, "executor.options.partition"),
    ({"qos": "high\r"}, "executor.options.qos"),
    ({"setup": ["module load cuda\nrm -rf ~"]}, "executor.options.setup[0]"),
    ({"additional": {"constraint": "a100\n#SBATCH --exclusive"}}, "executor.options.additional.constraint"),
])
def test_line_breaks_in_profile_strings_are_rejected(options, key):
    with pytest.raises(ConfigError, match="line breaks are not allowed") as err:
        load_profile("slurm", options, where="spec.yaml")
    assert key in str(err.value)


def test_plain_values_still_pass():
    p = load_profile("slurm", {"partition": "gpu", "setup": ["module load cuda"]}, where="spec.yaml")
    assert p.partition == "gpu"


def test_signal_delay_reaches_the_job_script(tmp_path):
    """The USR2 lead time is the profile's, not submitit's fixed 90 s (the window a run has to
    checkpoint before its time limit)."""
    from submitit.slurm.slurm import _make_sbatch_string

    from cluster.executors.slurm import sbatch_parameters

    profile = load_profile("slurm", {"signal_delay_s": 20, "time_min": 1}, where="spec.yaml")
    script = _make_sbatch_string(command="python -c pass", folder=tmp_path, **sbatch_parameters(profile, None, "job"))
    assert "#SBATCH --signal=USR2@20" in script and "#SBATCH --time=1" in script
    default = _make_sbatch_string(command="python -c pass", folder=tmp_path,
                                  **sbatch_parameters(load_profile("slurm", {}), None, "job"))
    assert "#SBATCH --signal=USR2@90" in default  # submitit's own default stays the default
    with pytest.raises(ConfigError, match="signal_delay_s"):
        load_profile("slurm", {"signal_delay_s": 0}, where="spec.yaml")
