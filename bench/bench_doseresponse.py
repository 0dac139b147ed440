"""Benchmark: the workflow's many-curve LL.4 fit vs ``fit_curve`` on each curve.

Data: the 1,246 real CTRP v2 viability curves in
tests/data/doseresponse/ctrp_viability_40.tsv (17 doses, 0-40 µM; Raw 0
is the vehicle control = 1.0). Run from the project root:

    .venv/bin/python bench/bench_doseresponse.py [--baseline-every K] [--baseline-cache PATH]

Times :func:`sepher.doseresponse.fit_many` (LL.4, least squares, the call
the dose-response stage makes: profile-grid starts, batched
Levenberg-Marquardt, ``fit_curve`` multi-start fallback where the polish
fails inside the box with a finite optimum) on one core (BLAS threads
pinned to 1), with and without the fallback, and prints converged counts
and the RSS comparison; it reports ratios and never asserts. The baseline is
the single-curve reference path, :func:`sepher.doseresponse.fit_curve`
(drc's unbounded least squares from 10 starts: self-start + 3 slopes x 3
EDs), i.e. ``fit_many(method="multistart")``, in this same process (about
20 min for all curves). ``--baseline-cache PATH`` stores the baseline's
per-curve RSS and parameters in an ``.npz`` on the first run and reuses
them on later runs (same curves only), so that fit_many can be iterated on
quickly.
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from sepher.doseresponse import fit_many  # noqa: E402

CTRP = ROOT / "tests" / "data" / "doseresponse" / "ctrp_viability_40.tsv"
DOSES_UM = np.array(
    [
        0,
        0.0012,
        0.0024,
        0.0049,
        0.0097,
        0.019,
        0.039,
        0.078,
        0.16,
        0.31,
        0.62,
        1.2,
        2.5,
        5,
        10,
        20,
        40,
    ]
)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed fit_many runs (best kept)")
    parser.add_argument(
        "--baseline-every", type=int, default=1, help="baseline on every k-th curve"
    )
    parser.add_argument(
        "--baseline-cache",
        type=Path,
        default=None,
        help="npz with the baseline's per-curve RSS/params: read if present, else written",
    )
    args = parser.parse_args()

    responses = pd.read_csv(CTRP, sep="\t").iloc[:, 1:].to_numpy(float)
    n_curves = responses.shape[0]
    doses = np.broadcast_to(DOSES_UM, responses.shape).copy()
    fit_many(doses[:20], responses[:20])  # warm-up
    print(f"curves: {n_curves}")
    for fallback in (True, False):
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            fits = fit_many(doses, responses, fallback=fallback)
            times.append(time.perf_counter() - start)
        rate = n_curves / min(times)
        print(
            f"fit_many LL.4 (fallback {'on' if fallback else 'off'}): best of {args.repeats}: "
            f"{min(times):.3f} s = {rate:.0f} curves/s "
            f"(median {n_curves / np.median(times):.0f} curves/s), one core; "
            f"converged {int(fits.converged.sum())} / {n_curves}; "
            f"fallback fits {int(fits.fallback.sum())}"
        )
        if fallback:
            many, many_rate = fits, rate

    rows = np.arange(0, n_curves, args.baseline_every)
    cache = args.baseline_cache
    if cache is not None and cache.exists():
        stored = np.load(cache)
        if not np.array_equal(stored["rows"], rows):
            sys.exit(
                f"{cache} holds a baseline for other curves; delete it or change --baseline-every"
            )
        baseline_rss, baseline_ok = stored["rss"], stored["converged"]
        base_rate = float(stored["curves_per_s"])
        print(
            f"baseline fit_curve (cached in {cache}): {rows.size} curves at "
            f"{base_rate:.1f} curves/s; converged {int(baseline_ok.sum())} / {rows.size}"
        )
    else:
        start = time.perf_counter()
        single = fit_many(doses[rows], responses[rows], method="multistart")
        base_time = time.perf_counter() - start
        base_rate = rows.size / base_time
        baseline_rss, baseline_ok, baseline_params = single.rss, single.converged, single.theta
        print(
            f"baseline fit_curve: {rows.size} curves in {base_time:.1f} s = "
            f"{base_rate:.1f} curves/s; converged {int(baseline_ok.sum())} / {rows.size}"
        )
        if cache is not None:
            np.savez(
                cache,
                rows=rows,
                rss=baseline_rss,
                converged=baseline_ok,
                params=baseline_params,
                curves_per_s=base_rate,
            )
            print(f"baseline stored in {cache}")
    print(f"speed ratio fit_many / baseline: {many_rate / base_rate:.0f}x")
    many_ok = many.converged[rows]
    print(
        f"converged on the baseline's curves: fit_many {int(many_ok.sum())}, "
        f"baseline {int(baseline_ok.sum())} (ratio {many_ok.sum() / max(baseline_ok.sum(), 1):.3f}); "
        f"baseline-only {int(np.sum(baseline_ok & ~many_ok))}"
    )
    many_rss = many.rss[rows]
    rel = (many_rss - baseline_rss) / baseline_rss
    worse = int(np.sum(many_rss > baseline_rss * (1 + 1e-6)))
    better = int(np.sum(many_rss < baseline_rss * (1 - 1e-6)))
    print(f"RSS fit_many vs baseline: worst relative difference {np.nanmax(rel):+.3e}")
    print(f"curves with fit_many RSS > baseline RSS * (1 + 1e-6): {worse} / {rows.size}")
    print(f"curves with fit_many RSS < baseline RSS * (1 - 1e-6): {better} / {rows.size}")
    # one count per flag ("dropped k ..." pooled over k)
    flags = pd.Series([re.sub(r"dropped \d+", "dropped k", f) for row in many.flags for f in row])
    print(f"fit_many flags (curves with each; {sum(not row for row in many.flags)} with none):")
    print(flags.value_counts().to_string())


if __name__ == "__main__":
    main()
