"""Simulated HER2 IHC (DAB + hematoxylin) biopsy tiles with known per-cell classes.

The SePHER patient biopsies are not public. This module draws brightfield
RGB tiles of breast carcinoma with a known HER2 class for every tumour cell,
so the scoring in :mod:`sepher.ihc` can be checked against the truth:

* Layout: white background (glass) at one edge, tumour nests (a thresholded
  smooth random field, ~45 % of the tissue) in stroma.
* Tumour cells: centres on a jittered hexagonal grid (spacing
  ``cell_spacing_um``); each cell is its centre's Voronoi territory within
  the nest; an oval hematoxylin nucleus sits off-centre in it; cytoplasm
  carries faint hematoxylin and a trace of DAB.
* Membranes: the territory's edge carries DAB of the cell's class:
  0 none (or a fleck of <= 8 % of the circumference), 1+ faint and
  incomplete (30-70 %, two arcs), 2+ moderate and complete, 3+ intense and
  complete. Classes are spatially clustered (ranked on a smooth random
  field) and their counts per biopsy are exact.
* Stroma: pale pink / blue wavy fibres and sparse spindle nuclei.
* Optics: Beer-Lambert mixing of the stain OD vectors (perturbed per tile:
  stain variation), white level 238-250, Gaussian blur (~0.3 um) and
  Gaussian noise; 8-bit RGB.

:func:`write_demo_ihc` writes the demo study (4 patients x pre / post, 1-2
tiles per biopsy) byte-identically for a given seed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from scipy import ndimage as ndi

__all__ = [
    "DEMO_BIOPSIES",
    "simulate_ihc_tile",
    "write_demo_ihc",
]

#: Membrane DAB OD (peak, before blur) range and stained fraction of the
#: circumference per HER2 class.
CLASS_MEMBRANE = {
    0: {"od": (0.15, 0.3), "completeness": (0.0, 0.08)},
    1: {"od": (0.20, 0.32), "completeness": (0.30, 0.70)},
    2: {"od": (0.55, 0.75), "completeness": (1.0, 1.0)},
    3: {"od": (1.10, 1.50), "completeness": (1.0, 1.0)},
}

#: Demo design: per patient and timepoint the class fractions (0, 1+, 2+, 3+)
#: and the number of tiles. BX-01 falls from 3+ to 1+, BX-02 stays 3+.
DEMO_BIOPSIES = (
    ("BX-01", "pre", (0.05, 0.10, 0.25, 0.60), 2),
    ("BX-01", "post", (0.50, 0.45, 0.03, 0.02), 2),
    ("BX-02", "pre", (0.05, 0.10, 0.25, 0.60), 1),
    ("BX-02", "post", (0.10, 0.15, 0.30, 0.45), 1),
    ("BX-03", "pre", (0.10, 0.15, 0.30, 0.45), 1),
    ("BX-03", "post", (0.25, 0.35, 0.37, 0.03), 1),
    ("BX-04", "pre", (0.25, 0.35, 0.37, 0.03), 1),
    ("BX-04", "post", (0.96, 0.03, 0.01, 0.00), 2),
)

_H = np.array([0.65, 0.70, 0.29])
_DAB = np.array([0.27, 0.57, 0.78])
_EOSIN = np.array([0.07, 0.99, 0.11])


def _unit(v):
    v = np.asarray(v, float)
    return v / np.linalg.norm(v)


def _smooth_field(rng, shape, sigma_px):
    field = ndi.gaussian_filter(rng.standard_normal(shape), sigma_px, mode="wrap")
    return (field - field.mean()) / field.std()


def _exact_classes(rng, fractions, n):
    counts = np.floor(np.asarray(fractions) * n).astype(int)
    remainder = n - counts.sum()
    order = np.argsort(-(np.asarray(fractions) * n - counts), kind="stable")
    counts[order[:remainder]] += 1
    return np.repeat(np.arange(4), counts)


def simulate_ihc_tile(
    rng: np.random.Generator,
    class_fractions=(0.25, 0.25, 0.25, 0.25),
    *,
    shape: tuple[int, int] = (512, 512),
    pixel_size_um: float = 0.5,
    cell_spacing_um: float = 11.0,
    nest_fraction: float = 0.45,
    noise_sd: float = 2.0,
) -> tuple[np.ndarray, pd.DataFrame, dict[str, np.ndarray]]:
    """Draw one H-DAB tile of carcinoma with known per-cell HER2 classes.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random source (``np.random.default_rng(seed)``).
    class_fractions : sequence of 4 float
        Fractions of tumour cells in class 0, 1+, 2+, 3+ (counts are exact
        up to rounding; classes are spatially clustered).
    shape : tuple of int, default (512, 512)
        Tile size (px).
    pixel_size_um : float, default 0.5
        Pixel size (um), a 20x scan.
    cell_spacing_um : float, default 11.0
        Centre spacing of tumour cells (um).
    nest_fraction : float, default 0.45
        Fraction of the tissue in tumour nests.
    noise_sd : float, default 2.0
        Camera noise (grey levels, 8 bit).

    Returns
    -------
    rgb : ndarray of uint8, shape (H, W, 3)
    truth : DataFrame
        One row per tumour cell: ``cell_id``, ``y_um``, ``x_um`` (centre),
        ``her2_class``, ``membrane_od`` (peak DAB OD), ``membrane_completeness``.
    labels : dict
        ``"cells"`` (tumour territories), ``"nuclei"`` (tumour nuclei).
    """
    h, w = shape
    px = pixel_size_um
    yy, xx = np.mgrid[0:h, 0:w]
    # --- layout: glass at one side, nests in stroma
    side = rng.integers(4)
    ramp = [yy / h, 1 - yy / h, xx / w, 1 - xx / w][side]
    edge_noise = _smooth_field(rng, shape, 20 / px) * 0.04
    tissue = ramp + edge_noise > rng.uniform(0.06, 0.12)
    nest_field = _smooth_field(rng, shape, 22 / px)
    nest = tissue & (nest_field > np.quantile(nest_field[tissue], 1 - nest_fraction))
    nest = ndi.binary_opening(nest, iterations=3)

    # --- tumour cells on a jittered hexagonal grid
    step = cell_spacing_um / px
    rows = np.arange(-step, h + step, step * np.sqrt(3) / 2)
    centres = [
        (r, c + (0.5 * step if i % 2 else 0.0))
        for i, r in enumerate(rows)
        for c in np.arange(-step, w + step, step)
    ]
    centres = np.array(centres) + rng.uniform(-0.22, 0.22, (len(centres), 2)) * step
    inside = (centres[:, 0] >= 0) & (centres[:, 0] < h) & (centres[:, 1] >= 0) & (centres[:, 1] < w)
    centres = centres[inside]
    ci = np.clip(np.round(centres).astype(int), 0, [h - 1, w - 1])
    centres = centres[nest[ci[:, 0], ci[:, 1]]]
    n = len(centres)
    seeds = np.zeros(shape, np.int32)
    ci = np.clip(np.round(centres).astype(int), 0, [h - 1, w - 1])
    seeds[ci[:, 0], ci[:, 1]] = np.arange(1, n + 1)
    dist, (iy, ix) = ndi.distance_transform_edt(seeds == 0, return_indices=True)
    cells = seeds[iy, ix]
    cells[~nest | (dist * px > 0.75 * cell_spacing_um)] = 0

    # --- classes: exact counts, clustered on a smooth field
    cluster = _smooth_field(rng, shape, 25 / px)[ci[:, 0], ci[:, 1]] + rng.normal(0, 0.15, n)
    classes = np.empty(n, np.int8)
    classes[np.argsort(-cluster, kind="stable")] = _exact_classes(rng, class_fractions, n)[::-1]
    lut = np.array([CLASS_MEMBRANE[k]["od"] for k in range(4)])
    comp = np.array([CLASS_MEMBRANE[k]["completeness"] for k in range(4)])
    membrane_od = rng.uniform(lut[classes, 0], lut[classes, 1])
    completeness = rng.uniform(comp[classes, 0], comp[classes, 1])
    start_angle = rng.uniform(-np.pi, np.pi, n)

    # --- nuclei: ovals off-centre, kept inside the territory
    ids = np.arange(1, n + 1)
    semi_a = rng.uniform(3.4, 4.4, n + 1) / px
    semi_b = rng.uniform(2.6, 3.4, n + 1) / px
    theta = rng.uniform(0, np.pi, n + 1)
    ny = np.r_[0, centres[:, 0]] + rng.uniform(-1.0, 1.0, n + 1) / px
    nx = np.r_[0, centres[:, 1]] + rng.uniform(-1.0, 1.0, n + 1) / px
    dy, dx = yy - ny[cells], xx - nx[cells]
    ct, st = np.cos(theta[cells]), np.sin(theta[cells])
    u, v = (dx * ct + dy * st) / semi_a[cells], (-dx * st + dy * ct) / semi_b[cells]
    edge_dist = ndi.distance_transform_edt(_interior(cells)) * px
    nuclei_mask = (cells > 0) & (u**2 + v**2 <= 1) & (edge_dist > 1.2)
    nuclei = np.where(nuclei_mask, cells, 0)

    # --- membranes: inner territory edge, arcs by completeness
    membrane = (cells > 0) & ~_interior(cells)
    membrane = ndi.binary_dilation(membrane) & (cells > 0) & ~nuclei_mask
    angle = np.arctan2(yy - np.r_[0, centres[:, 0]][cells], xx - np.r_[0, centres[:, 1]][cells])
    rel = np.mod(angle - np.r_[0, start_angle][cells], np.pi) / np.pi  # two opposite arcs
    arc = rel < np.r_[0, completeness][cells]
    dab = np.zeros(shape, np.float32)
    dab[membrane & arc] = np.r_[0, membrane_od][cells][membrane & arc]
    dab = ndi.gaussian_filter(dab, 0.5 / px)
    dab += np.where(cells > 0, 0.03, 0.0).astype(np.float32)

    hematoxylin = np.zeros(shape, np.float32)
    nuc_od = rng.uniform(0.35, 0.6, n + 1)
    texture = 1 + 0.15 * _smooth_field(rng, shape, 0.8 / px)
    hematoxylin[nuclei_mask] = (nuc_od[cells] * texture)[nuclei_mask]
    cytoplasm = (cells > 0) & ~nuclei_mask
    hematoxylin += np.where(cytoplasm, 0.22, 0.0).astype(np.float32)

    # --- stroma: wavy fibres and spindle nuclei
    stroma = tissue & ~ndi.binary_dilation(cells > 0, iterations=2)
    fibre_angle = rng.uniform(0, np.pi)
    fy, fx = np.cos(fibre_angle), np.sin(fibre_angle)
    # fibres: noise smoothed along x much more than across, then rotated
    size = int(np.ceil(np.hypot(h, w))) + 2
    flat = ndi.gaussian_filter(rng.standard_normal((size, size)), (0.8 / px, 12 / px), mode="wrap")
    along = (xx - w / 2) * fx + (yy - h / 2) * fy + size / 2
    across = (xx - w / 2) * fy - (yy - h / 2) * fx + size / 2
    across = across + 3 / px * _smooth_field(rng, shape, 15 / px)  # waviness
    fibres = ndi.map_coordinates(flat, [across, along], order=1, mode="wrap")
    fibres = np.clip(0.5 + fibres / (3 * fibres.std()), 0, 1)
    eosin = np.where(stroma, 0.02 + 0.06 * fibres, 0).astype(np.float32)
    eosin += np.where(cytoplasm, 0.08, 0).astype(np.float32)
    hematoxylin += np.where(stroma, 0.02 + 0.05 * fibres, 0).astype(np.float32)
    n_spindle = int(stroma.sum() * px**2 / 700)
    sy, sx = rng.uniform(0, h, n_spindle), rng.uniform(0, w, n_spindle)
    spindle = np.zeros(shape, bool)
    for y0, x0 in zip(sy, sx, strict=True):  # few dozen stromal nuclei
        y0i, x0i = int(y0), int(x0)
        if not stroma[y0i, x0i]:
            continue
        r = int(7 / px)
        ys, xs = slice(max(0, y0i - r), y0i + r + 1), slice(max(0, x0i - r), x0i + r + 1)
        ly, lx = yy[ys, xs] - y0, xx[ys, xs] - x0
        a_, b_ = ly * fy + lx * fx, lx * fy - ly * fx
        spindle[ys, xs] |= (a_ / (6 / px)) ** 2 + (b_ / (1.6 / px)) ** 2 <= 1
    hematoxylin[spindle & stroma] = rng.uniform(0.4, 0.6)

    # --- optics: stain variation, Beer-Lambert, blur, noise
    vec_h = _unit(_H + rng.normal(0, 0.03, 3))
    vec_dab = _unit(_DAB + rng.normal(0, 0.03, 3))
    scale_h, scale_dab = rng.uniform(0.85, 1.15), rng.uniform(0.95, 1.05)
    od = (
        (scale_h * hematoxylin)[..., None] * vec_h
        + (scale_dab * dab)[..., None] * vec_dab
        + eosin[..., None] * _unit(_EOSIN)
    )
    od = ndi.gaussian_filter(od, (0.6, 0.6, 0))
    white = rng.uniform(238, 250) + np.array([0.0, -1.0, -3.0])
    intensity = white * 10.0 ** (-od) + rng.normal(0, noise_sd, od.shape)
    rgb = np.clip(np.round(intensity), 0, 255).astype(np.uint8)

    truth = pd.DataFrame(
        {
            "cell_id": ids,
            "y_um": centres[:, 0] * px,
            "x_um": centres[:, 1] * px,
            "her2_class": classes.astype(int),
            "membrane_od": np.round(membrane_od, 4),
            "membrane_completeness": np.round(completeness, 4),
        }
    )
    present = np.bincount(cells.ravel(), minlength=n + 1)[1:] > 0
    truth = truth[present].reset_index(drop=True)
    return rgb, truth, {"cells": cells.astype(np.int32), "nuclei": nuclei.astype(np.int32)}


def _interior(labels: np.ndarray) -> np.ndarray:
    """Pixels whose 4-neighbours all carry the same label (image border kept)."""
    same = np.ones(labels.shape, bool)
    d = labels[1:, :] != labels[:-1, :]
    same[1:, :] &= ~d
    same[:-1, :] &= ~d
    d = labels[:, 1:] != labels[:, :-1]
    same[:, 1:] &= ~d
    same[:, :-1] &= ~d
    return same


def write_demo_ihc(out_dir, seed: int = 20200279, pixel_size_um: float = 0.5) -> dict:
    """Write the demo IHC study: tiles, sample sheet rows, per-cell and per-biopsy truth.

    Files (relative to ``out_dir``, the ``resources/demo`` folder):
    ``images/ihc/<image_id>.png``, ``images_ihc.tsv`` (docs/data-dictionary.md ``images`` IHC
    rows, paths relative to the sheet), ``truth/ihc_truth.csv`` (per tumour
    cell) and ``truth/ihc_truth.json`` (per biopsy: true class percentages,
    H-score, ASCO/CAP category; and the design). Byte-identical for a seed.

    Parameters
    ----------
    out_dir : path
        Destination folder (created).
    seed : int
        Seed of ``np.random.default_rng``.
    pixel_size_um : float, default 0.5

    Returns
    -------
    dict
        The per-biopsy truth written to ``ihc_truth.json``.
    """
    from sepher.ihc.biopsy import score_biopsy

    out = Path(out_dir)
    (out / "images" / "ihc").mkdir(parents=True, exist_ok=True)
    (out / "truth").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sheet, truths, biopsies = [], [], []
    for patient, timepoint, fractions, n_tiles in DEMO_BIOPSIES:
        biopsy_cells = []
        for tile in range(1, n_tiles + 1):
            image_id = f"{patient}_{timepoint}_{tile}"
            rgb, truth, _ = simulate_ihc_tile(rng, fractions, pixel_size_um=pixel_size_um)
            path = Path("images") / "ihc" / f"{image_id}.png"
            Image.fromarray(rgb).save(out / path, format="PNG", compress_level=9)
            sheet.append(
                {
                    "image_id": image_id,
                    "path": path.as_posix(),
                    "assay": "IHC",
                    "pixel_size_um": pixel_size_um,
                    "patient_id": patient,
                    "timepoint": timepoint,
                }
            )
            truth.insert(0, "image_id", image_id)
            truth.insert(1, "patient_id", patient)
            truth.insert(2, "timepoint", timepoint)
            biopsy_cells.append(truth)
        cells = pd.concat(biopsy_cells, ignore_index=True)
        truths.append(cells)
        score = score_biopsy(cells)
        biopsies.append(
            {
                "patient_id": patient,
                "timepoint": timepoint,
                "n_images": n_tiles,
                "design_class_fractions": list(fractions),
                **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in score.items()},
            }
        )
    pd.DataFrame(sheet).to_csv(out / "images_ihc.tsv", sep="\t", index=False, lineterminator="\n")
    pd.concat(truths, ignore_index=True).to_csv(
        out / "truth" / "ihc_truth.csv", index=False, float_format="%.4f", lineterminator="\n"
    )
    payload = {
        "simulated": True,
        "seed": seed,
        "generator": "sepher.simulate.ihc_images.write_demo_ihc",
        "pixel_size_um": pixel_size_um,
        "class_membrane": {str(k): v for k, v in CLASS_MEMBRANE.items()},
        "biopsies": biopsies,
    }
    (out / "truth" / "ihc_truth.json").write_text(json.dumps(payload, indent=2) + "\n")
    return payload
