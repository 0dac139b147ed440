"""Simulated HER2 immunofluorescence fields with per-cell truth (demo data).

The SePHER imaging data are not public. This module renders small widefield
fluorescence fields of HER2+ breast cancer cells with a known truth for every
cell, following the study's design (Bon, Pizzuti et al. 2020): two cell lines
(SKBR3, BT474), parental, trastuzumab-resistant (T-R) and trastuzumab +
pertuzumab-resistant (TP-R) cells, where TP-R cells have much less HER2 at the
plasma membrane and more in the nucleus; and T-R cells exposed in sequence to
trastuzumab, pertuzumab or both (conditions ``T-R>T``, ``T-R>P``,
``T-R>T+P``), where membrane HER2 falls with pertuzumab exposure.

Model of one field (every length in micrometres, converted with
``pixel_size_um``):

* **Islands.** Epithelial cells grow in clusters: the foreground is a
  smoothed Gaussian random field thresholded to cover ``island_fraction`` of
  the field.
* **Nuclei.** Ellipses with equivalent-circle diameter uniform in
  ``nucleus_diameter_um`` (8-14 um), aspect ratio uniform in
  ``nucleus_aspect``, random orientation, placed by random sequential
  adsorption inside the islands with a cytoplasm gap between neighbours; a
  fraction ``touching_fraction`` of nuclei get a touching sister (a just
  divided pair). Pixels claimed by two ellipses go to the nearer centre
  (in elliptical distance), so touching nuclei share a straight contact.
* **Cells.** Voronoi-like regions around the nuclei (each island pixel goes
  to the nearest nucleus, :func:`skimage.segmentation.expand_labels`), at
  most ``max_cytoplasm_um`` beyond the nucleus and clipped to the island.
* **HER2 (object, above background).** Plasma-membrane band: cell pixels
  within ``membrane_band_um`` (1 um) of the cell edge and outside the
  nucleus (the definition of :func:`sepher.imaging.compartments.compartments`:
  the edge is where a cell meets another cell or the background, never the
  field border), intensity ``membrane_her2`` per cell with a granular
  texture; cytoplasm a diffuse ``cytoplasm_ratio * membrane_her2``; nucleus
  a uniform level chosen so the cell's nuclear fraction (nuclear /
  whole-cell integrated HER2 above background) is exactly the cell's drawn
  value. Everything sits on a non-specific background ``her2_background``.
* **Nuclear stain (DAPI).** Per-nucleus brightness (log-normal), chromatin
  texture and bright chromocentres, a dimmer rim.
* **Membrane marker** (optional third channel, e.g. WGA / Na+/K+-ATPase): a
  thin band at every cell edge, independent of HER2.
* **Optics and camera.** Smooth vignetting (illumination 1 at an off-centre
  point falling quadratically to ``1 - vignetting`` at the far corner),
  Gaussian PSF blur (sigma ``psf_sigma_um``), Poisson photon noise
  (``electrons_per_adu``), Gaussian read noise, camera offset, 16-bit
  clipping.
* **Bad fields.** ``"out_of_focus"``: heavy extra blur
  (``defocus_sigma_um``); ``"saturated"``: exposure too long, chosen so
  that a fraction ``saturated_band_fraction`` of the HER2 membrane-band
  pixels clip at 65535 (the nuclear stain clips too).

Truth (per cell) is measured on the noise-free, unblurred object at
illumination 1 on the truth label images: membrane HER2 mean above
background, nuclear fraction, nucleus and cell areas. A measurement on the
recorded image sees the same cells multiplied by the local illumination
(``illumination_mean`` per cell, about 0.75-1) and blurred by the PSF.

:func:`write_demo_if_images` writes the demo set (OME-TIFF images, the
sample sheet rows, the truth tables and the truth label images),
byte-identical on every call with the same seed and package versions.
"""

from __future__ import annotations

import copy
import hashlib
import json
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import tifffile
from scipy import ndimage as ndi
from skimage import segmentation

from sepher.io.samplesheet import IF_SHEET_COLUMNS

__all__ = [
    "CELL_LINES",
    "CONDITION_SLUGS",
    "default_if_design",
    "default_field_parameters",
    "image_id_for",
    "membrane_band",
    "render_field",
    "simulate_demo_if",
    "write_demo_if_images",
]

#: Cell lines of the design.
CELL_LINES = ("SKBR3", "BT474")

#: Condition -> file-name-safe slug (image ids and file names).
CONDITION_SLUGS = {
    "parental": "parental",
    "T-R": "TR",
    "TP-R": "TPR",
    "T-R>T": "TR-T",
    "T-R>P": "TR-P",
    "T-R>T+P": "TR-TP",
}

#: Column order of the sample sheet (``images`` in docs/data-dictionary.md, IF rows).
SHEET_COLUMNS = IF_SHEET_COLUMNS

