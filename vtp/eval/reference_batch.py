"""A reference batch `.npz` as the ADM evaluation suite writes it (github.com/openai/guided-diffusion,
evaluations/evaluator.py): `mu` (D,) and `sigma` (D, D) of the pool3 features of the reference
images, D = 2048 for the FID Inception. DiT, LightningDiT and VTP report gFID against these files
(e.g. VIRTUAL_imagenet256_labeled.npz). Numpy only: `vtp-sweep plan` checks the shapes before
anything is submitted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

INCEPTION_DIM = 2048  # pool3 features of the FID Inception (vtp.eval.inception.FEATURE_DIM)


class ReferenceBatchError(ValueError):
    """A reference batch that cannot serve as the real side of a Frechet distance; names the path."""


def read_reference_batch(path: str | Path, *, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(mu (dim,), sigma (dim, dim)) as float64; ReferenceBatchError for a missing, unreadable or
    wrong-shaped file."""
    path = Path(path)
    if not path.is_file():
        raise ReferenceBatchError(f"{path}: reference batch not found")
    try:
        with np.load(path) as f:
            arrays = {k: f[k] for k in f.files if k in ("mu", "sigma")}
            names = list(f.files)
    except (OSError, ValueError, AttributeError) as e:  # not an .npz (a .npy has no .files)
        raise ReferenceBatchError(f"{path}: cannot read the reference batch as .npz ({e})") from None
    missing = [k for k in ("mu", "sigma") if k not in arrays]
    if missing:
        raise ReferenceBatchError(f"{path}: reference batch has no {missing[0]!r} array (arrays: "
                                  f"{', '.join(names) or 'none'}); expected the ADM suite's mu ({dim},) and sigma ({dim}, {dim})")
    mu, sigma = arrays["mu"], arrays["sigma"]
    if mu.shape != (dim,) or sigma.shape != (dim, dim):
        raise ReferenceBatchError(f"{path}: reference batch has mu {mu.shape} and sigma {sigma.shape}; "
                                  f"expected ({dim},) and ({dim}, {dim}) for the FID Inception's pool3 features")
    return mu.astype(np.float64), sigma.astype(np.float64)
