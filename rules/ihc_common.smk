# Sheet rows, batches and input functions of the IHC stage (included from
# rules/ihc.smk): the IHC rows of the images sheet, read once at parse time.

# The IHC rows of the images sheet (read and validated once: images_sheet,
# rules/common.smk).
IHC_SHEET = (
    images_sheet()
    .query("assay == 'IHC'")
    .reset_index(drop=True)
    .set_index("image_id", drop=False)
    if configured("images")
    else None
)
IHC_IDS = [] if IHC_SHEET is None else sorted(IHC_SHEET["image_id"])
IHC = config["ihc"]


def _ihc_pixel_size(image_id):
    """The sheet's pixel size of an IHC row, or (blank in the sheet) its whole
    slide's metadata value (the start-up check has refused a blank for any other
    file)."""
    size = float(IHC_SHEET.at[image_id, "pixel_size_um"])
    if size == size:  # not NaN
        return size
    from sepher.ihc.wsi import open_slide, resolve_pixel_size

    with open_slide(IHC_SHEET.at[image_id, "file"]) as slide:
        return float(resolve_pixel_size(slide))


# Per tile: its sheet row as plain values (params of its batch: a changed row
# reruns that batch).
IHC_TILES = {
    image_id: {
        "image_id": image_id,
        "patient_id": str(IHC_SHEET.at[image_id, "patient_id"]),
        "timepoint": str(IHC_SHEET.at[image_id, "timepoint"]),
        "pixel_size_um": _ihc_pixel_size(image_id),
        "reference_score": str(IHC_SHEET.at[image_id, "reference_score"]),
        "roi_geojson": str(IHC_SHEET.at[image_id, "roi_geojson"]),
    }
    for image_id in IHC_IDS
}
# ihc.calibration: reference fits the intensity thresholds on the rows with a
# reference_score and applies them to every tile (rule ihc_calibration).
IHC_CALIBRATE = IHC["calibration"] == "reference"
if IHC_IDS and IHC_CALIBRATE:
    _references = [
        t["reference_score"] for t in IHC_TILES.values() if t["reference_score"]
    ]
    if len(_references) < 4 or len(set(_references)) < 2:
        raise InputError(
            config["images"],
            "at least 4 IHC rows with a reference_score, covering at least 2 different "
            "scores, for ihc.calibration: reference (found "
            f"{len(_references)} rows, scores {sorted(set(_references)) or 'none'})",
            column="reference_score",
            hint="Score more reference images, or set ihc.calibration: none "
            "(literature thresholds).",
        )
# Stage-level keys of the ihc section (the rest are sepher.ihc.IHCParams).
IHC_STAGE_KEYS = (
    "stain_estimation",
    "asco_cap_cutoff_pct",
    "intense_minority_min_pct",
    "ultralow_min_pct",
    "calibration",
    "calibration_bootstrap",
    "calibration_seed",
    "tiles_per_job",
)
# sepher.ihc.IHCParams from the config section (stage-level keys left out).
IHC_SCORING = {
    key: value
    for key, value in IHC.items()
    if key not in IHC_STAGE_KEYS and not key.startswith("figure_")
} | {"estimate_stains": IHC["stain_estimation"] == "macenko"}


# The files each tile gets, whatever its batch (downstream rules name these).
IHC_TILE_FILES = {
    "cells": "results/imaging/ihc_tiles/{image_id}_cells.csv",
    "summary": "results/imaging/ihc_tiles/{image_id}_summary.json",
    "nuclei": "results/imaging/labels/{image_id}_nuclei.tif",
    "cell_labels": "results/imaging/labels/{image_id}_cells.tif",
    "overlay": "results/imaging/ihc_overlays/{image_id}.png",
}


def _whole_slide(path):
    """sepher.ihc.wsi.is_whole_slide, without importing the IHC library (about
    1 s) for a JPEG or PNG photomicrograph, which is never a slide."""
    if str(path).lower().endswith((".jpg", ".jpeg", ".png")):
        return False
    from sepher.ihc.wsi import is_whole_slide

    return is_whole_slide(path)


def ihc_batches(image_ids, whole_slides, size):
    """Batch id -> image ids: the tiles and photos `size` at a time in image_id
    order, then each whole slide alone (a slide is a long job of its own; a
    slide added or removed does not move the tiles' batches). Ids ihc0001, ..."""
    slides = set(whole_slides)
    tiles = [i for i in sorted(image_ids) if i not in slides]
    groups = [tiles[k : k + size] for k in range(0, len(tiles), size)]
    groups += [[i] for i in sorted(slides)]
    return {f"ihc{n:04d}": ids for n, ids in enumerate(groups, start=1)}


IHC_SLIDES = sorted(i for i in IHC_IDS if _whole_slide(IHC_SHEET.at[i, "file"]))
IHC_BATCHES = ihc_batches(IHC_IDS, IHC_SLIDES, int(IHC["tiles_per_job"]))
