"""Clinical exports read as they come: CSV / XLSX with local conventions, REDCap.

The cohort reader (:func:`sepher.io.cohort.read_cohort`) validates one exact
table (docs/data-dictionary.md). Exports from a hospital spreadsheet or from
REDCap reach that table through one documented step, configured by
``cohort_format`` (every key optional)::

    cohort_format:
      sep: ";"                 # CSV field separator (default ",")
      decimal: ","             # decimal mark of numbers in text cells (default ".")
      date_format: "%d/%m/%Y"  # strptime format of the dates (default ISO "%Y-%m-%d")
      sheet: Coorte            # XLSX sheet, name or 0-based index (default the first)
      encoding: latin-1        # CSV text encoding (default utf-8-sig)
      columns: {data_diagnosi_avanzata: advanced_dx_date}   # source name: target name
      values:                  # keyed by the TARGET column name
        first_line_pertuzumab: {si: "yes"}

The step, in this order (:func:`apply_cohort_format`):

1. read the file: ``.xlsx`` / ``.xlsm`` with openpyxl (date cells become ISO
   dates, number cells numbers, TRUE/FALSE cells ``TRUE`` / ``FALSE``; the first
   row is the header), anything else as CSV with `sep` and `encoding`. Data rows
   keep the file's numbering (1-based, header excluded) for messages; an XLSX
   file is named with its sheet.
2. with a REDCap data dictionary, read the export through it
   (:func:`read_redcap`): choice codes become their labels, dates become ISO,
   REDCap's own columns are checked and dropped.
3. rename columns by `columns` (``{source: target}``);
4. map values by `values` (``{target column: {source value: target value}}``);
   a source value matches after trimming spaces and ignoring case, as the
   validation compares values; unmapped values pass unchanged;
5. convert the dates of the date columns (``advanced_dx_date``,
   ``tdm1_start_date``, ``tdm1_progression_date``, ``last_contact_date``) from
   `date_format` to ISO ``YYYY-MM-DD`` (cells already typed as dates in the
   file are kept);
6. write numbers of text cells with the decimal mark ``.`` when `decimal` is
   another mark (every column but ``patient_id`` and the date columns).

Then the cohort's usual validation runs unchanged. Nothing is guessed: a
column the analysis needs that no map provides, or a value outside the
expected set, stops with the usual message plus the ``cohort_format`` key
that would fix it, naming the original file, row, column and value
(:meth:`FormattedCohort.explain`).

Identifiers: the column-name check (:mod:`sepher.io.identifiers`) runs on the
file's own column names and again on every renamed column, so a renamed
``codice_fiscale`` is still refused, and so is a harmless column renamed to
an identifier-like name.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sepher.errors import InputError, did_you_mean
from sepher.io.identifiers import check_identifier_columns, identifier_value_kind

#: Date-valued columns of the cohort table (converted with ``date_format``).
DATE_VALUE_COLUMNS = (
    "advanced_dx_date",
    "tdm1_start_date",
    "tdm1_progression_date",
    "last_contact_date",
)
ISO_DATE_FORMAT = "%Y-%m-%d"
#: The cohort table's fixed column names (docs/data-dictionary.md). A file column
#: already named so, or used by the analysis as another variable (group, covariate,
#: response), is never offered as a missing column's misspelling: suggesting that
#: `age_at_advanced_dx` be renamed `advanced_dx_date` would swap two variables.
FIXED_COLUMNS = frozenset(
    {
        "patient_id",
        "tdm1_line",
        "first_line_pertuzumab",
        *DATE_VALUE_COLUMNS,
        "vital_status",
        "os_months",
        "os_event",
        "pfs2_months",
        "pfs2_event",
        "entry_months",
    }
)
DEFAULT_FORMAT = {
    "sep": ",",
    "decimal": ".",
    "date_format": ISO_DATE_FORMAT,
    "sheet": 0,
    "encoding": "utf-8-sig",
    "columns": {},
    "values": {},
}
XLSX_SUFFIXES = (".xlsx", ".xlsm")

#: Expectations of per-cell errors a value map cannot fix (relations between cells,
#: uniqueness, identifiers).
_NOT_A_VALUE_PROBLEM = (
    "on or after",
    "at most",
    "as derived from",
    "unique patient_id",
    "pseudonymous",
    "at least one",
)
_NUMBER_TEMPLATE = r"^\s*[+-]?(\d+({d}\d*)?|{d}\d+)([eE][+-]?\d+)?\s*$"


def _number_pattern(decimal: str) -> re.Pattern:
    return re.compile(_NUMBER_TEMPLATE.format(d=re.escape(decimal)))


_DOT_NUMBER = re.compile(r"^\s*[+-]?\d*\.\d+([eE][+-]?\d+)?\s*$")
_COMMA_NUMBER = re.compile(r"^\s*[+-]?\d*,\d+([eE][+-]?\d+)?\s*$")


def _as_text(value) -> str:
    """A config key or value as the cohort spells it (YAML booleans are yes / no)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _fold(value) -> str:
    """The form values are compared in (trimmed, case-insensitive)."""
    return _as_text(value).strip().casefold()


