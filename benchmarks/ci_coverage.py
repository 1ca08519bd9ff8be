"""Benchmark: do the intervals, the family test and the verdicts mean what they say? (issue #16)

Run:  PYTHONPATH=. python benchmarks/ci_coverage.py            (full: >= 200 trials per regime)
      PYTHONPATH=. python benchmarks/ci_coverage.py --quick    (seconds; what the test suite runs)
Prints `RESULT coverage_1run=.. coverage_3runs=.. coverage_10runs=.. lrt_false_positive=..
lrt_false_positive_4x4=.. lrt_false_positive_9x9=.. verdict_accuracy=..`.

Data: 9 checkpoints per run, log-spaced over 2.5 decades (x = 1e4 .. 10^6.5). Noise on ln y:
2 % independent (N(0, 0.02)) plus a within-run correlated component, AR(1) along the checkpoints
with rho = 0.7 and standard deviation 0.01 (a run that is ahead stays ahead for a while).

- coverage_<k>run(s): saturating laws y = E + A x^-alpha (E ~ U(1, 3), alpha ~ U(0.2, 0.6),
  A x_min^-alpha / E ~ U(2, 6)), k runs per series (1, 3, 10), fitted with the saturating form;
  share of trials whose 95 % interval for alpha (analysis.intervals: the method the data allow)
  holds the true alpha. Trials whose fit gives no interval are counted and left out (printed).
- lrt_false_positive_<n>x<n>: two families with the SAME power-law slope (alpha ~ U(0.1, 0.5),
  amplitudes 10 and 20), one run of n checkpoints each (same noise); share of trials where the
  shared-slope test (analysis.compare.shared_slope_test) gives p < 0.05. lrt_false_positive is
  the larger of the two.
- verdict_accuracy: the fit-laws pipeline (forms power, saturating, loglinear, broken; AICc) on
  a labelled set, one run of 9 checkpoints unless said: steady power law (alpha ~ U(0.15, 0.5))
  -> scales; flat for the last two decades (E (1 + r (x/x_min)^-a), a ~ U(2.5, 3.5),
  r ~ U(1, 3)) -> stagnates; U-shape ((x/x_m)^-a + (x/x_m)^b about the middle x_m,
  a, b ~ U(0.3, 0.5)) -> worsens; three noisy points (3 runs of one point each, slope -0.05,
  5 % noise) -> inconclusive.
Goals (issue #16): coverages in [0.90, 0.99], false positives in [0.03, 0.07], verdicts >= 0.95.
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ProcessPoolExecutor

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # thousands of tiny fits: no spinning BLAS threads

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

X = np.geomspace(1e4, 10**6.5, 9)
SIGMA, AR_RHO, AR_SD = 0.02, 0.7, 0.01
LABELS = ("scales", "stagnates", "worsens", "inconclusive")


def run_noise(rng: np.random.Generator, m: int, sigma: float = SIGMA) -> np.ndarray:
    """ln-noise of one run's m checkpoints: independent + AR(1) component."""
    c = np.empty(m)
    c[0] = rng.normal(0.0, AR_SD)
    for t in range(1, m):
        c[t] = AR_RHO * c[t - 1] + np.sqrt(1.0 - AR_RHO**2) * AR_SD * rng.normal()
    return rng.normal(0.0, sigma, m) + c


def coverage_trial(args: tuple[int, int, int]) -> bool | None:
    """True/False: the alpha interval holds the truth; None: no interval (fit or method refused)."""
    from analysis.fit import fit_form
    from analysis.forms import SATURATING
    from analysis.intervals import interval_draws

    seed, n_runs, n_boot = args
    rng = np.random.default_rng(seed)
    e, alpha, ratio = rng.uniform(1, 3), rng.uniform(0.2, 0.6), rng.uniform(2, 6)
    a = ratio * e * X[0] ** alpha
    x = np.tile(X, n_runs)
    y = np.concatenate([(e + a * X**-alpha) * np.exp(run_noise(rng, X.size)) for _ in range(n_runs)])
    units = np.repeat([f"run{i}" for i in range(n_runs)], X.size)
    fit = fit_form(SATURATING, x, y)
    if not fit.converged:
        return None
    draws = interval_draws(SATURATING, x, y, full=fit, units=units, n_boot=n_boot, seed=seed)
    if not draws.informative:
        return None
    lo, hi = draws.ci("alpha")
    return bool(lo <= alpha <= hi)


