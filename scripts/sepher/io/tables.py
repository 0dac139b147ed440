"""Writing result tables: one format for every CSV the workflow makes.

Floats are written with 10 significant digits and LF line endings, rows in a
fixed order, so the same inputs give byte-identical tables. Many tables of
one kind (shards, batches) are joined with :func:`concat_tables` (on disk,
as text) or :func:`iter_tables` (one table at a time, as data frames).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

FLOAT_FORMAT = "%.10g"


#: Characters that make pandas (Python's csv module, QUOTE_MINIMAL) quote a field.
_QUOTED = re.compile(r'[,"\r\n]')
#: Tables from this many rows up are written by :func:`_csv_text` when they can be.
FAST_WRITE_ROWS = 10_000


def _column_text(column: pd.Series) -> list[str] | None:
    """A column's CSV fields as pandas writes them, or None when not a plain column.

    float64: ``FLOAT_FORMAT``, NaN empty; int64: decimal; bool: ``True``/``False``;
    object columns of strings (missing values empty) as they are. Anything else
    (categories, dates, nullable integers, mixed objects, strings that need quotes)
    is left to pandas.
    """
    kind = column.dtype
    if not isinstance(kind, np.dtype):  # pandas extension types: categories, nullable, ...
        return None
    values = column.to_numpy()
    if kind == np.dtype(np.float64):
        return ["" if v != v else FLOAT_FORMAT % v for v in values.tolist()]
    if kind in (np.dtype(np.int64), np.dtype(np.bool_)):
        return list(map(str, values.tolist()))
    if kind.kind == "O" and pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        text = ["" if v is None or v is pd.NA or v != v else v for v in values.tolist()]
        if any(_QUOTED.search(v) for v in text):
            return None
        return text
    return None


def _csv_text(table: pd.DataFrame) -> str | None:
    """`table` as the exact text ``table.to_csv(index=False, float_format=FLOAT_FORMAT,
    lineterminator="\\n")`` gives, built column by column (several times faster at a
    million rows: pandas formats cell by cell through its own writer), or None when a
    column or a name is not plain (then pandas writes it)."""
    names = list(table.columns)
    if len(names) < 2 or not all(isinstance(n, str) and not _QUOTED.search(n) for n in names):
        return None
    if table.columns.has_duplicates:
        return None
    columns = []
    for i in range(len(names)):
        text = _column_text(table.iloc[:, i])
        if text is None:
            return None
        columns.append(text)
    lines = [",".join(names)]
    lines.extend(map(",".join, zip(*columns, strict=True)))
    return "\n".join(lines) + "\n"


def write_table(table: pd.DataFrame, path) -> None:
    """Write `table` as CSV at `path` (parent folders created).

    The text is pandas' ``to_csv`` (no index, ``FLOAT_FORMAT``, LF line endings);
    large plain tables (:data:`FAST_WRITE_ROWS` rows or more of float, integer,
    boolean and string columns) are formatted column by column instead, with
    identical bytes (tests/test_survival_units.py).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = _csv_text(table) if len(table) >= FAST_WRITE_ROWS else None
    if text is None:
        table.to_csv(path, index=False, float_format=FLOAT_FORMAT, lineterminator="\n")
        return
    with open(path, "w", newline="") as stream:
        stream.write(text)


def read_table(path) -> pd.DataFrame:
    """Read a table written by :func:`write_table` (empty strings stay empty)."""
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def write_json(data, path) -> None:
    """Write `data` as sorted, indented JSON (deterministic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


# --------------------------------------------------------------------------- many tables
def table_header(path) -> list[str]:
    """Column names of a CSV table (its first line); ``[]`` for an empty file."""
    with open(path) as stream:
        line = stream.readline().rstrip("\n")
    return line.split(",") if line else []


def union_columns(paths) -> list[str]:
    """Union of the tables' columns, in order of first appearance (headers only are read)."""
    columns: dict[str, None] = {}
    for path in paths:
        columns.update(dict.fromkeys(table_header(path)))
    return list(columns)


