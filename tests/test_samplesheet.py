"""Images sample sheet reader: each bad sheet names file, row, column and value."""

import pytest

from sepher.errors import InputError
from sepher.io.samplesheet import (
    COMMON_COLUMNS,
    IF_COLUMNS,
    IHC_COLUMNS,
    SHEET_COLUMNS,
    read_sample_sheet,
)

HEADER = list(SHEET_COLUMNS)
IF_ROW = ["IF_a", "a.tif", "IF", "0.65", "SKBR3", "T-R", "1", "0", "1", "", "", "", "", ""]
IHC_ROW = ["IHC_b", "b.tif", "IHC", "0.5", "", "", "", "", "", "", "P01", "pre", "", ""]


def write_sheet(tmp_path, rows, header=HEADER):
    for row in rows:
        path = dict(zip(header, row, strict=False)).get("path")
        if path and not path.startswith(".."):
            (tmp_path / path).write_bytes(b"x")
    sheet = tmp_path / "images.tsv"
    sheet.write_text("\n".join("\t".join(r) for r in [header, *rows]) + "\n")
    return sheet


def error_of(sheet):
    with pytest.raises(InputError) as err:
        read_sample_sheet(sheet)
    return err.value


def test_valid_sheet_parses_numbers_and_paths(tmp_path):
    table = read_sample_sheet(write_sheet(tmp_path, [IF_ROW, IHC_ROW]), assay="IF")
    assert list(table["image_id"]) == ["IF_a"]
    assert table["pixel_size_um"].iloc[0] == 0.65
    assert table["her2_channel"].iloc[0] == 0 and table["membrane_channel"].iloc[0] == -1
    assert table["file"].iloc[0] == str((tmp_path / "a.tif").resolve())


def test_missing_column(tmp_path):
    header = [c for c in HEADER if c != "nuclear_channel"]
    row = [v for c, v in zip(HEADER, IF_ROW, strict=True) if c != "nuclear_channel"]
    error = error_of(write_sheet(tmp_path, [row], header))
    assert "images.tsv" in str(error) and error.column == "nuclear_channel"


def test_empty_sheet(tmp_path):
    sheet = tmp_path / "images.tsv"
    sheet.write_text("\t".join(HEADER) + "\n")
    error = error_of(sheet)
    assert "images.tsv" in str(error) and "empty" in str(error)


def test_duplicate_image_id(tmp_path):
    second = ["IF_a", "c.tif"] + IF_ROW[2:]
    error = error_of(write_sheet(tmp_path, [IF_ROW, second]))
    assert (error.row, error.column, error.value) == (2, "image_id", "IF_a")


@pytest.mark.parametrize(
    "column, value, expected_text",
    [
        ("assay", "FISH", "IF or IHC"),
        ("pixel_size_um", "-0.3", "pixel size > 0"),
        ("pixel_size_um", "abc", "pixel size > 0"),
        ("her2_channel", "1.5", "integer"),
        ("nuclear_channel", "-1", "integer"),
        ("her2_channel", "", "channel name"),
        ("pixel_size_um", "", "blank only for OME-TIFF"),
    ],
)
def test_bad_value_names_file_row_column_value(tmp_path, column, value, expected_text):
    row = list(IF_ROW)
    row[HEADER.index(column)] = value
    error = error_of(write_sheet(tmp_path, [IHC_ROW, row]))
    text = str(error)
    assert "images.tsv" in text and f"column '{column}'" in text and f"value '{value}'" in text
    assert str(error.row).startswith("2") and expected_text in text


def test_path_outside_sheet_folder(tmp_path):
    row = list(IF_ROW)
    row[1] = "../x.tif"
    error = error_of(write_sheet(tmp_path, [row]))
    assert (error.column, error.value) == ("path", "../x.tif")
    assert str(error.row).startswith("1") and "inside the sheet's folder" in str(error)


def test_missing_image_file(tmp_path):
    sheet = write_sheet(tmp_path, [IF_ROW])
    (tmp_path / "a.tif").unlink()
    error = error_of(sheet)
    assert (error.column, error.value) == ("path", "a.tif") and "existing image" in str(error)
    assert str(error.row).startswith("1 (image_id IF_a)")


def test_bad_timepoint(tmp_path):
    row = list(IHC_ROW)
    row[HEADER.index("timepoint")] = "during"
    error = error_of(write_sheet(tmp_path, [IF_ROW, row]))
    assert (error.column, error.value) == ("timepoint", "during")
    assert str(error.row).startswith("2") and "pre or post" in str(error)


# ---------------------------------------------------------------- one assay per sheet

IF_HEADER = [c for c in HEADER if c not in IHC_COLUMNS]
IHC_HEADER = [c for c in HEADER if c in COMMON_COLUMNS + IHC_COLUMNS]


def only(header, row):
    """`row` (of the full header) reduced to the columns of `header`."""
    values = dict(zip(HEADER, row, strict=True))
    return [values[column] for column in header]