@dataclass(frozen=True)
class CohortFormat:
    """A checked ``cohort_format`` (see the module docstring).

    Attributes
    ----------
    sep, decimal, date_format, encoding : str
    sheet : int or str
    columns : dict of str to str
        Source column name -> target column name.
    values : dict of str to dict
        Target column name -> {folded source value: target value}; keys are
        trimmed and case-folded (:func:`_fold`).
    """

    sep: str = ","
    decimal: str = "."
    date_format: str = ISO_DATE_FORMAT
    sheet: int | str = 0
    encoding: str = "utf-8-sig"
    columns: dict = field(default_factory=dict)
    values: dict = field(default_factory=dict)

    @property
    def is_default(self) -> bool:
        """True when reading a CSV with this format is today's plain read."""
        return (
            self.sep == ","
            and self.decimal == "."
            and self.date_format == ISO_DATE_FORMAT
            and self.encoding == "utf-8-sig"
            and not self.columns
            and not self.values
        )


def parse_cohort_format(cohort_format: dict | None, file="cohort") -> CohortFormat:
    """Check a ``cohort_format`` mapping and return it as a :class:`CohortFormat`.

    Parameters
    ----------
    cohort_format : dict or None
        The config's ``cohort_format`` (every key optional; None = defaults).
    file : str
        Cohort file named in messages.

    Raises
    ------
    InputError
        Unknown key, or a value of the wrong kind (column ``cohort_format: <key>``).
    """
    given = dict(cohort_format or {})
    file = str(file)

    def bad(key, value, expected, hint=None):
        raise InputError(file, expected, column=f"cohort_format: {key}", value=value, hint=hint)

    for key in given:
        if key not in DEFAULT_FORMAT:
            bad(
                key,
                None,
                "one of the keys " + ", ".join(DEFAULT_FORMAT),
                did_you_mean(str(key), list(DEFAULT_FORMAT)),
            )
    merged = {k: (DEFAULT_FORMAT[k] if given.get(k) is None else given[k]) for k in DEFAULT_FORMAT}
    for key in ("sep", "encoding"):
        if not isinstance(merged[key], str) or not merged[key]:
            bad(key, merged[key], "a non-empty string")
    if merged["decimal"] not in (".", ","):
        bad("decimal", merged["decimal"], "'.' or ','")
    date_format = merged["date_format"]
    probe = _dt.date(2016, 3, 15)
    try:
        round_trip = _dt.datetime.strptime(probe.strftime(date_format), date_format).date()
    except (TypeError, ValueError):
        round_trip = None
    if round_trip != probe:
        bad(
            "date_format",
            date_format,
            "a strptime format that gives day, month and year, e.g. '%d/%m/%Y'",
        )
    sheet = merged["sheet"]
    if isinstance(sheet, bool) or not isinstance(sheet, int | str) or sheet == "":
        bad("sheet", sheet, "a sheet name or a 0-based sheet index")
    columns = merged["columns"]
    if not isinstance(columns, dict):
        bad("columns", columns, "a map {column in the file: column name of the study}")
    columns = {str(k).strip(): str(v).strip() for k, v in columns.items()}
    for source, target in columns.items():
        if not target:
            bad(f"columns: {source}", target, "a target column name")
    targets = list(columns.values())
    for target in targets:
        if targets.count(target) > 1:
            sources = [s for s, t in columns.items() if t == target]
            bad(
                "columns",
                target,
                "one source column per target column",
                f"Columns {', '.join(repr(s) for s in sources)} are all mapped to it.",
            )
    values = merged["values"]
    if not isinstance(values, dict):
        bad("values", values, "a map {target column: {value in the file: value}}")
    folded_values = {}
    for column, mapping in values.items():
        column = str(column).strip()
        if not isinstance(mapping, dict):
            bad(f"values: {column}", mapping, "a map {value in the file: value}")
        folded = {}
        for source, target in mapping.items():
            key = _fold(source)
            target = _as_text(target).strip()
            if key in folded and folded[key] != target:
                bad(
                    f"values: {column}",
                    _as_text(source),
                    "one target per source value (source values are compared trimmed and "
                    "ignoring case)",
                    f"It is mapped to both '{folded[key]}' and '{target}'.",
                )
            folded[key] = target
        folded_values[column] = folded
    return CohortFormat(
        sep=merged["sep"],
        decimal=merged["decimal"],
        date_format=date_format,
        sheet=sheet,
        encoding=merged["encoding"],
        columns=columns,
        values=folded_values,
    )


# --- reading the file ------------------------------------------------------------------------


@dataclass
class CohortSource:
    """A cohort file as read, before any mapping.

    Attributes
    ----------
    file : str
        Label for messages: the path, and ``, sheet '<name>'`` for XLSX.
    frame : DataFrame
        String cells (blank = ""), columns as in the file (trimmed), index =
        1-based data row number - 1 (blank rows dropped keep their numbers).
    typed : DataFrame of bool
        Cells the file typed itself (XLSX date / number / boolean cells, REDCap
        date and number fields): kept as read by the date and decimal steps.
    codes : DataFrame or None
        REDCap export: the raw codes of the fields turned into labels.
    exempt : tuple of str
        Source columns exempt from the identifier column-name check (REDCap's
        ``record_id``, whose values are checked as patient_id values).
    """

    file: str
    frame: pd.DataFrame
    typed: pd.DataFrame
    codes: pd.DataFrame | None = None
    exempt: tuple = ()


def _drop_blank_rows(frame: pd.DataFrame, file: str, what: str) -> pd.DataFrame:
    frame = frame.fillna("")
    frame = frame.loc[~(frame.apply(lambda col: col.str.strip() == "")).all(axis=1)]
    if frame.empty:
        raise InputError(file, what)
    return frame


