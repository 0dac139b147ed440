"""The images sample sheet: one TSV row per image file (docs/data-dictionary.md).

:func:`read_sample_sheet` validates every row before any image is opened and
returns the rows with an absolute ``file`` column. Paths are relative to the
sheet's folder and may not point outside it.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import pandas as pd

from sepher.errors import InputError
from sepher.io.identifiers import check_pseudonymous_ids

COMMON_COLUMNS = ("image_id", "path", "assay", "pixel_size_um")
IF_COLUMNS = ("cell_line", "condition", "replicate", "her2_channel", "nuclear_channel")
IHC_COLUMNS = ("patient_id", "timepoint")
#: Optional IHC column: the pathologist's ASCO/CAP score of the image (or the
#: known score of a control tile), 0 / 1+ / 2+ / 3+; blank = not scored.
REFERENCE_COLUMN = "reference_score"
REFERENCE_SCORES = ("0", "1+", "2+", "3+")
#: Optional IHC column: a QuPath GeoJSON export of the regions to score
#: (tumour outlines, level-0 pixel coordinates), relative to the sheet.
ROI_COLUMN = "roi_geojson"
#: Column order of the sheet: IF rows use the first ten, IHC rows the common
#: four and the last three (blank = not applicable).
IF_SHEET_COLUMNS = COMMON_COLUMNS + IF_COLUMNS + ("membrane_channel",)
SHEET_COLUMNS = IF_SHEET_COLUMNS + IHC_COLUMNS + (REFERENCE_COLUMN, ROI_COLUMN)
ASSAYS = ("IF", "IHC")
#: Files whose metadata carry the pixel size, so ``pixel_size_um`` may be blank:
#: the vendor microscopy formats (:data:`sepher.imaging.bioio_reader.VENDOR_SUFFIXES`)
#: and whole slides (SVS, NDPI). The start-up check (:mod:`sepher.io.images`)
#: stops the run when such a file records none.
METADATA_PIXEL_SIZE_SUFFIXES = (
    ".ome.tif",
    ".ome.tiff",
    ".nd2",
    ".czi",
    ".lif",
    ".zarr",
    ".svs",
    ".ndpi",
)
#: IF columns naming a channel: a 0-based index or the file's channel name.
CHANNEL_COLUMNS = ("her2_channel", "nuclear_channel", "membrane_channel")
TIMEPOINTS = ("pre", "post")


def _close_match(table, column):
    """A column of `table` that may be `column` misspelt: never another sheet column
    (her2_channel is not a misspelt nuclear_channel)."""
    unknown = [c for c in table.columns if c not in SHEET_COLUMNS]
    return difflib.get_close_matches(column, unknown, n=1)


def _require(table, file, columns, rows_label):
    for column in columns:
        if column not in table.columns:
            close = _close_match(table, column)
            raise InputError(
                file,
                f"a column named '{column}' ({rows_label})",
                column=column,
                value=None,
                hint=f"Found '{close[0]}': rename it." if close else None,
            )


def _require_for(table, file, assay, columns):
    """The columns rows of `assay` need; the message names the first such row.

    A sheet of one assay needs only that assay's columns: an IHC-only sheet
    has no IF column, and an IF-only sheet no IHC column.
    """
    rows = table.index[table["assay"] == assay]
    if not len(rows):
        return
    missing = [column for column in columns if column not in table.columns]
    if not missing:
        return
    column = missing[0]
    index = int(rows[0])
    close = _close_match(table, column)
    other = "IHC" if assay == "IF" else "IF"
    hint = (
        f"Found '{close[0]}': rename it."
        if close
        else f"Add the column, or remove the {assay} rows (a sheet of {other} rows only "
        f"needs no {assay} column)."
    )
    raise InputError(
        file,
        f"a column named '{column}' (it is an {assay} row; {assay} rows need "
        + ", ".join(columns)
        + ")",
        row=f"{index + 1} (image_id {table.at[index, 'image_id']})",
        column=column,
        hint=hint,
    )


def _fail(file, row_index, column, value, expected, image_id=None):
    row = row_index + 1
    label = f"{row} (image_id {image_id})" if image_id else row
    raise InputError(file, expected, row=label, column=column, value=value)


def _integer(table, file, index, column, minimum=0, blank_ok=False):
    value = table.at[index, column]
    if value == "" and blank_ok:
        return None
    try:
        number = int(value)
        if str(number) != value.strip() or number < minimum:
            raise ValueError
    except ValueError:
        expected = f"an integer >= {minimum}"
        if column in CHANNEL_COLUMNS:
            expected += " (a 0-based channel index) or a channel name"
        _fail(file, index, column, value, expected, table.at[index, "image_id"])
    return number


def _channel(table, file, index, column):
    """A channel column's value: int (an index >= 0), str (a channel name), or None (blank).

    Anything that reads as a number must be an integer >= 0 ("1.5", "-1" are
    refused); other text is a channel name, resolved against the file's
    metadata where the image is opened
    (:func:`sepher.imaging.bioio_reader.resolve_channel`).
    """
    value = table.at[index, column]
    if value == "":
        return None
    try:
        float(value)
    except ValueError:
        return value  # a channel name
    return _integer(table, file, index, column)


def read_sample_sheet(path, assay=None) -> pd.DataFrame:
    """Read and validate the images sample sheet.

    Parameters
    ----------
    path : path
        TSV sample sheet.
    assay : {"IF", "IHC"}, optional
        Keep only rows of this assay (validated all the same).

    Returns
    -------
    DataFrame
        The sheet's columns (strings, numbers parsed: ``pixel_size_um``
        float, NaN when blank for a file whose metadata carry it
        (:data:`METADATA_PIXEL_SIZE_SUFFIXES`); channels int (``Int64``
        column), or, when any IF row names a channel, an ``object`` column of
        int and str (the name, resolved when the image is opened);
        ``membrane_channel`` -1 when absent; ``replicate`` str) plus
        ``file``: the absolute image path.

    Raises
    ------
    InputError
        Missing file or column, empty sheet, duplicate image_id, unknown
        assay or timepoint, bad number, path outside the sheet's folder or
        missing image file, identifier-like patient_id.
    """
    file = str(path)
    sheet_path = Path(path)
    if not sheet_path.is_file():
        raise InputError(file, "an existing TSV sample sheet", value=file)
    try:
        table = pd.read_csv(sheet_path, sep="\t", dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise InputError(file, f"a tab-separated text file ({error})") from error
    except pd.errors.EmptyDataError as error:
        raise InputError(file, "a header row and at least one image row") from error
    table.columns = [c.strip() for c in table.columns]
    table = table.map(str.strip)
    if len(table) == 0:
        raise InputError(file, "at least one image row below the header (the sheet is empty)")
    _require(table, file, COMMON_COLUMNS, "every row")
    for index, value in table["assay"].items():
        if value.upper() not in ASSAYS:
            _fail(file, index, "assay", value, "IF or IHC", table.at[index, "image_id"])
        table.at[index, "assay"] = value.upper()
    _require_for(table, file, "IF", IF_COLUMNS)
    _require_for(table, file, "IHC", IHC_COLUMNS)
    duplicated = table["image_id"].duplicated()
    if duplicated.any():
        index = int(duplicated.to_numpy().nonzero()[0][0])
        value = table.at[index, "image_id"]
        first = int((table["image_id"] == value).to_numpy().nonzero()[0][0]) + 1
        raise InputError(
            file,
            "a unique image_id",
            row=index + 1,
            column="image_id",
            value=value,
            hint=f"It is also in row {first}.",
        )
    root = sheet_path.resolve().parent
    files, pixel_sizes = [], []
    for index, row in table.iterrows():
        image_id = row["image_id"]
        if not image_id:
            _fail(file, index, "image_id", "", "a non-empty image_id")
        from_file = row["path"].lower().rstrip("/").endswith(METADATA_PIXEL_SIZE_SUFFIXES)
        try:
            if row["pixel_size_um"] == "" and from_file:
                size = float("nan")  # the file's metadata give it (checked at start-up)
            else:
                size = float(row["pixel_size_um"])
                if not size > 0:
                    raise ValueError
        except ValueError:
            _fail(
                file,
                index,
                "pixel_size_um",
                row["pixel_size_um"],
                "a pixel size > 0 in µm"
                + (
                    " (or blank: the file's metadata give it)"
                    if from_file
                    else " (blank only for OME-TIFF, ND2, CZI, LIF, OME-Zarr, SVS and NDPI "
                    "files, whose metadata give it)"
                ),
                image_id,
            )
        pixel_sizes.append(size)
        image = (root / row["path"]).resolve()
        if Path(row["path"]).is_absolute() or not image.is_relative_to(root):
            _fail(
                file,
                index,
                "path",
                row["path"],
                f"a path inside the sheet's folder {root} (relative to it)",
                image_id,
            )
        is_zarr = row["path"].lower().rstrip("/").endswith(".zarr")
        if not (image.is_dir() if is_zarr else image.is_file()):
            expected = "an existing OME-Zarr folder" if is_zarr else "an existing image file"
            _fail(file, index, "path", row["path"], expected, image_id)
        files.append(str(image))
    table["pixel_size_um"] = pixel_sizes
    table["file"] = files
    if_rows = table.index[table["assay"] == "IF"]
    if len(if_rows):
        if "membrane_channel" not in table.columns:
            table["membrane_channel"] = ""
        for column in CHANNEL_COLUMNS:
            values = {}
            for index in if_rows:
                value = _channel(table, file, index, column)
                if value is None and column != "membrane_channel":
                    _fail(
                        file,
                        index,
                        column,
                        "",
                        "an integer >= 0 (a 0-based channel index) or a channel name",
                        table.at[index, "image_id"],
                    )
                values[index] = -1 if value is None else value
            named = any(isinstance(v, str) for v in values.values())
            table[column] = pd.Series(values, dtype=object if named else "Int64")
        for column in ("cell_line", "condition", "replicate"):
            for index in if_rows:
                if not table.at[index, column]:
                    _fail(
                        file,
                        index,
                        column,
                        "",
                        f"a non-empty {column} for IF rows",
                        table.at[index, "image_id"],
                    )
    ihc_rows = table.index[table["assay"] == "IHC"]
    if len(ihc_rows):
        for index in ihc_rows:
            if not table.at[index, "patient_id"]:
                _fail(
                    file,
                    index,
                    "patient_id",
                    "",
                    "a non-empty patient_id for IHC rows",
                    table.at[index, "image_id"],
                )
            value = table.at[index, "timepoint"].lower()
            if value not in TIMEPOINTS:
                _fail(
                    file,
                    index,
                    "timepoint",
                    table.at[index, "timepoint"],
                    "pre or post",
                    table.at[index, "image_id"],
                )
            table.at[index, "timepoint"] = value
        if REFERENCE_COLUMN not in table.columns:
            table[REFERENCE_COLUMN] = ""
        for index in ihc_rows:
            value = table.at[index, REFERENCE_COLUMN]
            score = value.replace(" ", "")
            score = score + "+" if score in ("1", "2", "3") else score
            if value and score not in REFERENCE_SCORES:
                _fail(
                    file,
                    index,
                    REFERENCE_COLUMN,
                    value,
                    "an ASCO/CAP score 0, 1+, 2+ or 3+ (or blank: not scored)",
                    table.at[index, "image_id"],
                )
            table.at[index, REFERENCE_COLUMN] = score
        if ROI_COLUMN not in table.columns:
            table[ROI_COLUMN] = ""
        for index in ihc_rows:
            value = table.at[index, ROI_COLUMN]
            if not value:
                continue
            roi = (root / value).resolve()
            if Path(value).is_absolute() or not roi.is_relative_to(root) or not roi.is_file():
                _fail(
                    file,
                    index,
                    ROI_COLUMN,
                    value,
                    f"an existing GeoJSON file inside the sheet's folder {root} (relative "
                    "to it), or blank",
                    table.at[index, "image_id"],
                )
            table.at[index, ROI_COLUMN] = str(roi)
        check_pseudonymous_ids(
            table.loc[ihc_rows, "patient_id"],
            file,
            column="patient_id",
            rows=[i + 1 for i in ihc_rows],
        )
    if assay is not None:
        table = table[table["assay"] == assay].reset_index(drop=True)
    return table
