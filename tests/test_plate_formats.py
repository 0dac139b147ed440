"""Plates as the instrument writes them (issue 17, item 1): plater, grid + plate map, GDSC.

The demo plates written in each form read back to the long table, and give the
same normalisation and fits; a hand-made reader export with its quirks; one exact
message per kind of mistake.
"""

import shutil

import numpy as np
import pandas as pd
import pytest

from sepher.errors import InputError
from sepher.io.plate_formats import (
    PLATE_FORMATS,
    import_log_table,
    import_plates,
    plate_sources,
    write_gdsc,
    write_grid,
    write_plater,
)
from sepher.io.plates import PLATES_COLUMNS, read_plates

from .conftest import PROJECT

DEMO = PROJECT / "resources" / "demo" / "plates.csv"
LONG = [*PLATES_COLUMNS, "time_h"]
#: Molar masses (g/mol) for the GDSC writer (the demo doses are ng/mL and ug/mL):
#: round numbers near the antibodies' masses; any positive value gives the same fits.
MOLAR_MASS = {"T-DM1": 148500.0, "trastuzumab": 148000.0, "pertuzumab": 148100.0}


@pytest.fixture(scope="module")
def demo():
    return read_plates(DEMO)


def sorted_long(table):
    return table[LONG].sort_values(["plate_id", "well"]).reset_index(drop=True)


def one_curve_fit(plates):
    """Normalise the replicate-1 and -2 plates of parental SKBR3 and fit their T-DM1 curve."""
    from sepher.doseresponse.stage import fit_curves, normalise_plates

    keep = plates["plate_id"].isin(["SKBR3-PAR-B1", "SKBR3-PAR-B2"])
    viability, qc = normalise_plates(plates[keep].reset_index(drop=True))
    treated = viability[viability["drug"] == "T-DM1"]
    fits, _, _ = fit_curves(treated, candidate_models=("LL.4",), band_points=5)
    return viability, fits


def test_formats_listed():
    assert PLATE_FORMATS == ("long", "plater", "grid", "gdsc")


@pytest.mark.parametrize("form", ["plater", "grid"])
def test_demo_round_trip_is_identical(demo, tmp_path, form):
    if form == "plater":
        write_plater(demo, tmp_path / "plates")
        back = read_plates(tmp_path / "plates", fmt="plater")
    else:
        write_grid(demo, tmp_path / "plates", tmp_path / "maps")
        log = []
        back = read_plates(tmp_path / "plates", fmt="grid", plate_map=tmp_path / "maps", log=log)
        assert log == []  # nothing left out
    pd.testing.assert_frame_equal(sorted_long(back), sorted_long(demo))
    # provenance: the file, the plate (its stem) and the cell of each well
    first = back.iloc[0]
    assert first["source_file"] == str(tmp_path / "plates" / f"{first['plate_id']}.csv")
    assert (back["source_plate"] == back["plate_id"]).all()
    assert (back["source_well"] == back["well"]).all()
    assert back["row"].tolist() == list(range(1, len(back) + 1))
    # rows in file order (files sorted by name), then row-major wells
    assert back["plate_id"].tolist() == sorted(back["plate_id"])
    for _, wells in back.groupby("plate_id"):
        assert wells["well"].tolist() == sorted(wells["well"])


def test_demo_round_trip_gives_identical_fits(demo, tmp_path):
    """Plater and grid tables give the very same viabilities and fits as the long table."""
    viability, fits = one_curve_fit(demo)
    assert len(fits) == 1 and fits["n"].iloc[0] > 10
    write_plater(demo, tmp_path / "plater")
    write_grid(demo, tmp_path / "grid", tmp_path / "maps")
    for back in (
        read_plates(tmp_path / "plater", fmt="plater"),
        read_plates(tmp_path / "grid", fmt="grid", plate_map=tmp_path / "maps"),
    ):
        viability_back, fits_back = one_curve_fit(back)
        pd.testing.assert_series_equal(viability_back["viability"], viability["viability"])
        pd.testing.assert_frame_equal(fits_back, fits)