def _check_exists(path, file, what, key="cohort"):
    p = Path(path)
    role = "cohort" if key == "cohort" else "REDCap data dictionary"
    if not p.exists():
        raise InputError(file, f"an existing {role} {what} file", hint=f"Check the `{key}` path.")
    if p.is_dir():
        raise InputError(file, f"a {role} {what} file, not a folder")


def read_csv_frame(
    path, sep=",", encoding="utf-8-sig", configured=False, header_only=False, key="cohort"
) -> tuple[pd.DataFrame, str]:
    """A CSV file as string cells (today's plain read when `configured` is False).

    Parameters
    ----------
    path : path
    sep, encoding : str
        Field separator and text encoding.
    configured : bool
        True when a ``cohort_format`` is in use: messages then name its keys.
    header_only : bool
        Read the header only (no blank-row check).
    key : str
        Config key of the file ("cohort" or "redcap_dictionary"), for messages.

    Returns
    -------
    (DataFrame, str)
        Cells as strings, columns trimmed, all-blank rows dropped (index keeps
        the file's data row numbers - 1); and the file name for messages.
    """
    file = str(path)
    _check_exists(path, file, "CSV", key)
    rows = "one row per patient" if key == "cohort" else "one row per field"
    try:
        raw = pd.read_csv(
            path,
            sep=sep,
            dtype=str,
            keep_default_na=False,
            encoding=encoding,
            skip_blank_lines=False,
            nrows=0 if header_only else None,
            engine="python" if len(sep) > 1 else "c",
        )
    except pd.errors.EmptyDataError:
        raise InputError(file, f"a CSV file with a header row and {rows}") from None
    except LookupError:
        raise InputError(
            file,
            "a text encoding Python knows (e.g. utf-8-sig, latin-1, cp1252)",
            column="cohort_format: encoding",
            value=encoding,
        ) from None
    except UnicodeDecodeError as err:
        if encoding == "utf-8-sig":
            hint = f"The file cannot be decoded ({err.reason})."
            if configured:
                hint += " If it is in another encoding, set cohort_format: encoding (e.g. latin-1)."
            raise InputError(file, "a UTF-8 text CSV file", hint=hint) from None
        raise InputError(
            file,
            f"a text CSV file in the encoding {encoding} (cohort_format: encoding)",
            hint=f"The file cannot be decoded ({err.reason}).",
        ) from None
    except (pd.errors.ParserError, OSError) as err:
        what = "comma-separated" if sep == "," else f"'{sep}'-separated (cohort_format: sep)"
        raise InputError(file, f"a readable {what} CSV file", hint=str(err)) from None
    raw.columns = [str(c).strip() for c in raw.columns]
    if len(raw.columns) == 1:
        header = raw.columns[0]
        if sep == "," and ";" in header:
            hint = "The header looks semicolon-separated; save the file as comma-separated CSV."
            if configured:
                hint = hint[:-1] + " or set cohort_format: sep: ';'."
            raise InputError(file, "comma-separated values", value=header[:60], hint=hint)
        others = [c for c in (";", ",", "\t", "|") if c != sep and c in header]
        if configured and others:
            raise InputError(
                file,
                f"values separated by {sep!r} (cohort_format: sep)",
                value=header[:60],
                hint=f"The header looks separated by {others[0]!r}; set cohort_format: sep: "
                f"{others[0]!r}.",
            )
    if header_only:
        return raw, file
    what = "at least one patient row" if key == "cohort" else "at least one field row"
    raw = _drop_blank_rows(raw, file, f"{what} after the header")
    return raw, file


def _xlsx_cell(value) -> tuple[str, bool]:
    """(text, typed) of an XLSX cell value as openpyxl gives it."""
    if value is None:
        return "", False
    if isinstance(value, bool):
        return ("TRUE" if value else "FALSE"), True
    if isinstance(value, _dt.datetime):
        if value.time() == _dt.time(0, 0):
            return value.date().isoformat(), True
        return value.isoformat(sep=" "), True
    if isinstance(value, _dt.date):
        return value.isoformat(), True
    if isinstance(value, _dt.time):
        return value.isoformat(), True
    if isinstance(value, int):
        return str(value), True
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 1e15:
            return str(int(value)), True
        return repr(value), True
    return str(value), False


def _open_sheet(path, sheet, file):
    import openpyxl  # lazy: only XLSX cohorts pay for it
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, KeyError, OSError, ValueError) as err:
        raise InputError(
            file, "a readable XLSX workbook (Excel 2007 or later)", hint=str(err)
        ) from None
    except Exception as err:  # zipfile.BadZipFile and kin: not a workbook
        raise InputError(
            file, "a readable XLSX workbook (Excel 2007 or later)", hint=str(err)
        ) from None
    names = book.sheetnames
    if isinstance(sheet, int):
        if not 0 <= sheet < len(names):
            book.close()
            raise InputError(
                file,
                f"a sheet index from 0 to {len(names) - 1} (sheets: {', '.join(names)})",
                column="cohort_format: sheet",
                value=sheet,
            )
        name = names[sheet]
    else:
        if sheet not in names:
            book.close()
            raise InputError(
                file,
                f"a sheet of the workbook (sheets: {', '.join(names)})",
                column="cohort_format: sheet",
                value=sheet,
                hint=did_you_mean(sheet, names),
            )
        name = sheet
    return book, name


