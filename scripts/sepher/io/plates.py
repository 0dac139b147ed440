"""The plates table: one CSV row per plate-reader well reading (docs/data-dictionary.md).

:func:`read_plates` checks every row before any normalisation or fit and
raises one :class:`~sepher.errors.InputError` naming the file, the 1-based
data row, the column, the value and what was expected.

Well names are a row letter A..P and a column 1..24 (``A01`` .. ``P24``,
the largest standard format, 384 wells; ``A1`` is read as ``A01``). Roles:
``treated`` (drug at a concentration > 0), ``vehicle`` (dose 0, the 100 %
viability reference), ``blank`` (medium without cells, the 0 % reference),
``time0`` (cells read at the time of treatment, for GR metrics) and, optional,
``kill`` (a kill control: cells given a fully lethal reference treatment;
used only by plate QC, as the Z' and signal-window reference when a plate
has at least two, and ignored by normalisation).
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import numpy as np
import pandas as pd

from sepher.errors import InputError, did_you_mean
from sepher.io.tables import per_distinct_value

__all__ = ["PLATES_COLUMNS", "OPTIONAL_COLUMNS", "ROLES", "read_plates", "well_position"]

#: Columns every plates table must have.
PLATES_COLUMNS = (
    "plate_id",
    "well",
    "cell_line",
    "condition",
    "drug",
    "concentration",
    "concentration_unit",
    "role",
    "replicate",
    "signal",
)

#: Optional columns (``time_h``: hours since treatment; 0 for time-zero reads).
OPTIONAL_COLUMNS = ("time_h",)

#: Roles of a well.
ROLES = ("treated", "vehicle", "blank", "time0", "kill")

_WELL = re.compile(r"^([A-Pa-p])0*([0-9]{1,2})$")


def well_position(well: str) -> tuple[int, int]:
    """0-based (row, column) of a well name such as ``"B07"``.

    Raises
    ------
    ValueError
        If the name is not A01..P24 (rows A..P, columns 1..24).
    """
    match = _WELL.match(str(well).strip())
    if not match:
        raise ValueError(well)
    row, col = ord(match.group(1).upper()) - 65, int(match.group(2)) - 1
    if not 0 <= col < 24:
        raise ValueError(well)
    return row, col


def _normal_well(name: str) -> str | None:
    """``A01`` form of a well name (:func:`well_position`'s rule), None if not a well."""
    try:
        row, col = well_position(name)
    except ValueError:
        return None
    return f"{chr(65 + row)}{col + 1:02d}"


def _long_locate(file):
    """Locator of the long table: the file, its 1-based data row, the column, the value."""

    def locate(index, column, value):
        return file, int(index) + 1, column, value

    return locate


def _failer(locate):
    """``fail(index, column, value, expected, hint=None)`` raising the located InputError."""

    def fail(index, column, value, expected, hint=None):
        file, row, column, value = locate(index, column, value)
        raise InputError(file, expected, row=row, column=column, value=value, hint=hint)

    return fail


def _number(table, fail, column, minimum=None, rows=None, note=None):
    """Column as floats; the first non-numeric (or below `minimum`) value fails."""
    values = pd.to_numeric(table[column], errors="coerce")
    rows = table.index if rows is None else rows
    bad = values.loc[rows].isna() | ~np.isfinite(values.loc[rows].fillna(0.0))
    if minimum is not None:
        bad |= values.loc[rows] < minimum
    if bad.any():
        index = bad.index[bad.to_numpy()][0]
        what = "a number" if minimum is None else f"a number >= {minimum:g}"
        what += f" ({note})" if note else ""
        fail(index, column, table.at[index, column], what)
    return values.astype(float)


def read_plates(path, fmt: str = "long", plate_map=None, *, log=None) -> pd.DataFrame:
    """Read and validate a plates table.

    Parameters
    ----------
    path : path, or list of paths
        ``fmt="long"``: CSV with the ``plates`` columns: ``plate_id, well,
        cell_line, condition, drug, concentration, concentration_unit, role,
        replicate, signal`` and optionally ``time_h`` (hours). Other forms:
        a file, a folder or a list of files
        (:func:`sepher.io.plate_formats.plate_sources`).
    fmt : {"long", "plater", "grid", "gdsc"}
        Form of the plates (:mod:`sepher.io.plate_formats`); the instrument
        forms are converted by :func:`~sepher.io.plate_formats.import_plates`
        and then validated exactly as the long table.
    plate_map : path, optional
        ``fmt="grid"`` only: the plate-map file or folder.
    log : list, optional
        Instrument forms: receives the import log rows (wells left out).

    Returns
    -------
    pandas.DataFrame
        One row per well, in file order: strings stripped, ``well`` as
        ``A01``, ``role`` lower case, ``concentration`` and ``signal``
        float, ``replicate`` str, ``time_h`` float (NaN when absent), plus
        ``row`` (1-based data row of the file; for an instrument form the
        1-based row of the imported long table, after the provenance columns
        ``source_file, source_plate, source_well``).

    Raises
    ------
    InputError
        Missing file, missing or misspelt column (with a suggestion), empty
        table, empty identifier, well name not A01..P24, duplicate well on a
        plate, unknown role, non-numeric or negative concentration (or a
        treated well at concentration 0), non-numeric signal, several
        concentration units for one drug, a plate with treated wells but no
        vehicle or no blank wells, missing replicate. For an instrument form
        the message names the source file, the plate and the grid cell (or
        the raw table's row and POSITION) instead of a row of the imported
        table.
    """
    if fmt != "long":
        from sepher.io.plate_formats import _import

        table, locate = _import(path, fmt, plate_map, log)
        label = ", ".join(map(str, path)) if isinstance(path, (list, tuple)) else str(path)
        return _validate(table, label, locate)
    file = str(path)
    if not Path(path).is_file():
        raise InputError(file, "an existing CSV file of plate readings", value=file)
    table = _read_long(path)
    return _validate(table, file, _long_locate(file))


def _read_long(path) -> pd.DataFrame:
    """The long CSV as strings, its columns checked (:func:`read_plates`' first step)."""
    file = str(path)
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError as error:
        raise InputError(file, "a header row and at least one well row") from error
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise InputError(file, f"a comma-separated text file ({error})") from error
    table.columns = [str(c).strip() for c in table.columns]
    for column in PLATES_COLUMNS:
        if column not in table.columns:
            spare = [c for c in table.columns if c not in PLATES_COLUMNS + OPTIONAL_COLUMNS]
            close = difflib.get_close_matches(column, spare, n=1, cutoff=0.6)
            raise InputError(
                file,
                f"a column named '{column}' (columns: {', '.join(PLATES_COLUMNS)})",
                column=column,
                hint=f"Found '{close[0]}': did you mean '{column}'?" if close else None,
            )
    if len(table) == 0:
        raise InputError(file, "at least one well row below the header (the table is empty)")
    return table


def _validate(table: pd.DataFrame, file, locate) -> pd.DataFrame:
    """Check and type a plates table of strings (the checks of :func:`read_plates`).

    Parameters
    ----------
    table : pandas.DataFrame
        The plates columns as strings, index 0..n-1.
    file : str
        The input as the user named it.
    locate : callable
        ``locate(index, column, value) -> (file, row, column, value)``: where
        the message puts the value at `index` of `column`; ``row`` is also
        how other rows are cited in an expectation (``row <row>``).
    """
    fail = _failer(locate)

    def cite(index):
        return f"row {locate(index, None, None)[1]}"

    for column in table.columns:
        table[column] = per_distinct_value(table[column], lambda values: values.str.strip())
    for column in ("plate_id", "cell_line", "condition", "drug", "replicate"):
        empty = table[column] == ""
        if empty.any():
            index = empty.index[empty.to_numpy()][0]
            what = "a replicate label (biological replicate)" if column == "replicate" else None
            fail(index, column, "", what or f"a non-empty {column}")

    # well names (each distinct name once): A01..P24, any case, leading zeros
    wells = per_distinct_value(table["well"], lambda names: names.map(_normal_well))
    bad = wells.isna()
    if bad.any():
        index = bad.index[bad.to_numpy()][0]
        well = table.at[index, "well"]
        fail(index, "well", well, "a well name A01..P24 (row letter A-P, column 1-24)")
    table["well"] = wells
    duplicated = table.duplicated(["plate_id", "well"])
    if duplicated.any():
        index = duplicated.index[duplicated.to_numpy()][0]
        first = table.index[
            (table["plate_id"] == table.at[index, "plate_id"])
            & (table["well"] == table.at[index, "well"])
        ][0]
        fail(
            index,
            "well",
            table.at[index, "well"],
            f"each well once per plate (plate {table.at[index, 'plate_id']} already has it "
            f"at {cite(first)})",
        )
    roles = per_distinct_value(table["role"], lambda values: values.str.lower())
    unknown = ~roles.isin(ROLES)
    if unknown.any():
        index = unknown.index[unknown.to_numpy()][0]
        fail(index, "role", table.at[index, "role"], f"one of {', '.join(ROLES)}")
    table["role"] = roles
    table["concentration"] = _number(
        table, fail, "concentration", minimum=0.0, note="the unit goes in concentration_unit"
    )
    zero_treated = (table["role"] == "treated") & (table["concentration"] <= 0)
    if zero_treated.any():
        index = zero_treated.index[zero_treated.to_numpy()][0]
        fail(
            index,
            "concentration",
            table.at[index, "concentration"],
            "a concentration > 0 for a treated well",
            hint="Dose-0 wells are role 'vehicle'.",
        )
    table["signal"] = _number(table, fail, "signal")
    if "time_h" in table.columns:
        present = table.index[table["time_h"] != ""]
        times = _number(table, fail, "time_h", minimum=0.0, rows=present)
        table["time_h"] = times.where(table["time_h"] != "", np.nan)
    else:
        table["time_h"] = np.nan
    treated = table[table["role"] == "treated"]
    for drug, rows in treated.groupby("drug", sort=False):
        # the unit of most of the drug's wells (first seen on a tie); the others are wrong
        counts = rows["concentration_unit"].value_counts(sort=False)
        unit = counts.index[int(np.argmax(counts.to_numpy()))]
        if unit == "":
            fail(rows.index[0], "concentration_unit", "", "a unit such as ng/mL")
        odd = rows.index[rows["concentration_unit"] != unit]
        if len(odd):
            index = odd[0]
            usual = rows.index[rows["concentration_unit"] == unit]
            fail(
                index,
                "concentration_unit",
                table.at[index, "concentration_unit"],
                f"one concentration unit per drug ({drug} is in {unit} in {len(usual)} "
                f"other well(s), e.g. {cite(usual[0])})",
                hint="Convert the concentrations of this drug to one unit.",
            )
    # plates with treated wells need vehicle and blank wells (plates in file order)
    roles_of = table.groupby("plate_id", sort=False)["role"].unique()
    first_treated = (
        table.index.to_series()[table["role"] == "treated"]
        .groupby(table["plate_id"], sort=False)
        .first()
    )
    for plate, plate_roles in roles_of.items():
        if "treated" not in plate_roles:
            continue
        for role in ("vehicle", "blank"):
            if role not in plate_roles:
                index = first_treated[plate]
                fail(
                    index,
                    "role",
                    table.at[index, "role"],
                    f"{role} wells on every plate with treated wells (plate {plate} has none)",
                    hint="Viability is (signal - blank mean) / (vehicle mean - blank mean) "
                    "per plate.",
                )
    table["replicate"] = table["replicate"].astype(str)
    table.insert(len(table.columns), "row", table.index + 1)
    return table.reset_index(drop=True)


def check_plates_config(
    plates: pd.DataFrame,
    file,
    *,
    drug: str,
    comparisons=(),
    figure_conditions=(),
    config_file="config",
) -> None:
    """Check that what the doseresponse config names is in the plates table.

    ``doseresponse.drug`` must be a drug of treated wells; each comparison
    must have both of its conditions treated with that drug on at least one
    cell line (comparisons are within a line); each of
    ``doseresponse.figure_conditions`` must be a condition treated with it.

    Parameters
    ----------
    plates : DataFrame
        :func:`read_plates` of `file`.
    file : str
        Plates file, named in the expectation.
    drug, comparisons, figure_conditions
        As in the config's ``doseresponse`` section.
    config_file : str
        Config file(s), named as the file to fix.

    Raises
    ------
    InputError
        Names the config file, the key, its value and the expectation.
    """
    file = str(file)
    treated = plates[plates["role"] == "treated"]
    drugs = list(dict.fromkeys(treated["drug"]))
    if drug not in drugs:
        raise InputError(
            config_file,
            f"a drug of the treated wells in {file}: {', '.join(drugs)}",
            column="doseresponse.drug",
            value=drug,
            hint=did_you_mean(drug, drugs),
        )
    wells = treated[treated["drug"] == drug]
    conditions = list(dict.fromkeys(wells["condition"]))
    by_line = wells.groupby("cell_line", sort=False)["condition"].agg(set)
    for k, pair in enumerate(comparisons):
        for role in ("numerator", "denominator"):
            if pair[role] not in conditions:
                raise InputError(
                    config_file,
                    f"a condition treated with {drug} in {file}: {', '.join(conditions)}",
                    column=f"doseresponse.comparisons[{k}].{role}",
                    value=pair[role],
                    hint=did_you_mean(str(pair[role]), conditions),
                )
        if not any({pair["numerator"], pair["denominator"]} <= have for have in by_line):
            raise InputError(
                config_file,
                f"two conditions treated with {drug} on the same cell line in {file} "
                "(ED50 ratios are within a line)",
                column=f"doseresponse.comparisons[{k}]",
                value=f"{pair['numerator']} / {pair['denominator']}",
            )
    for k, condition in enumerate(figure_conditions):
        if condition not in conditions:
            raise InputError(
                config_file,
                f"a condition treated with {drug} in {file}: {', '.join(conditions)}",
                column=f"doseresponse.figure_conditions[{k}]",
                value=condition,
                hint=did_you_mean(str(condition), conditions),
            )
