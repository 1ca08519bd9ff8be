"""Synthetic data for the analysis tests: laws with known parameters, and a small snapshot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

# Chinchilla's fitted law (Hoffmann et al. 2022, as refit by Besiroglu et al. 2024).
CHINCHILLA = {"E": 1.69337368, "A": 406.401018, "B": 410.722827, "alpha": 0.33917084, "beta": 0.2849083}
SATURATING = {"E": 2.0, "A": 60.0, "alpha": 0.35}


def saturating_data(seed: int, n: int = 30, sigma: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.geomspace(1e3, 1e7, n)
    y = SATURATING["E"] + SATURATING["A"] * x ** -SATURATING["alpha"]
    return x, y * np.exp(rng.normal(0.0, sigma, n))


def chinchilla_data(seed: int, n: int = 60, sigma: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n_params = 10 ** rng.uniform(7, 10, n)
    tokens = 10 ** rng.uniform(9, 12, n)
    c = CHINCHILLA
    loss = c["E"] + c["A"] / n_params ** c["alpha"] + c["B"] / tokens ** c["beta"]
    return np.column_stack([n_params, tokens]), loss * np.exp(rng.normal(0.0, sigma, n))


def write_snapshot(path: Path, *, seed: int = 0, network: str = "dinov2-s", with_gfid: bool = False,
                   recon: str | None = None, failing: tuple[tuple[str, str, float], ...] | None = None) -> Path:
    """A vtp snapshot (Parquet, vtp_snapshot_version=1): ae stagnates, vtp scales. The grid is a
    union of one-axis studies sharing a centre (B, 1e6): sizes S/B/L at 1e6 images, and 1e5/1e6/1e7
    images at size B, like sweeps/mini.yaml. `recon` ("recon_fd" or "rfid") adds that reconstruction
    metric (both families improve, ae faster), its noise from its own generator so the other columns
    are the same as without it. `failing` (not None) adds the probe's controls (analysis.controls):
    every configuration passes but the (objective, size, data) listed, and a shuffled-label negative
    control at the centre."""
    rng = np.random.default_rng(seed)
    rng_recon = np.random.default_rng(seed + 1000)
    rows = []
    sizes = {"S": 2.0e6, "B": 8.0e6, "L": 3.2e7}
    grid = [(size, 1e6) for size in sizes] + [("B", 1e5), ("B", 1e7)]
    for obj in ("ae", "vtp"):
        for size, data in grid:
            n_params = sizes[size]
            root = f"tok-{obj}-{size}-{int(data)}"
            rows.append({"run_key": root, "stage": "tokenizer", "status": "done", "sweep": "demo",
                         "root_key": root, "checkpoint": None, "axis.objective": obj, "axis.params": size,
                         "axis.data": data})
            for k in (1, 2, 4, 8, 16, 32):
                flops = 6.0 * n_params * 2.0e4 * k
                scale = flops * (n_params / 2e6) ** 0.5 * (data / 1e5) ** 0.3 / 1e12
                fd = (20.0 + 40.0 * scale ** -0.3) if obj == "vtp" else (56.0 + 3.0 * scale ** -0.02)
                probe = (0.3 + 0.1 * np.log10(scale + 1)) if obj == "vtp" else 0.2 + 0.01 * np.log10(scale + 1)
                rows.append({
                    "run_key": f"{root}-eval-{k}", "stage": "eval", "status": "done", "sweep": "demo",
                    "root_key": root, "checkpoint": k, "axis.objective": obj, "axis.params": size,
                    "axis.data": data, "param.gen_fd_network": network,
                    "metric.gen_fd": fd * np.exp(rng.normal(0, 0.01)),
                    "metric.gfid": fd if with_gfid else None,
                    "metric.linear_probe": probe + rng.normal(0, 0.005),
                    "metric.tokenizer_flops": flops, "metric.tokenizer_params": n_params,
                })
                if failing is not None:
                    bad = (obj, size, data) in failing
                    rows[-1].update({"metric.oracle_accuracy": 0.08 if bad else 0.4, "metric.oracle_accuracy_recon": 0.6,
                                     "metric.oracle_chance": 0.05, "tag.probe_labels": "true"})
                    if (size, data) == ("B", 1e6) and k == 32:
                        rows.append({**rows[-1], "run_key": f"{root}-shuffled", "stage": "eval_shuffled",
                                     "metric.oracle_accuracy": 0.055, "tag.probe_labels": "shuffled"})
                        rows[-1], rows[-2] = rows[-2], rows[-1]  # the probe's row stays last for `recon`
                if recon:
                    rfd = (2.0 + 30.0 * scale ** -0.4) if obj == "ae" else (4.0 + 30.0 * scale ** -0.25)
                    rows[-1][f"metric.{recon}"] = rfd * np.exp(rng_recon.normal(0, 0.01))
    frame = pd.DataFrame(rows)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"vtp_snapshot_version": b"1"})
    pq.write_table(table, path)
    return path