#: Column order of the per-cell truth table.
TRUTH_COLUMNS = (
    "image_id",
    "cell_id",
    "cell_line",
    "condition",
    "replicate",
    "field",
    "bad_field",
    "touches_border",
    "centroid_y_um",
    "centroid_x_um",
    "nucleus_area_um2",
    "cell_area_um2",
    "membrane_area_um2",
    "membrane_her2",
    "cytoplasm_her2",
    "nucleus_her2",
    "nuclear_fraction",
    "illumination_mean",
)


def default_if_design() -> dict:
    """The demo design: conditions, their population truth and the layout.

    Returns
    -------
    dict
        ``conditions``: list of dicts (``cell_line``, ``condition``,
        ``membrane_her2`` population mean membrane HER2 above background
        at illumination 1 (ADU), ``nuclear_fraction`` population mean,
        ``membrane_marker`` whether the images have a membrane channel).
        TP-R membrane HER2 is about 40 % of T-R and its nuclear fraction
        0.35 vs 0.10 (the study's "HER2 moves from the membrane to the
        nucleus"); in the sequential design membrane HER2 falls with
        pertuzumab exposure (T-R>T ~95 %, T-R>P ~65 %, T-R>T+P ~45 % of T-R).
        ``replicates`` (biological replicates per condition), ``fields``
        (good fields per replicate), ``bad_fields``: list of extra fields
        (``cell_line``, ``condition``, ``replicate``, ``defect``), and the
        between-replicate and between-cell variation.
    """
    # population membrane HER2 (ADU above background, illumination 1) and nuclear fraction
    per_line = {
        "SKBR3": {
            "parental": (3000.0, 0.06),
            "T-R": (2600.0, 0.10),
            "TP-R": (1100.0, 0.35),
            "T-R>T": (2470.0, 0.11),
            "T-R>P": (1690.0, 0.20),
            "T-R>T+P": (1170.0, 0.28),
        },
        "BT474": {
            "parental": (2500.0, 0.05),
            "T-R": (2200.0, 0.10),
            "TP-R": (900.0, 0.35),
            "T-R>T": (2090.0, 0.11),
            "T-R>P": (1430.0, 0.20),
            "T-R>T+P": (990.0, 0.28),
        },
    }
    conditions = []
    for line in CELL_LINES:
        for condition, (membrane, fraction) in per_line[line].items():
            conditions.append(
                {
                    "cell_line": line,
                    "condition": condition,
                    "membrane_her2": membrane,
                    "nuclear_fraction": fraction,
                    # a membrane-marker channel in the SKBR3 parental / T-R / TP-R images
                    "membrane_marker": line == "SKBR3" and condition in ("parental", "T-R", "TP-R"),
                }
            )
    return {
        "conditions": conditions,
        "replicates": 3,
        "fields": 2,
        "bad_fields": [
            {"cell_line": "SKBR3", "condition": "T-R", "replicate": 1, "defect": "out_of_focus"},
            {"cell_line": "BT474", "condition": "TP-R", "replicate": 2, "defect": "out_of_focus"},
            {"cell_line": "SKBR3", "condition": "parental", "replicate": 3, "defect": "saturated"},
            {"cell_line": "BT474", "condition": "T-R>P", "replicate": 1, "defect": "saturated"},
        ],
        # log-normal SD of the replicate factor on membrane HER2; SD of the
        # replicate shift of the nuclear fraction on the logit scale
        "replicate_membrane_sd_log": 0.08,
        "replicate_fraction_sd_logit": 0.10,
        # cell-to-cell: log-normal SD of membrane HER2, Beta concentration of the nuclear fraction
        "cell_membrane_sd_log": 0.30,
        "cell_fraction_concentration": 30.0,
    }


