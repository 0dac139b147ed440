"""Clinical exports read as they come (issue 17, item 3): cohort_format and REDCap.

Every export here is the demo cohort (or a hand-made one) written the way a
hospital spreadsheet or REDCap writes it; read with the documented
``cohort_format`` it must give exactly the table the plain CSV gives.
"""

import datetime as dt
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
import yaml

from sepher.errors import InputError
from sepher.io.cohort import cohort_columns, read_cohort
from sepher.io.cohort_format import parse_cohort_format, read_redcap_dictionary

PROJECT = Path(__file__).resolve().parents[1]
DEMO_CSV = PROJECT / "resources" / "demo" / "cohort.csv"
COVARIATES = [
    "age_at_advanced_dx",
    "hormone_receptor",
    "visceral_mets",
    "brain_mets",
    "de_novo",
    "n_metastatic_sites",
    "ecog",
    "prior_adjuvant_trastuzumab",
]
DATES = ["advanced_dx_date", "tdm1_start_date", "tdm1_progression_date", "last_contact_date"]
YES_NO = ["first_line_pertuzumab", "visceral_mets", "brain_mets", "de_novo"]
YES_NO += ["prior_adjuvant_trastuzumab"]

#: The Italian export's column names (target: source).
ITALIAN = {
    "patient_id": "codice_paziente",
    "tdm1_line": "linea_tdm1",
    "first_line_pertuzumab": "pertuzumab_prima_linea",
    "advanced_dx_date": "data_diagnosi_avanzata",
    "tdm1_start_date": "data_inizio_tdm1",
    "tdm1_progression_date": "data_progressione_tdm1",
    "last_contact_date": "data_ultimo_contatto",
    "vital_status": "stato_in_vita",
    "age_at_advanced_dx": "eta_diagnosi_avanzata",
    "hormone_receptor": "recettori_ormonali",
    "visceral_mets": "metastasi_viscerali",
    "brain_mets": "metastasi_cerebrali",
    "de_novo": "de_novo",
    "n_metastatic_sites": "numero_sedi_metastatiche",
    "ecog": "ecog",
    "prior_adjuvant_trastuzumab": "trastuzumab_adiuvante",
    "best_response": "migliore_risposta",
}

#: The config that reads the Italian export (as reported for the README), parsed as
#: Snakemake parses config.yaml: bare yes / no are YAML booleans.
ITALIAN_CONFIG = """
cohort_format:
  sep: ";"
  decimal: ","
  date_format: "%d/%m/%Y"
  sheet: Coorte
  columns:
    codice_paziente: patient_id
    linea_tdm1: tdm1_line
    pertuzumab_prima_linea: first_line_pertuzumab
    data_diagnosi_avanzata: advanced_dx_date
    data_inizio_tdm1: tdm1_start_date
    data_progressione_tdm1: tdm1_progression_date
    data_ultimo_contatto: last_contact_date
    stato_in_vita: vital_status
    eta_diagnosi_avanzata: age_at_advanced_dx
    recettori_ormonali: hormone_receptor
    metastasi_viscerali: visceral_mets
    metastasi_cerebrali: brain_mets
    numero_sedi_metastatiche: n_metastatic_sites
    trastuzumab_adiuvante: prior_adjuvant_trastuzumab
    migliore_risposta: best_response
  values:
    first_line_pertuzumab: {si: yes}
    visceral_mets: {si: yes}
    brain_mets: {si: yes}
    de_novo: {si: yes}
    prior_adjuvant_trastuzumab: {si: yes}
    vital_status: {vivo: alive, deceduto: dead}
    hormone_receptor: {positivi: positive, negativi: negative}
    best_response: {RC: CR, RP: PR, MS: SD, PD: PD, NV: NE}
"""