def test_gdsc_round_trip_converts_to_micromolar_with_the_same_fit(demo, tmp_path):
    """GDSC concentrations are µM: the ng/mL doses become µM (ng/mL / molar mass * 1000
    / 1000), every other long column is unchanged, and the fit is the same curve on the
    new scale (slope, bottom, top equal; IC50 scaled by the conversion factor)."""
    path = write_gdsc(demo, tmp_path / "gdsc_raw.csv", molar_mass=MOLAR_MASS)
    back = read_plates(path, fmt="gdsc")
    a, b = sorted_long(demo), sorted_long(back)
    same = [c for c in LONG if c not in ("concentration", "concentration_unit")]
    pd.testing.assert_frame_equal(b[same], a[same])
    treated = a["role"] == "treated"
    assert set(b.loc[treated, "concentration_unit"]) == {"uM"}
    tdm1 = a["drug"] == "T-DM1"  # ng/mL -> uM: x 1e-9 g/mL * 1e3 mL/L / 148500 g/mol * 1e6
    np.testing.assert_allclose(
        b.loc[tdm1, "concentration"], a.loc[tdm1, "concentration"] / 148500.0, rtol=1e-12
    )
    assert (b.loc[~treated, "concentration_unit"] == a.loc[~treated, "concentration_unit"]).all()
    # provenance: barcode and POSITION (row-major on the plate's size)
    row = back[(back["plate_id"] == "SKBR3-T0-B1") & (back["well"] == "B01")].iloc[0]
    assert (row["source_plate"], row["source_well"]) == ("SKBR3-T0-B1", "13")  # 96-well plate
    _, fits = one_curve_fit(demo)
    _, fits_um = one_curve_fit(back)
    for column in ("b", "c", "d", "auc"):
        np.testing.assert_allclose(fits_um[column], fits[column], rtol=1e-6)
    np.testing.assert_allclose(fits_um["e"], fits["e"] / 148500.0, rtol=1e-6)
    assert fits_um["concentration_unit"].iloc[0] == "uM"


def test_gdsc_tags_headers_and_defaults(tmp_path):
    """Headers in any case; NC-0 is the vehicle unless NC-1 is on the plate; UN-USED, SC,
    DMSO rows are logged and left out; condition defaults to parental, replicate to the
    barcode; DURATION (days) gives time_h."""
    raw = pd.DataFrame(
        {
            "barcode": ["1001"] * 7 + ["1002"] * 4,
            "Position": ["1", "2", "3", "4", "5", "6", "7", "1", "2", "3", "2"],
            "TAG": ["B", "NC-0", "NC-1", "L1-D1-S", "L1-D2-S", "UN-USED", "SC",
                    "B", "NC-0", "L1-D1-S", "DMSO"],
            "CELL_LINE_NAME": ["MCF7"] * 11,
            "DRUG_ID": ["", "", "", "1003", "1003", "", "", "", "", "1003", ""],
            "conc": ["", "", "", "10", "2.5", "", "", "", "", "10", ""],
            "INTENSITY": ["50", "900", "1000", "400", "700", "0", "2000", "55", "950", "420",
                          "0"],
            "DURATION": ["3"] * 11,
        }
    )  # fmt: skip
    raw.to_csv(tmp_path / "gdsc.csv", index=False)
    log = []
    table = import_plates(tmp_path / "gdsc.csv", "gdsc", log=log)
    assert table["role"].tolist() == [
        "blank", "vehicle", "treated", "treated", "blank", "vehicle", "treated",
    ]  # fmt: skip
    assert table["well"].tolist() == ["A01", "A03", "A04", "A05", "A01", "A02", "A03"]
    assert set(table["condition"]) == {"parental"}
    assert table["replicate"].tolist() == ["1001"] * 4 + ["1002"] * 3
    assert table.loc[2, ["drug", "concentration", "concentration_unit"]].tolist() == [
        "1003", "10", "uM",
    ]  # fmt: skip
    assert table.loc[0, ["drug", "concentration", "concentration_unit"]].tolist() == [
        "none", "0", "none",
    ]  # fmt: skip
    assert set(table["time_h"]) == {"72"}
    assert [(row["source_plate"], row["source_well"], row["action"]) for row in log] == [
        ("1001", "2", "untreated control (NC-0; NC-1 is this plate's vehicle)"),
        ("1001", "6", "unused well (UN-USED)"),
        ("1001", "7", "seeding control (SC)"),
        ("1002", "2", "back-fill (DMSO)"),
    ]
    assert list(import_log_table(log).columns) == [
        "source_file", "source_plate", "source_well", "value", "action",
    ]  # fmt: skip
    plates = read_plates(tmp_path / "gdsc.csv", fmt="gdsc")
    assert plates["concentration"].tolist()[2:4] == [10.0, 2.5]


