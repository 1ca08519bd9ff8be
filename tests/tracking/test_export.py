"""Export round trip: what a worker logged is what the Parquet snapshot holds."""

from __future__ import annotations

import math
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from vtp.tracking import RunRecord, open_run, prepare_sweep
from vtp.tracking.export import curves_path, export_snapshot
from vtp.tracking.store import TrackingError


def _sweep(sweep_dir: Path, uri: str | None = None) -> dict[str, str]:
    runs = [
        RunRecord("tok", "tokenizer", {"objective": "vtp", "params": "S", "compute": 1e15}, (),
                  {"lr": 1e-3, "encoder": {"preset": "S", "depth": 12}, "use_ema": True, "ckpts": [1, 2]}, "v1", None, "tok"),
        RunRecord("ev7", "eval", {"objective": "vtp", "params": "S", "compute": 1e15}, ("tok",),
                  {"lr": 2e-4, "encoder": {"preset": "S", "depth": 12}}, "v1", 7, "tok"),
    ]  # fmt: skip
    ids = prepare_sweep(sweep_dir, name="exp", uri=uri, runs=runs)
    with open_run(sweep_dir, "tok") as t:
        for step in range(5):
            t.log_metrics({"loss": 1.0 / (step + 1), "flops": step * 1e12}, step=step)
    t = open_run(sweep_dir, "ev7")
    t.log_metrics({"gen_fd": 31.25, "tokenizer_flops": 4e12, "bad": math.nan}, step=7)
    t.set_tags({"gen_fd_network": "dinov2-vits14"})
    assert t.close("FAILED")
    return ids


def check_snapshot(out: Path, ids: dict[str, str]) -> None:
    table = pq.read_table(out)
    assert table.schema.metadata[b"vtp_snapshot_version"] == b"1"
    rows = {r["run_key"]: r for r in table.to_pylist()}
    assert set(rows) == {"tok", "ev7"}
    tok, ev = rows["tok"], rows["ev7"]
    assert (tok["stage"], tok["status"], tok["root_key"], tok["checkpoint"]) == ("tokenizer", "FINISHED", "tok", None)
    assert (ev["stage"], ev["status"], ev["root_key"], ev["checkpoint"]) == ("eval", "FAILED", "tok", 7)
    assert tok["run_id"] == ids["tok"] and ev["sweep"] == "exp"
    assert tok["axis.objective"] == "vtp" and tok["axis.compute"] == 1e15
    assert tok["param.lr"] == 1e-3 and ev["param.lr"] == 2e-4
    assert tok["param.encoder.depth"] == 12 and tok["param.use_ema"] is True and ev["param.use_ema"] is None
    assert tok["param.ckpts"] == "[1, 2]"
    assert tok["metric.loss"] == 0.2 and tok["metric.flops"] == 4e12 and tok["metric.gen_fd"] is None
    assert ev["metric.gen_fd"] == 31.25 and ev["metric.tokenizer_flops"] == 4e12 and math.isnan(ev["metric.bad"])
    assert ev["tag.gen_fd_network"] == "dinov2-vits14" and ev["tag.vtp.parents"] == "tok"
    assert table.schema.field("param.lr").type == "double" and table.schema.field("checkpoint").type == "int64"
    curves = pq.read_table(curves_path(out)).to_pylist()
    loss = [(c["step"], c["value"]) for c in curves if c["run_key"] == "tok" and c["metric"] == "loss"]
    assert loss == [(s, 1.0 / (s + 1)) for s in range(5)]
    assert len(curves) == 5 + 5 + 3


def test_export_round_trip_sqlite(sweep_dir: Path, tmp_path: Path):
    ids = _sweep(sweep_dir)
    out = export_snapshot(sweep_dir, tmp_path / "snap" / "runs.parquet")
    assert out == tmp_path / "snap" / "runs.parquet" and curves_path(out).exists()
    check_snapshot(out, ids)
    # The store's URI works as a source too.
    check_snapshot(export_snapshot(f"sqlite:///{sweep_dir.resolve()}/mlflow.db", tmp_path / "b.parquet"), ids)


def test_export_rejects_unknown_source(tmp_path: Path):
    with pytest.raises(TrackingError, match="not a sweep folder"):
        export_snapshot(tmp_path, tmp_path / "x.parquet")
