"""Tables rendered as figures (table1_characteristics, table2_cox).

A DataFrame becomes a booktabs-style table: a rule above and below the
header and one at the end, text columns left-aligned, number columns
centred. When the second column is named ``level`` (as in Table 1:
``characteristic, level, <group 1>, <group 2>, p``), each characteristic
is printed once as a heading row and its levels are indented under it.
Headers wrap at spaces (never inside a word); a column is widened to its
longest word instead. :func:`table1_for_print` and :func:`table2_for_print`
turn the survival stage's Table 1 and Cox tables into the printed tables.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from sepher.formatting import format_p

from .labels import endpoint_name, variable_label
from .style import (
    DOUBLE_COLUMN_MM,
    SINGLE_COLUMN_MM,
    format_ci,
    is_blank,
    manual_figure,
    stamp_simulated,
)

_PT_MM = 25.4 / 72.0
MIN_FONT_PT = 5.5
INDENT_MM = 3.0
CELL_PAD_MM = 3.0


_P_COLUMNS = ("p", "p_value", "p-value", "pvalue")
# a cell "is a number" when it starts like one: 12, 0.5, <0.001, -1.2, 1.84 (1.37-2.48), NR
_NUMBER_LIKE = re.compile(r"^[\s<>\u2264\u2265=~\u00b1+\-\u2212\u2013]*(\d|\.\d|NR\b|NA\b)")


def _integer_valued(values) -> bool:
    """True if every float among ``values`` is a whole number (counts read as floats)."""
    floats = [float(v) for v in values if isinstance(v, (float, np.floating)) and not is_blank(v)]
    return bool(floats) and all(np.isfinite(v) and v == round(v) for v in floats)


def _format_cell(value, column: str, integer: bool = False) -> str:
    if is_blank(value):
        return ""
    if isinstance(value, (float, np.floating)):
        if str(column).strip().lower() in _P_COLUMNS:
            return format_p(float(value), prefix="")
        if integer:
            return str(int(round(float(value))))
        return f"{value:.2f}" if abs(value) < 100 else f"{value:.0f}"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return str(value)


def _display_rows(df: pd.DataFrame, bold_groups: bool = False):
    """Rows as (cells, indent, bold); merges a ``level`` companion column."""
    columns = list(df.columns)
    merge = len(columns) >= 2 and str(columns[1]).lower() == "level"
    values = [columns[0], *columns[2:]] if merge else columns
    # a column whose floats are all whole numbers holds counts: print them as integers
    whole = {c: _integer_valued(df[c]) for c in columns}

    def cell(value, column):
        return _format_cell(value, column, whole[column])

    rows = []
    if not merge:
        for _, r in df.iterrows():
            rows.append(([cell(r[c], c) for c in columns], False, False))
        return [str(c) for c in values], rows
    first = columns[0]
    blocks: list[pd.DataFrame] = []
    key = None
    for i in range(len(df)):
        name = df.iloc[i][first]
        if i == 0 or (not is_blank(name) and name != key):
            blocks.append(df.iloc[[i]])
            key = name
        else:
            blocks[-1] = pd.concat([blocks[-1], df.iloc[[i]]])
    for block in blocks:
        name = cell(block.iloc[0][first], first)
        levels = [cell(v, columns[1]) for v in block[columns[1]]]
        if len(block) == 1 and not levels[0]:
            rows.append(([name, *(cell(block.iloc[0][c], c) for c in values[1:])], False, False))
            continue
        # columns filled only on the first row of the block (e.g. one p per variable)
        lifted = [
            c for c in values[1:] if len(block) > 1 and all(is_blank(v) for v in block[c].iloc[1:])
        ]
        heading = [name] + [cell(block.iloc[0][c], c) if c in lifted else "" for c in values[1:]]
        rows.append((heading, False, bold_groups))
        for j in range(len(block)):
            cells = [levels[j]] + [
                "" if c in lifted else cell(block.iloc[j][c], c) for c in values[1:]
            ]
            rows.append((cells, True, False))
    return [str(c) for c in values], rows


def _is_text_column(cells) -> bool:
    """True if most non-empty cells do not start like a number."""
    filled = [c for c in cells if c]
    if not filled:
        return False
    words = sum(not _NUMBER_LIKE.match(c) for c in filled)
    return words > len(filled) / 2


def render_table(
    df: pd.DataFrame,
    title: str | None = None,
    col_widths: Sequence[float] | None = None,
    simulated: bool = False,
    footnote: str | None = None,
    *,
    width_mm: float | None = None,
    font_pt: float = 6.5,
    align: Sequence[str] | None = None,
    bold_groups: bool = False,
) -> plt.Figure:
    """Render a DataFrame as a clean table figure.

    Parameters
    ----------
    df : DataFrame
        The table; column names are the header (``"\\n"`` breaks a header
        line, e.g. ``"Pertuzumab-naive\\n(n = 194)"``). Floats in a column
        named ``p`` print as p-values; a column whose floats are all whole
        numbers prints them as integers (counts); other floats print with
        two decimals; NaN prints empty. A second column named ``level``
        turns the first column into indented groups.
    title : str, optional
        Printed above the table, bold.
    col_widths : sequence of float, optional
        Column widths in mm (after merging ``level``); default: fitted to
        the widest cell of each column.
    simulated : bool, default False
        Stamp the figure "SIMULATED DATA".
    footnote : str, optional
        Printed under the bottom rule, wrapped to the table width.
    width_mm : float, optional
        Figure width; default 89 mm if the table fits a single column,
        otherwise 183 mm.
    font_pt : float, default 6.5
        Text size; reduced (not below 5.5 pt) when the table is too wide.
        Headers wrap at spaces only; at the smallest size, if the table is
        still too wide, also after hyphens ("Pertuzumab-" / "pretreated").
    align : sequence of {"left", "center"}, optional
        Alignment of each displayed column (after merging ``level``).
        Default: the first column and every text column (most cells not
        starting with a number) left, number columns centred.
    bold_groups : bool, default False
        Print the group heading rows of a ``level`` table in bold.

    Returns
    -------
    matplotlib.figure.Figure
        Cell texts have ``gid`` "cell"; header texts "header".
    """
    if not isinstance(df, pd.DataFrame) or df.shape[1] == 0:
        raise ValueError("render_table needs a DataFrame with at least one column")
    header, rows = _display_rows(df, bold_groups)
    n_cols = len(header)
    if align is None:
        align = ["left"] + [
            "left" if _is_text_column([r[0][j] for r in rows]) else "center"
            for j in range(1, n_cols)
        ]
    align = [str(a) for a in align]
    if len(align) != n_cols or any(a not in ("left", "center") for a in align):
        raise ValueError(f"align needs {n_cols} entries of 'left' or 'center', got {align}")
    fig = manual_figure(DOUBLE_COLUMN_MM, 20.0)
    renderer = fig.canvas.get_renderer()

    def width_of(text, size, bold=False):
        if not text:
            return 0.0
        t = fig.text(0, 0, text, fontsize=size, fontweight="bold" if bold else "normal")
        w = t.get_window_extent(renderer).width / fig.dpi * 25.4
        t.remove()
        return w

    def natural_widths(size, header_lines):
        widths = []
        for j in range(n_cols):
            cells = [
                width_of(r[0][j], size, r[2]) + (INDENT_MM if r[1] and j == 0 else 0) for r in rows
            ]
            head = max(width_of(line, size, True) for line in header_lines[j].split("\n"))
            widths.append(max([head, *cells]) + CELL_PAD_MM)
        return widths

    def wrap_header(text, width_chars, hyphens):
        # prefer a break before a parenthesis: "Pertuzumab-naive\n(n = 194)"; never inside a word
        parts = text.replace(" (", "\n(").split("\n")
        lines = []
        for part in parts:
            lines.extend(
                textwrap.wrap(part, width_chars, break_long_words=False, break_on_hyphens=hyphens)
                or [part]
            )
        return "\n".join(lines)

    size = font_pt
    hyphens = False
    header_lines = list(header)
    while True:
        if col_widths is not None:
            widths = [float(w) for w in col_widths]
            if len(widths) != n_cols:
                raise ValueError(f"col_widths has {len(widths)} entries for {n_cols} columns")
            break
        widths = natural_widths(size, header_lines)
        # headers wider than their data: wrap them over two or three lines
        data_w = [
            max([width_of(r[0][j], size) for r in rows] + [0]) + CELL_PAD_MM for j in range(n_cols)
        ]
        char_mm = size * 0.6 * _PT_MM
        header_lines = [
            wrap_header(h, max(6, int(max(dw, 14.0) / char_mm)), hyphens) if hw > dw + 1.0 else h
            for h, hw, dw in zip(header, widths, data_w, strict=True)
        ]
        widths = natural_widths(size, header_lines)
        limit = (width_mm or DOUBLE_COLUMN_MM) - 4.0
        if sum(widths) <= limit or (size <= MIN_FONT_PT and hyphens):
            break
        if size <= MIN_FONT_PT:
            hyphens = True  # last resort before squeezing: break headers after hyphens
        size = max(MIN_FONT_PT, size - 0.5)

    total = sum(widths)
    if width_mm is None:
        width_mm = SINGLE_COLUMN_MM if total <= SINGLE_COLUMN_MM - 4.0 else DOUBLE_COLUMN_MM
    if total > width_mm - 4.0:
        # still too wide at the smallest font: squeeze columns proportionally
        widths = [w * (width_mm - 4.0) / total for w in widths]
        total = width_mm - 4.0

    pitch = size * 1.5 * _PT_MM
    n_head_lines = max(h.count("\n") + 1 for h in header_lines)
    foot_lines = (
        textwrap.wrap(footnote, max(20, int(total / ((size - 0.5) * 0.55 * _PT_MM))))
        if footnote
        else []
    )
    y = 2.0 + (4.0 if simulated else 0.0)
    title_y = None
    if title:
        title_y = y
        y += 7.5 * 1.5 * _PT_MM + 1.0
    top_rule = y
    header_y = y + 1.0
    y = header_y + n_head_lines * pitch + 0.6
    mid_rule = y
    first_row = y + 0.8
    bottom_rule = first_row + len(rows) * pitch + 0.6
    foot_y = bottom_rule + 1.2
    height = foot_y + len(foot_lines) * (size - 0.5) * 1.35 * _PT_MM + 2.0

    fig.set_size_inches(width_mm / 25.4, height / 25.4)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width_mm)
    ax.set_ylim(height, 0)
    ax.set_axis_off()
    ax.set_gid("table")
    x0 = (width_mm - total) / 2.0
    lefts = np.concatenate([[x0], x0 + np.cumsum(widths)[:-1]])

    if title_y is not None:
        ax.text(x0, title_y, title, ha="left", va="top", fontsize=7.5, fontweight="bold")
    for yr, lw in ((top_rule, 0.8), (mid_rule, 0.5), (bottom_rule, 0.8)):
        ax.plot([x0, x0 + total], [yr, yr], color="black", linewidth=lw, solid_capstyle="butt")

    def place(j, text, yy, **kw):
        if align[j] == "left":
            x = lefts[j] + (CELL_PAD_MM / 2.0 if j > 0 else 0.0)
            return ax.text(x, yy, text, ha="left", **kw)
        return ax.text(lefts[j] + widths[j] / 2.0, yy, text, ha="center", **kw)

    for j, h in enumerate(header_lines):
        place(
            j,
            h,
            header_y,
            va="top",
            fontsize=size,
            fontweight="bold",
            gid="header",
            linespacing=1.25,
        )
    for i, (cells, indent, bold) in enumerate(rows):
        yy = first_row + (i + 0.5) * pitch
        for j, text in enumerate(cells):
            if not text:
                continue
            x_off = INDENT_MM if (indent and j == 0) else 0.0
            t = place(
                j,
                text,
                yy,
                va="center",
                fontsize=size,
                gid="cell",
                fontweight="bold" if bold else "normal",
            )
            if x_off:
                t.set_x(t.get_position()[0] + x_off)
    for k, line in enumerate(foot_lines):
        ax.text(
            x0,
            foot_y + k * (size - 0.5) * 1.35 * _PT_MM,
            line,
            ha="left",
            va="top",
            fontsize=size - 0.5,
            color="#404040",
            gid="footnote",
        )
    if simulated:
        stamp_simulated(fig)
    return fig


# --------------------------------------------------------------------------- the study's tables
#: Title and footnote of each table of the paper (Table 2's footnote is computed).
TABLE_TITLES = {
    "table1": "Table 1. Patient characteristics",
    "table2": "Table 2. Cox proportional-hazards models (univariable and multivariable)",
    "response": "Table 3. Best response to T-DM1 (RECIST 1.1)",
}
TABLE1_FOOTNOTE = (
    "n (%) or median [Q1,Q3]; p: chi-squared / Fisher's exact or Kruskal-Wallis test, "
    "descriptive (no multiplicity correction). SMD: standardised mean difference "
    "(|SMD| > 0.1 marks imbalance). Follow-up: reverse Kaplan-Meier."
)


def table1_for_print(table: pd.DataFrame) -> pd.DataFrame:
    """Table 1 for print: readable names, the number of patients in each column header.

    Parameters
    ----------
    table : DataFrame
        ``results/survival/table1.csv`` (:func:`sepher.survival.table1.characteristics`):
        ``variable, level, statistic, <groups>, overall, missing, p, test``,
        with a row ``variable == "n"`` holding each column's patient count.

    Returns
    -------
    DataFrame
        ``Characteristic`` (variable label and statistic), ``level``, one
        column per group headed ``"<group>\\n(n = <count>)"``, ``Missing``,
        ``p``, ``Test``; the ``n`` row dropped.
    """
    table = table.fillna("")
    fixed = {"variable", "level", "statistic", "missing", "p", "test", "smd"}
    is_n = table["variable"] == "n"
    headers = {"variable": "Characteristic", "missing": "Missing", "test": "Test", "smd": "SMD"}
    for column in table.columns:
        if column in fixed:
            continue
        name = "Overall" if column == "overall" else str(column)
        n = table.loc[is_n, column]
        headers[column] = f"{name}\n(n = {int(float(n.iloc[0]))})" if len(n) else name
    table = table[~is_n].copy()
    table["variable"] = [
        variable_label(v) + (f", {s}" if s else "")
        for v, s in zip(table["variable"], table["statistic"], strict=True)
    ]
    return table.drop(columns=["statistic"]).rename(columns=headers)


def table2_for_print(
    cox: pd.DataFrame,
    *,
    tdm1_line: int,
    endpoints: Sequence[str] = ("OS", "PFS2"),
    strata: Sequence[str] = (),
    entry: bool = False,
) -> tuple[pd.DataFrame, str]:
    """Table 2 for print: univariate and multivariate Cox side by side, one row per coefficient.

    Parameters
    ----------
    cox : DataFrame
        ``results/survival/cox.csv`` (:func:`sepher.survival.stage.cox_tables`).
    tdm1_line : int
        Analysed T-DM1 line (``survival.tdm1_line``), for the endpoint headings.
    endpoints : sequence of str
        Endpoints shown, in order.
    strata : sequence of str
        Stratification variables of the multivariable models (footnote).
    entry : bool
        OS analysed with delayed entry at T-DM1 start (footnote).

    Returns
    -------
    table : DataFrame
        ``Variable`` (the endpoint heading, one block per endpoint), ``level``
        (term and level vs reference), HR (95% CI) and p of each model
        (:func:`sepher.formatting.format_p`).
    footnote : str
        Complete-case note with n, events and excluded patients per endpoint.
    """
    rows = []
    for endpoint in endpoints:
        part = cox[cox["endpoint"] == endpoint]
        heading = f"{endpoint_name(endpoint, tdm1_line)} ({endpoint})"
        multi = part[part["model"] == "multivariate"].set_index("column")
        uni = part[part["model"] == "univariate"].set_index("column")
        for column in multi.index:
            m, u = multi.loc[column], uni.loc[column]
            label = variable_label(m["term"])
            if not (pd.isna(m["level"]) or m["level"] == ""):
                label += f": {m['level']} vs {m['reference']}"
            rows.append(  # one heading row per endpoint, terms indented under it
                {
                    "Variable": heading,
                    "level": label,
                    "Univariable HR (95% CI)": format_ci(u["hr"], u["hr_lower"], u["hr_upper"]),
                    "Wald p (uni)": format_p(u["p"], prefix=""),
                    "Multivariable HR (95% CI)": format_ci(m["hr"], m["hr_lower"], m["hr_upper"]),
                    "Wald p (multi)": format_p(m["p"], prefix=""),
                }
            )
    n = (
        cox[cox["model"] == "multivariate"]
        .groupby("endpoint")[["n", "events", "n_excluded"]]
        .first()
    )
    note = "; ".join(
        f"{e}: n = {r.n}, events = {r.events}, excluded (missing data) = {r.n_excluded}"
        for e, r in n.iterrows()
    )
    lead = (
        "Cox models (Efron ties), patients as the unit; HR with Wald 95% CI and Wald p, "
        "no multiplicity correction (one prespecified group comparison; other HRs "
        "descriptive). Multivariable: all listed variables together, complete cases"
    )
    if strata:
        lead += ", stratified by " + ", ".join(variable_label(v) for v in strata)
    if entry:
        lead += "; OS at risk from T-DM1 start (delayed entry)"
    return pd.DataFrame(rows), lead + ". " + note


def response_for_print(response: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Table 3 for print: best response, ORR and disease control by group.

    Parameters
    ----------
    response : DataFrame
        ``results/survival/response.csv``
        (:func:`sepher.survival.response.response_table`).

    Returns
    -------
    table : DataFrame
        One row per measure, one column per group, and the Fisher p.
    footnote : str
    """
    rows = []
    for measure, part in response.groupby("measure", sort=False):
        row = {"Response": part["measure_label"].iloc[0]}
        for _, r in part.iterrows():
            header = f"{r['group']}\n(n = {int(r['n'])})"
            row[header] = f"{int(r['count'])} ({100 * r['proportion']:.0f}%)" + (
                f" [{100 * r['lower']:.0f}-{100 * r['upper']:.0f}]"
                if measure in ("ORR", "DCR")
                else ""
            )
        p = part["p"].dropna()
        row["p"] = format_p(p.iloc[0], prefix="") if len(p) else ""
        rows.append(row)
    table = pd.DataFrame(rows)
    return table, (
        "Patients as the unit; NE (not evaluable) in the denominator. ORR = CR + PR, "
        "DCR = CR + PR + SD; n (%) [Clopper-Pearson exact 95% CI]; p: Fisher's exact test, two-sided, "
        "no multiplicity correction (two prespecified comparisons)."
    )
