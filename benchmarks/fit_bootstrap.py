"""Benchmark: 1,000 bootstrap fits of a 50-point series, and fit success vs scipy's curve_fit.

Run:  PYTHONPATH=. python benchmarks/fit_bootstrap.py            (the figure in RESULTS.md)
      PYTHONPATH=. python benchmarks/fit_bootstrap.py --quick    (50 resamples, 10 series: the test suite's)
Prints `RESULT bootstrap_1k_s=<s> success=<ours> curve_fit_success=<baseline>`.

Series: y = E + A x^-alpha on 50 log-spaced x in [1e3, 1e9], multiplicative log-normal noise
(sigma = 0.03); for the success rates, 100 series with true E ~ U(1, 3), A ~ U(20, 500),
alpha ~ U(0.15, 0.6), seeds 0..99.
Success (same definition for both fitters): the fitter reports success (ours: `converged`;
curve_fit: returns without raising, with a finite covariance) AND the fitted E and alpha are both
within 15% of the truth. curve_fit is called with its defaults (p0 = ones, no bounds, least
squares on y), which is what a hurried analysis does.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit

from analysis.bootstrap import bootstrap_fit
from analysis.fit import fit_form
from analysis.forms import SATURATING

X = np.geomspace(1e3, 1e9, 50)
TOL = 0.15


def series(seed: int) -> tuple[dict, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = {"E": rng.uniform(1, 3), "A": rng.uniform(20, 500), "alpha": rng.uniform(0.15, 0.6)}
    y = truth["E"] + truth["A"] * X ** -truth["alpha"]
    return truth, y * np.exp(rng.normal(0.0, 0.03, X.size))


def close(truth: dict, e: float, alpha: float) -> bool:
    return abs(e - truth["E"]) <= TOL * truth["E"] and abs(alpha - truth["alpha"]) <= TOL * truth["alpha"]


def ours(truth: dict, y: np.ndarray) -> bool:
    fit = fit_form(SATURATING, X, y)
    return fit.converged and close(truth, fit.natural["E"], fit.natural["alpha"])


def baseline(truth: dict, y: np.ndarray) -> bool:
    def law(x, e, a, alpha):
        return e + a * x ** -alpha

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", (OptimizeWarning, RuntimeWarning))
            p, cov = curve_fit(law, X, y)
    except (RuntimeError, ValueError):
        return False
    return bool(np.all(np.isfinite(cov))) and close(truth, p[0], p[2])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="50 resamples, 10 series: checks the plumbing")
    args = ap.parse_args(argv)
    n_boot, n_series = (50, 10) if args.quick else (1000, 100)
    truth, y = series(12345)
    full = fit_form(SATURATING, X, y)
    assert full.converged, full.reason
    t0 = time.perf_counter()
    boot = bootstrap_fit(SATURATING, X, y, full=full, n_boot=n_boot, seed=0)
    seconds = time.perf_counter() - t0
    print(f"bootstrap: {boot.n_converged}/{n_boot} replicates converged in {seconds:.2f} s; "
          f"alpha 95% CI {boot.ci('alpha')} (truth {truth['alpha']:.3f})")
    trials = [series(seed) for seed in range(n_series)]
    ok_ours = sum(ours(t, y) for t, y in trials) / len(trials)
    ok_base = sum(baseline(t, y) for t, y in trials) / len(trials)
    label = "bootstrap_1k_s" if n_boot == 1000 else f"bootstrap_{n_boot}_s"
    print(f"RESULT {label}={seconds:.2f} success={ok_ours:.2f} curve_fit_success={ok_base:.2f}")


if __name__ == "__main__":
    main()
