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
