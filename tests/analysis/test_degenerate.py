"""Degenerate input gives a clear row (or a clear error naming file and column), never a crash."""

import numpy as np
import pandas as pd
import pytest

from analysis.laws import LawSettings, fit_laws, to_json
from analysis.table import Columns, TableError, choose_columns, load_table

COLS = Columns(x="x", y="y", y_label="y", by=("fam",), family="fam")
QUICK = LawSettings(n_boot=20)


def _rows(fam, xs, ys):
    return pd.DataFrame({"x": xs, "y": ys, "fam": fam})


def _fit(frame, settings=QUICK):
    res = fit_laws(frame, COLS, settings)
    return res, {r.series.family: r for r in res.series}, to_json(res)


GOOD = _rows("vtp", [1e5, 1e6, 1e7, 1e8, 1e9], [47.6, 40.6, 31.0, 27.5, 25.0])


def test_too_few_points():
    res, got, js = _fit(pd.concat([GOOD, _rows("ae", [1e5, 1e6], [58.0, 57.0])]))
    assert got["ae"].status == "insufficient-data"
    assert "2 usable point" in got["ae"].reason
    assert got["ae"].fit is None and "params" not in js["series"][0]
    assert got["vtp"].status == "ok"


def test_nan_and_nonpositive_rows_are_dropped_and_counted():
    bad = _rows("ae", [1e5, 1e6, np.nan, 1e8, 1e9], [58.0, np.nan, 57.0, -1.0, 56.0])
    _, got, _ = _fit(pd.concat([GOOD, bad]))
    assert got["ae"].series.dropped == 3
    assert got["ae"].status == "insufficient-data"


def test_constant_series():
    _, got, _ = _fit(pd.concat([GOOD, _rows("ae", [1e5, 1e6, 1e7, 1e8], [58.0] * 4)]))
    assert got["ae"].status == "insufficient-data"
    assert "constant" in got["ae"].reason


def test_x_not_varying():
    _, got, _ = _fit(_rows("ae", [1e6] * 4, [58.0, 57.0, 56.0, 55.0]))
    assert "x does not vary" in got["ae"].reason


def test_family_missing():
    res, _, _ = _fit(GOOD, LawSettings(n_boot=20, families=("ae", "vtp")))
    (comp,) = res.comparisons
    assert comp["status"] == "family-missing" and "'ae'" in comp["reason"]


def test_single_family_is_a_row_not_a_crash():
    res, _, _ = _fit(GOOD)
    assert res.comparisons[0]["status"] == "family-missing"


def test_empty_table():
    res, _, js = _fit(GOOD.iloc[:0])
    assert res.series == [] or all(r.status != "ok" for r in res.series)


def test_missing_column_names_file_and_column(tmp_path):
    path = tmp_path / "t.csv"
    GOOD.to_csv(path, index=False)
    with pytest.raises(TableError, match=r"t\.csv: gfid: no such column"):
        choose_columns(load_table(path), x="x", y="gfid")


def test_plain_table_needs_x_and_y(tmp_path):
    path = tmp_path / "t.csv"
    GOOD.to_csv(path, index=False)
    with pytest.raises(TableError, match="name the x and y"):
        choose_columns(load_table(path))


def test_missing_file():
    with pytest.raises(TableError, match="no such file"):
        load_table("/nonexistent/table.parquet")
