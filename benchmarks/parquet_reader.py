"""Peak memory and decode rate of the image-text Parquet reader on a large store (goal: peak RSS
under 1,024 MB whatever the row count).

    PYTHONPATH=. python benchmarks/parquet_reader.py [--rows 1000000] [--shards 200] [--samples 20000]
    PYTHONPATH=. python benchmarks/parquet_reader.py --quick     # 2,000 rows in 4 shards: what the tests run

The store (16x16 PNG and JPEG bytes, a caption, a label; one image in 97 corrupt) is written into a
temporary folder by a child process, so that building it never counts in the figure. This process then
opens the store with `vtp.data.parquet.ParquetImageText` (default cache) and reads `--samples` random
samples (indices drawn from a seeded generator) as a training loop does, one at a time.

Peak RSS: the kernel's high-water mark of this process (`VmHWM` in /proc/self/status), read after
sampling; since this process only imported torch/pyarrow, indexed the store and sampled, it is the
peak of those (a sampler thread also polls `VmRSS` every 5 ms and its maximum is printed beside it).
Ends with `RESULT parquet_rss_mb=<peak RSS, MiB> images_per_s=<samples decoded per second>`.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path


def build_store(root: Path, *, rows: int, shards: int, row_group: int) -> None:
    """Write `shards` files of rows/shards rows each, reusing 16 encoded images (a reader benchmark)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    rng = np.random.default_rng(0)
    images = []
    for k in range(16):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(buf, format="PNG" if k % 2 else "JPEG")
        images.append(buf.getvalue())
    per = rows // shards
    for s in range(shards):
        ids = range(s * per, (s + 1) * per)
        table = pa.table({
            "image": pa.array([images[i % 16] if i % 97 else b"corrupt" for i in ids], type=pa.binary()),
            "caption": [f"a photo of thing {i}" for i in ids],
            "label": pa.array([i % 1000 for i in ids], type=pa.int32()),
        })
        # no dictionary and no compression: the 16 images repeat, and either would shrink the store to
        # a few MiB, far from what a store of distinct images costs to read
        pq.write_table(table, root / f"part-{s:05d}.parquet", row_group_size=row_group, use_dictionary=False,
                       compression="none")  # fmt: skip


def _status(field: str) -> float:
    """A `kB` line of /proc/self/status, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def sample(root: Path, *, samples: int, image_size: int, seed: int) -> dict[str, float]:
    import warnings

    import torch

    from vtp.data.parquet import ParquetImageText

    peak = {"rss": _status("VmRSS")}
    done = threading.Event()

    def poll() -> None:
        while not done.wait(0.005):
            peak["rss"] = max(peak["rss"], _status("VmRSS"))

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    rss_before = _status("VmRSS")
    t0 = time.perf_counter()
    ds = ParquetImageText(root, image_size=image_size, seed=seed)
    index_s = time.perf_counter() - t0
    draws = torch.randint(len(ds), (samples,), generator=torch.Generator().manual_seed(seed)).tolist()
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the corrupt rows: counted below
        decoded = sum(ds[i] is not None for i in draws)
    elapsed = time.perf_counter() - t0
    done.set()
    thread.join()
    return {
        "parquet_rss_mb": _status("VmHWM"), "images_per_s": decoded / elapsed, "polled_rss_mb": peak["rss"],
        "rss_before_reader_mb": rss_before, "index_s": index_s, "rows": len(ds), "corrupt": ds.corrupt_count,
        "row_groups": len(ds.rg_starts) - 1,
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--shards", type=int, default=200)
    p.add_argument("--row-group", type=int, default=1000)
    p.add_argument("--samples", type=int, default=20_000)
    p.add_argument("--image-size", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dir", type=Path, help="build the store here (default: a temporary folder, removed after)")
    p.add_argument("--quick", action="store_true", help="2,000 rows in 4 shards, 500 samples")
    p.add_argument("--build-only", type=Path, help=argparse.SUPPRESS)  # the child process's entry
    a = p.parse_args(argv)
    if a.quick:
        a.rows, a.shards, a.row_group, a.samples = 2_000, 4, 100, 500
    if a.build_only:
        build_store(a.build_only, rows=a.rows, shards=a.shards, row_group=a.row_group)
        return 0
    with tempfile.TemporaryDirectory(dir=a.dir) as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--build-only", str(root), "--rows", str(a.rows), "--shards",
                        str(a.shards), "--row-group", str(a.row_group)], check=True)  # fmt: skip
        build_s = time.perf_counter() - t0
        size_mb = sum(f.stat().st_size for f in root.glob("*.parquet")) / 2**20
        r = sample(root, samples=a.samples, image_size=a.image_size, seed=a.seed)
    print(f"store: {r['rows']:,} rows in {a.shards} shards, {r['row_groups']} row groups, {size_mb:.0f} MiB, "
          f"built in {build_s:.1f} s (child process); index from footers {r['index_s']:.2f} s")  # fmt: skip
    print(f"RSS before the reader {r['rss_before_reader_mb']:.0f} MiB; polled max {r['polled_rss_mb']:.0f} MiB; "
          f"{a.samples} random samples, {r['corrupt']} corrupt skipped")  # fmt: skip
    print(f"RESULT parquet_rss_mb={r['parquet_rss_mb']:.0f} images_per_s={r['images_per_s']:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