#: The config that reads the hand-made REDCap export (tests/data/cohort_exports).
REDCAP_CONFIG = """
cohort: redcap_export.csv
redcap_dictionary: redcap_dictionary.csv
cohort_format:
  columns:
    record_id: patient_id
    linea_tdm1: tdm1_line
    pertuzumab_1l: first_line_pertuzumab
    data_diagnosi_avanzata: advanced_dx_date
    data_inizio_tdm1: tdm1_start_date
    data_progressione: tdm1_progression_date
    data_ultimo_contatto: last_contact_date
    stato_vitale: vital_status
    eta_diagnosi: age_at_advanced_dx
    recettori_ormonali: hormone_receptor
    sedi_metastasi___1: visceral_mets
    sedi_metastasi___2: brain_mets
    migliore_risposta: best_response
    peso_kg: weight_kg
  values:
    first_line_pertuzumab: {Sì: yes}
    vital_status: {Vivo: alive, Deceduto: dead}
    hormone_receptor: {Positivi: positive, Negativi: negative}
    ecog:
      0 - Asintomatica: 0
      1 - Sintomatica, ambulatoriale: 1
      2 - A letto < 50% del giorno: 2
      3 - A letto > 50% del giorno: 3
    best_response:
      Risposta completa: CR
      Risposta parziale: PR
      Malattia stabile: SD
      Progressione: PD
      Non valutabile: NE
"""

#: The hand-made REDCap export written as the plain cohort CSV (by hand, from the
#: dictionary's codes: radio 1 = Positivi, checkbox ___1 = visceral, ___2 = brain ...).
REDCAP_AS_PLAIN = """\
patient_id,tdm1_line,first_line_pertuzumab,advanced_dx_date,tdm1_start_date,\
tdm1_progression_date,last_contact_date,vital_status,age_at_advanced_dx,hormone_receptor,\
visceral_mets,brain_mets,ecog,best_response,weight_kg
SPH-0101,2,yes,2015-01-12,2016-02-03,2016-09-20,2018-03-01,dead,54,positive,yes,no,0,PR,61.5
SPH-0102,2,no,2014-06-30,2015-04-15,,2017-11-30,alive,47,negative,no,yes,1,SD,72.0
SPH-0103,3,yes,2016-03-08,2017-09-01,2018-02-14,2019-06-10,alive,63,positive,yes,yes,,PD,58.3
SPH-0104,2,no,2013-11-21,2014-08-05,2015-01-30,2016-05-17,dead,39,negative,no,no,0,CR,66.8
SPH-0105,2,yes,2017-05-02,2018-01-10,,2018-07-22,dead,71,positive,yes,no,2,NE,
SPH-0106,2,no,2012-09-14,2013-10-01,2014-06-11,2016-12-20,alive,58,positive,no,no,1,PR,80.1
"""
REDCAP_COVARIATES = ["age_at_advanced_dx", "hormone_receptor", "visceral_mets", "brain_mets"]
REDCAP_COVARIATES += ["ecog", "weight_kg"]


def italian_format():
    return yaml.safe_load(ITALIAN_CONFIG)["cohort_format"]


def redcap_config():
    return yaml.safe_load(REDCAP_CONFIG)


@pytest.fixture(scope="session")
def exports(reference_data):
    """tests/data/cohort_exports (the hand-made REDCap export and its data dictionary)."""
    reference_data("cohort_exports/redcap_dictionary.csv")
    return reference_data("cohort_exports/redcap_export.csv").parent


@pytest.fixture(scope="module")
def demo():
    return read_cohort(DEMO_CSV, covariates=COVARIATES)


def italian_frame() -> pd.DataFrame:
    """The demo cohort as an Italian hospital sheet: Italian names and words, DD/MM/YYYY."""
    df = pd.read_csv(DEMO_CSV, dtype=str, keep_default_na=False)
    for column in DATES:
        dates = pd.to_datetime(df[column], format="%Y-%m-%d")
        df[column] = dates.dt.strftime("%d/%m/%Y").fillna("")
    for column in YES_NO:
        df[column] = df[column].map({"yes": "si", "no": "no"})
    df["vital_status"] = df["vital_status"].map({"alive": "Vivo", "dead": "Deceduto"})
    df["hormone_receptor"] = df["hormone_receptor"].map(
        {"positive": "Positivi", "negative": "Negativi"}
    )
    words = {"CR": "RC", "PR": "RP", "SD": "MS", "PD": "PD", "NE": "NV", "": ""}
    df["best_response"] = df["best_response"].map(words)
    return df.rename(columns=ITALIAN)


def write_italian_csv(tmp_path, frame=None, name="coorte.csv"):
    path = tmp_path / name
    (italian_frame() if frame is None else frame).to_csv(path, sep=";", index=False)
    return path


