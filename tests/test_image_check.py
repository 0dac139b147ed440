"""The start-up image check (sepher.io.images): one open per image, same error in parallel.

The bad-input catalogue (test_bad_inputs.py) checks each message through the
workflow on a few rows; here the check itself runs on a 48-row sheet with
bad images far down it, read by one process and by two forked workers.
"""

from __future__ import annotations

import pickle
import shutil

import numpy as np
import pandas as pd
import pytest
import tifffile

from sepher.errors import InputError
from sepher.imaging.io import read_image
from sepher.io.images import check_sheet_images
from sepher.io.samplesheet import read_sample_sheet

from .workflow import DEMO


def _sheet(directory, n=48):
    """`n` IF rows: copies of the demo IF fields, in a sheet of their own."""
    demo = pd.read_csv(DEMO / "images.tsv", sep="\t", dtype=str, keep_default_na=False)
    demo = demo[demo["assay"] == "IF"].head(n).reset_index(drop=True)
    (directory / "fields").mkdir()
    for i, row in demo.iterrows():
        target = directory / "fields" / f"f{i:03d}.ome.tif"
        shutil.copyfile(DEMO / row["path"], target)
        demo.loc[i, "path"] = f"fields/{target.name}"
    path = directory / "images.tsv"
    demo.to_csv(path, sep="\t", index=False)
    return path


def _check(path, workers):
    with pytest.raises(InputError) as caught:
        check_sheet_images(read_sample_sheet(path), path, workers=workers)
    return str(caught.value)


def test_good_sheet_passes_in_one_and_two_processes(tmp_path):
    path = _sheet(tmp_path)
    sheet = read_sample_sheet(path)
    check_sheet_images(sheet, path, workers=1)
    check_sheet_images(sheet, path, workers=2)


def test_first_bad_row_wins_whichever_process_reads_it(tmp_path):
    path = _sheet(tmp_path)
    sheet = read_sample_sheet(path)
    # row 20 (block 2 of 3 with 16-row blocks): truncated; row 41 (block 3): all black
    truncated = sheet.at[19, "file"]
    data = open(truncated, "rb").read()
    with open(truncated, "wb") as stream:
        stream.write(data[: len(data) // 2])
    tifffile.imwrite(
        sheet.at[40, "file"], np.zeros((3, 32, 32), np.uint16), metadata={"axes": "CYX"}
    )
    serial, parallel = _check(path, 1), _check(path, 2)
    assert serial == parallel
    assert f"row 20 (image_id {sheet.at[19, 'image_id']})" in serial
    assert "truncated" in serial
    # with row 20 repaired, row 41 is the first bad one, in both modes
    with open(truncated, "wb") as stream:
        stream.write(data)
    serial, parallel = _check(path, 1), _check(path, 2)
    assert serial == parallel
    assert f"row 41 (image_id {sheet.at[40, 'image_id']})" in serial
    assert "all pixels are 0" in serial


def test_input_error_survives_pickling():
    error = InputError(
        "a.tsv", "an image", row="3 (image_id x)", column="path", value="v", hint="h"
    )
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == str(error)
    assert (copy.file, copy.row, copy.column, copy.value, copy.hint) == (
        error.file,
        error.row,
        error.column,
        error.value,
        error.hint,
    )


def test_read_image_from_an_open_tiff_is_the_same():
    sheet = read_sample_sheet(DEMO / "images.tsv", assay="IF")
    file, size = sheet.at[0, "file"], float(sheet.at[0, "pixel_size_um"])
    alone, px_alone = read_image(file, pixel_size_um=size)
    with tifffile.TiffFile(file) as tif:
        opened, px_opened = read_image(file, pixel_size_um=size, tif=tif)
    assert px_alone == px_opened
    assert alone.dtype == opened.dtype and np.array_equal(alone, opened)


def test_ome_tiff_fields_by_channel_name_and_blank_pixel_size(tmp_path):
    """Issue 17: the demo's OME-TIFF fields named by their OME channel names
    (HER2, DAPI, membrane) with pixel_size_um blank pass the check, resolve to
    the indices and pixel size of the numeric sheet, and a wrong name or a
    pixel size > 1 % off stops it at that row."""
    from sepher.io.images import resolve_row

    path = _sheet(tmp_path, n=3)
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    numeric = read_sample_sheet(path).to_dict("records")
    table["her2_channel"], table["nuclear_channel"] = "HER2", "dapi"
    table["membrane_channel"], table["pixel_size_um"] = "Membrane", ""
    table.to_csv(path, sep="\t", index=False)
    sheet = read_sample_sheet(path)
    check_sheet_images(sheet, path)
    for index, row in enumerate(sheet.to_dict("records")):
        resolved = resolve_row(row, path, index)
        for column in ("her2_channel", "nuclear_channel", "membrane_channel", "pixel_size_um"):
            assert resolved[column] == pytest.approx(numeric[index][column])
    table.loc[2, "her2_channel"] = "Alexa Fluor 488"
    table.to_csv(path, sep="\t", index=False)
    message = _check(path, 1)
    assert "row 3 (image_id" in message and "column 'her2_channel'" in message
    assert '"HER2", "DAPI", "membrane"' in message
    table.loc[2, "her2_channel"] = "HER2"
    table.loc[1, "pixel_size_um"] = "0.7"
    table.to_csv(path, sep="\t", index=False)
    message = _check(path, 1)
    assert "row 2 (image_id" in message and "column 'pixel_size_um'" in message
    assert "the file's metadata says 0.65 µm/px" in message