def test_reader_export_with_quirks(reference_data, tmp_path):
    """The hand-made export (tests/data/plates): what each quirk becomes."""
    export = reference_data("plates/reader_export_quirks.csv")
    plate_map = reference_data("plates/reader_export_quirks_map.csv")
    log = []
    plates = read_plates(export, fmt="grid", plate_map=plate_map, log=log)
    # the 2 header lines (reader name, date) are skipped: the grid starts at its 1..12 row;
    # the plate id is the file stem
    assert set(plates["plate_id"]) == {"reader_export_quirks"}
    assert set(plates["source_file"]) == {str(export)}
    # the map has 18 wells (A01..B06); the OVRFLW reading of B06 leaves that well out
    assert len(plates) == 17 and "B06" not in set(plates["well"])
    assert plates.loc[plates["well"] == "A04", "signal"].item() == 10480.0
    assert plates["role"].value_counts().to_dict() == {"treated": 11, "blank": 3, "vehicle": 3}
    # the reading at B07 (no well in the map) is ignored; the blank cells (B08.., rows C-H,
    # no well in the map either) are no wells and are not logged
    assert import_log_table(log).values.tolist() == [
        [str(export), "reader_export_quirks", "B06", "OVRFLW", "overflow"],
        [str(export), "reader_export_quirks", "B07", "5123", "not in plate map"],
    ]
    # a blank reading where the map has a well stops the import, naming the cell
    text = export.read_text().replace("10050,10310,9990", "10050,,9990")
    (tmp_path / "reader_export_quirks.csv").write_text(text)
    with pytest.raises(InputError) as err:
        read_plates(tmp_path / "reader_export_quirks.csv", fmt="grid", plate_map=plate_map)
    assert str(err.value) == (
        f"Invalid input: file {tmp_path / 'reader_export_quirks.csv'}, row B02 (plate "
        f"reader_export_quirks), column 'signal': value ''; expected a reading (the plate map "
        f"{plate_map} has a well there). Overflow markers (OVRFLW, OVER, OVERFLOW, SAT, "
        "SATURATED, **** or text starting with '>') leave a well out; blank and -, NaN, NA, "
        "N/A are no reading."
    )
    # a comma decimal is not a number: the long checks name the source cell
    (tmp_path / "reader_export_quirks.csv").write_text(
        export.read_text().replace("10050,10310", '"10050,5",10310')
    )
    with pytest.raises(InputError) as err:
        read_plates(tmp_path / "reader_export_quirks.csv", fmt="grid", plate_map=plate_map)
    assert str(err.value) == (
        f"Invalid input: file {tmp_path / 'reader_export_quirks.csv'}, row B01 (plate "
        "reader_export_quirks), column 'signal': value '10050,5'; expected a number."
    )


def plater_block(name, n_rows=8, n_cols=12, fill=lambda r, c: ""):
    letters = [chr(65 + r) if r < 26 else "A" + chr(39 + r) for r in range(n_rows)]
    lines = [",".join([name, *map(str, range(1, n_cols + 1))])]
    lines += [",".join([letters[r], *(fill(r, c) for c in range(n_cols))]) for r in range(n_rows)]
    return "\n".join(lines)


def small_plater(n_rows=8, n_cols=12, signal_rows=None, signal_name="signal", last=False):
    """A plater plate: A01 blank, A02 vehicle, A03 treated (or, `last`, the plate's last
    well treated); the rest of the plate empty."""

    def cell(cells, r, c):
        if r == 0 and c < 2 or (r == 0 and c == 2 and not last):
            return cells[c]
        return cells[2] if last and (r, c) == (n_rows - 1, n_cols - 1) else ""

    values = {
        "cell_line": ("SKBR3", "SKBR3", "SKBR3"),
        "condition": ("parental", "parental", "parental"),
        "drug": ("none", "none", "T-DM1"),
        "concentration": ("0", "0", "10"),
        "concentration_unit": ("none", "none", "ng/mL"),
        "role": ("blank", "vehicle", "treated"),
        "replicate": ("1", "1", "1"),
        "signal": ("50", "1000", "400"),
    }
    blocks = []
    for name, cells in values.items():
        rows = signal_rows if name == "signal" and signal_rows else n_rows
        blocks.append(
            plater_block(
                signal_name if name == "signal" else name, rows, n_cols,
                lambda r, c, cells=cells: cell(cells, r, c),
            )
        )  # fmt: skip
    return "\n\n".join(blocks) + "\n"