def write_italian_xlsx(tmp_path):
    """The Italian sheet as Excel writes it: typed dates and numbers, blank cells empty.

    Dates of odd rows are date cells, of even rows text (DD/MM/YYYY), as in sheets
    typed by hand; a first sheet of notes makes `sheet: Coorte` necessary.
    """
    df = italian_frame()
    book = openpyxl.Workbook()
    book.active.title = "Note"
    book.active.append(["Estrazione dal registro oncologico"])
    sheet = book.create_sheet("Coorte")
    sheet.append(list(df.columns))
    dates = {ITALIAN[c] for c in DATES}
    numbers = {ITALIAN[c] for c in ("tdm1_line", "age_at_advanced_dx", "n_metastatic_sites")}
    numbers.add("ecog")
    for i, row in enumerate(df.itertuples(index=False)):
        cells = []
        for column, value in zip(df.columns, row, strict=True):
            if value == "":
                cells.append(None)
            elif column in dates and i % 2 == 0:
                cells.append(dt.datetime.strptime(value, "%d/%m/%Y"))
            elif column in numbers:
                cells.append(int(value))
            else:
                cells.append(value)
        sheet.append(cells)
    path = tmp_path / "coorte.xlsx"
    book.save(path)
    return path


# --- the Italian export ---------------------------------------------------------------------


def test_italian_csv_reads_as_the_demo_cohort(tmp_path, demo):
    path = write_italian_csv(tmp_path)
    cohort = read_cohort(path, covariates=COVARIATES, cohort_format=italian_format())
    pd.testing.assert_frame_equal(cohort, demo)


def test_italian_xlsx_reads_as_the_demo_cohort(tmp_path, demo):
    path = write_italian_xlsx(tmp_path)
    cohort = read_cohort(path, covariates=COVARIATES, cohort_format=italian_format())
    pd.testing.assert_frame_equal(cohort, demo)


def test_comma_decimals_read_as_dot_decimals(tmp_path, demo):
    # the duration form of the demo cohort, written once with '.' and once with ','
    durations = demo[["patient_id", "tdm1_line", "first_line_pertuzumab", "age_at_advanced_dx"]]
    durations = durations.copy()
    for column in ("os_months", "os_event", "pfs2_months", "pfs2_event", "entry_months"):
        durations[column] = demo[column]
    dot = tmp_path / "dot.csv"
    durations.to_csv(dot, index=False, float_format="%.10g")
    comma = tmp_path / "comma.csv"
    durations.to_csv(comma, index=False, sep=";", decimal=",", float_format="%.10g")
    assert "," in comma.read_text().splitlines()[1]
    fmt = {"sep": ";", "decimal": ","}
    expected = read_cohort(dot, covariates=["age_at_advanced_dx"])
    got = read_cohort(comma, covariates=["age_at_advanced_dx"], cohort_format=fmt)
    pd.testing.assert_frame_equal(got, expected)


def test_columns_of_the_mapped_header(tmp_path):
    path = write_italian_csv(tmp_path)
    columns = cohort_columns(path, cohort_format=italian_format())
    assert columns == list(pd.read_csv(DEMO_CSV, nrows=0).columns)
    assert "best_response" in columns and "migliore_risposta" not in columns
    assert cohort_columns(DEMO_CSV) == columns
    xlsx = write_italian_xlsx(tmp_path)
    assert cohort_columns(xlsx, cohort_format=italian_format()) == columns


def test_default_format_is_todays_read(tmp_path):
    # the schema's defaults (what the workflow passes for a plain CSV) change nothing,
    # messages included
    defaults = {
        "sep": ",",
        "decimal": ".",
        "date_format": "%Y-%m-%d",
        "sheet": 0,
        "encoding": "utf-8-sig",
        "columns": {},
        "values": {},
    }
    path = tmp_path / "cohort.csv"
    path.write_text(DEMO_CSV.read_text().replace(",", ";"))
    messages = []
    for fmt in (None, defaults, {}):
        with pytest.raises(InputError) as err:
            read_cohort(path, cohort_format=fmt)
        messages.append(str(err.value))
    assert messages[0] == messages[1] == messages[2]
    assert messages[0].endswith("save the file as comma-separated CSV.")


