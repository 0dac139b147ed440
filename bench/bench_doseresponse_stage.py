"""Benchmark: the dose-response stage's fit_curves on a simulated screen.

Curves from :func:`sepher.simulate.plates.simulate_plates_large` (384-well
plates, 10 drugs per plate at 10 half-log doses in triplicate, 16 vehicle
wells), normalised as the workflow does, then :func:`fit_curves` with the
default configuration (LL.4 reported, ROUT outliers, AIC of LL.4 / LL.3 /
LL.5 / W1.4, ED10/50/90, bands). Run from the project root:

    PYTHONPATH=scripts .venv/bin/python bench/bench_doseresponse_stage.py [--curves N]

Prints curves/s on one core (BLAS threads pinned to 1; CPU time of this
process, and wall time, which other jobs on the machine inflate), and the
same for the single-curve path (``method="multistart"``: ``fit_curve`` with
10 starts per model, the stage before issue 6) on the curves of the first
``--baseline-plates`` plates, measured in this process, with the agreement
of the two on those curves. It reports numbers and never asserts.
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from sepher.doseresponse.stage import fit_curves, normalise_plates  # noqa: E402
from sepher.simulate.plates import simulate_plates_large  # noqa: E402

TEXT_COLUMNS = ("plate_id", "well", "cell_line", "condition", "drug", "concentration_unit", "role")


def timed(viability, method):
    """fit_curves with the default settings: (fits, CPU seconds, wall seconds)."""
    cpu, wall = time.process_time(), time.perf_counter()
    fits, _, _ = fit_curves(viability, method=method)
    return fits, time.process_time() - cpu, time.perf_counter() - wall


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--curves", type=int, default=2000, help="simulated curves (batch)")
    parser.add_argument(
        "--baseline-plates", type=int, default=5, help="plates (10 curves each) for the baseline"
    )
    parser.add_argument("--seed", type=int, default=279)
    args = parser.parse_args()

    plates, _ = simulate_plates_large(args.curves, seed=args.seed)
    # the workflow reads plates from CSV: identifiers are plain strings
    plates = plates.astype(dict.fromkeys(TEXT_COLUMNS, str))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        viability, _ = normalise_plates(plates)
    fit_curves(viability[viability["plate_id"] == viability["plate_id"].iloc[0]])  # warm-up

    fits, cpu, wall = timed(viability, "batch")
    n = len(fits)
    rate = n / cpu
    print(f"curves: {n} ({plates['plate_id'].nunique()} plates, {len(viability)} wells)")
    print(
        f"fit_curves (batch): {cpu:.1f} s CPU = {rate:.1f} curves/s per core "
        f"(wall {wall:.1f} s = {n / wall:.1f} curves/s)"
    )
    print(f"  converged {int(fits['converged'].sum())} / {n}; ROUT outlier wells "
          f"{int(fits['n_outliers'].sum())}; AIC-best model "
          f"{fits['aic_best_model'].value_counts().to_dict()}")  # fmt: skip

    first = sorted(viability["plate_id"].unique())[: args.baseline_plates]
    subset = viability[viability["plate_id"].isin(first)]
    base, base_cpu, base_wall = timed(subset, "multistart")
    batch_sub = fits.merge(base[["cell_line", "condition", "drug"]], how="inner")
    base_rate = len(base) / base_cpu
    print(
        f"baseline fit_curves(method='multistart') on {len(base)} curves: {base_cpu:.1f} s CPU "
        f"= {base_rate:.2f} curves/s per core (wall {base_wall:.1f} s)"
    )
    print(f"speed ratio batch / multistart: {rate / base_rate:.0f}x (per core, CPU time)")
    print(f"projected 100,000 curves on one core: {1e5 / rate / 3600:.2f} h "
          f"(multistart: {1e5 / base_rate / 3600:.1f} h)")  # fmt: skip
    keys = ["cell_line", "condition", "drug"]
    a = base.set_index(keys).sort_index()
    b = batch_sub.set_index(keys).sort_index()
    identified = (a["e_se"] / a["e"] < 1).to_numpy()  # parameters identified (SE < estimate)
    columns = ["b", "c", "d", "e", "e_se", "ic50_rel", "ic50_abs", "auc", "rss", "aic_LL4"]
    with np.errstate(all="ignore"):
        rel = ((b[columns] - a[columns]).abs() / a[columns].abs().replace(0, np.nan)).to_numpy(
            float
        )
    rel = np.where(np.isnan(a[columns].to_numpy(float)) & np.isnan(b[columns].to_numpy(float)),
                   0.0, rel)  # fmt: skip
    worst = pd.Series(np.nanmax(rel[identified], 0), index=columns)
    print(f"batch vs multistart on the {identified.sum()} curves with identified parameters, "
          "max relative difference:")  # fmt: skip
    print("  " + ", ".join(f"{k} {v:.1e}" for k, v in worst.items()))
    rss_rel = (b["rss"] - a["rss"]).to_numpy() / a["rss"].to_numpy()
    print(f"  RSS batch - multistart, relative, all {len(a)} curves: min {np.nanmin(rss_rel):+.1e}, "
          f"max {np.nanmax(rss_rel):+.1e}")  # fmt: skip


if __name__ == "__main__":
    main()
