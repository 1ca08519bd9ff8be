"""Bootstrap confidence intervals that resample whole runs.

The checkpoints of one tokenizer run are not independent draws, so the resampling unit is a
run (e.g. the snapshot's `root_key`); when no unit column is given, each point is its own unit.
A replicate is a weighted refit (weights = how often each point's unit was drawn), warm-started
from the full-data fit and retried from the full start grid only when that fails.
Replicates that do not converge are counted and left out of the intervals, never silently kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.fit import DEFAULT_FIT, FitResult, FitSettings, fit_form_unlimited
from analysis.forms import Form
from analysis.threads import single_threaded_blas


@dataclass(frozen=True)
class BootstrapResult:
    thetas: np.ndarray  # (k, p) fit-coordinate parameters of the converged replicates
    natural: dict[str, np.ndarray]  # natural parameter name -> (k,) draws
    n_requested: int
    n_converged: int
    n_units: int

    @property
    def informative(self) -> bool:
        """False when the converged replicates all give one answer: with as few runs as the form
        has parameters, the only resamples that identify it are the data itself, and a zero-width
        interval would be a lie."""
        return self.n_converged > 1 and any(np.ptp(v) > 0 for v in self.natural.values())

    def ci(self, name: str, level: float = 0.95) -> tuple[float, float]:
        """Percentile interval of a natural parameter; (nan, nan) when no replicate converged."""
        draws = self.natural[name]
        if draws.size == 0:
            return float("nan"), float("nan")
        q = 100.0 * (1.0 - level) / 2.0
        lo, hi = np.percentile(draws, [q, 100.0 - q])
        return float(lo), float(hi)


def unit_codes(units: np.ndarray | None, n: int) -> tuple[np.ndarray, int]:
    """Integer code per point and the number of units (each point its own unit when None)."""
    if units is None:
        return np.arange(n), n
    _, codes = np.unique(np.asarray(units).astype(str), return_inverse=True)
    return codes.reshape(-1), int(codes.max()) + 1


def resample_weights(codes: np.ndarray, n_units: int, rng: np.random.Generator) -> np.ndarray:
    """Point weights for one replicate: how many times each point's unit was drawn."""
    counts = np.bincount(rng.integers(0, n_units, n_units), minlength=n_units)
    return counts[codes].astype(float)


def bootstrap_fit(form: Form, x: np.ndarray, y: np.ndarray, *, full: FitResult,
                  units: np.ndarray | None = None, n_boot: int = 1000, seed: int = 0,
                  settings: FitSettings = DEFAULT_FIT) -> BootstrapResult:
    """Refit `form` on `n_boot` unit-resampled replicates of (x, y)."""
    with single_threaded_blas():
        return _bootstrap(form, x, y, full=full, units=units, n_boot=n_boot, seed=seed, settings=settings)


def _bootstrap(form: Form, x: np.ndarray, y: np.ndarray, *, full: FitResult, units: np.ndarray | None,
               n_boot: int, seed: int, settings: FitSettings) -> BootstrapResult:
    rng = np.random.default_rng(seed)
    codes, n_units = unit_codes(units, len(y))
    thetas = []
    # A refit is a pure function of the weights: with few units many replicates repeat a draw (3 runs
    # give at most 10 distinct ones, 1 run gives 1), so each distinct weight vector is fitted once.
    memo: dict[bytes, np.ndarray | None] = {}
    for _ in range(n_boot):
        w = resample_weights(codes, n_units, rng)
        if np.count_nonzero(w) < form.min_points:
            continue  # a replicate with too few distinct points identifies nothing
        key = w.tobytes()
        if key not in memo:
            rep = fit_form_unlimited(form, x, y, settings=settings, weights=w, starts=full.theta[None, :],
                                     lref=full.lref, min_agree=1)
            if not rep.converged:
                rep = fit_form_unlimited(form, x, y, settings=settings, weights=w, lref=full.lref, min_agree=1)
            memo[key] = rep.theta if rep.converged else None
        if memo[key] is not None:
            thetas.append(memo[key])
    arr = np.array(thetas).reshape(-1, len(form.params))
    nat = [form.natural(t, full.lref) for t in arr]
    names = list(form.natural(full.theta, full.lref))
    natural = {k: np.array([d[k] for d in nat], float) for k in names}
    return BootstrapResult(thetas=arr, natural=natural, n_requested=n_boot,
                           n_converged=len(thetas), n_units=n_units)
