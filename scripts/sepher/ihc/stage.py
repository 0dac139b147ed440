"""The IHC stage: one tile -> scored cells, labels and its overlay; the
reference-scored tiles -> calibrated intensity thresholds; all tiles ->
per-biopsy ASCO/CAP scores and pre/post changes.

The batch rules ``ihc_score_batch_<batch>`` (several tiles per job, a whole
slide alone) call :func:`score_batch`, which scores each row with
:func:`score_row` (:func:`score_tile` or :func:`score_slide_row`) and writes
its files with :func:`write_tile_outputs`; rule ``ihc_calibration`` calls
:func:`calibrate_from_tiles`, rule ``ihc_biopsies`` :func:`biopsy_tables`.
"""

from __future__ import annotations

import math

import pandas as pd

from sepher.ihc.biopsy import paired_changes, score_biopsies
from sepher.ihc.overlay import class_overlay
from sepher.ihc.rules import ASCO_CAP_LABELS, reclassify
from sepher.ihc.scoring import IHCParams, score_image
from sepher.io.tables import iter_tables

__all__ = [
    "TILE_IDS",
    "TILE_OUTPUTS",
    "biopsy_tables",
    "calibrate_from_tiles",
    "reference_scores",
    "score_batch",
    "score_row",
    "score_slide_row",
    "score_tile",
    "write_tile_outputs",
]

#: Sheet columns that identify a tile and its biopsy.
TILE_IDS = ("image_id", "patient_id", "timepoint")

#: The files written per tile (output names of the batch rules, rules/ihc.smk).
TILE_OUTPUTS = ("cells", "summary", "nuclei", "cell_labels", "overlay")


def score_tile(rgb, tile, params):
    """Score one H-DAB tile and draw its overlay.

    Parameters
    ----------
    rgb : ndarray
        The tile, RGB uint8.
    tile : mapping
        The tile's sheet row (:data:`TILE_IDS`, ``pixel_size_um``).
    params : IHCParams

    Returns
    -------
    cells : DataFrame
        One row per cell, the :data:`TILE_IDS` first, by ``cell_id``.
    labels : dict
        ``"nuclei"``, ``"cells"`` label images.
    summary : dict
        The tile's summary (:func:`score_image`) with its ids and pixel size.
    overlay : ndarray
        The brightfield tile as scanned with each tumour cell's outline (1 px)
        in its HER2 class colour (fig 4).
    """
    pixel_size_um = tile["pixel_size_um"]
    cells, labels, summary = score_image(rgb, pixel_size_um, params)
    ids = {key: tile[key] for key in TILE_IDS}
    table = cells.assign(**ids)[[*ids, *cells.columns]].sort_values("cell_id")
    overlay = class_overlay(rgb, labels["cells"], cells)
    return table, labels, {**ids, "pixel_size_um": pixel_size_um, **summary}, overlay


def score_row(image, tile, params):
    """Score one IHC row of the sheet: a whole slide or a tile / photomicrograph.

    Parameters
    ----------
    image : str or Path
        The row's image file. A whole slide (:func:`sepher.ihc.wsi.is_whole_slide`)
        is scored tile by tile inside its ``roi_geojson`` (:func:`score_slide_row`);
        any other image is read whole (:func:`sepher.ihc.io.read_ihc_rgb`) and
        scored by :func:`score_tile`.
    tile : mapping
        The row (:data:`TILE_IDS`, ``pixel_size_um``, optional ``roi_geojson``).
    params : IHCParams

    Returns
    -------
    The four values of :func:`score_tile`.
    """
    from sepher.ihc.io import read_ihc_rgb
    from sepher.ihc.wsi import is_whole_slide

    if is_whole_slide(image):
        roi = tile.get("roi_geojson") or None
        return score_slide_row(image, tile, params, roi=roi)
    return score_tile(read_ihc_rgb(image), tile, params)


def write_tile_outputs(result, paths) -> None:
    """Write one row's scored result (:func:`score_row`) to its files.

    Parameters
    ----------
    result : tuple
        ``(cells, labels, summary, overlay)``.
    paths : mapping
        Path by :data:`TILE_OUTPUTS` name: ``cells`` (CSV), ``summary`` (JSON),
        ``nuclei`` and ``cell_labels`` (label TIFFs), ``overlay`` (PNG, zlib
        level :data:`sepher.ihc.io.FAST_PNG_LEVEL`: the pixels of any level,
        written several times faster than at the default).
    """
    from sepher.ihc.io import FAST_PNG_LEVEL, write_label_tiff, write_rgb_png
    from sepher.io.tables import write_json, write_table

    cells, labels, summary, overlay = result
    write_table(cells, paths["cells"])
    write_json(summary, paths["summary"])
    write_label_tiff(labels["nuclei"], paths["nuclei"], summary["pixel_size_um"])
    write_label_tiff(labels["cells"], paths["cell_labels"], summary["pixel_size_um"])
    write_rgb_png(overlay, paths["overlay"], compress_level=FAST_PNG_LEVEL)