# --- errors: the message names the original file, row, column, value and the fixing key -------


def test_unmapped_value_names_the_values_key(tmp_path):
    fmt = italian_format()
    del fmt["values"]["first_line_pertuzumab"]
    path = write_italian_csv(tmp_path)
    with pytest.raises(InputError) as err:
        read_cohort(path, cohort_format=fmt)
    text = str(err.value)
    # demo row 2 (SPH-0002) is the first with first_line_pertuzumab yes
    assert text.startswith(f"Invalid input: file {path}, row 2 (patient_id SPH-0002), ")
    assert "column 'pertuzumab_prima_linea': value 'si'; expected yes or no." in text
    assert "Map it in config: cohort_format: values: first_line_pertuzumab: {'si': " in text


def test_unmapped_value_of_a_categorical_covariate_in_xlsx(tmp_path):
    fmt = italian_format()
    del fmt["values"]["hormone_receptor"]
    path = write_italian_xlsx(tmp_path)
    with pytest.raises(InputError) as err:
        read_cohort(
            path,
            cohort_format=fmt,
            covariates=["hormone_receptor"],
            categorical_levels={"hormone_receptor": ["positive", "negative"]},
        )
    text = str(err.value)
    assert f"file {path}, sheet 'Coorte', row 1 (patient_id SPH-0001)" in text
    assert "column 'recettori_ormonali': value 'Negativi'" in text
    assert "cohort_format: values: hormone_receptor: {'Negativi': " in text


def test_value_mapped_to_a_wrong_target_names_the_map(tmp_path):
    fmt = italian_format()
    fmt["values"]["vital_status"]["deceduto"] = "deceased"
    with pytest.raises(InputError) as err:
        read_cohort(write_italian_csv(tmp_path), cohort_format=fmt)
    text = str(err.value)
    assert "column 'stato_in_vita': value 'Deceduto'; expected alive or dead." in text
    assert "cohort_format: values: vital_status maps 'Deceduto' to 'deceased'" in text


def test_unmapped_column_names_the_columns_key(tmp_path):
    fmt = italian_format()
    del fmt["columns"]["data_ultimo_contatto"]
    path = write_italian_csv(tmp_path)
    with pytest.raises(InputError) as err:
        read_cohort(path, cohort_format=fmt)
    text = str(err.value)
    assert text.startswith(
        f"Invalid input: file {path}, column 'last_contact_date'; expected a column named "
        "'last_contact_date' (the date form needs"
    )
    # a close name among the file's unmapped columns is named ...
    assert "cohort_format: columns: {'data_ultimo_contatto': 'last_contact_date'}" in text
    fmt = italian_format()
    del fmt["columns"]["data_diagnosi_avanzata"]
    with pytest.raises(InputError) as err:
        read_cohort(path, cohort_format=fmt)
    # ... else the unmapped columns are listed, nothing is guessed
    assert str(err.value).endswith(
        "cohort_format: columns: {'<column in the file>': 'advanced_dx_date'} (columns not "
        "mapped: data_diagnosi_avanzata, de_novo, ecog)."
    )


def test_covariate_column_not_mapped(tmp_path):
    fmt = italian_format()
    with pytest.raises(InputError) as err:
        read_cohort(write_italian_csv(tmp_path), cohort_format=fmt, covariates=["ecog_ps"])
    text = str(err.value)
    assert "column 'ecog_ps'" in text and "survival.covariates" in text
    assert "cohort_format: columns: {'ecog': 'ecog_ps'}" in text


def test_date_not_in_date_format(tmp_path):
    frame = italian_frame()
    frame.loc[2, ITALIAN["tdm1_start_date"]] = "2016-02-10"  # ISO among DD/MM/YYYY
    path = write_italian_csv(tmp_path, frame)
    with pytest.raises(InputError) as err:
        read_cohort(path, cohort_format=italian_format())
    assert str(err.value) == (
        f"Invalid input: file {path}, row 3 (patient_id SPH-0003), column 'data_inizio_tdm1': "
        "value '2016-02-10'; expected a date written %d/%m/%Y (cohort_format: date_format), "
        "e.g. '15/03/2016'."
    )