def default_field_parameters() -> dict:
    """Parameters of one rendered field (units in the key names).

    Returns
    -------
    dict
        Geometry (``shape_px``, ``pixel_size_um``, island and nucleus sizes),
        object intensities (ADU at illumination 1 above the camera offset)
        and the optics / camera model. Values: a widefield field of
        256 x 256 pixels of 0.65 um (e.g. 20x objective, or 40x with 2 x 2
        binning; 166 x 166 um) with 25-40 cells; PSF sigma 0.3 um;
        sCMOS-like camera (offset 100 ADU, 2 e-/ADU, read noise 1.6 e-).
        The pixel size matches the imaging library's 0.5 um working
        resolution and keeps the demo set small (lossless 16-bit fields of
        noisy data compress only ~2x; 76 fields at 0.325 um / 512 x 512
        would take ~50 MB).
    """
    return {
        "shape_px": (256, 256),
        "pixel_size_um": 0.65,
        "island_fraction": 0.5,
        "island_scale_um": 22.0,
        "nucleus_diameter_um": (8.0, 14.0),
        "nucleus_aspect": (1.0, 1.5),
        "cytoplasm_gap_um": (5.0, 8.0),
        "touching_fraction": 0.3,
        "max_cytoplasm_um": 7.0,
        "membrane_band_um": 1.0,
        "membrane_marker_band_um": 0.65,
        # HER2 channel (ADU above offset at illumination 1)
        "her2_background": 120.0,
        "cytoplasm_ratio": 0.08,
        "membrane_texture_cv": 0.25,
        "cytoplasm_texture_cv": 0.15,
        # nuclear stain
        "dapi_background": 60.0,
        "dapi_cytoplasm": 40.0,
        "dapi_nucleus": 2500.0,
        "dapi_nucleus_sd_log": 0.35,
        "dapi_texture_cv": 0.2,
        # membrane marker
        "marker_background": 80.0,
        "marker_membrane": 1500.0,
        "marker_cytoplasm": 120.0,
        # optics and camera
        "vignetting": (0.15, 0.3),
        "psf_sigma_um": 0.3,
        "electrons_per_adu": 2.0,
        "read_noise_electrons": 1.6,
        "camera_offset_adu": 100.0,
        "defocus_sigma_um": 3.0,
        "saturated_band_fraction": 0.4,
    }


# ----------------------------------------------------------------------------- geometry


def _islands(rng, shape, fraction, scale_px):
    field = ndi.gaussian_filter(rng.standard_normal(shape), scale_px, mode="wrap")
    return field > np.quantile(field, 1.0 - fraction)


def _place_nuclei(rng, islands, params):
    """Random sequential adsorption of elliptical nuclei inside the islands.

    Returns a list of (cy, cx, a, b, theta) in pixels / radians.
    """
    px = params["pixel_size_um"]
    d_lo, d_hi = params["nucleus_diameter_um"]
    asp_lo, asp_hi = params["nucleus_aspect"]
    gap_lo, gap_hi = params["cytoplasm_gap_um"]
    # centres must lie at least half a small nucleus inside the island
    inside = ndi.distance_transform_edt(islands) * px >= d_lo / 2 + 1.0
    candidates = np.flatnonzero(inside.ravel())
    if candidates.size == 0:
        return []
    nuclei = []  # (cy, cx, a, b, theta, sister_of)

    def draw_shape():
        d = rng.uniform(d_lo, d_hi) / px
        aspect = rng.uniform(asp_lo, asp_hi)
        return d / 2 * np.sqrt(aspect), d / 2 / np.sqrt(aspect), rng.uniform(0, np.pi)

    def fits(cy, cx, a, sister=None):
        if not nuclei:
            return True
        centres = np.array([(y, x, a2) for y, x, a2, _b, _t, _s in nuclei])
        gap = rng.uniform(gap_lo, gap_hi) / px
        clear = np.hypot(centres[:, 0] - cy, centres[:, 1] - cx) >= centres[:, 2] + a + gap
        if sister is not None:
            clear[sister] = True
        return bool(clear.all())

    failures = 0
    while failures < 400:
        k = candidates[rng.integers(candidates.size)]
        cy, cx = divmod(int(k), islands.shape[1])
        cy, cx = cy + rng.uniform(-0.5, 0.5), cx + rng.uniform(-0.5, 0.5)
        a, b, theta = draw_shape()
        if not fits(cy, cx, a):
            failures += 1
            continue
        failures = 0
        nuclei.append((cy, cx, a, b, theta, -1))
        if rng.uniform() < params["touching_fraction"]:
            # a just-divided sister: similar size, touching along the minor axis direction
            a2, b2, _ = draw_shape()
            phi = rng.uniform(0, 2 * np.pi)
            # extent of each ellipse along phi, so the two just touch (10 % overlap)
            r1 = _ellipse_radius(a, b, theta, phi)
            r2 = _ellipse_radius(a2, b2, theta, phi + np.pi)
            dist = 0.9 * (r1 + r2)
            sy, sx = cy + dist * np.sin(phi), cx + dist * np.cos(phi)
            iy, ix = int(round(sy)), int(round(sx))
            in_field = 0 <= iy < islands.shape[0] and 0 <= ix < islands.shape[1]
            if in_field and inside[iy, ix] and fits(sy, sx, a2, sister=len(nuclei) - 1):
                nuclei.append((sy, sx, a2, b2, theta, len(nuclei) - 1))
    return [n[:5] for n in nuclei]


def _ellipse_radius(a, b, theta, phi):
    """Distance from an ellipse's centre to its edge in direction ``phi``."""
    t = phi - theta
    return a * b / np.hypot(b * np.cos(t), a * np.sin(t))


