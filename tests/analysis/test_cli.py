"""vtp-analyze main(argv): fit-laws on a plain table and on a snapshot, errors, export delegation."""

import json
import sys
import types

import pandas as pd

from vtp.cli.analyze import main

from .synth import write_snapshot

PAPER = pd.DataFrame({
    "images": [1e5, 1e6, 1e7, 1e8] * 2,
    "gfid": [47.59, 40.57, 30.98, 27.45, 58.37, 58.39, 57.23, 56.71],
    "objective": ["vtp"] * 4 + ["ae"] * 4,
})


def test_fit_laws_plain_table(tmp_path, capsys):
    table, out = tmp_path / "paper.csv", tmp_path / "fits.json"
    PAPER.to_csv(table, index=False)
    rc = main(["fit-laws", str(table), "--x", "images", "--y", "gfid", "--family", "objective",
               "--n-boot", "50", "-o", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "scales" in printed and "stagnates" in printed
    fits = json.loads(out.read_text())
    by_family = {s["family"]: s for s in fits["series"]}
    vtp = by_family["vtp"]
    assert vtp["verdict"] == "scales" and vtp["local_slope_at_largest_x"]["ci"][1] < 0
    assert vtp["loglog_slope_whole_range"]["ci"][1] < 0
    assert vtp["convergence"]["converged"] is True
    assert set(vtp["params"]) and all(len(p["ci"]) == 2 for p in vtp["params"].values())
    assert by_family["ae"]["verdict"] == "stagnates"
    assert fits["comparisons"][0]["status"] == "ok"


def test_fit_laws_snapshot_defaults(tmp_path, capsys):
    snap, out = write_snapshot(tmp_path / "snap.parquet"), tmp_path / "fits.json"
    rc = main(["fit-laws", str(snap), "--n-boot", "20", "--forms", "power,loglinear", "-o", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "Frechet distance (dinov2-s)" in printed and "FID" not in printed.replace("Frechet", "")
    fits = json.loads(out.read_text())
    cols = fits["columns"]
    assert cols["x"] == "metric.tokenizer_flops" and cols["y"] == "metric.gen_fd"
    assert cols["family"] == "axis.objective" and cols["unit"] == "root_key"
    # one series per tokenizer config: (ae, vtp) x (S/B/L at 1e6 images, B at 1e5 and 1e7)
    assert cols["by"] == ["axis.objective", "axis.params", "axis.data"] and len(fits["series"]) == 10
    verdicts = {tuple(s["key"].values()): s["verdict"] for s in fits["series"]}
    assert verdicts[("vtp", "S", 1e6)] == "scales" and verdicts[("ae", "B", 1e5)] == "stagnates"
    assert fits["correlations"][0]["status"] == "ok"


def test_snapshot_prefers_gfid_when_present(tmp_path):
    snap, out = write_snapshot(tmp_path / "snap.parquet", with_gfid=True), tmp_path / "fits.json"
    assert main(["fit-laws", str(snap), "--n-boot", "0", "--forms", "power", "-o", str(out)]) == 0
    assert json.loads(out.read_text())["columns"]["y_label"] == "gFID"


def test_missing_column_exits_2_naming_it(tmp_path, capsys):
    table = tmp_path / "paper.csv"
    PAPER.to_csv(table, index=False)
    assert main(["fit-laws", str(table), "--x", "images", "--y", "fid", "-o", str(tmp_path / "f.json")]) == 2
    err = capsys.readouterr().err
    assert "paper.csv: fid: no such column" in err


def test_unknown_form_exits_2(tmp_path, capsys):
    assert main(["fit-laws", "x.csv", "--x", "a", "--y", "b", "--forms", "cubic"]) == 2
    assert "cubic" in capsys.readouterr().err


def test_export_delegates_to_tracking(tmp_path, monkeypatch):
    calls = []
    fake = types.ModuleType("vtp.tracking.export")

    def export_snapshot(source, out_path, *, allow_unsent):
        calls.append((source, out_path, allow_unsent))
        return out_path

    fake.export_snapshot = export_snapshot
    monkeypatch.setitem(sys.modules, "vtp.tracking.export", fake)
    assert main(["export", "out/demo", "-o", str(tmp_path / "s.parquet")]) == 0
    assert calls == [("out/demo", tmp_path / "s.parquet", False)]  # unsent points refuse, unless asked
