"""Simulated HER2 IHC (DAB + hematoxylin) photomicrographs with known per-cell truth.

The SePHER patient biopsies are not public. This module draws brightfield
tiles of invasive breast carcinoma as a 40x camera photograph shows them, with
the HER2 membrane state of every tumour cell known from the simulation
parameters, so that :mod:`sepher.ihc` can be checked against a truth it had no
part in. The model deliberately shares none of the analysis's assumptions
(issue 16, item 6):

* **Counterstain.** Hematoxylin only (HER2 IHC has no eosin). Tumour nuclei
  are pale and vesicular (chromatin texture, a darker nuclear rim, nucleoli);
  stroma is pale blue-grey wavy fibres with sparse spindle nuclei and
  lymphocytes.
* **Stain vectors.** Drawn per image *away* from the analysis defaults
  (:data:`sepher.ihc.deconvolution.HEMATOXYLIN_RGB_OD`, ``DAB_RGB_OD``): each
  is rotated by 5-12 degrees about a random axis; stain amounts vary per image.
* **Optics.** Beer-Lambert transmission, a glass level of 205-235 (never 255),
  a yellow-brown white-balance cast (R, G, B multiplied by 1, 0.93-0.97,
  0.80-0.90), mild vignetting, optical blur (~0.35 um), shot-like camera noise;
  :func:`write_demo_ihc` stores the tiles as JPEG (quality 80-92, 4:2:0).
* **Cells.** Centres from a hard-core (Matern-like) process with per-cell
  radii (log-normal, CV ~20 %) by random sequential adsorption; territories
  are the power (Laguerre) diagram of the centres on a smoothly warped
  plane, so cells are irregular polygons with curved borders and varied
  sizes, clipped at 1.6 radii (nest edges). Nests are an irregular,
  two-scale thresholded random field.
* **HER2 membrane state** per tumour cell (:data:`MEMBRANE_STATES`): an
  intensity level (none / faint / weak-to-moderate / intense, the names of
  :data:`sepher.ihc.rules.INTENSITY_LABELS`) and complete (circumferential,
  93-100 % of the circumference) or incomplete (1-3 arcs covering 20-65 %).
  The membrane DAB is drawn as an *excess over the cell interior*: the cell
  first carries a diffuse cytoplasmic DAB tint (HER2-0 / 1+ tumours: OD
  0.03-0.12 per image; 2+ / 3+: 0-0.05), the nucleus 70-100 % of it, and the
  membrane line adds :data:`LEVEL_MEMBRANE_OD` on top, granular along its
  length. States are spatially clustered (heterogeneity) and their counts
  per tile are exact for the design mixture.
* **Distractors.** A duct of DCIS (tumour cells inside a myoepithelial rim of
  flattened, HER2-negative cells, sometimes with a lumen); its cells are
  flagged ``invasive = False`` in the truth and must not be scored. Necrosis:
  eosin-free granular debris with pyknotic nuclear fragments and
  nonspecific DAB trapped in it; no cells.

Truth comes from the simulation parameters only (this module imports nothing
of the scorer). A biopsy's ASCO/CAP 2018 category is a *design parameter*
(:data:`DESIGN_MIXTURES`: per-category mixtures of membrane states chosen so
the category is unambiguous, away from the 10 % cut-offs), checked against
the guideline text applied to the realised per-cell truth.

Membrane OD scale (:data:`LEVEL_MEMBRANE_OD`). The value drawn per cell is
the mean DAB OD, in excess of the cell's interior, of the 1 um band inside
the cell edge (the quantity the scorer measures, before blur and JPEG); the
line's peak OD is ~1.8 times higher. Faint 0.06-0.12, weak-to-moderate
0.15-0.28, intense 0.33-0.60. On the issue's real 40x photographs the
image-level membrane-minus-nucleus DAB excess is ~0 in HER2-0 and 0.05-0.34
in 1+ to 3+, with a nuclear "DAB" of ~0.2 from the colour cast. These
ranges, weighted by the design mixtures and the stained fraction of the
circumference, give that span: measured on JPEG tiles with the default
vectors and I0 = 255 (1 um band inside the true cell edge minus the true
nucleus, mean over invasive cells), the excess is 0.01-0.03 for HER2-0,
0.03-0.04 for 1+, ~0.11 for 2+ and 0.21-0.27 for 3+, and the nuclear DAB of
HER2-0 tiles 0.13-0.22. Gaps between the levels (0.12-0.15, 0.28-0.33) leave
room for thresholds.

:func:`write_demo_ihc` writes the demo study (4 patients x pre / post, every
ASCO/CAP category and HER2-null / HER2-ultralow, 1-2 tiles per biopsy,
``reference_score`` on half the biopsies) byte-identically for a seed.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

from sepher.ihc.deconvolution import DAB_RGB_OD, HEMATOXYLIN_RGB_OD
from sepher.ihc.rules import ASCO_CAP_LABELS, HER2_2023_LABELS, INTENSITY_LABELS

__all__ = [
    "DEMO_BIOPSIES",
    "DESIGN_CATEGORIES",
    "DESIGN_MIXTURES",
    "LEVEL_MEMBRANE_OD",
    "MEMBRANE_STATES",
    "encode_jpeg",
    "her2_class_of",
    "simulate_ihc_tile",
    "truth_summary",
    "write_demo_ihc",
]

#: Membrane states of a tumour cell: (name, intensity level 0-3, complete).
MEMBRANE_STATES = (
    ("none", 0, False),
    ("faint_incomplete", 1, False),
    ("faint_complete", 1, True),
    ("weak_moderate_incomplete", 2, False),
    ("weak_moderate_complete", 2, True),
    ("intense_incomplete", 3, False),
    ("intense_complete", 3, True),
)
_STATE_NAMES = tuple(s[0] for s in MEMBRANE_STATES)
_STATE_LEVEL = np.array([s[1] for s in MEMBRANE_STATES], np.int8)
_STATE_COMPLETE = np.array([s[2] for s in MEMBRANE_STATES], bool)

#: Membrane DAB OD per intensity level: mean OD of the 1 um band inside the
#: cell edge in excess of the cell interior (see the module docstring).
LEVEL_MEMBRANE_OD = {0: (0.0, 0.0), 1: (0.06, 0.12), 2: (0.15, 0.28), 3: (0.33, 0.60)}
#: Stained fraction of the circumference: incomplete (1-3 arcs) or complete.
COMPLETENESS = {"incomplete": (0.20, 0.65), "complete": (0.93, 1.0)}

#: Fractions of invasive tumour cells per membrane state (order of
#: :data:`MEMBRANE_STATES`) for each design category. 3+: >= 40 % complete
#: intense; 2+: >= 30 % complete weak-to-moderate, < 3 % complete intense;
#: 1+: >= 40 % faint incomplete, < 3 % complete; HER2-ultralow: 5 % faint
#: incomplete; HER2-null: no membrane staining. Moderate-to-intense incomplete
#: ("unusual pattern") cells stay <= 4 % everywhere.
DESIGN_MIXTURES = {
    "3+": (0.05, 0.07, 0.03, 0.02, 0.28, 0.02, 0.53),
    "2+": (0.17, 0.22, 0.06, 0.02, 0.50, 0.01, 0.02),
    "1+": (0.45, 0.50, 0.015, 0.02, 0.01, 0.005, 0.0),
    "0-ultralow": (0.95, 0.05, 0.0, 0.0, 0.0, 0.0, 0.0),
    "0-null": (1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
}
#: Design category -> (ASCO/CAP 2018 score 0-3, 2023 label).
DESIGN_CATEGORIES = {
    "3+": (3, HER2_2023_LABELS[4]),
    "2+": (2, HER2_2023_LABELS[3]),
    "1+": (1, HER2_2023_LABELS[2]),
    "0-ultralow": (0, HER2_2023_LABELS[1]),
    "0-null": (0, HER2_2023_LABELS[0]),
}

#: Demo design: (patient, timepoint, design category, tiles, has reference score).
#: Loss of HER2 after trastuzumab + pertuzumab in BX-01 (3+ -> 1+), BX-03
#: (3+ -> HER2-ultralow) and BX-04 (1+ -> HER2-null); BX-02 stays 2+. The
#: reference-scored half (a calibration set) holds one biopsy of each score.
DEMO_BIOPSIES = (
    ("BX-01", "pre", "3+", 2, True),
    ("BX-01", "post", "1+", 2, False),
    ("BX-02", "pre", "2+", 1, True),
    ("BX-02", "post", "2+", 1, False),
    ("BX-03", "pre", "3+", 1, False),
    ("BX-03", "post", "0-ultralow", 2, False),
    ("BX-04", "pre", "1+", 1, True),
    ("BX-04", "post", "0-null", 2, True),
)

_GREY = np.full(3, 1 / np.sqrt(3))  # unstained tissue: neutral absorption / scatter


def _unit(v):
    v = np.asarray(v, float)
    return v / np.linalg.norm(v)


def _smooth_field(rng, shape, sigma_px):
    """Gaussian-smoothed white noise scaled to mean 0, SD 1. Wide kernels are
    filtered on a grid coarser by ``sigma_px / 4`` and interpolated back."""
    step = max(1.0, sigma_px / 4)
    if step == 1.0:
        field = ndi.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma_px)
    else:
        small = tuple(int(np.ceil(n / step)) + 2 for n in shape)
        coarse = ndi.gaussian_filter(rng.standard_normal(small).astype(np.float32), 4.0)
        axes = [np.arange(n, dtype=np.float32) / step for n in shape]
        yy, xx = np.meshgrid(*axes, indexing="ij")
        field = ndi.map_coordinates(coarse, [yy, xx], order=1)
    return (field - field.mean()) / field.std()


def _rotate_away(rng, vector, degrees):
    """``vector`` (unit) turned by ``degrees`` about a random perpendicular axis,
    all components kept positive (an OD vector absorbs in every channel)."""
    v = _unit(vector)
    t = np.deg2rad(degrees)
    for _ in range(100):
        axis = rng.standard_normal(3)
        axis = _unit(axis - axis.dot(v) * v)
        out = v * np.cos(t) + np.cross(axis, v) * np.sin(t)
        if out.min() > 0.05:
            return out
    raise RuntimeError("could not rotate the stain vector within the positive octant")


def _state_fractions(design) -> np.ndarray:
    """Per-state fractions from a design category, 7 state or 4 class fractions."""
    if isinstance(design, str):
        if design not in DESIGN_MIXTURES:
            raise ValueError(f"unknown design category {design!r}: one of {list(DESIGN_MIXTURES)}")
        return np.asarray(DESIGN_MIXTURES[design], float)
    values = np.asarray(design, float)
    if values.shape == (4,):  # older per-class fractions: 0, 1+, 2+, 3+
        out = np.zeros(len(MEMBRANE_STATES))
        out[[0, 1, 4, 6]] = values
    elif values.shape == (len(MEMBRANE_STATES),):
        out = values
    else:
        raise ValueError("design must be a category name, 4 class or 7 state fractions")
    if (out < 0).any() or not np.isclose(out.sum(), 1.0, atol=1e-6):
        raise ValueError("fractions must be >= 0 and sum to 1")
    return out


def _exact_counts(fractions, n) -> np.ndarray:
    """Largest-remainder integer counts of ``n`` items (ties by order)."""
    fractions = np.asarray(fractions, float)
    counts = np.floor(fractions * n).astype(int)
    order = np.argsort(-(fractions * n - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    return counts


def her2_class_of(level, complete) -> np.ndarray:
    """Per-cell ASCO/CAP 2018 wording: 3 intense complete; 2 weak-to-moderate
    complete, or moderate-to-intense incomplete (unusual pattern, equivocal);
    1 faint / barely perceptible (complete or not); 0 none."""
    level = np.asarray(level)
    complete = np.asarray(complete, bool)
    return np.select(
        [(level == 3) & complete, level >= 2, level == 1], [3, 2, 1], default=0
    ).astype(np.int8)


def _pick_site(rng, allowed, margin_px):
    """A random pixel of ``allowed`` at least ``margin_px`` from its outside."""
    inner = ndi.distance_transform_edt(allowed) > margin_px
    idx = np.flatnonzero(inner)
    if idx.size == 0:
        return None
    return np.unravel_index(idx[rng.integers(idx.size)], allowed.shape)


def _rsa_centres(rng, region, mean_radius_px, max_candidates):
    """Random sequential adsorption of discs of log-normal radius inside ``region``."""
    idx = np.flatnonzero(region)
    if idx.size == 0:
        return np.zeros((0, 2)), np.zeros(0)
    pick = idx[rng.integers(idx.size, size=max_candidates)]
    cand = np.column_stack(np.unravel_index(pick, region.shape)).astype(float)
    cand += rng.uniform(-0.5, 0.5, cand.shape)
    radii = mean_radius_px * np.clip(np.exp(rng.normal(0, 0.2, max_candidates)), 0.65, 1.5)
    kept, kept_r = np.empty((max_candidates, 2)), np.empty(max_candidates)
    n = 0
    for p, r in zip(cand, radii, strict=True):
        if n:
            d2 = ((kept[:n] - p) ** 2).sum(1)
            if (d2 < (0.72 * (kept_r[:n] + r)) ** 2).any():
                continue
        kept[n], kept_r[n] = p, r
        n += 1
    return kept[:n], kept_r[:n]


def _within(mask: np.ndarray, radius_px: float) -> np.ndarray:
    """Pixels within ``radius_px`` of ``mask`` (a dilation by a disc); empty if ``mask`` is."""
    if not mask.any():
        return np.zeros(mask.shape, bool)
    return ndi.distance_transform_edt(~mask) <= radius_px


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


def _stamp_ellipses(shape, centres, semi_major, semi_minor, angles):
    """Boolean mask of filled ellipses (centres in px, axes in px, angle of the major)."""
    mask = np.zeros(shape, bool)
    h, w = shape
    for (y0, x0), a, b, t in zip(centres, semi_major, semi_minor, angles, strict=True):
        r = int(np.ceil(a)) + 1
        y1, y2 = max(0, int(y0) - r), min(h, int(y0) + r + 1)
        x1, x2 = max(0, int(x0) - r), min(w, int(x0) + r + 1)
        if y1 >= y2 or x1 >= x2:
            continue
        ly, lx = np.mgrid[y1:y2, x1:x2]
        ly, lx = ly - y0, lx - x0
        u = (lx * np.cos(t) + ly * np.sin(t)) / a
        v = (-lx * np.sin(t) + ly * np.cos(t)) / b
        mask[y1:y2, x1:x2] |= u * u + v * v <= 1
    return mask


def simulate_ihc_tile(
    rng: np.random.Generator,
    class_fractions="2+",
    *,
    shape: tuple[int, int] = (768, 1024),
    pixel_size_um: float = 0.25,
    cell_spacing_um: float = 15.0,
    nest_fraction: float = 0.5,
    noise_sd: float | None = None,
    dcis: bool | None = None,
    necrosis: bool | None = None,
    dcis_category=None,
    return_params: bool = False,
):
    """Draw one H-DAB photomicrograph of carcinoma with known per-cell HER2 truth.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random source (``np.random.default_rng(seed)``).
    class_fractions : str or sequence of float, default "2+"
        The design: a key of :data:`DESIGN_MIXTURES` ("3+", "2+", "1+",
        "0-ultralow", "0-null"), 7 fractions over :data:`MEMBRANE_STATES`, or
        (older form) 4 fractions of classes 0, 1+, 2+, 3+ (read as none,
        faint incomplete, weak-to-moderate complete, intense complete).
        Counts of invasive cells per state are exact up to rounding.
    shape : tuple of int, default (768, 1024)
        Tile size (px).
    pixel_size_um : float, default 0.25
        Pixel size (um), a 40x camera photograph.
    cell_spacing_um : float, default 15.0
        Mean tumour-cell diameter (um).
    nest_fraction : float, default 0.5
        Fraction of the tissue (outside duct and necrosis) in tumour nests.
    noise_sd : float, optional
        Camera noise at the glass level (8-bit grey levels); default drawn
        per image from 1.5-3.0.
    dcis, necrosis : bool, optional
        Include a DCIS duct / a focus of necrosis; default drawn per image
        (probability 0.5 each).
    dcis_category : str or sequence, optional
        Design of the DCIS cells (as ``class_fractions``); default the
        invasive design (DCIS and invasive HER2 status usually agree).
    return_params : bool, default False
        Also return the drawn image parameters.

    Returns
    -------
    rgb : ndarray of uint8, shape (H, W, 3)
        The image before JPEG compression (see :func:`encode_jpeg`).
    truth : DataFrame
        One row per cell in ``labels["cells"]``: ``cell_id``, ``compartment``
        (invasive, dcis, myoepithelial), ``invasive``, ``y_um``, ``x_um``
        (generating centre), ``area_um2``, ``state``, ``intensity_level``
        (0-3), ``intensity_label``, ``membrane_od`` (band-mean DAB excess over
        the interior), ``membrane_completeness``, ``complete``,
        ``unusual_pattern``, ``her2_class`` (per-cell ASCO/CAP wording),
        ``cytoplasm_dab_od`` (diffuse tint).
    labels : dict
        ``"cells"``, ``"nuclei"`` (int32, nucleus k in cell k), and boolean
        masks ``"glass"``, ``"dcis"`` (duct with its rim), ``"necrosis"``.
    params : dict
        Only with ``return_params``: stain vectors and their angles to the
        analysis defaults, white-balance cast, glass level, tint, noise.
    """
    h, w = shape
    px = pixel_size_um

    def um(v):
        return v / px

    mixture = _state_fractions(class_fractions)
    dcis_mixture = mixture if dcis_category is None else _state_fractions(dcis_category)
    low_design = mixture[_STATE_LEVEL >= 2].sum() < 0.2  # a HER2-0 / 1+ tumour
    if dcis is None:
        dcis = bool(rng.random() < 0.5)
    if necrosis is None:
        necrosis = bool(rng.random() < 0.5)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)

    # --- layout: glass at one edge, optional necrosis and duct, nests in stroma
    side = rng.integers(4)
    ramp = [yy / h, 1 - yy / h, xx / w, 1 - xx / w][side]
    glass = ramp + 0.03 * _smooth_field(rng, shape, um(12)) < rng.uniform(0.06, 0.12)
    tissue = ~glass
    free = tissue.copy()
    necrosis_mask = np.zeros(shape, bool)
    if necrosis:
        site = _pick_site(rng, tissue, um(35))
        if site is not None:
            radius = um(rng.uniform(20, 30))
            dist = np.hypot(yy - site[0], xx - site[1]) / radius
            necrosis_mask = tissue & (dist + 0.25 * _smooth_field(rng, shape, um(5)) < 1)
            free &= ~necrosis_mask
    duct = rim = lumen = np.zeros(shape, bool)
    duct_info = None
    if dcis:
        away = free & ~_within(necrosis_mask, um(10))
        site = _pick_site(rng, away, um(50))
        if site is not None:
            a_ax, ratio, turn = rng.uniform(40, 55), rng.uniform(0.75, 0.95), rng.uniform(0, np.pi)
            dy, dx = yy - site[0], xx - site[1]
            u = (dx * np.cos(turn) + dy * np.sin(turn)) / um(a_ax)
            v = (-dx * np.sin(turn) + dy * np.cos(turn)) / um(a_ax * ratio)
            rr = np.sqrt(u * u + v * v) + 0.04 * _smooth_field(rng, shape, um(6))
            duct = free & (rr < 1)
            rim = duct & (ndi.distance_transform_edt(duct) * px <= 3.5)
            if rng.random() < 0.5:
                lumen = duct & (rr < rng.uniform(0.2, 0.35))
            free &= ~(rr < 1 + um(6) / um(a_ax))  # periductal stroma
            duct_info = (site, a_ax, ratio, turn)
    nest_field = 0.8 * _smooth_field(rng, shape, um(20)) + 0.45 * _smooth_field(rng, shape, um(6))
    nest = free & (nest_field > np.quantile(nest_field[free], 1 - nest_fraction))
    if necrosis_mask.any():  # necrosis sits in a tumour nest
        nest |= free & _within(necrosis_mask, um(12))
    # opening by a 3 um disc: drops slivers thinner than a cell
    nest = _within(ndi.distance_transform_edt(nest) > um(3), um(3)) & nest
    core = duct & ~rim & ~lumen

    # --- tumour cells: hard-core process with per-cell radii, power diagram
    region = nest | core
    mean_r = um(cell_spacing_um / 2)
    n_expect = int(region.sum() / (np.pi * mean_r**2)) + 10
    centres, radii = _rsa_centres(rng, region, mean_r, 6 * n_expect)
    n = len(centres)
    compartment = np.where(core[centres[:, 0].astype(int), centres[:, 1].astype(int)], 2, 1)
    warp_y = um(1.0) * _smooth_field(rng, shape, um(4))
    warp_x = um(1.0) * _smooth_field(rng, shape, um(4))
    cells = np.zeros(shape, np.int32)
    if n:
        pts = np.flatnonzero(region)
        q = np.column_stack(
            [yy.ravel()[pts] + warp_y.ravel()[pts], xx.ravel()[pts] + warp_x.ravel()[pts]]
        )
        k = min(8, n)
        dist, near = cKDTree(centres).query(q, k=k)
        dist, near = dist.reshape(len(q), k), near.reshape(len(q), k)
        power = dist**2 - radii[near] ** 2
        best = np.argmin(power, axis=1)
        owner = near[np.arange(len(q)), best]
        ok = dist[np.arange(len(q)), best] <= 1.6 * radii[owner]
        pix_region = np.where(core.ravel()[pts], 2, 1)
        ok &= pix_region == compartment[owner]
        cells.ravel()[pts[ok]] = owner[ok] + 1
    present = np.bincount(cells.ravel(), minlength=n + 1)[1:] > 0
    # relabel to present cells only, 1..n
    remap = np.zeros(n + 1, np.int32)
    remap[1:][present] = np.arange(1, present.sum() + 1)
    cells = remap[cells]
    centres, radii, compartment = centres[present], radii[present], compartment[present]
    n_tumour = len(centres)

    # --- myoepithelial rim: flattened HER2-negative cells around the duct
    myo_centres, myo_angles = np.zeros((0, 2)), np.zeros(0)
    if duct_info is not None and rim.any():
        site = duct_info[0]
        theta = np.arctan2(yy - site[0], xx - site[1])
        perimeter = np.count_nonzero(rim) * px**2 / 3.5  # um
        n_myo = max(6, int(perimeter / rng.uniform(11, 15)))
        offset = rng.uniform(0, 2 * np.pi)
        seg = (np.floor(np.mod(theta - offset, 2 * np.pi) / (2 * np.pi) * n_myo)).astype(np.int32)
        cells[rim] = n_tumour + 1 + seg[rim]
        ids_present = np.unique(cells[rim])
        remap = np.arange(cells.max() + 1, dtype=np.int32)
        remap[ids_present] = n_tumour + 1 + np.arange(len(ids_present))
        cells = remap[cells]
        for cid in range(n_tumour + 1, n_tumour + 1 + len(ids_present)):
            ys, xs = np.nonzero(cells == cid)
            mid = np.arctan2(ys.mean() - site[0], xs.mean() - site[1])
            myo_centres = np.vstack([myo_centres, [ys.mean(), xs.mean()]])
            myo_angles = np.r_[myo_angles, mid + np.pi / 2]
    n_myo = len(myo_centres)
    n_all = n_tumour + n_myo

    # --- membrane states: exact counts per compartment, spatially clustered
    state = np.zeros(n_all, np.int8)
    cluster = _smooth_field(rng, shape, um(30))
    for comp_id, mix in ((1, mixture), (2, dcis_mixture)):
        members = np.flatnonzero(compartment == comp_id)
        if members.size == 0:
            continue
        counts = _exact_counts(mix, members.size)
        ci = centres[members].astype(int)
        score = cluster[ci[:, 0], ci[:, 1]] + rng.normal(0, 0.6, members.size)
        order = np.argsort(score, kind="stable")  # low field -> low states
        state[members[order]] = np.repeat(np.arange(len(MEMBRANE_STATES)), counts)
    level = _STATE_LEVEL[state]
    complete = _STATE_COMPLETE[state] & (level > 0)
    lo = np.array([LEVEL_MEMBRANE_OD[k][0] for k in range(4)])
    hi = np.array([LEVEL_MEMBRANE_OD[k][1] for k in range(4)])
    membrane_od = rng.uniform(lo[level], hi[level])
    c_lo = np.where(complete, COMPLETENESS["complete"][0], COMPLETENESS["incomplete"][0])
    c_hi = np.where(complete, COMPLETENESS["complete"][1], COMPLETENESS["incomplete"][1])
    completeness = np.where(level > 0, rng.uniform(c_lo, c_hi), 0.0)
    n_arcs = np.where(complete, 1, rng.choice([1, 2, 3], n_all, p=[0.4, 0.4, 0.2]))
    start = rng.uniform(0, 2 * np.pi, n_all)
    tint_level = rng.uniform(0.03, 0.12) if low_design else rng.uniform(0.0, 0.05)
    tint = np.clip(tint_level * rng.uniform(0.6, 1.4, n_all), 0, None)
    tint[n_tumour:] = tint_level * 0.3
    nuc_tint_fraction = rng.uniform(0.7, 1.0, n_all)

    # --- nuclei: pleomorphic ovals off-centre, irregular edges, kept inside the cell
    all_centres = np.vstack([centres, myo_centres]) if n_myo else centres
    cell_r = np.r_[radii, np.full(n_myo, um(4))]
    semi_a = np.r_[radii * rng.uniform(0.45, 0.62, n_tumour), np.full(n_myo, um(4.5))]
    semi_b = semi_a * np.r_[rng.uniform(0.65, 0.92, n_tumour), np.full(n_myo, 0.3)]
    angle = np.r_[rng.uniform(0, np.pi, n_tumour), myo_angles]
    shift = rng.uniform(0, 0.18, n_all) * cell_r
    shift_dir = rng.uniform(0, 2 * np.pi, n_all)
    ny = np.r_[0, all_centres[:, 0] + shift * np.sin(shift_dir) * (np.arange(n_all) < n_tumour)]
    nx = np.r_[0, all_centres[:, 1] + shift * np.cos(shift_dir) * (np.arange(n_all) < n_tumour)]
    in_cell = cells > 0
    edge_dist = ndi.distance_transform_edt(_interior(cells) & in_cell) * px
    wy = yy + 0.4 * warp_x  # reuse the smooth warp, smaller, for irregular nuclear outlines
    wx = xx + 0.4 * warp_y
    dy, dx = wy - ny[cells], wx - nx[cells]
    ang = np.r_[0, angle][cells]
    ct, st = np.cos(ang), np.sin(ang)
    u = (dx * ct + dy * st) / np.r_[1, semi_a][cells]
    v = (-dx * st + dy * ct) / np.r_[1, semi_b][cells]
    rho = u * u + v * v
    nuclei_mask = in_cell & (rho <= 1) & (edge_dist > 1.0)
    nuclei = np.where(nuclei_mask, cells, 0).astype(np.int32)
    cytoplasm = in_cell & ~nuclei_mask

    # --- hematoxylin (counterstain only)
    hem = np.zeros(shape, np.float32)
    nuc_base = np.r_[0, rng.uniform(0.14, 0.30, n_tumour), rng.uniform(0.35, 0.5, n_myo)]
    chromatin = 1 + 0.3 * _smooth_field(rng, shape, um(0.35))
    rim_boost = np.where(rho > 0.72, 0.07, 0.0)  # nuclear membrane
    hem += np.where(nuclei_mask, nuc_base[cells] * chromatin + rim_boost, 0)
    nucleolus_r = um(rng.uniform(0.45, 0.8, n_all + 1))
    nly = ny + rng.uniform(-0.35, 0.35, n_all + 1) * np.r_[1, semi_b]
    nlx = nx + rng.uniform(-0.35, 0.35, n_all + 1) * np.r_[1, semi_b]
    has_nucleolus = rng.random(n_all + 1) < 0.7
    has_nucleolus[0] = False
    has_nucleolus[n_tumour + 1 :] = False
    nucleolus = nuclei_mask & has_nucleolus[cells]
    nucleolus &= np.hypot(yy - nly[cells], xx - nlx[cells]) < nucleolus_r[cells]
    hem += np.where(nucleolus, 0.22, 0)
    hem += np.where(cytoplasm, rng.uniform(0.02, 0.05) * (2 - chromatin.clip(0.5, 1.5)), 0)

    # --- DAB: diffuse tint, nucleus part of it, membrane excess in arcs
    dab = np.zeros(shape, np.float32)
    tint_px = np.r_[0, tint][cells]
    texture = np.clip(1 + 0.2 * _smooth_field(rng, shape, um(0.6)), 0.5, None)  # granular
    dab += np.where(cytoplasm, tint_px * texture, 0)
    dab += np.where(nuclei_mask, tint_px * np.r_[0, nuc_tint_fraction][cells], 0)
    # peak profile exp(-d^2 / 2s^2); its mean over the 1 um band is `band_factor`
    s = rng.uniform(0.4, 0.5)
    d_grid = np.linspace(0, 1, 201)
    band_factor = float(np.exp(-0.5 * (d_grid / s) ** 2).mean())
    near_edge = in_cell & (edge_dist <= 3 * s)
    profile = np.where(near_edge, np.exp(-0.5 * (edge_dist / s) ** 2), 0)
    theta = np.arctan2(
        yy - np.r_[0, all_centres[:, 0]][cells], xx - np.r_[0, all_centres[:, 1]][cells]
    )
    rel = np.mod(theta - np.r_[0, start][cells], 2 * np.pi) / (2 * np.pi)
    arcs = np.r_[1, n_arcs][cells]
    arc = np.mod(rel * arcs, 1.0) < np.r_[0, completeness][cells]
    granular = np.clip(1 + 0.3 * _smooth_field(rng, shape, um(0.8)), 0.3, None)
    peak = np.r_[0, membrane_od / band_factor][cells]
    dab += np.where(near_edge & arc, peak * profile * granular, 0)

    # --- stroma: pale blue-grey fibres, spindle nuclei, lymphocytes
    stroma = tissue & ~in_cell & ~necrosis_mask & ~lumen
    fibre_angle = rng.uniform(0, np.pi)
    fy, fx = np.cos(fibre_angle), np.sin(fibre_angle)
    size = int(np.ceil(np.hypot(h, w))) + 2
    flat = ndi.gaussian_filter(
        rng.standard_normal((size, size)).astype(np.float32), (um(0.9), um(10)), mode="wrap"
    )
    along = (xx - w / 2) * fx + (yy - h / 2) * fy + size / 2
    across = (xx - w / 2) * fy - (yy - h / 2) * fx + size / 2
    across = across + um(4) * _smooth_field(rng, shape, um(15))  # waviness
    fibres = ndi.map_coordinates(flat, [across, along], order=1, mode="wrap")
    fibres = np.clip(0.45 + fibres / (3 * fibres.std()), 0, 1)
    hem += np.where(stroma, 0.01 + 0.04 * fibres, 0)
    grey = np.where(tissue & ~lumen, 0.015, 0).astype(np.float32)
    grey += np.where(stroma, 0.025 * fibres, 0)
    dab += np.where(stroma, rng.uniform(0.0, 0.02), 0)
    stroma_area = stroma.sum() * px**2
    n_spindle = int(stroma_area / 450)
    n_lymph = int(stroma_area / rng.uniform(600, 1500))
    idx = np.flatnonzero(stroma)
    if idx.size:
        sp = np.column_stack(np.unravel_index(idx[rng.integers(idx.size, size=n_spindle)], shape))
        spindle = _stamp_ellipses(
            shape,
            sp,
            um(rng.uniform(4, 7, n_spindle)),
            um(rng.uniform(0.9, 1.5, n_spindle)),
            np.full(n_spindle, np.arctan2(fy, fx)) + rng.normal(0, 0.25, n_spindle),
        )
        ly_ = np.column_stack(np.unravel_index(idx[rng.integers(idx.size, size=n_lymph)], shape))
        rad = um(rng.uniform(2.2, 3.2, n_lymph))
        lymph = _stamp_ellipses(shape, ly_, rad, rad * 0.9, rng.uniform(0, np.pi, n_lymph))
        hem[spindle & stroma] = rng.uniform(0.25, 0.4)
        hem[lymph & stroma & ~spindle] = rng.uniform(0.4, 0.55)

    # --- necrosis: granular debris, pyknotic fragments, trapped DAB, no eosin
    if necrosis_mask.any():
        blotch = np.clip(0.5 + 0.3 * _smooth_field(rng, shape, um(1.2)), 0, 1)
        hem = np.where(necrosis_mask, 0.05 + 0.12 * blotch, hem)
        dab = np.where(necrosis_mask, rng.uniform(0.03, 0.10) * (0.5 + blotch), dab)
        area = necrosis_mask.sum() * px**2
        n_frag = int(area / 20)
        nidx = np.flatnonzero(necrosis_mask)
        fp = np.column_stack(np.unravel_index(nidx[rng.integers(nidx.size, size=n_frag)], shape))
        fr = um(rng.uniform(0.5, 1.8, n_frag))
        frag = _stamp_ellipses(
            shape, fp, fr, fr * rng.uniform(0.6, 1, n_frag), rng.uniform(0, 3, n_frag)
        )
        hem = np.where(frag & necrosis_mask, rng.uniform(0.55, 0.9), hem)
    hem[lumen] = 0
    dab[lumen] = 0

    # --- optics: stain vectors away from the defaults, Beer-Lambert, cast, blur, noise
    h_angle, d_angle = rng.uniform(5, 12), rng.uniform(5, 12)
    vec_h = _rotate_away(rng, HEMATOXYLIN_RGB_OD, h_angle)
    vec_dab = _rotate_away(rng, DAB_RGB_OD, d_angle)
    scale_h, scale_dab = rng.uniform(0.8, 1.25), rng.uniform(0.85, 1.2)
    glass_level = rng.uniform(205, 235)
    cast = np.array([1.0, rng.uniform(0.93, 0.97), rng.uniform(0.80, 0.90)])
    vignette = rng.uniform(0.0, 0.03)
    blur_um = rng.uniform(0.3, 0.4)
    noise = rng.uniform(1.5, 3.0) if noise_sd is None else float(noise_sd)
    r2 = ((yy - h / 2) ** 2 + (xx - w / 2) ** 2) / ((h / 2) ** 2 + (w / 2) ** 2)
    illumination = glass_level * (1 - vignette * r2)
    rgb = np.empty((h, w, 3), np.uint8)
    hem *= scale_h
    dab *= scale_dab
    for c in range(3):
        od = hem * vec_h[c] + dab * vec_dab[c] + grey * _GREY[c]
        plane = illumination * cast[c] * np.power(10.0, -od, dtype=np.float32)
        plane = ndi.gaussian_filter(plane, um(blur_um))
        plane += rng.normal(0, 1, shape).astype(np.float32) * noise * np.sqrt(plane / glass_level)
        rgb[..., c] = np.clip(np.round(plane), 0, 255).astype(np.uint8)

    # --- truth
    ids = np.arange(1, n_all + 1)
    area = np.bincount(cells.ravel(), minlength=n_all + 1)[1:] * px**2
    comp_name = np.r_[
        np.where(compartment == 2, "dcis", "invasive"), np.full(n_myo, "myoepithelial")
    ]
    unusual = (level >= 2) & ~complete
    truth = pd.DataFrame(
        {
            "cell_id": ids,
            "compartment": comp_name,
            "invasive": comp_name == "invasive",
            "y_um": all_centres[:, 0] * px if n_all else np.zeros(0),
            "x_um": all_centres[:, 1] * px if n_all else np.zeros(0),
            "area_um2": area,
            "state": np.array(_STATE_NAMES, dtype=object)[state],
            "intensity_level": level.astype(int),
            "intensity_label": np.array(INTENSITY_LABELS, dtype=object)[level],
            "membrane_od": membrane_od,
            "membrane_completeness": completeness,
            "complete": complete,
            "unusual_pattern": unusual,
            "her2_class": her2_class_of(level, complete).astype(int),
            "cytoplasm_dab_od": tint,
        }
    )
    labels = {
        "cells": cells,
        "nuclei": nuclei,
        "glass": glass,
        "dcis": duct,
        "necrosis": necrosis_mask,
    }
    if not return_params:
        return rgb, truth, labels
    params = {
        "hematoxylin_rgb_od": [round(float(x), 4) for x in vec_h],
        "dab_rgb_od": [round(float(x), 4) for x in vec_dab],
        "hematoxylin_angle_deg": round(float(h_angle), 2),
        "dab_angle_deg": round(float(d_angle), 2),
        "hematoxylin_scale": round(float(scale_h), 3),
        "dab_scale": round(float(scale_dab), 3),
        "glass_level": round(float(glass_level), 2),
        "white_balance_cast": [round(float(x), 4) for x in cast],
        "glass_rgb": [round(float(glass_level * x), 2) for x in cast],
        "vignetting": round(float(vignette), 4),
        "blur_um": round(float(blur_um), 3),
        "noise_sd": round(float(noise), 3),
        "cytoplasm_dab_tint_od": round(float(tint_level), 4),
        "membrane_band_factor": round(band_factor, 4),
        "dcis": bool(duct.any()),
        "necrosis": bool(necrosis_mask.any()),
        "necrosis_area_um2": round(float(necrosis_mask.sum() * px**2), 1),
    }
    return rgb, truth, labels, params


def encode_jpeg(rgb: np.ndarray, quality: int = 88) -> bytes:
    """JPEG bytes of an RGB tile (PIL, baseline, 4:2:0 chroma subsampling, no
    optimisation: deterministic for a given image, quality and libjpeg)."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=int(quality), subsampling=2)
    return buffer.getvalue()


