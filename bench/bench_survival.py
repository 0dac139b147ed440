"""Benchmark: the whole survival stage on a simulated 1,000,000-patient cohort.

Generates the cohort with the demo simulator (duration form, 8 covariates),
writes it as CSV, then times each step of the stage exactly as the workflow
runs it (read + validate, Kaplan-Meier + log-rank, univariate and
multivariate Cox with PH tests for OS and PFS2, Table 1, flow) in a child
process whose peak memory is measured. As a baseline, lifelines (the
reference Python package) fits the same multivariate OS Cox model in the
same run, and the ratio is printed. Targets (issue 2): <= 60 s, < 4 GB.

Usage: python bench/bench_survival.py [--patients 1000000] [--json PATH]

``--json PATH`` also writes the targets (the benchmark contract of bench/report.py).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COVARIATES = [
    "age_at_advanced_dx",
    "hormone_receptor",
    "visceral_mets",
    "brain_mets",
    "de_novo",
    "n_metastatic_sites",
    "ecog",
    "prior_adjuvant_trastuzumab",
]
CATEGORICAL = {
    "hormone_receptor": ["positive", "negative"],
    "visceral_mets": ["no", "yes"],
    "brain_mets": ["no", "yes"],
    "de_novo": ["no", "yes"],
    "ecog": ["0", "1", "2"],
    "prior_adjuvant_trastuzumab": ["no", "yes"],
}
GROUP = dict(group="first_line_pertuzumab", group_levels=["no", "yes"])


def stage(csv_path):
    """Run the survival stage as the workflow does; print step timings as JSON."""
    from sepher.io.cohort import read_cohort
    from sepher.survival.stage import analysis_cohort, cohort_flow, cox_tables, km_tables
    from sepher.survival.table1 import characteristics

    times = {}
    start = time.perf_counter()
    endpoints = read_cohort(
        csv_path, covariates=COVARIATES, categorical_levels=CATEGORICAL, **GROUP
    )
    times["read_validate"] = time.perf_counter() - start
    t = time.perf_counter()
    km_tables(endpoints, tdm1_line=2, **GROUP)
    times["km_logrank"] = time.perf_counter() - t
    t = time.perf_counter()
    cox_tables(endpoints, tdm1_line=2, covariates=COVARIATES, categorical=CATEGORICAL, **GROUP)
    times["cox_zph"] = time.perf_counter() - t
    t = time.perf_counter()
    cohort = analysis_cohort(endpoints, GROUP["group"], GROUP["group_levels"], 2)
    characteristics(
        cohort,
        group_labels=["naive", "pretreated"],
        covariates=COVARIATES,
        categorical=CATEGORICAL,
        **GROUP,
    )
    times["table1"] = time.perf_counter() - t
    t = time.perf_counter()
    cohort_flow(
        endpoints, group_labels=["naive", "pretreated"], tdm1_line=2, by_line_max=4, **GROUP
    )
    times["flow"] = time.perf_counter() - t
    times["total"] = time.perf_counter() - start
    times["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    times["n_analysed"] = int(len(cohort))
    print(json.dumps(times))


def lifelines_baseline(csv_path):
    """Reference: lifelines CoxPHFitter (Efron) on the multivariate OS model."""
    import pandas as pd
    from lifelines import CoxPHFitter

    data = pd.read_csv(csv_path)
    data = data[data["tdm1_line"] == 2]
    design = pd.get_dummies(
        data[["first_line_pertuzumab", *COVARIATES]].astype(
            {c: str for c in [*CATEGORICAL, "first_line_pertuzumab"]}
        ),
        drop_first=True,
        dtype=float,
    )
    design["os_months"] = data["os_months"].to_numpy()
    design["os_event"] = data["os_event"].to_numpy()
    start = time.perf_counter()
    CoxPHFitter().fit(design, "os_months", "os_event")
    return time.perf_counter() - start


def ours_single_fit(csv_path):
    from sepher.io.cohort import read_cohort
    from sepher.survival.cox import fit_cox

    endpoints = read_cohort(
        csv_path, covariates=COVARIATES, categorical_levels=CATEGORICAL, **GROUP
    )
    cohort = endpoints[endpoints["tdm1_line"] == 2].copy()
    for c in CATEGORICAL:
        cohort[c] = cohort[c].astype(str)
    start = time.perf_counter()
    fit_cox(
        cohort,
        "os_months",
        "os_event",
        ["first_line_pertuzumab", *COVARIATES],
        categorical={"first_line_pertuzumab": ["no", "yes"], **CATEGORICAL},
    )
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=1_000_000)
    parser.add_argument("--stage-only", metavar="CSV", help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="also write the targets as JSON here")
    args = parser.parse_args()
    if args.stage_only:
        stage(args.stage_only)
        return
    from sepher.simulate.cohort import simulate_cohort_large

    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "cohort_large.csv"
        cohort = simulate_cohort_large(args.patients, seed=1)
        cohort["patient_id"] = [f"SIM-{i:07d}" for i in cohort["patient_id"]]
        cohort = cohort.drop(columns=["stratum", "true_os_months", "true_pfs2_months"])
        cohort.to_csv(csv_path, index=False)
        del cohort
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
        run = subprocess.run(
            [sys.executable, __file__, "--stage-only", str(csv_path)],
            capture_output=True,
            text=True,
            env=env,
        )
        if run.returncode != 0:
            sys.exit(run.stderr)
        times = json.loads(run.stdout.strip().splitlines()[-1])
        ours = ours_single_fit(csv_path)
        reference = lifelines_baseline(csv_path)
    print(f"survival stage, {args.patients:,} patients ({times['n_analysed']:,} in the Cox models)")
    for step in ("read_validate", "km_logrank", "cox_zph", "table1", "flow"):
        print(f"  {step:14s} {times[step]:7.2f} s")
    print(
        f"  {'total':14s} {times['total']:7.2f} s   (target <= 60 s: {times['total'] / 60:.2f} of budget)"
    )
    print(
        f"  peak memory    {times['peak_rss_mb']:7.0f} MB  (target < 4096 MB: {times['peak_rss_mb'] / 4096:.2f} of budget)"
    )
    print(
        f"multivariate OS Cox fit: sepher {ours:.2f} s, lifelines {reference:.2f} s "
        f"-> {reference / ours:.1f}x faster than lifelines"
    )
    if args.json:
        write_targets(args.json, args.patients, times, ours, reference)


def write_targets(path: Path, patients: int, times: dict, ours: float, reference: float) -> None:
    """The targets as JSON (bench/report.py's contract)."""
    import platform

    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.machine(),
    )
    targets = [
        {
            "name": f"survival stage in-process, {patients:,} patients",
            "measured": round(times["total"], 2),
            "unit": "s",
            "baseline": None,
            "baseline_name": None,
            "ratio": None,
            "target": "<= 60 s",
            "met": times["total"] <= 60,
        },
        {
            "name": "survival stage peak memory",
            "measured": round(times["peak_rss_mb"]),
            "unit": "MB",
            "baseline": None,
            "baseline_name": None,
            "ratio": None,
            "target": "< 4096 MB",
            "met": times["peak_rss_mb"] < 4096,
        },
        {
            "name": "multivariate OS Cox fit",
            "measured": round(ours, 2),
            "unit": "s",
            "baseline": round(reference, 2),
            "baseline_name": "lifelines CoxPHFitter, same data",
            "ratio": round(ours / reference, 3),
            "target": "<= lifelines",
            "met": ours <= reference,
        },
    ]
    path.write_text(
        json.dumps(
            {
                "benchmark": "survival",
                "command": f"PYTHONPATH=scripts .venv/bin/python bench/bench_survival.py "
                f"--patients {patients} --json PATH",
                "machine": f"{os.cpu_count()} cores, {model}",
                "targets": targets,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
