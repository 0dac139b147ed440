"""Scale: the workflow on 10,000 IF fields, 100,000 curves and 1,000,000 patients.

For each stage, inputs are made at 1/10 of the size and at full size, the
stage's tables are computed by the real workflow (``snakemake --cores N``
with only that input configured, figures left out: a figure of 10,000 cell
lines is not a figure), and the run is measured from Snakemake's own
benchmark files. Printed per stage and size: units, wall time, jobs, peak
RSS of the largest job, throughput, and the cost per unit at full size over
that at 1/10, by wall time (includes Snakemake's own start-up and
scheduling) and by the jobs' summed CPU time (flat within 20% is the
target: 0.8-1.2). A stage's cost is a fixed part (Snakemake start-up per
job, imports, a figure-free table per stage) plus a per-unit part; where
the fixed part dominates the 1/10 run (the cohort: five jobs of a few
seconds each) the raw ratio falls below 0.8 although nothing grows
faster than the data. So each stage also runs at 1/1000 of full size to
measure the fixed part, and the marginal cost per unit,
(cost(n) - cost(1/1000)) / (n - n/1000), is compared too. At
full size, also the first start-up (``--dry-run`` while the input checks are
not yet remembered: they read every input), the DAG build alone (a second
``--dry-run``) and a no-op rerun; target < 30 s each.

Inputs (seeded, under ``--workdir``):

- IF: copies (hard links) of the 76 simulated demo fields (256 x 256 px,
  3 channels), each copy a new field of a new replicate: the per-field work
  is real, only the pixels repeat.
- Dose-response: :func:`sepher.simulate.plates.simulate_plates_large`
  (10 curves per 384-well plate, one cell line per plate, 10 doses in
  triplicate).
- Cohort: :func:`sepher.simulate.cohort.simulate_cohort_large` in the
  duration form the cohort reader accepts.

Usage (from the project root; ``make scale`` runs the full size)::

    .venv/bin/python bench/scale.py [--fraction 1] [--stages if,doseresponse,cohort]
        [--workdir /tmp/sepher-scale] [--cores 2]

``--fraction 0.1`` runs 1/10,000, 1/100 and 1/10 of the full sizes (a quick check).
Prints, never asserts.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "scripts"))
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))

#: Full sizes of the issue: IF fields, dose-response curves, patients.
FULL = {"if": 10_000, "doseresponse": 100_000, "cohort": 1_000_000}
UNITS = {"if": "fields", "doseresponse": "curves", "cohort": "patients"}
#: Rules whose outputs are each stage's tables (figures left out).
TARGETS = {
    "if": ["imaging_summarise_if"],
    "doseresponse": ["doseresponse_join"],
    "cohort": ["survival_km", "survival_cox", "survival_table1", "survival_flow"],
}
INPUT_KEY = {"if": "images", "doseresponse": "plates", "cohort": "cohort"}


def make_if_inputs(directory: Path, n_fields: int) -> Path:
    """Sample sheet of `n_fields` IF fields: hard links to the demo fields."""
    demo = PROJECT / "resources" / "demo"
    with open(demo / "images.tsv", newline="") as stream:
        reader = csv.DictReader(stream, delimiter="\t")
        columns = reader.fieldnames
        sheet = [row for row in reader if row["assay"] == "IF"]
    fields = directory / "fields"
    fields.mkdir(parents=True, exist_ok=True)
    rows, copy = [], 0
    while len(rows) < n_fields:
        copy += 1
        for row in sheet[: n_fields - len(rows)]:
            image_id = f"{row['image_id']}_c{copy:04d}"
            target = fields / f"{image_id}.ome.tif"
            if not target.exists():
                os.link(demo / row["path"], target)
            rows.append(
                {
                    **row,
                    "image_id": image_id,
                    "path": f"fields/{target.name}",
                    "replicate": f"{row['replicate']}c{copy}",
                }
            )
    path = directory / "images.tsv"
    with open(path, "w", newline="") as stream:
        writer = csv.DictWriter(stream, columns, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def make_plates(directory: Path, n_curves: int) -> Path:
    from sepher.simulate.plates import simulate_plates_large

    plates, _ = simulate_plates_large(n_curves, seed=6)
    path = directory / "plates.csv"
    plates.to_csv(path, index=False, lineterminator="\n")
    return path


def make_cohort(directory: Path, n_patients: int) -> Path:
    from sepher.simulate.cohort import simulate_cohort_large

    cohort = simulate_cohort_large(n_patients, seed=1)
    cohort["patient_id"] = [f"SIM-{i:07d}" for i in cohort["patient_id"]]
    cohort = cohort.drop(columns=["stratum", "true_os_months", "true_pfs2_months"])
    path = directory / "cohort.csv"
    cohort.to_csv(path, index=False, lineterminator="\n")
    return path


MAKERS = {"if": make_if_inputs, "doseresponse": make_plates, "cohort": make_cohort}


def write_config(directory: Path, stage: str, input_path: Path) -> Path:
    with open(PROJECT / "config" / "config.yaml") as stream:
        config = yaml.safe_load(stream)
    for key in ("cohort", "plates", "images"):
        config[key] = None
    config[INPUT_KEY[stage]] = str(input_path)
    if stage == "doseresponse":
        # the simulated screen: drugs D01..D10, one condition ("screen") per line
        config["doseresponse"].update(drug="D01", comparisons=[], figure_conditions=["screen"])
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def snakemake(
    directory: Path, *args: str, snakefile: Path | None = None
) -> tuple[float, subprocess.CompletedProcess]:
    """Run Snakemake in `directory`; `args` start with the targets (before any option).

    `snakefile` defaults to this project's (another checkout: a snapshot of it).
    """
    command = [
        SNAKEMAKE,
        *args,
        "--snakefile",
        str(snakefile or PROJECT / "Snakefile"),
        "--directory",
        str(directory),
        "--configfile",
        str(directory / "config.yaml"),
    ]
    start = time.perf_counter()
    run = subprocess.run(command, capture_output=True, text=True, cwd=directory)
    return time.perf_counter() - start, run


def benchmark_rows(directory: Path) -> list[dict]:
    """Snakemake's benchmark records (one per job): wall s, max RSS MB, CPU s."""
    rows = []
    for path in sorted((directory / "results" / "benchmarks").rglob("*.tsv")):
        with open(path) as stream:
            for record in csv.DictReader(stream, delimiter="\t"):
                rss = record["max_rss"]
                rows.append(
                    {
                        "job": str(path.relative_to(directory / "results" / "benchmarks")),
                        "s": float(record["s"]),
                        "max_rss_mb": float(rss) if rss not in ("", "-", "NA") else float("nan"),
                        "cpu_s": float(record["cpu_time"] or 0),
                    }
                )
    return rows


