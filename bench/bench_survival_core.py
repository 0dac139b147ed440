"""Micro-benchmark of the survival core at cohort scale.

Simulates `n` patients (default 1,000,000) with 8 covariates (6 numeric, one
two-level and one three-level factor: 9 coefficient columns), continuous
event times (no ties) and administrative censoring, then times each piece
the survival stage calls, then a stage-like workload (2 endpoints x (one
univariate fit per term + the multivariate fit + cox_zph + residuals)).
Run from the project root:

    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/bench_survival_core.py [n]

On a shared machine, one BLAS thread is 2-3x faster than OpenBLAS's default
(its worker threads spin when the cores are busy).
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from sepher.survival.cox import concordance_counts, fit_cox  # noqa: E402
from sepher.survival.km import kaplan_meier, km_median  # noqa: E402
from sepher.survival.logrank import logrank_test  # noqa: E402
from sepher.survival.zph import cox_zph, scaled_schoenfeld  # noqa: E402


def simulate(n, seed=20200279):
    """Cohort with a known Cox structure; times in months (continuous)."""
    rng = np.random.default_rng(seed)
    data = pd.DataFrame(
        {
            "group": rng.choice(["no", "yes"], n),
            "age": rng.normal(55, 10, n),
            "sites": rng.poisson(2, n).astype(float),
            "ecog": rng.choice(["0", "1", "2"], n, p=[0.5, 0.35, 0.15]),
            "x1": rng.normal(size=n),
            "x2": rng.normal(size=n),
            "x3": rng.uniform(size=n),
            "x4": rng.exponential(size=n),
        }
    )
    lp = (
        0.4 * (data["group"] == "yes")
        + 0.02 * (data["age"] - 55)
        + 0.1 * data["sites"]
        + 0.3 * (data["ecog"] == "1")
        + 0.6 * (data["ecog"] == "2")
        + 0.2 * data["x1"]
    )
    event_time = rng.exponential(30 / np.exp(lp))
    censor = rng.uniform(12, 60, n)
    data["months"] = np.minimum(event_time, censor)
    data["event"] = (event_time <= censor).astype(int)
    return data


def timed(label, func, *args, **kwargs):
    start = time.perf_counter()
    out = func(*args, **kwargs)
    print(f"{label:<42s} {time.perf_counter() - start:7.2f} s")
    return out


def main(n=1_000_000):
    data = simulate(n)
    print(f"n = {n:,}, events = {int(data['event'].sum()):,}")
    terms = ["group", "age", "sites", "ecog", "x1", "x2", "x3", "x4"]
    categorical = {"group": ["no", "yes"], "ecog": ["0", "1", "2"]}
    for level in ("no", "yes"):
        sub = data[data["group"] == level]
        curve = timed(f"kaplan_meier (group {level})", kaplan_meier, sub["months"], sub["event"])
        timed(f"km_median (group {level})", km_median, curve)
    timed("logrank_test (2 groups)", logrank_test, data["months"], data["event"], data["group"])
    fit = timed(
        "fit_cox (8 terms, 9 columns, incl. C)",
        fit_cox,
        data,
        "months",
        "event",
        terms,
        categorical=categorical,
    )
    timed(
        "concordance_counts alone",
        concordance_counts,
        fit.time,
        fit.event,
        fit.linear_predictor,
    )
    timed("fit_cox univariate (group)", fit_cox, data, "months", "event", ["group"], categorical)
    timed("cox_zph (km)", cox_zph, fit)
    timed("scaled_schoenfeld (km)", scaled_schoenfeld, fit)
    start = time.perf_counter()
    for endpoint in range(2):
        for term in terms:
            fit_cox(data, "months", "event", [term], categorical)
        fit = fit_cox(data, "months", "event", terms, categorical)
        cox_zph(fit)
        scaled_schoenfeld(fit)
        del endpoint
    print(f"{'stage-like Cox workload (2 endpoints)':<42s} {time.perf_counter() - start:7.2f} s")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory {peak:,.0f} MB; iterations {fit.iterations}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