def _render_nuclei(shape, nuclei):
    """Label image of the ellipses; overlaps go to the nearer centre."""
    labels = np.zeros(shape, dtype=np.int32)
    best = np.full(shape, np.inf)
    for k, (cy, cx, a, b, theta) in enumerate(nuclei, start=1):
        r = int(np.ceil(a)) + 2
        y0, y1 = max(0, int(cy) - r), min(shape[0], int(cy) + r + 2)
        x0, x1 = max(0, int(cx) - r), min(shape[1], int(cx) + r + 2)
        if y0 >= y1 or x0 >= x1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1]
        dy, dx = yy - cy, xx - cx
        u = dx * np.cos(theta) + dy * np.sin(theta)
        v = -dx * np.sin(theta) + dy * np.cos(theta)
        rho = np.sqrt((u / a) ** 2 + (v / b) ** 2)
        win = (rho <= 1.0) & (rho < best[y0:y1, x0:x1])
        labels[y0:y1, x0:x1][win] = k
        best[y0:y1, x0:x1][win] = rho[win]
    return labels


def _keep_component_with_nucleus(cells, nuclei):
    """Drop pieces of a cell not connected to its own nucleus."""
    out = np.zeros_like(cells)
    objects = ndi.find_objects(cells)
    for k, sl in enumerate(objects, start=1):
        if sl is None:
            continue
        mask = cells[sl] == k
        comp, n = ndi.label(mask)
        if n > 1:
            seeds = np.unique(comp[(nuclei[sl] == k) & mask])
            mask = np.isin(comp, seeds[seeds > 0])
        out[sl][mask] = k
    return out


def _relabel(nuclei, cells):
    """Consecutive labels 1..n for cells that still hold a nucleus."""
    present = np.unique(nuclei[nuclei > 0])
    lut = np.zeros(max(int(cells.max()), int(nuclei.max())) + 1, dtype=np.int32)
    lut[present] = np.arange(1, present.size + 1, dtype=np.int32)
    return lut[nuclei], lut[cells]


def membrane_band(cells: np.ndarray, pixel_size_um: float, band_um: float = 1.0) -> np.ndarray:
    """Boolean mask of cell pixels within ``band_um`` of their cell's edge.

    Same convention as :func:`sepher.imaging.compartments.distance_to_cell_edge`:
    the edge is where a cell meets another cell or the background (not the
    field border), and the outermost pixel layer lies ``0.5 * pixel_size_um``
    from it.

    Parameters
    ----------
    cells : ndarray of int
        Cell label image.
    pixel_size_um : float
        Pixel edge length (um).
    band_um : float, default 1.0
        Band width (um).

    Returns
    -------
    ndarray of bool
    """
    inner = segmentation.find_boundaries(cells, mode="inner", connectivity=1) & (cells > 0)
    if not inner.any():
        return np.zeros(cells.shape, dtype=bool)
    dist = (ndi.distance_transform_edt(~inner).astype(np.float32) + np.float32(0.5)) * np.float32(
        pixel_size_um
    )
    return (cells > 0) & (dist <= band_um)


def _texture(rng, shape, sigma_px, cv):
    """Multiplicative texture: smooth noise with mean 1 and coefficient of variation ``cv``."""
    noise = ndi.gaussian_filter(rng.standard_normal(shape), sigma_px)
    noise /= noise.std() or 1.0
    return np.clip(1.0 + cv * noise, 0.05, None)


def _illumination(rng, shape, vignetting):
    """Smooth vignetting: 1 at an off-centre point, ``1 - v`` at the farthest corner."""
    v = rng.uniform(*vignetting)
    cy = rng.uniform(0.3, 0.7) * shape[0]
    cx = rng.uniform(0.3, 0.7) * shape[1]
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    r2 = (yy - cy) ** 2 + (xx - cx) ** 2
    return 1.0 - v * r2 / r2.max()


def _label_sum(values, labels, n):
    return np.bincount(labels.ravel(), weights=values.ravel(), minlength=n + 1)[1:]


# ----------------------------------------------------------------------------- one field