def test_plater_384_and_1536_shapes(tmp_path):
    (tmp_path / "P384.csv").write_text(small_plater(16, 24))
    plates = read_plates(tmp_path / "P384.csv", fmt="plater")
    assert plates["well"].tolist() == ["A01", "A02", "A03"]
    assert plates["signal"].tolist() == [50.0, 1000.0, 400.0]
    # a 1536-well plate (32 x 48, rows A..AF) is read with its well names ...
    (tmp_path / "P1536.csv").write_text(small_plater(32, 48, last=True))
    table = import_plates(tmp_path / "P1536.csv", "plater")
    assert table["well"].tolist() == ["A01", "A02", "AF48"]
    # ... but the analysis reads wells up to P24: the check names the source cell
    with pytest.raises(InputError) as err:
        read_plates(tmp_path / "P1536.csv", fmt="plater")
    assert str(err.value) == (
        f"Invalid input: file {tmp_path / 'P1536.csv'}, row AF48 (plate P1536): value 'AF48'; "
        "expected a well name A01..P24 (row letter A-P, column 1-24)."
    )


def test_plate_sources(tmp_path):
    for name in ("b.csv", "a.xlsx", ".hidden.csv", "notes.txt"):
        (tmp_path / name).write_text("x")
    assert [p.name for p in plate_sources(tmp_path)] == ["a.xlsx", "b.csv"]
    assert plate_sources([tmp_path / "b.csv"]) == [tmp_path / "b.csv"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError) as err:
        plate_sources(tmp_path / "empty")
    assert str(err.value) == (
        f"Invalid input: file {tmp_path / 'empty'}; expected a folder holding at least one "
        ".csv or .xlsx plate file."
    )
    with pytest.raises(InputError) as err:
        plate_sources(tmp_path / "absent.csv")
    assert "absent.csv" in str(err.value) and "existing plate file" in str(err.value)


def test_grid_reads_xlsx_sheets(tmp_path):
    """An XLSX with two sheets holding grids: one plate per sheet, id <stem>_<sheet>."""
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    for k, title in enumerate(("Read1", "Read2")):
        sheet = book.active if k == 0 else book.create_sheet()
        sheet.title = title
        sheet.append(["Plate reader", "export"])
        sheet.append([None, *range(1, 13)])
        for r in "ABCDEFGH":
            sheet.append([r, *([50 + k, 1000.5, 400] if r == "A" else [])])
    book.save(tmp_path / "run.xlsx")
    maps = tmp_path / "maps"
    maps.mkdir()
    layout = small_plater().split("\n\nsignal")[0] + "\n"
    for plate in ("run_Read1", "run_Read2"):
        (maps / f"{plate}.csv").write_text(layout)
    plates = read_plates(tmp_path / "run.xlsx", fmt="grid", plate_map=maps)
    assert plates["plate_id"].tolist() == ["run_Read1"] * 3 + ["run_Read2"] * 3
    assert plates["source_plate"].tolist() == ["Read1"] * 3 + ["Read2"] * 3
    assert plates["signal"].tolist() == [50.0, 1000.5, 400.0, 51.0, 1000.5, 400.0]


# ---------------------------------------------------------------- one exact message each


def error(*args, **kwargs):
    with pytest.raises(InputError) as err:
        read_plates(*args, **kwargs)
    return str(err.value)


