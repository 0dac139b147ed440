"""Read and validate the cohort table; derive OS and PFS2 (defined once, here).

The cohort CSV (docs/data-dictionary.md) has one row per patient: ``patient_id``,
``tdm1_line``, ``first_line_pertuzumab`` and either dates
(``advanced_dx_date, tdm1_start_date, tdm1_progression_date, last_contact_date,
vital_status``) or durations (``os_months, os_event, pfs2_months,
pfs2_event``), plus optional covariates.

Endpoints (docs/methods-reference.md):

* OS: advanced diagnosis to death; event when ``vital_status`` is dead, the
  death being at ``last_contact_date``; otherwise censored at last contact.
* PFS2: T-DM1 start to progression (event), else to last contact (event if
  dead: death without progression, else censored).
* months = days / 30.4375 (the mean Gregorian month).
* Entry (``entry_months``): advanced diagnosis to T-DM1 start, the time a
  patient must survive to enter the cohort (delayed entry, left truncation);
  from the dates, or the optional ``entry_months`` column of the duration
  form. ``os_tdm1_months`` is OS from T-DM1 start (OS minus entry).
* ``tdm1_start_year``: calendar year of T-DM1 start (date form only), the era.
* ``best_response`` (optional): RECIST 1.1 best response on T-DM1, one of
  CR / PR / SD / PD / NE, or blank (not assessed).

Every problem raises one :class:`sepher.errors.InputError` naming the file,
the 1-based data row with the patient_id, the column, the value and what was
expected. Values are compared after trimming spaces and lower-casing
(" Yes " is yes). The input file is only read.

Exports as they come (CSV with local conventions, XLSX, REDCap raw export
with its data dictionary) reach this table through ``cohort_format`` and
``redcap_dictionary`` (:mod:`sepher.io.cohort_format`); the validation is
the same, and messages then name the original file, column and value.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import numpy as np
import pandas as pd

from sepher.errors import InputError
from sepher.io.cohort_format import (
    FIXED_COLUMNS,
    CohortFormat,
    mapped_columns,
    parse_cohort_format,
    read_csv_frame,
)
from sepher.io.identifiers import check_identifier_columns, check_pseudonymous_ids
from sepher.io.tables import per_distinct_value

#: Days per month (mean Gregorian month), for every duration in months.
DAYS_PER_MONTH = 30.4375

IDENTITY_COLUMNS = ("patient_id", "tdm1_line", "first_line_pertuzumab")
DATE_COLUMNS = (
    "advanced_dx_date",
    "tdm1_start_date",
    "tdm1_progression_date",
    "last_contact_date",
    "vital_status",
)
DURATION_COLUMNS = ("os_months", "os_event", "pfs2_months", "pfs2_event")
ENDPOINT_COLUMNS = DURATION_COLUMNS
#: Derived columns every endpoint table has besides DURATION_COLUMNS (NaN when
#: the input does not give them): entry (advanced diagnosis to T-DM1 start), OS
#: from T-DM1 start, calendar year of T-DM1 start.
DERIVED_COLUMNS = ("entry_months", "os_tdm1_months", "tdm1_start_year")
#: RECIST 1.1 best overall response categories.
RECIST_LEVELS = ("CR", "PR", "SD", "PD", "NE")

#: Tolerance (months) when both forms are given and must agree: one day.
_AGREEMENT_MONTHS = 1.0 / DAYS_PER_MONTH + 1e-9
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_YES_NO = ("yes", "no")


def endpoints_from_days(advanced_dx, tdm1_start, progression, last_contact, dead) -> dict:
    """OS and PFS2 from day numbers (the one endpoint definition).

    Parameters
    ----------
    advanced_dx, tdm1_start, last_contact : array_like of int or float
        Dates as day numbers (any common origin).
    progression : array_like of float
        Progression day numbers, NaN when no progression was recorded.
    dead : array_like of bool
        Death at `last_contact`.

    Returns
    -------
    dict of ndarray
        ``os_months``, ``os_event`` (int 0/1), ``pfs2_months``,
        ``pfs2_event`` (int 0/1); months = days / 30.4375.
    """
    advanced_dx = np.asarray(advanced_dx, dtype=float)
    tdm1_start = np.asarray(tdm1_start, dtype=float)
    progression = np.asarray(progression, dtype=float)
    last_contact = np.asarray(last_contact, dtype=float)
    dead = np.asarray(dead, dtype=bool)
    progressed = ~np.isnan(progression)
    pfs2_end = np.where(progressed, progression, last_contact)
    return {
        "os_months": (last_contact - advanced_dx) / DAYS_PER_MONTH,
        "os_event": dead.astype(np.int64),
        "pfs2_months": (pfs2_end - tdm1_start) / DAYS_PER_MONTH,
        "pfs2_event": (progressed | dead).astype(np.int64),
    }


class _Table:
    """Normalised string cells plus the row labels used in messages."""

    def __init__(self, raw: pd.DataFrame, file: str):
        self.file = file
        self.raw = raw
        self._cells = {}
        self.ids = raw["patient_id"].str.strip() if "patient_id" in raw else None
        # 1-based data row numbers of the file (blank rows dropped keep their numbers)
        if pd.api.types.is_integer_dtype(raw.index):
            self.numbers = np.asarray(raw.index, dtype=np.int64) + 1
        else:
            self.numbers = np.arange(1, len(raw) + 1)

    def number(self, i: int) -> int:
        return int(self.numbers[i])

    def row(self, i: int):
        label = self.number(i)
        if self.ids is not None and self.ids.iloc[i]:
            return f"{label} (patient_id {self.ids.iloc[i]})"
        return label

    def fail(self, i, column, value, expected, hint=None):
        raise InputError(
            self.file, expected, row=self.row(i), column=column, value=value, hint=hint
        )

    def cells(self, column) -> pd.Series:
        """The column's cells, stripped (each distinct value once; remembered)."""
        if column not in self._cells:
            self._cells[column] = per_distinct_value(
                self.raw[column], lambda values: values.str.strip()
            )
        return self._cells[column]

    def lowered(self, column) -> pd.Series:
        return self.cells(column).str.lower()


