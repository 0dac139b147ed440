"""Result tables as self-contained HTML pages for the Snakemake report.

Snakemake's report offers a CSV only as a download; these pages show the
table itself (sticky header, striped rows, numbers right-aligned) and carry
the CSV as an embedded download link. No scripts, no external resources.
"""

from __future__ import annotations

import base64
import html

import pandas as pd

__all__ = ["number_patients", "table_html"]

_STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; font-size: 13px;
       margin: 12px; color: #222; }
h1 { font-size: 16px; margin: 0 0 4px 0; }
p.note { color: #555; margin: 0 0 8px 0; }
table { border-collapse: collapse; }
th, td { padding: 3px 8px; border-bottom: 1px solid #ddd; white-space: nowrap; }
th { position: sticky; top: 0; background: #f3f4f6; text-align: left; }
tr:nth-child(even) td { background: #fafafa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
"""


def number_patients(
    table: pd.DataFrame, column: str = "patient_id", label="patient"
) -> pd.DataFrame:
    """Replace pseudonymous patient codes by "patient 1", "patient 2", ... (sorted codes).

    Aggregate tables in the report never show a patient identifier, even a
    pseudonymous one; the numbering is the one the figures use.
    """
    if column not in table.columns:
        return table
    codes = sorted(table[column].astype(str).unique())
    number = {code: f"{label} {k + 1}" for k, code in enumerate(codes)}
    return table.assign(**{column: table[column].astype(str).map(number)}).rename(
        columns={column: label}
    )


def _cell(value, digits: int) -> tuple[str, bool]:
    """Text of one cell and whether it is a number (right-aligned)."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "", False
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value), False
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.{digits}g}", True
    return str(int(value)), True


def table_html(table: pd.DataFrame, title: str, note: str = "", csv_name: str = "", digits=4):
    """One table as a standalone HTML page.

    Parameters
    ----------
    table : DataFrame
        The rows to show (all of them).
    title : str
        Heading of the page.
    note : str
        One line under the heading (source file, units).
    csv_name : str
        When given, a download link with the table as CSV (full precision)
        under this file name is embedded in the page.
    digits : int
        Significant digits shown for non-integer numbers (the CSV keeps
        full precision).

    Returns
    -------
    str
        The HTML document.
    """
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    rows = []
    for record in table.itertuples(index=False):
        cells = []
        for value in record:
            value = value.item() if hasattr(value, "item") else value
            text, numeric = _cell(value, digits)
            cls = ' class="num"' if numeric else ""
            cells.append(f"<td{cls}>{html.escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    link = ""
    if csv_name:
        data = table.to_csv(index=False, lineterminator="\n").encode()
        href = "data:text/csv;base64," + base64.b64encode(data).decode()
        link = f' <a download="{html.escape(csv_name)}" href="{href}">Download CSV</a>'
    note_html = f'<p class="note">{html.escape(note)}{link}</p>' if note or link else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{note_html}"
        f'<table id="result-table"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></body></html>\n"
    )