def test_wrong_grid_size(tmp_path):
    (tmp_path / "P1.csv").write_text(small_plater(signal_rows=7))
    assert error(tmp_path / "P1.csv", fmt="plater") == (
        f"Invalid input: file {tmp_path / 'P1.csv'}, row 71, column 'signal': value '7 x 12'; "
        "expected a block of 8 x 12, 16 x 24 or 32 x 48 wells (rows x columns)."
    )
    lines = ["Reader,1", "", ",1,2,3,4,5,6,7,8,9,10,11,12"]
    lines += [",".join([r, *["100"] * 12]) for r in "ABCDEFG"]  # 7 rows
    (tmp_path / "grid.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "map.csv").write_text(small_plater().split("\n\nsignal")[0] + "\n")
    assert error(tmp_path / "grid.csv", fmt="grid", plate_map=tmp_path / "map.csv") == (
        f"Invalid input: file {tmp_path / 'grid.csv'}, row 3: value '7 x 12'; expected a grid "
        "of readings of 8 x 12, 16 x 24 or 32 x 48 wells (rows x columns)."
    )


def test_unknown_variable_block(tmp_path):
    (tmp_path / "P1.csv").write_text(small_plater(signal_name="signl"))
    assert error(tmp_path / "P1.csv", fmt="plater") == (
        f"Invalid input: file {tmp_path / 'P1.csv'}, row 71: value 'signl'; expected a block "
        "named after a plates column (cell_line, condition, drug, concentration, "
        "concentration_unit, role, replicate, signal, time_h). Did you mean 'signal'?"
    )


def test_bad_value_names_the_source_cell(tmp_path):
    """The long checks run on the imported table; the message names file, plate, cell."""
    (tmp_path / "P1.csv").write_text(small_plater().replace("treated", "treatd"))
    assert error(tmp_path / "P1.csv", fmt="plater") == (
        f"Invalid input: file {tmp_path / 'P1.csv'}, row A03 (plate P1), column 'role': "
        "value 'treatd'; expected one of treated, vehicle, blank, time0, kill."
    )


def gdsc_raw(tmp_path, tag="L1-D1-S"):
    raw = pd.DataFrame(
        {
            "BARCODE": ["7001"] * 3,
            "POSITION": ["1", "2", "3"],
            "TAG": ["B", "NC-1", tag],
            "CELL_LINE_NAME": ["MCF7"] * 3,
            "DRUG_NAME": ["", "", "Lapatinib"],
            "CONC": ["", "", "0.5"],
            "INTENSITY": ["40", "1000", "600"],
        }
    )
    raw.to_csv(tmp_path / "raw.csv", index=False)
    return tmp_path / "raw.csv"


def test_unknown_gdsc_tag(tmp_path):
    assert len(read_plates(gdsc_raw(tmp_path), fmt="gdsc")) == 3
    assert error(gdsc_raw(tmp_path, tag="L1-D1-C"), fmt="gdsc") == (
        f"Invalid input: file {tmp_path / 'raw.csv'}, row 3 (BARCODE 7001, POSITION 3), "
        "column 'TAG': value 'L1-D1-C'; expected a known GDSC TAG (L<n>-D<m>-S, R<n>-D<m>-S, "
        "A<n>-S, PC<n>-D<m>-S, NC-1, NC-0, B, PC-<n>, T0, UN-USED, SC, DMSO). Combination "
        "treatments (-C tags) are not read."
    )


def test_gdsc_plate_without_vehicle_names_the_raw_row(tmp_path):
    path = gdsc_raw(tmp_path, tag="L1-D1-S")
    text = path.read_text().replace(",NC-1,", ",B,")
    path.write_text(text)
    assert error(path, fmt="gdsc") == (
        f"Invalid input: file {path}, row 3 (BARCODE 7001, POSITION 3), column 'TAG': value "
        "'L1-D1-S'; expected vehicle wells on every plate with treated wells (plate 7001 has "
        "none). Viability is (signal - blank mean) / (vehicle mean - blank mean) per plate."
    )


def test_missing_plate_map(reference_data, tmp_path):
    shutil.copy(reference_data("plates/reader_export_quirks.csv"), tmp_path)
    (tmp_path / "maps").mkdir()
    assert error(
        tmp_path / "reader_export_quirks.csv", fmt="grid", plate_map=tmp_path / "maps"
    ) == (
        f"Invalid input: file {tmp_path / 'maps'}: value 'reader_export_quirks'; expected a "
        "plate map for plate reader_export_quirks in the plate_map folder "
        "(reader_export_quirks.csv or reader_export_quirks.xlsx)."
    )
