"""Per-cell HER2 membrane scoring of an H-DAB image (QuPath / ASCO-CAP manner).

:func:`score_image` runs the whole chain on one RGB tile: the glass level
``I0`` per channel (:func:`~sepher.ihc.deconvolution.estimate_background`),
optical density, colour deconvolution (fixed or per-image Macenko vectors,
checked for plausibility), tissue mask, nuclei, tumour epithelium (without
DAB), cells, membrane bands, per-cell membrane DAB measurements and the
cell's HER2 class (:func:`sepher.ihc.rules.classify_cells`).

Colour robustness (issue 16). A photomicrograph's white-balance cast and
glass below 255 add OD everywhere; with ``I0`` measured on the image's own
glass they vanish. What remains of a cast or diffuse cytoplasmic DAB, which
no membrane HER2 explains, is removed per cell: ``membrane_dab_excess_od``
is the membrane band's mean DAB minus the cell's interior reference, the
mean DAB of its nucleus away from the cell edge (the image's median over
tumour cells when that part of the nucleus is smaller than
``MIN_REFERENCE_AREA_UM2``). The completeness sectors use the same
subtraction, and the intensity thresholds ``weak`` / ``moderate`` /
``strong`` apply to the excess.

The older per-cell class of :func:`classify_cells` (kept for backward
compatibility; :func:`score_image` now applies
:func:`sepher.ihc.rules.classify_cells`), ASCO/CAP 2018 wording applied to
one cell's membrane:

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

Its default OD thresholds ``weak`` 0.20, ``moderate`` 0.35, ``strong`` 0.65
(on the band mean, not the excess) started from QuPath's positive-cell
defaults (0.2 / 0.4 / 0.6 mean DAB OD for 1+ / 2+ / 3+). A band at a
membrane-following (watershed) cell edge sees the membrane itself; with
``cell_method="expand"`` the band misses part of it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from sepher.ihc import rules
from sepher.ihc.deconvolution import (
    estimate_background,
    estimate_stain_vectors,
    od_planes,
    stain_matrix,
    tissue_from_od_sum,
    unmix_planes,
)
from sepher.ihc.segmentation import (
    membrane_band,
    nuclei_block_grid,
    segment_cells,
    segment_nuclei,
    tumour_epithelium,
)

__all__ = [
    "MIN_REFERENCE_AREA_UM2",
    "TILE_PX",
    "IHCParams",
    "classify_cells",
    "measure_cells",
    "score_image",
    "tile_halo_um",
]

#: Largest window edge (px, halo included) of the per-cell steps of
#: :func:`score_image`: 1024 keeps a window's arrays within a few MB.
TILE_PX = 1024

#: Images of at most this many pixels keep whole-image planes (OD, stains and
#: their Gaussian smoothings, :class:`_SharedPlanes`) that the windows of
#: :func:`score_image` cut their own from; larger ones compute them per window
#: (the same numbers, in less memory).
SHARED_MAX_PX = 16_000_000

#: Gaussian sigma (um) of the tissue mask
#: (:func:`~sepher.ihc.deconvolution.tissue_from_od_sum` default).
TISSUE_SMOOTHING_UM = 2.0

#: Gaussian sigma (um) of the DAB surface the cells' watershed floods
#: (:func:`~sepher.ihc.segment_cells` default).
CELL_SMOOTHING_UM = 0.5

#: Least area (um^2) of the nucleus part away from the cell edge that serves
#: as a cell's interior DAB reference; smaller, and the image's median over
#: tumour cells stands in.
MIN_REFERENCE_AREA_UM2 = 4.0

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
    "membrane_dab_excess_od",
    "membrane_completeness",
    "membrane_intensity_level",
    "complete",
    "her2_class",
    "unusual_pattern",
)


@dataclass(frozen=True)
class IHCParams:
    """Parameters of :func:`score_image` (lengths in um, OD in log10 units).

    Attributes
    ----------
    background : {"estimate", "fixed"}
        ``"estimate"``: ``I0`` per RGB channel from each image's glass
        (:func:`~sepher.ihc.deconvolution.estimate_background`), falling back
        to ``background_intensity`` when under 1 % of the image is glass;
        ``"fixed"``: ``background_intensity``.
    background_intensity : float or tuple of 3 float
        ``I0`` of :func:`~sepher.ihc.rgb_to_od` (255: QuPath default), one
        value or one per channel (e.g. measured on the slide's background).
    hematoxylin, dab : tuple of 3 float
        Stain OD vectors (Ruifrok & Johnston H-DAB defaults).
    estimate_stains : bool
        Estimate the stain vectors per image (Macenko 2009, on the OD with
        the image's ``I0``) instead; an implausible estimate falls back to
        the fixed vectors (the summary says which were used).
    tissue_od_threshold : float
        Summed RGB OD above which a pixel is tissue.
    nucleus_threshold_od, nucleus_smoothing_um, nucleus_background_sigma_um,
    nucleus_contrast_od, nucleus_split_h_od, nucleus_min_area_um2, nucleus_max_area_um2
        See :func:`~sepher.ihc.segment_nuclei`.
    cell_method, cell_expansion_um
        See :func:`~sepher.ihc.segment_cells`.
    cell_min_od : float
        Outside the tumour epithelium, cells grow only over pixels whose
        summed RGB OD (smoothed, sigma 1 um) reaches this value: cytoplasm
        but not pale stroma (~0.2-0.35) or glass, so a cell at the edge of a
        tumour nest ends at its own membrane instead of ``cell_expansion_um``
        out into the stroma. Within the epithelium (found without DAB) cells
        grow regardless, so a pale HER2 0 tumour cell still reaches its
        membrane. 0 disables.
    membrane_width_um : float
        Width of the membrane band at the cell edge.
    exclude_stroma : bool
        Flag cells outside the tumour epithelium (:func:`~sepher.ihc.tumour_epithelium`)
        as non-tumour; they are not scored.
    epithelium_sigma_um, epithelium_min_nuclear_fraction, epithelium_min_extranuclear_od,
    epithelium_min_nucleus_area_um2, epithelium_min_nucleus_roundness
        See :func:`~sepher.ihc.tumour_epithelium`. No DAB enters: the call
        rests on the density of large, roundish nuclei (20 um^2, roundness
        0.35: carcinoma nuclei, not lymphocytes or spindle fibroblasts). The
        extranuclear criterion (on the counterstain's OD: summed OD without
        DAB's share) is off by default (0.0; it was 0.05): hematoxylin stains
        no cytoplasm, so unstained HER2 0 / 1+ tumour cytoplasm is as faint
        as stroma there and the criterion dropped whole pale nests (issue
        16), while the tissue mask already keeps lumina and glass out.
    weak, moderate, strong : float
        Thresholds on ``membrane_dab_excess_od`` (defaults
        :data:`sepher.ihc.rules.DEFAULT_WEAK` etc.; see
        :func:`sepher.ihc.rules.intensity_levels`).
    complete_fraction : float
        Completeness from which a membrane counts as complete
        (circumferential); 0.8 tolerates a few sectors lost to a cut, a
        tangential section or a neighbour's gap.
    max_fraction_for_0 : float
        Completeness up to which a cell is 0 (ASCO/CAP: staining in <= 10 %).
    n_sectors : int
        Angular sectors of the completeness measurement (16: 22.5 degrees).
    """

    background: str = "estimate"
    background_intensity: float | tuple[float, float, float] = 255.0
    hematoxylin: tuple[float, float, float] = (0.65, 0.70, 0.29)
    dab: tuple[float, float, float] = (0.27, 0.57, 0.78)
    estimate_stains: bool = True
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
    epithelium_min_extranuclear_od: float = 0.0
    epithelium_min_nucleus_area_um2: float = 20.0
    epithelium_min_nucleus_roundness: float = 0.35
    weak: float = rules.DEFAULT_WEAK
    moderate: float = rules.DEFAULT_MODERATE
    strong: float = rules.DEFAULT_STRONG
    complete_fraction: float = 0.8
    max_fraction_for_0: float = 0.10
    n_sectors: int = 16

    def __post_init__(self):
        if self.background not in ("estimate", "fixed"):
            raise ValueError(f"background must be 'estimate' or 'fixed', got {self.background!r}")

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
        if isinstance(values.get("background_intensity"), (list, tuple)):
            values["background_intensity"] = tuple(float(v) for v in values["background_intensity"])
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
    weak: float = 0.10,
    n_sectors: int = 16,
    reference: np.ndarray | None = None,
    min_reference_area_um2: float = MIN_REFERENCE_AREA_UM2,
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
    weak : float, default 0.10
        DAB OD at which a membrane sector counts as stained.
    n_sectors : int, default 16
        Angular sectors for completeness.
    reference : ndarray of bool, optional
        Pixels whose DAB is a cell's interior reference (e.g. its nucleus
        away from the cell edge). Given, the table gains
        ``membrane_dab_excess_od`` (band mean minus the cell's reference
        mean; cells with less than ``min_reference_area_um2`` of reference
        take the median reference of the others) and completeness is
        measured on the sectors' excess.
    min_reference_area_um2 : float, default ``MIN_REFERENCE_AREA_UM2``
        Least reference area of a cell's own reference.

    Returns
    -------
    DataFrame
        One row per cell id 1..n that has a nucleus, with ``cell_id``,
        ``y_um``, ``x_um`` (cell centroid), areas (um^2), OD means, the band
        maximum and ``membrane_completeness`` (0-1; NaN for a cell without
        band pixels).
    """
    table = _measure(
        nuclei,
        cells,
        band,
        hematoxylin,
        dab,
        pixel_size_um,
        weak=weak,
        n_sectors=n_sectors,
        reference=reference,
    )[0]
    if reference is not None:
        _add_excess(table, weak=weak, min_reference_area_um2=min_reference_area_um2)
    return table


def _sector_columns(n_sectors: int) -> list[str]:
    return [f"_sector_{k}" for k in range(n_sectors)]


def _add_excess(table: pd.DataFrame, *, weak: float, min_reference_area_um2: float) -> float:
    """Turn the hidden reference and sector columns of :func:`_measure` into
    ``membrane_dab_excess_od`` and the excess-based ``membrane_completeness``
    (in place; hidden columns dropped).

    A cell's reference is its own when its reference area reaches
    ``min_reference_area_um2``, else the median own reference of the tumour
    cells (all cells when none is flagged tumour or ``tumour`` is absent;
    0 when no cell has one). Returns that fallback median.
    """
    own = table["_reference_dab"].to_numpy(dtype=np.float64)
    has_own = np.isfinite(own) & (table["_reference_area_um2"].to_numpy() >= min_reference_area_um2)
    pool = has_own
    if "tumour" in table and (has_own & table["tumour"].to_numpy(dtype=bool)).any():
        pool = has_own & table["tumour"].to_numpy(dtype=bool)
    fallback = float(np.median(own[pool])) if pool.any() else 0.0
    reference = np.where(has_own, own, fallback)
    table["membrane_dab_excess_od"] = table["membrane_dab_od_mean"].to_numpy() - reference
    columns = [c for c in table.columns if c.startswith("_sector_")]
    sectors = table[columns].to_numpy(dtype=np.float64)
    present = np.isfinite(sectors)
    with np.errstate(invalid="ignore"):
        stained = present & (sectors - reference[:, None] >= weak)
        table["membrane_completeness"] = stained.sum(axis=1) / present.sum(axis=1)
    table.drop(columns=[*columns, "_reference_dab", "_reference_area_um2"], inplace=True)
    return fallback


def _measure(
    nuclei, cells, band, hematoxylin, dab, pixel_size_um, *, weak, n_sectors, reference=None
):
    """:func:`measure_cells`, plus each label's nucleus centroid (pixels; NaN if none).

    With ``reference`` (bool mask) the table also carries the hidden columns
    ``_reference_dab`` / ``_reference_area_um2`` (mean DAB and area of each
    cell's reference pixels, within its nucleus) and ``_sector_0`` ...
    (band sector means, NaN where a sector has no pixel), which
    :func:`_add_excess` turns into the excess measurements once the
    image-wide fallback reference is known (after tiling).

    Sums run over the labelled pixels only (``np.flatnonzero`` once per label
    image), each label's pixels in raster order as a whole-image
    ``np.bincount`` would add them: the same numbers, with a fraction of the
    memory traffic.
    """
    n = int(max(cells.max(initial=0), nuclei.max(initial=0)))
    size = n + 1
    px_area = pixel_size_um**2
    width = cells.shape[1]
    cell_flat = cells.ravel()
    nucleus_flat = nuclei.ravel()
    band_flat = band.ravel()
    dab_flat = dab.ravel()
    h_flat = hematoxylin.ravel()

    in_cell = np.flatnonzero(cell_flat)
    cell_ids = cell_flat[in_cell]
    cell_px = np.bincount(cell_ids, minlength=size).astype(np.float64)
    in_nucleus = np.flatnonzero(nucleus_flat)
    nucleus_ids = nucleus_flat[in_nucleus]
    nuc_px = np.bincount(nucleus_ids, minlength=size).astype(np.float64)
    in_band = np.flatnonzero(band_flat)
    band_ids = band_flat[in_band]
    band_dab = dab_flat[in_band].astype(np.float64)
    band_px = np.bincount(band_ids, minlength=size).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        ys, xs = np.divmod(in_cell, width)
        cy = np.bincount(cell_ids, weights=ys, minlength=size) / cell_px
        cx = np.bincount(cell_ids, weights=xs, minlength=size) / cell_px
        ys, xs = np.divmod(in_nucleus, width)
        nuc_cy = np.bincount(nucleus_ids, weights=ys, minlength=size) / nuc_px
        nuc_cx = np.bincount(nucleus_ids, weights=xs, minlength=size) / nuc_px
        nuc_dab = (
            np.bincount(
                nucleus_ids, weights=dab_flat[in_nucleus].astype(np.float64), minlength=size
            )
            / nuc_px
        )
        nuc_h = (
            np.bincount(nucleus_ids, weights=h_flat[in_nucleus].astype(np.float64), minlength=size)
            / nuc_px
        )
        band_mean = np.bincount(band_ids, weights=band_dab, minlength=size) / band_px
        band_max = np.full(size, np.nan)
        if band_ids.size:
            order_max = np.full(size, -np.inf)
            np.maximum.at(order_max, band_ids, band_dab)
            band_max = np.where(band_px > 0, order_max, np.nan)

        cyto = in_cell[(nucleus_flat[in_cell] == 0) & (band_flat[in_cell] == 0)]
        cyto_ids = cell_flat[cyto]
        cyto_px = np.bincount(cyto_ids, minlength=size).astype(np.float64)
        cyto_dab = (
            np.bincount(cyto_ids, weights=dab_flat[cyto].astype(np.float64), minlength=size)
            / cyto_px
        )

        # completeness: angular sectors of the band around the cell centroid
        ys, xs = np.divmod(in_band, width)
        angle = np.arctan2(ys - cy[band_ids], xs - cx[band_ids])
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
        if reference is not None:
            ref_at = np.asarray(reference, dtype=bool).ravel()[in_nucleus]
            ref_ids = nucleus_ids[ref_at]
            ref_px = np.bincount(ref_ids, minlength=size).astype(np.float64)
            ref_dab = (
                np.bincount(
                    ref_ids,
                    weights=dab_flat[in_nucleus][ref_at].astype(np.float64),
                    minlength=size,
                )
                / ref_px
            )

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
    if reference is not None:
        hidden = pd.DataFrame(
            np.where(present, sector_mean, np.nan)[1:], columns=_sector_columns(n_sectors)
        )
        hidden.insert(0, "_reference_area_um2", ref_px[1:] * px_area)
        hidden.insert(0, "_reference_dab", ref_dab[1:])
        table = pd.concat([table, hidden], axis=1)
    return table[has_nucleus].reset_index(drop=True), nuc_cy, nuc_cx


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
    rgb: np.ndarray,
    pixel_size_um: float,
    params: IHCParams | dict | None = None,
    *,
    tile_px: int = TILE_PX,
) -> tuple[pd.DataFrame, dict[str, np.ndarray], dict]:
    """Detect cells and score HER2 membrane staining on one H-DAB RGB image.

    An image larger than ``tile_px`` on a side is scored in overlapping
    windows of at most ``tile_px`` (:func:`_tile_windows`), so the cost stays
    linear in its area: watershed priority queues and the h-maxima sort grow
    faster than the pixel count, and whole-image arrays leave the CPU
    caches. Each window runs the whole chain on its core plus a halo of
    :func:`tile_halo_um` (the largest cell's diameter) and keeps the cells
    whose nucleus centroid lies in its core, so a kept cell, its neighbours
    and the context of its tumour-epithelium call lie inside the window.
    Cell ids run window by window (row-major), in label order within a
    window: deterministic. The glass level (``background: estimate``), stain
    vectors estimated per image (``estimate_stains``) and the fallback
    interior reference come from the whole image. An image of at most
    ``tile_px`` a side is one window without halo.

    Parameters
    ----------
    rgb : ndarray, shape (H, W, 3)
        Brightfield RGB image (uint8 expected; an alpha channel is dropped).
    pixel_size_um : float
        Pixel edge length (um); ~0.5 at 20x, ~0.25 at 40x.
    params : IHCParams or dict, optional
        Parameters (defaults: :class:`IHCParams`).
    tile_px : int, default ``TILE_PX`` (1024)
        Largest window edge (px), halo included.

    Returns
    -------
    cells : DataFrame
        One row per detected cell (columns ``CELL_COLUMNS``); ``tumour``
        tells whether the cell is scored, ``her2_class`` is 0-3.
    labels : dict of str to ndarray of int32
        ``"nuclei"``, ``"cells"``, ``"membrane_band"`` label images (cell
        ``k`` holds nucleus ``k``; band pixels carry their cell's id).
    summary : dict
        Image-level numbers: counts, tissue and epithelium areas, the glass
        level used (``background_rgb``, ``background_source``: estimated, or
        fixed and why), the stain vectors used (``stain_vectors_source``:
        ``"fixed"``, ``"macenko"``, a partial estimate or ``"fixed: <why
        the estimate was rejected>"``), ``nucleus_dab_od_median`` (median
        nuclear DAB of the tumour cells: the image's cast / tint reference),
        ``interior_reference_fallback_od`` (the reference of cells whose
        nucleus is too small for their own), and the image's own scores
        (:func:`~sepher.ihc.score_biopsy` on its cells).
    """
    from sepher.ihc.biopsy import score_biopsy

    p = _params(params)
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[-1] not in (3, 4):
        raise ValueError(f"expected an RGB image of shape (H, W, 3), got {rgb.shape}")
    if pixel_size_um is None or not np.isfinite(pixel_size_um) or pixel_size_um <= 0:
        raise ValueError(f"pixel_size_um must be a positive number, got {pixel_size_um!r}")
    if int(tile_px) < 1:
        raise ValueError(f"tile_px must be a positive number of pixels, got {tile_px!r}")
    rgb = rgb[..., :3]
    if p.background == "estimate":
        i0, found = estimate_background(rgb, default=p.background_intensity, return_details=True)
        background_source = found["source"]
    else:
        i0 = np.broadcast_to(np.asarray(p.background_intensity, dtype=np.float64), (3,)).copy()
        background_source = "fixed (background: fixed)"
    matrix = stain_matrix(p.hematoxylin, p.dab)
    stain_source = "fixed"
    shared = None
    if rgb.shape[0] * rgb.shape[1] <= SHARED_MAX_PX:
        shared = _SharedPlanes(rgb, i0, pixel_size_um, p)
    if p.estimate_stains:
        if shared is not None:
            planes, tissue = shared.planes, shared.tissue()
        else:
            planes = od_planes(rgb, i0)
            tissue = tissue_from_od_sum(
                planes[0] + planes[1] + planes[2],
                pixel_size_um,
                od_threshold=p.tissue_od_threshold,
            )
        # the tissue pixels as (n, 3), in raster order: what the function would take
        # from the stacked planes with mask=tissue, without stacking the whole image
        matrix, stain_source = estimate_stain_vectors(
            np.stack([plane[tissue] for plane in planes], axis=-1),
            default_matrix=matrix,
            return_status=True,
        )
        del planes, tissue
    if shared is not None:
        shared.unmix(matrix)
    nuclei, cells, band, table, tissue_px, epithelium_px = _score_tiled(
        rgb, pixel_size_um, p, matrix, int(tile_px), i0, shared=shared
    )
    del shared
    reference_fallback = _add_excess(
        table, weak=p.weak, min_reference_area_um2=MIN_REFERENCE_AREA_UM2
    )
    per_cell = rules.classify_cells(
        table["membrane_dab_excess_od"].to_numpy(),
        table["membrane_completeness"].to_numpy(),
        weak=p.weak,
        moderate=p.moderate,
        strong=p.strong,
        complete_fraction=p.complete_fraction,
        max_fraction_for_0=p.max_fraction_for_0,
    )
    for column in per_cell.columns:
        table[column] = per_cell[column].to_numpy()
    table = table[list(CELL_COLUMNS)]
    tumour = table["tumour"].to_numpy(dtype=bool)
    nuclear_dab = table.loc[tumour, "nucleus_dab_od_mean"].to_numpy(dtype=np.float64)
    nuclear_dab = nuclear_dab[np.isfinite(nuclear_dab)]
    area_px = pixel_size_um**2
    summary = {
        "n_cells_detected": int(len(table)),
        "tissue_area_mm2": float(tissue_px * area_px * 1e-6),
        "epithelium_area_mm2": float(epithelium_px * area_px * 1e-6),
        "background_rgb": [round(float(v), 2) for v in i0],
        "background_source": background_source,
        "stain_vectors_source": stain_source,
        "hematoxylin_vector": [round(float(v), 4) for v in matrix[0]],
        "dab_vector": [round(float(v), 4) for v in matrix[1]],
        "nucleus_dab_od_median": (
            round(float(np.median(nuclear_dab)), 4) if nuclear_dab.size else float("nan")
        ),
        "interior_reference_fallback_od": round(float(reference_fallback), 4),
        **score_biopsy(table),
    }
    labels = {"nuclei": nuclei, "cells": cells, "membrane_band": band}
    return table, labels, summary


def tile_halo_um(params: IHCParams | dict | None = None) -> float:
    """Halo (um) around each window core of :func:`score_image`.

    The diameter of the largest cell: a round nucleus of the largest
    accepted area (``nucleus_max_area_um2``) grown by ``cell_expansion_um``
    all round (400 um^2 and 5 um: 32.6 um). A kept cell (nucleus centroid in
    the core) then ends at least a cell radius inside its window, and so do
    the neighbours it shares membranes with; it also covers four sigmas of
    the default 8 um local-background and epithelium smoothing.
    """
    p = _params(params)
    return 2.0 * (np.sqrt(p.nucleus_max_area_um2 / np.pi) + p.cell_expansion_um)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _tile_windows(
    shape: tuple[int, int], tile_px: int, halo_px: int, grid: int
) -> list[tuple[slice, slice, slice, slice]]:
    """Cores (tiling the image) and windows (core + halo, clipped), row-major.

    Returns ``(core_rows, core_cols, window_rows, window_cols)`` per window.
    Core starts are multiples of ``grid`` and ``halo_px`` is one too, so
    every window origin lies on the whole image's block grid. Cores are of
    near-equal size with windows of at most ``tile_px``, unless that leaves
    a core narrower than the halo: cores are at least a halo wide (windows
    then up to three halos), which bounds the halo overhead.
    """
    height, width = shape
    if height <= tile_px and width <= tile_px:
        return [(slice(0, height), slice(0, width), slice(0, height), slice(0, width))]
    max_core = max(halo_px, grid, (tile_px - 2 * halo_px) // grid * grid)

    def cuts(length: int) -> list[tuple[int, int]]:
        count = _ceil_div(length, max_core)
        step = _ceil_div(_ceil_div(length, count), grid) * grid
        return [(start, min(start + step, length)) for start in range(0, length, step)]

    windows = []
    for y0, y1 in cuts(height):
        for x0, x1 in cuts(width):
            windows.append(
                (
                    slice(y0, y1),
                    slice(x0, x1),
                    slice(max(0, y0 - halo_px), min(height, y1 + halo_px)),
                    slice(max(0, x0 - halo_px), min(width, x1 + halo_px)),
                )
            )
    return windows


def _score_window(
    rgb: np.ndarray,
    pixel_size_um: float,
    p: IHCParams,
    matrix: np.ndarray,
    i0=None,
    *,
    shared: _SharedPlanes | None = None,
    window: tuple[slice, slice] | None = None,
):
    """The per-image chain on one window (or a whole small image).

    With ``shared`` (the whole image's planes, :class:`_SharedPlanes`) and
    ``window`` (its slices in the image), ``rgb`` is not read: the window's
    planes and Gaussian-smoothed planes are cut from the shared ones, with
    the same values as computed on the window alone.

    Returns nuclei, cells and band labels, the per-cell table (with
    ``tumour`` and the hidden columns of :func:`_measure`), each label's
    nucleus centroid (px) and the tissue and epithelium masks.
    """
    smoothed = {}
    if shared is None:
        i0 = p.background_intensity if i0 is None else i0
        planes = od_planes(rgb, i0)
        od_sum = planes[0] + planes[1] + planes[2]
        tissue = tissue_from_od_sum(od_sum, pixel_size_um, od_threshold=p.tissue_od_threshold)
        hematoxylin, dab = unmix_planes(*planes, matrix)
        del planes
    else:
        od_sum = shared.crop("od_sum", window)
        hematoxylin = shared.crop("hematoxylin", window)
        dab = shared.crop("dab", window)
        tissue = shared.tissue(window)
        smoothed = {
            "nuclei": shared.smooth("hematoxylin_clipped", p.nucleus_smoothing_um, window),
            "cells": shared.smooth("dab", CELL_SMOOTHING_UM, window),
            "grow": shared.smooth("od_sum", 1.0, window) if p.cell_min_od > 0 else None,
        }
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
        smoothed=smoothed.get("nuclei"),
    )
    if p.exclude_stroma:
        # the counterstain's OD (hematoxylin + residual): no DAB, so HER2 0 tumour counts
        counterstain = None
        if p.epithelium_min_extranuclear_od > 0:
            counterstain = od_sum - dab * np.float32(np.sum(matrix[1]))
        epithelium = tumour_epithelium(
            nuclei,
            pixel_size_um,
            counterstain_od=counterstain,
            tissue=tissue,
            sigma_um=p.epithelium_sigma_um,
            min_nuclear_fraction=p.epithelium_min_nuclear_fraction,
            min_extranuclear_od=p.epithelium_min_extranuclear_od,
            min_nucleus_area_um2=p.epithelium_min_nucleus_area_um2,
            min_nucleus_roundness=p.epithelium_min_nucleus_roundness,
        )
        del counterstain
    else:
        epithelium = tissue
    cell_mask = tissue
    if p.cell_min_od > 0:
        grow = smoothed.get("grow")
        if grow is None:
            grow = ndi.gaussian_filter(od_sum, 1.0 / pixel_size_um)
        grow = grow >= p.cell_min_od
        if p.exclude_stroma:
            grow |= epithelium
        cell_mask = tissue & grow
    cells = segment_cells(
        nuclei,
        pixel_size_um,
        dab=dab,
        method=p.cell_method,
        expansion_um=p.cell_expansion_um,
        smoothing_sigma_um=CELL_SMOOTHING_UM,
        mask=cell_mask,
        surface=smoothed.get("cells"),
    )
    band, edge_zone = membrane_band(
        cells, nuclei, pixel_size_um, p.membrane_width_um, return_edge_zone=True
    )
    table, nucleus_y, nucleus_x = _measure(
        nuclei,
        cells,
        band,
        hematoxylin,
        dab,
        pixel_size_um,
        weak=p.weak,
        n_sectors=p.n_sectors,
        reference=(nuclei > 0) & ~edge_zone,
    )
    if p.exclude_stroma:
        # a cell is tumour when its nucleus lies mostly in the epithelium
        in_nucleus = np.flatnonzero(nuclei)
        ids = nuclei.ravel()[in_nucleus]
        n = len(nucleus_y)
        in_epi = np.bincount(ids, weights=epithelium.ravel()[in_nucleus], minlength=n)
        share = in_epi / np.maximum(np.bincount(ids, minlength=n), 1)
        table["tumour"] = share[table["cell_id"].to_numpy()] >= 0.5
    else:
        table["tumour"] = True
    return nuclei, cells, band, table, nucleus_y, nucleus_x, tissue, epithelium


def _score_tiled(
    rgb: np.ndarray,
    pixel_size_um: float,
    p: IHCParams,
    matrix,
    tile_px: int,
    i0=None,
    *,
    shared: _SharedPlanes | None = None,
):
    """:func:`_score_window` over the windows of :func:`_tile_windows`, stitched.

    Returns the stitched labels, the per-cell table and the tissue and
    epithelium pixel counts (over the cores). A window keeps the cells whose
    nucleus centroid lies in its core. A kept nucleus that overlaps one
    placed by an earlier window is a second detection of it (segmented
    slightly differently near a core edge) and is dropped; cell and band
    pixels already taken stay with the earlier cell. ``shared``
    (:class:`_SharedPlanes`) saves recomputing per window what the windows
    share, with the same results.
    """
    shape = rgb.shape[:2]
    grid = nuclei_block_grid(pixel_size_um, p.nucleus_smoothing_um, p.nucleus_background_sigma_um)
    halo_px = _ceil_div(int(np.ceil(tile_halo_um(p) / pixel_size_um)), grid) * grid
    windows = _tile_windows(shape, tile_px, halo_px, grid)
    if len(windows) == 1:
        nuclei, cells, band, table, _, _, tissue, epithelium = _score_window(
            rgb, pixel_size_um, p, matrix, i0, shared=shared, window=windows[0][2:]
        )
        return nuclei, cells, band, table, int(tissue.sum()), int(epithelium.sum())
    nuclei = np.zeros(shape, dtype=np.int32)
    cells = np.zeros(shape, dtype=np.int32)
    band = np.zeros(shape, dtype=np.int32)
    tables = []
    tissue_px = epithelium_px = 0
    next_id = 1
    for core_y, core_x, win_y, win_x in windows:
        win = (win_y, win_x)
        w_nuclei, w_cells, w_band, w_table, nucleus_y, nucleus_x, w_tissue, w_epi = _score_window(
            rgb[win], pixel_size_um, p, matrix, i0, shared=shared, window=win
        )
        core = (
            slice(core_y.start - win_y.start, core_y.stop - win_y.start),
            slice(core_x.start - win_x.start, core_x.stop - win_x.start),
        )
        tissue_px += int(w_tissue[core].sum())
        epithelium_px += int(w_epi[core].sum())
        # keep the labels whose nucleus centroid lies in the core (NaN: no nucleus)
        cy = nucleus_y + win_y.start
        cx = nucleus_x + win_x.start
        keep = (cy >= core_y.start) & (cy < core_y.stop) & (cx >= core_x.start) & (cx < core_x.stop)
        keep[0] = False
        placed = nuclei[win]
        keep[np.unique(w_nuclei[(placed > 0) & (w_nuclei > 0)])] = False
        kept = np.flatnonzero(keep)
        if kept.size == 0:
            continue
        new_id = np.zeros(len(keep), dtype=np.int32)
        new_id[kept] = np.arange(next_id, next_id + len(kept), dtype=np.int32)
        next_id += len(kept)
        # write the kept labels in place (np.copyto: one pass, no boolean gathers)
        mapped = new_id[w_nuclei]
        np.copyto(placed, mapped, where=mapped > 0)
        mapped = new_id[w_cells]
        target = cells[win]
        free = (mapped > 0) & (target == 0)
        np.copyto(target, mapped, where=free)
        mapped = new_id[w_band]
        free &= mapped > 0
        np.copyto(band[win], mapped, where=free)
        rows = w_table[keep[w_table["cell_id"].to_numpy()]].copy()
        rows["cell_id"] = new_id[rows["cell_id"].to_numpy()]
        rows["y_um"] += win_y.start * pixel_size_um
        rows["x_um"] += win_x.start * pixel_size_um
        tables.append(rows)
    if tables:
        table = pd.concat(tables, ignore_index=True)
    else:
        empty = np.zeros((1, 1), dtype=np.int32)
        table = _measure(
            empty,
            empty,
            empty,
            np.zeros((1, 1)),
            np.zeros((1, 1)),
            1.0,
            weak=p.weak,
            n_sectors=p.n_sectors,
            reference=np.zeros((1, 1), dtype=bool),
        )[0]
        table["tumour"] = np.zeros(0, dtype=bool)
    return nuclei, cells, band, table, tissue_px, epithelium_px


def _gaussian_radius(sigma: float, truncate: float = 4.0) -> int:
    """Kernel half-width of ``scipy.ndimage.gaussian_filter1d`` (its own formula)."""
    return int(truncate * float(sigma) + 0.5)


def _gaussian_in_window(
    source: np.ndarray, smoothed: np.ndarray, sigma: float, window: tuple[slice, slice]
) -> np.ndarray:
    """``ndi.gaussian_filter(source[window], sigma)`` from the whole image's smoothing.

    ``smoothed`` is ``ndi.gaussian_filter(source, sigma)`` (mode ``reflect``).
    Away from the window's inner edges (those not on the image border) the
    window's filter sees the same pixels as the whole image's, summed in the
    same order, so its values are the same floats: they are copied. Within a
    kernel radius of an inner edge the window's filter reflects at that edge;
    those strips are filtered again, each from a slab two radii deep cut at
    the edge (the first pass along rows and the second along columns see,
    within one radius of the edge, the same pixels as on the whole window).
    The result equals filtering the window alone, bit for bit, at a fraction
    of the cost when windows overlap (written by hand: scipy filters whole
    arrays only).

    Parameters
    ----------
    source : ndarray, 2-D
        The whole image's plane.
    smoothed : ndarray, 2-D
        ``ndi.gaussian_filter(source, sigma)``.
    sigma : float
        Gaussian sigma (px), the same for both axes; ``truncate`` 4.
    window : tuple of slice
        Row and column slices (step 1) of the window.

    Returns
    -------
    ndarray, the window's shape, ``smoothed``'s dtype
    """
    rows, cols = window
    height, width = source.shape
    y0, y1, _ = rows.indices(height)
    x0, x1, _ = cols.indices(width)
    out = smoothed[y0:y1, x0:x1].copy()
    h, w = out.shape
    r = _gaussian_radius(sigma)
    if r == 0 or h == 0 or w == 0:
        return out
    part = source[y0:y1, x0:x1]
    depth, keep_h, keep_w = 2 * r, min(r, h), min(r, w)
    if y0 > 0:
        out[:keep_h] = ndi.gaussian_filter(part[: min(depth, h)], sigma)[:keep_h]
    if y1 < height:
        slab = part[max(0, h - depth) :]
        out[h - keep_h :] = ndi.gaussian_filter(slab, sigma)[slab.shape[0] - keep_h :]
    if x0 > 0:
        out[:, :keep_w] = ndi.gaussian_filter(part[:, : min(depth, w)], sigma)[:, :keep_w]
    if x1 < width:
        slab = part[:, max(0, w - depth) :]
        out[:, w - keep_w :] = ndi.gaussian_filter(slab, sigma)[:, slab.shape[1] - keep_w :]
    return out


class _SharedPlanes:
    """Whole-image planes that the windows of :func:`score_image` cut theirs from.

    The OD planes (also those of the stain estimation), their sum, the
    unmixed stains and, on first use, each Gaussian smoothing a window
    needs, computed once over the image; a window's own is
    :func:`_gaussian_in_window` of it (the same floats as computed on the
    window alone). The tissue mask of the whole image (the stain
    estimation's) is a window's own when the window is the whole image.
    """

    def __init__(self, rgb: np.ndarray, i0, pixel_size_um: float, p: IHCParams):
        self.shape = rgb.shape[:2]
        self.pixel_size_um = float(pixel_size_um)
        self.p = p
        self.planes = od_planes(rgb, i0)
        self.arrays = {"od_sum": self.planes[0] + self.planes[1] + self.planes[2]}
        self.smoothed: dict[tuple[str, float], np.ndarray] = {}
        self._tissue = None

    def unmix(self, matrix: np.ndarray) -> None:
        """The stains with the image's stain matrix; the RGB planes are then dropped."""
        hematoxylin, dab = unmix_planes(*self.planes, matrix)
        self.arrays.update(hematoxylin=hematoxylin, dab=dab)
        self.planes = None

    def _array(self, name: str) -> np.ndarray:
        if name == "hematoxylin_clipped" and name not in self.arrays:
            self.arrays[name] = np.clip(self.arrays["hematoxylin"], 0, None)
        return self.arrays[name]

    def _whole(self, window) -> bool:
        rows, cols = window
        return rows.indices(self.shape[0])[:2] == (0, self.shape[0]) and cols.indices(
            self.shape[1]
        )[:2] == (0, self.shape[1])

    def crop(self, name: str, window) -> np.ndarray:
        """The window of a whole-image plane (a view)."""
        return self._array(name)[window]

    def smooth(self, name: str, sigma_um: float, window=None) -> np.ndarray:
        """``ndi.gaussian_filter(plane[window], sigma_um / pixel size)``, shared work."""
        sigma = float(sigma_um) / self.pixel_size_um
        key = (name, sigma)
        if key not in self.smoothed:
            self.smoothed[key] = ndi.gaussian_filter(self._array(name), sigma)
        if window is None or self._whole(window):
            return self.smoothed[key]
        return _gaussian_in_window(self._array(name), self.smoothed[key], sigma, window)

    def tissue(self, window=None) -> np.ndarray:
        """:func:`~sepher.ihc.deconvolution.tissue_from_od_sum` of the window (default sigma)."""
        whole = window is None or self._whole(window)
        if whole and self._tissue is not None:
            return self._tissue
        mask = tissue_from_od_sum(
            None,
            self.pixel_size_um,
            od_threshold=self.p.tissue_od_threshold,
            smoothed=self.smooth("od_sum", TISSUE_SMOOTHING_UM, window),
        )
        if whole:
            self._tissue = mask
        return mask