def read_xlsx_frame(path, sheet=0, header_only=False) -> CohortSource:
    """One sheet of an XLSX workbook as string cells (first row = header).

    Date cells become ISO dates (``YYYY-MM-DD``; a date with a time of day
    keeps it, ``YYYY-MM-DD HH:MM:SS``, and fails as a date), number cells
    their shortest exact decimal form, TRUE/FALSE cells ``TRUE`` / ``FALSE``.
    Columns with neither header nor data are dropped.
    """
    path_text = str(path)
    _check_exists(path, path_text, "XLSX")
    book, name = _open_sheet(path, sheet, path_text)
    file = f"{path_text}, sheet '{name}'"
    try:
        rows = book[name].iter_rows(values_only=True, max_row=1 if header_only else None)
        cells = [[_xlsx_cell(v) for v in row] for row in rows]
    finally:
        book.close()
    if not cells or not any(text.strip() for text, _ in cells[0]):
        raise InputError(file, "a sheet with a header row and one row per patient")
    width = max(len(row) for row in cells)
    cells = [row + [("", False)] * (width - len(row)) for row in cells]
    header = [text.strip() for text, _ in cells[0]]
    body = cells[1:]
    keep = [j for j in range(width) if header[j] or any(row[j][0].strip() for row in body)]
    names = [header[j] or f"Unnamed: {j}" for j in keep]
    for column in names:
        if names.count(column) > 1:
            raise InputError(
                file, "unique column names in the header row", column=column, value=column
            )
    index = pd.RangeIndex(len(body))
    frame = pd.DataFrame(
        {c: [row[j][0] for row in body] for c, j in zip(names, keep, strict=True)},
        index=index,
        columns=names,
        dtype=object,
    )
    typed = pd.DataFrame(
        {c: [row[j][1] for row in body] for c, j in zip(names, keep, strict=True)},
        index=index,
        columns=names,
        dtype=bool,
    )
    if not header_only:
        frame = _drop_blank_rows(
            frame.astype(str), file, "at least one patient row after the header"
        )
        typed = typed.loc[frame.index]
    return CohortSource(file=file, frame=frame, typed=typed)


def read_source(path, fmt: CohortFormat, header_only=False) -> CohortSource:
    """The cohort file (CSV or XLSX) as read, before REDCap labelling and mapping."""
    suffix = Path(str(path)).suffix.lower()
    if suffix == ".xls":
        raise InputError(
            str(path),
            "a .csv or .xlsx cohort file",
            hint="The old Excel .xls format is not read: save the sheet as .xlsx or CSV.",
        )
    if suffix in XLSX_SUFFIXES:
        return read_xlsx_frame(path, fmt.sheet, header_only=header_only)
    frame, file = read_csv_frame(
        path, fmt.sep, fmt.encoding, configured=True, header_only=header_only
    )
    typed = pd.DataFrame(False, index=frame.index, columns=frame.columns)
    return CohortSource(file=file, frame=frame, typed=typed)


# --- REDCap -------------------------------------------------------------------------------------

#: Data dictionary columns (as the Data Dictionary download names them, and as the API's
#: metadata export names them).
_DICTIONARY_COLUMNS = {
    "field": ("Variable / Field Name", "field_name"),
    "form": ("Form Name", "form_name"),
    "type": ("Field Type", "field_type"),
    "choices": ("Choices, Calculations, OR Slider Labels", "select_choices_or_calculations"),
    "validation": (
        "Text Validation Type OR Show Slider Number",
        "text_validation_type_or_show_slider_number",
    ),
    "identifier": ("Identifier?", "identifier"),
}
_CHOICE_TYPES = ("radio", "dropdown")
_FIXED_CHOICES = {"yesno": {"1": "yes", "0": "no"}, "truefalse": {"1": "true", "0": "false"}}
#: date validation -> strptime orders accepted besides ISO (REDCap's export default).
_REDCAP_DATE_ORDERS = {
    "date_ymd": (),
    "date_dmy": ("%d-%m-%Y", "%d/%m/%Y"),
    "date_mdy": ("%m-%d-%Y", "%m/%d/%Y"),
}
_REDCAP_SYSTEM = (
    "redcap_event_name",
    "redcap_repeat_instrument",
    "redcap_repeat_instance",
    "redcap_data_access_group",
    "redcap_survey_identifier",
)


@dataclass
class RedcapField:
    """One data dictionary row: name, form, type, choices (code -> label), validation."""

    name: str
    form: str
    type: str
    choices: dict
    validation: str
    identifier: bool
    row: int


def _choice_code(code: str) -> str:
    """A checkbox choice code as REDCap writes it in a column name (``field___code``)."""
    return re.sub(r"[^a-z0-9_]", "_", code.strip().lower())


