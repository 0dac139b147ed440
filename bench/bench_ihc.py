"""Throughput of the IHC per-cell scoring on simulated H-DAB RGB tiles.

Times :func:`sepher.ihc.score_image` (deconvolution, tissue mask, nuclei,
cells, membrane bands, epithelium, per-cell measurement and classes) with
every numerical library limited to one thread, on simulated tiles, and prints
megapixels per second per core. Prints, never asserts (target >= 2 MP/s).

Usage (from the project root)::

    .venv/bin/python bench/bench_ihc.py [--size 1024] [--repeats 3]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from sepher.ihc import score_image  # noqa: E402
from sepher.simulate.ihc_images import simulate_ihc_tile  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=1024, help="tile edge (px)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rgb, truth, _ = simulate_ihc_tile(rng, (0.25, 0.25, 0.25, 0.25), shape=(args.size, args.size))
    score_image(rgb, 0.5)  # warm-up
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        cells, _, _ = score_image(rgb, 0.5)
        times.append(time.perf_counter() - start)
    best = min(times)
    mp = args.size * args.size / 1e6
    print(
        f"tile {args.size}x{args.size} ({mp:.2f} MP), {len(cells)} cells detected "
        f"({len(truth)} true tumour cells)"
    )
    print(
        f"score_image best of {args.repeats}: {best:.3f} s -> {mp / best:.2f} MP/s per core "
        f"(median {np.median(times):.3f} s; target >= 2 MP/s)"
    )


if __name__ == "__main__":
    main()