def test_ihc_only_sheet_needs_no_if_column(tmp_path):
    sheet = write_sheet(tmp_path, [only(IHC_HEADER, IHC_ROW)], IHC_HEADER)
    table = read_sample_sheet(sheet)
    assert list(table["assay"]) == ["IHC"] and list(table["patient_id"]) == ["P01"]
    assert not set(IF_COLUMNS) & set(table.columns)


def test_if_only_sheet_needs_no_ihc_column(tmp_path):
    header = [c for c in IF_HEADER if c != "membrane_channel"]  # optional too
    sheet = write_sheet(tmp_path, [only(header, IF_ROW)], header)
    table = read_sample_sheet(sheet)
    assert list(table["assay"]) == ["IF"] and table["membrane_channel"].iloc[0] == -1
    assert not set(IHC_COLUMNS) & set(table.columns)


def test_if_row_in_a_sheet_without_if_columns_names_the_row(tmp_path):
    if_row = only(IHC_HEADER, IF_ROW)
    sheet = write_sheet(tmp_path, [only(IHC_HEADER, IHC_ROW), if_row], IHC_HEADER)
    error = error_of(sheet)
    assert (error.row, error.column) == ("2 (image_id IF_a)", "cell_line")
    assert "it is an IF row; IF rows need cell_line, condition" in str(error)
    assert "remove the IF rows" in str(error)


def test_ihc_row_in_a_sheet_without_ihc_columns_names_the_row(tmp_path):
    ihc_row = only(IF_HEADER, IHC_ROW)
    sheet = write_sheet(tmp_path, [only(IF_HEADER, IF_ROW), ihc_row], IF_HEADER)
    error = error_of(sheet)
    assert (error.row, error.column) == ("2 (image_id IHC_b)", "patient_id")
    assert "IHC rows need patient_id, timepoint" in str(error)


@pytest.mark.parametrize("column", ["patient_id", "timepoint"])
def test_blank_ihc_value(tmp_path, column):
    row = only(IHC_HEADER, ["IHC_c", "c.tif"] + IHC_ROW[2:])
    row[IHC_HEADER.index(column)] = ""
    error = error_of(write_sheet(tmp_path, [only(IHC_HEADER, IHC_ROW), row], IHC_HEADER))
    assert (error.column, error.value) == (column, "")
    assert str(error.row) == "2 (image_id IHC_c)"


@pytest.mark.parametrize("value, expected", [("", ""), ("2+", "2+"), ("3", "3+"), ("0", "0")])
def test_reference_score_is_optional_and_normalised(tmp_path, value, expected):
    row = list(IHC_ROW)
    row[HEADER.index("reference_score")] = value
    table = read_sample_sheet(write_sheet(tmp_path, [row]), assay="IHC")
    assert table["reference_score"].iloc[0] == expected


def test_bad_reference_score_names_row_column_value(tmp_path):
    row = list(IHC_ROW)
    row[HEADER.index("reference_score")] = "4+"
    error = error_of(write_sheet(tmp_path, [row]))
    text = str(error)
    assert (error.column, error.value) == ("reference_score", "4+")
    assert "0, 1+, 2+ or 3+" in text and str(error.row).startswith("1")


def test_roi_geojson_must_exist_inside_the_sheet_folder(tmp_path):
    row = list(IHC_ROW)
    row[HEADER.index("roi_geojson")] = "tumour.geojson"
    error = error_of(write_sheet(tmp_path, [row]))
    assert (error.column, error.value) == ("roi_geojson", "tumour.geojson")
    (tmp_path / "tumour.geojson").write_text('{"type": "FeatureCollection", "features": []}')
    table = read_sample_sheet(write_sheet(tmp_path, [row]), assay="IHC")
    assert table["roi_geojson"].iloc[0] == str((tmp_path / "tumour.geojson").resolve())


def test_channel_names_kept_and_blank_pixel_size_for_metadata_formats(tmp_path):
    """Issue 17: channel columns take a metadata name (kept as text, resolved when the
    image is opened); pixel_size_um may be blank for a file whose metadata carry it."""
    row = list(IF_ROW)
    row[HEADER.index("path")] = "a.nd2"
    row[HEADER.index("pixel_size_um")] = ""
    row[HEADER.index("her2_channel")] = "Alexa Fluor 488"
    second = ["IF_c", "c.tif"] + IF_ROW[2:]
    table = read_sample_sheet(write_sheet(tmp_path, [row, second]))
    assert table["her2_channel"].tolist() == ["Alexa Fluor 488", 0]
    assert table["nuclear_channel"].tolist() == [1, 1]
    assert str(table["pixel_size_um"].iloc[0]) == "nan" and table["pixel_size_um"].iloc[1] == 0.65
    # an all-index sheet keeps integer columns
    table = read_sample_sheet(write_sheet(tmp_path, [second]))
    assert str(table["her2_channel"].dtype) == "Int64"