def iter_tables(paths, read=read_table):
    """Yield the tables at `paths` one at a time, each with the union of their columns.

    A table without one of the columns gets it empty (NaN), so that the
    tables can be written one after another under one header
    (:func:`append_table`) or stacked with :func:`pandas.concat`, one table
    in memory at a time.

    Parameters
    ----------
    paths : sequence of path
    read : callable, default :func:`read_table`
        Reads one table (e.g. with column dtypes).
    """
    paths = list(paths)
    columns = union_columns(paths)
    for path in paths:
        yield read(path).reindex(columns=columns)


def append_table(table: pd.DataFrame, stream, *, header: bool) -> None:
    """Write `table` to an open text `stream` in :func:`write_table`'s format."""
    table.to_csv(stream, index=False, header=header, float_format=FLOAT_FORMAT, lineterminator="\n")


def concat_tables(paths, out_path) -> None:
    """Concatenate CSV tables into one at `out_path`, a table at a time, values as text.

    The result has the union of the tables' columns (:func:`union_columns`);
    a table without a column gets empty cells there. Tables whose header is
    that union are copied as text (so one table, or tables sharing a header,
    give their rows byte for byte); the others are read as text and
    reindexed. Empty files (no header) are skipped unless all are empty.

    Parameters
    ----------
    paths : sequence of path
        Tables in output order.
    out_path : path
    """
    paths = [path for path in paths if table_header(path)] or list(paths)[:1]
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    if len(paths) == 1:
        shutil.copyfile(paths[0], out_path)
        return
    columns = union_columns(paths)
    with open(out_path, "w", newline="") as out:
        for i, path in enumerate(paths):
            if table_header(path) == columns:  # the common case: copy the text
                with open(path) as stream:
                    if i:
                        stream.readline()
                    shutil.copyfileobj(stream, out)
                continue
            table = pd.read_csv(path, dtype=str, keep_default_na=False)
            append_table(table.reindex(columns=columns, fill_value=""), out, header=i == 0)


def split_table(path, column: str, shard_of, paths, row_paths, *, chunk_rows: int = 500_000):
    """Split a CSV table into shard files by the value of one column, values as text.

    The table is streamed in chunks of `chunk_rows` rows (bounded memory at
    any size) and every value is copied as text, so each shard file holds
    exactly the input's rows, in input order. Beside each shard file, the
    rows' 1-based numbers in the input, one a line, so that tables made
    from a shard can point at the user's file.

    Parameters
    ----------
    path : path
        The table.
    column : str
        Column whose value picks the shard.
    shard_of : mapping
        Value of `column` -> shard name.
    paths, row_paths : mapping
        Shard name -> shard file, and -> its row-numbers file.
    chunk_rows : int

    Returns
    -------
    dict
        Shard name -> number of rows written.

    Raises
    ------
    RuntimeError
        If a shard receives no rows.
    """
    started = set()
    rows = dict.fromkeys(paths, 0)
    reader = pd.read_csv(path, dtype=str, keep_default_na=False, chunksize=chunk_rows)
    for chunk in reader:
        shards = chunk[column].map(shard_of)
        for shard, part in chunk.groupby(shards, sort=True):
            part.to_csv(
                paths[shard],
                mode="a" if shard in started else "w",
                header=shard not in started,
                index=False,
                lineterminator="\n",
            )
            with open(row_paths[shard], "a" if shard in started else "w") as stream:
                stream.writelines(f"{row + 1}\n" for row in part.index)
            started.add(shard)
            rows[shard] += len(part)
    for shard in paths:
        if shard not in started:
            raise RuntimeError(f"shard {shard} received no rows")
    return rows


def per_distinct_value(column: pd.Series, function) -> pd.Series:
    """`function` (Series -> Series of the same length) applied to each distinct value once.

    A plates or cohort table repeats few values (plate ids, wells, roles,
    yes/no, dates) across millions of rows, and pandas' string methods loop in Python per
    element; hashing the column and transforming its distinct values is
    10-50 times faster and gives the same values.
    """
    codes, uniques = pd.factorize(column, use_na_sentinel=False)
    result = function(pd.Series(uniques, dtype=object))
    return pd.Series(result.to_numpy()[codes], index=column.index, name=column.name)
