"""The tune stage in the spec and the engine, without Ray: validation at load, expansion over the
`per` axes only, `${tune.best.*}` resolved into run keys, provisional runs, the pick of the best."""

import pytest

from vtp.config import ConfigError
from vtp.sweep.planner import format_table, plan
from vtp.sweep.runs import PENDING, expand
from vtp.sweep.spec import load_sweep
from vtp.tune.search import SearchFailed, best_of
from vtp.tune.spec import grid_size

SPEC = """
name: t
axes: {encoder: [cpu-xs, cpu-s], seed: [0, 1]}
derived: {steps: "${axes.seed} + 2"}
stages:
  - name: tune
    target: vtp.stages.tune:run
    config: {encoder: "${axes.encoder}", budget_steps: 4, checkpoints: [20, 40]}
    tune:
      per: [encoder]
      space: {lr: {loguniform: [1.0e-4, 1.0e-2]}, weight_decay: {grid: [0.0, 0.05]}}
      metric: val_rec_l1
  - name: tokenizer
    target: vtp.stages.tokenizer:run
    fanout: checkpoints
    config: {encoder: "${axes.encoder}", seed: "${axes.seed}", lr: "${tune.best.lr}", budget_steps: 4, checkpoints: [20, 40]}
  - name: probe
    target: vtp.stages.smoke:run
    after: tokenizer
    config: {steps: 2}
"""


def load(tmp_path, text=SPEC, overrides=()):
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return load_sweep(path, [f"root={tmp_path / 'out'}", "tracking.enabled=false", *overrides])


def error(tmp_path, old, new):
    with pytest.raises(ConfigError) as e:
        load(tmp_path, SPEC.replace(old, new))
    return str(e.value)


def test_tune_runs_are_expanded_over_their_per_axes_only(tmp_path):
    runs = expand(load(tmp_path), "v", best=lambda key: None)
    tune = [r for r in runs if r.stage == "tune"]
    assert [dict(r.axes) for r in tune] == [{"encoder": "cpu-xs"}, {"encoder": "cpu-s"}]
    assert tune[0].config["trial"] == {"encoder": "cpu-xs", "budget_steps": 4, "checkpoints": [20, 40]}
    assert tune[0].config["tune"]["space"]["lr"] == {"loguniform": [1e-4, 1e-2]}
    assert grid_size(load(tmp_path).stage("tune").tune) == 8  # 4 samples x 2 grid values


def test_downstream_waits_for_its_own_search_then_takes_its_values_into_the_key(tmp_path):
    sweep = load(tmp_path)
    pending = expand(sweep, "v", best=lambda key: None)
    tune_key = {r.axes["encoder"]: r.key for r in pending if r.stage == "tune"}
    for r in pending:
        if r.stage != "tune":
            assert r.waits_for == tune_key[r.axes["encoder"]]  # children of provisional runs too
    assert {r.config["lr"] for r in pending if r.stage == "tokenizer"} == {PENDING}

    lr = {tune_key["cpu-xs"]: 1e-3, tune_key["cpu-s"]: 3e-4}
    done = expand(sweep, "v", best=lambda key: {"lr": lr[key], "weight_decay": 0.0})
    toks = [r for r in done if r.stage == "tokenizer"]
    assert all(r.waits_for is None for r in done)
    assert {(r.axes["encoder"], r.config["lr"]) for r in toks} == {("cpu-xs", 1e-3), ("cpu-s", 3e-4)}
    assert len({r.key for r in done}) == len(done) == 2 + 4 + 8  # probe fans out per checkpoint

    same = expand(sweep, "v", best=lambda key: {"lr": lr[key], "weight_decay": 0.0})
    assert [r.key for r in same] == [r.key for r in done]  # an unchanged result reuses the runs
    lr[tune_key["cpu-s"]] = 5e-4
    changed = {r.key for r in expand(sweep, "v", best=lambda key: {"lr": lr[key], "weight_decay": 0.0})}
    old = {r.key: r for r in done}
    assert {old[k].axes["encoder"] for k in set(old) - changed} == {"cpu-s"}  # only that size's runs are new


def test_plan_shows_runs_waiting_for_a_search(tmp_path):
    planned = plan(load(tmp_path), code_version="v", with_flops=False)
    assert {p.run.stage: p.action for p in planned} == {"tune": "run", "tokenizer": "tune", "probe": "tune"}
    table = format_table(planned)
    assert "wait(tune pending)" in table and "seed" in table.splitlines()[0]


@pytest.mark.parametrize("old, new, key, words", [
    ("metric: val_rec_l1", "metric: val_rec_l1\n      per: [size]", "stages[0].tune", "duplicate key"),
    ("per: [encoder]", "per: [size]", "stages[0].tune.per[0]", "unknown axis 'size'"),
    ("{loguniform: [1.0e-4, 1.0e-2]}", "{loguniform: [0, 1.0e-2]}", "stages[0].tune", "must be > 0"),
    ("{loguniform: [1.0e-4, 1.0e-2]}", "{normal: [0, 1]}", "stages[0].tune", "exactly one of grid"),
    ("{loguniform: [1.0e-4, 1.0e-2]}", "{uniform: [1, 0]}", "stages[0].tune", "low < high"),
    ("metric: val_rec_l1", "metric: val_rec_l1\n      mode: best", "stages[0].tune.mode", "min"),
    ('lr: "${tune.best.lr}"', 'lr: "${tune.best.beta}"', "stages[1].config.lr", "best.lr"),
    ("after: tokenizer", "after: tune", "stages[2].after", "tune stage"),
    ('budget_steps: 4,', 'budget_steps: "${axes.seed}",', "stages[0].config.budget_steps", "axes has: encoder"),
    ('budget_steps: 4,', 'budget_steps: "${derived.steps}",', "stages[0].config.budget_steps", "unknown reference"),
    ("name: tune\n", "name: tune\n    fanout: checkpoints\n", "stages[0].fanout", "no after/fanout"),
])
def test_bad_tune_sections_fail_at_load_naming_file_and_key(tmp_path, old, new, key, words):
    assert old in SPEC
    msg = error(tmp_path, old, new)
    assert "spec.yaml" in msg and key in msg and words in msg, msg


def row(tid, value, it, err=None):
    return {"trial_id": tid, "config": {"lr": tid}, "value": value, "iterations": it, "error": err}


def test_best_is_picked_among_trials_that_got_furthest():
    rows = [row("a", 0.1, 1), row("b", 0.3, 3), row("c", 0.2, 3), row("d", None, 0, "RuntimeError: x")]
    best = best_of(rows, "val", "min")
    assert (best["trial_id"], best["value"], best["errors"]) == ("c", 0.2, 1)  # not a, stopped at rung 1
    assert best_of(rows, "val", "max")["trial_id"] == "b"
    with pytest.raises(SearchFailed, match="RuntimeError: x"):
        best_of([rows[3]], "val", "min")