def _read_raw(path) -> tuple[pd.DataFrame, str]:
    """The plain cohort CSV as string cells (no cohort_format): today's read."""
    return read_csv_frame(path)


def _missing_column(file, column, present, expected=None, used=()):
    # a column the table or the analysis uses as another variable is not a misspelling
    taken = FIXED_COLUMNS | set(used)
    candidates = [c for c in present if c not in taken]
    close = difflib.get_close_matches(column, candidates, n=1, cutoff=0.6)
    hint = f"Did you mean '{close[0]}'? (rename that column to '{column}')" if close else None
    raise InputError(
        file,
        expected or f"a column named '{column}'",
        column=column,
        hint=hint,
    )


def _check_yes_no(table: _Table, column, levels=_YES_NO):
    values = table.lowered(column)
    bad = ~values.isin(levels)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        table.fail(i, column, table.raw[column].iloc[i], " or ".join(levels))
    return values


def _parse_dates(table: _Table, column, allow_blank=False) -> np.ndarray:
    """Day numbers (float, NaN for allowed blanks) of an ISO 8601 date column."""
    values = table.cells(column)
    blank = values == ""
    parsed = pd.to_datetime(values.where(~blank, None), format="%Y-%m-%d", errors="coerce")
    well_formed = values.str.match(_ISO_DATE) | blank
    bad = (~well_formed) | (parsed.isna() & ~blank) | (blank & (not allow_blank))
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        expected = "an ISO 8601 date YYYY-MM-DD" + (" or blank" if allow_blank else "")
        table.fail(i, column, table.raw[column].iloc[i], expected)
    days = (parsed - pd.Timestamp("1970-01-01")).dt.days.to_numpy(dtype=float)
    return days


def _parse_numbers(table: _Table, column, expected, minimum=None) -> np.ndarray:
    values = table.cells(column)
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(numbers)
    if minimum is not None:
        bad |= numbers < minimum
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        table.fail(i, column, table.raw[column].iloc[i], expected)
    return numbers


