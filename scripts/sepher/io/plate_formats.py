"""Plates as the instrument writes them, converted to the long plates table.

:func:`import_plates` is the one documented conversion step: it reads any of
the forms below and returns the long table (docs/data-dictionary.md, one row
per well) as strings, with the columns of the long form
(:data:`~sepher.io.plates.PLATES_COLUMNS`, plus ``time_h`` when the source
gives it) and three provenance columns: ``source_file`` (the file as named:
the path given, or folder/name for a folder), ``source_plate`` (the plate as
the source names it: file stem, ``<stem>_<sheet>``, or BARCODE) and
``source_well`` (the source's own position: the grid cell such as ``C05``,
or the GDSC ``POSITION`` number). Rows come in file order (files as
:func:`plate_sources` lists them), then row-major well order (A01, A02, ...,
B01, ...). :func:`sepher.io.plates.read_plates` then runs the checks of the
long table on it, and every message names the source file, the plate and the
cell (or the raw table's row, BARCODE and POSITION).

Sources (:func:`plate_sources`): one file, a folder (its ``.csv`` and
``.xlsx`` files, sorted by name, hidden files ignored) or a list of files.
Where messages point: a structural mistake (a block or grid of the wrong
shape, an unknown block, no grid) names the file and its spreadsheet row
(``row 3``: every line of the file counted from 1); a bad value names the
file, then ``row C05 (plate P1)`` (the grid cell and plate; for a value of
the plate map, the map file) or, for GDSC tables, ``row 12 (BARCODE 1001,
POSITION 37)`` (the raw table's 1-based data row) and the source column
(``TAG``, ``CONC``, ``INTENSITY``, ...). Grid cells are named ``C05`` (row
letter, column number; rows A..Z then AA..AF on 1536-well plates). A
1536-well plate is read, but the analysis takes wells A01..P24 only, so
:func:`~sepher.io.plates.read_plates` stops at its first well beyond P24.

Forms
-----
``long``
    The long table itself (CSV), read unchanged; ``source_plate`` is
    ``plate_id``, ``source_well`` is ``well``.
``plater``
    The R package plater's format (Hughes, plater 1.0, ``read_plate``): one
    CSV (or XLSX) per plate, plate id = file stem. Each variable is a block:
    a header row ``<variable>,1,2,...,12`` (24 or 48 columns on 384- and
    1536-well plates), then one row per plate row ``A,...`` .. ``H,...``
    (``P``, ``AF``), blocks separated by blank lines. The plate size comes
    from the block shape: 8 x 12, 16 x 24 or 32 x 48; any other shape, or
    blocks of different shapes, stop the import. Variables are the long
    columns except ``plate_id`` (the file name): every other required column
    must be a block; ``time_h`` may be. A blank cell is no value for that
    well; a well blank in every block is not a well (skipped).
``grid``
    A reader's raw export: one CSV or XLSX per plate holding the signal grid,
    possibly below header lines (instrument, date, ``Plate 1``, ...) that are
    ignored. The grid is found by its header row of column numbers
    ``1..N`` followed by a row labelled ``A`` in the column left of ``1``;
    it ends at the first row not labelled with the next letter. Cells right
    of column N are ignored. Plate id = file stem; an XLSX with several
    sheets holding a grid gives one plate per such sheet, id
    ``<stem>_<sheet>`` (sheets without a grid are skipped). Every other
    long column comes from the plate map (``plate_map``), a plater-form file
    (blocks of all long columns but ``plate_id`` and ``signal``): one file
    used for every plate, or a folder holding one map per plate named
    ``<plate id>.csv`` (or ``.xlsx``). A well of the map is a cell with a
    value in any block. Each reading cell becomes:

    * a number: the well's ``signal`` (no thousands separators, ``.`` as the
      decimal mark: anything else stops the import at that cell);
    * an overflow marker (:data:`OVERFLOW_MARKERS`, any case, or text
      starting with ``>``): the reading is above the detector range, so the
      well has no value: it is left out of the long table and logged
      ``overflow``;
    * blank or a missing marker (:data:`MISSING_MARKERS`) in a well of the
      map: an error (the map expects a reading there);
    * any reading (overflow too) in a cell the map does not use: ignored,
      logged ``not in plate map``.
``gdsc``
    GDSC-style long raw tables (GDSC1/GDSC2 public raw data; gdscIC50's
    "GDSC raw data" vignette): one row per well, headers in any case.
    Required columns: ``BARCODE, POSITION, TAG, CELL_LINE_NAME, CONC,
    INTENSITY`` and ``DRUG_NAME`` or ``DRUG_ID``. ``plate_id`` = BARCODE;
    ``well`` from POSITION (1-based, row-major) and the plate size: the
    ``PLATE_SIZE`` column if present, else the smallest of 96, 384 and 1536
    holding the file's largest POSITION; ``role`` from TAG
    (:data:`GDSC_TAGS`); ``drug`` = DRUG_NAME if present, else DRUG_ID
    (``none`` for a control well with neither); ``concentration`` = CONC in
    ``uM`` (GDSC concentrations are micromolar; a control without CONC is
    ``0``, unit ``none``); ``signal`` = INTENSITY; ``cell_line`` =
    CELL_LINE_NAME; ``condition`` = CONDITION if present, else ``parental``;
    ``replicate`` = REPLICATE if present, else BARCODE (each screened GDSC
    plate is an independent experiment); ``time_h`` = TIME_H if present,
    else 24 x DURATION (days) if present. Rows: file order, then plates in
    order of first appearance, then POSITION.

The import log
--------------
Wells left out are recorded: pass ``log=[]`` to :func:`import_plates` and it
appends one dict per well (:data:`LOG_COLUMNS`: ``source_file,
source_plate, source_well, value, action``); :func:`import_log_table` makes
it a table. Actions: ``overflow``, ``not in plate map`` (grid);
``unused well (UN-USED)``, ``seeding control (SC)``, ``back-fill (DMSO)``,
``untreated control (NC-0; NC-1 is this plate's vehicle)`` (gdsc).

Writers (:func:`write_plater`, :func:`write_grid`, :func:`write_gdsc`) write
a long table in each form, for users moving data between tools and for the
round-trip tests.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from sepher.errors import InputError, did_you_mean
from sepher.io.plates import OPTIONAL_COLUMNS, PLATES_COLUMNS, _read_long

__all__ = [
    "GDSC_TAGS",
    "LOG_COLUMNS",
    "MISSING_MARKERS",
    "OVERFLOW_MARKERS",
    "PLATE_FORMATS",
    "PLATE_SHAPES",
    "PROVENANCE_COLUMNS",
    "import_log_table",
    "row_letters",
    "to_micromolar",
    "import_plates",
    "plate_sources",
    "write_gdsc",
    "write_grid",
    "write_plater",
]

#: Forms of the plates input (config ``plates_format``).
PLATE_FORMATS = ("long", "plater", "grid", "gdsc")

#: Plate sizes and their (rows, columns).
PLATE_SHAPES = {96: (8, 12), 384: (16, 24), 1536: (32, 48)}

#: Provenance columns added by :func:`import_plates`.
PROVENANCE_COLUMNS = ("source_file", "source_plate", "source_well")

#: Columns of the import log (:func:`import_log_table`).
LOG_COLUMNS = ("source_file", "source_plate", "source_well", "value", "action")

#: Reading-cell texts meaning "above the detector range" (any case; also any text
#: starting with ``>``, e.g. ``>3000000``).
OVERFLOW_MARKERS = ("OVRFLW", "OVER", "OVERFLOW", "SAT", "SATURATED", "****")

#: Reading-cell texts meaning "no reading" (any case), treated as a blank cell.
MISSING_MARKERS = ("-", "NaN", "NA", "N/A")

#: GDSC TAGs read, and what each becomes (``<n>``, ``<m>``: numbers).
GDSC_TAGS = {
    "L<n>-D<m>-S": "treated (library drug, dose m, single agent)",
    "R<n>-D<m>-S": "treated (reference compound)",
    "A<n>-S": "treated (anchor drug alone)",
    "PC<n>-D<m>-S": "treated (positive control titration)",
    "NC-1": "vehicle (negative control, DMSO)",
    "NC-0": "vehicle (negative control, untreated) unless the plate has NC-1 wells: then left out",
    "B": "blank (medium, no cells)",
    "PC-<n>": "kill (positive control without titration)",
    "T0": "time0 (sepher: cells read at treatment time)",
    "UN-USED": "left out (no cells)",
    "SC": "left out (seeding control)",
    "DMSO": "left out (back-fill row of a treated position)",
}

_GDSC_RULES = (
    (re.compile(r"^L\d+-D\d+-S$"), "treated"),
    (re.compile(r"^R\d+-D\d+-S$"), "treated"),
    (re.compile(r"^A\d+-S$"), "treated"),
    (re.compile(r"^PC\d+-D\d+-S$"), "treated"),
    (re.compile(r"^NC-1$"), "vehicle"),
    (re.compile(r"^NC-0$"), "nc0"),
    (re.compile(r"^B$"), "blank"),
    (re.compile(r"^PC-?\d+$"), "kill"),
    (re.compile(r"^T0$"), "time0"),
    (re.compile(r"^UN-USED$"), "unused well (UN-USED)"),
    (re.compile(r"^SC$"), "seeding control (SC)"),
    (re.compile(r"^DMSO$"), "back-fill (DMSO)"),
)
_GDSC_ROLES = ("treated", "vehicle", "blank", "kill", "time0", "nc0")
_GDSC_NONE = ("", "NA", "NAN", "NULL")
_SHAPE_TEXT = "8 x 12, 16 x 24 or 32 x 48 wells (rows x columns)"
_SUFFIXES = (".csv", ".xlsx")


# ---------------------------------------------------------------- sources, cells


def plate_sources(source) -> list[Path]:
    """The plate files of `source`.

    Parameters
    ----------
    source : path or list of paths
        A file, a folder (its ``.csv`` and ``.xlsx`` files, sorted by name,
        hidden files ignored) or a list of files (in the order given).

    Returns
    -------
    list of pathlib.Path

    Raises
    ------
    InputError
        Missing file or folder, a folder without plate files, an empty list,
        a file that is not ``.csv`` / ``.xlsx``.
    """
    if isinstance(source, (list, tuple)):
        if not source:
            raise InputError("plates", "at least one plate file (the list is empty)")
        paths = [Path(p) for p in source]
    else:
        folder = Path(source)
        if folder.is_dir():
            paths = sorted(
                (
                    p
                    for p in folder.iterdir()
                    if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in _SUFFIXES
                ),
                key=lambda p: p.name,
            )
            if not paths:
                raise InputError(
                    str(source), "a folder holding at least one .csv or .xlsx plate file"
                )
            return paths
        paths = [folder]
    for path in paths:
        if not path.is_file():
            raise InputError(
                str(path), "an existing plate file (.csv or .xlsx) or folder", value=str(path)
            )
        if path.suffix.lower() not in _SUFFIXES:
            raise InputError(str(path), "a .csv or .xlsx plate file", value=path.suffix)
    return paths


def _text(value) -> str:
    """A cell as text: numbers as Python writes them (integers without ``.0``)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            return "" if np.isnan(value) else repr(float(value))
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    return str(value).strip()


