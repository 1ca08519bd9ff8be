"""The smaller items of issue #16, one test each: --forms/--x2, --select extrapolation with few
points, a parameter at its bound, --level and --higher-better in the report text, provenance,
the noise-scaled Huber threshold, AICc, and the within-run correlation estimate."""

import json

import numpy as np
import pandas as pd
import pytest

from analysis import report
from analysis.figures import curve_grids
from analysis.fit import fit_form
from analysis.forms import SATURATING
from analysis.laws import LawSettings, fit_laws, to_json
from analysis.noise import estimate_many, independent_offset, runs_in_order
from analysis.select import information_criteria
from analysis.table import Columns
from analysis.text import header, verdict_rule
from vtp.cli.analyze import main

from .synth import chinchilla_data, saturating_data


def _csv(tmp_path, frame, name="t.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return str(path)


def test_joint_without_x2_is_a_clear_error(tmp_path, capsys):
    table = _csv(tmp_path, pd.DataFrame({"n": [1e6, 1e7, 1e8], "y": [3.0, 2.5, 2.2]}))
    assert main(["fit-laws", table, "--x", "n", "--y", "y", "--forms", "joint", "-o", str(tmp_path / "f.json")]) == 2
    assert "--x2" in capsys.readouterr().err


def test_x2_without_a_two_x_form_is_a_clear_error(tmp_path, capsys):
    table = _csv(tmp_path, pd.DataFrame({"n": [1e6, 1e7], "d": [1e9, 1e10], "y": [3.0, 2.5]}))
    assert main(["fit-laws", table, "--x", "n", "--x2", "d", "--y", "y", "--forms", "power",
                 "-o", str(tmp_path / "f.json")]) == 2
    assert "--forms joint" in capsys.readouterr().err


def test_x2_honours_forms_and_the_joint_law_is_drawn(tmp_path):
    x, y = chinchilla_data(seed=0, n=40)
    table = _csv(tmp_path, pd.DataFrame({"n": x[:, 0], "d": x[:, 1], "loss": y}))
    out = tmp_path / "f.json"
    assert main(["fit-laws", table, "--x", "n", "--x2", "d", "--y", "loss", "--forms", "joint,power",
                 "--n-boot", "20", "-o", str(out)]) == 0
    (s,) = json.loads(out.read_text())["series"]
    assert s["form"] == "joint" and set(s["candidates"]) == {"joint"}
    assert s["local_slope_at_largest_x"]["estimate"] < 0
    xs = np.geomspace(1e7, 1e10, 5)
    grids = curve_grids(x, xs)
    assert len(grids) == 1 and grids[0][1].shape == (5, 2)  # many x2 values: one curve at the median
    few = np.column_stack([x[:6, 0], np.repeat([1e9, 1e11], 3)])
    assert [g[0] for g in curve_grids(few, xs)] == [1e9, 1e11]


def test_select_extrapolation_with_few_points_still_chooses(tmp_path):
    # 4 points: no form can be refitted without the largest x, so no extrapolation score exists
    frame = pd.DataFrame({"x": [1e5, 1e6, 1e7, 1e8], "y": [47.6, 40.6, 31.0, 27.5]})
    res = fit_laws(frame, Columns(x="x", y="y", y_label="y"), LawSettings(n_boot=20, select="extrapolation"))
    (r,) = res.series
    assert r.status == "ok" and r.chosen is not None  # the old code: "no-converged-fit"
    assert "fewest parameters" in r.chosen_by


def test_parameter_at_its_bound_is_flagged():
    # A power law minus a constant: the best floor E would be negative, so E sits on its bound 0
    # (the law is then a plain power law, and E's interval is the bound, not the data).
    x = np.geomspace(1e3, 1e6, 8)
    y = 100 * x**-0.5 - 0.05
    fit = fit_form(SATURATING, x, y)
    assert "E" in fit.at_bound
    frame = pd.DataFrame({"x": x, "y": y})
    res = fit_laws(frame, Columns(x="x", y="y", y_label="y"), LawSettings(forms=("saturating",), n_boot=20))
    js = to_json(res)["series"][0]
    assert any("at a bound: E" in w for w in js["warnings"])
    assert js["convergence"]["at_bound"] == ["E"]


def test_level_and_direction_reach_the_report_text():
    s = LawSettings(level=0.9, higher_is_better=True)
    rule = verdict_rule(s)
    assert "90% interval" in rule and "higher y is better" in rule
    assert "`scales` (above 0" in rule and "`worsens` (below 0" in rule
    assert "95%" not in rule
    assert header(0.9)[4] == "parameters [90% CI]"


def test_provenance_has_versions_command_and_dirty_marker(tmp_path, monkeypatch):
    from analysis.table import choose_columns, load_table

    from .synth import write_snapshot

    answers = {("rev-parse", "HEAD"): "abc123", ("status", "--porcelain", "--untracked-files=no"): " M analysis/fit.py"}
    monkeypatch.setattr(report, "_git", lambda *a: answers.get(a, ""))
    assert report.code_version().endswith("+abc123.dirty")
    table = load_table(write_snapshot(tmp_path / "s.parquet"))
    frame, cols = choose_columns(table)
    report.write_report(table, frame, cols, tmp_path / "out", settings=LawSettings(n_boot=0, forms=("power",)),
                        command="vtp-analyze report s.parquet -o out")
    md = (tmp_path / "out" / "report.md").read_text()
    assert "- command: vtp-analyze report s.parquet -o out" in md
    assert "numpy " in md and "scipy " in md and "+abc123.dirty" in md


def test_huber_threshold_is_scaled_to_the_noise():
    # 2 % log-normal noise: delta ~ 1.345 * 0.02 = 0.027, not Hoffmann et al.'s fixed 1e-3
    x, y = saturating_data(1, sigma=0.02)
    fit = fit_form(SATURATING, x, y)
    assert 0.015 < fit.delta < 0.045


def test_aicc_by_hand():
    # n = 9, k = 3 law parameters + the noise variance: K = 4; AICc = AIC + 2*4*5/(9-4-1) = AIC + 10
    x, y = saturating_data(2, n=9)
    fit = fit_form(SATURATING, x, y)
    ic = information_criteria(fit)
    ll = 9 * np.log(fit.rss_log / 9)
    assert ic["aic"] == pytest.approx(ll + 8)
    assert ic["aicc"] == pytest.approx(ll + 8 + 10)
    assert ic["bic"] == pytest.approx(ll + 4 * np.log(9))


def test_independent_offset_matches_simulation():
    # The lag-1 autocorrelation of a fitted line's residuals under independent errors averages
    # tr(MA)/tr(M) (negative): the estimator subtracts it, so independent errors give rho ~ 0.
    rng = np.random.default_rng(0)
    lx = np.log(np.geomspace(1e4, 1e6, 9))
    jac = np.column_stack([np.ones(9), lx])
    runs = runs_in_order(np.zeros(9, int), lx)
    sims = rng.normal(0, 0.02, (4000, 9))
    resid = sims - sims @ (jac @ np.linalg.pinv(jac)).T
    raw = np.sum(resid[:, :-1] * resid[:, 1:], axis=1) / np.sum(resid * resid, axis=1)
    offset = independent_offset(jac, runs)
    assert offset < -0.1
    assert np.mean(raw) == pytest.approx(offset, abs=0.02)
    _, rho = estimate_many(resid, runs, 2, offset)
    assert np.median(rho) == 0.0  # clipped at 0 at least half the time
