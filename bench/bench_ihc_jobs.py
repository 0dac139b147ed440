"""End-to-end throughput of the IHC scoring jobs through Snakemake (issue 18, item 2).

Simulates a folder of 16 H-DAB photomicrographs at 0.25 um per pixel, 8 of
1280 x 720 and 8 of 1920 x 1080 px (:func:`sepher.simulate.ihc_images.simulate_ihc_tile`:
4 drawn per size, designs 3+, 2+, 1+ and 0, each also mirrored left-right; 24
MP in all), written as JPEG quality 90 with PIL, and an IHC-only sample sheet.
Then runs the workflow (``snakemake --cores 1``, this checkout's Snakefile, in a
scratch directory) with the targets the 16 per-tile cell tables, twice: with
``ihc.tiles_per_job: 1`` (one job, one Python start per photo: the baseline)
and with the schema's default. Reports, per run, megapixels per second per
core from the run's wall time (parsing the workflow, the DAG, every job) and
from the sum of the scoring rules' Snakemake benchmark files (the jobs alone:
start-up, reading, scoring, writing), their ratio to the baseline of the same
run, and the target (>= 2 MP/s per core), and whether the per-tile tables of
the two runs are byte-identical. Prints, never asserts.

Every numerical library is limited to one thread. On a shared machine the
timings include waiting for the core (load average printed).

With ``--json PATH`` the targets are also written there (the benchmark
contract of ``bench/report.py``): MP/s per core of the batched run from the
job benchmarks and from the wall time, each against the one-photo-per-job
run of the same invocation as the baseline, target >= 2 MP/s per core.

Usage (from the project root)::

    PYTHONPATH=scripts .venv/bin/python bench/bench_ihc_jobs.py [--tiles-per-job 8] [--json PATH]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import csv  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import yaml  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from benchlib import machine  # noqa: E402

from sepher.io.config import fill_defaults, load_schema  # noqa: E402

PIXEL_SIZE_UM = 0.25
SHAPES = ((720, 1280), (1080, 1920))
DESIGNS = ("3+", "2+", "1+", "0-ultralow")
JPEG_QUALITY = 90
TARGET_MP_S = 2.0
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def default_tiles_per_job() -> int:
    """``ihc.tiles_per_job`` of the config schema."""
    schema = load_schema(ROOT / "config" / "schemas" / "ihc.schema.yaml")
    filled = fill_defaults({"ihc": {}}, {"type": "object", "properties": {"ihc": schema}})
    return int(filled["ihc"]["tiles_per_job"])


def write_photos(folder: Path) -> tuple[Path, float]:
    """The 16 JPEG photos and their sheet in `folder`; returns (sheet, megapixels)."""
    from PIL import Image

    from sepher.simulate.ihc_images import simulate_ihc_tile

    (folder / "ihc").mkdir(parents=True, exist_ok=True)
    rows, megapixels = [], 0.0
    for shape in SHAPES:
        for k, design in enumerate(DESIGNS):
            rng = np.random.default_rng(1000 * shape[0] + k)
            rgb, _, _ = simulate_ihc_tile(rng, design, shape=shape, pixel_size_um=PIXEL_SIZE_UM)
            for flip in (False, True):
                image_id = f"P{shape[1]}x{shape[0]}_{k}{'m' if flip else ''}"
                path = Path("ihc") / f"{image_id}.jpg"
                pixels = np.ascontiguousarray(rgb[:, ::-1] if flip else rgb)
                Image.fromarray(pixels).save(folder / path, quality=JPEG_QUALITY)
                timepoint = "pre" if k % 2 == 0 else "post"
                rows.append([image_id, str(path), "IHC", PIXEL_SIZE_UM, f"B{k // 2}", timepoint])
                megapixels += shape[0] * shape[1] / 1e6
    sheet = folder / "images.tsv"
    with open(sheet, "w", newline="") as stream:
        writer = csv.writer(stream, delimiter="\t", lineterminator="\n")
        writer.writerow(["image_id", "path", "assay", "pixel_size_um", "patient_id", "timepoint"])
        writer.writerows(rows)
    return sheet, megapixels


def run(directory: Path, sheet: Path, tiles_per_job: int, snakefile: Path) -> dict:
    """One ``snakemake --cores 1`` run making every per-tile cells table."""
    directory.mkdir(parents=True)
    with open(ROOT / "config" / "config.yaml") as stream:
        config = yaml.safe_load(stream)
    config.update(cohort=None, plates=None, images=str(sheet))
    config["ihc"].update(tiles_per_job=tiles_per_job, calibration="none")
    (directory / "config.yaml").write_text(yaml.safe_dump(config))
    with open(sheet) as stream:
        ids = [row["image_id"] for row in csv.DictReader(stream, delimiter="\t")]
    targets = [f"results/imaging/ihc_tiles/{i}_cells.csv" for i in ids]
    command = [SNAKEMAKE, "--snakefile", str(snakefile), "--directory", str(directory)]
    command += ["--configfile", str(directory / "config.yaml"), "--cores", "1", *targets]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=directory)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"snakemake failed:\n{done.stderr[-3000:]}")
    benchmarks = sorted((directory / "results" / "benchmarks" / "ihc").rglob("*.tsv"))
    job_s, jobs = 0.0, 0
    for path in benchmarks:
        if "score" not in path.parent.name:
            continue
        with open(path) as stream:
            job_s += sum(float(row["s"]) for row in csv.DictReader(stream, delimiter="\t"))
        jobs += 1
    tables = {name: hashlib.sha256((directory / name).read_bytes()).hexdigest() for name in targets}
    return {"wall": wall, "job_s": job_s, "jobs": jobs, "tables": tables}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiles-per-job", type=int, default=None, help="default: the schema's")
    ap.add_argument("--snakefile", type=Path, default=ROOT / "Snakefile")
    ap.add_argument("--json", type=Path, help="also write the targets here (bench/report.py)")
    args = ap.parse_args()
    batch = args.tiles_per_job or default_tiles_per_job()
    print(
        f"IHC scoring jobs through Snakemake (--cores 1), {PIXEL_SIZE_UM} um/px JPEG photos, "
        f"1 thread; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
        f"on {os.cpu_count()} CPUs"
    )
    with tempfile.TemporaryDirectory() as tmp:
        sheet, mp = write_photos(Path(tmp) / "photos")
        print(f"16 photos (8 x 1280 x 720, 8 x 1920 x 1080): {mp:.1f} MP")
        results = {}
        for size in (1, batch):
            label = f"tiles_per_job {size}"
            results[size] = r = run(Path(tmp) / f"run{size}", sheet, size, args.snakefile)
            base = results[1]
            for kind, seconds in (("wall time", r["wall"]), ("sum of job benchmarks", r["job_s"])):
                base_s = base["wall"] if kind == "wall time" else base["job_s"]
                rate = mp / seconds
                print(
                    f"{label} ({r['jobs']} jobs), {kind}: {seconds:.1f} s -> "
                    f"{rate:.2f} MP/s per core, {base_s / seconds:.2f} x the baseline "
                    f"(tiles_per_job 1), {rate / TARGET_MP_S:.2f} x the {TARGET_MP_S:g} MP/s target"
                )
        same = results[1]["tables"] == results[batch]["tables"]
        print(f"per-tile cells tables byte-identical (1 vs {batch} per job): {same}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        targets = []
        for kind, key in (("job benchmarks", "job_s"), ("wall time", "wall")):
            measured, baseline = mp / results[batch][key], mp / results[1][key]
            targets.append(
                {
                    "name": f"IHC photos end to end ({kind}, {batch} per job)",
                    "measured": round(measured, 3),
                    "unit": "MP/s per core",
                    "baseline": round(baseline, 3),
                    "baseline_name": "1 photo per job",
                    "ratio": round(measured / baseline, 3),
                    "target": f">= {TARGET_MP_S:g} MP/s per core",
                    "met": bool(measured >= TARGET_MP_S),
                }
            )
        command = "PYTHONPATH=scripts .venv/bin/python bench/bench_ihc_jobs.py"
        if args.tiles_per_job:
            command += f" --tiles-per-job {args.tiles_per_job}"
        record = {
            "benchmark": "ihc_jobs",
            "command": command,
            "machine": machine(),
            "targets": targets,
        }
        args.json.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
