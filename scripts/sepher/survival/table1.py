"""Table 1: patient characteristics by group, via the tableone package.

Categorical covariates: n (%) and a chi-squared test (Fisher's exact test
for 2 x 2 tables with an expected count below 5, tableone's rule);
continuous covariates: median [Q1, Q3] and the Kruskal-Wallis test (the
Mann-Whitney test for two groups).

Missing values: percentages, tests and standardised mean differences use
the observed values of each covariate (as R tableone); the ``missing``
column counts the missing values and every covariate with missing values
gets one more row, ``level == "missing"``, with n (%) of the group's
patients.

Standardised mean differences (SMD, column ``smd``) are tableone's, the
same definitions as R tableone's ``print(..., smd = TRUE)``: for a
continuous variable (mean2 - mean1) / sqrt((s1^2 + s2^2) / 2) with the
sample variances (divisor n - 1) of the observed values, group 2 minus
group 1 (R tableone prints the absolute value); for a categorical variable
the multi-level SMD of Yang & Dalton (2012), sqrt((p2 - p1)' S^-1 (p2 - p1))
over the level proportions without the first level, S the mean of the two
groups' multinomial covariance matrices (>= 0 by construction).
"""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pandas as pd
from tableone import TableOne

from sepher.survival.km import kaplan_meier, km_median

#: Label of the reverse Kaplan-Meier follow-up row.
FOLLOWUP_LABEL = "Median follow-up, months (95% CI), reverse Kaplan-Meier"


def reverse_km_followup_by_group(time, event, groups, levels, *, overall=False):
    """Median follow-up per group by the reverse Kaplan-Meier method.

    The reverse Kaplan-Meier estimator treats censoring as the event and the
    events as censorings (R: ``survfit(Surv(time, 1 - event) ~ group)``), so
    its median is the median potential follow-up, not shortened by deaths.

    Parameters
    ----------
    time : array_like of float
        Follow-up times (e.g. months), >= 0.
    event : array_like of {0, 1}
        1 = event observed, 0 = censored.
    groups : array_like
        Group of each patient; compared to `levels` as strings.
    levels : sequence
        Groups to estimate, in order.
    overall : bool
        Also estimate it on all patients (of every group given) under the key
        ``"overall"``.

    Returns
    -------
    dict
        Level (as given) -> ``(median, lower, upper)`` in the unit of `time`:
        the median and its 95 % log-log confidence limits (R ``survfit``'s
        median rule, :func:`sepher.survival.km.km_median`); NaN where the
        curve or a limit never reaches 0.5, or the group has no patients.
    """
    time = np.asarray(time, dtype=float)
    event = np.asarray(event)
    groups = np.asarray(pd.Series(np.asarray(groups, dtype=object)).astype(str))
    if not time.shape == event.shape == groups.shape:
        raise ValueError("time, event and groups must have the same length")

    def median(mask):
        if not mask.any():
            return (math.nan, math.nan, math.nan)
        curve = kaplan_meier(time[mask], 1 - event[mask], conf_type="log-log", conf_level=0.95)
        result = km_median(curve)
        return (result["median"], result["lower"], result["upper"])

    out = {level: median(groups == str(level)) for level in levels}
    if overall:
        out["overall"] = median(np.isin(groups, [str(level) for level in levels]))
    return out


def _format_followup(value):
    """``median (lower-upper)`` with one decimal; NA for a limit never reached."""
    if value is None:
        return ""
    median, lower, upper = (f"{v:.1f}" if np.isfinite(v) else "NA" for v in value)
    return f"{median} ({lower}-{upper})"


def _format_smd(value):
    """Three decimals; '' when not computable; no negative zero."""
    if value is None or not np.isfinite(value):
        return ""
    text = f"{value:.3f}"
    return "0.000" if text == "-0.000" else text


def _smd_by_variable(smd_table, levels):
    """One SMD per variable from tableone's pairwise SMD table.

    Two groups: the signed SMD of group 2 minus group 1. More groups: the
    mean of the absolute pairwise SMDs (R tableone's summary).
    """
    if smd_table is None or len(levels) < 2:
        return {}
    out = {}
    for variable in smd_table.index:
        values = []
        for first, second in combinations(levels, 2):
            column = f"SMD ({first},{second})"
            values.append(float(smd_table.loc[variable, column]))
        out[variable] = values[0] if len(values) == 1 else float(np.mean(np.abs(values)))
    return out


def _tableone(data, group, group_levels, described, categorical, smd):
    """tableone's TableOne of `data` (group column already str), observed values only."""
    data = data.copy()
    cat_columns = [
        c for c in described if c in categorical or not pd.api.types.is_numeric_dtype(data[c])
    ]
    order = {}
    for column in cat_columns:
        data[column] = data[column].where(data[column].isna(), data[column].astype(str))
        order[column] = categorical.get(column) or sorted(data[column].dropna().unique())
    return TableOne(
        data,
        columns=list(described),
        categorical=cat_columns,
        nonnormal=[c for c in described if c not in cat_columns],
        groupby=group,
        order={group: [str(v) for v in group_levels], **order},
        pval=True,
        htest_name=True,
        missing=True,
        overall=True,
        # integer-valued columns (year, counts) without decimals: 2016 [2014,2018]
        decimals={
            c: 0
            for c in described
            if c not in cat_columns
            and data[c].dropna().size
            and np.all(np.mod(data[c].dropna().to_numpy(float), 1) == 0)
        }
        or 1,
        smd=smd,
        include_null=False,
    )