def read_redcap_dictionary(path) -> dict:
    """Read a REDCap data dictionary CSV.

    Parameters
    ----------
    path : path
        The Data Dictionary download (columns "Variable / Field Name", "Form Name",
        "Field Type", "Field Label", "Choices, Calculations, OR Slider Labels",
        "Text Validation Type OR Show Slider Number", "Identifier?", ...), or the
        API's metadata export (field_name, form_name, field_type, ...).

    Returns
    -------
    dict of str to RedcapField
        In dictionary order; the first is the record-ID field.

    Raises
    ------
    InputError
        Missing columns, a field named twice, or choices not written
        ``code, label | code, label``.
    """
    frame, file = read_csv_frame(path, key="redcap_dictionary")
    found = {}
    for key, names in _DICTIONARY_COLUMNS.items():
        found[key] = next((n for n in names if n in frame.columns), None)
    for key in ("field", "form", "type"):
        if found[key] is None:
            raise InputError(
                file,
                "a REDCap data dictionary with the columns 'Variable / Field Name', 'Form Name', "
                "'Field Type', 'Choices, Calculations, OR Slider Labels', 'Text Validation Type "
                "OR Show Slider Number' (Project Setup > Data Dictionary > download)",
                column=_DICTIONARY_COLUMNS[key][0],
            )
    fields = {}
    for index, row in frame.iterrows():
        name = row[found["field"]].strip()
        kind = row[found["type"]].strip().lower()
        choices_text = row[found["choices"]].strip() if found["choices"] else ""
        if name in fields:
            raise InputError(
                file,
                "each field once",
                row=int(index) + 1,
                column=found["field"],
                value=name,
                hint=f"It is also in row {fields[name].row}.",
            )
        choices = {}
        if kind in (*_CHOICE_TYPES, "checkbox") and choices_text:
            for item in choices_text.split("|"):
                code, comma, label = item.partition(",")
                if not comma or not code.strip():
                    raise InputError(
                        file,
                        "choices written 'code, label | code, label'",
                        row=int(index) + 1,
                        column=found["choices"],
                        value=choices_text,
                    )
                choices[code.strip()] = label.strip()
        fields[name] = RedcapField(
            name=name,
            form=row[found["form"]].strip(),
            type=kind,
            choices=choices,
            validation=row[found["validation"]].strip().lower() if found["validation"] else "",
            identifier=bool(found["identifier"])
            and row[found["identifier"]].strip().lower() in ("y", "yes", "1"),
            row=int(index) + 1,
        )
    if not fields:
        raise InputError(file, "at least one field in the data dictionary")
    return fields


def _redcap_columns(columns, fields: dict, export: str, dictionary: str) -> dict:
    """Export column -> (field, checkbox code or None), or None for REDCap's own columns."""
    forms = {f.form for f in fields.values()}
    checkboxes = {
        f"{f.name}___{_choice_code(code)}": (f, code)
        for f in fields.values()
        if f.type == "checkbox"
        for code in f.choices
    }
    out = {}
    for column in columns:
        if column in fields and fields[column].type not in ("checkbox", "descriptive"):
            out[column] = (fields[column], None)
        elif column in checkboxes:
            out[column] = checkboxes[column]
        elif (
            column in _REDCAP_SYSTEM
            or (column.endswith("_complete") and column[: -len("_complete")] in forms)
            or (column.endswith("_timestamp") and column[: -len("_timestamp")] in forms)
        ):
            out[column] = None
        else:
            known = [*fields, *checkboxes]
            close = difflib.get_close_matches(column, known, n=1, cutoff=0.6)
            raise InputError(
                export,
                f"a field of the REDCap data dictionary {dictionary} (the raw export has the "
                "field names as its header)",
                column=column,
                hint=(f"Did you mean '{close[0]}'? " if close else "")
                + "Export the data and download the data dictionary from the same project "
                "(raw data, not labels).",
            )
    return out


def _record_rows(frame, record_field, export):
    """Refuse repeated instruments and several rows (events) per record."""
    if "redcap_repeat_instrument" in frame.columns:
        repeated = frame["redcap_repeat_instrument"].str.strip() != ""
        if repeated.any():
            index = frame.index[int(np.flatnonzero(repeated.to_numpy())[0])]
            raise InputError(
                export,
                "one row per record (repeated instruments are not read)",
                row=int(index) + 1,
                column="redcap_repeat_instrument",
                value=frame.at[index, "redcap_repeat_instrument"],
                hint="Export only the non-repeating instruments (one row per patient), or "
                "summarise the repeated data into one field per patient in REDCap first.",
            )
    records = frame[record_field].str.strip()
    duplicated = records.duplicated().to_numpy()
    if duplicated.any():
        i = int(np.flatnonzero(duplicated)[0])
        first = int(frame.index[int(np.flatnonzero((records == records.iloc[i]).to_numpy())[0])])
        where = f"It is also in row {first + 1}."
        if "redcap_event_name" in frame.columns:
            events = frame.loc[records == records.iloc[i], "redcap_event_name"]
            where += " Events: " + ", ".join(events.str.strip()) + "."
        raise InputError(
            export,
            "one row per record (a longitudinal or repeating REDCap project exports one row "
            "per event or instance; the cohort needs one row per patient)",
            row=int(frame.index[i]) + 1,
            column=record_field,
            value=records.iloc[i],
            hint=where + " Export a single event (Data Exports > custom report filtered on "
            "one event) holding every cohort field.",
        )


def _redcap_date(text: str, validation: str) -> str | None:
    """ISO date of a REDCap date cell, or None when it is not one."""
    for fmt in (ISO_DATE_FORMAT, *_REDCAP_DATE_ORDERS[validation]):
        try:
            return _dt.datetime.strptime(text, fmt).date().isoformat()
        except ValueError:
            continue
    return None


