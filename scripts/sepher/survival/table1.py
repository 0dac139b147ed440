"""Table 1: patient characteristics by group, via the tableone package.

Categorical covariates: n (%) and a chi-squared test (Fisher's exact test
for 2 x 2 tables with an expected count below 5, tableone's rule);
continuous covariates: median [Q1, Q3] and the Kruskal-Wallis test (the
Mann-Whitney test for two groups). Missing values are counted per variable.
"""

from __future__ import annotations

import pandas as pd
from tableone import TableOne


def characteristics(cohort, *, group, group_levels, group_labels, covariates, categorical):
    """Table 1 of the analysed cohort as a flat, deterministic table.

    Parameters
    ----------
    cohort : DataFrame
        One row per patient of the analysed line and groups.
    group : str
        Column compared; `group_levels` in display order, `group_labels`
        their names.
    covariates : sequence of str
        Columns to describe.
    categorical : dict
        Categorical covariates -> levels in display order; other
        non-numeric covariates are categorical with sorted levels.

    Returns
    -------
    DataFrame
        Columns ``variable, level, statistic, overall, <label 1>, <label 2>,
        missing, p, test``; the first row gives the group sizes.
    """
    data = cohort[[group, *covariates]].copy()
    data[group] = data[group].astype(str)
    if not covariates:  # tableone needs one column to describe: the group sizes alone
        counts = data[group].value_counts()
        row = {"variable": "n", "level": "", "statistic": "", "overall": len(data)}
        for value, name in zip(group_levels, group_labels, strict=True):
            row[name] = int(counts.get(str(value), 0))
        return pd.DataFrame([{**row, "missing": "", "p": "", "test": ""}])
    cat_columns = [
        c for c in covariates if c in categorical or not pd.api.types.is_numeric_dtype(data[c])
    ]
    order = {}
    for column in cat_columns:
        data[column] = data[column].where(data[column].isna(), data[column].astype(str))
        order[column] = categorical.get(column) or sorted(data[column].dropna().unique())
    table = TableOne(
        data,
        columns=list(covariates),
        categorical=cat_columns,
        nonnormal=[c for c in covariates if c not in cat_columns],
        groupby=group,
        order={group: list(group_levels), **order},
        pval=True,
        htest_name=True,
        missing=True,
        overall=True,
        decimals=1,
    ).tableone
    table.columns = [c[1] for c in table.columns]
    rows = []
    for (label, level), row in table.iterrows():
        variable, _, statistic = label.partition(", ")
        rows.append(
            {
                "variable": variable,
                "level": "" if level == "" else str(level),
                "statistic": statistic,
                "overall": row["Overall"],
                **{
                    name: row[str(value)]
                    for value, name in zip(group_levels, group_labels, strict=True)
                },
                "missing": row.get("Missing", ""),
                "p": row.get("P-Value", ""),
                "test": row.get("Test", ""),
            }
        )
    return pd.DataFrame(rows).fillna("")
