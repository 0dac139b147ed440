# Input functions of the immunofluorescence stage (included from rules/imaging.smk):
# the IF rows of the images sheet, read and checked once at parse time.


_IF_SHEET = []


def if_sheet():
    """IF rows of the images sheet, read and validated once at parse time.

    The index is the sheet row (0-based), so messages name the user's row.
    Every row is checked (read_sample_sheet), and every IF image's channel
    indices against its channel count (file header only), before any job.
    """
    if not configured("images"):
        return None
    if not _IF_SHEET:
        from sepher.io.samplesheet import read_sample_sheet

        sheet = read_sample_sheet(config["images"])
        sheet = sheet[sheet["assay"] == "IF"]
        _check_channels(sheet, config["images"])
        _IF_SHEET.append(sheet.set_index("image_id", drop=False))
    return _IF_SHEET[0]


def _channel_count(file):
    """Number of channels of an image, from the TIFF header when possible."""
    import tifffile

    from sepher.imaging.io import read_image

    if file.lower().endswith((".tif", ".tiff", ".btf")):
        try:
            with tifffile.TiffFile(file) as tif:
                series = tif.series[0]
                axes, shape = series.axes.upper(), series.shape
        except Exception:
            axes, shape = "", ()
        sizes = [n for axis, n in zip(axes, shape) if axis in "CSIQ"]
        if axes and len(sizes) <= 1:
            return sizes[0] if sizes else 1
    return read_image(file, pixel_size_um=1.0)[0].shape[0]


def _check_channels(sheet, sheet_file):
    """Every channel index of every IF row exists in its image (header read only)."""
    for index, row in sheet.iterrows():
        n = _channel_count(row["file"])
        for column in ("her2_channel", "nuclear_channel", "membrane_channel"):
            value = int(row[column])
            if column == "membrane_channel" and value == -1:
                continue
            if not 0 <= value < n:
                raise InputError(
                    sheet_file,
                    f"a 0-based channel index 0..{n - 1} (image {row['path']} has {n} channel(s))",
                    row=f"{index + 1} (image_id {row['image_id']})",
                    column=column,
                    value=value,
                )


def if_image_ids():
    sheet = if_sheet()
    return [] if sheet is None else sorted(sheet.index)


def if_row(wildcards):
    return if_sheet().loc[wildcards.image_id]


def if_per_image(kind):
    patterns = {
        "cells": "results/imaging/per_image/{image_id}_cells.csv",
        "qc": "results/imaging/per_image/{image_id}_qc.json",
        "nuclei": "results/imaging/labels/{image_id}_nuclei.tif",
        "labels": "results/imaging/labels/{image_id}_cells.tif",
    }
    return expand(patterns[kind], image_id=if_image_ids())


def if_image_files(wildcards=None):
    sheet = if_sheet()
    return [] if sheet is None else [sheet.loc[i, "file"] for i in if_image_ids()]


def if_fields():
    """Image id -> file and channel roles, for the figures' image panels."""
    sheet = if_sheet()
    if sheet is None:
        return {}
    return {
        image_id: {
            "file": sheet.loc[image_id, "file"],
            "pixel_size_um": float(sheet.loc[image_id, "pixel_size_um"]),
            "her2_channel": int(sheet.loc[image_id, "her2_channel"]),
            "nuclear_channel": int(sheet.loc[image_id, "nuclear_channel"]),
        }
        for image_id in if_image_ids()
    }


def if_groups():
    """(cell_line, condition) pairs in sample-sheet order (the figures' order)."""
    sheet = if_sheet()
    if sheet is None:
        return []
    pairs = zip(sheet["cell_line"], sheet["condition"])
    return [list(pair) for pair in dict.fromkeys(pairs)]


def doseresponse_fits(wildcards):
    """fig3's IC50 panel needs the dose-response fits only when plates are configured."""
    return ["results/doseresponse/fits.csv"] if configured("plates") else []