def read_redcap(source: CohortSource, dictionary) -> CohortSource:
    """A REDCap raw export read through its data dictionary.

    Parameters
    ----------
    source : CohortSource
        The export as read ("CSV / Microsoft Excel (raw data)": field names as
        the header, choice codes as values).
    dictionary : path
        The project's data dictionary CSV (:func:`read_redcap_dictionary`).

    Returns
    -------
    CohortSource
        Columns = field names (checkbox choices as ``field___code``), values:

        * radio / dropdown: the choice label of each code;
        * yesno: 1 -> ``yes``, 0 -> ``no``; truefalse: 1 -> ``true``, 0 -> ``false``;
        * checkbox (one column per choice, ``field___code``): 1 (ticked) -> ``yes``,
          0 -> ``no``;
        * text validated as a date (date_ymd, date_dmy, date_mdy): ISO
          ``YYYY-MM-DD`` (REDCap's export default); a value written in the
          field's own order (DD-MM-YYYY or DD/MM/YYYY for date_dmy, MM-DD-YYYY or
          MM/DD/YYYY for date_mdy) is read in that order;
        * text validated as a comma-decimal number: the decimal mark becomes ".";
        * anything else (text, notes, calc, slider, sql, datetime) as exported.

        REDCap's own columns (``redcap_event_name``, ``redcap_repeat_instrument``,
        ``redcap_repeat_instance``, ``redcap_data_access_group``,
        ``redcap_survey_identifier``, ``<form>_complete``, ``<form>_timestamp``)
        are checked and dropped. ``codes`` holds the raw codes.

    Raises
    ------
    InputError
        A column that is not a dictionary field, a field the dictionary flags as
        an identifier (``Identifier? = y``), a code not among the field's
        choices, a bad date, repeated instruments, or more than one row per
        record (longitudinal exports).
    """
    fields = read_redcap_dictionary(dictionary)
    dictionary = str(dictionary)
    frame = source.frame
    export = source.file
    record_field = next(iter(fields))
    columns = _redcap_columns(frame.columns, fields, export, dictionary)
    if record_field not in frame.columns:
        raise InputError(
            export,
            f"the record-ID field '{record_field}' (the first field of the data dictionary "
            f"{dictionary})",
            column=record_field,
        )
    for column, spec in columns.items():
        if spec is not None and spec[0].identifier:
            raise InputError(
                export,
                f"no fields the data dictionary {dictionary} flags as identifiers "
                "(Identifier? = y)",
                column=column,
                hint="Export again with the de-identification option that removes tagged "
                "identifier fields; patients are known to the workflow only by a "
                "pseudonymous study code.",
            )
    _record_rows(frame, record_field, export)
    kept = [c for c, spec in columns.items() if spec is not None]
    labelled = frame[kept].copy()
    typed = source.typed[kept].copy()
    codes = frame[kept].copy()

    def fail(index, column, value, expected):
        record = frame.at[index, record_field].strip()
        row = int(index) + 1
        if record and identifier_value_kind(record) is None:
            row = f"{row} (record {record})"
        raise InputError(export, expected, row=row, column=column, value=value)

    for column in kept:
        spec, code = columns[column]
        cells = frame[column].str.strip()
        if code is not None or spec.type in _FIXED_CHOICES or spec.type in _CHOICE_TYPES:
            if code is not None:
                table = {"1": "yes", "0": "no"}
                expected = f"1 (ticked) or 0 for the checkbox choice '{spec.choices[code]}'"
            elif spec.type in _FIXED_CHOICES:
                table = _FIXED_CHOICES[spec.type]
                expected = f"1 or 0 (a {spec.type} field)"
            else:
                table = spec.choices
                expected = (
                    f"one of the codes of field '{spec.name}' in {dictionary}: "
                    + ", ".join(f"{k} ({v})" for k, v in table.items())
                    + " or blank"
                )
            bad = ~cells.isin(list(table)) & (cells != "")
            if bad.any():
                index = frame.index[int(np.flatnonzero(bad.to_numpy())[0])]
                fail(index, column, frame.at[index, column], expected)
            labelled[column] = cells.map(lambda v, t=table: t.get(v, v))
        elif spec.validation in _REDCAP_DATE_ORDERS:
            iso = cells.map(lambda v, s=spec: _redcap_date(v, s.validation) if v else "")
            bad = iso.isna()
            if bad.any():
                index = frame.index[int(np.flatnonzero(bad.to_numpy())[0])]
                orders = ["YYYY-MM-DD"] + [
                    o.replace("%d", "DD").replace("%m", "MM").replace("%Y", "YYYY")
                    for o in _REDCAP_DATE_ORDERS[spec.validation]
                ]
                fail(
                    index,
                    column,
                    frame.at[index, column],
                    f"a date ({spec.validation} field): " + " or ".join(orders),
                )
            labelled[column] = iso
            typed[column] = cells != ""
        elif "comma_decimal" in spec.validation:
            labelled[column] = cells.str.replace(",", ".", regex=False)
            typed[column] = cells != ""
    exempt = (record_field,) if record_field == "record_id" else ()
    return CohortSource(file=export, frame=labelled, typed=typed, codes=codes, exempt=exempt)


# --- mapping ------------------------------------------------------------------------------------


