"""Vendor microscopy files through bioio (issue 17, item 2).

Real files (tests/data/microscopy, README there): a Nikon ND2 (cluster.nd2,
T3 Z10 C2) and an OME-TIFF (4D-series.ome.tiff, T7 Z5). CZI and OME-Zarr
files are written in the tests (pylibCZIrw; zarr, by the OME-NGFF layout)
and read back. No LIF file with a usable licence was found (bioio-lif's test
files are GPL-3 Git LFS objects of 6-170 MB): LIF reading is not tested here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile

from sepher.errors import InputError
from sepher.imaging.bioio_reader import (
    is_microscopy_file,
    open_microscopy,
    resolve_channel,
)
from sepher.imaging.io import image_channel_names, read_image, read_stack, select_channel
from sepher.io.images import check_sheet_images, resolve_row
from sepher.io.samplesheet import IF_SHEET_COLUMNS, read_sample_sheet

ND2 = "microscopy/cluster.nd2"
OME = "microscopy/4D-series.ome.tiff"
PLAIN = "microscopy/cellprofiler_examplehuman_d2.tif"
ND2_NAMES = ["5-FAM/pH 9.0", "FM 4-64/2% CHAPS"]
CZI_NAMES = ["Alexa Fluor 488", "DAPI"]


# ---------------------------------------------------------------- writers
def write_czi(path, data, names=CZI_NAMES, pixel_um=0.2, z_um=0.5):
    """A CZI of (C, Z, Y, X) uint16 `data` written with pylibCZIrw (Zeiss, LGPL)."""
    from pylibCZIrw import czi as pyczi

    with pyczi.create_czi(str(path), exist_ok=True) as writer:
        for c in range(data.shape[0]):
            for z in range(data.shape[1]):
                writer.write(data[c, z][..., np.newaxis], plane={"C": c, "Z": z, "T": 0})
        writer.write_metadata(
            document_name="sepher test",
            channel_names=dict(enumerate(names)),
            scale_x=pixel_um * 1e-6,  # metres
            scale_y=pixel_um * 1e-6,
            scale_z=z_um * 1e-6,
        )
    return path


def write_ome_zarr(path, data, axes, scale, names, version="0.4"):
    """An OME-Zarr image group (NGFF 0.4 on zarr format 2, 0.5 on format 3)."""
    import zarr

    root = zarr.open_group(str(path), mode="w", zarr_format=2 if version == "0.4" else 3)
    array = root.create_array("0", shape=data.shape, dtype=data.dtype, chunks=data.shape)
    array[...] = data
    kinds = {"t": "time", "c": "channel"}
    multiscales = [
        {
            "version": version,
            "axes": [
                {"name": a, "type": kinds.get(a, "space")}
                | ({"unit": "micrometer"} if a in "zyx" else {})
                for a in axes
            ],
            "datasets": [
                {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": scale}]}
            ],
        }
    ]
    omero = {"channels": [{"label": n} for n in names]}
    if version == "0.4":
        root.attrs["multiscales"] = multiscales
        root.attrs["omero"] = omero
    else:
        root.attrs["ome"] = {"version": version, "multiscales": multiscales, "omero": omero}
    return path


@pytest.fixture(scope="module")
def czi_data():
    return np.random.default_rng(17).integers(1, 4000, size=(2, 3, 20, 24), dtype=np.uint16)


@pytest.fixture
def czi(tmp_path, czi_data):
    return write_czi(tmp_path / "field.czi", czi_data)


# ---------------------------------------------------------------- ND2 (real file)
def test_nd2_metadata_and_pixels_through_bioio(reference_data):
    image = open_microscopy(reference_data(ND2))
    assert image.reader == "bioio_nd2"
    assert image.shape == (3, 2, 10, 31, 38) and image.n_t == 3
    assert image.channel_names == ND2_NAMES
    assert image.pixel_size_um == pytest.approx(0.16780898, rel=1e-6)
    assert image.z_step_um == 0.5
    data = image.asarray()
    # pixel sums as read by the nd2 package 0.12.0 (`nd2.ND2File(path).asarray()`,
    # tests/data/README.md): whole file, and T 1, Z 4, C 1
    assert int(data.sum(dtype=np.int64)) == 4832891
    assert int(data[1, 1, 4].sum(dtype=np.int64)) == 129772


def test_nd2_time_series_is_refused_with_the_number_of_time_points(reference_data):
    path = reference_data(ND2)
    for read in (read_stack, read_image):
        with pytest.raises(InputError) as caught:
            read(path)
        text = str(caught.value)
        assert "a single time point (this file has T=3 time points)" in text
        assert "export one time point" in text and "cluster.nd2" in text


def test_nd2_channel_by_name_selects_the_same_pixels_as_by_index(reference_data):
    path = reference_data(ND2)
    by_index, px, dz = read_stack(path, t=1, channels=[1])
    by_name, _, _ = read_stack(path, t=1, channels=["FM 4-64/2% CHAPS"])
    folded, _, _ = read_stack(path, t=1, channels=["fm 4-64/2% chaps"])
    assert by_index.shape == (1, 10, 31, 38)
    assert np.array_equal(by_name, by_index) and np.array_equal(folded, by_index)
    assert px == pytest.approx(0.16780898, rel=1e-6) and dz == 0.5
    # the same plane as the nd2-package path (T 1, Z 4, C 1 sums to 129772)
    assert int(by_name[0, 4].sum(dtype=np.int64)) == 129772
    stack, _, _ = read_stack(path, t=1)
    assert np.array_equal(select_channel(stack, "5-FAM/pH 9.0", channel_names=ND2_NAMES), stack[0])


def test_unknown_channel_name_lists_the_file_names(reference_data):
    path = reference_data(ND2)
    with pytest.raises(InputError) as caught:
        read_stack(path, t=0, channels=["Alexa Fluor 488"])
    text = str(caught.value)
    assert "value 'Alexa Fluor 488'" in text and "cluster.nd2" in text
    assert '"5-FAM/pH 9.0", "FM 4-64/2% CHAPS"' in text


def test_pixel_size_disagreement_names_both_values(reference_data):
    path = reference_data(ND2)
    with pytest.raises(InputError) as caught:
        read_stack(path, pixel_size_um=0.2, t=0)
    error = caught.value
    assert error.column == "pixel_size_um" and error.value == 0.2
    assert "the file's metadata says 0.167809 µm/px" in str(error)
    assert "value '0.2'" in str(error) or "value 0.2" in str(error)
    # within 1 %: accepted, the file's value used
    assert read_stack(path, pixel_size_um=0.1685, t=0)[1] == pytest.approx(0.16780898, rel=1e-6)


# ---------------------------------------------------------------- OME-TIFF (real file)
def test_ome_tiff_metadata_time_series_and_pixels(reference_data):
    path = reference_data(OME)
    image = open_microscopy(path)
    assert image.reader == "bioio_ome_tiff"
    assert image.shape == (7, 1, 5, 167, 439) and image.n_t == 7
    assert image.channel_names == ["Channel:0:0"]  # no Name: the OME Channel ID
    assert image.pixel_size_um is None and image.z_step_um is None
    assert image_channel_names(path) == ["Channel:0:0"]
    with pytest.raises(InputError, match=r"this file has T=7 time points"):
        read_stack(path, pixel_size_um=0.1, z_step_um=1.0)
    # one time point: bioio and the tifffile path read the same pixels
    stack, px, dz = read_stack(path, pixel_size_um=0.1, z_step_um=1.0, t=3)
    assert stack.shape == (1, 5, 167, 439) and (px, dz) == (0.1, 1.0)
    assert np.array_equal(stack, image.timepoint(3).astype(np.float32))
    assert np.array_equal(image.timepoint(3)[0], tifffile.imread(path)[3])
    # no pixel size in the metadata and none given
    with pytest.raises(InputError, match="pixel size") as caught:
        read_stack(path, z_step_um=1.0, t=0)
    assert caught.value.column == "pixel_size_um"


def test_plain_tiff_keeps_the_fast_path_without_bioio(reference_data):
    path = reference_data(PLAIN)
    assert not is_microscopy_file(path)
    code = (
        "import sys; from sepher.imaging.io import read_image; "
        f"image, px = read_image({str(path)!r}, pixel_size_um=0.65); "
        "print(image.shape, px, 'bioio' in sys.modules, int(image.sum()))"
    )
    import os

    import sepher

    env = dict(os.environ, PYTHONPATH=str(Path(sepher.__file__).parents[1]))
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=60,
    ).stdout.split()
    # 72 dpi in the file counts as not recorded: the caller's 0.65 is used
    assert out[:5] == ["(1,", "512,", "512)", "0.65", "False"]
    assert int(out[5]) == int(tifffile.imread(path).sum())


# ---------------------------------------------------------------- CZI (written here)
def test_czi_written_with_pylibczirw_reads_back(czi, czi_data):
    image = open_microscopy(czi)
    assert image.reader == "bioio_czi"
    assert image.channel_names == CZI_NAMES
    assert image.pixel_size_um == pytest.approx(0.2) and image.z_step_um == pytest.approx(0.5)
    assert image.shape == (1, 2, 3, 20, 24)
    assert np.array_equal(image.timepoint(0), czi_data)
    stack, px, dz = read_stack(czi)
    assert np.array_equal(stack, czi_data) and stack.dtype == np.uint16
    assert (px, dz) == (pytest.approx(0.2), pytest.approx(0.5))
    by_name, _, _ = read_stack(czi, channels=["DAPI", "Alexa Fluor 488"])
    assert np.array_equal(by_name, czi_data[[1, 0]])
    with pytest.raises(InputError, match="read_stack"):  # a z-stack on the 2-D path
        read_image(czi)
    with pytest.raises(InputError, match="metadata says 0.2 µm/px"):
        read_stack(czi, pixel_size_um=0.25)


# ---------------------------------------------------------------- OME-Zarr (written here)
@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ome_zarr_reads_back(tmp_path, czi_data, version):
    path = write_ome_zarr(
        tmp_path / "field.ome.zarr",
        czi_data,
        "czyx",
        [1.0, 0.5, 0.2, 0.2],
        CZI_NAMES,
        version=version,
    )
    image = open_microscopy(path)
    assert (image.reader, image.channel_names) == ("zarr", CZI_NAMES)
    assert image.pixel_size_um == pytest.approx(0.2) and image.z_step_um == pytest.approx(0.5)
    assert np.array_equal(image.asarray()[0], czi_data)
    stack, px, _ = read_stack(path, channels=["dapi"])
    assert np.array_equal(stack[0], czi_data[1]) and px == pytest.approx(0.2)


def test_ome_zarr_time_series_and_non_square_pixels(tmp_path):
    data = np.ones((3, 1, 4, 5), np.uint16)
    series = write_ome_zarr(tmp_path / "t.zarr", data, "tcyx", [1, 1, 0.2, 0.2], ["a"])
    with pytest.raises(InputError, match="T=3 time points"):
        read_stack(series)
    assert read_stack(series, t=2)[0].shape == (1, 1, 4, 5)
    skew = write_ome_zarr(tmp_path / "s.zarr", data[0], "cyx", [1, 0.2, 0.3], ["a"])
    with pytest.raises(InputError, match="square pixels"):
        open_microscopy(skew)


# ---------------------------------------------------------------- channel names
def test_resolve_channel_by_index_and_name():
    names = ["Alexa Fluor 488", "DAPI", "dapi"]
    assert resolve_channel(2, names) == 2 and resolve_channel("1", names) == 1
    assert resolve_channel("DAPI", names) == 1 and resolve_channel("dapi", names) == 2
    assert resolve_channel("alexa fluor 488", names) == 0
    with pytest.raises(InputError, match="ignoring case when only one"):
        resolve_channel("Dapi", names)  # two channels match ignoring case
    with pytest.raises(InputError, match=r"channel index 0\.\.2") as caught:
        resolve_channel(3, names, file="s.tsv", column="her2_channel", row=4)
    assert (caught.value.row, caught.value.column) == (4, "her2_channel")
    with pytest.raises(InputError, match="records no channel names"):
        resolve_channel("DAPI", [], n_channels=2)


# ---------------------------------------------------------------- sample sheet and start-up check
def _sheet(tmp_path, rows):
    """A sheet of IF rows: (image_id, path, pixel_size_um, her2, nuclear, membrane)."""
    records = []
    for image_id, path, px, her2, nuclear, membrane in rows:
        record = dict.fromkeys(IF_SHEET_COLUMNS, "")
        record.update(
            image_id=image_id,
            path=path,
            assay="IF",
            pixel_size_um=px,
            cell_line="SKBR3",
            condition="parental",
            replicate="1",
            her2_channel=her2,
            nuclear_channel=nuclear,
            membrane_channel=membrane,
        )
        records.append(record)
    sheet = tmp_path / "images.tsv"
    pd.DataFrame(records).to_csv(sheet, sep="\t", index=False)
    return sheet


def _check_error(sheet):
    with pytest.raises(InputError) as caught:
        check_sheet_images(read_sample_sheet(sheet), sheet)
    return caught.value


def test_sheet_with_channel_names_and_blank_pixel_size(tmp_path, czi):
    sheet = _sheet(tmp_path, [("IF_czi", "field.czi", "", "Alexa Fluor 488", "dapi", "")])
    table = read_sample_sheet(sheet)
    assert table.at[0, "her2_channel"] == "Alexa Fluor 488" and np.isnan(
        table.at[0, "pixel_size_um"]
    )
    assert table.at[0, "membrane_channel"] == -1
    check_sheet_images(table, sheet)  # metadata only
    row = resolve_row(table.to_dict("records")[0], sheet, 0)
    assert (row["her2_channel"], row["nuclear_channel"]) == (0, 1)
    assert row["pixel_size_um"] == pytest.approx(0.2)
    # a numeric sheet (no names, a pixel size) is returned as it is
    plain = dict(row, her2_channel=0, nuclear_channel=1, pixel_size_um=0.2)
    assert resolve_row(plain) is plain


def test_start_up_check_refuses_a_pixel_size_the_file_contradicts(tmp_path, czi):
    sheet = _sheet(tmp_path, [("IF_czi", "field.czi", "0.25", "0", "1", "")])
    error = _check_error(sheet)
    assert (error.column, error.value) == ("pixel_size_um", 0.25)
    assert str(error.row).startswith("1 (image_id IF_czi)")
    assert "the file's metadata says 0.2 µm/px" in str(error) and "images.tsv" in str(error)


def test_start_up_check_refuses_an_unknown_channel_name(tmp_path, czi):
    sheet = _sheet(tmp_path, [("IF_czi", "field.czi", "", "HER2", "DAPI", "")])
    error = _check_error(sheet)
    assert (error.column, error.value) == ("her2_channel", "HER2")
    assert '"Alexa Fluor 488", "DAPI"' in str(error)


def test_start_up_check_refuses_a_time_series_from_its_metadata(tmp_path, reference_data):
    (tmp_path / "cluster.nd2").write_bytes(reference_data(ND2).read_bytes())
    sheet = _sheet(tmp_path, [("IF_nd2", "cluster.nd2", "", "FM 4-64/2% CHAPS", "0", "")])
    error = _check_error(sheet)
    assert error.column == "path" and "this file has T=3 time points" in str(error)


def test_blank_pixel_size_without_metadata_stops_the_check(tmp_path, reference_data):
    (tmp_path / "4d.ome.tiff").write_bytes(reference_data(OME).read_bytes())
    sheet = _sheet(tmp_path, [("IF_ome", "4d.ome.tiff", "", "0", "0", "")])
    error = _check_error(sheet)
    assert error.column == "pixel_size_um" and "record none" in str(error)