def _parse_events(table: _Table, column) -> np.ndarray:
    values = table.cells(column)
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isin(numbers, (0.0, 1.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        table.fail(i, column, table.raw[column].iloc[i], "0 (censored) or 1 (event)")
    return numbers.astype(np.int64)


def _first(mask):
    return int(np.flatnonzero(mask)[0])


def _derive_from_dates(table: _Table) -> dict:
    advanced_dx = _parse_dates(table, "advanced_dx_date")
    tdm1_start = _parse_dates(table, "tdm1_start_date")
    progression = _parse_dates(table, "tdm1_progression_date", allow_blank=True)
    last_contact = _parse_dates(table, "last_contact_date")
    status = _check_yes_no(table, "vital_status", ("alive", "dead"))
    dates = {
        "advanced_dx_date": table.cells("advanced_dx_date"),
        "tdm1_start_date": table.cells("tdm1_start_date"),
        "tdm1_progression_date": table.cells("tdm1_progression_date"),
    }
    checks = (
        (tdm1_start < advanced_dx, "tdm1_start_date", "advanced_dx_date"),
        (progression < tdm1_start, "tdm1_progression_date", "tdm1_start_date"),
        (last_contact < advanced_dx, "last_contact_date", "advanced_dx_date"),
        (last_contact < tdm1_start, "last_contact_date", "tdm1_start_date"),
        (last_contact < progression, "last_contact_date", "tdm1_progression_date"),
    )
    for bad, column, earlier in checks:
        if bad.any():
            i = _first(bad)
            earlier_value = dates[earlier].iloc[i]
            table.fail(
                i,
                column,
                table.raw[column].iloc[i],
                f"a date on or after {earlier} ({earlier_value})",
            )
    endpoints = endpoints_from_days(
        advanced_dx, tdm1_start, progression, last_contact, (status == "dead").to_numpy()
    )
    endpoints["entry_months"] = (tdm1_start - advanced_dx) / DAYS_PER_MONTH
    endpoints["os_tdm1_months"] = (last_contact - tdm1_start) / DAYS_PER_MONTH
    years = pd.to_datetime(table.cells("tdm1_start_date"), format="%Y-%m-%d").dt.year
    endpoints["tdm1_start_year"] = years.to_numpy(dtype=float)
    return endpoints


def _derive_from_durations(table: _Table) -> dict:
    os_months = _parse_numbers(
        table, "os_months", "a number of months >= 0 (days / 30.4375)", minimum=0.0
    )
    os_event = _parse_events(table, "os_event")
    pfs2_months = _parse_numbers(
        table, "pfs2_months", "a number of months >= 0 (days / 30.4375)", minimum=0.0
    )
    pfs2_event = _parse_events(table, "pfs2_event")
    longer = pfs2_months > os_months + _AGREEMENT_MONTHS
    if longer.any():
        i = _first(longer)
        table.fail(
            i,
            "pfs2_months",
            table.raw["pfs2_months"].iloc[i],
            f"at most os_months ({table.raw['os_months'].iloc[i]}): T-DM1 starts after "
            "the advanced diagnosis",
        )
    entry = np.full(len(os_months), np.nan)
    if "entry_months" in table.raw.columns:
        entry = _parse_numbers(
            table,
            "entry_months",
            "a number of months >= 0 (advanced diagnosis to T-DM1 start, days / 30.4375)",
            minimum=0.0,
        )
        beyond = entry > os_months + _AGREEMENT_MONTHS
        if beyond.any():
            i = _first(beyond)
            table.fail(
                i,
                "entry_months",
                table.raw["entry_months"].iloc[i],
                f"at most os_months ({table.raw['os_months'].iloc[i]}): the patient was "
                "alive at T-DM1 start",
            )
    return {
        "os_months": os_months,
        "os_event": os_event,
        "pfs2_months": pfs2_months,
        "pfs2_event": pfs2_event,
        "entry_months": entry,
        "os_tdm1_months": np.maximum(os_months - entry, 0.0),
        "tdm1_start_year": np.full(len(os_months), np.nan),
    }


def derive_endpoints(df: pd.DataFrame, file, used=()) -> pd.DataFrame:
    """OS and PFS2 per patient from either input form, validated.

    Parameters
    ----------
    df : DataFrame
        Cohort table as read (string cells). The date form is used when all
        its columns are present; then duration columns, if also present,
        must agree with the dates (within one day, same events). Otherwise
        the duration form is required.
    file : str
        File name for error messages.
    used : collection of str, optional
        Columns the analysis reads as other variables (group, covariates,
        response): never suggested as a missing column's misspelling.

    Returns
    -------
    DataFrame
        ``os_months`` (float), ``os_event`` (int 0/1), ``pfs2_months``
        (float), ``pfs2_event`` (int 0/1), then DERIVED_COLUMNS
        (``entry_months``, ``os_tdm1_months``, ``tdm1_start_year``; NaN when
        the input does not give them), index as `df`.

    Raises
    ------
    InputError
        Missing columns, unparseable or inconsistent values, or an endpoint
        with no event at all.
    """
    raw = df.fillna("").astype(str)
    table = _Table(raw, str(file))
    has_dates = [c for c in DATE_COLUMNS if c in raw.columns]
    has_durations = [c for c in DURATION_COLUMNS if c in raw.columns]
    if len(has_dates) == len(DATE_COLUMNS):
        endpoints = _derive_from_dates(table)
        if len(has_durations) == len(DURATION_COLUMNS):
            given = _derive_from_durations(table)
            for column in DURATION_COLUMNS:
                tolerance = _AGREEMENT_MONTHS if column.endswith("months") else 0.5
                differs = np.abs(given[column] - endpoints[column]) > tolerance
                if differs.any():
                    i = _first(differs)
                    table.fail(
                        i,
                        column,
                        table.raw[column].iloc[i],
                        f"{endpoints[column][i]:.4g}, as derived from the dates "
                        "(both forms are given and must agree)",
                        hint="Remove the duration columns or correct them.",
                    )
    elif len(has_durations) == len(DURATION_COLUMNS):
        endpoints = _derive_from_durations(table)
    else:
        if len(has_dates) >= len(has_durations):
            form, columns = "date", DATE_COLUMNS
        else:
            form, columns = "duration", DURATION_COLUMNS
        missing = next(c for c in columns if c not in raw.columns)
        _missing_column(
            table.file,
            missing,
            raw.columns,
            used=used,
            expected=f"a column named '{missing}' (the {form} form needs "
            + ", ".join(columns)
            + "; the other form is "
            + ", ".join(DURATION_COLUMNS if form == "date" else DATE_COLUMNS)
            + ")",
        )
    result = pd.DataFrame(
        {c: endpoints[c] for c in DURATION_COLUMNS + DERIVED_COLUMNS}, index=df.index
    )
    for name, event in (("OS", "os_event"), ("PFS2", "pfs2_event")):
        if result[event].sum() == 0:
            column = event if event in raw.columns else "vital_status"
            coded = "0" if event in raw.columns else "alive"
            raise InputError(
                table.file,
                f"at least one {name} event (every patient is censored, so {name} "
                "cannot be estimated)",
                row=f"1-{table.number(len(raw) - 1)} (all {len(raw)} patients)",
                column=column,
                value=coded,
                hint="Check the event / vital_status coding.",
            )
    return result


def _normalise_level(level) -> str:
    # YAML 1.1 reads bare yes/no as booleans.
    if isinstance(level, bool):
        return "yes" if level else "no"
    return str(level).strip().lower()


def read_cohort(
    path,
    group: str = "first_line_pertuzumab",
    group_levels=("no", "yes"),
    covariates=(),
    categorical_levels: dict | None = None,
    response: str | None = "best_response",
    cohort_format: dict | None = None,
    redcap_dictionary=None,
) -> pd.DataFrame:
    """Read the cohort table, validate it and derive the endpoints.

    Parameters
    ----------
    path : path
        Cohort CSV (date form or duration form, see module docstring), or
        with `cohort_format` / `redcap_dictionary` a CSV or XLSX export.
    group : str, default "first_line_pertuzumab"
        Column compared in the survival analysis.
    group_levels : sequence of str, default ("no", "yes")
        Its two levels, reference first; every patient must have one of
        them and each level at least one patient. YAML booleans are read as
        yes/no.
    covariates : sequence of str
        Covariate columns to return (Table 1, Cox); blank cells become
        missing (NaN).
    categorical_levels : dict, optional
        Covariate -> allowed levels (normalised, lower-case strings). Other
        covariates are numeric when every non-blank cell is a number, else
        categorical (normalised strings).
    response : str or None, default "best_response"
        Column of RECIST 1.1 best response (CR / PR / SD / PD / NE, any case,
        or blank = not assessed); read when the file has it (optional).
    cohort_format : dict, optional
        How to read an export as it comes (:mod:`sepher.io.cohort_format`):
        ``sep``, ``decimal``, ``date_format``, ``sheet``, ``encoding``,
        ``columns`` ({source: target}), ``values`` ({target column: {source
        value: target value}}), every key optional. None (or every key at
        its default, for a .csv file) reads the plain CSV exactly as before.
    redcap_dictionary : path, optional
        REDCap data dictionary CSV: `path` is then a REDCap raw export, read
        through it (:func:`sepher.io.cohort_format.read_redcap`) before
        `cohort_format` maps apply.

    Returns
    -------
    DataFrame
        One row per patient, in file order: ``patient_id`` (str),
        ``tdm1_line`` (int), ``first_line_pertuzumab`` (yes/no),
        ``os_months`` (float), ``os_event`` (int 0/1), ``pfs2_months``,
        ``pfs2_event``, ``entry_months``, ``os_tdm1_months``,
        ``tdm1_start_year`` (see :func:`derive_endpoints`), the `group`
        column if different, then `covariates`, then `response` (upper-case
        category, None when blank) if the file has it.

    Raises
    ------
    InputError
        For the first problem found (see module docstring). With a
        `cohort_format` or REDCap export, the message names the original file
        (and sheet), row, column and value, and the ``cohort_format`` key that
        would fix it.
    """
    options = {
        "group": group,
        "group_levels": group_levels,
        "covariates": covariates,
        "categorical_levels": categorical_levels,
        "response": response,
    }
    if not _formatted(path, cohort_format, redcap_dictionary):
        raw, file = _read_raw(path)
        return _validate_cohort(raw, file, **options)
    from sepher.io.cohort_format import read_formatted

    formatted = read_formatted(path, cohort_format, redcap_dictionary)
    try:
        return _validate_cohort(formatted.table, formatted.file, **options)
    except InputError as err:
        raise formatted.explain(err, used=_analysis_columns(options)) from None


def _analysis_columns(options) -> set:
    """The columns the analysis reads besides the fixed ones (group, covariates, response)."""
    return {options["group"], *options["covariates"], options["response"]} - {None}


def _formatted(path, cohort_format, redcap_dictionary) -> bool:
    """True unless the file is read exactly as a plain cohort CSV."""
    if redcap_dictionary:
        return True
    if Path(str(path)).suffix.lower() in (".xlsx", ".xlsm", ".xls"):
        return True
    if cohort_format is None:
        return False
    fmt = cohort_format if isinstance(cohort_format, CohortFormat) else None
    return not (fmt or parse_cohort_format(cohort_format, path)).is_default


def cohort_columns(path, cohort_format: dict | None = None, redcap_dictionary=None) -> list:
    """Column names of the cohort as the analysis sees them (header only: cheap).

    Parameters
    ----------
    path : path
        Cohort file (CSV, XLSX or REDCap raw export).
    cohort_format : dict, optional
        As in :func:`read_cohort`; its ``columns`` map renames the header.
    redcap_dictionary : path, optional
        As in :func:`read_cohort`; REDCap's own columns are left out.

    Returns
    -------
    list of str
        The header after renaming, in file order (e.g. for the optional
        ``best_response`` column: ``"best_response" in cohort_columns(...)``).

    Raises
    ------
    InputError
        The file (or its REDCap dictionary) cannot be read.
    """
    if not _formatted(path, cohort_format, redcap_dictionary):
        raw, _ = read_csv_frame(path, header_only=True)
        return list(raw.columns)
    return mapped_columns(path, cohort_format, redcap_dictionary)


def _validate_cohort(
    raw: pd.DataFrame,
    file: str,
    group,
    group_levels,
    covariates,
    categorical_levels,
    response,
) -> pd.DataFrame:
    """Validate the string table `raw` (read_cohort after reading) and derive endpoints."""
    categorical_levels = {
        k: [_normalise_level(v) for v in levels] for k, levels in (categorical_levels or {}).items()
    }
    covariates = list(covariates)
    used = _analysis_columns({"group": group, "covariates": covariates, "response": response})
    # Only the study's own columns are exempt: a covariate named like an identifier
    # must be renamed (no config switch can let identifiers through).
    check_identifier_columns(raw.columns, file)
    for column in IDENTITY_COLUMNS:
        if column not in raw.columns:
            _missing_column(file, column, raw.columns, used=used)
    if group not in raw.columns:
        _missing_column(
            file,
            group,
            raw.columns,
            used=used - {group},
            expected=f"the group column '{group}' named in the config (survival.group)",
        )
    for column in covariates:
        if column not in raw.columns:
            _missing_column(
                file,
                column,
                raw.columns,
                used=used - {column},
                expected=f"the covariate column '{column}' named in the config "
                "(survival.covariates)",
            )
    table = _Table(raw, file)

    ids = table.cells("patient_id")
    blank = ids == ""
    if blank.any():
        table.fail(_first(blank.to_numpy()), "patient_id", "", "a pseudonymous study code")
    check_pseudonymous_ids(ids, file, rows=table.numbers)
    duplicated = ids.duplicated().to_numpy()
    if duplicated.any():
        i = _first(duplicated)
        first = table.number(_first((ids == ids.iloc[i]).to_numpy()))
        table.fail(
            i, "patient_id", ids.iloc[i], "a unique patient_id", hint=f"It is also in row {first}."
        )

    line_numbers = pd.to_numeric(table.cells("tdm1_line"), errors="coerce").to_numpy(float)
    bad = ~(np.isfinite(line_numbers) & (line_numbers >= 1) & (line_numbers % 1 == 0))
    if bad.any():
        i = _first(bad)
        table.fail(i, "tdm1_line", raw["tdm1_line"].iloc[i], "an integer >= 1 (line of T-DM1)")
    pertuzumab = _check_yes_no(table, "first_line_pertuzumab")

    levels = [_normalise_level(v) for v in group_levels]
    group_values = table.lowered(group)
    bad = ~group_values.isin(levels)
    if bad.any():
        i = _first(bad.to_numpy())
        table.fail(i, group, raw[group].iloc[i], "one of the group levels " + " / ".join(levels))
    for level in levels:
        if not (group_values == level).any():
            raise InputError(
                file,
                f"at least one patient in each group level {' / '.join(levels)} "
                f"(survival.group_levels); no patient has '{level}'",
                column=group,
                value=level,
                hint="Both groups are needed to compare them.",
            )

    endpoints = derive_endpoints(raw, file, used=used)
    out = pd.DataFrame(
        {
            "patient_id": ids.to_numpy(dtype=object),
            "tdm1_line": line_numbers.astype(np.int64),
            "first_line_pertuzumab": pertuzumab.to_numpy(dtype=object),
        }
    )
    for column in DURATION_COLUMNS + DERIVED_COLUMNS:
        out[column] = endpoints[column].to_numpy()
    if group not in out.columns:
        out[group] = group_values.to_numpy(dtype=object)
    for column in covariates:
        if column in out.columns:
            continue
        out[column] = _covariate(table, column, categorical_levels.get(column))
    if response and response in raw.columns and response not in out.columns:
        values = table.cells(response).str.upper()
        blank = values.isin(("", "NA", "NAN", "N/A"))
        bad = ~values.isin(RECIST_LEVELS) & ~blank
        if bad.any():
            i = _first(bad.to_numpy())
            table.fail(
                i,
                response,
                raw[response].iloc[i],
                "a RECIST 1.1 best response: " + " / ".join(RECIST_LEVELS) + " or blank",
            )
        out[response] = values.where(~blank, None).to_numpy(dtype=object)
    return out


def _covariate(table: _Table, column, levels):
    values = table.lowered(column)
    blank = (values == "") | values.isin(("na", "nan", "n/a"))
    if levels is not None:
        bad = ~values.isin(levels) & ~blank
        if bad.any():
            i = _first(bad.to_numpy())
            table.fail(
                i,
                column,
                table.raw[column].iloc[i],
                "one of " + " / ".join(levels) + " (survival.categorical) or blank",
            )
        return values.where(~blank, None).to_numpy(dtype=object)
    numbers = pd.to_numeric(values.where(~blank, None), errors="coerce")
    if (numbers.notna() | blank).all():
        return numbers.to_numpy(dtype=float)
    return values.where(~blank, None).to_numpy(dtype=object)


def check_analysis_set(
    cohort: pd.DataFrame,
    file,
    *,
    group: str,
    group_levels,
    tdm1_line: int,
    covariates=(),
    categorical_levels: dict | None = None,
    config_file="config",
    delayed_entry: bool = False,
    strata=(),
    subgroups=(),
    weighting_covariates=None,
) -> None:
    """Check that the configured analysis can be run on this cohort.

    Figures 6-8 and Tables 1-2 compare the two groups among the patients
    treated with T-DM1 in line `tdm1_line` (survival.tdm1_line). Each group
    needs patients there, each endpoint at least one event, and every level
    of a categorical covariate (survival.categorical) at least one patient
    (an empty level makes the Cox model undefined).

    Parameters
    ----------
    cohort : DataFrame
        :func:`read_cohort` of `file`.
    file : str
        Cohort file, named in the expectation.
    group, group_levels, tdm1_line, covariates, categorical_levels
        As in the config's ``survival`` section.
    config_file : str
        Config file(s), named as the file to fix (the data are valid; the
        config asks for what they do not hold).
    delayed_entry : bool
        survival.delayed_entry with OS from advanced diagnosis: every analysed
        patient needs an entry time (dates, or ``entry_months``).
    strata, subgroups, weighting_covariates : sequence of str
        As in the config; each must be a covariate, subgroups categorical.

    Raises
    ------
    InputError
        Names the config file, the key, its value and the expectation.
    """
    file = str(file)
    levels = [_normalise_level(v) for v in group_levels]
    analysed = cohort[(cohort["tdm1_line"] == tdm1_line) & cohort[group].isin(levels)]
    lines = ", ".join(str(int(v)) for v in sorted(cohort["tdm1_line"].unique()))
    for level in levels:
        if not (analysed[group] == level).any():
            raise InputError(
                config_file,
                f"a T-DM1 line in which every group ({' / '.join(levels)}) has patients in "
                f"{file}; at line {tdm1_line} none has {group} '{level}' (tdm1_line values "
                f"in the file: {lines})",
                column="survival.tdm1_line",
                value=tdm1_line,
            )
    for name, event in (("OS", "os_event"), ("PFS2", "pfs2_event")):
        if analysed[event].sum() == 0:
            raise InputError(
                config_file,
                f"a T-DM1 line with at least one {name} event in {file}; all "
                f"{len(analysed)} patients at line {tdm1_line} are censored",
                column="survival.tdm1_line",
                value=tdm1_line,
            )
    for column, wanted in (categorical_levels or {}).items():
        if column not in covariates:
            continue
        wanted = [_normalise_level(v) for v in wanted]
        present = set(analysed[column].dropna())
        for level in wanted:
            if level not in present:
                found = " / ".join(v for v in wanted if v in present) or "none"
                raise InputError(
                    config_file,
                    f"levels that occur among the {len(analysed)} patients analysed "
                    f"(survival.tdm1_line = {tdm1_line}) in {file}; none has {column} "
                    f"'{level}' (levels found: {found})",
                    column=f"survival.categorical.{column}",
                    value=level,
                    hint="Remove the level from the config, or merge it with a neighbouring "
                    "level in the file (an empty level makes the Cox model undefined).",
                )
    if delayed_entry and analysed["entry_months"].isna().any():
        raise InputError(
            config_file,
            f"the time from advanced diagnosis to T-DM1 start of every analysed patient in "
            f"{file} (the date form, or an entry_months column in the duration form), "
            "needed to count patients at risk only from T-DM1 start",
            column="survival.delayed_entry",
            value="true",
            hint="Add entry_months to the cohort table, or set survival.delayed_entry: false "
            "(OS from advanced diagnosis is then biased by immortal time) or "
            "survival.os_origin: tdm1_start.",
        )
    for key, columns, need_categorical in (
        ("strata", strata, False),
        ("subgroups", subgroups, True),
        ("weighting_covariates", weighting_covariates or (), False),
    ):
        for column in columns:
            if column not in covariates:
                raise InputError(
                    config_file,
                    f"a covariate listed in survival.covariates (survival.{key} may name only "
                    f"covariates; covariates: {', '.join(covariates) or 'none'})",
                    column=f"survival.{key}",
                    value=column,
                )
            if need_categorical and column not in (categorical_levels or {}):
                raise InputError(
                    config_file,
                    f"a categorical covariate with its levels in survival.categorical "
                    f"(subgroups are its levels); '{column}' has none",
                    column=f"survival.{key}",
                    value=column,
                )