def test_dates_without_date_format_name_the_key(tmp_path):
    fmt = italian_format()
    del fmt["date_format"]
    with pytest.raises(InputError) as err:
        read_cohort(write_italian_csv(tmp_path), cohort_format=fmt)
    text = str(err.value)
    assert "column 'data_diagnosi_avanzata': value '08/02/2017'; expected an ISO 8601" in text
    assert "cohort_format: date_format (e.g. '%d/%m/%Y')" in text


def test_dot_decimal_in_a_comma_decimal_file_is_refused(tmp_path):
    frame = italian_frame()
    frame.loc[4, ITALIAN["age_at_advanced_dx"]] = "1.234"
    path = write_italian_csv(tmp_path, frame)
    with pytest.raises(InputError) as err:
        read_cohort(path, cohort_format=italian_format(), covariates=["age_at_advanced_dx"])
    text = str(err.value)
    assert "row 5 (patient_id SPH-0005), column 'eta_diagnosi_avanzata': value '1.234'" in text
    assert "decimal mark ','" in text


def test_identifier_column_renamed_away_is_still_refused(tmp_path):
    frame = italian_frame()
    frame.insert(1, "codice_fiscale", "RSSMRA85T10A562S")
    fmt = italian_format()
    fmt["columns"]["codice_fiscale"] = "notes"
    path = write_italian_csv(tmp_path, frame)
    with pytest.raises(InputError) as err:
        read_cohort(path, cohort_format=fmt)
    text = str(err.value)
    assert "column 'codice_fiscale'; expected no direct patient identifiers" in text
    assert "tax code" in text


def test_harmless_column_renamed_to_an_identifier_name_is_refused(tmp_path):
    fmt = italian_format()
    fmt["columns"]["eta_diagnosi_avanzata"] = "date_of_birth"
    with pytest.raises(InputError) as err:
        read_cohort(write_italian_csv(tmp_path), cohort_format=fmt)
    text = str(err.value)
    assert "column 'date_of_birth'; expected no direct patient identifiers" in text
    assert "'eta_diagnosi_avanzata' is renamed to 'date_of_birth' by cohort_format" in text


@pytest.mark.parametrize(
    ("change", "column", "expected"),
    [
        ({"columns": {"data_diagnosi": "advanced_dx_date"}}, "columns: data_diagnosi", "to rename"),
        ({"values": {"stato_in_vita": {"vivo": "alive"}}}, "values: stato_in_vita", "TARGET"),
        ({"date_format": "%d/%m"}, "date_format", "day, month and year"),
        ({"decimal": ";"}, "decimal", "'.' or ','"),
        ({"sheet": "Coort"}, "sheet", "Did you mean 'Coorte'"),
        ({"date_fromat": "%d/%m/%Y"}, "date_fromat", "Did you mean 'date_format'"),
    ],
)
def test_bad_cohort_format_names_the_key(tmp_path, change, column, expected):
    fmt = italian_format()
    fmt["columns"].pop("data_diagnosi_avanzata") if "columns" in change else None
    for key, value in change.items():
        if isinstance(value, dict):
            fmt[key].update(value)
        else:
            fmt[key] = value
    path = write_italian_xlsx(tmp_path) if "sheet" in change else write_italian_csv(tmp_path)
    with pytest.raises(InputError) as err:
        read_cohort(path, cohort_format=fmt)
    text = str(err.value)
    assert f"column 'cohort_format: {column}'" in text
    assert expected.lower() in text.lower()


def test_value_map_keys_collide_after_case_folding():
    with pytest.raises(InputError) as err:
        parse_cohort_format({"values": {"vital_status": {"Vivo": "alive", "vivo": "dead"}}})
    assert "cohort_format: values: vital_status" in str(err.value)


# --- REDCap ---------------------------------------------------------------------------------


def test_redcap_dictionary_is_read(exports):
    fields = read_redcap_dictionary(exports / "redcap_dictionary.csv")
    assert next(iter(fields)) == "record_id"
    assert fields["ecog"].choices["1"] == "1 - Sintomatica, ambulatoriale"  # comma in a label
    assert fields["sedi_metastasi"].type == "checkbox"
    assert fields["iniziali"].identifier
    assert fields["data_progressione"].validation == "date_dmy"