def score_batch(images, tiles, params, outputs) -> list[dict]:
    """Score a batch of IHC rows one after another, writing each row's files.

    One job (one Python start and one import of the libraries) for several
    rows; each row's files are those a job of its own would write, byte for
    byte: the rows share nothing but ``params``. One row is in memory at a
    time, so the peak memory of a batch is that of its largest image.

    Parameters
    ----------
    images : sequence of path
        The rows' image files, in batch order.
    tiles : sequence of mapping
        The rows (:func:`score_row`), aligned with `images`.
    params : IHCParams
    outputs : mapping
        For each :data:`TILE_OUTPUTS` name, one path per row, aligned with `images`.

    Returns
    -------
    list of dict
        Each row's summary, in batch order.
    """
    images, tiles = list(images), list(tiles)
    if len(images) != len(tiles):
        raise ValueError(f"{len(images)} images for {len(tiles)} sheet rows")
    paths = {name: list(outputs[name]) for name in TILE_OUTPUTS}
    for name, files in paths.items():
        if len(files) != len(tiles):
            raise ValueError(f"{len(files)} {name} outputs for {len(tiles)} sheet rows")
    summaries = []
    for k, (image, tile) in enumerate(zip(images, tiles, strict=True)):
        result = score_row(image, tile, params)
        cells, _, summary, _ = result
        print(f"{tile['image_id']}: {len(cells)} cells, {summary['n_tumour_cells']} tumour cells")
        write_tile_outputs(result, {name: files[k] for name, files in paths.items()})
        summaries.append(summary)
        del result, cells
    return summaries


def reference_scores(tiles: pd.DataFrame) -> pd.Series:
    """The tiles' reference scores (0-3) by ``image_id``; tiles without one left out."""
    if "reference_score" not in tiles:
        return pd.Series(dtype="int64", name="reference_score")
    scores = tiles.set_index("image_id")["reference_score"].fillna("").astype(str)
    scores = scores[scores != ""]
    return scores.map(ASCO_CAP_LABELS.index).astype("int64")


def _read_cells(cell_paths) -> pd.DataFrame:
    cells = pd.concat(iter_tables(cell_paths), ignore_index=True)
    cells["image_id"] = cells["image_id"].astype(str)
    return cells


def calibrate_from_tiles(
    cell_paths,
    tiles,
    params: IHCParams,
    *,
    cutoff_pct: float,
    intense_minority_min_pct: float,
    n_boot: int,
    seed: int,
):
    """Fit ``weak`` / ``moderate`` / ``strong`` on the tiles with a reference score.

    Parameters
    ----------
    cell_paths : sequence of path
        Per-tile cells tables (every tile; those without a reference are ignored).
    tiles : DataFrame
        The sheet's tiles with ``image_id`` and ``reference_score`` ("" when none).
    params : IHCParams
        The configured (literature) thresholds, the starting point and tie-breaker.
    cutoff_pct, intense_minority_min_pct : float
        ASCO/CAP settings of the categories being matched.
    n_boot, seed : int
        Bootstrap resamples and seed (:func:`sepher.ihc.calibration.calibrate_thresholds`).

    Returns
    -------
    table : DataFrame
        ``ihc_calibration.csv`` (:func:`sepher.ihc.calibration.calibration_table`).
    payload : dict
        ``thresholds``, their ``ci``, cross-validated ``exact`` and
        ``kappa_linear``, ``n_images``, ``method`` (``ihc_thresholds.json``).
    """
    from sepher.ihc.calibration import calibrate_thresholds, calibration_table

    references = reference_scores(tiles)
    cells = _read_cells(cell_paths)
    cells = cells[cells["image_id"].isin(references.index)]
    result = calibrate_thresholds(
        cells,
        references,
        defaults={"weak": params.weak, "moderate": params.moderate, "strong": params.strong},
        complete_fraction=params.complete_fraction,
        max_fraction_for_0=params.max_fraction_for_0,
        cutoff_pct=cutoff_pct,
        intense_minority_min_pct=intense_minority_min_pct,
        n_boot=n_boot,
        seed=seed,
    )
    payload = {
        "thresholds": {k: float(v) for k, v in result.thresholds.items()},
        # an interval open at the top (no reference above it) is written as null
        "ci": {
            k: [float(x) if math.isfinite(x) else None for x in v] for k, v in result.ci.items()
        },
        "exact": float(result.exact),
        "kappa_linear": float(result.kappa_linear),
        "n_images": int(result.n_images),
        "method": result.method,
        "cv_scheme": result.cv_scheme,
    }
    return calibration_table(result), payload