def _sheets(path: Path) -> list[tuple[str | None, list[list[str]]]]:
    """(sheet name or None for a CSV, rows of stripped cell texts) of a file."""
    file = str(path)
    if path.suffix.lower() == ".xlsx":
        import openpyxl  # lazy: only XLSX inputs need it

        try:
            book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except Exception as error:  # noqa: BLE001 - any unreadable workbook
            raise InputError(file, f"an Excel .xlsx workbook ({error})") from error
        try:
            return [
                (
                    sheet.title,
                    [[_text(v) for v in row] for row in sheet.iter_rows(values_only=True)],
                )
                for sheet in book.worksheets
            ]
        finally:
            book.close()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(file, f"a UTF-8 comma-separated text file ({error})") from error
    return [(None, [[c.strip() for c in row] for row in csv.reader(io.StringIO(text))])]


def row_letters(index: int) -> str:
    """Row label of 0-based plate row `index`: A..Z, then AA..AF (1536-well plates)."""
    return chr(65 + index) if index < 26 else "A" + chr(65 + index - 26)


def _well(row: int, col: int) -> str:
    return f"{row_letters(row)}{col + 1:02d}"


def _well_rc(name: str) -> tuple[int, int]:
    """0-based (row, column) of a well name A01..AF48 (writers)."""
    match = re.match(r"^([A-Z]{1,2})0*(\d+)$", str(name).strip().upper())
    if not match:
        raise ValueError(f"not a well name: {name!r}")
    letters = match.group(1)
    row = ord(letters) - 65 if len(letters) == 1 else 26 + ord(letters[1]) - 65
    return row, int(match.group(2)) - 1


