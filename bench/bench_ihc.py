"""Throughput of the IHC per-cell scoring on simulated H-DAB RGB tiles.

Times :func:`sepher.ihc.score_image` (deconvolution, tissue mask, nuclei,
cells, membrane bands, epithelium, per-cell measurement and classes) with
every numerical library limited to one thread, at 1024^2, 2048^2 and 4096^2
pixels (4096^2 only when enough memory is free), and prints megapixels per
second per core against the target of 2 MP/s, as a ratio. Prints, never
asserts.

Per core: pixels per CPU second of the (single-threaded) scoring process,
which is what one core delivers even on a busy machine; wall-clock MP/s is
printed next to it and equals it on an idle one. Each size is timed in a
fresh worker process, so its peak resident memory (RSS) is the scoring's
own (plus the interpreter and the image), not the simulator's.

Tiles: 1024^2 and 2048^2 are simulated directly (``simulate_ihc_tile``, seed
0, equal class fractions); 4096^2 is the 2048^2 tile and its three
rotations as quadrants (simulating 4096^2 directly takes minutes and ~5 GB).

Usage (from the project root)::

    .venv/bin/python bench/bench_ihc.py [--sizes 1024 2048 4096] [--repeats 3]
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

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
sys.path.insert(0, str(SCRIPTS))

TARGET_MP_S = 2.0
PIXEL_SIZE_UM = 0.5
#: Peak memory of one 4096^2 run measured at ~1.1 GB; ask for twice that free.
BYTES_PER_PIXEL_NEEDED = 130


def _worker(path: str, repeats: int) -> None:
    """Time score_image on the image in ``path`` (.npy); print one JSON line."""
    from sepher.ihc import score_image

    rgb = np.load(path)
    score_image(rgb, PIXEL_SIZE_UM)  # warm-up
    cpu, wall = [], []
    for _ in range(repeats):
        start_cpu, start_wall = time.process_time(), time.perf_counter()
        cells, _, summary = score_image(rgb, PIXEL_SIZE_UM)
        cpu.append(time.process_time() - start_cpu)
        wall.append(time.perf_counter() - start_wall)
    print(
        json.dumps(
            {
                "cpu_s": min(cpu),
                "wall_s": min(wall),
                "wall_median_s": float(np.median(wall)),
                "cells": int(len(cells)),
                "tumour_cells": int(summary["n_tumour_cells"]),
                "h_score": float(summary["h_score"]),
                "peak_rss_mb": _peak_rss_mb(),
            }
        )
    )


def _peak_rss_mb() -> float:
    """Peak resident memory of this process image (VmHWM; ru_maxrss would
    include the parent's peak, which Linux carries across fork and exec)."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _free_bytes() -> int:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _tiles(sizes: list[int]):
    """Yield (size, rgb, true tumour cells) for each requested size."""
    from sepher.simulate.ihc_images import simulate_ihc_tile

    cache: dict[int, tuple[np.ndarray, int]] = {}

    def simulated(size: int) -> tuple[np.ndarray, int]:
        if size not in cache:
            rng = np.random.default_rng(0)
            rgb, truth, _ = simulate_ihc_tile(rng, (0.25,) * 4, shape=(size, size))
            cache[size] = (rgb, len(truth))
        return cache[size]

    for size in sizes:
        if size <= 2048:
            rgb, n_true = simulated(size)
        else:
            half, n_half = simulated(size // 2)
            rgb = np.concatenate(
                [
                    np.concatenate([half, np.rot90(half, 1)], axis=1),
                    np.concatenate([np.rot90(half, 2), np.rot90(half, 3)], axis=1),
                ],
                axis=0,
            )
            n_true = 4 * n_half
        yield size, np.ascontiguousarray(rgb), n_true


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker, args.repeats)
        return
    sizes = [s for s in args.sizes if s > 0]
    if any(s > 2048 and s % 2 for s in sizes):
        parser.error("sizes above 2048 must be even (built from four half-size quadrants)")
    print(
        f"sepher.ihc.score_image, one thread, {PIXEL_SIZE_UM} um/px; "
        f"target >= {TARGET_MP_S:g} MP/s per core"
    )
    header = (
        f"{'tile':>11} {'MP':>6} {'cells':>6} {'true':>6} {'CPU s':>7} {'MP/s':>6} "
        f"{'ratio':>6} {'wall s':>7} {'MP/s':>6} {'peak RSS':>9}"
    )
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        for size, rgb, n_true in _tiles(sizes):
            mp = size * size / 1e6
            need = BYTES_PER_PIXEL_NEEDED * size * size
            if need > _free_bytes():
                print(
                    f"{size:>5}x{size:<5} skipped: needs ~{need / 2**30:.1f} GB free, "
                    f"{_free_bytes() / 2**30:.1f} GB available"
                )
                continue
            path = Path(tmp) / f"tile_{size}.npy"
            np.save(path, rgb)
            done = subprocess.run(
                [sys.executable, __file__, "--worker", str(path), "--repeats", str(args.repeats)],
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ, "PYTHONPATH": str(SCRIPTS)},
            )
            path.unlink()
            r = json.loads(done.stdout.strip().splitlines()[-1])
            cpu_rate = mp / r["cpu_s"]
            wall_rate = mp / r["wall_s"]
            print(
                f"{size:>5}x{size:<5} {mp:>6.2f} {r['cells']:>6} {n_true:>6} "
                f"{r['cpu_s']:>7.3f} {cpu_rate:>6.2f} {cpu_rate / TARGET_MP_S:>5.2f}x "
                f"{r['wall_s']:>7.3f} {wall_rate:>6.2f} {r['peak_rss_mb']:>6.0f} MB",
                flush=True,
            )
    print(
        f"best of {args.repeats} after a warm-up; MP/s = megapixels per CPU second (per core) "
        f"and per wall second; ratio = CPU MP/s / {TARGET_MP_S:g}; 'true' = simulated "
        "tumour cells"
    )


if __name__ == "__main__":
    main()