def false_positive_trial(args: tuple[int, int, int]) -> bool:
    from analysis.compare import shared_slope_test

    seed, n, n_null = args
    rng = np.random.default_rng(seed)
    x = np.geomspace(X[0], X[-1], n)
    alpha = rng.uniform(0.1, 0.5)
    ya, yb = (amp * x**-alpha * np.exp(run_noise(rng, n)) for amp in (10.0, 20.0))
    res = shared_slope_test(x, ya, x, yb, units_a=np.repeat("a", n), units_b=np.repeat("b", n), seed=seed,
                            n_null=n_null)
    return bool(res["p_value"] is not None and res["p_value"] < 0.05)


def labelled_series(label: str, rng: np.random.Generator) -> pd.DataFrame:
    if label == "inconclusive":  # three noisy points, one run each
        x = np.geomspace(X[0], X[-1], 3)
        y = 50.0 * x**-0.05 * np.exp(rng.normal(0.0, 0.05, 3))
        return pd.DataFrame({"x": x, "y": y, "run": ["r0", "r1", "r2"]})
    u = X / X[0]
    if label == "scales":
        clean = 50.0 * u ** -rng.uniform(0.15, 0.5)
    elif label == "stagnates":
        clean = 5.0 * (1.0 + rng.uniform(1, 3) * u ** -rng.uniform(2.5, 3.5))
    else:  # U-shape about the middle of the range
        v = X / np.sqrt(X[0] * X[-1])
        clean = 10.0 * (v ** -rng.uniform(0.3, 0.5) + v ** rng.uniform(0.3, 0.5))
    return pd.DataFrame({"x": X, "y": clean * np.exp(run_noise(rng, X.size)), "run": "r0"})


def verdict_trial(args: tuple[int, str, int]) -> tuple[str, str]:
    from analysis.laws import LawSettings, fit_laws
    from analysis.table import Columns

    seed, label, n_boot = args
    frame = labelled_series(label, np.random.default_rng(seed))
    cols = Columns(x="x", y="y", y_label="y", unit="run")
    settings = LawSettings(forms=("power", "saturating", "loglinear", "broken"), n_boot=n_boot, seed=seed)
    (r,) = fit_laws(frame, cols, settings).series
    return label, r.verdict


def run_all(fn, jobs: list, workers: int) -> list:
    if workers <= 1:
        return [fn(j) for j in jobs]
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(fn, jobs, chunksize=4))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a few trials, to check the script runs (seconds)")
    p.add_argument("--trials", type=int, default=200, help="coverage trials per regime")
    p.add_argument("--fp-trials", type=int, default=400, help="family-test trials per size")
    p.add_argument("--verdict-trials", type=int, default=60, help="trials per verdict label")
    p.add_argument("--n-boot", type=int, default=200, help="interval draws per trial")
    p.add_argument("--n-null", type=int, default=199, help="simulated null series per family test")
    p.add_argument("--workers", type=int, default=2)
    a = p.parse_args(argv)
    if a.quick:
        a.trials, a.fp_trials, a.verdict_trials, a.n_boot, a.n_null = 2, 10, 1, 10, 19
    t0 = time.perf_counter()
    out = {}
    for n_runs, key in ((1, "coverage_1run"), (3, "coverage_3runs"), (10, "coverage_10runs")):
        got = run_all(coverage_trial, [(10_000 * n_runs + i, n_runs, a.n_boot) for i in range(a.trials)], a.workers)
        held = [g for g in got if g is not None]
        out[key] = sum(held) / max(len(held), 1)
        print(f"{key}: {sum(held)}/{len(held)} intervals hold alpha; {len(got) - len(held)} trials without one")
    for n in (4, 9):
        got = run_all(false_positive_trial, [(20_000 + 100 * n + i, n, a.n_null) for i in range(a.fp_trials)],
                      a.workers)
        out[f"lrt_false_positive_{n}x{n}"] = sum(got) / len(got)
        print(f"family test, {n}+{n} points, equal slopes: {sum(got)}/{len(got)} p < 0.05")
    out["lrt_false_positive"] = max(out["lrt_false_positive_4x4"], out["lrt_false_positive_9x9"])
    jobs = [(30_000 + 1000 * k + i, label, a.n_boot) for k, label in enumerate(LABELS) for i in range(a.verdict_trials)]
    got = run_all(verdict_trial, jobs, a.workers)
    for label in LABELS:
        said = [v for lab, v in got if lab == label]
        print(f"verdicts for {label}: " + ", ".join(f"{v} {said.count(v)}" for v in sorted(set(said))))
    out["verdict_accuracy"] = sum(lab == v for lab, v in got) / len(got)
    print(f"seconds: {time.perf_counter() - t0:.0f}")
    order = ("coverage_1run", "coverage_3runs", "coverage_10runs", "lrt_false_positive", "lrt_false_positive_4x4",
             "lrt_false_positive_9x9", "verdict_accuracy")
    print("RESULT " + " ".join(f"{k}={out[k]:.3f}" for k in order))


if __name__ == "__main__":
    main()
