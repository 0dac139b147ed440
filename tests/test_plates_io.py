"""The plates reader: every bad input stops with file, row, column, value and expectation."""

import pandas as pd
import pytest

from sepher.errors import InputError
from sepher.io.plates import ROLES, read_plates, well_position

from .conftest import PROJECT

DEMO = PROJECT / "resources" / "demo" / "plates.csv"


def small_plate():
    """A valid two-plate table (one treated plate, one time-zero plate), as strings."""
    rows = [
        ("P1", "A01", "SKBR3", "T-R", "T-DM1", "1", "ng/mL", "treated", "1", "900", "72"),
        ("P1", "A02", "SKBR3", "T-R", "T-DM1", "10", "ng/mL", "treated", "1", "500", "72"),
        ("P1", "A03", "SKBR3", "T-R", "none", "0", "none", "vehicle", "1", "1000", "72"),
        ("P1", "A04", "SKBR3", "T-R", "none", "0", "none", "blank", "1", "50", "72"),
        ("T0", "A01", "SKBR3", "T-R", "none", "0", "none", "time0", "1", "400", "0"),
    ]
    columns = [
        "plate_id", "well", "cell_line", "condition", "drug", "concentration",
        "concentration_unit", "role", "replicate", "signal", "time_h",
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def write(tmp_path, table, name="plates.csv"):
    path = tmp_path / name
    table.to_csv(path, index=False)
    return path


def error_of(tmp_path, table):
    with pytest.raises(InputError) as err:
        read_plates(write(tmp_path, table))
    return err.value


def test_demo_plates_are_valid():
    plates = read_plates(DEMO)
    # the demo is re-simulated from time to time: its shape, not its numbers
    assert {"treated", "vehicle", "blank", "time0"} <= set(plates["role"]) <= set(ROLES)
    assert plates["concentration"].dtype == float and plates["signal"].dtype == float
    assert plates["row"].tolist() == list(range(1, len(plates) + 1))


def test_small_table_parses_and_normalises_wells(tmp_path):
    table = small_plate()
    table.loc[0, "well"] = "a1"
    plates = read_plates(write(tmp_path, table))
    assert plates.loc[0, "well"] == "A01"
    assert plates["time_h"].tolist() == [72, 72, 72, 72, 0]


def test_padding_and_case_normalise_per_value(tmp_path):
    """Values are stripped and wells/roles normalised per distinct value; the
    same text in any row gives the same result, as element by element."""
    table = small_plate()
    table.loc[0, "well"] = " a1 "
    table.loc[1, "well"] = "A2"
    table.loc[2, "well"] = "a003"
    table.loc[0, "cell_line"] = "  SKBR3"
    table.loc[3, "role"] = " Blank"
    table.loc[1, "signal"] = " 500 "
    plates = read_plates(write(tmp_path, table))
    assert plates["well"].tolist() == ["A01", "A02", "A03", "A04", "A01"]
    assert set(plates["cell_line"]) == {"SKBR3"}
    assert plates["role"].tolist() == ["treated", "treated", "vehicle", "blank", "time0"]
    assert plates.loc[1, "signal"] == 500.0
    # a bad value is named stripped, at its row of the file
    table.loc[4, "well"] = " z9 "
    err = error_of(tmp_path, table)
    assert (err.row, err.column, err.value) == (5, "well", "z9")


def test_missing_file(tmp_path):
    with pytest.raises(InputError) as err:
        read_plates(tmp_path / "absent.csv")
    assert "absent.csv" in str(err.value)


def test_misspelt_column_is_named_with_suggestion(tmp_path):
    table = small_plate().rename(columns={"concentration": "concentraton"})
    err = error_of(tmp_path, table)
    assert err.column == "concentration"
    assert "did you mean 'concentration'" in str(err) and "concentraton" in str(err)


def test_unknown_well_name(tmp_path):
    for bad in ("Q01", "A25", "A00", "well7"):
        table = small_plate()
        table.loc[1, "well"] = bad
        err = error_of(tmp_path, table)
        assert (err.row, err.column, err.value) == (2, "well", bad)
        assert "A01..P24" in str(err)


def test_duplicate_well_on_a_plate(tmp_path):
    table = small_plate()
    table.loc[2, "well"] = "A01"
    err = error_of(tmp_path, table)
    assert (err.row, err.column, err.value) == (3, "well", "A01")
    assert "plates.csv" in str(err) and "row 1" in str(err)


def test_same_well_on_two_plates_is_fine(tmp_path):
    assert len(read_plates(write(tmp_path, small_plate()))) == 5  # A01 on P1 and T0


def test_unknown_role(tmp_path):
    table = small_plate()
    table.loc[3, "role"] = "control"
    err = error_of(tmp_path, table)
    assert (err.row, err.column, err.value) == (4, "role", "control")
    assert "treated, vehicle, blank, time0" in str(err)


@pytest.mark.parametrize("bad", ["ten", "-1", "nan", ""])
def test_bad_concentration(tmp_path, bad):
    table = small_plate()
    table.loc[1, "concentration"] = bad
    err = error_of(tmp_path, table)
    assert (err.row, err.column) == (2, "concentration")
    assert ">= 0" in str(err)


def test_treated_well_at_dose_zero(tmp_path):
    table = small_plate()
    table.loc[0, "concentration"] = "0"
    err = error_of(tmp_path, table)
    assert (err.row, err.column) == (1, "concentration") and "vehicle" in str(err)


def test_non_numeric_signal(tmp_path):
    table = small_plate()
    table.loc[2, "signal"] = "OVER"
    err = error_of(tmp_path, table)
    assert (err.row, err.column, err.value) == (3, "signal", "OVER")


def test_mixed_units_within_one_drug(tmp_path):
    table = small_plate()
    table.loc[1, "concentration_unit"] = "ug/mL"
    err = error_of(tmp_path, table)
    assert (err.row, err.column, err.value) == (2, "concentration_unit", "ug/mL")
    assert "T-DM1" in str(err) and "ng/mL" in str(err)


@pytest.mark.parametrize("role", ["vehicle", "blank"])
def test_treated_plate_without_controls(tmp_path, role):
    table = small_plate()
    table = table[table["role"] != role]
    err = error_of(tmp_path, table)
    assert err.column == "role" and err.row == 1
    assert f"{role} wells" in str(err) and "P1" in str(err)


def test_missing_replicate(tmp_path):
    table = small_plate()
    table.loc[4, "replicate"] = ""
    err = error_of(tmp_path, table)
    assert (err.row, err.column) == (5, "replicate")


def test_well_position():
    assert well_position("A01") == (0, 0)
    assert well_position("P24") == (15, 23)
    with pytest.raises(ValueError):
        well_position("A25")


def test_kill_control_wells_are_a_role(tmp_path):
    """Kill-control wells (a fully lethal reference treatment) are read, any case, and
    stay out of normalisation; an unknown role still fails, naming kill among the roles."""
    from sepher.doseresponse.normalise import normalise_plate

    table = small_plate()
    kill = table.iloc[[0, 1]].assign(
        well=["B01", "B02"], drug="staurosporine", concentration="1", concentration_unit="uM",
        role=["kill", "Kill"], signal=["60", "64"],
    )  # fmt: skip
    plates = read_plates(write(tmp_path, pd.concat([table, kill], ignore_index=True)))
    assert plates["role"].tolist()[-2:] == ["kill", "kill"]
    viability = normalise_plate(plates)
    assert viability.loc[viability["role"] == "kill", "viability"].isna().all()
    # the treated wells' unit check is per drug of treated wells: the kill drug is not one
    assert viability.loc[viability["well"] == "A01", "viability"].iloc[0] == pytest.approx(
        (900 - 50) / (1000 - 50)
    )
    table.loc[0, "role"] = "killed"
    err = error_of(tmp_path, table)
    assert err.column == "role" and "kill" in err.expected
