"""What a dataset holds, read cheaply: folder listings and Parquet footers, no image decoded, no torch.

Two uses. The planner checks every stage's `dataset` before anything is submitted (`DataCheck`: the
path exists, an ImageFolder has class folders, a Parquet store has the columns the stage reads, there
are enough images), so a typo stops `vtp-sweep plan` / `launch` naming the spec file, key and path.
Each stage records `describe(...).record()`: a fingerprint of the file list with sizes (ImageFolder)
or of the shards' names, sizes and row counts (Parquet), the image count and the classes, so the
tokenizer, decoder, extract and eval runs of one study can be checked to have read the same data.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vtp.config import ConfigError
from vtp.data.config import DataNeed, DatasetConfig

EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"}
SYNTHETIC_VERSION = 1  # bump when vtp.data.synthetic.render draws different images: part of its fingerprint


class DataError(ValueError):
    """A dataset cannot serve a stage; the message starts with the path."""


@dataclass(frozen=True)
class DataListing:
    kind: str
    path: str
    num_images: int  # 0 for the built-in stream (unbounded)
    classes: tuple[str, ...]  # class names in label order; () when the stage did not ask for labels
    sha256: str  # "" when listed without file sizes (the plan-time check)

    def record(self, *, image_size: int) -> dict[str, Any]:
        """The MLflow params / result.json entries every stage writes for the data it read."""
        return {"dataset.kind": self.kind, "dataset.path": self.path, "dataset.fingerprint": self.sha256[:16],
                "dataset.num_images": self.num_images, "dataset.num_classes": len(self.classes),
                "dataset.image_size": image_size}


def list_imagefolder(root: str | Path) -> tuple[list[str], list[tuple[str, int]]]:
    """(class names, sorted [(relative path, label)]) of `root/<class>/**/<image>`."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: does not exist" if not root.exists() else f"{root}: not a folder")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise DataError(f"{root}: no class sub-folders (expected root/<class>/<image>)")
    files = []
    for i, c in enumerate(classes):
        # os.walk and plain strings: ~10x faster than Path.rglob on ImageNet's 1.28M files (plan lists them)
        for folder, _, names in os.walk(os.path.join(root, c)):
            rel = os.path.relpath(folder, root).replace(os.sep, "/")
            files += [(f"{rel}/{n}", i) for n in names if os.path.splitext(n)[1].lower() in EXTENSIONS]
    return classes, sorted(files)


def list_shards(path: str | Path) -> list[Path]:
    """The .parquet files of `path` (one file, or a folder of them, sorted)."""
    path = Path(path)
    shards = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    if not shards or not shards[0].is_file():
        raise DataError(f"{path}: no parquet shards found" if path.exists() else f"{path}: does not exist")
    return shards


def _sha256_lines(lines: list[str]) -> str:
    h = hashlib.sha256()
    for line in lines:
        h.update(line.encode())
        h.update(b"\n")
    return h.hexdigest()


def _parquet_class_names(schema: Any, column: str, values: list[Any]) -> tuple[str, ...]:
    """Class names of a label column: the names themselves for a string column; for integers the
    ClassLabel names Hugging Face datasets stores in the schema metadata, else "0".."max"."""
    if values and isinstance(values[0], str):
        return tuple(sorted(set(values)))
    top = max(values) + 1 if values else 0
    try:
        meta = json.loads((schema.metadata or {}).get(b"huggingface", b"{}"))
        names = meta["info"]["features"][column]["names"]
        if len(names) >= top:
            return tuple(str(n) for n in names)
    except (KeyError, TypeError, ValueError):
        pass
    return tuple(str(i) for i in range(top))


