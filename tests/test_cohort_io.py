"""Cohort reader: endpoints from both input forms, one clear error per bad input.

Expected endpoint values are computed by hand from the dates in the fixture
(day counts / 30.4375), not by the code under test.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sepher.errors import InputError
from sepher.io.cohort import derive_endpoints, read_cohort
from sepher.io.identifiers import (
    check_identifier_columns,
    check_pseudonymous_ids,
    identifier_column_kind,
    identifier_value_kind,
)

PROJECT = Path(__file__).resolve().parents[1]
DEMO_CSV = PROJECT / "resources" / "demo" / "cohort.csv"

HEADER = (
    "patient_id,tdm1_line,first_line_pertuzumab,advanced_dx_date,tdm1_start_date,"
    "tdm1_progression_date,last_contact_date,vital_status,hormone_receptor,ecog"
)
ROWS = [
    "P01,2,yes,2015-01-01,2016-01-01,2016-07-01,2017-01-01,dead,positive,0",
    "P02,2,no,2014-03-01,2015-03-01,,2016-03-01,alive,negative,1",
    "P03,3,no,2013-06-15,2016-06-15,2017-01-10,2019-12-31,alive,positive,2",
    "P04,2,yes,2016-02-01,2017-02-01,,2017-08-01,dead,negative,0",
    "P05,2,no,2012-01-01,2013-01-01,2013-09-01,2015-05-01,dead,positive,1",
]


def write_rows(tmp_path, rows=ROWS, header=HEADER, name="cohort.csv"):
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def replace_cell(rows, row, column, value, header=HEADER):
    """Rows with one cell changed (row is 1-based, as in messages)."""
    columns = header.split(",")
    out = [r.split(",") for r in rows]
    out[row - 1][columns.index(column)] = value
    return [",".join(r) for r in out]


def assert_names(err, path, row, column, value):
    text = str(err.value)
    assert str(path) in text
    if row is not None:
        assert f"row {row}" in text
    if column is not None:
        assert f"column '{column}'" in text
    if value is not None:
        assert f"value '{value}'" in text


def test_endpoints_from_dates_match_hand_computation(tmp_path):
    path = write_rows(tmp_path)
    cohort = read_cohort(path, covariates=["hormone_receptor", "ecog"])
    assert list(cohort.columns[:7]) == [
        "patient_id",
        "tdm1_line",
        "first_line_pertuzumab",
        "os_months",
        "os_event",
        "pfs2_months",
        "pfs2_event",
    ]
    # P01: 2015-01-01 -> 2017-01-01 = 731 days; PFS 2016-01-01 -> 2016-07-01 = 182 days
    # P02: 2014-03-01 -> 2016-03-01 = 731 (29 Feb 2016); PFS to last contact 2015-03-01 -> 2016-03-01 = 366, censored
    # P03: 2013-06-15 -> 2019-12-31 = 2390; PFS 2016-06-15 -> 2017-01-10 = 209
    # P04: 2016-02-01 -> 2017-08-01 = 547; death without progression: 2017-02-01 -> 2017-08-01 = 181
    # P05: 2012-01-01 -> 2015-05-01 = 1216; PFS 2013-01-01 -> 2013-09-01 = 243
    days_os = np.array([731, 731, 2390, 547, 1216])
    days_pfs = np.array([182, 366, 209, 181, 243])
    np.testing.assert_allclose(cohort["os_months"], days_os / 30.4375, rtol=1e-12)
    np.testing.assert_allclose(cohort["pfs2_months"], days_pfs / 30.4375, rtol=1e-12)
    assert cohort["os_event"].tolist() == [1, 0, 0, 1, 1]
    assert cohort["pfs2_event"].tolist() == [1, 0, 1, 1, 1]
    assert cohort["os_event"].dtype == np.int64
    assert cohort["os_months"].dtype == np.float64
    assert cohort["tdm1_line"].tolist() == [2, 2, 3, 2, 2]
    assert cohort["hormone_receptor"].tolist()[:2] == ["positive", "negative"]
    assert cohort["ecog"].tolist() == [0.0, 1.0, 2.0, 0.0, 1.0]


def test_both_forms_give_the_same_endpoints(tmp_path):
    dates = read_cohort(DEMO_CSV, covariates=["visceral_mets", "age_at_advanced_dx"])
    durations = dates[
        ["patient_id", "tdm1_line", "first_line_pertuzumab", "visceral_mets", "age_at_advanced_dx"]
    ].copy()
    for column in ("os_months", "os_event", "pfs2_months", "pfs2_event", "entry_months"):
        durations[column] = dates[column]
    path = tmp_path / "durations.csv"
    durations.to_csv(path, index=False, float_format="%.10g")
    again = read_cohort(path, covariates=["visceral_mets", "age_at_advanced_dx"])
    same = [c for c in dates.columns if c not in ("tdm1_start_year", "best_response")]
    # os_tdm1_months = os_months - entry_months of values written with 10 digits
    pd.testing.assert_frame_equal(again[same], dates[same], check_exact=False, rtol=1e-8)
    # the calendar year needs the dates
    assert again["tdm1_start_year"].isna().all()
    assert dates["tdm1_start_year"].between(2000, 2030).all()


def test_entry_and_os_from_tdm1_start_are_derived_from_the_dates(tmp_path):
    header = (
        "patient_id,tdm1_line,first_line_pertuzumab,advanced_dx_date,tdm1_start_date,"
        "tdm1_progression_date,last_contact_date,vital_status,best_response"
    )
    rows = [
        "P1,2,yes,2015-01-01,2016-01-01,2016-07-01,2017-01-01,dead,pr",
        "P2,2,no,2014-03-01,2014-03-01,,2014-09-01,alive,",
    ]
    cohort = read_cohort(write_rows(tmp_path, rows, header))
    assert cohort["entry_months"].tolist() == pytest.approx([365 / 30.4375, 0.0])
    assert cohort["os_tdm1_months"].tolist() == pytest.approx([366 / 30.4375, 184 / 30.4375])
    np.testing.assert_allclose(
        cohort["os_months"], cohort["entry_months"] + cohort["os_tdm1_months"]
    )
    assert cohort["tdm1_start_year"].tolist() == [2016.0, 2014.0]
    assert cohort["best_response"].tolist() == ["PR", None]


def test_bad_best_response_and_entry_beyond_os_are_named(tmp_path):
    header = (
        "patient_id,tdm1_line,first_line_pertuzumab,advanced_dx_date,tdm1_start_date,"
        "tdm1_progression_date,last_contact_date,vital_status,best_response"
    )
    rows = [
        "P1,2,yes,2015-01-01,2016-01-01,2016-07-01,2017-01-01,dead,partial",
        "P2,2,no,2015-01-01,2016-01-01,2016-07-01,2017-01-01,dead,CR",
    ]
    with pytest.raises(InputError) as err:
        read_cohort(write_rows(tmp_path, rows, header))
    assert_names(err, tmp_path / "cohort.csv", 1, "best_response", "partial")
    assert "CR / PR / SD / PD / NE" in str(err.value)
    header = "patient_id,tdm1_line,first_line_pertuzumab,os_months,os_event,pfs2_months,pfs2_event,entry_months"
    rows = ["P1,2,yes,20,1,5,1,25", "P2,2,no,20,1,5,1,3"]
    with pytest.raises(InputError) as err:
        read_cohort(write_rows(tmp_path, rows, header))
    assert_names(err, tmp_path / "cohort.csv", 1, "entry_months", "25")


def test_dates_and_matching_durations_together_are_accepted(tmp_path):
    header = HEADER + ",os_months,os_event,pfs2_months,pfs2_event"
    extra = ["24.01642710,1,5.97946612,1", "24.01642710,0,12.02464066,0"]
    rows = [r + "," + e for r, e in zip(ROWS[:2], extra, strict=True)]
    cohort = read_cohort(write_rows(tmp_path, rows, header))
    assert cohort["os_event"].tolist() == [1, 0]
    bad = [rows[0], rows[1].replace("24.01642710", "30.5")]
    with pytest.raises(InputError) as err:
        read_cohort(write_rows(tmp_path, bad, header))
    assert_names(err, tmp_path / "cohort.csv", 2, "os_months", "30.5")


def test_values_are_case_and_space_normalised(tmp_path):
    rows = replace_cell(ROWS, 1, "first_line_pertuzumab", " Yes ")
    rows = replace_cell(rows, 2, "vital_status", "ALIVE")
    cohort = read_cohort(write_rows(tmp_path, rows))
    assert cohort["first_line_pertuzumab"].tolist()[:2] == ["yes", "no"]


def test_trailing_blank_spreadsheet_rows_are_ignored(tmp_path):
    cohort = read_cohort(write_rows(tmp_path, [*ROWS, ",,,,,,,,,", " , ,,,,,,,,"]))
    assert len(cohort) == 5


def test_row_numbers_count_blank_rows(tmp_path):
    rows = [ROWS[0], ",,,,,,,,,", "", *replace_cell(ROWS[1:], 2, "vital_status", "gone")]
    path = write_rows(tmp_path, rows)
    with pytest.raises(InputError) as err:
        read_cohort(path)
    # file row 5 after the header: P03 (rows 2 and 3 are blank)
    assert_names(err, path, 5, "vital_status", "gone")


def test_yaml_boolean_group_levels_are_yes_no(tmp_path):
    # PyYAML reads bare `[no, yes]` as [False, True].
    cohort = read_cohort(write_rows(tmp_path), group_levels=(False, True))
    assert len(cohort) == 5


def test_input_file_is_not_modified(tmp_path):
    path = write_rows(tmp_path)
    before = path.read_bytes()
    read_cohort(path)
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("row", "column", "value", "expected"),
    [
        (2, "advanced_dx_date", "15/03/2016", "ISO 8601"),
        (2, "advanced_dx_date", "2016-02-30", "ISO 8601"),
        (1, "last_contact_date", "", "ISO 8601"),
        (3, "tdm1_progression_date", "soon", "ISO 8601"),
        (4, "tdm1_line", "0", "integer >= 1"),
        (4, "tdm1_line", "2.5", "integer >= 1"),
        (4, "tdm1_line", "second", "integer >= 1"),
        (5, "first_line_pertuzumab", "maybe", "yes or no"),
        (3, "vital_status", "deceased", "alive or dead"),
        (2, "tdm1_start_date", "2014-01-01", "on or after advanced_dx_date"),
        (1, "tdm1_progression_date", "2015-12-31", "on or after tdm1_start_date"),
        (3, "last_contact_date", "2016-12-31", "on or after tdm1_progression_date"),
        (2, "last_contact_date", "2014-02-01", "on or after advanced_dx_date"),
        (5, "hormone_receptor", "unknown", "positive / negative"),
    ],
)
def test_bad_value_names_file_row_column_value(tmp_path, row, column, value, expected):
    path = write_rows(tmp_path, replace_cell(ROWS, row, column, value))
    with pytest.raises(InputError) as err:
        read_cohort(
            path,
            covariates=["hormone_receptor"],
            categorical_levels={"hormone_receptor": ["positive", "negative"]},
        )
    assert_names(err, path, row, column, value)
    assert expected in str(err.value)
    assert f"patient_id P0{row}" in str(err.value)


DURATION_HEADER = (
    "patient_id,tdm1_line,first_line_pertuzumab,os_months,os_event,pfs2_months,pfs2_event"
)
DURATION_ROWS = [
    "A1,2,yes,30.5,1,6.0,1",
    "A2,2,no,70.25,0,11.5,0",
    "A3,2,no,12,1,4,1",
]


@pytest.mark.parametrize(
    ("row", "column", "value", "expected"),
    [
        (2, "os_event", "2", "0 (censored) or 1 (event)"),
        (3, "pfs2_event", "yes", "0 (censored) or 1 (event)"),
        (1, "os_months", "-1", "months >= 0"),
        (2, "pfs2_months", "abc", "months >= 0"),
        (3, "pfs2_months", "13", "at most os_months"),
    ],
)
def test_bad_duration_names_file_row_column_value(tmp_path, row, column, value, expected):
    rows = replace_cell(DURATION_ROWS, row, column, value, DURATION_HEADER)
    path = write_rows(tmp_path, rows, DURATION_HEADER)
    with pytest.raises(InputError) as err:
        read_cohort(path)
    assert_names(err, path, row, column, value)
    assert expected in str(err.value)


def test_duplicate_patient_id(tmp_path):
    rows = replace_cell(ROWS, 4, "patient_id", "P02")
    path = write_rows(tmp_path, rows)
    with pytest.raises(InputError) as err:
        read_cohort(path)
    assert_names(err, path, 4, "patient_id", "P02")
    assert "also in row 2" in str(err.value)


def test_missing_file(tmp_path):
    path = tmp_path / "nope.csv"
    with pytest.raises(InputError) as err:
        read_cohort(path)
    assert str(path) in str(err.value) and "existing" in str(err.value)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "header row"),
        ((HEADER + "\n").encode(), "at least one patient row"),
        (b"patient_id,tdm1_line\n\xe9\xff,2\n", "UTF-8"),
        (HEADER.replace(",", ";").encode() + b"\n" + ROWS[0].replace(",", ";").encode(), "comma"),
    ],
)
def test_unreadable_or_empty_file(tmp_path, content, expected):
    path = tmp_path / "cohort.csv"
    path.write_bytes(content)
    with pytest.raises(InputError) as err:
        read_cohort(path)
    assert str(path) in str(err.value)
    assert expected in str(err.value)


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(InputError) as err:
        read_cohort(tmp_path)
    assert "not a folder" in str(err.value)


def test_missing_column_suggests_close_name(tmp_path):
    path = write_rows(tmp_path, header=HEADER.replace("tdm1_line", "tdm1_lines"))
    with pytest.raises(InputError) as err:
        read_cohort(path)
    assert_names(err, path, None, "tdm1_line", None)
    assert "Did you mean 'tdm1_lines'" in str(err.value)


def test_missing_endpoint_column_names_the_form(tmp_path):
    header = HEADER.replace("last_contact_date", "last_contact")
    path = write_rows(tmp_path, header=header)
    with pytest.raises(InputError) as err:
        read_cohort(path)
    assert_names(err, path, None, "last_contact_date", None)
    assert "Did you mean 'last_contact'" in str(err.value)
    assert "os_months" in str(err.value)  # the other form is named


def test_group_column_missing_and_empty_level(tmp_path):
    path = write_rows(tmp_path)
    with pytest.raises(InputError) as err:
        read_cohort(path, group="first_line_pertuzumb")
    assert_names(err, path, None, "first_line_pertuzumb", None)
    assert "survival.group" in str(err.value)
    rows = [replace_cell(ROWS, i, "first_line_pertuzumab", "no")[i - 1] for i in range(1, 6)]
    path = write_rows(tmp_path, rows)
    with pytest.raises(InputError) as err:
        read_cohort(path)
    assert_names(err, path, None, "first_line_pertuzumab", "yes")
    assert "at least one patient" in str(err.value)


def test_other_group_column_values_must_be_levels(tmp_path):
    path = write_rows(tmp_path)
    cohort = read_cohort(path, group="hormone_receptor", group_levels=["positive", "negative"])
    assert cohort["hormone_receptor"].tolist()[:2] == ["positive", "negative"]
    with pytest.raises(InputError) as err:
        read_cohort(path, group="hormone_receptor", group_levels=["positive", "equivocal"])
    assert_names(err, path, 2, "hormone_receptor", "negative")


def test_covariate_named_in_config_missing(tmp_path):
    path = write_rows(tmp_path)
    with pytest.raises(InputError) as err:
        read_cohort(path, covariates=["hormone_receptor", "ECOG_ps"])
    assert_names(err, path, None, "ECOG_ps", None)
    assert "survival.covariates" in str(err.value)


def test_all_censored_endpoint(tmp_path):
    rows = [replace_cell(ROWS, i, "vital_status", "alive")[i - 1] for i in range(1, 6)]
    path = write_rows(tmp_path, rows)
    with pytest.raises(InputError) as err:
        read_cohort(path)
    assert_names(err, path, None, "vital_status", None)
    assert "OS event" in str(err.value)
    rows = [
        replace_cell(DURATION_ROWS, i, "pfs2_event", "0", DURATION_HEADER)[i - 1] for i in (1, 2, 3)
    ]
    path = write_rows(tmp_path, rows, DURATION_HEADER)
    with pytest.raises(InputError) as err:
        read_cohort(path)
    assert_names(err, path, None, "pfs2_event", None)


def test_derive_endpoints_on_a_frame():
    frame = pd.DataFrame(
        {
            "advanced_dx_date": ["2015-01-01"],
            "tdm1_start_date": ["2016-01-01"],
            "tdm1_progression_date": [""],
            "last_contact_date": ["2016-01-31"],
            "vital_status": ["dead"],
        }
    )
    out = derive_endpoints(frame, "frame")
    assert out["pfs2_months"].iloc[0] == pytest.approx(30 / 30.4375)
    assert out["pfs2_event"].iloc[0] == 1  # death without progression


# --- identifiers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "column",
    [
        "Name",
        "patient_name",
        "Surname",
        "First Name",
        "cognome",
        "email",
        "Phone number",
        "fax",
        "codice_fiscale",
        "SSN",
        "date_of_birth",
        "DOB",
        "DateOfBirth",
        "MRN",
        "medical_record_number",
        "zip",
        "postcode",
        "city",
        "home_address",
        "ip_address",
        "website_url",
        "photo",
        "health_plan_id",
        "device_serial",
    ],
)
def test_identifier_columns_are_refused(tmp_path, column):
    header = HEADER + "," + column
    rows = [r + ",x" for r in ROWS]
    path = write_rows(tmp_path, rows, header)
    with pytest.raises(InputError) as err:
        read_cohort(path)
    assert_names(err, path, None, column, None)
    assert "study code" in str(err.value) and "outside the project" in str(err.value)


@pytest.mark.parametrize(
    "column",
    [
        "advanced_dx_date",
        "last_contact_date",
        "tdm1_start_date",
        "birth_year",
        "drug_name",
        "cell_line",
        "plate_id",
        "centre",
        "image_id",
        "hormone_receptor",
    ],
)
def test_study_columns_are_not_identifiers(column):
    assert identifier_column_kind(column) is None
    check_identifier_columns([column], "f.csv")


@pytest.mark.parametrize(
    "value",
    [
        "mario.rossi@example.com",
        "+39 333 1234567",
        "333-123-4567",
        "RSSMRA85T10A562S",
        "123-45-6789",
        "Mario Rossi",
        "ROSSI MARIO",
        "1985-03-12",
    ],
)
def test_identifying_patient_ids_are_refused_and_masked(tmp_path, value):
    rows = replace_cell(ROWS, 3, "patient_id", value)
    path = write_rows(tmp_path, rows)
    with pytest.raises(InputError) as err:
        read_cohort(path)
    text = str(err.value)
    assert_names(err, path, 3, "patient_id", None)
    assert value not in text  # never echoed into logs
    assert "pseudonymous study code" in text


@pytest.mark.parametrize("value", ["SPH-0001", "P001", "12", "pt_17", "2015-0001-03", "SITE3-017"])
def test_pseudonymous_ids_pass(value):
    assert identifier_value_kind(value) is None
    check_pseudonymous_ids([value], "f.csv")
