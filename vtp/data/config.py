"""The one dataset description every stage accepts (`dataset:` in the tokenizer, decoder, extract and
eval configs). Torch-free: the planner loads it at plan time.

A sweep names its pre-training data and its probe set once, in `fixed` (e.g. `fixed.pretrain_data`,
`fixed.probe_data`), and each stage config refers to one of them (`dataset: ${fixed.probe_data}`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class DatasetConfig:
    kind: Literal["synthetic", "imagefolder", "parquet"] = "synthetic"
    path: str | None = None  # a folder root/<class>/<image>, or a .parquet file or folder of shards
    seed: int = 0  # synthetic: the stream seed; real data: the seed of the one permutation of its images
    image_column: str = "image"  # parquet: encoded image bytes (or an HF {bytes, path} struct)
    caption_column: str = "caption"  # parquet: the text a CLIP objective trains on
    label_column: str = "label"  # parquet: the class (an integer or a class name) the probe stages need

    def validate(self) -> None:
        if self.kind != "synthetic" and not self.path:
            raise ValueError(f"dataset.path is required for dataset.kind={self.kind!r}")
        if self.kind == "synthetic" and self.path:
            raise ValueError("dataset.path is not used by dataset.kind='synthetic' (the built-in shapes)")


@dataclass(frozen=True)
class DataNeed:
    """What one stage reads from one of its `dataset` fields, checked at plan time (vtp.data.source):
    `images` at least, a caption for each (a Parquet caption column), a class label for each."""

    field: str  # the config key holding the DatasetConfig, e.g. "dataset"
    dataset: DatasetConfig
    images: int = 0
    captions: bool = False
    labels: bool = False