def _shape_size(n_rows: int, n_cols: int) -> int | None:
    for size, shape in PLATE_SHAPES.items():
        if shape == (n_rows, n_cols):
            return size
    return None


def _header_width(row: list[str], col: int) -> int:
    """Number k of cells right of `col` reading 1, 2, ..., k (0 if none)."""
    k = 0
    while col + 1 + k < len(row) and row[col + 1 + k] == str(k + 1):
        k += 1
    return k


def _grid_rows(rows: list[list[str]], line: int, col: int) -> int:
    """Number of rows below header `line` labelled A, B, ... in column `col`."""
    n = 0
    while (
        line + 1 + n < len(rows)
        and col < len(rows[line + 1 + n])
        and rows[line + 1 + n][col].upper() == row_letters(n)
        and n < 32
    ):
        n += 1
    return n


def _cells(rows, line, col, n_rows, n_cols) -> list[list[str]]:
    """The n_rows x n_cols values below header `line`, right of the labels in `col`."""
    out = []
    for r in range(n_rows):
        cells = rows[line + 1 + r][col + 1 : col + 1 + n_cols]
        out.append(cells + [""] * (n_cols - len(cells)))
    return out


def _shape_error(file, line, column, n_rows, n_cols, what):
    return InputError(
        file,
        f"{what} of {_SHAPE_TEXT}",
        row=line + 1,
        column=column,
        value=f"{n_rows} x {n_cols}",
    )


# ---------------------------------------------------------------- plater blocks


def _read_blocks(path: Path, allowed, required, label=None):
    """Plater blocks of one sheet: ({variable: rows x cols texts}, (n_rows, n_cols)).

    `label` is the file as messages name it. Strict: every non-blank row is a
    block header or a block row.
    """
    file = label or str(path)
    sheets = _sheets(path)
    out = []
    for sheet, rows in sheets:
        where = file if sheet is None or len(sheets) == 1 else f"{file} (sheet {sheet})"
        blocks, shape, line = {}, None, 0
        while line < len(rows):
            row = rows[line]
            if not any(row):
                line += 1
                continue
            variable, width = row[0], _header_width(row, 0)
            if not variable or width == 0:
                raise InputError(
                    where,
                    "a plater block header: the variable name, then the column numbers "
                    "1, 2, ..., 12 (24, 48), with the plate rows A, B, ... below it",
                    row=line + 1,
                    value=",".join(row).rstrip(","),
                )
            if variable not in allowed:
                hint = None
                if variable == "plate_id":
                    hint = "The plate id is the file name (one file per plate)."
                else:
                    hint = did_you_mean(variable, allowed)
                raise InputError(
                    where,
                    f"a block named after a plates column ({', '.join(allowed)})",
                    row=line + 1,
                    value=variable,
                    hint=hint,
                )
            if variable in blocks:
                raise InputError(where, "each variable block once", row=line + 1, value=variable)
            n_rows = _grid_rows(rows, line, 0)
            if _shape_size(n_rows, width) is None:
                raise _shape_error(where, line, variable, n_rows, width, "a block")
            if shape is not None and shape != (n_rows, width):
                raise InputError(
                    where,
                    f"every block of one plate the same shape (the first is {shape[0]} x "
                    f"{shape[1]})",
                    row=line + 1,
                    column=variable,
                    value=f"{n_rows} x {width}",
                )
            shape = (n_rows, width)
            for r in range(n_rows):
                extra = [c for c in rows[line + 1 + r][1 + width :] if c]
                if extra:
                    raise InputError(
                        where,
                        f"a block {width} columns wide (nothing right of column {width})",
                        row=line + 2 + r,
                        column=variable,
                        value=extra[0],
                    )
            blocks[variable] = _cells(rows, line, 0, n_rows, width)
            line += 1 + n_rows
        if not blocks:
            continue
        for column in required:
            if column not in blocks:
                raise InputError(
                    where,
                    f"a block for every plates column: '{column}' is missing "
                    f"(blocks: {', '.join(blocks)})",
                    column=column,
                )
        out.append((sheet, blocks, shape))
    if not out:
        raise InputError(file, "at least one plater block ('<variable>,1,2,...,12')")
    return out


