"""The engine around a tune stage, with a stand-in search (no Ray, debug executor): provisional
runs, the next launch round, keys that follow the tuning result, and a failed search."""

import json
from pathlib import Path

from vtp.stages.smoke import expected
from vtp.sweep.launcher import launch, launch_until_done
from vtp.sweep.planner import plan
from vtp.sweep.spec import load_sweep

SPEC = """
name: e
axes: {size: [1, 2], seed: [0, 1]}
derived: {pick: "${axes.size} + OFFSET"}
executor: debug
tracking: {enabled: false}
stages:
  - name: search
    target: tests.tune.fake_search:run
    config: {pick: {steps: "${derived.pick}"}}
    tune: {per: [size], space: {steps: {choice: [3, 5]}}, metric: m}
  - name: train
    target: vtp.stages.smoke:run
    config: {steps: "${search.best.steps}", seed: "${axes.seed}"}
"""


def load(tmp_path, offset="2", pick=None):
    path = tmp_path / "e.yaml"
    text = SPEC.replace("OFFSET", offset)
    path.write_text(text if pick is None else text.replace('{steps: "${derived.pick}"}', pick))
    return load_sweep(path, [f"root={tmp_path / 'out'}"])


def keys(sweep, stage):
    return {p.run.key for p in plan(sweep, code_version="v", with_flops=False) if p.run.stage == stage}


def test_first_launch_defers_the_dependants_the_next_runs_them_with_the_best(tmp_path):
    sweep = load(tmp_path)
    first = launch(sweep, code_version="v")
    assert len(first.submitted) == 2 and first.deferred == 4  # one search per size; 4 train runs wait
    assert {p.action for p in plan(sweep, code_version="v") if p.run.stage == "train"} == {"run"}
    second = launch(sweep, code_version="v")
    assert len(second.submitted) == 4 and second.deferred == 0
    for key in second.submitted:
        cfg = json.loads((sweep.folder / "runs" / key / "config.json").read_text())["config"]
        result = json.loads((sweep.folder / "runs" / key / "result.json").read_text())
        size = json.loads((sweep.folder / "runs" / key / "config.json").read_text())["axes"]["size"]
        assert cfg["steps"] == size + 2 and result["value"] == expected(cfg["seed"], size + 2)
    assert launch(sweep, code_version="v").submitted == ()


def test_a_new_tuning_result_makes_new_runs_an_unchanged_one_reuses_them(tmp_path):
    sweep = load(tmp_path)
    launch_until_done(sweep, code_version="v", timeout_s=60, poll_s=0.05)
    before = keys(sweep, "train")
    assert len(before) == 4
    launch_until_done(load(tmp_path), code_version="v", timeout_s=60, poll_s=0.05)
    assert keys(sweep, "train") == before
    other = load(tmp_path, offset="4")  # another search config, whose result is another value
    launch_until_done(other, code_version="v", timeout_s=60, poll_s=0.05)
    after = keys(other, "train")
    assert len(after) == 4 and not after & before
    assert {json.loads((other.folder / "runs" / k / "config.json").read_text())["config"]["steps"]
            for k in after} == {5, 6}


def test_a_failed_search_blocks_its_dependants(tmp_path):
    sweep = load(tmp_path, pick="[not, a, mapping]")  # the stand-in search raises on it
    st = launch_until_done(sweep, code_version="v", timeout_s=60, poll_s=0.05)
    assert {s.status for s in st.runs.values()} == {"failed"}  # only the two searches are in the ledger
    assert {p.action for p in plan(sweep, code_version="v") if p.run.stage == "train"} == {"blocked"}
    assert Path(sweep.folder / "ledger.json").exists()