def test_hand_made_redcap_export_reads_as_its_plain_table(tmp_path, exports):
    config = redcap_config()
    plain = tmp_path / "plain.csv"
    plain.write_text(REDCAP_AS_PLAIN)
    expected = read_cohort(plain, covariates=REDCAP_COVARIATES)
    got = read_cohort(
        exports / config["cohort"],
        covariates=REDCAP_COVARIATES,
        cohort_format=config["cohort_format"],
        redcap_dictionary=exports / config["redcap_dictionary"],
    )
    pd.testing.assert_frame_equal(got, expected)
    columns = cohort_columns(
        exports / config["cohort"],
        cohort_format=config["cohort_format"],
        redcap_dictionary=exports / config["redcap_dictionary"],
    )
    assert "best_response" in columns and "sedi_metastasi___3" in columns
    assert not any(c.endswith("_complete") for c in columns)


def demo_redcap(tmp_path):
    """The demo cohort as a REDCap project: data dictionary and raw export.

    advanced_dx_date is a date_dmy field exported in the field's order
    (DD-MM-YYYY); the other dates are REDCap's default export, YYYY-MM-DD.
    """
    df = pd.read_csv(DEMO_CSV, dtype=str, keep_default_na=False)
    header = (
        '"Variable / Field Name","Form Name","Section Header","Field Type","Field Label",'
        '"Choices, Calculations, OR Slider Labels","Field Note",'
        '"Text Validation Type OR Show Slider Number","Text Validation Min",'
        '"Text Validation Max","Identifier?"'
    )
    radio = {
        "vital_status": ("radio", {"alive": "1", "dead": "2"}),
        "hormone_receptor": ("dropdown", {"positive": "1", "negative": "2"}),
        "best_response": ("radio", {"CR": "1", "PR": "2", "SD": "3", "PD": "4", "NE": "5"}),
        "ecog": ("dropdown", {"0": "0", "1": "1", "2": "2", "3": "3"}),
    }
    rows = ["record_id,baseline,,text,Record ID,,,,,,"]
    export = pd.DataFrame({"record_id": df["patient_id"]})
    for column in df.columns[1:]:
        validation, kind, choices = "", "text", ""
        values = df[column]
        if column in DATES:
            validation = "date_dmy" if column == "advanced_dx_date" else "date_ymd"
            if column == "advanced_dx_date":
                dates = pd.to_datetime(values, format="%Y-%m-%d")
                values = dates.dt.strftime("%d-%m-%Y")
        elif column in YES_NO:
            kind = "yesno"
            values = values.map({"yes": "1", "no": "0"})
        elif column in radio:
            kind, codes = radio[column]
            choices = '"' + " | ".join(f"{c}, {label}" for label, c in codes.items()) + '"'
            values = values.map(lambda v, codes=codes: codes.get(v, v))
        elif column in ("tdm1_line", "age_at_advanced_dx", "n_metastatic_sites"):
            validation = "integer"
        rows.append(f"{column},baseline,,{kind},{column},{choices},,{validation},,,")
        export[column] = values
    export["baseline_complete"] = "2"
    (tmp_path / "dictionary.csv").write_text("\n".join([header, *rows]) + "\n")
    export.to_csv(tmp_path / "export.csv", index=False)
    return tmp_path / "export.csv", tmp_path / "dictionary.csv"


DEMO_REDCAP_FORMAT = {"columns": {"record_id": "patient_id"}}


def test_demo_redcap_export_reads_as_the_demo_cohort(tmp_path, demo):
    export, dictionary = demo_redcap(tmp_path)
    assert "08-02-2017" in export.read_text()  # SPH-0001's advanced_dx_date, DD-MM-YYYY
    cohort = read_cohort(
        export,
        covariates=COVARIATES,
        cohort_format=DEMO_REDCAP_FORMAT,
        redcap_dictionary=dictionary,
    )
    pd.testing.assert_frame_equal(cohort, demo)


