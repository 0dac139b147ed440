"""The demo images sample sheet: IF and IHC rows in one TSV (docs/data-dictionary.md)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sepher.io.samplesheet import SHEET_COLUMNS


def write_demo_sheet(out_dir, parts=("images_if.tsv", "images_ihc.tsv")) -> Path:
    """Merge the per-assay demo sheets into ``images.tsv`` (blank = not applicable)."""
    out_dir = Path(out_dir)
    tables = [
        pd.read_csv(out_dir / part, sep="\t", dtype=str, keep_default_na=False) for part in parts
    ]
    sheet = pd.concat(tables, ignore_index=True).reindex(columns=list(SHEET_COLUMNS)).fillna("")
    path = out_dir / "images.tsv"
    sheet.to_csv(path, sep="\t", index=False, lineterminator="\n")
    return path