@dataclass
class FormattedCohort:
    """A cohort export mapped to the study's table, and how to explain its errors.

    Attributes
    ----------
    file : str
        Label for messages (path; with the sheet for XLSX).
    table : DataFrame
        Target column names, converted string cells; index = file data row - 1.
    source_of : dict
        Target column -> source column (every column).
    original : DataFrame
        Source values (REDCap: labels) under the target column names.
    mapped : DataFrame
        Values after the value maps, before date and decimal conversion.
    fmt : CohortFormat
    codes : DataFrame or None
        REDCap raw codes under the target column names.
    """

    file: str
    table: pd.DataFrame
    source_of: dict
    original: pd.DataFrame
    mapped: pd.DataFrame
    fmt: CohortFormat
    codes: pd.DataFrame | None = None

    def _index_of(self, row):
        """Frame index of a message row (int, or 'N (patient_id ...)'), None for ranges."""
        if isinstance(row, int | np.integer):
            n = int(row)
        else:
            match = re.match(r"^(\d+)(?: \(|$)", str(row)) if row is not None else None
            if match is None:
                return None
            n = int(match.group(1))
        return n - 1 if (n - 1) in self.table.index else None

    def explain(self, err: InputError, used=()) -> InputError:
        """`err` (raised on :attr:`table`) in terms of the original file.

        The message keeps the validation's text, names the original column and
        value, and adds the ``cohort_format`` key that would fix it. Columns in
        `used` (the analysis's group, covariates, response) are never suggested
        as the source of another column.
        """
        target = err.column
        value = err.value
        hints = [err.hint] if err.hint else []
        source = self.source_of.get(target, target)
        column = source if target in self.source_of else target
        index = self._index_of(err.row)
        if index is not None and target in self.table.columns:
            final = self.table.at[index, target]
            if value is not None and str(value).strip() == final.strip():
                value = self.original.at[index, target]
                hints.extend(self._value_hints(index, target, value, err.expected))
        elif target is not None and target not in self.table.columns and err.row is None:
            hints.append(self._column_hint(target, used))
        if source != target and target in self.source_of:
            hints.append(f"('{source}' is read as '{target}' by cohort_format: columns.)")
        return InputError(
            err.file,
            err.expected,
            row=err.row,
            column=column,
            value=value,
            hint=" ".join(hints) or None,
        )

    def _value_hints(self, index, target, value, expected) -> list:
        if any(text in expected for text in _NOT_A_VALUE_PROBLEM):
            return []
        hints = []
        mapped = self.mapped.at[index, target]
        if self.codes is not None and target in self.codes.columns:
            code = self.codes.at[index, target].strip()
            if code != str(value).strip():
                hints.append(f"(REDCap code '{code}' of field '{self.source_of[target]}'.)")
        if mapped != self.original.at[index, target]:
            hints.append(
                f"cohort_format: values: {target} maps '{str(value).strip()}' to "
                f"'{mapped.strip()}'; map it to one of the expected values."
            )
            return hints
        if target in DATE_VALUE_COLUMNS:
            if self.fmt.date_format == ISO_DATE_FORMAT:
                hints.append(
                    "If the file writes dates another way, give their format in config: "
                    "cohort_format: date_format (e.g. '%d/%m/%Y')."
                )
            return hints
        hints.append(
            f"Map it in config: cohort_format: values: {target}: "
            f"{{'{str(value).strip()}': <one of the expected values>}}."
        )
        if self.fmt.decimal == "." and _COMMA_NUMBER.match(str(value)):
            hints.append("If ',' is the decimal mark, set cohort_format: decimal: ','.")
        return hints

    def _column_hint(self, target, used=()) -> str:
        renamed = set(self.fmt.columns)
        free = [s for t, s in self.source_of.items() if s == t and s not in renamed]
        taken = FIXED_COLUMNS | set(used)
        candidates = [s for s in free if s not in taken]
        close = difflib.get_close_matches(target, candidates, n=1, cutoff=0.5)
        if close:
            return f"Map it in config: cohort_format: columns: {{'{close[0]}': '{target}'}}."
        listed = ", ".join(candidates[:12]) + (", ..." if len(candidates) > 12 else "")
        return (
            f"Map the file's column to it in config: cohort_format: columns: "
            f"{{'<column in the file>': '{target}'}} (columns not mapped: {listed or 'none'})."
        )


def _row_label(table: pd.DataFrame, index) -> int | str:
    row = int(index) + 1
    if "patient_id" in table.columns:
        pid = str(table.at[index, "patient_id"]).strip()
        if pid and identifier_value_kind(pid) is None:
            return f"{row} (patient_id {pid})"
    return row


def check_mapped_identifiers(source: CohortSource, fmt: CohortFormat) -> None:
    """Refuse identifier-like column names in the file and after renaming.

    Raises
    ------
    InputError
        Today's identifier message on the file's own column name; for a renamed
        column, on its new name, with a hint naming the rename.
    """
    check_identifier_columns(
        [c for c in source.frame.columns if c not in source.exempt], source.file
    )
    for column in source.frame.columns:
        target = fmt.columns.get(column, column)
        if target == column:
            continue
        try:
            check_identifier_columns([target], source.file)
        except InputError as err:
            raise InputError(
                err.file,
                err.expected,
                column=target,
                hint=f"'{column}' is renamed to '{target}' by cohort_format: columns. "
                + (err.hint or ""),
            ) from None


