"""Benchmark: the fixed costs of the workflow (issue 18, item 3).

Measures, on this machine:

(a) the demo workflow from scratch: ``snakemake --cores 2`` with the default
    targets, in a fresh temporary working directory (the demo config with its
    inputs as absolute paths; run as tests/workflow.py runs it:
    ``--snakefile <snapshot>/Snakefile --directory <tmp> --configfile <tmp>/config.yaml``,
    where the snapshot is a copy of the project's workflow files taken at the start,
    so that edits in the checkout during the run do not rerun jobs),
    wall time, with the jobs' own wall times from Snakemake's benchmark files;
(b) a no-op rerun of the same command, wall time; the baseline is
    ``snakemake --version`` (Python plus Snakemake's own start, the floor of
    any run), timed in the same run;
(c) where start-up goes:

    - Snakemake's parse + DAG time (``snakemake -n`` once the start-up input
      checks are remembered) and the first dry run in a fresh directory (the
      checks not yet remembered); their difference is the input checks;
    - each entry script's import time as a Snakemake job pays it: a fresh
      ``python`` that runs Snakemake's script preamble imports and then the
      script's own top-level imports, minus a bare ``python -c pass``; with the
      three most expensive third-party packages (``python -X importtime``);
    - the start-up checks in-process on the demo inputs: config schema, the
      images sheet and images, the cohort read, the import graphs of every
      entry script (``library_of``);

(d) the cohort stage (rules survival_km, survival_cox, survival_table1,
    survival_flow and survival_endpoints before them) at 1,000 / 100,000 /
    1,000,000 simulated patients (bench/scale.py's generator), one Snakemake
    run per size in a temporary directory (``snakemake --cores 2``, fresh
    directory: includes Snakemake's start-up and the start-up cohort check),
    wall time.

Targets (issue 18): demo <= 45 s on 2 cores, no-op rerun <= 2 s, cohort stage
at 1,000,000 patients <= 20 s. Prints, never asserts.

Usage (from the project root)::

    .venv/bin/python bench/bench_workflow.py [--json PATH] [--cores 2]
        [--sizes 1000,100000,1000000] [--parts demo,startup,imports,cohort]
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from benchlib import machine  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "scripts"))
sys.path.insert(0, str(PROJECT / "bench"))
PYTHON = sys.executable
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
COMMAND = "PYTHONPATH=scripts .venv/bin/python bench/bench_workflow.py --json PATH"
#: The imports Snakemake's script preamble runs in every job before the script
#: (snakemake/script/__init__.py, PythonScript.generate_preamble).
PREAMBLE = "import pickle\nfrom snakemake.logging import logger\nfrom snakemake.iocontainers import Snakemake"


def demo_config(directory: Path) -> Path:
    """The demo config with its inputs as absolute paths, written in `directory`."""
    with open(PROJECT / "config" / "config.yaml") as stream:
        config = yaml.safe_load(stream)
    for key in ("cohort", "plates", "images", "plate_map", "redcap_dictionary"):
        if config.get(key):
            config[key] = str((SNAKEFILE.parent / config[key]).resolve())
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


#: Parts of the project a run reads, copied into the temporary directory first, so
#: that edits made in the checkout while the benchmark runs do not rerun jobs.
SNAPSHOT = ("Snakefile", "rules", "scripts", "config", "report", "resources", "envs")


def snapshot(root: Path) -> Path:
    """Copy the workflow's files to `root`/project; its Snakefile."""
    target = root / "project"
    for name in SNAPSHOT:
        source = PROJECT / name
        if source.is_dir():
            shutil.copytree(
                source, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
        elif source.is_file():
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target / "Snakefile"


SNAKEFILE = PROJECT / "Snakefile"  # set to the snapshot's by main()


def snakemake(directory: Path, *args: str) -> tuple[float, subprocess.CompletedProcess]:
    """Run Snakemake in `directory` on its config.yaml, with the snapshot's Snakefile;
    wall seconds and the process (bench/scale.py's runner)."""
    import scale

    return scale.snakemake(directory, *args, snakefile=SNAKEFILE)


def job_times(directory: Path) -> list[tuple[str, float, float]]:
    """(job, wall s, CPU s) of every job, from Snakemake's benchmark files."""
    jobs = []
    root = directory / "results" / "benchmarks"
    for path in sorted(root.rglob("*.tsv")):
        with open(path) as stream:
            for record in csv.DictReader(stream, delimiter="\t"):
                jobs.append(
                    (
                        str(path.relative_to(root).with_suffix("")),
                        float(record["s"]),
                        float(record["cpu_time"] or 0),
                    )
                )
    return jobs


def wall(command: list[str], repeat: int = 3, **kwargs) -> float:
    """Smallest wall time of `repeat` runs of `command` (seconds)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True, **kwargs)
        best = min(best, time.perf_counter() - start)
    return best


# --------------------------------------------------------------------------- (a), (b), (c)
def demo_runs(root: Path, cores: int) -> dict:
    """The demo from scratch, a no-op rerun, dry runs, in `root`/demo."""
    directory = root / "demo"
    directory.mkdir(parents=True)
    demo_config(directory)
    out = {}
    seconds, run = snakemake(directory, "--cores", str(cores), "--dry-run", "--quiet", "rules")
    if run.returncode:
        raise SystemExit(f"first dry run failed:\n{run.stderr[-3000:]}")
    out["first_dry_run_s"] = seconds
    seconds, run = snakemake(directory, "--cores", str(cores))
    if run.returncode:
        raise SystemExit(f"demo run failed:\n{run.stderr[-3000:]}")
    out["demo_s"] = seconds
    jobs = job_times(directory)
    out["jobs"] = len(jobs)
    out["job_wall_sum_s"] = sum(job[1] for job in jobs)
    out["job_cpu_sum_s"] = sum(job[2] for job in jobs)
    out["slowest_jobs"] = sorted(jobs, key=lambda job: -job[1])[:12]
    groups: dict[str, list[float]] = {}
    for job, seconds_, _ in jobs:
        name = job.split("/")[0] if "/" in job else job
        groups.setdefault(name, []).append(seconds_)
    out["job_groups"] = {name: (len(v), sum(v)) for name, v in sorted(groups.items())}
    seconds, run = snakemake(directory, "--cores", str(cores))
    text = run.stdout + run.stderr
    if run.returncode or "Nothing to be done" not in text:
        raise SystemExit(f"no-op rerun did something:\n{text[-3000:]}")
    out["noop_s"] = seconds
    out["dry_run_s"] = min(
        snakemake(directory, "--cores", str(cores), "--dry-run", "--quiet", "rules")[0]
        for _ in range(2)
    )
    out["snakemake_version_s"] = wall([SNAKEMAKE, "--version"])
    return out


def entry_scripts() -> list[str]:
    """The entry scripts the rules run (``script:`` directives), sorted."""
    names = set()
    for path in [PROJECT / "Snakefile", *sorted((PROJECT / "rules").glob("*.smk"))]:
        names.update(re.findall(r'"\.\./scripts/([\w]+\.py)"', path.read_text()))
    return sorted(names)


def script_imports(script: Path) -> str:
    """The top-level import statements of `script`, as source."""
    tree = ast.parse(script.read_text())
    return "\n".join(
        ast.unparse(node) for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)
    )


def import_profile(code: str, env: dict) -> list[tuple[str, float]]:
    """Third-party packages by cumulative import time (s) under ``-X importtime``.

    A package's time is that of its most expensive module import (which holds the
    package's other imports below it, most of the time); a package imported by
    another (numpy by pandas) is listed too, its time also inside the other's.
    """
    run = subprocess.run(
        [PYTHON, "-X", "importtime", "-c", code], capture_output=True, text=True, env=env
    )
    packages: dict[str, float] = {}
    for line in run.stderr.splitlines():
        match = re.match(r"import time:\s+\d+\s+\|\s+(\d+)\s+\|\s*(\S+)", line)
        if not match:
            continue
        name = match.group(2).split(".")[0]
        if (
            name in sys.stdlib_module_names
            or name.startswith("_")
            or name in ("sepher", "snakemake")
        ):
            continue
        packages[name] = max(packages.get(name, 0.0), int(match.group(1)) / 1e6)
    return sorted(packages.items(), key=lambda item: -item[1])


def imports() -> dict:
    """Per entry script: import seconds as a job pays them, and the heaviest packages."""
    env = dict(os.environ, PYTHONPATH=str(PROJECT / "scripts"), PYTHONDONTWRITEBYTECODE="1")
    bare = wall([PYTHON, "-c", "pass"], repeat=5, env=env)
    preamble = wall([PYTHON, "-c", PREAMBLE], env=env) - bare
    rows = {}
    for name in entry_scripts():
        code = PREAMBLE + "\n" + script_imports(PROJECT / "scripts" / name)
        seconds = wall([PYTHON, "-c", code], repeat=2, env=env) - bare
        heavy = [(package, round(s, 2)) for package, s in import_profile(code, env)][:3]
        rows[name] = {"import_s": seconds, "heaviest": heavy}
    return {"python_start_s": bare, "preamble_s": preamble, "scripts": rows}


def startup_checks() -> dict:
    """The start-up checks of rules/common.smk, timed in-process on the demo inputs."""
    import pandas as pd  # noqa: F401  (imported once, outside the timings)

    from sepher.io.config import check_config
    from sepher.workflow import library_modules

    with open(PROJECT / "config" / "config.yaml") as stream:
        config = yaml.safe_load(stream)
    out = {}
    start = time.perf_counter()
    check_config(
        config, PROJECT / "config" / "schemas" / "config.schema.yaml", config_file="config.yaml"
    )
    out["check_config_s"] = time.perf_counter() - start

    from sepher.io.images import check_sheet_images
    from sepher.io.samplesheet import read_sample_sheet

    sheet_path = PROJECT / config["images"]
    start = time.perf_counter()
    sheet = read_sample_sheet(sheet_path)
    check_sheet_images(sheet, sheet_path, workers=1)
    out["images_check_s"] = time.perf_counter() - start

    from sepher.io.cohort import read_cohort

    survival = config["survival"]
    start = time.perf_counter()
    read_cohort(
        PROJECT / config["cohort"],
        group=survival["group"],
        group_levels=[_level(v) for v in survival["group_levels"]],
        covariates=survival["covariates"],
        categorical_levels={
            k: [_level(v) for v in levels] for k, levels in survival["categorical"].items()
        },
    )
    out["cohort_read_s"] = time.perf_counter() - start
    start = time.perf_counter()
    for name in entry_scripts():
        library_modules(PROJECT / "scripts" / name, PROJECT / "scripts" / "sepher")
    out["library_of_s"] = time.perf_counter() - start
    return out


def _level(value):
    return {True: "yes", False: "no"}.get(value, str(value)) if isinstance(value, bool) else value


# --------------------------------------------------------------------------- (d)
def cohort_stage(root: Path, sizes: list[int], cores: int) -> dict:
    """Wall seconds of the cohort stage per size, via Snakemake (bench/scale.py)."""
    import scale

    out = {}
    for units in sizes:
        row = scale.run_stage(root, "cohort", units, str(cores), timings=False, snakefile=SNAKEFILE)
        row["job_s"] = {
            job["job"].removesuffix(".tsv"): round(job["s"], 1)
            for job in scale.benchmark_rows(root / f"cohort_{units}")
        }
        out[units] = row
        print(
            f"  cohort stage, {units:>9,} patients: {row['wall_s']:6.1f} s wall, "
            f"{row['cpu_s']:6.1f} s job CPU, {row['jobs']} jobs",
            flush=True,
        )
        print("      jobs (s): " + ", ".join(f"{k} {v}" for k, v in row["job_s"].items()))
        shutil.rmtree(root / f"cohort_{units}", ignore_errors=True)
    return out


# --------------------------------------------------------------------------- report
def target(name, measured, unit, limit, baseline=None, baseline_name=None) -> dict:
    return {
        "name": name,
        "measured": round(measured, 2),
        "unit": unit,
        "baseline": None if baseline is None else round(baseline, 2),
        "baseline_name": baseline_name,
        "ratio": None if baseline is None else round(measured / baseline, 2),
        "target": f"<= {limit:g} {unit}",
        "met": bool(measured <= limit),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the targets as JSON here")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--sizes", default="1000,100000,1000000", help="cohort sizes")
    parser.add_argument(
        "--parts", default="demo,startup,imports,cohort", help="which measurements to run"
    )
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    load = os.getloadavg()
    print(
        f"machine: {machine()}; load average at start {load[0]:.2f} "
        "(other processes on the cores make every time here longer)",
        flush=True,
    )
    targets, result = [], {}
    with tempfile.TemporaryDirectory(prefix="sepher-bench-workflow-") as tmp:
        root = Path(tmp)
        global SNAKEFILE
        if parts & {"demo", "cohort"}:
            SNAKEFILE = snapshot(root)
        if "demo" in parts:
            demo = result["demo"] = demo_runs(root, args.cores)
            print(
                f"(a) demo workflow, --cores {args.cores}: {demo['demo_s']:.1f} s wall, "
                f"{demo['jobs']} jobs, summed job wall {demo['job_wall_sum_s']:.1f} s, "
                f"CPU {demo['job_cpu_sum_s']:.1f} s"
            )
            for name, (count, seconds) in demo["job_groups"].items():
                print(f"      {name:<14} {count:3d} jobs {seconds:7.1f} s")
            print(
                "      slowest jobs: "
                + ", ".join(f"{j} {s:.1f}" for j, s, _ in demo["slowest_jobs"])
            )
            print(
                f"(b) no-op rerun: {demo['noop_s']:.2f} s "
                f"(snakemake --version: {demo['snakemake_version_s']:.2f} s)"
            )
            print(
                f"(c) snakemake -n (checks remembered): {demo['dry_run_s']:.2f} s; first dry run "
                f"(checks run): {demo['first_dry_run_s']:.2f} s",
                flush=True,
            )
            targets.append(target("demo workflow wall", demo["demo_s"], "s", 45))
            targets.append(
                target(
                    "no-op rerun wall",
                    demo["noop_s"],
                    "s",
                    2,
                    demo["snakemake_version_s"],
                    "snakemake --version",
                )
            )
        if "startup" in parts:
            checks = result["startup"] = startup_checks()
            print(
                "(c) start-up checks in-process: "
                + ", ".join(f"{k[:-2]} {v:.2f} s" for k, v in checks.items()),
                flush=True,
            )
        if "imports" in parts:
            found = result["imports"] = imports()
            print(
                f"(c) imports per job: python start {found['python_start_s']:.2f} s, "
                f"Snakemake preamble {found['preamble_s']:.2f} s, then per script:"
            )
            for name, row in sorted(found["scripts"].items(), key=lambda kv: -kv[1]["import_s"]):
                heavy = ", ".join(f"{p} {s:.2f}" for p, s in row["heaviest"])
                print(f"      {name:<32} {row['import_s']:5.2f} s   ({heavy})", flush=True)
        if "cohort" in parts:
            sizes = [int(s) for s in args.sizes.split(",")]
            print("(d) cohort stage via snakemake --cores", args.cores, "in a temporary directory")
            stage = result["cohort"] = cohort_stage(root, sizes, args.cores)
            if 1_000_000 in stage:
                fixed = stage[min(sizes)]["wall_s"] if min(sizes) < 1_000_000 else None
                targets.append(
                    target(
                        "cohort stage, 1,000,000 patients",
                        stage[1_000_000]["wall_s"],
                        "s",
                        20,
                        fixed,
                        f"cohort stage, {min(sizes):,} patients" if fixed else None,
                    )
                )
    for t in targets:
        print(
            f"target {t['name']}: {t['measured']} {t['unit']} ({t['target']}: "
            f"{'met' if t['met'] else 'NOT met'})"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "benchmark": "workflow",
                    "command": COMMAND,
                    "machine": machine(),
                    "load_average": round(load[0], 2),
                    "targets": targets,
                    "details": result,
                },
                indent=2,
                default=str,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
