"""Frechet distance between Gaussians, and running feature statistics. Pure numpy, no torch.

d^2 = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))   (Dowson & Landau 1982; Heusel et al. 2017).

tr((S1 S2)^(1/2)) is computed as the sum of square roots of the eigenvalues of A S2 A with
A = S1^(1/2): that matrix is symmetric PSD and similar to S1 S2, so a symmetric eigensolver gives a
real, stable answer where scipy.linalg.sqrtm (used by pytorch-fid) may return complex noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _sqrt_psd(s: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """Squared Frechet distance of N(mu1, cov1) and N(mu2, cov2) (what "FID" reports)."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    cov1, cov2 = np.atleast_2d(np.asarray(cov1, np.float64)), np.atleast_2d(np.asarray(cov2, np.float64))
    if mu1.shape != mu2.shape or cov1.shape != cov2.shape or cov1.shape != (mu1.size, mu1.size):
        raise ValueError(f"shape mismatch: mu {mu1.shape} vs {mu2.shape}, cov {cov1.shape} vs {cov2.shape}")
    a = _sqrt_psd((cov1 + cov1.T) / 2)
    m = a @ cov2 @ a  # (D, D), symmetric PSD, similar to cov1 @ cov2
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * tr_sqrt)


@dataclass
class RunningStats:
    """Streaming mean and (unbiased) covariance of feature rows, accumulated in float64."""

    dim: int
    n: int = 0
    total: np.ndarray | None = None
    outer: np.ndarray | None = None

    def update(self, feats: np.ndarray) -> None:
        x = np.asarray(feats, np.float64).reshape(-1, self.dim)  # (B, D)
        if self.total is None:
            self.total, self.outer = np.zeros(self.dim), np.zeros((self.dim, self.dim))
        self.n += x.shape[0]
        self.total += x.sum(0)
        self.outer += x.T @ x

    def mean(self) -> np.ndarray:
        if self.n < 1:
            raise ValueError("no features accumulated")
        return self.total / self.n

    def cov(self) -> np.ndarray:
        if self.n < 2:
            raise ValueError(f"need at least 2 feature rows for a covariance, got {self.n}")
        mu = self.mean()
        return (self.outer - self.n * np.outer(mu, mu)) / (self.n - 1)
