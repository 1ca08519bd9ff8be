"""The one YAML reader every config goes through: safe, strict about duplicates, 1e8 is a number."""

import pytest

from vtp.config import ConfigError, load_yaml, parse_yaml


def test_exponent_numbers_are_floats():
    # Plain YAML 1.1 reads these as strings; sweeps are full of them.
    assert parse_yaml("[1e8, 1.0e9, -2E-3, 3]") == [1e8, 1e9, -2e-3, 3]


def test_duplicate_key_names_file_key_and_both_lines(tmp_path):
    path = tmp_path / "profile.yaml"
    path.write_text("a:\n  b: 1\n  c: 2\n  b: 3\n")
    with pytest.raises(ConfigError, match=r"profile\.yaml: a\.b: duplicate key \(line 4; first at line 2\)"):
        load_yaml(path)


def test_merge_keys_may_be_overridden(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("base: &b {x: 1, y: 2}\nrun:\n  <<: *b\n  y: 5\n")
    assert load_yaml(path)["run"] == {"x": 1, "y": 5}


def test_object_tags_are_refused(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("x: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError, match=r"evil\.yaml: <root>: invalid YAML"):
        load_yaml(path)


def test_missing_file_names_it(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.yaml: <root>: cannot read file"):
        load_yaml(tmp_path / "nope.yaml")