def _plate_ids(path: Path, sheets) -> list[str]:
    """Plate id per sheet: the file stem, or ``<stem>_<sheet>`` when several."""
    if len(sheets) == 1:
        return [path.stem]
    return [f"{path.stem}_{sheet}" for sheet in sheets]


# ---------------------------------------------------------------- the forms


def _import_long(paths):
    tables, ctx = [], []
    for path in paths:
        table = _read_long(path)
        keep = [c for c in (*PLATES_COLUMNS, *OPTIONAL_COLUMNS) if c in table.columns]
        table = table[keep].copy()
        table["source_file"] = str(path)
        table["source_plate"] = table["plate_id"]
        table["source_well"] = table["well"]
        tables.append(table)
        ctx += [(str(path), "", str(i + 1), {}, {}) for i in range(len(table))]
    return pd.concat(tables, ignore_index=True), ctx


def _import_plater(paths):
    required = [c for c in PLATES_COLUMNS if c not in ("plate_id", "well")]
    allowed = required + list(OPTIONAL_COLUMNS)
    records, ctx = [], []
    for path in paths:
        sheets = _read_blocks(path, allowed, required)
        ids = _plate_ids(path, [s for s, _, _ in sheets])
        for plate, (_sheet, blocks, (n_rows, n_cols)) in zip(ids, sheets, strict=True):
            for r in range(n_rows):
                for c in range(n_cols):
                    values = {v: grid[r][c] for v, grid in blocks.items()}
                    if not any(values.values()):
                        continue
                    cell = _well(r, c)
                    records.append(
                        {"plate_id": plate, "well": cell, **values, "source_file": str(path),
                         "source_plate": plate, "source_well": cell}
                    )  # fmt: skip
                    ctx.append((str(path), "", f"{cell} (plate {plate})", {}, {}))
    return records, ctx


def _find_grids(rows):
    """(line, column, n_rows, n_cols) of every signal grid header in `rows`."""
    found = []
    for line, row in enumerate(rows):
        for col in range(len(row) - 1):
            if row[col + 1] != "1":
                continue
            width = _header_width(row, col)
            if width >= 2 and line + 1 < len(rows) and col < len(rows[line + 1]):
                if rows[line + 1][col].upper() == "A":
                    found.append((line, col, _grid_rows(rows, line, col), width))
                    break
    return found


def _map_for(plate_map, plate: str, cache: dict):
    """The plate-map blocks of `plate` (cached per map file)."""
    if plate_map is None or (isinstance(plate_map, str) and not plate_map.strip()):
        raise InputError(
            "config",
            "a plate-map file (or a folder of one map per plate) for plates_format grid",
            column="plate_map",
        )
    base = Path(plate_map)
    if base.is_dir():
        candidates = [base / f"{plate}{suffix}" for suffix in _SUFFIXES]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            raise InputError(
                str(base),
                f"a plate map for plate {plate} in the plate_map folder "
                f"({plate}.csv or {plate}.xlsx)",
                value=plate,
            )
    elif base.is_file():
        path = base
    else:
        raise InputError(str(base), "an existing plate-map file or folder", value=str(base))
    if path not in cache:
        required = [c for c in PLATES_COLUMNS if c not in ("plate_id", "well", "signal")]
        allowed = required + list(OPTIONAL_COLUMNS)
        sheets = _read_blocks(path, allowed, required)
        if len(sheets) > 1:
            raise InputError(str(path), "one plate map per file (one sheet of blocks)")
        cache[path] = sheets[0]
    return path, cache[path]


def _is_overflow(text: str) -> bool:
    return text.upper() in OVERFLOW_MARKERS or text.startswith(">")


def _is_missing(text: str) -> bool:
    return text == "" or text.upper() in {m.upper() for m in MISSING_MARKERS}


