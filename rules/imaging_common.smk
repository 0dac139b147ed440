# Input functions of the immunofluorescence stage (included from rules/imaging.smk):
# the IF rows of the images sheet, read and checked once at parse time.


_IF_SHEET = []


def if_sheet():
    """IF rows of the images sheet, read once per process (indexed by image_id);
    None when no images are configured or the sheet has no IF rows.

    Every row is checked by read_sample_sheet; the images themselves (readable,
    2-D, channel indices in range, not black) are checked once at start-up by
    _validate_images_once (rules/common.smk).
    """
    if not configured("images"):
        return None
    if not _IF_SHEET:
        sheet = images_sheet()
        sheet = sheet[sheet["assay"] == "IF"]
        # an IHC-only sheet has no IF rows (and need not have the IF columns)
        _IF_SHEET.append(
            sheet.set_index("image_id", drop=False) if len(sheet) else None
        )
    return _IF_SHEET[0]


def if_image_ids():
    sheet = if_sheet()
    return [] if sheet is None else sorted(sheet.index)


_IF_BATCHES = []


def if_batches():
    """Batch id -> image ids, fields_per_job at a time.

    Images are taken in (cell_line, condition, replicate, image_id) order,
    the order of every IF table, so the summary step can stream the batches
    one after another. Batch ids are if0001, if0002, ...
    """
    if not _IF_BATCHES:
        sheet = if_sheet()
        batches = {}
        if sheet is not None:
            keys = ["cell_line", "condition", "replicate", "image_id"]
            ordered = sorted(sheet[keys].astype(str).itertuples(index=False, name=None))
            ids = [row[-1] for row in ordered]
            size = int(IMAGING["fields_per_job"])
            for start in range(0, len(ids), size):
                batches[f"if{start // size + 1:04d}"] = ids[start : start + size]
        _IF_BATCHES.append(batches)
    return _IF_BATCHES[0]


#: Sample-sheet columns a measuring job needs, per field.
_IF_ROW_COLUMNS = [
    "image_id",
    "file",
    "pixel_size_um",
    "her2_channel",
    "nuclear_channel",
    "membrane_channel",
    "cell_line",
    "condition",
    "replicate",
]
_IF_ROWS = []


def if_rows():
    """Image id -> its sample-sheet row as plain Python values (made once per process):
    channel names resolved to indices and a blank pixel size taken from the file's
    metadata (sepher.io.images.resolve_row; files whose row needs neither are not
    opened)."""
    if not _IF_ROWS:
        from sepher.io.images import resolve_row

        sheet = if_sheet()
        rows = {}
        if sheet is not None:
            for row in sheet[_IF_ROW_COLUMNS].to_dict("records"):
                row = {
                    k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()
                }
                # (the start-up check has already named any bad row)
                row = resolve_row(row, config["images"])
                rows[row["image_id"]] = row
        _IF_ROWS.append(rows)
    return _IF_ROWS[0]


def if_batch_rows(wildcards):
    """Sample-sheet rows of one batch (what the measuring job needs)."""
    rows = if_rows()
    return [dict(rows[image_id]) for image_id in if_batches()[wildcards.batch]]


IF_BATCH_FILES = {
    "cells": "results/imaging/if_batches/{batch}_cells.csv",
    "qc": "results/imaging/if_batches/{batch}_qc.json",
    "nuclei": "results/imaging/labels/if/{batch}_nuclei.tif",
    "labels": "results/imaging/labels/if/{batch}_cells.tif",
}


def if_per_batch(kind):
    """One file of `kind` per batch, in batch order."""
    return expand(IF_BATCH_FILES[kind], batch=list(if_batches()))


def if_measured(kind):
    """Input function: every batch's `kind` files; a clear message, not a
    traceback, when an IF target is asked for but the sheet has no IF rows."""

    def files(wildcards):
        if not if_batches():
            raise InputError(
                config.get("images") or _config_name,
                "at least one IF row (assay IF) to make the IF tables and figures "
                "(fig2, fig3, figS1); this sheet has none",
                column="assay",
            )
        return if_per_batch(kind)

    return files


def if_image_files(wildcards=None):
    rows = if_rows()
    return [rows[i]["file"] for i in if_image_ids()]


def if_fields():
    """Image id -> file, channel roles and label pages, for the figures' image panels."""
    rows = if_rows()
    fields = {}
    for batch, ids in if_batches().items():
        for page, image_id in enumerate(ids):
            row = rows[image_id]
            fields[image_id] = {
                "file": row["file"],
                "pixel_size_um": float(row["pixel_size_um"]),
                "her2_channel": int(row["her2_channel"]),
                "nuclear_channel": int(row["nuclear_channel"]),
                "nuclei": IF_BATCH_FILES["nuclei"].format(batch=batch),
                "cells": IF_BATCH_FILES["labels"].format(batch=batch),
                "page": page,
            }
    return fields


def if_groups():
    """(cell_line, condition) pairs in sample-sheet order (the figures' order)."""
    sheet = if_sheet()
    if sheet is None:
        return []
    pairs = zip(sheet["cell_line"], sheet["condition"])
    return [list(pair) for pair in dict.fromkeys(pairs)]


def doseresponse_fits(wildcards):
    """fig3's IC50 panel needs the dose-response fits only when plates are configured."""
    return [rules.doseresponse_join.output.fits] if configured("plates") else []


def doseresponse_by_replicate(wildcards):
    """fig3's IC50 panel: per-replicate fits (one point per biological replicate)."""
    return [rules.doseresponse_join.output.by_replicate] if configured("plates") else []


def doseresponse_comparisons(wildcards):
    """fig3's IC50 panel: replicate-level ED50 ratios with adjusted p."""
    return [rules.doseresponse_join.output.comparisons] if configured("plates") else []


def orthogonal_field():
    """The IF z-stack field drawn as fig 2's orthogonal (XZ) view, or None.

    `imaging.orthogonal_image` names it (an IF image id of the sheet whose file
    is a z-stack); null: no orthogonal panel.
    """
    image_id = IMAGING.get("orthogonal_image")
    rows = if_rows() if image_id else {}
    if not rows:  # no such key, or no IF rows: the IF figures are not made
        return None
    if image_id not in rows:
        raise InputError(
            config.get("images") or _config_name,
            "imaging.orthogonal_image to be the image_id of an IF row of the sheet",
            column="imaging.orthogonal_image",
            value=image_id,
        )
    row = rows[image_id]
    return {
        "file": row["file"],
        "pixel_size_um": float(row["pixel_size_um"]),
        "her2_channel": int(row["her2_channel"]),
        "nuclear_channel": int(row["nuclear_channel"]),
        "cell_line": str(row["cell_line"]),
        "condition": str(row["condition"]),
        "image_id": image_id,
    }
