"""Writing result tables: one format for every CSV the workflow makes.

Floats are written with 10 significant digits and LF line endings, rows in a
fixed order, so the same inputs give byte-identical tables.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

FLOAT_FORMAT = "%.10g"


def write_table(table: pd.DataFrame, path) -> None:
    """Write `table` as CSV at `path` (parent folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False, float_format=FLOAT_FORMAT, lineterminator="\n")


def read_table(path) -> pd.DataFrame:
    """Read a table written by :func:`write_table` (empty strings stay empty)."""
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def write_json(data, path) -> None:
    """Write `data` as sorted, indented JSON (deterministic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