def run_stage(
    root: Path, stage: str, units: int, cores: str, timings: bool, snakefile: Path | None = None
) -> dict:
    directory = root / f"{stage}_{units}"
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    start = time.perf_counter()
    input_path = MAKERS[stage](directory, units)
    make_s = time.perf_counter() - start
    write_config(directory, stage, input_path)
    result = {"stage": stage, "units": units, "make_inputs_s": round(make_s, 1)}
    if timings:
        # first start-up: the input checks (not yet remembered), then the DAG;
        # then the DAG alone (checks remembered under .snakemake/)
        for name in ("startup_s", "dag_s"):
            seconds, run = snakemake(
                directory,
                *TARGETS[stage],
                "--cores",
                str(cores),
                "--dry-run",
                "--quiet",
                "rules",
                snakefile=snakefile,
            )
            if run.returncode:
                raise SystemExit(f"dry run failed:\n{run.stderr[-3000:]}")
            result[name] = round(seconds, 1)
    seconds, run = snakemake(directory, *TARGETS[stage], "--cores", str(cores), snakefile=snakefile)
    if run.returncode:
        raise SystemExit(f"{stage} run failed:\n{run.stderr[-3000:]}")
    result["wall_s"] = round(seconds, 1)
    if timings:
        noop, run = snakemake(
            directory, *TARGETS[stage], "--cores", str(cores), snakefile=snakefile
        )
        if run.returncode or "Nothing to be done" not in run.stdout + run.stderr:
            raise SystemExit(f"no-op rerun did something:\n{run.stderr[-3000:]}")
        result["noop_s"] = round(noop, 1)
    jobs = benchmark_rows(directory)
    result["jobs"] = len(jobs)
    result["cpu_s"] = round(sum(job["cpu_s"] for job in jobs), 1)
    biggest = max(jobs, key=lambda job: job["max_rss_mb"])
    result["peak_job_rss_mb"] = round(biggest["max_rss_mb"])
    result["peak_job"] = biggest["job"]
    result["per_unit_ms"] = round(1000 * result["wall_s"] / units, 3)
    result["cpu_per_unit_ms"] = round(1000 * result["cpu_s"] / units, 3)
    result["units_per_s"] = round(units / result["wall_s"], 1)
    shutil.rmtree(directory / "fields", ignore_errors=True)
    return result


