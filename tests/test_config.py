"""The one YAML reader every config goes through: safe, strict about duplicates, 1e8 is a number."""

import pytest

from vtp.config import ConfigError, load_yaml, parse_yaml


def test_exponent_numbers_are_floats():
    # Plain YAML 1.1 reads these as strings; sweeps are full of them.
    assert parse_yaml("[1e8, 1.0e9, -2E-3, 3]") == [1e8, 1e9, -2e-3, 3]


@pytest.mark.parametrize("name, text, match", [
    ("profile.yaml", "a:\n  b: 1\n  c: 2\n  b: 3\n", r"profile\.yaml: a\.b: duplicate key \(line 4; first at line 2\)"),
    ("evil.yaml", "x: !!python/object/apply:os.system ['true']\n", r"evil\.yaml: <root>: invalid YAML"),
    ("nope.yaml", None, r"nope\.yaml: <root>: cannot read file"),  # missing
], ids=["duplicate-key", "object-tag", "missing-file"])
def test_errors_name_the_file_and_key(tmp_path, name, text, match):
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_yaml(path)


def test_merge_keys_may_be_overridden(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("base: &b {x: 1, y: 2}\nrun:\n  <<: *b\n  y: 5\n")
    assert load_yaml(path)["run"] == {"x": 1, "y": 5}
