"""Rules table1_characteristics and table2_cox: tables rendered as figures."""

import pandas as pd

from sepher.figures.labels import ENDPOINT_LABELS, variable_label
from sepher.figures.style import format_ci, house_style, save_figure
from sepher.figures.tables import render_table
from sepher.io.tables import read_table
from sepher.workflow import run_logged


def _fmt_p(p):
    if pd.isna(p):
        return ""
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def table2(cox):
    """Univariate and multivariate Cox side by side, one row per coefficient."""
    rows = []
    for endpoint in ("OS", "PFS2"):
        part = cox[cox["endpoint"] == endpoint]
        heading = f"{ENDPOINT_LABELS.get(endpoint, endpoint)} ({endpoint})"
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
                    "Univariate HR (95% CI)": format_ci(u["hr"], u["hr_lower"], u["hr_upper"]),
                    "p (uni)": _fmt_p(u["p"]),
                    "Multivariate HR (95% CI)": format_ci(m["hr"], m["hr_lower"], m["hr_upper"]),
                    "p (multi)": _fmt_p(m["p"]),
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
    return pd.DataFrame(rows), "Multivariate model, complete cases. " + note


def table1(table):
    """Table 1 for print: readable names, the number of patients in each column header."""
    table = table.fillna("")
    fixed = {"variable", "level", "statistic", "missing", "p", "test"}
    is_n = table["variable"] == "n"
    headers = {"variable": "Characteristic", "missing": "Missing", "test": "Test"}
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


def main(smk):
    if smk.params.kind == "table1":
        title = "Table 1. Patient characteristics"
        table = table1(read_table(smk.input.table))
        footnote = (
            "n (%) or median [Q1,Q3]; p: chi-squared / Fisher's exact or Kruskal-Wallis test."
        )
    else:
        title = "Table 2. Cox proportional-hazards models"
        table, footnote = table2(read_table(smk.input.table))
    with house_style(smk.input.style):
        fig = render_table(
            table,
            title=title,
            simulated=smk.params.simulated,
            footnote=footnote,
            bold_groups=smk.params.kind == "table2",  # endpoint headings of Table 2
        )
        save_figure(fig, smk.output.pdf, smk.output.png)


run_logged(snakemake, main)