def describe(cfg: DatasetConfig, *, labels: bool = False, sizes: bool = True) -> DataListing:
    """List `cfg`'s images (and, with `labels`, its classes); `sizes=False` skips the per-file stat
    (and the fingerprint) for the plan-time check. Raises DataError naming the path."""
    if cfg.kind == "synthetic":
        from vtp.data.synthetic import class_names  # torch: in jobs only (the planner never lists it)

        blob = f"synthetic:{cfg.seed}:v{SYNTHETIC_VERSION}"
        return DataListing("synthetic", "builtin-shapes", 0, tuple(class_names()), hashlib.sha256(blob.encode()).hexdigest())
    path = str(cfg.path)
    if cfg.kind == "imagefolder":
        classes, files = list_imagefolder(path)
        if not files:
            raise DataError(f"{path}: no images in its class folders ({', '.join(sorted(EXTENSIONS))})")
        sha = _sha256_lines([f"{rel}\t{os.path.getsize(os.path.join(path, rel))}" for rel, _ in files]) if sizes else ""
        return DataListing("imagefolder", path, len(files), tuple(classes), sha)
    import pyarrow.parquet as pq  # no torch; only when a Parquet store is used

    shards, rows, lines, values = list_shards(path), 0, [], []
    for shard in shards:
        meta = pq.ParquetFile(shard)
        rows += meta.metadata.num_rows
        lines.append(f"{shard.name}\t{shard.stat().st_size}\t{meta.metadata.num_rows}")
        if labels:
            values += meta.read(columns=[cfg.label_column]).column(0).to_pylist()
    classes = _parquet_class_names(pq.ParquetFile(shards[0]).schema_arrow, cfg.label_column, values) if labels else ()
    return DataListing("parquet", path, rows, classes, _sha256_lines(lines) if sizes else "")


def parquet_columns(cfg: DatasetConfig) -> dict[str, list[str]]:
    """shard path -> its column names (footers only)."""
    import pyarrow.parquet as pq

    return {str(s): pq.ParquetFile(s).schema_arrow.names for s in list_shards(str(cfg.path))}


def _inventory(cfg: DatasetConfig) -> tuple[DataListing, dict[str, list[str]]] | str:
    """(listing without file sizes, Parquet columns per shard), or why the data cannot be read."""
    try:
        return describe(cfg, sizes=False), parquet_columns(cfg) if cfg.kind == "parquet" else {}
    except DataError as e:
        return str(e)
    except OSError as e:  # an unreadable folder, a .parquet that is not Parquet
        return f"{cfg.path}: cannot be read ({e})"


def problems(need: DataNeed, inventory: tuple[DataListing, dict[str, list[str]]] | str | None = None) -> str | None:
    """Why `need.dataset` cannot serve the stage (the message starts with the path), or None."""
    cfg = need.dataset
    if cfg.kind == "synthetic":
        return None  # the built-in stream: any number of labelled, captioned images
    inventory = inventory if inventory is not None else _inventory(cfg)
    if isinstance(inventory, str):
        return inventory
    listing, columns = inventory
    wanted = [cfg.image_column] + [cfg.caption_column] * need.captions + [cfg.label_column] * need.labels
    for shard, names in columns.items():
        missing = [c for c in wanted if c not in names]
        if missing:
            return f"{shard}: column {missing[0]!r} missing; columns are: {', '.join(names)}"
    if listing.num_images < need.images:
        return f"{cfg.path}: holds {listing.num_images} images, the stage needs {need.images}"
    return None


class DataCheck:
    """The plan-time data check, listing each dataset (and reading each reference batch's shapes)
    once per plan however many runs share it."""

    def __init__(self) -> None:
        self._seen: dict[Any, Any] = {}  # need -> problem or None; dataset -> its inventory

    def __call__(self, need: DataNeed, *, where: Any, key: str) -> None:
        if need not in self._seen:
            if need.dataset.kind != "synthetic" and need.dataset not in self._seen:  # one listing per dataset
                self._seen[need.dataset] = _inventory(need.dataset)
            self._seen[need] = problems(need, self._seen.get(need.dataset))
        if self._seen[need]:
            raise ConfigError(where, f"{key}.{need.field}", str(self._seen[need]))

    def weights_file(self, path: str, *, where: Any, key: str) -> None:
        """Network weights given by local path (nothing is downloaded): the file must be there. Its
        contents are checked by the job that loads it (plan imports no torch)."""
        if not Path(path).is_file():
            raise ConfigError(where, key, f"{path}: file not found (weights are read from a local path, never downloaded)")

    def reference_batch(self, path: str, *, where: Any, key: str) -> None:
        """An ADM-suite reference batch .npz: readable, with mu (2048,) and sigma (2048, 2048)."""
        from vtp.eval.reference_batch import INCEPTION_DIM, ReferenceBatchError, read_reference_batch

        if ("npz", path) not in self._seen:
            try:
                read_reference_batch(path, dim=INCEPTION_DIM)
                self._seen[("npz", path)] = None
            except ReferenceBatchError as e:
                self._seen[("npz", path)] = str(e)
        if self._seen[("npz", path)]:
            raise ConfigError(where, key, str(self._seen[("npz", path)]))