def test_redcap_label_not_mapped_names_label_code_and_key(tmp_path, exports):
    config = redcap_config()
    del config["cohort_format"]["values"]["first_line_pertuzumab"]
    export = exports / config["cohort"]
    with pytest.raises(InputError) as err:
        read_cohort(
            export,
            cohort_format=config["cohort_format"],
            redcap_dictionary=exports / config["redcap_dictionary"],
        )
    text = str(err.value)
    assert f"file {export}, row 1 (patient_id SPH-0101), column 'pertuzumab_1l'" in text
    assert "value 'Sì'; expected yes or no." in text
    assert "REDCap code '1' of field 'pertuzumab_1l'" in text
    assert "cohort_format: values: first_line_pertuzumab: {'Sì': " in text


def copy_export(tmp_path, exports, edit):
    """The hand-made export with `edit` applied to its string table."""
    frame = pd.read_csv(exports / "redcap_export.csv", dtype=str, keep_default_na=False)
    frame = edit(frame)
    path = tmp_path / "redcap_export.csv"
    frame.to_csv(path, index=False)
    return path


def read_redcap_copy(path, exports):
    config = redcap_config()
    return read_cohort(
        path,
        cohort_format=config["cohort_format"],
        redcap_dictionary=exports / config["redcap_dictionary"],
    )


def test_redcap_unknown_field_is_refused(tmp_path, exports):
    path = copy_export(tmp_path, exports, lambda f: f.assign(data_ultimo_contato="2019-01-01"))
    with pytest.raises(InputError) as err:
        read_redcap_copy(path, exports)
    text = str(err.value)
    assert f"file {path}, column 'data_ultimo_contato'" in text
    assert "a field of the REDCap data dictionary" in text
    assert "Did you mean 'data_ultimo_contatto'?" in text


def test_redcap_identifier_field_is_refused(tmp_path, exports):
    path = copy_export(tmp_path, exports, lambda f: f.assign(iniziali="M.R."))
    with pytest.raises(InputError) as err:
        read_redcap_copy(path, exports)
    assert "column 'iniziali'" in str(err.value) and "Identifier? = y" in str(err.value)


def test_redcap_several_rows_per_record_are_refused(tmp_path, exports):
    def longitudinal(frame):
        frame.insert(1, "redcap_event_name", "baseline_arm_1")
        follow_up = frame.iloc[[1]].assign(redcap_event_name="follow_up_arm_1")
        return pd.concat([frame, follow_up], ignore_index=True)

    path = copy_export(tmp_path, exports, longitudinal)
    with pytest.raises(InputError) as err:
        read_redcap_copy(path, exports)
    text = str(err.value)
    assert "row 7, column 'record_id': value 'SPH-0102'; expected one row per record" in text
    assert "It is also in row 2. Events: baseline_arm_1, follow_up_arm_1." in text


def test_redcap_repeated_instrument_is_refused(tmp_path, exports):
    def repeating(frame):
        frame["redcap_repeat_instrument"] = ""
        frame["redcap_repeat_instance"] = ""
        extra = frame.iloc[[0]].assign(redcap_repeat_instrument="trattamento")
        return pd.concat([frame, extra.assign(redcap_repeat_instance="2")], ignore_index=True)

    with pytest.raises(InputError) as err:
        read_redcap_copy(copy_export(tmp_path, exports, repeating), exports)
    text = str(err.value)
    assert "row 7, column 'redcap_repeat_instrument': value 'trattamento'" in text
    assert "repeated instruments are not read" in text


def test_redcap_code_not_in_the_choices(tmp_path, exports):
    def bad(frame):
        frame.loc[3, "stato_vitale"] = "3"
        return frame

    with pytest.raises(InputError) as err:
        read_redcap_copy(copy_export(tmp_path, exports, bad), exports)
    text = str(err.value)
    assert "row 4 (record SPH-0104), column 'stato_vitale': value '3'" in text
    assert "1 (Vivo), 2 (Deceduto)" in text


def test_redcap_bad_date(tmp_path, exports):
    def bad(frame):
        frame.loc[1, "data_inizio_tdm1"] = "04/15/2015"
        return frame

    with pytest.raises(InputError) as err:
        read_redcap_copy(copy_export(tmp_path, exports, bad), exports)
    text = str(err.value)
    assert "row 2 (record SPH-0102), column 'data_inizio_tdm1': value '04/15/2015'" in text
    assert "date_dmy" in text and "DD/MM/YYYY" in text
