"""Throughput and memory of the IF per-field path (``measure_field``).

Renders a realistic two-channel uint16 field with the demo simulator
(:func:`sepher.simulate.if_images.render_field`: cell islands, touching
nuclei, membrane HER2, vignetting, blur, camera noise) at 0.325 um per pixel
(a 20x objective on a 6.5 um-pixel sCMOS), 2048 x 2048; the 4096 x 4096
field is that field tiled 2 x 2 (rendering one that large takes a minute).
Each size is written as TIFF and measured in a fresh subprocess, with every
numerical library limited to one thread, by the workflow's own per-field
function :func:`sepher.imaging.field.measure_field` (read, QC, nuclei,
flat-field, cells, per-cell measurements) with the ``imaging`` defaults of
the config schema. Reported per size: CPU seconds (best of ``--repeats``;
on a shared machine wall time also counts waiting for the core), megapixels
per second per core and their ratio to the 5 MP/s target, and the process's
peak resident memory (VmHWM) against the 2 GB target, with the machine's
load average (other processes on a shared machine slow the CPU, caches and
memory bus). Prints, never asserts.

With ``--json PATH`` the targets are also written there (the benchmark
contract of ``bench/report.py``): per size, MP/s per core (target >= 5) and
peak memory (target <= 2048 MB); no baseline (the target is absolute).

Usage (from the project root)::

    PYTHONPATH=scripts .venv/bin/python bench/bench_imaging.py [--sizes 2048 4096] [--repeats 3]
        [--json PATH]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import tifffile  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from benchlib import machine  # noqa: E402

from sepher.imaging.field import FIELD_SETTINGS, measure_field  # noqa: E402
from sepher.io.config import fill_defaults, load_schema  # noqa: E402

PIXEL_SIZE_UM = 0.325
TARGET_MP_S = 5.0
TARGET_RSS_MB = 2048.0


def default_settings() -> dict:
    """The ``imaging`` defaults of the config schema (what the rule passes)."""
    schema = load_schema(ROOT / "config" / "schemas" / "imaging.schema.yaml")
    imaging = fill_defaults({"imaging": {}}, {"type": "object", "properties": {"imaging": schema}})
    return {key: imaging["imaging"][key] for key in FIELD_SETTINGS}


def synthetic_field(size: int, seed: int = 0) -> np.ndarray:
    """(2, size, size) uint16 field: HER2 (0) and nuclear stain (1).

    Sizes above 2048 tile the 2048 x 2048 rendering.
    """
    from sepher.simulate.if_images import render_field

    base = min(size, 2048)
    rendered = render_field(
        np.random.default_rng(seed),
        2500.0,
        0.15,
        params={"shape_px": (base, base), "pixel_size_um": PIXEL_SIZE_UM},
    )["image"]
    reps = -(-size // base)
    return np.ascontiguousarray(np.tile(rendered, (1, reps, reps))[:, :size, :size])


def field_row(path: Path) -> dict:
    return {
        "image_id": path.stem,
        "file": str(path),
        "pixel_size_um": PIXEL_SIZE_UM,
        "her2_channel": 0,
        "nuclear_channel": 1,
        "membrane_channel": -1,
        "cell_line": "bench",
        "condition": "bench",
        "replicate": 1,
    }


def _target(name, measured, unit, target, met) -> dict:
    return {
        "name": name,
        "measured": round(float(measured), 3),
        "unit": unit,
        "baseline": None,
        "baseline_name": None,
        "ratio": None,
        "target": target,
        "met": bool(met),
    }


def _peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM; ru_maxrss survives exec on
    Linux and would report the parent's peak)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(path: str, repeats: int) -> None:
    """Measure one field ``repeats`` times; print a JSON record."""
    settings = default_settings()
    row = field_row(Path(path))
    base = _peak_rss_mb()
    best_cpu, best_wall, n_cells = np.inf, np.inf, 0
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        _, _, table, _ = measure_field(row, settings)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        best_cpu, best_wall, n_cells = min(best_cpu, cpu), min(best_wall, wall), len(table)
        del table
    record = {"cpu": best_cpu, "wall": best_wall, "cells": n_cells}
    record.update(peak_mb=_peak_rss_mb(), base_mb=base)
    print(json.dumps(record))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2048, 4096])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--json", type=Path, help="also write the targets here (bench/report.py)")
    args = ap.parse_args()
    if args.child:
        _child(args.child, args.repeats)
        return
    print(
        f"measure_field, 2 channels, {PIXEL_SIZE_UM} um/px, 1 thread; "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
        f"on {os.cpu_count()} CPUs"
    )
    targets = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            # the field is made here so that its construction does not count
            path = Path(tmp) / f"field_{size}.tif"
            tifffile.imwrite(path, synthetic_field(size), photometric="minisblack")
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(path), "--repeats", str(args.repeats)],
                capture_output=True,
                text=True,
                check=True,
            )
            r = json.loads(out.stdout.strip().splitlines()[-1])
            mp = size * size / 1e6
            rate = mp / r["cpu"]
            print(
                f"{size} x {size} ({mp:.1f} MP, {r['cells']} cells): CPU {r['cpu']:.2f} s "
                f"(wall {r['wall']:.2f} s) -> {rate:.2f} MP/s per core, "
                f"{rate / TARGET_MP_S:.2f} x the {TARGET_MP_S:g} MP/s target; "
                f"peak RSS {r['peak_mb']:.0f} MB (after imports {r['base_mb']:.0f} MB), "
                f"{r['peak_mb'] / TARGET_RSS_MB:.2f} x the {TARGET_RSS_MB:.0f} MB limit"
            )
            field = f"IF field {size} x {size}"
            targets.append(
                _target(
                    f"{field}, measure_field",
                    rate,
                    "MP/s per core",
                    f">= {TARGET_MP_S:g} MP/s per core",
                    rate >= TARGET_MP_S,
                )
            )
            targets.append(
                _target(
                    f"{field}, peak memory",
                    r["peak_mb"],
                    "MB",
                    f"<= {TARGET_RSS_MB:.0f} MB",
                    r["peak_mb"] <= TARGET_RSS_MB,
                )
            )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        command = "PYTHONPATH=scripts .venv/bin/python bench/bench_imaging.py"
        command += f" --sizes {' '.join(map(str, args.sizes))} --repeats {args.repeats}"
        record = {"benchmark": "imaging", "command": command, "machine": machine()}
        record["targets"] = targets
        args.json.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
