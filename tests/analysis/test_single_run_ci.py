"""A series made of the checkpoints of ONE run: resampling whole runs reproduces it, and treating
its checkpoints as independent draws makes the interval too narrow. It gets a parametric
bootstrap-t with the within-run correlation estimated from the residuals, and says so."""

import json

import numpy as np
import pandas as pd

from vtp.cli.analyze import main


def test_one_run_series_gets_a_correlation_aware_interval(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = np.logspace(9, 11.5, 9)
    table, out = tmp_path / "one_run.csv", tmp_path / "fits.json"
    fd = 40 * (x / 1e9) ** -0.3 * np.exp(rng.normal(0, 0.02, x.size))
    pd.DataFrame({"flops": x, "fd": fd, "run": "r0"}).to_csv(table, index=False)
    assert main(["fit-laws", str(table), "--x", "flops", "--y", "fd", "--unit", "run", "--n-boot", "100",
                 "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "no CI" not in printed
    assert "parametric bootstrap-t, AR(1) within runs" in printed and "1 run(s)" in printed
    (s,) = json.loads(out.read_text())["series"]
    assert s["params_interval"]["method"].startswith("parametric bootstrap-t, AR(1)")
    lo, hi = s["params"]["alpha"]["ci"]
    assert lo < s["params"]["alpha"]["estimate"] < hi and hi - lo > 0.01
    assert s["local_slope_at_largest_x"]["method"] == s["params_interval"]["method"]


def test_too_few_checkpoints_say_there_is_no_honest_interval(tmp_path, capsys):
    x = np.logspace(9, 11.5, 3)
    table, out = tmp_path / "three.csv", tmp_path / "fits.json"
    pd.DataFrame({"flops": x, "fd": [40.0, 31.0, 27.0], "run": "r0"}).to_csv(table, index=False)
    assert main(["fit-laws", str(table), "--x", "flops", "--y", "fd", "--unit", "run", "--n-boot", "50",
                 "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "no CI: 3 points leave 1 residual degree(s) of freedom" in printed
    (s,) = json.loads(out.read_text())["series"]
    assert s["verdict"] == "inconclusive"
    assert s["params"]["alpha"]["ci"] == [None, None]
