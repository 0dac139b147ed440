"""Per-cell HER2 membrane scoring of an H-DAB image (QuPath / ASCO-CAP manner).

:func:`score_image` runs the whole chain on one RGB tile: optical density,
colour deconvolution, tissue mask, nuclei, cells, membrane bands, tumour
epithelium, per-cell membrane DAB measurements and the cell's HER2 class.

Per-cell class (ASCO/CAP 2018 wording applied to one cell's membrane):

* completeness = fraction of the membrane's circumference that is stained:
  the band is cut into ``n_sectors`` equal angular sectors around the cell
  centroid and a sector is stained when its mean DAB OD reaches ``weak``;
* intensity = mean DAB OD of the whole band;
* **0**: stained over at most ``max_fraction_for_0`` (10 %) of the
  circumference (no staining, or a barely visible fleck);
* **3+**: complete (completeness >= ``complete_fraction``) and intense
  (intensity >= ``strong``);
* **2+**: complete and weak-to-moderate (intensity >= ``moderate``);
* **1+**: anything else that is stained: faint / barely perceptible or
  incomplete.

Default OD thresholds ``weak`` 0.20, ``moderate`` 0.35, ``strong`` 0.65 and
``complete_fraction`` 0.8 start from QuPath's positive-cell defaults
(0.2 / 0.4 / 0.6 mean DAB OD for 1+ / 2+ / 3+) and were calibrated on the
simulated demo biopsies, whose per-cell classes are known: there the
membrane-band mean is ~0.08 for 0, ~0.2 for 1+, ~0.53 (5-95 %: 0.36-0.70)
for 2+ and ~0.9 (0.69-1.09) for 3+ cells, and these values give every
biopsy's ASCO/CAP category exactly with H-scores within 10 points
(``tests/test_ihc_demo.py``). A band at a membrane-following (watershed)
cell edge sees the membrane itself; with ``cell_method="expand"`` the band
misses part of it and the thresholds would need lowering.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from sepher.ihc.deconvolution import (
    estimate_stain_vectors,
    rgb_to_od,
    stain_matrix,
    tissue_mask,
    unmix_h_dab,
)
from sepher.ihc.segmentation import (
    membrane_band,
    segment_cells,
    segment_nuclei,
    tumour_epithelium,
)

__all__ = ["IHCParams", "classify_cells", "measure_cells", "score_image"]

#: Per-cell table columns, in order.
CELL_COLUMNS = (
    "cell_id",
    "y_um",
    "x_um",
    "nucleus_area_um2",
    "cell_area_um2",
    "membrane_band_area_um2",
    "tumour",
    "nucleus_hematoxylin_od_mean",
    "nucleus_dab_od_mean",
    "cytoplasm_dab_od_mean",
    "membrane_dab_od_mean",
    "membrane_dab_od_max",
    "membrane_completeness",
    "complete",
    "her2_class",
)


@dataclass(frozen=True)
class IHCParams:
    """Parameters of :func:`score_image` (lengths in um, OD in log10 units).

    Attributes
    ----------
    background_intensity : float
        ``I0`` of :func:`~sepher.ihc.rgb_to_od` (255: QuPath default).
    hematoxylin, dab : tuple of 3 float
        Stain OD vectors (Ruifrok & Johnston H-DAB defaults).
    estimate_stains : bool
        Estimate the stain vectors per image (Macenko 2009) instead.
    tissue_od_threshold : float
        Summed RGB OD above which a pixel is tissue.
    nucleus_threshold_od, nucleus_smoothing_um, nucleus_background_sigma_um,
    nucleus_contrast_od, nucleus_split_h_od, nucleus_min_area_um2, nucleus_max_area_um2
        See :func:`~sepher.ihc.segment_nuclei`.
    cell_method, cell_expansion_um
        See :func:`~sepher.ihc.segment_cells`.
    cell_min_od : float
        Cells grow only over pixels whose summed RGB OD (smoothed, sigma
        1 um) reaches this value: cytoplasm (HER2 0 carcinoma ~0.5, DAB
        stained more) but not pale stroma (~0.2-0.35) or glass, so a cell at
        the edge of a tumour nest ends at its own membrane instead of
        ``cell_expansion_um`` out into the stroma. 0 disables.
    membrane_width_um : float
        Width of the membrane band at the cell edge.
    exclude_stroma : bool
        Flag cells outside the tumour epithelium (:func:`~sepher.ihc.tumour_epithelium`)
        as non-tumour; they are not scored.
    epithelium_sigma_um, epithelium_min_nuclear_fraction, epithelium_min_extranuclear_od
        See :func:`~sepher.ihc.tumour_epithelium`.
    weak, moderate, strong : float
        Membrane DAB OD thresholds (see module docstring).
    complete_fraction : float
        Completeness from which a membrane counts as complete
        (circumferential); 0.8 tolerates a few sectors lost to a cut, a
        tangential section or a neighbour's gap.
    max_fraction_for_0 : float
        Completeness up to which a cell is 0 (ASCO/CAP: staining in <= 10 %).
    n_sectors : int
        Angular sectors of the completeness measurement (16: 22.5 degrees).
    """

    background_intensity: float = 255.0
    hematoxylin: tuple[float, float, float] = (0.65, 0.70, 0.29)
    dab: tuple[float, float, float] = (0.27, 0.57, 0.78)
    estimate_stains: bool = False
    tissue_od_threshold: float = 0.2
    nucleus_threshold_od: float = 0.08
    nucleus_smoothing_um: float = 1.0
    nucleus_background_sigma_um: float = 8.0
    nucleus_contrast_od: float = 0.03
    nucleus_split_h_od: float = 0.03
    nucleus_min_area_um2: float = 16.0
    nucleus_max_area_um2: float = 400.0
    cell_method: str = "watershed"
    cell_expansion_um: float = 5.0
    cell_min_od: float = 0.35
    membrane_width_um: float = 1.0
    exclude_stroma: bool = True
    epithelium_sigma_um: float = 8.0
    epithelium_min_nuclear_fraction: float = 0.15
    epithelium_min_extranuclear_od: float = 0.40
    weak: float = 0.20
    moderate: float = 0.35
    strong: float = 0.65
    complete_fraction: float = 0.8
    max_fraction_for_0: float = 0.10
    n_sectors: int = 16

    @classmethod
    def from_dict(cls, values: dict | None) -> IHCParams:
        """Build from a (config) mapping; unknown keys raise ``ValueError``."""
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown IHC parameter(s) {unknown}; known: {sorted(known)}")
        for key in ("hematoxylin", "dab"):
            if key in values:
                values[key] = tuple(float(v) for v in values[key])
        return cls(**values)

    def to_dict(self) -> dict:
        return asdict(self)


def _params(params) -> IHCParams:
    if params is None:
        return IHCParams()
    if isinstance(params, IHCParams):
        return params
    return IHCParams.from_dict(params)


def measure_cells(
    nuclei: np.ndarray,
    cells: np.ndarray,
    band: np.ndarray,
    hematoxylin: np.ndarray,
    dab: np.ndarray,
    pixel_size_um: float,
    *,
    weak: float = 0.20,
    n_sectors: int = 16,
) -> pd.DataFrame:
    """Per-cell areas, DAB in nucleus / cytoplasm / membrane band, completeness.

    Vectorised over cells (``np.bincount`` on the label images).

    Parameters
    ----------
    nuclei, cells, band : ndarray of int
        Label images (:func:`~sepher.ihc.segment_nuclei`,
        :func:`~sepher.ihc.segment_cells`, :func:`~sepher.ihc.membrane_band`).
    hematoxylin, dab : ndarray of float
        Stain amounts (OD).
    pixel_size_um : float
        Pixel edge length (um).
    weak : float, default 0.20
        DAB OD at which a membrane sector counts as stained.
    n_sectors : int, default 16
        Angular sectors for completeness.

    Returns
    -------
    DataFrame
        One row per cell id 1..n that has a nucleus, with ``cell_id``,
        ``y_um``, ``x_um`` (cell centroid), areas (um^2), OD means, the band
        maximum and ``membrane_completeness`` (0-1; NaN for a cell without
        band pixels).
    """
    n = int(max(cells.max(initial=0), nuclei.max(initial=0)))
    size = n + 1
    px_area = pixel_size_um**2
    cell_flat = cells.ravel()
    nucleus_flat = nuclei.ravel()
    band_flat = band.ravel()
    dab_flat = dab.ravel().astype(np.float64)
    h_flat = hematoxylin.ravel().astype(np.float64)

    cell_px = np.bincount(cell_flat, minlength=size).astype(np.float64)
    ys, xs = np.divmod(np.arange(cell_flat.size), cells.shape[1])
    with np.errstate(invalid="ignore", divide="ignore"):
        cy = np.bincount(cell_flat, weights=ys, minlength=size) / cell_px
        cx = np.bincount(cell_flat, weights=xs, minlength=size) / cell_px

        nuc_px = np.bincount(nucleus_flat, minlength=size).astype(np.float64)
        nuc_dab = np.bincount(nucleus_flat, weights=dab_flat, minlength=size) / nuc_px
        nuc_h = np.bincount(nucleus_flat, weights=h_flat, minlength=size) / nuc_px

        in_band = band_flat > 0
        band_ids = band_flat[in_band]
        band_dab = dab_flat[in_band]
        band_px = np.bincount(band_ids, minlength=size).astype(np.float64)
        band_mean = np.bincount(band_ids, weights=band_dab, minlength=size) / band_px
        band_max = np.full(size, np.nan)
        if band_ids.size:
            order_max = np.full(size, -np.inf)
            np.maximum.at(order_max, band_ids, band_dab)
            band_max = np.where(band_px > 0, order_max, np.nan)

        cyto = (cell_flat > 0) & (nucleus_flat == 0) & ~in_band
        cyto_ids = cell_flat[cyto]
        cyto_px = np.bincount(cyto_ids, minlength=size).astype(np.float64)
        cyto_dab = np.bincount(cyto_ids, weights=dab_flat[cyto], minlength=size) / cyto_px

        # completeness: angular sectors of the band around the cell centroid
        angle = np.arctan2(ys[in_band] - cy[band_ids], xs[in_band] - cx[band_ids])
        sector = ((angle + np.pi) * (n_sectors / (2 * np.pi))).astype(np.int64)
        np.clip(sector, 0, n_sectors - 1, out=sector)
        key = band_ids.astype(np.int64) * n_sectors + sector
        sector_px = np.bincount(key, minlength=size * n_sectors).reshape(size, n_sectors)
        sector_sum = np.bincount(key, weights=band_dab, minlength=size * n_sectors).reshape(
            size, n_sectors
        )
        sector_mean = sector_sum / np.maximum(sector_px, 1)
        present = sector_px > 0
        stained = present & (sector_mean >= weak)
        completeness = stained.sum(axis=1) / present.sum(axis=1)

    ids = np.arange(1, size)
    has_nucleus = nuc_px[1:] > 0
    table = pd.DataFrame(
        {
            "cell_id": ids,
            "y_um": cy[1:] * pixel_size_um,
            "x_um": cx[1:] * pixel_size_um,
            "nucleus_area_um2": nuc_px[1:] * px_area,
            "cell_area_um2": cell_px[1:] * px_area,
            "membrane_band_area_um2": band_px[1:] * px_area,
            "nucleus_hematoxylin_od_mean": nuc_h[1:],
            "nucleus_dab_od_mean": nuc_dab[1:],
            "cytoplasm_dab_od_mean": cyto_dab[1:],
            "membrane_dab_od_mean": band_mean[1:],
            "membrane_dab_od_max": band_max[1:],
            "membrane_completeness": completeness[1:],
        }
    )
    return table[has_nucleus].reset_index(drop=True)


def classify_cells(
    membrane_dab_od_mean,
    membrane_completeness,
    *,
    weak: float = 0.20,
    moderate: float = 0.35,
    strong: float = 0.65,
    complete_fraction: float = 0.8,
    max_fraction_for_0: float = 0.10,
) -> tuple[np.ndarray, np.ndarray]:
    """HER2 class 0-3 of each cell from membrane intensity and completeness.

    Parameters
    ----------
    membrane_dab_od_mean : array_like of float
        Mean DAB OD of each cell's membrane band.
    membrane_completeness : array_like of float
        Stained fraction of each membrane's circumference (0-1), measured
        at the ``weak`` threshold.
    weak, moderate, strong : float, default 0.20, 0.35, 0.65
        OD thresholds: ``weak`` is the barely perceptible level (defines a
        stained sector), ``moderate`` the start of weak-to-moderate 2+
        staining, ``strong`` the start of intense 3+ staining.
    complete_fraction : float, default 0.8
        Completeness from which a membrane is complete.
    max_fraction_for_0 : float, default 0.10
        Completeness up to which a cell is 0.

    Returns
    -------
    her2_class : ndarray of int8
        0, 1, 2 or 3 (1+, 2+, 3+). Cells without a band (NaN) are 0.
    complete : ndarray of bool
        Complete membrane staining (completeness >= ``complete_fraction``
        and intensity >= ``weak``).
    """
    if not weak <= moderate <= strong:
        raise ValueError("thresholds must satisfy weak <= moderate <= strong")
    intensity = np.nan_to_num(np.asarray(membrane_dab_od_mean, dtype=np.float64), nan=0.0)
    completeness = np.nan_to_num(np.asarray(membrane_completeness, dtype=np.float64), nan=0.0)
    complete = (completeness >= complete_fraction) & (intensity >= weak)
    her2_class = np.select(
        [
            completeness <= max_fraction_for_0,
            complete & (intensity >= strong),
            complete & (intensity >= moderate),
        ],
        [0, 3, 2],
        default=1,
    ).astype(np.int8)
    return her2_class, complete


def score_image(
    rgb: np.ndarray, pixel_size_um: float, params: IHCParams | dict | None = None
) -> tuple[pd.DataFrame, dict[str, np.ndarray], dict]:
    """Detect cells and score HER2 membrane staining on one H-DAB RGB image.

    Parameters
    ----------
    rgb : ndarray, shape (H, W, 3)
        Brightfield RGB image (uint8 expected; an alpha channel is dropped).
    pixel_size_um : float
        Pixel edge length (um); ~0.5 at 20x, ~0.25 at 40x.
    params : IHCParams or dict, optional
        Parameters (defaults: :class:`IHCParams`).

    Returns
    -------
    cells : DataFrame
        One row per detected cell (columns ``CELL_COLUMNS``); ``tumour``
        tells whether the cell is scored, ``her2_class`` is 0-3.
    labels : dict of str to ndarray of int32
        ``"nuclei"``, ``"cells"``, ``"membrane_band"`` label images (cell
        ``k`` holds nucleus ``k``; band pixels carry their cell's id).
    summary : dict
        Image-level numbers: counts, tissue and epithelium areas, stain
        vectors used, and the image's own scores (:func:`~sepher.ihc.score_biopsy`
        on its cells).
    """
    from sepher.ihc.biopsy import score_biopsy

    p = _params(params)
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[-1] not in (3, 4):
        raise ValueError(f"expected an RGB image of shape (H, W, 3), got {rgb.shape}")
    if pixel_size_um is None or not np.isfinite(pixel_size_um) or pixel_size_um <= 0:
        raise ValueError(f"pixel_size_um must be a positive number, got {pixel_size_um!r}")
    rgb = rgb[..., :3]
    od = rgb_to_od(rgb, p.background_intensity)
    tissue = tissue_mask(od, pixel_size_um, od_threshold=p.tissue_od_threshold)
    default = stain_matrix(p.hematoxylin, p.dab)
    matrix = (
        estimate_stain_vectors(od, mask=tissue, default_matrix=default)
        if p.estimate_stains
        else default
    )
    hematoxylin, dab = unmix_h_dab(od, matrix)
    od_sum = od.sum(axis=-1, dtype=np.float32)
    del od
    cell_mask = tissue
    if p.cell_min_od > 0:
        cell_mask = tissue & (ndi.gaussian_filter(od_sum, 1.0 / pixel_size_um) >= p.cell_min_od)
    nuclei = segment_nuclei(
        hematoxylin,
        pixel_size_um,
        mask=tissue,
        smoothing_sigma_um=p.nucleus_smoothing_um,
        threshold_od=p.nucleus_threshold_od,
        background_sigma_um=p.nucleus_background_sigma_um,
        contrast_od=p.nucleus_contrast_od,
        split_h_od=p.nucleus_split_h_od,
        min_area_um2=p.nucleus_min_area_um2,
        max_area_um2=p.nucleus_max_area_um2,
    )
    cells = segment_cells(
        nuclei,
        pixel_size_um,
        dab=dab,
        method=p.cell_method,
        expansion_um=p.cell_expansion_um,
        mask=cell_mask,
    )
    band = membrane_band(cells, nuclei, pixel_size_um, p.membrane_width_um)
    table = measure_cells(
        nuclei, cells, band, hematoxylin, dab, pixel_size_um, weak=p.weak, n_sectors=p.n_sectors
    )
    if p.exclude_stroma:
        epithelium = tumour_epithelium(
            nuclei,
            pixel_size_um,
            od_sum=od_sum,
            tissue=tissue,
            sigma_um=p.epithelium_sigma_um,
            min_nuclear_fraction=p.epithelium_min_nuclear_fraction,
            min_extranuclear_od=p.epithelium_min_extranuclear_od,
        )
        # a cell is tumour when its nucleus lies mostly in the epithelium
        n = len(np.bincount(nuclei.ravel()))
        in_epi = np.bincount(nuclei.ravel(), weights=epithelium.ravel(), minlength=n)
        share = in_epi / np.maximum(np.bincount(nuclei.ravel(), minlength=n), 1)
        table["tumour"] = share[table["cell_id"].to_numpy()] >= 0.5
    else:
        epithelium = tissue
        table["tumour"] = True
    her2_class, complete = classify_cells(
        table["membrane_dab_od_mean"],
        table["membrane_completeness"],
        weak=p.weak,
        moderate=p.moderate,
        strong=p.strong,
        complete_fraction=p.complete_fraction,
        max_fraction_for_0=p.max_fraction_for_0,
    )
    table["complete"] = complete
    table["her2_class"] = her2_class
    table = table[list(CELL_COLUMNS)]
    area_px = pixel_size_um**2
    summary = {
        "n_cells_detected": int(len(table)),
        "tissue_area_mm2": float(tissue.sum() * area_px * 1e-6),
        "epithelium_area_mm2": float(epithelium.sum() * area_px * 1e-6),
        "hematoxylin_vector": [round(float(v), 4) for v in matrix[0]],
        "dab_vector": [round(float(v), 4) for v in matrix[1]],
        **score_biopsy(table),
    }
    labels = {"nuclei": nuclei, "cells": cells, "membrane_band": band}
    return table, labels, summary