def _import_grid(paths, plate_map, log):
    records, ctx, cache = [], [], {}
    for path in paths:
        file = str(path)
        sheets = _sheets(path)
        grids = []
        for sheet, rows in sheets:
            where = file if sheet is None or len(sheets) == 1 else f"{file} (sheet {sheet})"
            found = _find_grids(rows)
            if len(found) > 1:
                raise InputError(
                    where,
                    "one grid of readings per plate (a second header row of column "
                    f"numbers 1..{found[1][3]} was found)",
                    row=found[1][0] + 1,
                )
            if found:
                line, col, n_rows, n_cols = found[0]
                if _shape_size(n_rows, n_cols) is None:
                    raise _shape_error(where, line, None, n_rows, n_cols, "a grid of readings")
                grids.append((sheet, where, _cells(rows, line, col, n_rows, n_cols)))
        if not grids:
            raise InputError(
                file,
                "a grid of readings: a header row of column numbers 1, 2, ..., 12 (24, 48) "
                "and the plate rows A, B, ... below it, labelled in the column left of 1",
                hint="A file with ';' or tab separators must be saved comma-separated.",
            )
        ids = _plate_ids(path, [g[0] for g in grids])
        for plate, (sheet, where, cells) in zip(ids, grids, strict=True):
            map_path, (_, blocks, shape) = _map_for(plate_map, plate, cache)
            if shape != (len(cells), len(cells[0])):
                raise InputError(
                    str(map_path),
                    f"a plate map of the shape of the readings of plate {plate} "
                    f"({len(cells)} x {len(cells[0])} in {where})",
                    value=f"{shape[0]} x {shape[1]}",
                )
            source_plate = plate if sheet is None else sheet
            for r in range(shape[0]):
                for c in range(shape[1]):
                    cell, text = _well(r, c), cells[r][c]
                    values = {v: grid[r][c] for v, grid in blocks.items()}
                    mapped = any(values.values())
                    entry = {"source_file": file, "source_plate": source_plate,
                             "source_well": cell, "value": text}  # fmt: skip
                    if not mapped:
                        if not _is_missing(text):
                            log.append({**entry, "action": "not in plate map"})
                        continue
                    if _is_overflow(text):
                        log.append({**entry, "action": "overflow"})
                        continue
                    if _is_missing(text):
                        raise InputError(
                            where,
                            f"a reading (the plate map {map_path} has a well there)",
                            row=f"{cell} (plate {plate})",
                            column="signal",
                            value=text,
                            hint="Overflow markers ("
                            + ", ".join(OVERFLOW_MARKERS)
                            + " or text starting with '>') leave a well out; blank and "
                            + ", ".join(MISSING_MARKERS)
                            + " are no reading.",
                        )
                    records.append(
                        {"plate_id": plate, "well": cell, **values, "signal": text,
                         "source_file": file, "source_plate": source_plate,
                         "source_well": cell}
                    )  # fmt: skip
                    ctx.append((where, str(map_path), f"{cell} (plate {plate})", {}, {}))
    return records, ctx


