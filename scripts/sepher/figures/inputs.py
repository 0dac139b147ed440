"""A run's files -> the data the image figures draw.

The plotting modules (:mod:`.imaging_plots`, :mod:`.ihc_plots`) are pure:
arrays and tables in, a figure out. This module does the reading and the
choices in between: which fields and tiles are shown, in which order, and
the per-condition QC counts.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sepher.figures.ihc_plots import central_field, representative_tiles
from sepher.figures.imaging_plots import choose_representative, field_rgb

__all__ = [
    "MAX_FLAGGED_SHOWN",
    "biopsy_tiles",
    "load_field",
    "localisation_fields",
    "segmentation_qc_inputs",
]

#: Flagged fields shown in fig S1 (the first by image id); all are counted.
MAX_FLAGGED_SHOWN = 8


# --------------------------------------------------------------------------- immunofluorescence
def load_field(spec: dict) -> dict:
    """One IF field: HER2 and nuclear channels, label images, pixel size.

    Parameters
    ----------
    spec : dict
        The field's entry of the workflow's ``if_fields()``: ``file``,
        ``pixel_size_um``, ``her2_channel``, ``nuclear_channel`` and the
        label files (:func:`sepher.imaging.field.read_labels`).
    """
    # imported here: sepher.imaging pulls in scipy.ndimage and scikit-image, which the
    # IHC figure (biopsy_tiles) does not need
    from sepher.imaging.field import read_labels
    from sepher.imaging.io import read_stack
    from sepher.imaging.zstack import focus_plane

    stack, pixel_size_um, _ = read_stack(
        spec["file"], pixel_size_um=spec["pixel_size_um"], require_z_step=False
    )
    # a z-stack field is shown at its in-focus (mid-nuclear) plane
    plane = focus_plane(stack[spec["nuclear_channel"]]) if stack.shape[1] > 1 else 0
    image = stack[:, plane]
    return {
        "her2": image[spec["her2_channel"]],
        "nuclear": image[spec["nuclear_channel"]],
        "nuclei": read_labels(spec, "nuclei"),
        "cells": read_labels(spec, "cells"),
        "pixel_size_um": pixel_size_um,
    }


def localisation_fields(per_image, fields, *, line, conditions) -> list[dict]:
    """Fig 2's fields: the representative field of each condition of one cell line.

    Parameters
    ----------
    per_image : DataFrame
        Image rows of ``if_summary.csv``.
    fields : mapping
        Image id -> field spec (:func:`load_field`).
    line : str
        Cell line shown.
    conditions : sequence of str
        Conditions, in panel order; one without images is left out.

    Returns
    -------
    list of dict
        :func:`load_field` plus ``image_id``, ``cell_line``, ``condition``.
    """
    chosen = choose_representative(per_image[per_image["cell_line"] == line])
    shown = []
    for condition in conditions:
        if (line, condition) not in chosen.index:
            continue
        image_id = chosen[(line, condition)]
        shown.append(
            {
                "image_id": image_id,
                **load_field(fields[image_id]),
                "cell_line": line,
                "condition": condition,
            }
        )
    return shown


def _overlay(spec, label):
    field = load_field(spec)
    rgb = field_rgb(field["her2"], field["nuclear"], nuclei=field["nuclei"], cells=field["cells"])
    return {"label": label, "rgb": rgb, "pixel_size_um": field["pixel_size_um"]}


def segmentation_qc_inputs(cells, image_qc, fields, groups, max_flagged=MAX_FLAGGED_SHOWN):
    """Fig S1's data: one good field per condition, flagged fields, flag rates.

    Parameters
    ----------
    cells : DataFrame
        ``if_cells.csv`` (the :data:`~sepher.imaging.qc.CELL_FLAGS` columns).
    image_qc : DataFrame
        ``if_image_qc.csv``.
    fields : mapping
        Image id -> field spec (:func:`load_field`).
    groups : sequence of (cell_line, condition)
        Conditions in figure order.
    max_flagged : int
        Flagged fields drawn (the first by image id).

    Returns
    -------
    dict
        ``overlays`` (first good field by image id of each condition),
        ``flagged``, ``flag_counts`` (percent of cells with each flag and
        ``images_flagged``, indexed ``"<line> <condition>"``), ``n_flagged``:
        the arguments of :func:`sepher.figures.imaging_plots.plot_segmentation_qc`.
    """
    from sepher.imaging.qc import CELL_FLAGS

    kept = image_qc[~image_qc["image_excluded"].astype(bool)]
    # first good field (by image id) of each condition: a deterministic sample
    sample = kept.sort_values("image_id").groupby(["cell_line", "condition"], sort=False).first()
    sample = sample.reset_index()
    order = {tuple(group): i for i, group in enumerate(groups)}
    sample["order"] = [order[(r.cell_line, r.condition)] for r in sample.itertuples()]
    sample = sample.sort_values("order")
    overlays = [
        _overlay(fields[r.image_id], f"{r.cell_line} {r.condition}") for r in sample.itertuples()
    ]
    bad = image_qc[image_qc["image_excluded"].astype(bool)].sort_values("image_id")
    flagged = [
        _overlay(
            fields[r.image_id],
            f"{r.cell_line} {r.condition}\n{r.image_flags.replace('_', ' ')}",
        )
        for r in bad.head(max_flagged).itertuples()
    ]
    grouped = cells.groupby(["cell_line", "condition"], sort=False)
    counts = (grouped[list(CELL_FLAGS)].mean() * 100).reset_index()
    images_flagged = bad.groupby(["cell_line", "condition"]).size()
    counts["images_flagged"] = [
        int(images_flagged.get((r.cell_line, r.condition), 0)) for r in counts.itertuples()
    ]
    counts["order"] = [order[(r.cell_line, r.condition)] for r in counts.itertuples()]
    counts = counts.sort_values("order")
    counts.index = counts["cell_line"] + " " + counts["condition"]
    return {"overlays": overlays, "flagged": flagged, "flag_counts": counts, "n_flagged": len(bad)}


# --------------------------------------------------------------------------- immunohistochemistry
def biopsy_tiles(samples, tiles, summaries, overlays, *, field_um) -> list[dict]:
    """Fig 4's tiles: the representative tile of each biopsy, cropped to its central field.

    Parameters
    ----------
    samples : DataFrame
        ``ihc_samples.csv`` (``patient_id`` as text).
    tiles : DataFrame
        The sheet's IHC tiles (``image_id``, ``patient_id``, ``timepoint``,
        ``pixel_size_um``).
    summaries : sequence of path
        Per-tile JSON summaries (``image_id``, ``h_score``) of the ``ihc_score_batch_*`` rules.
    overlays : sequence of path
        Per-tile class overlays, ``<image_id>.png``.
    field_um : float
        Side of the central field shown.

    Returns
    -------
    list of dict
        ``patient_id``, ``timepoint``, ``pixel_size_um``, ``image`` (RGB array).
    """
    from PIL import Image

    own_h = {}
    for path in summaries:
        summary = json.loads(Path(path).read_text())
        own_h[summary["image_id"]] = summary["h_score"]
    tiles = tiles.assign(h_score=tiles["image_id"].map(own_h))
    overlay_of = {Path(path).name.removesuffix(".png"): path for path in overlays}
    shown = []
    for tile in representative_tiles(tiles, samples).itertuples():
        print(f"{tile.patient_id} {tile.timepoint}: tile {tile.image_id}")
        image = np.asarray(Image.open(overlay_of[tile.image_id]).convert("RGB"))
        shown.append(
            {
                "patient_id": tile.patient_id,
                "timepoint": tile.timepoint,
                "pixel_size_um": tile.pixel_size_um,
                "image": central_field(image, tile.pixel_size_um, field_um),
            }
        )
    return shown
