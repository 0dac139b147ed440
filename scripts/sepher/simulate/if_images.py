"""Simulated HER2 immunofluorescence fields with per-cell truth (demo data).

The SePHER imaging data are not public. This module renders small widefield
fluorescence fields of HER2+ breast cancer cells with a known truth for every
cell, following the study's design (Bon, Pizzuti et al. 2020): two cell lines
(SKBR3, BT474), parental, trastuzumab-resistant (T-R) and trastuzumab +
pertuzumab-resistant (TP-R) cells, where TP-R cells have much less HER2 at the
plasma membrane, a less complete membrane ring and more HER2 in the nucleus;
and T-R cells exposed in sequence to trastuzumab, pertuzumab or both
(conditions ``T-R>T``, ``T-R>P``, ``T-R>T+P``), where membrane HER2 falls
with pertuzumab exposure.

Two renderers:

* :func:`render_widefield_field` (the demo data set): a 3-D model that shares
  nothing with the analysis's 2-D compartments, so the demo does not flatter
  the analysis. Described below.
* :func:`render_field`: the earlier 2-D model (HER2 painted into the
  analysis's own 1 um membrane band, PSF sigma 0.3 um, no haze). Fast at any
  field size; kept for the imaging benchmark (``bench/bench_imaging.py``).

3-D widefield model (:func:`default_widefield_parameters`; lengths in um):

* **Layout.** Cell islands (a thresholded smooth random field), elliptical
  nuclear footprints placed by random sequential adsorption with touching
  sister pairs, Voronoi-like cells at most ``max_cytoplasm_um`` beyond the
  nucleus, as in the 2-D model.
* **Cells in 3-D** (voxels ``pixel_size_um`` x ``pixel_size_um`` x
  ``z_step_um``). Interphase cells are slabs on the coverslip, 3-4.5 um high
  and lower at their edge, rising in a dome over an ellipsoidal nucleus so an
  apical membrane sheet lies over the nucleus. Mitotic cells (4 %) are round
  spheroids with condensed, bright chromatin (a metaphase plate or a
  prometaphase ball); dead cells (5 %) are small spheroids with 2-6 bright
  nuclear fragments and little HER2. Debris: bright specks in every channel.
* **HER2.** On the plasma membrane, a surface: the exposed voxel faces of each
  cell. The lateral membrane (faces at the cell's edge) carries HER2 on
  contiguous arcs covering a drawn angular fraction of the circumference
  (``membrane_completeness``, Beta per cell; gaps at 5 % density); the
  apical sheet (over the nucleus too) and the basal sheet carry 0.5 and 0.3
  of the cell's mean lateral density. Plus a diffuse cytoplasmic haze,
  vesicular and perinuclear puncta, and nuclear HER2 that is speckled and
  excluded from nucleoli, its amount set so the cell's 3-D nuclear fraction
  is the drawn one.
* **Nuclear stain and membrane marker.** DAPI with per-nucleus brightness,
  chromatin texture, chromocentres and dim nucleoli. A WGA-like membrane
  marker (channel 2, in every field): the whole plasma membrane, a Golgi
  blob next to the nucleus and vesicles, independent of HER2.
* **Optics.** Every object plane is blurred by the widefield PSF slice at its
  defocus (Gaussian, sigma 0.65 um in focus widening with defocus; energy a
  3-D Gaussian core of axial sigma 2 um plus a constant widefield floor) and
  summed into the recorded plane (:func:`widefield_image`), so out-of-focus
  light from the whole cell reaches it as haze. Focus on the nuclei's
  mid-height; z-stacks record ``zstack_planes`` planes ``z_step_um`` apart.
* **Camera.** Smooth vignetting, Poisson photon noise
  (``electrons_per_adu``), Gaussian read noise, offset 100 ADU, 16-bit
  clipping. Tuned so TP-R membrane SNR (membrane net signal / background
  noise SD) is about 4 and parental about 13.
* **Bad fields.** ``"out_of_focus"``: focal plane ``defocus_um`` below the
  nuclei; ``"saturated"``: exposure so long that ``saturated_band_fraction``
  of the lateral-membrane pixels clip at 65535.

Truth (per cell) is measured on the noise-free 3-D object at illumination 1
(never with :mod:`sepher.imaging`): membrane HER2 per unit lateral membrane,
the drawn membrane completeness, the nuclear fraction over the whole cell, in
the mid-nuclear plane and in an ideal 2-D projection, the cell kind, and the
2-D truth labels (projections of the 3-D cells; 3-D labels for z-stacks).

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
from scipy import fft as sp_fft
from scipy import ndimage as ndi
from skimage import segmentation

from sepher.io.samplesheet import IF_SHEET_COLUMNS

__all__ = [
    "CELL_KINDS",
    "CELL_LINES",
    "CONDITION_SLUGS",
    "TRUTH_COLUMNS",
    "default_if_design",
    "default_field_parameters",
    "default_widefield_parameters",
    "image_id_for",
    "membrane_band",
    "render_field",
    "render_widefield_field",
    "simulate_demo_if",
    "widefield_image",
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

#: Cell kinds of the 3-D model (``cell_kind`` in the truth table).
CELL_KINDS = ("interphase", "mitotic", "dead")

#: Column order of the per-cell truth table of the demo (``if_truth.csv``).
TRUTH_COLUMNS = (
    "image_id",
    "cell_id",
    "cell_line",
    "condition",
    "replicate",
    "field",
    "bad_field",
    "zstack",
    "cell_kind",
    "touches_border",
    "centroid_y_um",
    "centroid_x_um",
    "nucleus_area_um2",
    "cell_area_um2",
    "cell_height_um",
    "nucleus_z_um",
    "focus_z_um",
    "membrane_area_um2",
    "membrane_her2",
    "membrane_completeness",
    "membrane_her2_total",
    "membrane_her2_over_nucleus",
    "cytoplasm_her2",
    "puncta_her2",
    "nucleus_her2",
    "nuclear_fraction_cell",
    "nuclear_fraction_midplane",
    "nuclear_fraction_projected",
    "illumination_mean",
)


def default_if_design() -> dict:
    """The demo design: conditions, their population truth and the layout.

    Returns
    -------
    dict
        ``conditions``: list of dicts (``cell_line``, ``condition``,
        ``membrane_her2`` population mean HER2 per um^2 of lateral plasma
        membrane, gaps included (ADU per um^2), ``nuclear_fraction``
        population mean whole-cell (3-D) nuclear fraction,
        ``membrane_completeness`` mean angular membrane coverage and its Beta
        ``completeness_concentration``, ``puncta_ratio`` HER2 in vesicular
        and perinuclear puncta relative to membrane HER2,
        ``membrane_marker`` whether the images have a membrane-marker
        channel: all of them). TP-R membrane HER2 is 38 % of T-R (parental 120 %), its
        coverage lower and more variable (mean 0.55) and its nuclear
        fraction 0.35 vs 0.10 (the study's "HER2 moves from the membrane to
        the nucleus"); in the sequential design membrane HER2 and coverage
        fall with pertuzumab exposure (T-R>T ~95 %, T-R>P ~65 %, T-R>T+P
        ~45 % of T-R). ``replicates`` (biological replicates per
        condition), ``fields`` (good fields per replicate), ``bad_fields``:
        list of extra fields (``cell_line``, ``condition``, ``replicate``,
        ``defect``), ``zstack_fields``: extra fields recorded as z-stacks
        (``cell_line``, ``condition``, ``replicate``), and the
        between-replicate and between-cell variation.
    """
    # membrane HER2 (ADU per um^2 of lateral membrane), whole-cell nuclear fraction,
    # mean membrane coverage, its Beta concentration, puncta / membrane HER2
    per_line = {
        "SKBR3": {
            "parental": (34.8, 0.06, 0.92, 25.0, 0.06),
            "T-R": (29.0, 0.10, 0.88, 20.0, 0.08),
            "TP-R": (11.0, 0.35, 0.55, 8.0, 0.25),
            "T-R>T": (27.6, 0.11, 0.86, 20.0, 0.09),
            "T-R>P": (18.9, 0.20, 0.72, 12.0, 0.15),
            "T-R>T+P": (13.1, 0.28, 0.62, 10.0, 0.20),
        },
        "BT474": {
            "parental": (31.3, 0.05, 0.92, 25.0, 0.06),
            "T-R": (26.1, 0.10, 0.88, 20.0, 0.08),
            "TP-R": (9.9, 0.35, 0.55, 8.0, 0.25),
            "T-R>T": (24.8, 0.11, 0.86, 20.0, 0.09),
            "T-R>P": (16.9, 0.20, 0.72, 12.0, 0.15),
            "T-R>T+P": (11.8, 0.28, 0.62, 10.0, 0.20),
        },
    }
    conditions = []
    for line in CELL_LINES:
        for condition, (membrane, fraction, cov, conc, puncta) in per_line[line].items():
            conditions.append(
                {
                    "cell_line": line,
                    "condition": condition,
                    "membrane_her2": membrane,
                    "nuclear_fraction": fraction,
                    "membrane_completeness": cov,
                    "completeness_concentration": conc,
                    "puncta_ratio": puncta,
                    "membrane_marker": True,
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
        "zstack_fields": [
            {"cell_line": line, "condition": condition, "replicate": 1}
            for line in CELL_LINES
            for condition in ("parental", "TP-R")
        ],
        # log-normal SD of the replicate factor on membrane HER2; SD of the
        # replicate shift of the nuclear fraction and of the coverage on the logit scale
        "replicate_membrane_sd_log": 0.08,
        "replicate_fraction_sd_logit": 0.10,
        "replicate_completeness_sd_logit": 0.10,
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


def default_widefield_parameters() -> dict:
    """Parameters of one field of the 3-D widefield model (units in the key names).

    Returns
    -------
    dict
        Sampling: 256 x 256 pixels of 0.65 um (166 x 166 um, as
        :func:`default_field_parameters`), object voxels ``z_step_um`` 0.5 um
        high (also the z-stack step). Layout as the 2-D model. Cell shape:
        interphase slabs 3-4.5 um high over ellipsoidal nuclei (half-height
        1.8-2.5 um, 0.5 um above the coverslip) covered by an apical sheet
        0.6 um above the nucleus; 4 % mitotic (round, 15-18 um across,
        condensed chromatin 2.5x as bright), 5 % dead cells (7-10 um, 2-6
        bright nuclear fragments, 15 % of the HER2); 2-8 debris specks per
        field. HER2 membrane densities relative to the lateral membrane:
        apical 0.5, basal 0.3, coverage gaps 0.05; cytoplasmic haze 15 % of
        the membrane HER2; about 25 puncta per cell (half perinuclear);
        speckled nuclear HER2 excluded from nucleoli (15 %). Optics: PSF
        sigma 0.65 um in focus, widening by 0.5 um per um of defocus, axial
        sigma 2 um and a widefield floor of 25 % of the in-focus energy per
        plane (:func:`widefield_image`); focus on the nuclei's mid-height
        (SD 0.3 um), a defocused field 5 um below. Camera: sCMOS-like, 4
        e-/ADU, read noise 1.6 e-, offset 100 ADU, 16 bit; a z-stack has 9
        planes.
    """
    return {
        # sampling and layout
        "shape_px": (256, 256),
        "pixel_size_um": 0.65,
        "z_step_um": 0.5,
        "island_fraction": 0.5,
        "island_scale_um": 22.0,
        "nucleus_diameter_um": (8.0, 14.0),
        "nucleus_aspect": (1.0, 1.5),
        "cytoplasm_gap_um": (5.0, 8.0),
        "touching_fraction": 0.3,
        "max_cytoplasm_um": 7.0,
        # 3-D shape
        "cell_height_um": (3.0, 4.5),
        "edge_taper_um": 3.0,
        "nucleus_half_height_um": (1.8, 2.5),
        "nucleus_base_um": 0.5,
        "apical_cover_um": 0.6,
        "nucleoli": (1, 3),
        "nucleolus_radius_um": (0.6, 1.2),
        # mitotic and dead cells, debris
        "mitotic_fraction": 0.04,
        "mitotic_radius_um": (7.5, 9.0),
        "mitotic_nuclear_fraction": 0.02,
        "mitotic_dapi_gain": 2.5,
        "dead_fraction": 0.05,
        "dead_radius_um": (3.5, 5.0),
        "dead_fragments": (2, 6),
        "dead_fragment_radius_um": (0.6, 1.3),
        "dead_her2_ratio": 0.15,
        "dead_dapi_gain": 3.0,
        "debris_per_field": (2, 8),
        # amounts (ADU) of one debris speck in HER2, nuclear stain, marker
        "debris_amount": (1500.0, 5000.0, 1500.0),
        # HER2 object
        "apical_ratio": 0.5,
        "basal_ratio": 0.3,
        "gap_ratio": 0.05,
        "max_gaps": 4,
        "membrane_texture_cv": 0.3,
        "cytoplasm_haze_ratio": 0.15,
        "cytoplasm_texture_cv": 0.15,
        "puncta_per_cell": 25,
        "perinuclear_share": 0.5,
        "perinuclear_um": 3.0,
        "nuclear_speckle_fraction": 0.04,
        "nuclear_speckle_gain": 3.0,
        "nucleolus_her2_ratio": 0.15,
        "her2_background": 30.0,
        # nuclear stain (ADU per voxel)
        "dapi_background": 6.0,
        "dapi_cytoplasm": 1.5,
        "dapi_nucleus": 80.0,
        "dapi_nucleus_sd_log": 0.35,
        "dapi_texture_cv": 0.2,
        "nucleolus_dapi_ratio": 0.35,
        # membrane marker (ADU per um^2 of membrane, per voxel)
        "marker_background": 10.0,
        "marker_membrane": 60.0,
        "marker_cytoplasm": 3.0,
        "marker_golgi_ratio": 0.08,
        "marker_vesicles": 10,
        "marker_vesicle_ratio": 0.05,
        # optics
        "psf_sigma_um": 0.65,
        "psf_spread_per_um": 0.5,
        "psf_axial_sigma_um": 2.0,
        "psf_haze": 0.25,
        "fft_pad_px": 32,
        "focus_jitter_um": 0.3,
        "defocus_um": 5.0,
        "vignetting": (0.15, 0.3),
        # camera
        "electrons_per_adu": 4.0,
        "read_noise_electrons": 1.6,
        "camera_offset_adu": 100.0,
        "saturated_band_fraction": 0.4,
        "zstack_planes": 9,
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
        DataFrame (one row per cell: ``cell_id``, ``touches_border``,
        centroids, areas, ``membrane_her2``, ``cytoplasm_her2``,
        ``nucleus_her2`` (means above background), ``nuclear_fraction``,
        ``illumination_mean``).
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


# ----------------------------------------------------------------------------- widefield 3-D model


def _pieces_rho(yy, xx, piece, px):
    """Elliptical radius of pixel centres w.r.t. a piece's footprint ellipse."""
    cy, cx, a, b, theta = piece["cy"], piece["cx"], piece["a"], piece["b"], piece["theta"]
    dy, dx = yy - cy, xx - cx
    u = dx * np.cos(theta) + dy * np.sin(theta)
    v = -dx * np.sin(theta) + dy * np.cos(theta)
    return np.sqrt((u / a) ** 2 + (v / b) ** 2)


def _cell_shapes(rng, ellipses, p):
    """Draw each cell's kind and 3-D shape around the placed nuclei.

    Returns a list of dicts (one per nucleus, in placement order): ``kind``,
    the centre ``cy``, ``cx`` (px), ``pieces`` (ellipsoids with a vertical
    axis: footprint ellipse ``cy, cx, a, b, theta`` in px, centre height
    ``zc`` and vertical semi-axis ``c`` in um) and the cell's shape
    (``height`` um for interphase slabs; ``radius`` px, ``rz``, ``zc`` um for
    round mitotic and dead cells).
    """
    px = float(p["pixel_size_um"])
    shapes = []
    for cy, cx, a, b, theta in ellipses:
        u = rng.uniform()
        if u < p["mitotic_fraction"]:
            radius_um = rng.uniform(*p["mitotic_radius_um"])
            rz = 0.75 * radius_um
            zc = 0.95 * rz
            if rng.uniform() < 0.5:  # metaphase plate seen edge-on
                ca, cb = rng.uniform(3.5, 5.0), rng.uniform(0.8, 1.3)
                cz = rng.uniform(2.5, 3.5)
            else:  # prometaphase ball of condensed chromosomes
                ca = cb = rng.uniform(2.5, 3.3)
                cz = 0.9 * ca
            piece = {"cy": cy, "cx": cx, "a": ca / px, "b": cb / px, "theta": rng.uniform(0, np.pi)}
            piece.update({"zc": zc, "c": cz})
            shapes.append(
                {
                    "kind": "mitotic",
                    "cy": cy,
                    "cx": cx,
                    "pieces": [piece],
                    "radius": radius_um / px,
                    "rz": rz,
                    "zc": zc,
                }
            )
        elif u < p["mitotic_fraction"] + p["dead_fraction"]:
            radius_um = rng.uniform(*p["dead_radius_um"])
            rz = 0.8 * radius_um
            pieces = []
            for _ in range(rng.integers(p["dead_fragments"][0], p["dead_fragments"][1] + 1)):
                rf = rng.uniform(*p["dead_fragment_radius_um"])
                r, phi = 0.5 * radius_um * np.sqrt(rng.uniform()), rng.uniform(0, 2 * np.pi)
                zf = float(np.clip(rz + rng.normal(0, 0.25 * rz), rf, 2 * rz - rf))
                pieces.append(
                    {
                        "cy": cy + r * np.sin(phi) / px,
                        "cx": cx + r * np.cos(phi) / px,
                        "a": rf / px,
                        "b": rf / px,
                        "theta": 0.0,
                        "zc": zf,
                        "c": rf,
                    }
                )
            shapes.append(
                {
                    "kind": "dead",
                    "cy": cy,
                    "cx": cx,
                    "pieces": pieces,
                    "radius": radius_um / px,
                    "rz": rz,
                    "zc": rz,
                }
            )
        else:
            c = rng.uniform(*p["nucleus_half_height_um"])
            piece = {"cy": cy, "cx": cx, "a": a, "b": b, "theta": theta}
            piece.update({"zc": p["nucleus_base_um"] + c, "c": c})
            shapes.append(
                {
                    "kind": "interphase",
                    "cy": cy,
                    "cx": cx,
                    "pieces": [piece],
                    "height": rng.uniform(*p["cell_height_um"]),
                }
            )
    return shapes


def _render_pieces(shape, shapes, px):
    """Label image of the nuclear footprints; overlaps go to the nearer piece."""
    labels = np.zeros(shape, dtype=np.int32)
    best = np.full(shape, np.inf)
    for k, cell in enumerate(shapes, start=1):
        for piece in cell["pieces"]:
            r = int(np.ceil(max(piece["a"], piece["b"]))) + 2
            cy, cx = piece["cy"], piece["cx"]
            y0, y1 = max(0, int(cy) - r), min(shape[0], int(cy) + r + 2)
            x0, x1 = max(0, int(cx) - r), min(shape[1], int(cx) + r + 2)
            if y0 >= y1 or x0 >= x1:
                continue
            yy, xx = np.mgrid[y0:y1, x0:x1]
            rho = _pieces_rho(yy, xx, piece, px)
            win = (rho <= 1.0) & (rho < best[y0:y1, x0:x1])
            labels[y0:y1, x0:x1][win] = k
            best[y0:y1, x0:x1][win] = rho[win]
    return labels


def _round_cells(cells, nuclei, shapes, px):
    """Mitotic and dead cells are round: a disc around the centre (kept off
    other nuclei), taking cytoplasm from their neighbours; the rest of their
    Voronoi region becomes background (rounded cells detach)."""
    cells = cells.copy()
    yy, xx = np.indices(cells.shape)
    for k, cell in enumerate(shapes, start=1):
        if cell["kind"] == "interphase":
            continue
        dist = np.hypot(yy - cell["cy"], xx - cell["cx"])
        others = (nuclei > 0) & (nuclei != k)
        radius = cell["radius"]
        if others.any():
            radius = min(radius, float(dist[others].min()) - 1.0 / px)
        own = nuclei == k
        if own.any():
            radius = max(radius, float(dist[own].max()) + 0.5)
        cell["radius"] = radius
        disc = dist <= radius
        cells[disc & ((nuclei == 0) | own)] = k
        cells[(cells == k) & ~disc & ~own] = 0
    return cells


def _arc_gate(theta, start, arcs, gaps, gap_level):
    """Membrane coverage at angles ``theta``: 1 on the arcs, ``gap_level`` in the gaps."""
    edges = np.cumsum(np.ravel(np.column_stack([arcs, gaps])))
    rel = np.mod(theta - start, 2 * np.pi)
    segment = np.searchsorted(edges, rel, side="right")
    return np.where(segment % 2 == 0, 1.0, gap_level)


def _draw_coverage(rng, mean, concentration, max_gaps):
    """Angular membrane coverage of one cell: contiguous arcs separated by gaps.

    Returns (coverage, start angle, arc lengths, gap lengths) in radians;
    coverage is Beta(mean * concentration, (1 - mean) * concentration).
    """
    coverage = float(rng.beta(mean * concentration, (1 - mean) * concentration))
    coverage = min(max(coverage, 1e-3), 1.0)
    n_gaps = int(min(max_gaps, 1 + rng.poisson(1.0)))
    arcs = rng.dirichlet(np.full(n_gaps, 2.0)) * coverage * 2 * np.pi
    gaps = rng.dirichlet(np.full(n_gaps, 2.0)) * (1 - coverage) * 2 * np.pi
    return coverage, rng.uniform(0, 2 * np.pi), arcs, gaps


def _psf_slice(defocus_um, p):
    """Energy and lateral sigma (um) of the widefield PSF slice at a defocus.

    A Gaussian-beam approximation of a widefield PSF: the slice at defocus
    dz is a 2-D Gaussian of sigma ``sqrt(s0^2 + (k dz)^2)`` (``s0`` =
    ``psf_sigma_um``, ``k`` = ``psf_spread_per_um``) carrying energy
    ``(1 - h) exp(-dz^2 / (2 sz^2)) + h`` (``sz`` = ``psf_axial_sigma_um``,
    ``h`` = ``psf_haze``): a 3-D Gaussian core plus a widefield floor, the
    out-of-focus light no optical sectioning removes.
    """
    dz = np.asarray(defocus_um, dtype=float)
    h = p["psf_haze"]
    energy = (1 - h) * np.exp(-(dz**2) / (2 * p["psf_axial_sigma_um"] ** 2)) + h
    sigma = np.hypot(p["psf_sigma_um"], p["psf_spread_per_um"] * dz)
    return energy, sigma


def widefield_image(objects, z_um, focus_um, params=None) -> np.ndarray:
    """Image 3-D objects through the widefield PSF at given focal planes.

    Every object plane is blurred with the PSF slice at its defocus
    (:func:`_psf_slice`) and the planes are summed, so out-of-focus light
    reaches the recorded plane as haze. The blur is a product in Fourier
    space (float32 FFT of the planes padded by ``fft_pad_px`` reflected
    pixels, so the field edge does not wrap around).

    Parameters
    ----------
    objects : ndarray, shape (C, Z, Y, X) or (Z, Y, X)
        Fluorophore amount per voxel (one array per channel).
    z_um : ndarray, shape (Z,)
        Heights of the voxel centres (um).
    focus_um : sequence of float
        Focal planes (um).
    params : dict, optional
        Overrides of :func:`default_widefield_parameters` (PSF, pixel size).

    Returns
    -------
    ndarray, shape (C, len(focus_um), Y, X) (or without C)
        Recorded intensity (same units as ``objects``); a voxel in focus
        keeps its integrated amount.
    """
    p = {**default_widefield_parameters(), **(params or {})}
    squeeze = objects.ndim == 3
    objects = objects[None] if squeeze else objects
    n_channels, _nz, height, width = objects.shape
    pad = int(p["fft_pad_px"])
    padded = np.pad(
        objects.astype(np.float32), ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="reflect"
    )
    shape = padded.shape[-2:]
    spectra = sp_fft.rfft2(padded, workers=1)
    k2 = (np.fft.fftfreq(shape[0])[:, None] ** 2 + np.fft.rfftfreq(shape[1])[None, :] ** 2).astype(
        np.float32
    )
    px = float(p["pixel_size_um"])
    out = np.empty((n_channels, len(focus_um), height, width))
    for i, focus in enumerate(focus_um):
        energy, sigma = _psf_slice(np.asarray(z_um) - focus, p)
        gain = energy[:, None, None] * np.exp(-2 * np.pi**2 * (sigma / px)[:, None, None] ** 2 * k2)
        spectrum = np.einsum("czyx,zyx->cyx", spectra, gain.astype(np.float32))
        image = sp_fft.irfft2(spectrum, s=shape, workers=1)
        out[:, i] = image[:, pad : pad + height, pad : pad + width]
    return out[0] if squeeze else out


def _build_volume(rng, shapes, nuclei, cells, p):
    """Voxelise the cells: 3-D cell labels, nucleus and nucleolus masks.

    Interphase cells are slabs on the coverslip (height ``height``, tapering
    to 75 % over ``edge_taper_um`` at the cell edge) rising over the
    ellipsoidal nucleus as a dome ``apical_cover_um`` above it; mitotic and
    dead cells are spheroids. Each nuclear footprint pixel holds at least one
    nuclear voxel, so the 2-D truth labels are the projections of the 3-D
    ones.
    """
    px, dz = float(p["pixel_size_um"]), float(p["z_step_um"])
    inner = segmentation.find_boundaries(cells, mode="inner", connectivity=1) & (cells > 0)
    d_edge = (ndi.distance_transform_edt(~inner) + 0.5) * px
    objects = ndi.find_objects(cells)
    spread = 1.5 / px
    per_cell = []
    for k, (cell, sl) in enumerate(zip(shapes, objects, strict=True), start=1):
        yy, xx = np.mgrid[sl]
        mask = cells[sl] == k
        if cell["kind"] == "interphase":
            top = cell["height"] * (0.75 + 0.25 * np.minimum(1.0, d_edge[sl] / p["edge_taper_um"]))
            piece = cell["pieces"][0]
            wide = {**piece, "a": piece["a"] + spread, "b": piece["b"] + spread}
            rho = _pieces_rho(yy, xx, wide, px)
            dome = piece["zc"] + (piece["c"] + p["apical_cover_um"]) * np.sqrt(
                np.clip(1 - rho**2, 0, None)
            )
            top = np.maximum(top, dome)
            bottom = np.zeros_like(top)
        else:
            r = np.hypot(yy - cell["cy"], xx - cell["cx"]) / cell["radius"]
            half = np.maximum(cell["rz"] * np.sqrt(np.clip(1 - r**2, 0, None)), dz)
            bottom = np.maximum(cell["zc"] - half, 0.0)
            top = cell["zc"] + half
        intervals = []
        for piece in cell["pieces"]:
            rho = _pieces_rho(yy, xx, piece, px)
            foot = (rho <= 1.0) & (nuclei[sl] == k)
            half = np.maximum(piece["c"] * np.sqrt(np.clip(1 - rho**2, 0, None)), dz / 2)
            lo, hi = np.maximum(piece["zc"] - half, 0.0), piece["zc"] + half
            top = np.where(foot, np.maximum(top, hi + dz), top)
            bottom = np.where(foot, np.minimum(bottom, lo), bottom)
            intervals.append((foot, lo, hi))
        per_cell.append((sl, mask, bottom, top, intervals))
    top_max = max(float(t[m].max()) for _sl, m, _b, t, _i in per_cell if m.any())
    nz = int(np.ceil(top_max / dz)) + 1
    z = (np.arange(nz) + 0.5) * dz
    zc = z[:, None, None]
    labels = np.zeros((nz,) + cells.shape, dtype=np.int32)
    nucleus = np.zeros(labels.shape, dtype=bool)
    nucleolus = np.zeros(labels.shape, dtype=bool)
    heights = np.zeros(len(shapes))
    for k, (sl, mask, bottom, top, intervals) in enumerate(per_cell, start=1):
        vox = mask & (zc >= bottom) & (zc < top)
        labels[(slice(None),) + sl][vox] = k
        heights[k - 1] = float(top[mask].max() - bottom[mask].min())
        nuc = np.zeros(vox.shape, dtype=bool)
        for foot, lo, hi in intervals:
            nuc |= foot & (zc >= lo - 1e-9) & (zc <= hi + 1e-9)
        nuc &= vox
        nucleus[(slice(None),) + sl] |= nuc
        cell = shapes[k - 1]
        if cell["kind"] != "interphase":
            continue
        piece = cell["pieces"][0]
        yy, xx = np.mgrid[sl]
        for _ in range(rng.integers(p["nucleoli"][0], p["nucleoli"][1] + 1)):
            radius = rng.uniform(*p["nucleolus_radius_um"])
            direction = rng.normal(size=3)
            direction *= 0.45 * rng.uniform() ** (1 / 3) / np.linalg.norm(direction)
            u, v = direction[0] * piece["a"], direction[1] * piece["b"]
            ny = piece["cy"] + u * np.sin(piece["theta"]) + v * np.cos(piece["theta"])
            nx = piece["cx"] + u * np.cos(piece["theta"]) - v * np.sin(piece["theta"])
            nzc = piece["zc"] + direction[2] * piece["c"]
            ball = ((yy - ny) * px) ** 2 + ((xx - nx) * px) ** 2 + (zc - nzc) ** 2 <= radius**2
            nucleolus[(slice(None),) + sl] |= ball & nuc
    return {
        "labels": labels,
        "nucleus": nucleus,
        "nucleolus": nucleolus,
        "z": z,
        "heights": heights,
    }


def _membrane_faces(labels, cells, p):
    """Exposed membrane area per voxel (um^2), by orientation.

    A voxel face is membrane where the neighbouring voxel belongs to another
    cell or to the outside (never across the field border). Returns the
    lateral area (faces towards another cell or the background in 2-D: the
    cell's edge), the apical area (upward faces and the sides of steps of the
    cell's own top surface) and the basal area (downward faces).
    """
    px, dz = float(p["pixel_size_um"]), float(p["z_step_um"])
    inside = labels > 0
    zpad = np.pad(labels, ((1, 1), (0, 0), (0, 0)))
    up = inside & (zpad[2:] != labels)
    down = inside & (zpad[:-2] != labels)
    lateral = np.zeros(labels.shape, dtype=np.float32)
    steps = np.zeros(labels.shape, dtype=np.float32)
    lpad = np.pad(labels, ((0, 0), (1, 1), (1, 1)), mode="edge")
    cpad = np.pad(cells, 1, mode="edge")
    core = (slice(1, -1), slice(1, -1))
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        shifted = (slice(1 + dy, lpad.shape[1] - 1 + dy), slice(1 + dx, lpad.shape[2] - 1 + dx))
        exposed = inside & (lpad[(slice(None),) + shifted] != labels)
        edge = cpad[shifted] != cpad[core]
        lateral += exposed & edge
        steps += exposed & ~edge
    face = px * dz
    return {
        "lateral": lateral * face,
        "apical": up * px**2 + steps * face,
        "basal": down * np.float32(px**2),
    }


def _scatter_puncta(rng, n, candidates, total, size):
    """``n`` puncta (single voxels, log-normal amounts summing to ``total``)
    at random voxels among the flat indices ``candidates``."""
    out = np.zeros(size)
    if n == 0 or candidates.size == 0 or total <= 0:
        return out
    where = candidates[rng.integers(candidates.size, size=n)]
    amount = rng.lognormal(0.0, 0.5, n)
    np.add.at(out, where, total * amount / amount.sum())
    return out


def render_widefield_field(
    rng: np.random.Generator,
    membrane_her2: float,
    nuclear_fraction: float,
    *,
    membrane_completeness: float = 0.9,
    completeness_concentration: float = 20.0,
    puncta_ratio: float = 0.08,
    membrane_sd_log: float = 0.30,
    fraction_concentration: float = 30.0,
    defect: str | None = None,
    zstack: bool = False,
    params: dict | None = None,
) -> dict:
    """Render one widefield immunofluorescence field from a 3-D cell model.

    The renderer shares no model with the analysis (no membrane band): cells
    are 3-D objects imaged through a widefield PSF with out-of-focus haze and
    a Poisson-Gaussian camera (see the module docstring for the model).

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness (the field is a pure function of its state).
    membrane_her2 : float
        Population mean HER2 per unit area of lateral plasma membrane (gaps
        included), in ADU per um^2 (an amount in focus at illumination 1
        records its amount in ADU); each cell draws a log-normal value.
    nuclear_fraction : float
        Population mean whole-cell nuclear fraction (3-D: nuclear / cell
        HER2); each interphase and dead cell draws a Beta value.
    membrane_completeness : float, default 0.9
        Mean angular coverage of the lateral membrane by HER2; each cell
        draws a Beta value (concentration ``completeness_concentration``)
        split into contiguous arcs separated by 1-4 gaps.
    completeness_concentration : float, default 20.0
    puncta_ratio : float, default 0.08
        HER2 in vesicular and perinuclear puncta relative to membrane HER2.
    membrane_sd_log : float, default 0.30
        Log-normal SD of membrane HER2 between cells.
    fraction_concentration : float, default 30.0
        Beta concentration of the per-cell nuclear fraction.
    defect : {None, "out_of_focus", "saturated"}
        Render a bad field: focal plane ``defocus_um`` below the nuclei, or
        over-exposed so a fraction ``saturated_band_fraction`` of the lateral
        membrane pixels clip.
    zstack : bool, default False
        Record ``zstack_planes`` planes ``z_step_um`` apart centred on the
        focal plane (image C, Z, Y, X) instead of one plane.
    params : dict, optional
        Overrides of :func:`default_widefield_parameters`.

    Returns
    -------
    dict
        ``image`` uint16 (C, Y, X) or (C, Z, Y, X): HER2, nuclear stain,
        membrane marker; ``nuclei`` and ``cells`` int32 2-D truth labels
        (projections of the 3-D cells; nucleus k lies in cell k);
        ``nuclei_zyx`` and ``cells_zyx`` (3-D truth labels at the recorded
        planes, z-stacks only); ``illumination`` (Y, X); ``focus_um``
        (recorded planes' heights above the coverslip); ``n_debris``;
        ``cells_truth`` DataFrame (per cell, measured on the noise-free
        object at illumination 1).
    """
    p = {**default_widefield_parameters(), **(params or {})}
    if defect not in (None, "out_of_focus", "saturated"):
        raise ValueError(f"unknown defect {defect!r}")
    shape = tuple(p["shape_px"])
    px, dz = float(p["pixel_size_um"]), float(p["z_step_um"])

    # 2-D layout, then the kinds and 3-D shapes of the cells
    islands = _islands(rng, shape, p["island_fraction"], p["island_scale_um"] / px)
    shapes = _cell_shapes(rng, _place_nuclei(rng, islands, p), p)
    nuclei = _render_pieces(shape, shapes, px)
    cells = segmentation.expand_labels(nuclei, distance=p["max_cytoplasm_um"] / px)
    cells = np.where(islands | (nuclei > 0), cells, 0)
    cells = np.where(nuclei > 0, nuclei, cells)
    cells = _round_cells(cells, nuclei, shapes, px)
    cells = _keep_component_with_nucleus(cells, nuclei)
    present = np.unique(nuclei[nuclei > 0])
    shapes = [shapes[k - 1] for k in present]
    nuclei, cells = _relabel(nuclei, cells)
    n = int(cells.max())
    kinds = np.array([c["kind"] for c in shapes])
    interphase = kinds == "interphase"

    volume = _build_volume(rng, shapes, nuclei, cells, p)
    labels, z = volume["labels"], volume["z"]
    vshape = labels.shape
    plane = shape[0] * shape[1]
    faces = _membrane_faces(labels, cells, p)
    # the object as vectors over the voxels inside cells (flat indices `idx`)
    idx = np.flatnonzero(labels)
    lab = labels.ravel()[idx]
    pix = idx % plane
    zv = z[idx // plane]
    in_nuc = volume["nucleus"].ravel()[idx]
    in_nucleolus = volume["nucleolus"].ravel()[idx]
    lateral, apical, basal = (faces[key].ravel()[idx] for key in ("lateral", "apical", "basal"))
    is_round = np.concatenate([[False], ~interphase])[lab]
    cyto = ~in_nuc

    def per_cell(values, mask=None):
        weights = values if mask is None else values * mask
        return np.bincount(lab, weights=weights, minlength=n + 1)[1:]

    def per_voxel(values):
        return np.concatenate([[0.0], values])[lab]

    def texture(sigma_um, cv, volume=False):
        """Smooth multiplicative texture at the voxels: 3-D, or 2-D (one value per column)."""
        if volume:
            noise = ndi.gaussian_filter(
                rng.standard_normal(vshape, dtype=np.float32), sigma_um / px, truncate=3.0
            ).ravel()[idx]
        else:
            noise = ndi.gaussian_filter(rng.standard_normal(shape), sigma_um / px).ravel()[pix]
        return np.clip(1.0 + cv * noise / (noise.std() or 1.0), 0.05, None)

    # per-cell draws: membrane HER2, coverage arcs, nuclear fraction
    mu = np.log(membrane_her2) - membrane_sd_log**2 / 2
    m_cell = np.exp(rng.normal(mu, membrane_sd_log, n))
    m_cell[kinds == "dead"] *= p["dead_her2_ratio"]
    f_cell = rng.beta(
        nuclear_fraction * fraction_concentration,
        (1 - nuclear_fraction) * fraction_concentration,
        n,
    )
    f_cell[kinds == "mitotic"] = p["mitotic_nuclear_fraction"]
    yy, xx = np.indices(shape)
    count_cell = np.bincount(cells.ravel(), minlength=n + 1)[1:]
    cy = _label_sum(yy.astype(float), cells, n) / count_cell
    cx = _label_sum(xx.astype(float), cells, n) / count_cell
    gate = np.ones(shape)
    coverage = np.empty(n)
    arc_density = np.empty(n)
    gap = p["gap_ratio"]
    for k, sl in enumerate(ndi.find_objects(cells), start=1):
        cov, start, arcs, gaps = _draw_coverage(
            rng, membrane_completeness, completeness_concentration, p["max_gaps"]
        )
        coverage[k - 1] = cov
        arc_density[k - 1] = m_cell[k - 1] / (cov + gap * (1 - cov))
        mask = cells[sl] == k
        theta = np.arctan2(yy[sl] - cy[k - 1], xx[sl] - cx[k - 1])
        gate[sl][mask] = _arc_gate(theta[mask], start, arcs, gaps, gap)
    gate_v = gate.ravel()[pix]

    # HER2: lateral membrane on the arcs, apical and basal sheets (densities relative
    # to the cell's mean lateral density); round cells: one gated surface
    tex = texture(0.4, p["membrane_texture_cv"])
    lateral_her2 = per_voxel(arc_density) * lateral * gate_v * tex * ~is_round
    sheets = per_voxel(m_cell) * (p["apical_ratio"] * apical + p["basal_ratio"] * basal) * tex
    round_her2 = per_voxel(arc_density) * (lateral + apical + basal) * gate_v * tex
    membrane = np.where(is_round, round_her2, lateral_her2 + sheets)
    m_total = per_cell(membrane)
    # diffuse cytoplasmic haze
    haze_level = p["cytoplasm_haze_ratio"] * m_total / np.maximum(per_cell(cyto), 1)
    haze = per_voxel(haze_level) * cyto * texture(0.8, p["cytoplasm_texture_cv"])
    # vesicular puncta anywhere in the cytoplasm, perinuclear ones near the nucleus
    near = ndi.distance_transform_edt(nuclei == 0).ravel()[pix] * px <= p["perinuclear_um"]
    nuc_top = np.array([0.0] + [max(q["zc"] + q["c"] for q in c["pieces"]) for c in shapes])
    perinuclear = cyto & near & (zv <= nuc_top[lab])
    order = np.argsort(lab, kind="stable")
    bounds = np.searchsorted(lab[order], np.arange(1, n + 2))
    where, amounts = [], []
    share = p["perinuclear_share"]
    for k in range(1, n + 1):
        own = order[bounds[k - 1] : bounds[k]]
        total = puncta_ratio * m_total[k - 1]
        for pool, part in ((own[cyto[own]], 1 - share), (own[perinuclear[own]], share)):
            count = rng.poisson(p["puncta_per_cell"] * part)
            if count == 0 or pool.size == 0:
                continue
            weights = rng.lognormal(0.0, 0.5, count)
            where.append(pool[rng.integers(pool.size, size=count)])
            amounts.append(total * part * weights / weights.sum())
    puncta = np.bincount(
        np.concatenate(where or [np.zeros(0, int)]),
        weights=np.concatenate(amounts or [np.zeros(0)]),
        minlength=idx.size,
    )
    # nuclear HER2: speckled, excluded from nucleoli; level from the drawn fraction
    pattern = (
        texture(0.3, 0.4)
        * (
            1.0
            + p["nuclear_speckle_gain"]
            * (rng.uniform(size=idx.size) < p["nuclear_speckle_fraction"])
        )
        * np.where(in_nucleolus, p["nucleolus_her2_ratio"], 1.0)
        * in_nuc
    )
    outside = m_total + per_cell(haze) + per_cell(puncta)
    nuc_level = f_cell / (1 - f_cell) * outside / np.maximum(per_cell(pattern), 1e-12)
    nuclear = per_voxel(nuc_level) * pattern
    her2 = membrane + haze + puncta + nuclear

    # nuclear stain: per-nucleus brightness, chromatin texture, chromocentres, nucleoli
    dapi_level = p["dapi_nucleus"] * np.exp(rng.normal(0.0, p["dapi_nucleus_sd_log"], n))
    dapi_level[kinds == "mitotic"] *= p["mitotic_dapi_gain"]
    dapi_level[kinds == "dead"] *= p["dead_dapi_gain"]
    chromocentres = (rng.uniform(size=idx.size) < 0.01) * 0.6
    dapi = (
        per_voxel(dapi_level)
        * in_nuc
        * (texture(0.5, p["dapi_texture_cv"], volume=True) + chromocentres)
        * np.where(in_nucleolus, p["nucleolus_dapi_ratio"], 1.0)
    )
    dapi += p["dapi_cytoplasm"] * cyto

    # membrane marker (WGA-like): whole plasma membrane, Golgi, vesicles; independent of HER2
    marker_density = p["marker_membrane"] * np.exp(rng.normal(0.0, 0.2, n))
    marker = per_voxel(marker_density) * (lateral + 0.8 * apical + 0.5 * basal) * texture(0.4, 0.25)
    marker_total = per_cell(marker)
    marker += p["marker_cytoplasm"] * cyto
    vy, vx = pix // shape[1], pix % shape[1]
    for k, cell in enumerate(shapes, start=1):
        own = order[bounds[k - 1] : bounds[k]]
        own = own[cyto[own]]
        if own.size == 0:
            continue
        total = p["marker_golgi_ratio"] * marker_total[k - 1]
        if cell["kind"] == "interphase":
            piece = cell["pieces"][0]
            phi = rng.uniform(0, 2 * np.pi)
            reach = _ellipse_radius(piece["a"], piece["b"], piece["theta"], phi) + 1.0 / px
            gy = piece["cy"] + reach * np.sin(phi)
            gx = piece["cx"] + reach * np.cos(phi)
            gz = piece["zc"] + 0.5 * piece["c"]
            blob = own[
                ((vy[own] - gy) * px / 1.8) ** 2
                + ((vx[own] - gx) * px / 1.8) ** 2
                + ((zv[own] - gz) / 1.2) ** 2
                <= 1
            ]
            if blob.size:
                marker[blob] += total / blob.size
        count = rng.poisson(p["marker_vesicles"])
        if count:
            weights = rng.lognormal(0.0, 0.5, count)
            np.add.at(
                marker,
                own[rng.integers(own.size, size=count)],
                p["marker_vesicle_ratio"] * marker_total[k - 1] * weights / weights.sum(),
            )

    channels = np.zeros((3, labels.size))
    for c, values in enumerate((her2, dapi, marker)):
        channels[c, idx] = values
    channels = channels.reshape((3,) + vshape)
    # debris: bright specks in every channel, on the coverslip or floating
    n_debris = int(rng.integers(p["debris_per_field"][0], p["debris_per_field"][1] + 1))
    for _ in range(n_debris):
        j = int(rng.integers(0, max(1, int(3.0 / dz))))
        y, x = int(rng.integers(0, shape[0])), int(rng.integers(0, shape[1]))
        channels[:, j, y, x] += rng.uniform(0.5, 1.5) * np.array(p["debris_amount"])

    # focus: on the nuclei (median mid-nuclear height), snapped to the voxel grid
    mid = np.median([c["pieces"][0]["zc"] for c in shapes if c["kind"] == "interphase"] or [2.5])
    target = mid + rng.normal(0.0, p["focus_jitter_um"])
    if defect == "out_of_focus":
        target -= p["defocus_um"]
    j_focus = int(np.round(target / dz - 0.5))
    if zstack:
        half = int(p["zstack_planes"]) // 2
        j_focus = max(j_focus, half)
        planes = np.arange(j_focus - half, j_focus + half + 1)
    else:
        planes = np.array([j_focus])
    focus = (planes + 0.5) * dz
    if planes.max() >= len(z):  # the recorded planes lie above the cells: extend the grid
        extra = planes.max() + 1 - len(z)
        channels = np.pad(channels, ((0, 0), (0, extra), (0, 0), (0, 0)))
        z = (np.arange(len(z) + extra) + 0.5) * dz
    recorded = widefield_image(channels, z, focus, p)

    # illumination and camera
    illumination = _illumination(rng, shape, p["vignetting"])
    background = np.array([p["her2_background"], p["dapi_background"], p["marker_background"]])
    signal = (recorded + background[:, None, None, None]) * illumination
    signal = np.clip(signal, 0.0, None)
    band = faces["lateral"].sum(axis=0) > 0
    if defect == "saturated":
        level = signal[0][:, band]
        bright = np.quantile(level, 1.0 - p["saturated_band_fraction"])
        signal = signal * (65535.0 - p["camera_offset_adu"]) / bright
    e_per_adu = p["electrons_per_adu"]
    electrons = rng.poisson(signal * e_per_adu)
    adu = electrons / e_per_adu + p["camera_offset_adu"]
    adu += rng.normal(0.0, p["read_noise_electrons"] / e_per_adu, adu.shape)
    image = np.clip(np.rint(adu), 0, 65535).astype(np.uint16)
    image = image if zstack else image[:, 0]

    # per-cell truth on the noise-free object at illumination 1
    area_lateral = per_cell(lateral * ~is_round)
    area_round = per_cell(lateral + apical + basal)
    area = np.where(interphase, area_lateral, area_round)
    her2_lateral = np.where(interphase, per_cell(lateral_her2), m_total)
    total = per_cell(her2)
    nuc_sum = per_cell(her2, in_nuc)
    z_mid = per_cell(zv, in_nuc) / np.maximum(per_cell(in_nuc.astype(float)), 1)
    in_mid = np.floor(zv / dz) == np.floor(per_voxel(z_mid) / dz)
    over_nucleus = nuclei.ravel()[pix] > 0
    border_ids = np.unique(np.concatenate([cells[0], cells[-1], cells[:, 0], cells[:, -1]]))
    with np.errstate(invalid="ignore", divide="ignore"):
        cells_truth = pd.DataFrame(
            {
                "cell_id": np.arange(1, n + 1),
                "cell_kind": kinds,
                "touches_border": np.isin(np.arange(1, n + 1), border_ids),
                "centroid_y_um": cy * px,
                "centroid_x_um": cx * px,
                "nucleus_area_um2": np.bincount(nuclei.ravel(), minlength=n + 1)[1:] * px**2,
                "cell_area_um2": count_cell * px**2,
                "cell_height_um": volume["heights"],
                "nucleus_z_um": z_mid,
                "focus_z_um": float(focus[len(focus) // 2]),
                "membrane_area_um2": area,
                "membrane_her2": np.where(area > 0, her2_lateral / area, np.nan),
                "membrane_completeness": coverage,
                "membrane_her2_total": m_total,
                "membrane_her2_over_nucleus": per_cell(membrane, over_nucleus),
                "cytoplasm_her2": per_cell(haze),
                "puncta_her2": per_cell(puncta),
                "nucleus_her2": nuc_sum,
                "nuclear_fraction_cell": nuc_sum / total,
                "nuclear_fraction_midplane": per_cell(her2, in_nuc & in_mid)
                / per_cell(her2, in_mid),
                "nuclear_fraction_projected": per_cell(her2, over_nucleus) / total,
                "illumination_mean": _label_sum(illumination, cells, n) / count_cell,
            }
        )
    out = {
        "image": image,
        "nuclei": nuclei,
        "cells": cells,
        "illumination": illumination,
        "focus_um": focus,
        "n_debris": n_debris,
        "cells_truth": cells_truth,
    }
    if zstack:
        grid = np.zeros((max(int(planes.max()) + 1, vshape[0]),) + shape, dtype=np.int32)
        nuc_grid = np.zeros_like(grid)
        grid[: vshape[0]] = labels
        nuc_grid[: vshape[0]] = np.where(volume["nucleus"], labels, 0)
        out["cells_zyx"] = grid[planes]
        out["nuclei_zyx"] = nuc_grid[planes]
    return out


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


def simulate_demo_if(
    seed: int = 20202,
    design: dict | None = None,
    params: dict | None = None,
    *,
    zstacks: bool = True,
):
    """Simulate the demo IF data set in memory (3-D widefield model).

    Parameters
    ----------
    seed : int, default 20202
        Seed; every field has its own generator derived from the seed and
        its image id.
    design : dict, optional
        :func:`default_if_design` by default.
    params : dict, optional
        Overrides of :func:`default_widefield_parameters`.
    zstacks : bool, default True
        Include the design's ``zstack_fields`` (C, Z, Y, X images); False
        leaves them out (the other fields are unchanged).

    Returns
    -------
    fields : list of dict
        One per image, in sample-sheet order: ``image_id``, ``cell_line``,
        ``condition``, ``replicate``, ``field``, ``defect``, ``zstack``,
        ``membrane_marker`` and the outputs of
        :func:`render_widefield_field`.
    cells_truth : pandas.DataFrame
        Per-cell truth of every field (:data:`TRUTH_COLUMNS`).
    truth : dict
        Per-condition truth (means over the interphase cells the workflow
        should keep: good single-plane fields, not touching the field
        border), per-replicate levels, bad fields, z-stack fields,
        definitions, design values and the model parameters.
    """
    design = copy.deepcopy(default_if_design() if design is None else design)
    p = {**default_widefield_parameters(), **(params or {})}
    fields = []
    good = design["fields"]
    bad = {
        (b["cell_line"], b["condition"], b["replicate"]): b["defect"] for b in design["bad_fields"]
    }
    stacks = {
        (z["cell_line"], z["condition"], z["replicate"])
        for z in (design.get("zstack_fields", []) if zstacks else [])
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
            c_rep = float(
                _expit(
                    _logit(cond["membrane_completeness"])
                    + rep_rng.normal(0.0, design["replicate_completeness_sd_logit"])
                )
            )
            replicate_levels.append(
                {
                    "cell_line": line,
                    "condition": condition,
                    "replicate": replicate,
                    "membrane_her2": float(m_rep),
                    "nuclear_fraction": f_rep,
                    "membrane_completeness": c_rep,
                }
            )
            kinds = [(None, False)] * good
            if (line, condition, replicate) in bad:
                kinds.append((bad[(line, condition, replicate)], False))
            if (line, condition, replicate) in stacks:
                kinds.append((None, True))
            for field, (defect, zstack) in enumerate(kinds, start=1):
                image_id = image_id_for(line, condition, replicate, field)
                rng = np.random.default_rng(_field_seed(seed, image_id))
                rendered = render_widefield_field(
                    rng,
                    m_rep,
                    f_rep,
                    membrane_completeness=c_rep,
                    completeness_concentration=cond["completeness_concentration"],
                    puncta_ratio=cond["puncta_ratio"],
                    membrane_sd_log=design["cell_membrane_sd_log"],
                    fraction_concentration=design["cell_fraction_concentration"],
                    defect=defect,
                    zstack=zstack,
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
                        "zstack": zstack,
                        "membrane_marker": cond["membrane_marker"],
                        **rendered,
                    }
                )
    tables = []
    for f in fields:
        t = f["cells_truth"].copy()
        for key in ("image_id", "cell_line", "condition", "replicate", "field", "zstack"):
            t[key] = f[key]
        t["bad_field"] = f["defect"] or ""
        tables.append(t)
    cells_truth = pd.concat(tables, ignore_index=True)[list(TRUTH_COLUMNS)]
    truth = _condition_truth(cells_truth, design, p, replicate_levels, fields, seed)
    return fields, cells_truth, truth


#: Per-cell truth values summarised per condition in ``if_truth.json``.
_CONDITION_VALUES = (
    "membrane_her2",
    "membrane_completeness",
    "nuclear_fraction_cell",
    "nuclear_fraction_midplane",
    "nuclear_fraction_projected",
)


def _condition_truth(cells_truth, design, p, replicate_levels, fields, seed):
    kept = cells_truth[
        (cells_truth["bad_field"] == "")
        & ~cells_truth["zstack"]
        & ~cells_truth["touches_border"]
        & (cells_truth["cell_kind"] == "interphase")
    ]
    conditions = []
    for cond in design["conditions"]:
        key = (cells_truth["cell_line"] == cond["cell_line"]) & (
            cells_truth["condition"] == cond["condition"]
        )
        sel = kept[key[kept.index]]
        row = {
            "cell_line": cond["cell_line"],
            "condition": cond["condition"],
            "n_cells": int(len(sel)),
            "n_images": int(sel["image_id"].nunique()),
            "n_mitotic": int((cells_truth.loc[key, "cell_kind"] == "mitotic").sum()),
            "n_dead": int((cells_truth.loc[key, "cell_kind"] == "dead").sum()),
        }
        for value in _CONDITION_VALUES:
            row[f"{value}_mean"] = float(sel[value].mean())
        row["membrane_completeness_sd"] = float(sel["membrane_completeness"].std())
        row["membrane_her2_population"] = cond["membrane_her2"]
        row["nuclear_fraction_population"] = cond["nuclear_fraction"]
        row["membrane_completeness_population"] = cond["membrane_completeness"]
        conditions.append(row)
    for c in conditions:
        ref = next(
            (r for r in conditions if r["cell_line"] == c["cell_line"] and r["condition"] == "T-R"),
            None,
        )
        c["membrane_her2_ratio_to_TR"] = (
            c["membrane_her2_mean"] / ref["membrane_her2_mean"] if ref else None
        )
    defect_text = {
        "out_of_focus": f"defocused: focal plane {p['defocus_um']} um below the nuclei",
        "saturated": "over-exposed: about "
        f"{p['saturated_band_fraction']:.0%} of the lateral-membrane pixels clipped at 65535",
    }
    bad_fields, zstack_fields, field_rows = [], [], []
    for f in fields:
        image = f["image"]
        field_rows.append(
            {
                "image_id": f["image_id"],
                "focus_z_um": [float(z) for z in f["focus_um"]],
                "n_debris": int(f["n_debris"]),
                "zstack": bool(f["zstack"]),
            }
        )
        if f["defect"]:
            bad_fields.append(
                {
                    "image_id": f["image_id"],
                    "defect": f["defect"],
                    "description": defect_text[f["defect"]],
                    "saturated_pixels_her2": int((image[0] == 65535).sum()),
                    "saturated_pixels_nuclear": int((image[1] == 65535).sum()),
                }
            )
        if f["zstack"]:
            zstack_fields.append(
                {
                    "image_id": f["image_id"],
                    "planes": int(image.shape[1]),
                    "z_step_um": float(p["z_step_um"]),
                    "focus_z_um": [float(z) for z in f["focus_um"]],
                }
            )
    params_json = {k: (list(v) if isinstance(v, tuple) else v) for k, v in p.items()}
    return {
        "generator": "sepher.simulate.if_images.simulate_demo_if",
        "model": "3-D widefield (render_widefield_field)",
        "seed": seed,
        "simulated": True,
        "definitions": {
            "units": "HER2 amounts in ADU: an amount in focus at illumination 1 records its "
            "amount, integrated over its blurred image, in ADU above background",
            "membrane_her2": "HER2 per um^2 of lateral plasma membrane (the cell's edge "
            "faces, coverage gaps included); mitotic and dead cells: per um^2 of their "
            "whole surface",
            "membrane_completeness": "the drawn angular coverage of the lateral membrane by "
            "HER2 arcs (fraction of the circumference around the cell centroid)",
            "membrane_her2_total": "HER2 on the whole plasma membrane (lateral, apical and "
            "basal), integrated",
            "membrane_her2_over_nucleus": "membrane HER2 (apical and basal sheets) within the "
            "nuclear footprint: projects onto the nucleus in a 2-D image",
            "cytoplasm_her2": "diffuse cytoplasmic HER2, integrated",
            "puncta_her2": "HER2 in vesicular and perinuclear puncta, integrated",
            "nucleus_her2": "HER2 in the nucleus voxels, integrated",
            "nuclear_fraction_cell": "nuclear / whole-cell HER2, integrated over the 3-D cell",
            "nuclear_fraction_midplane": "nuclear / whole-cell HER2 in the object plane "
            f"({p['z_step_um']} um) holding the nucleus's centroid height nucleus_z_um",
            "nuclear_fraction_projected": "HER2 in the nuclear footprint column / whole-cell "
            "HER2 (an ideal 2-D projection: includes apical and basal membrane and cytoplasm "
            "above and below the nucleus)",
            "nucleus_z_um": "height of the nucleus's centroid above the coverslip",
            "focus_z_um": "height of the recorded plane (z-stacks: the middle plane)",
            "cell_kind": "interphase, mitotic (round, condensed chromatin) or dead "
            "(small, fragmented nucleus, little HER2)",
            "areas": "pixel counts of the 2-D truth labels (projections of the 3-D cells) x "
            "pixel area (um^2); membrane_area_um2: lateral membrane faces (um^2)",
            "condition_means": "means over interphase cells in good single-plane fields not "
            "touching the field border",
            "her2_background_adu": "non-specific HER2 background above the camera offset, "
            "times the illumination",
        },
        "conditions": conditions,
        "replicates": replicate_levels,
        "bad_fields": bad_fields,
        "zstack_fields": zstack_fields,
        "fields": field_rows,
        "design": {
            k: v
            for k, v in design.items()
            if k not in ("conditions", "bad_fields", "zstack_fields")
        },
        "field_parameters": params_json,
    }


def _ome_metadata(image_id, channel_names, pixel_size_um, seed, z_step_um=None):
    metadata = {
        "axes": "CYX" if z_step_um is None else "CZYX",
        "UUID": str(uuid.uuid5(uuid.NAMESPACE_URL, f"sepher-demo-if:{seed}:{image_id}")),
        "Name": image_id,
        "PhysicalSizeX": pixel_size_um,
        "PhysicalSizeXUnit": "µm",
        "PhysicalSizeY": pixel_size_um,
        "PhysicalSizeYUnit": "µm",
        "Channel": {"Name": list(channel_names)},
    }
    if z_step_um is not None:
        metadata["PhysicalSizeZ"] = z_step_um
        metadata["PhysicalSizeZUnit"] = "µm"
    return metadata


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


def write_demo_if_images(
    out_dir,
    seed: int = 20202,
    *,
    zstacks: bool = True,
    design: dict | None = None,
    params: dict | None = None,
) -> dict:
    """Write the demo IF data set under ``out_dir`` (byte-identical on every call).

    Parameters
    ----------
    out_dir : path
        Folder of the sample sheet (the project's ``resources/demo``).
        Written: ``images_if.tsv`` (sample sheet IF rows, paths relative to
        ``out_dir``; every field has the membrane marker, channel 2),
        ``images/if/<image_id>.ome.tif`` (uint16 C, Y, X, or C, Z, Y, X for
        z-stacks with PhysicalSizeZ; zlib-compressed OME-TIFF with
        PhysicalSizeX/Y and resolution tags), ``truth/if_truth.csv`` (per
        cell), ``truth/if_truth.json`` (per condition, per replicate, per
        field, bad fields, z-stacks, model), ``truth/if_labels/<image_id>_nuclei.tif``
        and ``_cells.tif`` (2-D label images) and, for z-stacks,
        ``_nuclei_zyx.tif`` and ``_cells_zyx.tif`` (3-D labels at the
        recorded planes).
    seed : int, default 20202
        Seed of the simulation.
    zstacks : bool, default True
        Write the z-stack fields (False: leave them out of files and sheet).
    design : dict, optional
        :func:`default_if_design` by default (a smaller design for tests).
    params : dict, optional
        Overrides of :func:`default_widefield_parameters` (e.g. a smaller
        ``shape_px`` for tests).

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
    fields, cells_truth, truth = simulate_demo_if(seed, design, params, zstacks=zstacks)
    p = {**default_widefield_parameters(), **(params or {})}
    px, dz = float(p["pixel_size_um"]), float(p["z_step_um"])
    rows = []
    for f in fields:
        names = ["HER2", "DAPI"] + (["membrane"] if f["membrane_marker"] else [])
        image = f["image"][: len(names)]
        rel = f"images/if/{f['image_id']}.ome.tif"
        metadata = _ome_metadata(
            f["image_id"], names, px, seed, z_step_um=dz if f["zstack"] else None
        )
        _write_tiff(out / rel, image, px, ome_metadata=metadata)
        kinds = ("nuclei", "cells") + (("nuclei_zyx", "cells_zyx") if f["zstack"] else ())
        for kind in kinds:
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