def _import_gdsc(paths, log):
    records, ctx = [], []
    for path in paths:
        file = str(path)
        if path.suffix.lower() == ".xlsx":
            sheet_rows = _sheets(path)[0][1]
            raw = None
            if sheet_rows:
                width = len(sheet_rows[0])
                body = [(row + [""] * width)[:width] for row in sheet_rows[1:]]
                raw = pd.DataFrame(body, columns=sheet_rows[0])
        else:
            try:
                raw = pd.read_csv(path, dtype=str, keep_default_na=False)
            except pd.errors.EmptyDataError:
                raw = None
            except (pd.errors.ParserError, UnicodeDecodeError) as error:
                raise InputError(file, f"a comma-separated text file ({error})") from error
        if raw is None or len(raw) == 0:
            raise InputError(file, "a GDSC raw table: a header row and at least one well row")
        names = {str(c).strip().upper(): str(c) for c in raw.columns}
        raw = raw.map(lambda v: "" if v is None else str(v).strip())
        drug_column = names.get("DRUG_NAME") or names.get("DRUG_ID")
        needed = ["BARCODE", "POSITION", "TAG", "CELL_LINE_NAME", "CONC", "INTENSITY"]
        absent = [c for c in needed if c not in names]
        absent += ["DRUG_NAME"] if drug_column is None else []
        if absent:
            raise InputError(
                file,
                f"a column named '{absent[0]}' (GDSC raw data columns, any case: "
                f"{', '.join(needed)}, DRUG_NAME or DRUG_ID)",
                column=absent[0],
            )

        def col(name, names=names, raw=raw):
            return raw[names[name]].tolist() if name in names else None

        barcode, position, tags = col("BARCODE"), col("POSITION"), col("TAG")
        conc, sizes = col("CONC"), col("PLATE_SIZE")

        def where(i, barcode=barcode, position=position):
            return f"{i + 1} (BARCODE {barcode[i]}, POSITION {position[i]})"

        positions = []
        for i, text in enumerate(position):
            value = int(text) if text.isdigit() else 0
            if value < 1:
                raise InputError(
                    file, "a well POSITION 1, 2, ... (row-major)", row=where(i),
                    column=names["POSITION"], value=text,
                )  # fmt: skip
            positions.append(value)
        if sizes is None:
            largest = max(positions)
            size = next((s for s in PLATE_SHAPES if s >= largest), None)
            if size is None:
                i = positions.index(largest)
                raise InputError(
                    file, "a POSITION of a 1536-well plate (1..1536)", row=where(i),
                    column=names["POSITION"], value=position[i],
                )  # fmt: skip
            sizes = [size] * len(positions)
        else:
            for i, text in enumerate(sizes):
                if text not in ("96", "384", "1536"):
                    raise InputError(
                        file, "a PLATE_SIZE of 96, 384 or 1536", row=where(i),
                        column=names["PLATE_SIZE"], value=text,
                    )  # fmt: skip
            sizes = [int(s) for s in sizes]
        roles = []
        for i, tag in enumerate(tags):
            role = next((r for rule, r in _GDSC_RULES if rule.match(tag.upper())), None)
            if role is None:
                raise InputError(
                    file,
                    "a known GDSC TAG (" + ", ".join(GDSC_TAGS) + ")",
                    row=where(i),
                    column=names["TAG"],
                    value=tag,
                    hint="Combination treatments (-C tags) are not read.",
                )
            if positions[i] > sizes[i]:
                raise InputError(
                    file, f"a POSITION of a {sizes[i]}-well plate (1..{sizes[i]})",
                    row=where(i), column=names["POSITION"], value=position[i],
                )  # fmt: skip
            roles.append(role)
        with_nc1 = {b for b, r in zip(barcode, roles, strict=True) if r == "vehicle"}
        plates_order = list(dict.fromkeys(barcode))
        order = sorted(
            range(len(roles)), key=lambda i: (plates_order.index(barcode[i]), positions[i], i)
        )
        drug_name, drug_id = col("DRUG_NAME"), col("DRUG_ID")
        condition, replicate = col("CONDITION"), col("REPLICATE")
        cell_line, intensity = col("CELL_LINE_NAME"), col("INTENSITY")
        time_h, duration = col("TIME_H"), col("DURATION")
        source_columns = {
            "plate_id": names["BARCODE"], "well": names["POSITION"], "role": names["TAG"],
            "cell_line": names["CELL_LINE_NAME"], "concentration": names["CONC"],
            "concentration_unit": names["CONC"], "signal": names["INTENSITY"],
            "drug": drug_column, "condition": names.get("CONDITION", "CONDITION"),
            "replicate": names.get("REPLICATE", names["BARCODE"]),
            "time_h": names.get("TIME_H", names.get("DURATION", "TIME_H")),
        }  # fmt: skip
        for i in order:
            role = roles[i]
            entry = {"source_file": file, "source_plate": barcode[i],
                     "source_well": position[i], "value": intensity[i]}  # fmt: skip
            if role not in _GDSC_ROLES:
                log.append({**entry, "action": role})
                continue
            if role == "nc0":
                if barcode[i] in with_nc1:
                    log.append(
                        {**entry, "action": "untreated control (NC-0; NC-1 is this plate's "
                         "vehicle)"}
                    )  # fmt: skip
                    continue
                role = "vehicle"
            name = drug_name[i] if drug_name is not None else ""
            if name.upper() in _GDSC_NONE and drug_id is not None:
                name = drug_id[i]
            if name.upper() in _GDSC_NONE:
                name = "" if role == "treated" else "none"
            dose = conc[i]
            given = dose.upper() not in _GDSC_NONE
            if not given:
                dose = "" if role == "treated" else "0"
            hours = ""
            if time_h is not None:
                hours = time_h[i]
            elif duration is not None and duration[i].upper() not in _GDSC_NONE:
                try:
                    hours = _text(24.0 * float(duration[i]))
                except ValueError:
                    hours = duration[i]  # the long checks name it
            p = positions[i] - 1
            n_cols = PLATE_SHAPES[sizes[i]][1]
            record = {
                "plate_id": barcode[i],
                "well": _well(p // n_cols, p % n_cols),
                "cell_line": cell_line[i],
                "condition": condition[i] if condition is not None else "parental",
                "drug": name,
                "concentration": dose,
                "concentration_unit": "uM" if given or role == "treated" else "none",
                "role": role,
                "replicate": replicate[i] if replicate is not None else barcode[i],
                "signal": intensity[i],
            }
            if time_h is not None or duration is not None:
                record["time_h"] = hours
            records.append(
                {**record, "source_file": file, "source_plate": barcode[i],
                 "source_well": position[i]}
            )  # fmt: skip
            ctx.append((file, "", where(i), source_columns, {"role": tags[i], "well": position[i]}))
    return records, ctx


def _import(source, fmt, plate_map=None, log=None):
    """(long table of strings, locator) of `source` (:func:`import_plates`)."""
    if fmt not in PLATE_FORMATS:
        raise InputError(
            "config", f"one of {', '.join(PLATE_FORMATS)}", column="plates_format", value=fmt
        )
    paths = plate_sources(source)
    log = [] if log is None else log
    if fmt == "long":
        table, ctx = _import_long(paths)
    else:
        if fmt == "plater":
            records, ctx = _import_plater(paths)
        elif fmt == "grid":
            records, ctx = _import_grid(paths, plate_map, log)
        else:
            records, ctx = _import_gdsc(paths, log)
        if not records:
            raise InputError(
                ", ".join(map(str, paths)),
                "at least one well with a value (every well is blank or left out)",
            )
        table = pd.DataFrame.from_records(records)
    columns = list(PLATES_COLUMNS) + [c for c in OPTIONAL_COLUMNS if c in table.columns]
    table = table.reindex(columns=[*columns, *PROVENANCE_COLUMNS]).fillna("")
    table = table.astype(str).reset_index(drop=True)

    def locate(index, column, value):
        file, map_file, label, names, values = ctx[int(index)]
        if fmt == "grid" and column not in (None, "signal", "well", "plate_id"):
            file = map_file
        if column == "well" and fmt in ("plater", "grid"):
            column = None  # the cell is the well
        elif column is not None:
            value = values.get(column, value)
            column = names.get(column, column)
        return file, label, column, value

    return table, locate


def import_plates(source, fmt: str, plate_map=None, *, log=None) -> pd.DataFrame:
    """Read plates in any form (module docstring) as the long table, with provenance.

    Parameters
    ----------
    source : path or list of paths
        A file, a folder or a list of files (:func:`plate_sources`).
    fmt : {"long", "plater", "grid", "gdsc"}
        Form of the files.
    plate_map : path, optional
        ``grid`` only: one plater-form map used for every plate, or a folder
        of one map per plate named ``<plate id>.csv`` / ``.xlsx``.
    log : list, optional
        Receives one dict per well left out (:data:`LOG_COLUMNS`).

    Returns
    -------
    pandas.DataFrame
        Strings: the long columns (``time_h`` when the source gives it), then
        ``source_file, source_plate, source_well``; rows in file order, then
        row-major well order. Not yet validated: :func:`read_plates` with
        the same `fmt` validates it.

    Raises
    ------
    InputError
        Missing or empty source; a block or grid not 8 x 12, 16 x 24 or
        32 x 48; an unknown or missing plater block; no grid in a reading
        file, two grids in one; a missing plate map, or one of another
        shape; a blank (or missing-marker) reading in a well of the map; a
        GDSC file without a required column, an unknown TAG, a POSITION
        outside the plate.
    """
    table, _ = _import(source, fmt, plate_map, log)
    return table


def import_log_table(log) -> pd.DataFrame:
    """The import log (:func:`import_plates`' ``log`` rows) as a table of :data:`LOG_COLUMNS`."""
    return pd.DataFrame(list(log), columns=list(LOG_COLUMNS)).astype(str)


# ---------------------------------------------------------------- writers


def _plates_of(long_df: pd.DataFrame):
    """(plate id, its wells' rows, (n_rows, n_cols)) per plate, in order of appearance."""
    for plate, rows in long_df.groupby("plate_id", sort=False):
        rc = [_well_rc(w) for w in rows["well"]]
        last_row = max(r for r, _ in rc) + 1
        last_col = max(c for _, c in rc) + 1
        size = next(s for s, (nr, nc) in PLATE_SHAPES.items() if nr >= last_row and nc >= last_col)
        yield str(plate), rows, rc, PLATE_SHAPES[size]


def _safe_name(plate: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", plate) or plate.startswith("."):
        raise ValueError(f"plate id {plate!r} cannot be a file name")
    return plate


def _has_time(long_df) -> bool:
    return "time_h" in long_df.columns and bool(
        long_df["time_h"].map(lambda v: _text(v) != "").any()
    )


def _block_lines(variable, grid, n_cols) -> list[list[str]]:
    lines = [[variable, *map(str, range(1, n_cols + 1))]]
    lines += [[row_letters(r), *cells] for r, cells in enumerate(grid)]
    return lines


def _write_rows(path: Path, lines) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows(lines)


def _blocks_of(rows, rc, shape, variables) -> list[list[str]]:
    lines = []
    for variable in variables:
        grid = [[""] * shape[1] for _ in range(shape[0])]
        for (r, c), value in zip(rc, rows[variable], strict=True):
            grid[r][c] = _text(value)
        if lines:
            lines.append([])
        lines += _block_lines(variable, grid, shape[1])
    return lines


def write_plater(long_df: pd.DataFrame, folder) -> list[Path]:
    """Write a long plates table as plater files, one ``<plate_id>.csv`` per plate.

    Blocks: every long column but ``plate_id`` (and ``time_h`` when any well
    has it); plate size: the smallest of 96 / 384 / 1536 holding the plate's
    wells. Numbers are written as Python writes them (exact round trip).

    Returns
    -------
    list of pathlib.Path
        The files written, in plate order.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    variables = [c for c in PLATES_COLUMNS if c not in ("plate_id", "well")]
    variables += ["time_h"] if _has_time(long_df) else []
    written = []
    for plate, rows, rc, shape in _plates_of(long_df):
        path = folder / f"{_safe_name(plate)}.csv"
        _write_rows(path, _blocks_of(rows, rc, shape, variables))
        written.append(path)
    return written


def write_grid(long_df: pd.DataFrame, folder, map_path) -> list[Path]:
    """Write a long plates table as reader grid exports plus plate maps.

    Each plate becomes ``<folder>/<plate_id>.csv``: two header lines (as a
    reader writes: the writer and ``Plate <id>``), a blank line, then the
    signal grid. `map_path` ending in ``.csv`` is one map used for every
    plate (the plates must then share one layout); otherwise it is a folder
    of one ``<plate_id>.csv`` map per plate.

    Returns
    -------
    list of pathlib.Path
        The reading files written, in plate order.

    Raises
    ------
    ValueError
        One map file asked for plates whose layouts differ.
    """
    folder, map_path = Path(folder), Path(map_path)
    folder.mkdir(parents=True, exist_ok=True)
    single = map_path.suffix.lower() == ".csv"
    (map_path.parent if single else map_path).mkdir(parents=True, exist_ok=True)
    variables = [c for c in PLATES_COLUMNS if c not in ("plate_id", "well", "signal")]
    variables += ["time_h"] if _has_time(long_df) else []
    written, shared = [], None
    for plate, rows, rc, shape in _plates_of(long_df):
        grid = [[""] * shape[1] for _ in range(shape[0])]
        for (r, c), value in zip(rc, rows["signal"], strict=True):
            grid[r][c] = _text(value)
        lines = [["sepher write_grid"], [f"Plate {plate}"], []]
        lines += _block_lines("", grid, shape[1])
        path = folder / f"{_safe_name(plate)}.csv"
        _write_rows(path, lines)
        written.append(path)
        layout = _blocks_of(rows, rc, shape, variables)
        if single:
            if shared is not None and shared != layout:
                raise ValueError(f"plate {plate} has another layout: one map per plate needed")
            shared = layout
        else:
            _write_rows(map_path / f"{plate}.csv", layout)
    if single and shared is not None:
        _write_rows(map_path, shared)
    return written


_MOLAR = {"pM": 1e-6, "nM": 1e-3, "uM": 1.0, "µM": 1.0, "μM": 1.0, "mM": 1e3, "M": 1e6}
_MASS = {"pg/mL": 1e-12, "ng/mL": 1e-9, "ug/mL": 1e-6, "µg/mL": 1e-6, "μg/mL": 1e-6,
         "mg/mL": 1e-3, "g/L": 1e-3, "mg/L": 1e-6}  # fmt: skip  # g per mL


def to_micromolar(value: float, unit: str, molar_mass: float | None = None) -> float:
    """`value` in `unit` as µM (mass units need `molar_mass` in g/mol)."""
    if unit in _MOLAR:
        return value * _MOLAR[unit]
    if unit in _MASS:
        if not molar_mass:
            raise ValueError(f"unit {unit}: a molar mass (g/mol) is needed for µM")
        return value * _MASS[unit] * 1e3 / molar_mass * 1e6
    raise ValueError(f"unit {unit!r}: not a concentration unit known to write_gdsc")


def write_gdsc(long_df: pd.DataFrame, path, molar_mass: dict | None = None) -> Path:
    """Write a long plates table as one GDSC-style raw CSV.

    Columns: ``BARCODE`` (plate_id), ``POSITION`` (row-major on the
    plate's size), ``PLATE_SIZE``, ``CELL_LINE_NAME``, ``CONDITION``,
    ``REPLICATE``, ``DRUG_ID`` (1, 2, ... by first appearance), ``DRUG_NAME``,
    ``TAG`` (treated ``L<drug>-D<dose rank>-S``, D1 the plate's highest
    dose of that drug; vehicle ``NC-1``; blank ``B``; kill ``PC-1``; time0
    ``T0``), ``CONC`` (µM: molar units converted; mass units need the drug's
    ``molar_mass`` in g/mol), ``INTENSITY`` and ``TIME_H`` (when any well has
    ``time_h``). Controls without a drug have empty ``DRUG_ID``/``CONC``.

    Returns
    -------
    pathlib.Path
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    molar_mass = molar_mass or {}
    tag_of = {"vehicle": "NC-1", "blank": "B", "kill": "PC-1", "time0": "T0"}
    drugs = {}
    rows_out = []
    time = _has_time(long_df)
    for plate, rows, rc, shape in _plates_of(long_df):
        size = _shape_size(*shape)
        treated = rows[rows["role"] == "treated"]
        ranks = {}
        for drug, doses in treated.groupby("drug", sort=False)["concentration"]:
            ordered = sorted({float(d) for d in doses}, reverse=True)
            ranks[drug] = {d: k + 1 for k, d in enumerate(ordered)}
        library = {d: k + 1 for k, d in enumerate(ranks)}
        for (r, c), row in zip(rc, rows.itertuples(index=False), strict=True):
            role = row.role
            has_drug = row.drug != "none" and float(row.concentration) > 0
            if has_drug:
                drugs.setdefault(row.drug, len(drugs) + 1)
            if role == "treated":
                dose = ranks[row.drug][float(row.concentration)]
                tag = f"L{library[row.drug]}-D{dose}-S"
            else:
                tag = tag_of[role]
            conc = (
                _text(
                    to_micromolar(
                        float(row.concentration), row.concentration_unit,
                        molar_mass.get(row.drug),
                    )
                )
                if has_drug
                else ""
            )  # fmt: skip
            out = {
                "BARCODE": plate,
                "POSITION": r * shape[1] + c + 1,
                "PLATE_SIZE": size,
                "CELL_LINE_NAME": row.cell_line,
                "CONDITION": row.condition,
                "REPLICATE": _text(row.replicate),
                "DRUG_ID": drugs.get(row.drug, "") if has_drug else "",
                "DRUG_NAME": row.drug if has_drug else "",
                "TAG": tag,
                "CONC": conc,
                "INTENSITY": _text(row.signal),
            }
            if time:
                out["TIME_H"] = _text(row.time_h)
            rows_out.append(out)
    pd.DataFrame(rows_out).to_csv(path, index=False)
    return path
