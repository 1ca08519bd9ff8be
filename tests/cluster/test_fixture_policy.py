"""The slurm_cluster fixture skips without root or packages, except when VTP_REQUIRE_SLURM=1."""

from __future__ import annotations

import pytest

from tests.plugins import slurm as plugin


def test_not_root_is_a_reason_to_skip(monkeypatch):
    monkeypatch.setattr(plugin.os, "geteuid", lambda: 1000)
    assert "needs root" in plugin._unavailable_reason()


def test_missing_packages_are_named_with_the_install_command(monkeypatch):
    monkeypatch.setattr(plugin.os, "geteuid", lambda: 0)
    monkeypatch.setattr(plugin, "missing_binaries", lambda: ["slurmdbd"])
    reason = plugin._unavailable_reason()
    assert "slurmdbd" in reason and "apt-get install munge slurmctld" in reason


def test_skip_unless_required(monkeypatch):
    monkeypatch.delenv("VTP_REQUIRE_SLURM", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no slurm here"):
        plugin._skip_or_fail("no slurm here")
    monkeypatch.setenv("VTP_REQUIRE_SLURM", "1")
    with pytest.raises(pytest.fail.Exception, match="VTP_REQUIRE_SLURM=1 .*no slurm here"):
        plugin._skip_or_fail("no slurm here")
