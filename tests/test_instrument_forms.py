"""Inputs as instruments and registries write them, end to end (issue 17).

Each instrument form of an input is run through the workflow and must give
the same tables, byte for byte, as its long-form equivalent:

- plates as plater files and as a reader's grid exports with a plate map:
  the imported long table (``plates_imported.csv``, each well with its source
  file, plate and cell) run as the long form gives identical dose-response
  tables, and the fits equal those of the demo's own long table;
- the demo cohort as an Italian-style export (semicolons, DD/MM/YYYY dates,
  si/no, Italian column names and words), read through
  ``cohort_format``, gives the demo's endpoint table;
- demo IF fields as Zeiss CZI files (written with pylibCZIrw), channels named
  by their metadata names and the pixel size left blank in the sheet, give the
  same IF tables as the TIFF fields with channel indices and typed pixel sizes.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile

from sepher.io.plate_formats import write_gdsc, write_grid, write_plater
from sepher.io.plates import read_plates

from .test_cohort_formats import italian_format, italian_frame
from .workflow import DEMO, demo_sheet_rows, snakemake, write_config

pytestmark = pytest.mark.slow

DR_TABLES = ("viability.csv", "plate_qc.csv", "fits.csv", "fits_by_replicate.csv")
DR_TARGETS = [f"results/doseresponse/{name}" for name in DR_TABLES] + [
    "results/doseresponse/comparisons.csv"
]


def _run(directory, *targets, **config):
    Path(directory).mkdir(parents=True, exist_ok=True)
    write_config(directory, **config)
    result = snakemake(directory, "--cores", "2", *targets)
    assert result.returncode == 0, result.stderr[-3000:]
    return Path(directory) / "results"


def _bytes(results, names, folder):
    return {name: (results / folder / name).read_bytes() for name in names}


# ------------------------------------------------------------------------ plates
#: Molar masses (g/mol) to write the demo's mass concentrations in GDSC's µM
#: (antibody and conjugate masses, rounded: the test needs a fixed conversion only).
MOLAR_MASS = {"T-DM1": 148500.0, "trastuzumab": 148000.0, "pertuzumab": 148000.0}


@pytest.mark.parametrize("form", ["plater", "grid", "gdsc"])
def test_plates_in_instrument_form_give_the_long_form_tables(tmp_path, form, request):
    long = read_plates(DEMO / "plates.csv")
    source = tmp_path / "reader"
    extra = {}
    if form == "plater":
        write_plater(long, source)
    elif form == "grid":
        write_grid(long, source, tmp_path / "maps")
        extra["plate_map"] = str(tmp_path / "maps")
    else:
        source.mkdir()
        write_gdsc(long, source / "gdsc_raw.csv", molar_mass=MOLAR_MASS)
    imported = _run(
        tmp_path / "instrument",
        *DR_TARGETS,
        "results/doseresponse/plates_imported.csv",
        plates=source,
        plates_format=form,
        **extra,
    )
    table = pd.read_csv(imported / "doseresponse" / "plates_imported.csv", dtype=str)
    # every well keeps the file, plate and cell it came from
    assert table["source_file"].str.startswith(str(source)).all()
    assert {"source_plate", "source_well"} <= set(table.columns)
    assert len(table) == len(long)
    # the imported table, given as the long form, makes the same tables byte for byte
    as_long = tmp_path / "long" / "plates.csv"
    as_long.parent.mkdir()
    shutil.copyfile(imported / "doseresponse" / "plates_imported.csv", as_long)
    by_long = _run(tmp_path / "long", *DR_TARGETS, plates=as_long)
    names = DR_TABLES + ("comparisons.csv",)
    assert _bytes(imported, names, "doseresponse") == _bytes(by_long, names, "doseresponse")
    if form == "gdsc":
        return  # (doses in µM: the same curves on another concentration scale)
    # and the curves are those of the demo's own long table (well order aside)
    demo = request.getfixturevalue("full_study").directory / "results" / "doseresponse"
    for name in ("fits.csv", "fits_by_replicate.csv", "comparisons.csv"):
        assert (imported / "doseresponse" / name).read_bytes() == (demo / name).read_bytes(), name


# ------------------------------------------------------------------------ cohort
def italian_export(path):
    """The demo cohort as an Italian registry exports it (test_cohort_formats' Italian sheet,
    semicolons, CRLF line ends); returns its cohort_format. (The demo cohort has no decimal
    column; comma decimals are tested in test_cohort_formats.)"""
    italian_frame().to_csv(path, sep=";", index=False, lineterminator="\r\n", encoding="utf-8")
    return italian_format()


def test_italian_cohort_export_gives_the_demo_endpoints(tmp_path, full_study):
    export = tmp_path / "registro.csv"
    cohort_format = italian_export(export)
    results = _run(
        tmp_path,
        "results/survival/endpoints.csv",
        cohort=export,
        cohort_format=cohort_format,
    )
    demo = full_study.directory / "results" / "survival" / "endpoints.csv"
    assert (results / "survival" / "endpoints.csv").read_bytes() == demo.read_bytes()


# ------------------------------------------------------------------------ microscopy
CZI_NAMES = ["HER2 (Alexa Fluor 488)", "DAPI", "WGA (Alexa Fluor 647)"]


def _write_czi(path, cyx, pixel_um):
    """A one-plane CZI of (C, Y, X) uint16 `cyx`, channels named, pixel size in metadata."""
    from pylibCZIrw import czi as pyczi

    with pyczi.create_czi(str(path), exist_ok=True) as writer:
        for c in range(cyx.shape[0]):
            writer.write(cyx[c][..., np.newaxis], plane={"C": c, "Z": 0, "T": 0})
        writer.write_metadata(
            document_name="sepher test",
            channel_names=dict(enumerate(CZI_NAMES[: cyx.shape[0]])),
            scale_x=pixel_um * 1e-6,
            scale_y=pixel_um * 1e-6,
        )


def _if_sheet(directory, rows, header):
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "images.tsv", "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=header, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return directory / "images.tsv"


def test_czi_fields_by_channel_name_give_the_tiff_tables(tmp_path):
    header, rows = demo_sheet_rows(fields=("1",), bad_fields=False, zstacks=False)
    rows = [r for r in rows if r["assay"] == "IF" and r["cell_line"] == "SKBR3"]
    assert len(rows) >= 6
    tiff_rows, czi_rows = [], []
    for row in rows:
        cyx = tifffile.imread(DEMO / row["path"])
        assert cyx.ndim == 3 and cyx.dtype == np.uint16
        target = tmp_path / "tiff" / row["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(DEMO / row["path"], target)
        tiff_rows.append(row)
        name = Path(row["path"]).name.replace(".ome.tif", ".czi")
        (tmp_path / "czi" / "images").mkdir(parents=True, exist_ok=True)
        _write_czi(tmp_path / "czi" / "images" / name, cyx, float(row["pixel_size_um"]))
        czi_rows.append(
            {
                **row,
                "path": f"images/{name}",
                "pixel_size_um": "",
                "her2_channel": CZI_NAMES[int(row["her2_channel"])],
                "nuclear_channel": CZI_NAMES[int(row["nuclear_channel"])],
                "membrane_channel": CZI_NAMES[int(row["membrane_channel"])]
                if row["membrane_channel"]
                else "",
            }
        )
    targets = ["results/imaging/if_cells.csv", "results/imaging/if_summary.csv"]
    no_stack = {"imaging.orthogonal_image": None}  # (the demo's z-stack is not in this sheet)
    tiff_sheet = _if_sheet(tmp_path / "tiff", tiff_rows, header)
    czi_sheet = _if_sheet(tmp_path / "czi", czi_rows, header)
    by_tiff = _run(tmp_path / "tiff", *targets, images=tiff_sheet, **no_stack)
    by_czi = _run(tmp_path / "czi", *targets, images=czi_sheet, **no_stack)
    for target in targets:
        name = Path(target).name
        assert (by_czi / "imaging" / name).read_bytes() == (by_tiff / "imaging" / name).read_bytes()