def truth_summary(cells: pd.DataFrame) -> dict:
    """True per-biopsy percentages over the invasive tumour cells of ``cells``.

    Keys follow :func:`sepher.ihc.score_biopsy`'s: ``n_tumour_cells``,
    ``n_<state>`` / ``pct_<state>`` per :data:`MEMBRANE_STATES`, ``pct_0`` ..
    ``pct_3`` (per-cell ASCO/CAP class), ``pct_faint``, ``pct_weak_moderate``,
    ``pct_intense``, ``h_score`` (standard: 1 x %faint + 2 x %weak-to-moderate
    + 3 x %intense), ``pct_complete``, ``pct_complete_weak_moderate``,
    ``pct_complete_intense``, ``pct_unusual_pattern``, ``pct_any_staining``,
    ``guideline_asco_cap`` (the ASCO/CAP 2018 text applied to these
    percentages, cut-off 10 %) and ``n_non_invasive_cells``.
    """
    inv = cells[cells["invasive"].astype(bool)]
    n = len(inv)
    out: dict = {"n_tumour_cells": int(n), "n_non_invasive_cells": int(len(cells) - n)}

    def pct(mask):
        return 100.0 * float(np.count_nonzero(mask)) / n if n else 0.0

    for name in _STATE_NAMES:
        out[f"n_{name}"] = int((inv["state"] == name).sum())
    for name in _STATE_NAMES:
        out[f"pct_{name}"] = pct(inv["state"] == name)
    for k in range(4):
        out[f"pct_{k}"] = pct(inv["her2_class"] == k)
    lv, comp = inv["intensity_level"].to_numpy(), inv["complete"].to_numpy(bool)
    out["pct_faint"] = pct(lv == 1)
    out["pct_weak_moderate"] = pct(lv == 2)
    out["pct_intense"] = pct(lv == 3)
    out["h_score"] = out["pct_faint"] + 2 * out["pct_weak_moderate"] + 3 * out["pct_intense"]
    out["pct_complete"] = pct(comp)
    out["pct_complete_weak_moderate"] = pct(comp & (lv == 2))
    out["pct_complete_intense"] = pct(comp & (lv == 3))
    out["pct_unusual_pattern"] = pct((lv >= 2) & ~comp)
    out["pct_any_staining"] = pct(lv >= 1)
    if out["pct_complete_intense"] > 10:
        category = 3
    elif (
        out["pct_complete_weak_moderate"] > 10
        or out["pct_complete_intense"] > 0
        or out["pct_unusual_pattern"] > 10
    ):
        category = 2
    elif out["pct_any_staining"] > 10:
        category = 1
    else:
        category = 0
    out["guideline_asco_cap"] = category
    return out