def score_slide_row(path, tile, params, *, roi=None, display_px: int = 1024):
    """Score a whole slide (:func:`sepher.ihc.wsi.score_slide`) for one sheet row.

    The label images and the overlay (fig 4, QC) cover one display field:
    the ``display_px`` square at scan resolution centred on the tile with the
    most tumour cells (first in raster order on ties), scored again on its own
    (:func:`score_tile`); the cells table covers the whole slide (or ROI).

    Returns
    -------
    The four values of :func:`score_tile`; ``summary`` is the slide's, with the
    display field's origin (``display_x_px``, ``display_y_px``, level 0).
    """
    from sepher.ihc.wsi import open_slide, score_slide

    with open_slide(path) as slide:
        cells, summary = score_slide(slide, params, pixel_size_um=tile["pixel_size_um"], roi=roi)
        width, height = slide.dimensions
        tumour = cells[cells["tumour"]] if len(cells) else cells
        if len(tumour):
            counts = tumour.groupby("tile_id").size()
            best = counts.index[counts.to_numpy().argmax()]
            first = tumour[tumour["tile_id"] == best].iloc[0]
            side = 1024
            cx = int(first["tile_x_px"]) + side // 2
            cy = int(first["tile_y_px"]) + side // 2
        else:
            cx, cy = width // 2, height // 2
        size_x, size_y = min(display_px, width), min(display_px, height)
        x0 = int(min(max(cx - size_x // 2, 0), width - size_x))
        y0 = int(min(max(cy - size_y // 2, 0), height - size_y))
        rgb = slide.read(0, x0, y0, size_x, size_y)
    _, labels, _, overlay = score_tile(rgb, tile, params)
    ids = {key: tile[key] for key in TILE_IDS}
    table = cells.assign(**ids)[[*ids, *cells.columns]].sort_values("cell_id")
    summary = {
        **ids,
        "pixel_size_um": tile["pixel_size_um"],
        **summary,
        "display_x_px": x0,
        "display_y_px": y0,
    }
    return table, labels, summary, overlay


def biopsy_tables(
    cell_paths,
    tiles,
    *,
    cutoff_pct: float,
    samples_file: str = "samples",
    params: IHCParams | None = None,
    thresholds: dict | None = None,
    intense_minority_min_pct: float = 1.0,
    ultralow_min_pct: float = 1.0,
):
    """All tiles' cells -> the cells, per-biopsy scores and pre/post changes.

    Parameters
    ----------
    cell_paths : sequence of path
        Per-tile cells tables (``image_id`` and the cell columns).
    tiles : DataFrame
        The sheet's tiles: ``image_id``, ``patient_id``, ``timepoint`` as
        the user wrote them (a table read from disk would turn an id like
        ``"0012"`` into a number).
    cutoff_pct : float
        ASCO/CAP percent-of-cells cutoff.
    samples_file : str
        Name of the samples table, for messages of :func:`paired_changes`.
    params : IHCParams, optional
        The scoring parameters (completeness rule of a re-classification).
    thresholds : dict, optional
        Calibrated ``weak`` / ``moderate`` / ``strong``: every cell is
        re-classified with them (:func:`sepher.ihc.rules.classify_cells`; its
        completeness stays the one measured at the configured ``weak``).
    intense_minority_min_pct, ultralow_min_pct : float
        :func:`sepher.ihc.score_biopsy` settings.

    Returns
    -------
    cells : DataFrame
        Every cell with its patient and time point, by patient, time point,
        image and cell.
    samples : DataFrame
        One row per biopsy (:func:`score_biopsies`), pre before post within
        each patient.
    paired : DataFrame
        :func:`paired_changes`.
    """
    cells = _read_cells(cell_paths)
    references = reference_scores(tiles)
    tiles = tiles.set_index("image_id")
    for column in ("patient_id", "timepoint"):
        cells[column] = cells["image_id"].map(tiles[column])
    cells = cells.sort_values(["patient_id", "timepoint", "image_id", "cell_id"], kind="stable")
    if thresholds is not None:
        p = params or IHCParams()
        cells = reclassify(
            cells,
            thresholds,
            complete_fraction=p.complete_fraction,
            max_fraction_for_0=p.max_fraction_for_0,
        )
    samples = score_biopsies(
        cells,
        cutoff_pct=cutoff_pct,
        intense_minority_min_pct=intense_minority_min_pct,
        ultralow_min_pct=ultralow_min_pct,
    )
    in_reference = cells.groupby(["patient_id", "timepoint"])["image_id"].agg(
        lambda ids: bool(ids.isin(references.index).any())
    )
    samples["has_reference_score"] = [
        bool(in_reference.get((p_id, t), False))
        for p_id, t in zip(samples["patient_id"], samples["timepoint"], strict=True)
    ]
    order = samples["timepoint"].map({"pre": 0, "post": 1})
    samples = samples.assign(order=order).sort_values(["patient_id", "order"])
    samples = samples.drop(columns="order").reset_index(drop=True)
    return cells, samples, paired_changes(samples, file=samples_file)
