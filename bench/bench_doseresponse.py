"""Benchmark: vectorised LL.4 batch fit vs a careful multi-start per-curve fit.

Data: the 1,246 real CTRP v2 viability curves in
../shared/data/doseresponse/ctrp_viability_40.tsv (17 doses, 0-40 µM; Raw 0
is the vehicle control = 1.0). Run from the project root:

    .venv/bin/python bench/bench_doseresponse.py [--baseline-every K] [--baseline-cache PATH]

Prints curves/s on one core (BLAS threads pinned to 1), converged counts and
the RSS comparison; it reports ratios and never asserts. The baseline fits
each curve with scipy ``least_squares`` (trf, the batch's box constraints)
from 10 starts (self-start + 3 slopes x 3 ED50s) via
:func:`sepher.doseresponse.fit_curve`, in this same process (about 20 min
for all curves). ``--baseline-cache PATH`` stores the baseline's per-curve
RSS and parameters in an ``.npz`` on the first run and reuses them on later
runs (same curves only), so that the batch can be iterated on quickly.
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from sepher.doseresponse import fit_curve, fit_ll4_batch  # noqa: E402

CTRP = ROOT / ".." / "shared" / "data" / "doseresponse" / "ctrp_viability_40.tsv"
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
DRC_CONVERGED = 1200  # drc 3.2-0 on these curves (project brief)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed batch runs (best kept)")
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
    fit_ll4_batch(DOSES_UM, responses[:20])  # warm-up
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        batch = fit_ll4_batch(DOSES_UM, responses)
        times.append(time.perf_counter() - start)
    batch_rate = n_curves / min(times)
    print(f"curves: {n_curves}")
    print(
        f"batch LL.4: best of {args.repeats}: {min(times):.3f} s = {batch_rate:.0f} curves/s "
        f"(median {n_curves / np.median(times):.0f} curves/s), one core"
    )
    print(
        f"batch converged: {int(batch['converged'].sum())} / {n_curves} "
        f"(drc: {DRC_CONVERGED}; ratio {batch['converged'].sum() / DRC_CONVERGED:.3f})"
    )

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
            f"baseline multi-start least_squares (cached in {cache}): {rows.size} curves at "
            f"{base_rate:.1f} curves/s; converged {int(baseline_ok.sum())} / {rows.size}"
        )
    else:
        baseline_rss = np.empty(rows.size)
        baseline_ok = np.empty(rows.size, bool)
        baseline_params = np.full((rows.size, 4), np.nan)
        start = time.perf_counter()
        for k, i in enumerate(rows):
            y = responses[i]
            xpos = DOSES_UM[np.isfinite(y) & (DOSES_UM > 0)]
            bounds = {"b": (-50.0, 50.0), "e": (xpos.min() / 1e3, xpos.max() * 1e3)}
            fit = fit_curve(DOSES_UM, y, bounds=bounds)
            baseline_rss[k] = fit.rss
            baseline_ok[k] = fit.converged
            baseline_params[k] = [fit.params[name] for name in ("b", "c", "d", "e")]
        base_time = time.perf_counter() - start
        base_rate = rows.size / base_time
        print(
            f"baseline multi-start least_squares: {rows.size} curves in {base_time:.1f} s = "
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
    print(f"speed ratio batch / baseline: {batch_rate / base_rate:.0f}x")
    batch_rss = batch["rss"].to_numpy()[rows]
    rel = (batch_rss - baseline_rss) / baseline_rss
    worse = int(np.sum(batch_rss > baseline_rss * (1 + 1e-6)))
    better = int(np.sum(batch_rss < baseline_rss * (1 - 1e-6)))
    print(f"RSS batch vs baseline: worst relative difference {np.nanmax(rel):+.3e}")
    print(f"curves with batch RSS > baseline RSS * (1 + 1e-6): {worse} / {rows.size}")
    print(f"curves with batch RSS < baseline RSS * (1 - 1e-6): {better} / {rows.size}")
    print("batch flags:")
    print(batch["flags"].replace("", "(none)").value_counts().to_string())


if __name__ == "__main__":
    main()