def marginal(row: dict, fixed: dict, key: str) -> float:
    """Cost per unit above the fixed part measured by the 1/1000 run."""
    return (row[key] - fixed[key]) / (row["units"] - fixed["units"])


def slurm_probe_seconds() -> float | None:
    """Seconds `scontrol show config` takes here, or None without SLURM.

    The SLURM executor plugin runs it whenever Snakemake starts (whatever the
    executor). With a slurm.conf whose controller is down it waits about 9 s
    before failing, which every start-up time below would then include.
    """
    if shutil.which("scontrol") is None:
        return None
    start = time.perf_counter()
    subprocess.run(["scontrol", "show", "config"], capture_output=True, timeout=30)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fraction", type=float, default=1.0, help="of the full sizes")
    parser.add_argument("--stages", default="if,doseresponse,cohort")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/sepher-scale"))
    parser.add_argument("--cores", default="all", help="Snakemake --cores (a number or all)")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    probe = slurm_probe_seconds()
    if probe is not None and probe > 2:
        print(
            f"note: `scontrol show config` takes {probe:.1f} s here (a slurm.conf whose "
            "controller is down); Snakemake's SLURM plugin runs it at every start, so each "
            "time below includes it",
            flush=True,
        )
    results = []
    for stage in args.stages.split(","):
        full = max(1, round(FULL[stage] * args.fraction))
        small = max(1, round(full / 10))
        tiny = max(1, round(full / 1000))
        rows = []
        for units in (tiny, small, full):
            row = run_stage(args.workdir, stage, units, args.cores, timings=units == full)
            rows.append(row)
            print(json.dumps(row), flush=True)
        fixed, rows = rows[0], rows[1:]
        growth = (
            rows[1]["per_unit_ms"] / rows[0]["per_unit_ms"],
            rows[1]["cpu_per_unit_ms"] / rows[0]["cpu_per_unit_ms"],
            marginal(rows[1], fixed, "wall_s") / marginal(rows[0], fixed, "wall_s"),
            marginal(rows[1], fixed, "cpu_s") / marginal(rows[0], fixed, "cpu_s"),
        )
        results.append((stage, [fixed, *rows], growth))
    print()
    print(
        f"{'stage':<13}{'size':>10} {'unit':<9}{'wall s':>8}{'CPU s':>8}{'jobs':>6}"
        f"{'peak job MB':>12}{'units/s':>10}   cost per unit, full / (1/10): "
        "wall, CPU; marginal wall, CPU"
    )
    for stage, rows, growth in results:
        for row in rows:
            print(
                f"{stage:<13}{row['units']:>10} {UNITS[stage]:<9}{row['wall_s']:>8}"
                f"{row['cpu_s']:>8}{row['jobs']:>6}{row['peak_job_rss_mb']:>12}"
                f"{row['units_per_s']:>10}"
                + ("   " + ", ".join(f"{g:.2f}" for g in growth) if row is rows[-1] else "")
            )
        full = rows[-1]
        if "dag_s" in full:
            print(
                f"{'':<13}first start-up (input checks + DAG) {full['startup_s']} s, "
                f"DAG build {full['dag_s']} s, no-op rerun {full['noop_s']} s (target < 30 s)"
            )


if __name__ == "__main__":
    main()
