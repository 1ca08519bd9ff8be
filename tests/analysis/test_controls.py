"""The probe's controls (analysis.controls): the pass rule, per-configuration checks over seeds, the
negative control, and that only passing configurations reach the fits."""

import pandas as pd
import pytest

from analysis.controls import passing_rows, probe_checks, probe_passes, summary_line

BY = ("axis.objective", "axis.params")


@pytest.mark.parametrize("oracle, control, chance, ok", [
    (0.30, 0.50, 0.05, True),    # >= half the control, 6x chance
    (0.24, 0.50, 0.05, False),   # under half the control
    (0.20, 0.30, 0.05, False),   # 2/3 of the control but only 4x chance
    (0.25, 0.50, 0.05, True),    # exactly on both edges
    (float("nan"), 0.5, 0.05, False),
])
def test_rule(oracle, control, chance, ok):
    assert probe_passes(oracle, control, chance) is ok


def rows():
    r = []
    def add(obj, params, root, ck, oracle, control, labels="true", stage="eval"):
        r.append({"stage": stage, "axis.objective": obj, "axis.params": params, "root_key": root, "checkpoint": ck,
                  "metric.oracle_accuracy": oracle, "metric.oracle_accuracy_recon": control,
                  "metric.oracle_chance": 0.05, "tag.probe_labels": labels, "metric.gen_fd": 1.0})
    add("vtp", "s", "a", 10, 0.05, 0.6)   # an early checkpoint: not what the rule reads
    add("vtp", "s", "a", 40, 0.40, 0.6)
    add("vtp", "s", "b", 40, 0.30, 0.6)   # a second seed: mean 0.35 of control 0.6 -> passes
    add("ae", "s", "c", 40, 0.10, 0.6)    # fails
    add("ae", "m", "d", 40, 0.50, 0.7)
    add("vtp", "s", "a", 40, 0.06, 0.6, labels="shuffled", stage="eval_shuffled")
    r.append({"stage": "tokenizer", "axis.objective": "vtp", "axis.params": "s", "root_key": "a", "checkpoint": None})
    return pd.DataFrame(r)


def test_checks_average_seeds_at_the_final_checkpoint_and_keep_the_negative_control():
    checks = {(c.key["axis.objective"], c.key["axis.params"], c.labels): c for c in probe_checks(rows(), BY)}
    vtp = checks[("vtp", "s", "true")]
    assert vtp.runs == 2 and vtp.oracle == pytest.approx(0.35) and vtp.passed
    assert not checks[("ae", "s", "true")].passed and checks[("ae", "m", "true")].passed
    neg = checks[("vtp", "s", "shuffled")]
    assert neg.oracle == pytest.approx(0.06) and not neg.passed
    line = summary_line(list(checks.values()))
    assert "2 of 3 configurations pass" in line and "objective=ae, params=s" in line and "fails, as it should" in line


def test_only_passing_configurations_are_fitted():
    frame = rows()
    frame = frame[frame["stage"] == "eval"]
    kept = passing_rows(frame, probe_checks(rows(), BY), BY)
    assert set(zip(kept["axis.objective"], kept["axis.params"])) == {("vtp", "s"), ("ae", "m")}
    assert passing_rows(frame, [], BY) is frame  # no controls logged (an old snapshot): nothing left out


def test_no_controls_no_checks():
    assert probe_checks(rows().drop(columns=["metric.oracle_chance"]), BY) == []
