"""vtp-scaling: scaling-law studies of visual tokenizers.

Layout: `vtp.models`, `vtp.losses`, `vtp.train`, `vtp.data`, `vtp.eval`, `vtp.flops` are the
science (torch); `vtp.sweep` is the engine and `vtp.tracking` the MLflow layer (no torch);
`vtp.stages` joins them; `cluster/` holds executors and cluster set-up; `vtp.jobs` is the job
contract beneath them all; `analysis/` fits laws from exported tables. The floors and the
directions they may import in are listed in the README and enforced by tests/test_boundaries.py.
Importing this package imports nothing heavy.
"""

__version__ = "0.1.0"