def apply_cohort_format(source: CohortSource, fmt: CohortFormat) -> FormattedCohort:
    """Rename, map values, convert dates and decimals (module docstring, steps 3-6).

    Raises
    ------
    InputError
        A ``columns`` source absent from the file, a target that clashes with a
        column of the file, a ``values`` column absent after renaming, a date not
        in ``date_format``, or a number not written with ``decimal``.
    """
    frame = source.frame
    file = source.file
    present = list(frame.columns)
    for name in fmt.columns:
        if name not in present:
            raise InputError(
                file,
                "a column of the file to rename (cohort_format: columns names the file's "
                "columns on the left)",
                column=f"cohort_format: columns: {name}",
                value=name,
                hint=did_you_mean(name, present),
            )
    targets = [fmt.columns.get(c, c) for c in present]
    for column, target in zip(present, targets, strict=True):
        if targets.count(target) > 1:
            other = next(
                c for c, t in zip(present, targets, strict=True) if t == target and c != column
            )
            raise InputError(
                file,
                "one column per name after renaming",
                column=f"cohort_format: columns: {column if column in fmt.columns else other}",
                value=target,
                hint=f"The file also has a column that becomes '{target}' "
                f"('{other if column in fmt.columns else column}').",
            )
    source_of = dict(zip(targets, present, strict=True))
    original = frame.set_axis(targets, axis=1).astype(str)
    typed = source.typed.set_axis(targets, axis=1).copy()
    table = original.copy()
    for column, mapping in fmt.values.items():
        if column not in table.columns:
            hint = None
            if column in fmt.columns:
                hint = (
                    f"'{column}' is a column of the file renamed to '{fmt.columns[column]}': "
                    "values are keyed by the target column name."
                )
            else:
                hint = did_you_mean(column, list(table.columns))
            raise InputError(
                file,
                "a column of the cohort after renaming (cohort_format: values is keyed by the "
                "target column name)",
                column=f"cohort_format: values: {column}",
                value=column,
                hint=hint,
            )
        folded = table[column].str.strip().str.casefold()
        hit = folded.isin(list(mapping))
        table.loc[hit, column] = folded[hit].map(mapping)
        typed.loc[hit, column] = False
    mapped = table.copy()
    if fmt.date_format != ISO_DATE_FORMAT:
        example = _dt.date(2016, 3, 15).strftime(fmt.date_format)
        for column in DATE_VALUE_COLUMNS:
            if column not in table.columns:
                continue
            cells = table[column].str.strip()
            todo = (cells != "") & ~typed[column]
            parsed = pd.to_datetime(
                cells.where(todo, None), format=fmt.date_format, errors="coerce"
            )
            bad = todo & parsed.isna()
            if bad.any():
                index = table.index[int(np.flatnonzero(bad.to_numpy())[0])]
                raise InputError(
                    file,
                    f"a date written {fmt.date_format} (cohort_format: date_format), e.g. "
                    f"'{example}'",
                    row=_row_label(table, index),
                    column=source_of[column],
                    value=original.at[index, column],
                )
            table.loc[todo, column] = parsed[todo].dt.strftime(ISO_DATE_FORMAT)
    if fmt.decimal != ".":
        pattern = _number_pattern(fmt.decimal)
        for column in table.columns:
            if column == "patient_id" or column in DATE_VALUE_COLUMNS:
                continue
            cells = table[column]
            text = ~typed[column]
            wrong = text & cells.str.match(_DOT_NUMBER)
            if wrong.any():
                index = table.index[int(np.flatnonzero(wrong.to_numpy())[0])]
                raise InputError(
                    file,
                    f"a number written with the decimal mark '{fmt.decimal}' "
                    "(cohort_format: decimal)",
                    row=_row_label(table, index),
                    column=source_of[column],
                    value=original.at[index, column],
                    hint="A '.' may be a thousands separator here: write numbers without one.",
                )
            numbers = text & cells.str.match(pattern)
            table.loc[numbers, column] = cells[numbers].str.replace(fmt.decimal, ".", regex=False)
    codes = None
    if source.codes is not None:
        codes = source.codes.set_axis([fmt.columns.get(c, c) for c in source.codes.columns], axis=1)
    return FormattedCohort(
        file=file,
        table=table,
        source_of=source_of,
        original=original,
        mapped=mapped,
        fmt=fmt,
        codes=codes,
    )


def read_formatted(path, cohort_format=None, redcap_dictionary=None) -> FormattedCohort:
    """Read a cohort export and map it to the study's table (module docstring).

    Parameters
    ----------
    path : path
        Cohort file, CSV or XLSX (or a REDCap raw CSV export).
    cohort_format : dict, optional
        The config's ``cohort_format``.
    redcap_dictionary : path, optional
        REDCap data dictionary CSV of the export (:func:`read_redcap`).

    Returns
    -------
    FormattedCohort

    Raises
    ------
    InputError
        For the first problem found.
    """
    fmt = parse_cohort_format(cohort_format, path)
    source = read_source(path, fmt)
    if redcap_dictionary:
        source = read_redcap(source, redcap_dictionary)
    check_mapped_identifiers(source, fmt)
    return apply_cohort_format(source, fmt)


def mapped_columns(path, cohort_format=None, redcap_dictionary=None) -> list:
    """The cohort's column names after mapping, from the header only.

    A REDCap export's own columns (``redcap_*``, ``<form>_complete``,
    ``<form>_timestamp``) are left out, as :func:`read_redcap` drops them.
    Unknown map entries are ignored here (the reader refuses them).
    """
    fmt = parse_cohort_format(cohort_format, path)
    source = read_source(path, fmt, header_only=True)
    columns = list(source.frame.columns)
    if redcap_dictionary:
        fields = read_redcap_dictionary(redcap_dictionary)
        spec = _redcap_columns(columns, fields, source.file, str(redcap_dictionary))
        columns = [c for c in columns if spec[c] is not None]
    return [fmt.columns.get(c, c) for c in columns]
