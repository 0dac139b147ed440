"""Throughput and memory of the IF pipeline on a synthetic field.

Builds a two-channel uint16 field of random nuclei (channel 1) with a
membrane-bound HER2 ring around each (channel 0), writes it as TIFF, then
times read + segment_nuclei + segment_cells + measure_cells with every
numerical library limited to one thread, and reports megapixels per second
per core from the process CPU time (the best of ``--repeats`` runs; on a
shared machine wall time also counts waiting for the core) next to the wall
time.
Peak memory (VmHWM) is measured in a fresh subprocess that reads a
4096 x 4096 field from TIFF and runs the pipeline. Prints, never asserts.

Usage (from the project root)::

    .venv/bin/python bench/bench_imaging.py [--size 2048] [--mem-size 4096]
"""

from __future__ import annotations

import argparse
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import tifffile  # noqa: E402
from scipy import ndimage as ndi  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from sepher.imaging import (  # noqa: E402
    measure_cells,
    read_image,
    segment_cells,
    segment_nuclei,
)

PIXEL_SIZE_UM = 0.325  # 20x objective on a 6.5 um-pixel sCMOS
STEPS = ("read", "nuclei", "cells", "measure")


def synthetic_field(size: int, seed: int = 0) -> np.ndarray:
    """(2, size, size) uint16: HER2 membrane rings (0) and nuclei (1)."""
    rng = np.random.default_rng(seed)
    n = int(size * size * PIXEL_SIZE_UM**2 / 400)  # one cell per ~400 um^2
    centres = np.zeros((size, size), bool)
    ys, xs = rng.integers(0, size, n), rng.integers(0, size, n)
    centres[ys, xs] = True
    dist = ndi.distance_transform_edt(~centres) * PIXEL_SIZE_UM
    nuclei = np.clip(5.0 - dist, 0, 1)  # ~5 um radius discs
    nuclei = ndi.gaussian_filter(nuclei, 1.0) * 3000 + 200
    seeds, _ = ndi.label(centres)
    _, idx = ndi.distance_transform_edt(seeds == 0, return_indices=True)
    territory = seeds[idx[0], idx[1]]
    edges = ndi.maximum_filter(territory, 3) != ndi.minimum_filter(territory, 3)
    her2 = ndi.gaussian_filter(edges.astype(np.float32), 1.5) * 4000 + 150
    img = np.stack([her2, nuclei]) + rng.normal(0, 30, (2, size, size))
    return np.clip(img, 0, 65535).astype(np.uint16)


def run_pipeline(path: Path) -> dict:
    """Run read + nuclei + cells + measure once; wall and CPU seconds per step."""
    t, cpu = {}, {}
    w0, c0 = time.perf_counter(), time.process_time()

    def lap(name):
        nonlocal w0, c0
        w1, c1 = time.perf_counter(), time.process_time()
        t[name], cpu[name] = w1 - w0, c1 - c0
        w0, c0 = w1, c1

    image, px = read_image(path, PIXEL_SIZE_UM)
    lap("read")
    nuclei = segment_nuclei(image[1], px)
    lap("nuclei")
    cells = segment_cells(nuclei, image[0], px)
    lap("cells")
    table = measure_cells({"her2": image[0], "nuclear": image[1]}, nuclei, cells, px)
    lap("measure")
    t["cpu"] = cpu
    t["n_cells"] = len(table)
    return t


def _child(path: str) -> None:
    """Run the pipeline on an existing TIFF and print peak RSS (MB)."""
    base = _peak_rss_mb()
    run_pipeline(Path(path))
    print(f"{_peak_rss_mb():.0f} {base:.0f}")


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--mem-size", type=int, default=4096)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args.child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "field.tif"
        tifffile.imwrite(path, synthetic_field(args.size), photometric="minisblack")
        best = None
        for _ in range(args.repeats):
            t = run_pipeline(path)
            total = sum(t["cpu"][k] for k in STEPS)
            if best is None or total < best[0]:
                best = (total, t)
    total_cpu, t = best
    total = sum(t[k] for k in STEPS)
    mp = args.size**2 / 1e6
    print(f"field {args.size} x {args.size} ({mp:.1f} MP), 2 channels, {t['n_cells']} cells")
    print("  step       wall s   CPU s")
    for k in STEPS:
        print(f"  {k:8s} {t[k]:8.2f} {t['cpu'][k]:7.2f}")
    print(
        f"  total    {total:8.2f} {total_cpu:7.2f}  -> {mp / total_cpu:.2f} MP/s per core "
        f"(CPU time; {mp / total:.2f} MP/s wall) on 1 thread (target >= 5)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        # the field is made here so that its construction does not count
        path = Path(tmp) / "field_mem.tif"
        tifffile.imwrite(path, synthetic_field(args.mem_size), photometric="minisblack")
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(path)],
            capture_output=True,
            text=True,
            check=True,
        )
    peak, base = (float(x) for x in out.stdout.split())
    print(
        f"peak RSS of a fresh process running the pipeline on {args.mem_size} x "
        f"{args.mem_size}: {peak:.0f} MB (after imports: {base:.0f} MB; target < 2048 MB)"
    )


if __name__ == "__main__":
    main()
