"""A series made of the checkpoints of ONE run has no bootstrap interval: resampling whole runs
reproduces it. The table must say so instead of printing a zero-width interval."""

import numpy as np
import pandas as pd

from vtp.cli.analyze import main


def test_one_run_series_prints_no_interval(tmp_path, capsys):
    x = np.logspace(9, 12, 6)
    table = tmp_path / "one_run.csv"
    pd.DataFrame({"flops": x, "fd": 40 * (x / 1e9) ** -0.3, "run": "r0"}).to_csv(table, index=False)
    assert main(["fit-laws", str(table), "--x", "flops", "--y", "fd", "--unit", "run", "--n-boot", "50",
                 "-o", str(tmp_path / "fits.json")]) == 0
    out = capsys.readouterr().out
    assert "(no CI: 1 run)" in out