def render_field(
    rng: np.random.Generator,
    membrane_her2: np.ndarray | float,
    nuclear_fraction: np.ndarray | float,
    *,
    membrane_sd_log: float = 0.30,
    fraction_concentration: float = 30.0,
    membrane_marker: bool = False,
    defect: str | None = None,
    params: dict | None = None,
) -> dict:
    """Render one immunofluorescence field with its per-cell truth.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness (the field is a pure function of its state).
    membrane_her2 : float
        Mean membrane HER2 above background (ADU at illumination 1) of the
        cells' population; each cell draws a log-normal value around it
        (median-corrected so the population mean is ``membrane_her2``).
    nuclear_fraction : float
        Mean nuclear fraction (0-1); each cell draws a Beta value with this
        mean and concentration ``fraction_concentration``.
    membrane_sd_log : float, default 0.30
        Log-normal SD of membrane HER2 between cells.
    fraction_concentration : float, default 30.0
        Beta concentration (alpha + beta) of the per-cell nuclear fraction.
    membrane_marker : bool, default False
        Add a third channel with a plasma-membrane marker.
    defect : {None, "out_of_focus", "saturated"}
        Render a bad field.
    params : dict, optional
        Field parameters; :func:`default_field_parameters` by default.

    Returns
    -------
    dict
        ``image`` uint16 (C, Y, X): channel 0 HER2, 1 nuclear stain,
        2 membrane marker (when requested); ``nuclei`` and ``cells`` int32
        truth labels (nucleus k lies in cell k); ``illumination`` float
        (Y, X); ``her2_object`` float (Y, X), noise-free unblurred HER2 at
        illumination 1 above the camera offset; ``cells_truth``
        DataFrame (one row per cell, see :data:`TRUTH_COLUMNS`).
    """
    p = default_field_parameters() if params is None else {**default_field_parameters(), **params}
    if defect not in (None, "out_of_focus", "saturated"):
        raise ValueError(f"unknown defect {defect!r}")
    shape = tuple(p["shape_px"])
    px = float(p["pixel_size_um"])

    # geometry
    islands = _islands(rng, shape, p["island_fraction"], p["island_scale_um"] / px)
    ellipses = _place_nuclei(rng, islands, p)
    nuclei = _render_nuclei(shape, ellipses)
    cells = segmentation.expand_labels(nuclei, distance=p["max_cytoplasm_um"] / px)
    cells = np.where(islands | (nuclei > 0), cells, 0)
    cells = np.where(nuclei > 0, nuclei, cells)
    cells = _keep_component_with_nucleus(cells, nuclei)
    nuclei, cells = _relabel(nuclei, cells)
    n = int(cells.max())

    in_nucleus = nuclei > 0
    band = membrane_band(cells, px, p["membrane_band_um"]) & ~in_nucleus
    cytoplasm = (cells > 0) & ~band & ~in_nucleus
    band_lab = np.where(band, cells, 0)
    cyto_lab = np.where(cytoplasm, cells, 0)
    count_band = np.bincount(band_lab.ravel(), minlength=n + 1)[1:]
    count_cyto = np.bincount(cyto_lab.ravel(), minlength=n + 1)[1:]
    count_nuc = np.bincount(nuclei.ravel(), minlength=n + 1)[1:]
    count_cell = np.bincount(cells.ravel(), minlength=n + 1)[1:]

    # per-cell HER2 levels
    mu = np.log(membrane_her2) - membrane_sd_log**2 / 2
    m_cell = np.exp(rng.normal(mu, membrane_sd_log, n))
    f_cell = rng.beta(
        nuclear_fraction * fraction_concentration,
        (1 - nuclear_fraction) * fraction_concentration,
        n,
    )
    m_img = np.concatenate([[0.0], m_cell])[cells]
    her2 = np.zeros(shape)
    her2 += band * m_img * _texture(rng, shape, 0.4 / px, p["membrane_texture_cv"])
    her2 += (
        cytoplasm
        * p["cytoplasm_ratio"]
        * m_img
        * _texture(rng, shape, 0.8 / px, p["cytoplasm_texture_cv"])
    )
    nuc_texture = _texture(rng, shape, 0.6 / px, 0.1)
    s_outside = _label_sum(her2, cells, n)  # band + cytoplasm
    t_nuc = _label_sum(nuc_texture * in_nucleus, nuclei, n)
    level_nuc = f_cell / (1 - f_cell) * s_outside / np.where(t_nuc > 0, t_nuc, 1.0)
    her2 += in_nucleus * np.concatenate([[0.0], level_nuc])[nuclei] * nuc_texture

    # truth, measured on the object (above background, illumination 1)
    sum_band = _label_sum(her2, band_lab, n)
    sum_cyto = _label_sum(her2, cyto_lab, n)
    sum_nuc = _label_sum(her2, nuclei, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        truth_membrane = np.where(count_band > 0, sum_band / count_band, np.nan)
        truth_cyto = np.where(count_cyto > 0, sum_cyto / count_cyto, np.nan)
        truth_nuc = sum_nuc / count_nuc
        truth_fraction = sum_nuc / (sum_nuc + sum_band + sum_cyto)
    her2_object = her2 + p["her2_background"]

    # nuclear stain: brightness per nucleus, chromatin texture, chromocentres, dim rim
    dapi_level = p["dapi_nucleus"] * np.exp(rng.normal(0.0, p["dapi_nucleus_sd_log"], n))
    rim = np.clip(ndi.distance_transform_edt(in_nucleus) * px / 1.5, 0.0, 1.0)
    spots = ndi.gaussian_filter((rng.uniform(size=shape) < 0.004) * 1.0, 0.35 / px)
    spots *= 0.6 / (spots.max() or 1.0)
    dapi = in_nucleus * np.concatenate([[0.0], dapi_level])[nuclei]
    dapi = (
        dapi * (0.65 + 0.35 * rim) * (_texture(rng, shape, 0.5 / px, p["dapi_texture_cv"]) + spots)
    )
    dapi += p["dapi_background"] + p["dapi_cytoplasm"] * cytoplasm
    channels = [her2_object, dapi]

    if membrane_marker:
        marker_band = membrane_band(cells, px, p["membrane_marker_band_um"])
        level = np.exp(rng.normal(0.0, 0.2, n + 1))[cells]
        marker = p["marker_background"] + (cells > 0) * p["marker_cytoplasm"]
        marker = marker + marker_band * level * p["marker_membrane"] * _texture(
            rng, shape, 0.4 / px, 0.2
        )
        channels.append(marker)

    # optics and camera
    illumination = _illumination(rng, shape, p["vignetting"])
    sigma = p["psf_sigma_um"] / px
    if defect == "out_of_focus":
        sigma = np.hypot(sigma, p["defocus_sigma_um"] / px)
    signals = [ndi.gaussian_filter(obj, sigma, mode="reflect") * illumination for obj in channels]
    if defect == "saturated":
        # over-exposure clipping the brightest saturated_band_fraction of the HER2 band
        bright = np.quantile(signals[0][band], 1.0 - p["saturated_band_fraction"])
        gain = (65535.0 - p["camera_offset_adu"]) / bright
        signals = [signal * gain for signal in signals]
    e_per_adu = p["electrons_per_adu"]
    image = np.empty((len(channels),) + shape, dtype=np.uint16)
    for c, signal in enumerate(signals):
        electrons = rng.poisson(signal * e_per_adu)
        adu = electrons / e_per_adu + p["camera_offset_adu"]
        adu += rng.normal(0.0, p["read_noise_electrons"] / e_per_adu, shape)
        image[c] = np.clip(np.rint(adu), 0, 65535).astype(np.uint16)

    # per-cell geometry for the truth table
    yy, xx = np.indices(shape)
    cy = _label_sum(yy.astype(float), cells, n) / count_cell
    cx = _label_sum(xx.astype(float), cells, n) / count_cell
    border_ids = np.unique(np.concatenate([cells[0], cells[-1], cells[:, 0], cells[:, -1]]))
    touches_border = np.isin(np.arange(1, n + 1), border_ids)
    cells_truth = pd.DataFrame(
        {
            "cell_id": np.arange(1, n + 1),
            "touches_border": touches_border,
            "centroid_y_um": cy * px,
            "centroid_x_um": cx * px,
            "nucleus_area_um2": count_nuc * px**2,
            "cell_area_um2": count_cell * px**2,
            "membrane_area_um2": count_band * px**2,
            "membrane_her2": truth_membrane,
            "cytoplasm_her2": truth_cyto,
            "nucleus_her2": truth_nuc,
            "nuclear_fraction": truth_fraction,
            "illumination_mean": _label_sum(illumination, cells, n) / count_cell,
        }
    )
    return {
        "image": image,
        "nuclei": nuclei,
        "cells": cells,
        "illumination": illumination,
        "her2_object": her2_object,
        "cells_truth": cells_truth,
    }


# ----------------------------------------------------------------------------- demo set


def _logit(x):
    return np.log(x / (1 - x))


def _expit(x):
    return 1 / (1 + np.exp(-x))


def _field_seed(seed: int, image_id: str) -> int:
    """Per-field seed, stable under changes to the list of fields."""
    digest = hashlib.sha256(f"{seed}:{image_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def _replicate_seed(seed: int, line: str, condition: str, replicate: int) -> int:
    return _field_seed(seed, f"replicate:{line}:{condition}:{replicate}")


def image_id_for(cell_line: str, condition: str, replicate: int, field: int) -> str:
    """Image id of a demo field, e.g. ``IF_SKBR3_TPR_r1_f2``."""
    return f"IF_{cell_line}_{CONDITION_SLUGS[condition]}_r{replicate}_f{field}"


def simulate_demo_if(seed: int = 20202, design: dict | None = None, params: dict | None = None):
    """Simulate the demo IF data set in memory.

    Parameters
    ----------
    seed : int, default 20202
        Seed; every field has its own generator derived from the seed and
        its image id.
    design : dict, optional
        :func:`default_if_design` by default.
    params : dict, optional
        Overrides of :func:`default_field_parameters`.

    Returns
    -------
    fields : list of dict
        One per image, in sample-sheet order: ``image_id``, ``cell_line``,
        ``condition``, ``replicate``, ``field``, ``defect``,
        ``membrane_marker`` and the arrays of :func:`render_field`.
    cells_truth : pandas.DataFrame
        Per-cell truth of every field (:data:`TRUTH_COLUMNS`).
    truth : dict
        Per-condition truth (means over the cells the workflow keeps:
        good fields, not touching the field border), design values and the
        model parameters.
    """
    design = copy.deepcopy(default_if_design() if design is None else design)
    p = {**default_field_parameters(), **(params or {})}
    fields = []
    good = design["fields"]
    bad = {
        (b["cell_line"], b["condition"], b["replicate"]): b["defect"] for b in design["bad_fields"]
    }
    replicate_levels = []
    for cond in design["conditions"]:
        line, condition = cond["cell_line"], cond["condition"]
        for replicate in range(1, design["replicates"] + 1):
            rep_rng = np.random.default_rng(_replicate_seed(seed, line, condition, replicate))
            m_rep = cond["membrane_her2"] * np.exp(
                rep_rng.normal(0.0, design["replicate_membrane_sd_log"])
                - design["replicate_membrane_sd_log"] ** 2 / 2
            )
            f_rep = float(
                _expit(
                    _logit(cond["nuclear_fraction"])
                    + rep_rng.normal(0.0, design["replicate_fraction_sd_logit"])
                )
            )
            replicate_levels.append(
                {
                    "cell_line": line,
                    "condition": condition,
                    "replicate": replicate,
                    "membrane_her2": float(m_rep),
                    "nuclear_fraction": f_rep,
                }
            )
            defects = [None] * good
            if (line, condition, replicate) in bad:
                defects.append(bad[(line, condition, replicate)])
            for field, defect in enumerate(defects, start=1):
                image_id = image_id_for(line, condition, replicate, field)
                rng = np.random.default_rng(_field_seed(seed, image_id))
                rendered = render_field(
                    rng,
                    m_rep,
                    f_rep,
                    membrane_sd_log=design["cell_membrane_sd_log"],
                    fraction_concentration=design["cell_fraction_concentration"],
                    membrane_marker=cond["membrane_marker"],
                    defect=defect,
                    params=p,
                )
                fields.append(
                    {
                        "image_id": image_id,
                        "cell_line": line,
                        "condition": condition,
                        "replicate": replicate,
                        "field": field,
                        "defect": defect,
                        "membrane_marker": cond["membrane_marker"],
                        **rendered,
                    }
                )
    tables = []
    for f in fields:
        t = f["cells_truth"].copy()
        for key in ("image_id", "cell_line", "condition", "replicate", "field"):
            t[key] = f[key]
        t["bad_field"] = f["defect"] or ""
        tables.append(t)
    cells_truth = pd.concat(tables, ignore_index=True)[list(TRUTH_COLUMNS)]
    truth = _condition_truth(cells_truth, design, p, replicate_levels, fields, seed)
    return fields, cells_truth, truth


def _condition_truth(cells_truth, design, p, replicate_levels, fields, seed):
    kept = cells_truth[(cells_truth["bad_field"] == "") & ~cells_truth["touches_border"]]
    conditions = []
    for cond in design["conditions"]:
        sel = kept[
            (kept["cell_line"] == cond["cell_line"]) & (kept["condition"] == cond["condition"])
        ]
        conditions.append(
            {
                "cell_line": cond["cell_line"],
                "condition": cond["condition"],
                "n_cells": int(len(sel)),
                "n_images": int(sel["image_id"].nunique()),
                "membrane_her2_mean": float(sel["membrane_her2"].mean()),
                "nuclear_fraction_mean": float(sel["nuclear_fraction"].mean()),
                "membrane_her2_population": cond["membrane_her2"],
                "nuclear_fraction_population": cond["nuclear_fraction"],
            }
        )
    for c in conditions:
        ref = next(
            r for r in conditions if r["cell_line"] == c["cell_line"] and r["condition"] == "T-R"
        )
        c["membrane_her2_ratio_to_TR"] = c["membrane_her2_mean"] / ref["membrane_her2_mean"]
    defect_text = {
        "out_of_focus": f"defocused: extra Gaussian blur sigma {p['defocus_sigma_um']} um",
        "saturated": "over-exposed: about "
        f"{p['saturated_band_fraction']:.0%} of the HER2 membrane band clipped at 65535",
    }
    bad_fields = []
    for f in fields:
        if f["defect"]:
            bad_fields.append(
                {
                    "image_id": f["image_id"],
                    "defect": f["defect"],
                    "description": defect_text[f["defect"]],
                    "saturated_pixels_her2": int((f["image"][0] == 65535).sum()),
                    "saturated_pixels_nuclear": int((f["image"][1] == 65535).sum()),
                }
            )
    params_json = {k: (list(v) if isinstance(v, tuple) else v) for k, v in p.items()}
    return {
        "generator": "sepher.simulate.if_images.simulate_demo_if",
        "seed": seed,
        "simulated": True,
        "definitions": {
            "membrane_her2": "mean HER2 above the non-specific background in the membrane band "
            f"(cell pixels within {p['membrane_band_um']} um of the cell edge, outside the "
            "nucleus), on the noise-free unblurred object at illumination 1 (ADU); a "
            "measurement on the image sees it times illumination_mean and PSF-blurred",
            "nuclear_fraction": "nuclear / whole-cell integrated HER2 above background",
            "areas": "pixel counts of the truth labels x pixel area (um^2)",
            "condition_means": "means over cells in good fields not touching the field border",
            "her2_background_adu": "non-specific HER2 background above the camera offset, "
            "times the illumination",
        },
        "conditions": conditions,
        "replicates": replicate_levels,
        "bad_fields": bad_fields,
        "design": {k: v for k, v in design.items() if k not in ("conditions", "bad_fields")},
        "field_parameters": params_json,
    }


def _ome_metadata(image_id, channel_names, pixel_size_um, seed):
    return {
        "axes": "CYX",
        "UUID": str(uuid.uuid5(uuid.NAMESPACE_URL, f"sepher-demo-if:{seed}:{image_id}")),
        "Name": image_id,
        "PhysicalSizeX": pixel_size_um,
        "PhysicalSizeXUnit": "µm",
        "PhysicalSizeY": pixel_size_um,
        "PhysicalSizeYUnit": "µm",
        "Channel": {"Name": list(channel_names)},
    }


def _write_tiff(path, data, pixel_size_um, *, ome_metadata=None):
    px_per_cm = 1e4 / pixel_size_um
    kwargs = {
        "photometric": "minisblack",
        "compression": "zlib",
        "compressionargs": {"level": 9},
        "predictor": True,
        "resolution": (px_per_cm, px_per_cm),
        "resolutionunit": "CENTIMETER",
        "software": "sepher.simulate.if_images",
        "datetime": None,
    }
    if ome_metadata is not None:
        tifffile.imwrite(path, data, ome=True, metadata=ome_metadata, **kwargs)
    else:
        tifffile.imwrite(path, data, metadata=None, **kwargs)


def write_demo_if_images(out_dir, seed: int = 20202) -> dict:
    """Write the demo IF data set under ``out_dir`` (byte-identical on every call).

    Parameters
    ----------
    out_dir : path
        Folder of the sample sheet (the project's ``resources/demo``).
        Written: ``images_if.tsv`` (sample sheet IF rows, paths relative to
        ``out_dir``), ``images/if/<image_id>.ome.tif`` (uint16 C, Y, X;
        zlib-compressed OME-TIFF with PhysicalSizeX/Y and resolution tags),
        ``truth/if_truth.csv`` (per cell), ``truth/if_truth.json`` (per
        condition, per replicate, bad fields, model),
        ``truth/if_labels/<image_id>_nuclei.tif`` and ``_cells.tif``
        (compressed uint8/uint16 label images).
    seed : int, default 20202
        Seed of the simulation.

    Returns
    -------
    dict
        The truth dictionary written to ``if_truth.json``.
    """
    out = Path(out_dir)
    image_dir = out / "images" / "if"
    label_dir = out / "truth" / "if_labels"
    for d in (image_dir, label_dir):
        d.mkdir(parents=True, exist_ok=True)
    fields, cells_truth, truth = simulate_demo_if(seed)
    px = float(default_field_parameters()["pixel_size_um"])
    rows = []
    for f in fields:
        names = ["HER2", "DAPI"] + (["membrane"] if f["membrane_marker"] else [])
        rel = f"images/if/{f['image_id']}.ome.tif"
        _write_tiff(
            out / rel, f["image"], px, ome_metadata=_ome_metadata(f["image_id"], names, px, seed)
        )
        for kind in ("nuclei", "cells"):
            labels = f[kind]
            dtype = np.uint8 if labels.max() <= 255 else np.uint16
            _write_tiff(label_dir / f"{f['image_id']}_{kind}.tif", labels.astype(dtype), px)
        rows.append(
            {
                "image_id": f["image_id"],
                "path": rel,
                "assay": "IF",
                "pixel_size_um": px,
                "cell_line": f["cell_line"],
                "condition": f["condition"],
                "replicate": f["replicate"],
                "her2_channel": 0,
                "nuclear_channel": 1,
                "membrane_channel": 2 if f["membrane_marker"] else "",
            }
        )
    sheet = pd.DataFrame(rows, columns=list(SHEET_COLUMNS))
    (out / "images_if.tsv").write_bytes(
        sheet.to_csv(sep="\t", index=False, lineterminator="\n").encode("utf-8")
    )
    (out / "truth" / "if_truth.csv").write_bytes(
        cells_truth.to_csv(index=False, lineterminator="\n", float_format="%.6g").encode("utf-8")
    )
    (out / "truth" / "if_truth.json").write_bytes(
        (json.dumps(truth, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
    )
    return truth
