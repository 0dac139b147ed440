"""Throughput of whole-slide HER2 scoring (``sepher.ihc.wsi.score_slide``), end to end.

For each pixel size (0.25 um, a 40x scan, and 0.5 um, a 20x scan) writes a
pyramidal JPEG-tiled TIFF (levels 1, 1/4, 1/16) whose tissue is simulated
H-DAB carcinoma
(:func:`sepher.simulate.ihc_images.simulate_ihc_tile`: four 1024^2 fields,
designs 3+, 2+, 1+ and 0, rotated and repeated) on about two thirds of the
1024 px blocks and glass elsewhere. Then times :func:`score_slide` on it in a
fresh worker process with every numerical library (and tiffslide's tile
decoder) limited to one thread: tissue mask, tile selection, reading each
tile with its halo, decoding, scoring and stitching. Prints megapixels of
scored tile cores per CPU second (per core) and per wall second against the
target of 2 MP/s (issue 16, item 7), as a ratio, with the peak resident
memory of the worker. Prints, never asserts.

Per core: pixels per CPU second of the single-threaded process, what one
core delivers even on a busy machine; wall-clock MP/s equals it on an idle
one. The halo (:func:`~sepher.ihc.scoring.tile_halo_um` on every side: 131
px at 0.25 um, 66 px at 0.5 um) is work that is not counted as scored
pixels: a 1024 px tile is scored in a 1286 px (0.25 um) or 1156 px (0.5 um)
window, 58 % or 27 % more pixels than it reports.

With ``--json PATH`` the targets are also written there (the benchmark
contract of ``bench/report.py``): per pixel size, scored MP per CPU second
against the 2 MP/s target; no baseline (the target is absolute).

Usage (from the project root)::

    .venv/bin/python bench/bench_wsi.py [--blocks 6] [--repeats 2] [--pixel-sizes 0.25 0.5]
        [--json PATH]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"
os.environ["TIFFSLIDE_NUM_DECODE_THREADS"] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from benchlib import machine  # noqa: E402

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
sys.path.insert(0, str(SCRIPTS))

TARGET_MP_S = 2.0
BLOCK_PX = 1024
TILE_PX = 512
GLASS = (236, 234, 230)
DESIGNS = ("3+", "2+", "1+", "0-null")


def _fields(pixel_size_um: float) -> list[np.ndarray]:
    """Four simulated H-DAB fields of BLOCK_PX^2 (seed 0)."""
    from sepher.simulate.ihc_images import simulate_ihc_tile

    rng = np.random.default_rng(0)
    fields = []
    for design in DESIGNS:
        out = simulate_ihc_tile(
            rng, design, shape=(BLOCK_PX, BLOCK_PX), pixel_size_um=pixel_size_um
        )
        fields.append(np.ascontiguousarray(out[0][..., :3]))
    return fields


def _is_tissue(row: int, col: int) -> bool:
    return (row + 2 * col) % 3 != 0


def write_slide(path: Path, blocks: int, fields: list[np.ndarray], pixel_size_um: float) -> int:
    """Write the ``blocks`` x ``blocks`` block slide; return the number of tissue blocks."""
    import tifffile

    size = blocks * BLOCK_PX
    glass = np.empty((BLOCK_PX, BLOCK_PX, 3), dtype=np.uint8)
    glass[:] = GLASS

    def block(row: int, col: int) -> np.ndarray:
        if not _is_tissue(row, col):
            return glass
        index = row * blocks + col
        return np.rot90(fields[index % len(fields)], index // len(fields) % 4)

    def tiles(factor: int):
        level = size // factor
        per_block = BLOCK_PX // factor
        for y in range(0, level, TILE_PX):
            for x in range(0, level, TILE_PX):
                out = np.empty((TILE_PX, TILE_PX, 3), dtype=np.uint8)
                out[:] = GLASS
                # level pixels (y .. y + TILE_PX) come from level-0 pixels * factor
                for by in range(y // per_block, min(blocks, -(-(y + TILE_PX) // per_block))):
                    for bx in range(x // per_block, min(blocks, -(-(x + TILE_PX) // per_block))):
                        src = block(by, bx)[::factor, ::factor]
                        oy, ox = by * per_block - y, bx * per_block - x
                        ys = slice(max(0, oy), min(TILE_PX, oy + per_block))
                        xs = slice(max(0, ox), min(TILE_PX, ox + per_block))
                        out[ys, xs] = src[
                            ys.start - oy : ys.stop - oy, xs.start - ox : xs.stop - ox
                        ]
                yield out

    factors = (1, 4, 16)
    with tifffile.TiffWriter(path, bigtiff=True) as writer:
        for index, factor in enumerate(factors):
            px = pixel_size_um * factor
            writer.write(
                tiles(factor),
                shape=(size // factor, size // factor, 3),
                dtype=np.uint8,
                tile=(TILE_PX, TILE_PX),
                photometric="rgb",
                compression="jpeg",
                compressionargs={"level": 90},
                subifds=len(factors) - 1 if index == 0 else None,
                subfiletype=1 if index else 0,
                resolution=(1e4 / px, 1e4 / px),
                resolutionunit="CENTIMETER",
            )
    return sum(_is_tissue(r, c) for r in range(blocks) for c in range(blocks))


def _peak_rss_mb() -> float:
    """Peak resident memory of this process image (VmHWM)."""
    import resource

    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _worker(path: str, repeats: int) -> None:
    """Time score_slide on the slide in ``path``; print one JSON line."""
    from sepher.ihc.wsi import score_slide

    score_slide(path, max_tiles=1)  # warm-up: imports, first-call costs
    cpu, wall = [], []
    for _ in range(repeats):
        start_cpu, start_wall = time.process_time(), time.perf_counter()
        cells, summary = score_slide(path)
        cpu.append(time.process_time() - start_cpu)
        wall.append(time.perf_counter() - start_wall)
    print(
        json.dumps(
            {
                "cpu_s": min(cpu),
                "wall_s": min(wall),
                "scored_mp": summary["scored_area_mm2"] / summary["pixel_size_um"] ** 2,
                "tiles": summary["n_tiles_scored"],
                "tiles_grid": summary["n_tiles_grid"],
                "cells": int(len(cells)),
                "tumour_cells": int(summary["n_tumour_cells"]),
                "duplicates": summary["n_duplicates_dropped"],
                "halo_px": summary["halo_px"],
                "peak_rss_mb": _peak_rss_mb(),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--blocks", type=int, default=6, help="slide edge in 1024 px blocks")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--pixel-sizes", type=float, nargs="+", default=[0.25, 0.5])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="also write the targets here (bench/report.py)")
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker, args.repeats)
        return
    size = args.blocks * BLOCK_PX
    print(
        f"sepher.ihc.wsi.score_slide, one thread, {size} x {size} px pyramidal JPEG TIFF; "
        f"target >= {TARGET_MP_S:g} MP/s per core"
    )
    print(
        f"{'um/px':>5} {'tiles':>10} {'MP':>6} {'cells':>6} {'CPU s':>7} {'MP/s':>6} {'ratio':>6} "
        f"{'wall s':>7} {'MP/s':>6} {'peak RSS':>9} {'halo':>5}"
    )
    targets = []
    for pixel_size_um in args.pixel_sizes:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "slide.tif"
            write_slide(path, args.blocks, _fields(pixel_size_um), pixel_size_um)
            done = subprocess.run(
                [sys.executable, __file__, "--worker", str(path), "--repeats", str(args.repeats)],
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ, "PYTHONPATH": str(SCRIPTS)},
            )
        r = json.loads(done.stdout.strip().splitlines()[-1])
        cpu_rate = r["scored_mp"] / r["cpu_s"]
        wall_rate = r["scored_mp"] / r["wall_s"]
        print(
            f"{pixel_size_um:>5.2f} {r['tiles']:>4} of {r['tiles_grid']:<3} {r['scored_mp']:>6.1f} "
            f"{r['cells']:>6} {r['cpu_s']:>7.2f} {cpu_rate:>6.2f} {cpu_rate / TARGET_MP_S:>5.2f}x "
            f"{r['wall_s']:>7.2f} {wall_rate:>6.2f} {r['peak_rss_mb']:>6.0f} MB {r['halo_px']:>5}",
            flush=True,
        )
        targets.append(
            {
                "name": f"WSI tiles at {pixel_size_um:g} um/px, score_slide (scored cores)",
                "measured": round(cpu_rate, 3),
                "unit": "MP/s per core",
                "baseline": None,
                "baseline_name": None,
                "ratio": None,
                "target": f">= {TARGET_MP_S:g} MP/s per core",
                "met": bool(cpu_rate >= TARGET_MP_S),
            }
        )
    print(
        f"best of {args.repeats} after a warm-up; MP = scored tile cores ({BLOCK_PX} px; the "
        f"halo, px per side, is scored but not counted); MP/s per CPU second (per core) and per "
        f"wall second; ratio = CPU MP/s / {TARGET_MP_S:g}"
    )
    if args.json:
        command = (
            f"PYTHONPATH=scripts .venv/bin/python bench/bench_wsi.py --blocks {args.blocks} "
            f"--repeats {args.repeats} --pixel-sizes {' '.join(f'{x:g}' for x in args.pixel_sizes)}"
        )
        record = {"benchmark": "wsi", "command": command, "machine": machine()}
        record["targets"] = targets
        args.json.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