def write_demo_ihc(
    out_dir,
    seed: int = 20200279,
    pixel_size_um: float = 0.25,
    *,
    biopsies=DEMO_BIOPSIES,
    shape: tuple[int, int] = (768, 1024),
) -> dict:
    """Write the demo IHC study: JPEG tiles, sample sheet rows, per-cell and per-biopsy truth.

    Files (relative to ``out_dir``, the ``resources/demo`` folder):
    ``images/ihc/<image_id>.jpg``; ``images_ihc.tsv`` (docs/data-dictionary.md
    ``images`` IHC rows, paths relative to the sheet, ``reference_score`` =
    the design score of the tiles of the biopsies marked in ``biopsies``,
    blank for the rest); ``truth/ihc_truth.csv`` (per cell, invasive or not);
    ``truth/ihc_truth.json`` (per image the drawn parameters; per biopsy the
    design category, ``asco_cap`` / ``asco_cap_label`` / ``her2_2023`` /
    ``reflex_ish`` from it, and the true percentages of
    :func:`truth_summary`). Distractors by tile order (k = 0, 1, ...): a
    DCIS duct when k is even, necrosis when k % 3 == 1. Byte-identical for a
    seed.

    Parameters
    ----------
    out_dir : path
        Destination folder (created).
    seed : int
        Seed of ``np.random.default_rng``.
    pixel_size_um : float, default 0.25
    biopsies : sequence, default :data:`DEMO_BIOPSIES`
        (patient, timepoint, design category, tiles, has reference score).
    shape : tuple of int, default (768, 1024)
        Tile size (px).

    Returns
    -------
    dict
        The payload written to ``ihc_truth.json``.

    Raises
    ------
    RuntimeError
        If the realised per-cell truth of a biopsy does not meet its design
        category under the guideline text (cannot happen with the shipped
        mixtures unless a tile holds very few cells).
    """
    out = Path(out_dir)
    (out / "images" / "ihc").mkdir(parents=True, exist_ok=True)
    (out / "truth").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sheet, truths, records, images = [], [], [], []
    tile_index = 0
    for patient, timepoint, design, n_tiles, has_reference in biopsies:
        asco, label_2023 = DESIGN_CATEGORIES[design]
        biopsy_cells = []
        for tile in range(1, n_tiles + 1):
            image_id = f"{patient}_{timepoint}_{tile}"
            rgb, truth, _, params = simulate_ihc_tile(
                rng,
                design,
                shape=shape,
                pixel_size_um=pixel_size_um,
                dcis=tile_index % 2 == 0,
                necrosis=tile_index % 3 == 1,
                return_params=True,
            )
            tile_index += 1
            quality = int(rng.integers(80, 93))
            path = Path("images") / "ihc" / f"{image_id}.jpg"
            (out / path).write_bytes(encode_jpeg(rgb, quality))
            reference = ASCO_CAP_LABELS[asco] if has_reference else ""
            sheet.append(
                {
                    "image_id": image_id,
                    "path": path.as_posix(),
                    "assay": "IHC",
                    "pixel_size_um": pixel_size_um,
                    "patient_id": patient,
                    "timepoint": timepoint,
                    "reference_score": reference,
                }
            )
            counts = truth["compartment"].value_counts()
            images.append(
                {
                    "image_id": image_id,
                    "design_category": design,
                    "reference_score": reference,
                    "jpeg_quality": quality,
                    "shape": list(shape),
                    "n_invasive_cells": int(counts.get("invasive", 0)),
                    "n_dcis_cells": int(counts.get("dcis", 0)),
                    "n_myoepithelial_cells": int(counts.get("myoepithelial", 0)),
                    **params,
                }
            )
            truth.insert(0, "image_id", image_id)
            truth.insert(1, "patient_id", patient)
            truth.insert(2, "timepoint", timepoint)
            biopsy_cells.append(truth)
        cells = pd.concat(biopsy_cells, ignore_index=True)
        truths.append(cells)
        summary = truth_summary(cells)
        if summary["guideline_asco_cap"] != asco:
            raise RuntimeError(
                f"{patient} {timepoint}: realised truth reads {summary['guideline_asco_cap']}, "
                f"design {design}"
            )
        records.append(
            {
                "patient_id": patient,
                "timepoint": timepoint,
                "n_images": n_tiles,
                "design_category": design,
                "design_state_fractions": dict(
                    zip(_STATE_NAMES, DESIGN_MIXTURES[design], strict=True)
                ),
                "asco_cap": asco,
                "asco_cap_label": ASCO_CAP_LABELS[asco],
                "her2_2023": label_2023,
                "reflex_ish": asco == 2,
                "has_reference_score": bool(has_reference),
                **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in summary.items()},
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
        "membrane_states": [list(s) for s in MEMBRANE_STATES],
        "level_membrane_od": {INTENSITY_LABELS[k]: list(v) for k, v in LEVEL_MEMBRANE_OD.items()},
        "completeness": {k: list(v) for k, v in COMPLETENESS.items()},
        "images": images,
        "biopsies": records,
    }
    (out / "truth" / "ihc_truth.json").write_text(json.dumps(payload, indent=2) + "\n")
    return payload
