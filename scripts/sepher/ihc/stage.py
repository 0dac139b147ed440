"""The IHC stage: one tile -> scored cells, labels and its overlay; all tiles ->
per-biopsy ASCO/CAP scores and pre/post changes.

Rule ``ihc_score_tile`` calls :func:`score_tile`, rule ``ihc_biopsies``
calls :func:`biopsy_tables`.
"""

from __future__ import annotations

import pandas as pd

from sepher.ihc.biopsy import paired_changes, score_biopsies
from sepher.ihc.deconvolution import rgb_to_od, stain_matrix, unmix_h_dab
from sepher.ihc.overlay import class_overlay, dab_greyscale
from sepher.ihc.scoring import score_image
from sepher.io.tables import iter_tables

__all__ = ["TILE_IDS", "biopsy_tables", "score_tile"]

#: Sheet columns that identify a tile and its biopsy.
TILE_IDS = ("image_id", "patient_id", "timepoint")


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
        The DAB channel (stain vectors as used: fixed, or estimated for this
        tile) with each cell's outline in its HER2 class colour (fig 4).
    """
    pixel_size_um = tile["pixel_size_um"]
    cells, labels, summary = score_image(rgb, pixel_size_um, params)
    ids = {key: tile[key] for key in TILE_IDS}
    table = cells.assign(**ids)[[*ids, *cells.columns]].sort_values("cell_id")
    if params.estimate_stains:
        matrix = stain_matrix(summary["hematoxylin_vector"], summary["dab_vector"])
    else:
        matrix = stain_matrix(params.hematoxylin, params.dab)
    _, dab = unmix_h_dab(rgb_to_od(rgb, params.background_intensity), matrix)
    overlay = class_overlay(dab_greyscale(dab), labels["cells"], cells)
    return table, labels, {**ids, "pixel_size_um": pixel_size_um, **summary}, overlay


def biopsy_tables(cell_paths, tiles, *, cutoff_pct: float, samples_file: str = "samples"):
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
    cells = pd.concat(iter_tables(cell_paths), ignore_index=True)
    tiles = tiles.set_index("image_id")
    cells["image_id"] = cells["image_id"].astype(str)
    for column in ("patient_id", "timepoint"):
        cells[column] = cells["image_id"].map(tiles[column])
    cells = cells.sort_values(["patient_id", "timepoint", "image_id", "cell_id"], kind="stable")
    samples = score_biopsies(cells, cutoff_pct=cutoff_pct)
    order = samples["timepoint"].map({"pre": 0, "post": 1})
    samples = samples.assign(order=order).sort_values(["patient_id", "order"])
    samples = samples.drop(columns="order").reset_index(drop=True)
    return cells, samples, paired_changes(samples, file=samples_file)
