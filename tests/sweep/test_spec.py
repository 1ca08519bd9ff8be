"""Spec loading, overrides, derived values, the safe evaluator and run keys."""

import subprocess
import sys
from pathlib import Path

import pytest

from vtp.config import ConfigError
from vtp.sweep.expr import ExprError, evaluate
from vtp.sweep.runs import expand
from vtp.sweep.spec import load_sweep, parse_override

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "sweeps" / "smoke_local.yaml"


def write(tmp_path, text, name="spec.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_tiny_expands_to_grid_with_fanout():
    runs = expand(load_sweep(TINY), "v1")
    tok = [r for r in runs if r.stage == "tokenizer"]
    down = [r for r in runs if r.stage == "downstream"]
    assert len(tok) == 4 and len(down) == 8  # 2 x 2 grid, 2 checkpoints each
    assert sorted(r.config["steps"] for r in tok) == [20, 20, 40, 40]  # derived: size * 20
    assert {r.checkpoint for r in down} == {20, 40}
    assert all(d.parent in {t.key for t in tok} and d.root == d.parent for d in down)
    assert len({r.key for r in runs}) == 12


def test_grids_are_a_union_of_products_sharing_the_centre(tmp_path):
    spec = write(tmp_path, """
name: g
axes: {objective: [ae, vtp], params: [s], data: [100]}
grids:
  - {params: [xs, s, m]}
  - {data: [10, 100, 1000]}
stages: [{name: t, target: vtp.stages.smoke:run, config: {o: "${axes.objective}", p: "${axes.params}", d: "${axes.data}"}}]
""")
    runs = expand(load_sweep(spec), "v1")
    got = [(r.axes["objective"], r.axes["params"], r.axes["data"]) for r in runs]
    # 2 objectives x (3 sizes at data 100 + 3 data sizes at size s), the shared centre once
    assert len(got) == len(set(got)) == 10
    assert ("vtp", "s", 100) in got and ("ae", "m", 100) in got and ("ae", "s", 1000) in got
    assert ("ae", "m", 1000) not in got  # not a product of everything
    plain = expand(load_sweep(spec, ["grids=[]"]), "v1")
    assert len(plain) == 2  # no grids: the product of the axes' own lists


def test_keys_are_stable_and_depend_on_config_parents_and_code():
    a = {r.key for r in expand(load_sweep(TINY), "v1")}
    assert a == {r.key for r in expand(load_sweep(TINY), "v1")}
    assert not a & {r.key for r in expand(load_sweep(TINY), "v2")}
    changed = expand(load_sweep(TINY, ["stages.tokenizer.config.save_every=4"]), "v1")
    # the tokenizer config changed, so every downstream key changes too (parent keys are hashed)
    assert not a & {r.key for r in changed}
    only_down = expand(load_sweep(TINY, ["stages.downstream.config.steps=11"]), "v1")
    assert {r.key for r in only_down if r.stage == "tokenizer"} <= a


@pytest.mark.parametrize("text, value", [
    ("executor=local", "local"), ("axes.params=[S,B]", ["S", "B"]), ("x=1e-3", 1e-3), ("x=3", 3), ("x=null", None),
])
def test_parse_override(text, value):
    assert parse_override(text)[1] == value


def test_overrides_apply_and_errors_say_command_line():
    s = load_sweep(TINY, ["axes.size=[3]", "executor=debug", "executor.options.poll_s=1"])
    assert s.spec.axes["size"] == (3,) and s.profile.kind == "debug" and s.profile.poll_s == 1.0
    with pytest.raises(ConfigError, match=r"^command line: executor.options.nope"):
        load_sweep(TINY, ["executor.options.nope=1"])
    with pytest.raises(ConfigError, match=r"^command line: stages.nosuch"):
        load_sweep(TINY, ["stages.nosuch.config.x=1"])
    with pytest.raises(ConfigError, match="command line"):
        load_sweep(TINY, ["novalue"])


@pytest.mark.parametrize("expr, value", [
    ("${fixed.a} * 2 + 1", 7), ("${fixed.a} ** 2", 9), ("${fixed.a} // 2", 1), ("-${fixed.a}", -3),
    ("min(${fixed.a}, 2) * max(1, 4)", 8), ("1e8 / ${fixed.a}", 1e8 / 3),
    ("1.0 if ${fixed.o} == 'ae' else 0.125", 0.125), ("${fixed.a} * 2 if ${fixed.a} > 2 else 0", 6),
    ("${fixed.a} == 3 and ${fixed.o} == 'vtp'", True), ("${fixed.a} == 2 or ${fixed.o} == 'ae'", False),
    ("not ${fixed.a} == 2", True), ("1 if ${fixed.a} > 2 and not ${fixed.o} == 'ae' else 0", 1),
])
def test_evaluate(expr, value):
    assert evaluate(expr, {"fixed": {"a": 3, "o": "vtp"}}) == value


@pytest.mark.parametrize("expr", [
    "__import__('os')", "${fixed.a}.real", "[1, 2]", "open('x')", "lambda: 1", "(1).__class__", "a if 1 else 2",
    "1 if 1 else __import__('os')", "1 < ${fixed.a} < 5", "${fixed.a} in [3]", "'x' < 1",
])
def test_evaluate_rejects_everything_else(expr):
    with pytest.raises(ExprError):
        evaluate(expr, {"fixed": {"a": 3}})


@pytest.mark.parametrize("expr, message", [
    ("10 ** 10 ** 10", "exponent 10000000000 too large"),  # would hang `plan`
    ("(2 ** 250) ** 20", "result too large"),
    ("'x' * 10 ** 9", "repeated text too long"),  # would eat the memory
    ("10 ** 9 * 'x'", "repeated text too long"),
    ("min(3)", r"min\(\) takes two or more values"),  # was a raw TypeError
    ("max(1, 'a')", "cannot compute"),
])
def test_evaluate_is_bounded_and_errors_are_expr_errors(expr, message):
    import time

    t0 = time.perf_counter()
    with pytest.raises(ExprError, match=message):
        evaluate(expr, {"fixed": {}})
    assert time.perf_counter() - t0 < 1.0


def test_derived_chain_and_string_interpolation(tmp_path):
    spec = write(tmp_path, """
name: d
axes: {params: [S, B]}
fixed: {batch: 16384, samples: 1.0e9}
derived:
  steps: "${fixed.samples} // ${fixed.batch}"
  half: "${derived.steps} // 2"
stages:
  - {name: a, target: vtp.stages.smoke:run, config: {steps: "${derived.half}", label: "run-${axes.params}"}}
""")
    runs = expand(load_sweep(spec), "v")
    assert [r.config for r in runs] == [{"steps": 30517, "label": "run-S"}, {"steps": 30517, "label": "run-B"}]


def test_yaml_cannot_construct_objects(tmp_path):
    spec = write(tmp_path, "name: !!python/name:os.system\nstages: []\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_sweep(spec)


def test_imports_are_torch_free():
    code = ("import sys, vtp.sweep, cluster, cluster.executors, cluster.executors.slurm, vtp.cli.sweep\n"
            "import vtp.sweep.launcher, vtp.jobs.worker, cluster.executors.local\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


@pytest.mark.parametrize("flops, shown", [
    ("tests.sweep.estimators:per_step", "2e+10"), ("tests.sweep.estimators:broken", "-"),
    ("vtp.no_such_module:train_flops", "-"),
])
def test_plan_shows_flops_or_a_dash(flops, shown, tmp_path):
    from vtp.sweep.planner import format_table, plan

    sweep = load_sweep(TINY, [f"root={tmp_path}", f"stages.tokenizer.flops={flops}", "axes.size=[1]", "axes.seed=[0]"])
    planned = plan(sweep, code_version="t")
    table = format_table(planned)
    tok_line = next(line for line in table.splitlines() if line.startswith(planned[0].run.key))
    assert tok_line.split()[-1] == shown
    totals = next(line for line in table.splitlines() if line.startswith("tokenizer "))
    assert totals.split()[-1] == shown


def test_cluster_sweeps_plan_without_torch_and_fast():
    code = ("import sys, time\n"
            "from vtp.sweep.spec import load_sweep\nfrom vtp.sweep.planner import plan, format_table\n"
            "for name in ('compute', 'params', 'data'):\n"
            "    t = time.perf_counter()\n"
            "    p = plan(load_sweep(f'sweeps/{name}.yaml', ['root=/nonexistent']), code_version='t', check_data=False)\n"
            "    format_table(p)\n"
            "    assert {r.run.stage for r in p} == {'tokenizer', 'extract', 'dit', 'eval'}\n"
            "    assert all(r.action == 'run' for r in p)\n"
            "assert 'torch' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_gres_gpus_become_ranks_for_data_parallel_stages_only(tmp_path):
    from cluster.profile import gpus_per_node

    assert [gpus_per_node(g) for g in ("gpu:8", "gpu:a100:4", "gpu", None, "shard:2")] == [8, 4, 1, 0, 0]
    path = tmp_path / "s.yaml"
    path.write_text("""
name: s
executor: {profile: slurm, options: {gres: "gpu:8", nodes: 2}}
stages:
  - {name: tok, target: vtp.stages.tokenizer:run, config: {budget_steps: 1}}
  - {name: dit, target: vtp.stages.dit:run, after: tok, resources: {nodes: 1, tasks_per_node: 2}}
  - {name: ev, target: vtp.stages.eval:run, after: dit, resources: {nodes: 1}}
""")
    sweep = load_sweep(path)
    tasks = {name: (p.nodes, p.tasks_per_node) for name, p in sweep.stage_profiles.items()}
    assert tasks == {"tok": (2, 8), "dit": (1, 2), "ev": (1, 1)}  # gres gpu:8 on 2 nodes = 16 ranks


WHEN = """
name: w
axes: {objective: [ae, vtp], size: [1, 2], seed: [0, 1]}
derived: {centre: "${axes.size} == 1"}
stages:
  - {name: t, target: vtp.stages.smoke:run, fanout: checkpoints,
     config: {steps: 40, seed: "${axes.seed}", save_every: 5, checkpoints: [10, 20, 40], o: "${axes.objective}", s: "${axes.size}"}}
  - {name: probe, target: vtp.stages.smoke:run, after: t, config: {steps: 5, save_every: 5},
     when: "${run.checkpoint} == 40 or (${derived.centre} and ${axes.seed} == 0)"}
  - {name: control, target: vtp.stages.smoke:run, after: probe, config: {steps: 5, save_every: 5},
     when: "${derived.centre} and ${axes.seed} == 0 and ${run.checkpoint} == 40"}
  - {name: after_control, target: vtp.stages.smoke:run, after: control, config: {steps: 5, save_every: 5}}
"""


def test_stage_when_probes_only_where_it_holds(tmp_path):
    runs = expand(load_sweep(write(tmp_path, WHEN)), "v1")
    by = {}
    for r in runs:
        by.setdefault(r.stage, []).append(r)
    assert len(by["t"]) == 8  # 2 objectives x 2 sizes x 2 seeds
    probed = sorted((r.axes["size"], r.axes["seed"], r.checkpoint) for r in by["probe"] if r.axes["objective"] == "ae")
    # every checkpoint of (size 1, seed 0), the last checkpoint elsewhere
    assert probed == [(1, 0, 10), (1, 0, 20), (1, 0, 40), (1, 1, 40), (2, 0, 40), (2, 1, 40)]
    assert sorted((r.axes["objective"], r.checkpoint) for r in by["control"]) == [("ae", 40), ("vtp", 40)]
    assert {r.parent for r in by["after_control"]} == {r.key for r in by["control"]}  # children follow
    assert all(r.parent in {p.key for p in by["probe"]} for r in by["control"])


@pytest.mark.parametrize("when, message", [
    ("${axes.nope} == 1", "unknown reference"),
    ("${run.checkpoint} + 1", "expected a condition"),
    ("__import__('os')", "not allowed"),
])
def test_stage_when_errors_name_the_key_and_nothing_is_planned(tmp_path, when, message):
    text = WHEN.replace('"${run.checkpoint} == 40 or (${derived.centre} and ${axes.seed} == 0)"', repr(when).replace("'", '"') if "'" not in when else f'"{when}"')
    with pytest.raises(ConfigError, match=rf"stages\[1\]\.when.*{message}"):
        expand(load_sweep(write(tmp_path, text)), "v1")


def test_stage_when_needs_a_parent(tmp_path):
    text = WHEN.replace("fanout: checkpoints,", "fanout: checkpoints, when: \"${axes.seed} == 0\",")
    with pytest.raises(ConfigError, match=r"stages\[0\]\.when.*only a stage with `after`"):
        load_sweep(write(tmp_path, text))