def standardized_differences(cohort, *, group, group_levels, covariates, categorical):
    """Standardised mean difference of each covariate between the groups (Table 1's).

    Parameters
    ----------
    cohort, group, group_levels, covariates, categorical
        As :func:`characteristics`.

    Returns
    -------
    Series of float
        Covariate -> SMD as defined in the module docstring (observed values;
        two groups: signed, group 2 minus group 1; more: mean absolute
        pairwise SMD), in `covariates` order.
    """
    covariates = list(covariates)
    if not covariates:
        return pd.Series(dtype=float)
    data = cohort[[group, *covariates]].copy()
    data[group] = data[group].astype(str)
    one = _tableone(data, group, group_levels, covariates, categorical, smd=True)
    values = _smd_by_variable(one.smd_table, [str(v) for v in group_levels])
    return pd.Series({c: values.get(c, np.nan) for c in covariates}, dtype=float)


def characteristics(
    cohort,
    *,
    group,
    group_levels,
    group_labels,
    covariates,
    categorical,
    smd=True,
    year_col=None,
    followup=None,
    followup_label=FOLLOWUP_LABEL,
):
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
    smd : bool
        Add the ``smd`` column (see the module docstring): one value per
        variable, on its first row.
    year_col : str, optional
        Numeric column of the calendar year of T-DM1 start, described as a
        continuous variable (median [Q1,Q3], test and SMD) after the
        covariates (once, if it is also a covariate); no row when the column
        is entirely missing (a duration-form cohort has no dates).
    followup : dict, optional
        Group level -> ``(median, lower, upper)`` follow-up in months, e.g.
        from :func:`reverse_km_followup_by_group`; an ``"overall"`` key fills
        the overall column. Adds a row after the ``n`` row.
    followup_label : str
        ``variable`` of that row (say the time origin, e.g. "Median
        follow-up from T-DM1 start, months (95% CI), reverse Kaplan-Meier").

    Returns
    -------
    DataFrame
        Columns ``variable, level, statistic, overall, <label 1>, <label 2>,
        missing, p, test`` and, when `smd` is true and a variable is
        described, ``smd``; the first row gives the group sizes. Rows with
        ``level == "missing"`` give n (%) of patients with the covariate
        missing.
    """
    covariates = list(covariates)
    described = list(covariates)
    if year_col is not None:
        numeric = pd.api.types.is_numeric_dtype(cohort[year_col])
        if not numeric or year_col in categorical or year_col == group:
            raise ValueError(f"year_col {year_col!r} must be a numeric, non-categorical column")
        if year_col not in described and cohort[year_col].notna().any():
            described.append(year_col)
    data = cohort[[group, *described]].copy()
    data[group] = data[group].astype(str)
    names = dict(zip(group_levels, group_labels, strict=True))
    if not described:  # tableone needs one column to describe: the group sizes alone
        counts = data[group].value_counts()
        row = {"variable": "n", "level": "", "statistic": "", "overall": len(data)}
        for value, name in names.items():
            row[name] = int(counts.get(str(value), 0))
        rows = [{**row, "missing": "", "p": "", "test": ""}]
        if followup is not None:
            rows.append(_followup_row(followup, names, followup_label))
        return pd.DataFrame(rows)
    one = _tableone(data, group, group_levels, described, categorical, smd)
    table = one.tableone
    table.columns = [c[1] for c in table.columns]
    smd_values = _smd_by_variable(one.smd_table, [str(v) for v in group_levels]) if smd else {}
    rows = []
    previous = None
    for (label, level), row in table.iterrows():
        variable, _, statistic = label.partition(", ")
        if previous is not None and variable != previous:
            rows.extend(_missing_row(data, previous, group, names, smd))
        record = {
            "variable": variable,
            "level": "" if level == "" else str(level),
            "statistic": statistic,
            "overall": row["Overall"],
            **{name: row[str(value)] for value, name in names.items()},
            "missing": row.get("Missing", ""),
            "p": row.get("P-Value", ""),
            "test": row.get("Test", ""),
        }
        if smd:
            record["smd"] = _format_smd(smd_values.get(variable)) if variable != previous else ""
        rows.append(record)
        if variable == "n" and followup is not None:
            rows.append(
                {**_followup_row(followup, names, followup_label), **({"smd": ""} if smd else {})}
            )
        previous = variable
    rows.extend(_missing_row(data, previous, group, names, smd))
    return pd.DataFrame(rows).fillna("")


def _followup_row(followup, names, label):
    """The reverse Kaplan-Meier follow-up row of Table 1."""
    by_level = {str(k): v for k, v in followup.items()}
    return {
        "variable": label,
        "level": "",
        "statistic": "",
        "overall": _format_followup(by_level.get("overall")),
        **{name: _format_followup(by_level.get(str(value))) for value, name in names.items()},
        "missing": "",
        "p": "",
        "test": "",
    }


def _missing_row(data, variable, group, names, smd):
    """``[row]`` with n (%) missing of `variable` per column, or ``[]`` if none is missing."""
    if variable not in data.columns or variable == group:
        return []
    missing = data[variable].isna()
    if not missing.any():
        return []

    def cell(mask):
        total = int(mask.sum())
        count = int((missing & mask).sum())
        return f"{count} ({100 * count / total:.1f})" if total else "0"

    row = {
        "variable": variable,
        "level": "missing",
        "statistic": "n (%)",
        "overall": cell(pd.Series(True, index=data.index)),
        **{name: cell(data[group] == str(value)) for value, name in names.items()},
        "missing": "",
        "p": "",
        "test": "",
    }
    if smd:
        row["smd"] = ""
    return [row]
