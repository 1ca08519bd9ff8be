"""Draws of a law's parameters, calibrated so that their percentiles are the intervals, and the
method that made them (printed beside every interval)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from analysis.forms import Form


@dataclass(frozen=True)
class Draws:
    thetas: np.ndarray  # (k, p) fit-coordinate draws; percentiles of any function of them are intervals
    natural: dict[str, np.ndarray]  # natural parameter name -> (k,) draws
    method: str  # how the draws were made, e.g. "bootstrap over 10 runs"
    n_requested: int
    n_converged: int
    n_units: int
    why_none: str = ""  # why no honest interval exists ("" when one does)
    details: dict = field(default_factory=dict)  # method-specific numbers (noise model, width factor)

    @property
    def informative(self) -> bool:
        """False when there is no honest interval, or when the draws all give one answer (a
        zero-width interval would be a lie)."""
        return (not self.why_none and self.n_converged > 1
                and any(np.ptp(v) > 0 for v in self.natural.values()))

    def ci(self, name: str, level: float = 0.95) -> tuple[float, float]:
        """Percentile interval of a natural parameter; (nan, nan) without honest draws."""
        draws = self.natural.get(name, np.array([]))
        if draws.size == 0 or self.why_none:
            return float("nan"), float("nan")
        q = 100.0 * (1.0 - level) / 2.0
        lo, hi = np.percentile(draws, [q, 100.0 - q])
        return float(lo), float(hi)

    def summary(self) -> dict:
        return {"method": self.method, "requested": self.n_requested, "converged": self.n_converged,
                "units": self.n_units, "no_interval_because": self.why_none or None, **self.details}


def no_draws(form: Form, n_units: int, why: str, method: str = "none", n_requested: int = 0) -> Draws:
    return Draws(thetas=np.empty((0, len(form.params))), natural={}, method=method, n_requested=n_requested,
                 n_converged=0, n_units=n_units, why_none=why)


def make_draws(form: Form, thetas: np.ndarray, lref: np.ndarray, *, method: str, n_requested: int,
               n_units: int, details: dict | None = None) -> Draws:
    arr = np.asarray(thetas, float).reshape(-1, len(form.params))
    nat = [form.natural(t, lref) for t in arr]
    names = list(form.natural(np.zeros(len(form.params)), lref)) if not nat else list(nat[0])
    natural = {k: np.array([d[k] for d in nat], float) for k in names}
    return Draws(thetas=arr, natural=natural, method=method, n_requested=n_requested, n_converged=len(arr),
                 n_units=n_units, details=details or {})


def stretch(full: np.ndarray, thetas: np.ndarray, factor: np.ndarray | float, bounds: list) -> np.ndarray:
    """full + factor * (draw - full), kept inside the form's bounds: widens (or narrows) the spread
    of the draws around the estimate while keeping their shape."""
    out = full + np.reshape(factor, (-1, 1)) * (thetas - full)
    lo = np.array([-np.inf if b[0] is None else b[0] for b in bounds])
    hi = np.array([np.inf if b[1] is None else b[1] for b in bounds])
    return np.clip(out, lo, hi)
