"""Tumour response (RECIST 1.1 best overall response) by group.

Objective response rate (ORR = CR + PR) and disease-control rate
(DCR = CR + PR + SD) per group with Clopper-Pearson exact confidence
intervals (statsmodels ``proportion_confint(method="beta")``, R
``binom.test``), compared between the two groups by Fisher's exact test
(scipy, two-sided, R ``fisher.test``) with the difference in proportions and
its Newcombe hybrid-score interval (statsmodels
``confint_proportions_2indep(method="newcomb")``, Newcombe 1998 method 10).

Denominator: every patient of the group. Patients not evaluable (NE) stay
in the denominator and count as non-responders, the intention-to-treat
convention of RECIST-based reporting.
"""

from __future__ import annotations

import math

import pandas as pd
from scipy.stats import fisher_exact
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

#: RECIST 1.1 best overall response categories, in display order.
RECIST_CATEGORIES = ("CR", "PR", "SD", "PD", "NE")

#: Measure -> (categories counted, label).
MEASURES = {
    "CR": (("CR",), "Complete response (CR)"),
    "PR": (("PR",), "Partial response (PR)"),
    "SD": (("SD",), "Stable disease (SD)"),
    "PD": (("PD",), "Progressive disease (PD)"),
    "NE": (("NE",), "Not evaluable (NE)"),
    "ORR": (("CR", "PR"), "Objective response rate (CR + PR)"),
    "DCR": (("CR", "PR", "SD"), "Disease-control rate (CR + PR + SD)"),
}

#: Measures compared between the groups.
COMPARED = ("ORR", "DCR")


def _clopper_pearson(count, n, conf_level):
    if n == 0:
        return math.nan, math.nan
    lower, upper = proportion_confint(count, n, alpha=1 - conf_level, method="beta")
    return float(lower), float(upper)


def response_table(
    cohort,
    *,
    group,
    group_levels,
    group_labels,
    response_col="best_response",
    conf_level=0.95,
):
    """Best overall response, ORR and DCR per group, compared between two groups.

    Parameters
    ----------
    cohort : DataFrame
        One row per patient; rows whose `group` is not one of `group_levels`
        (compared as strings) are left out.
    group : str
        Column compared.
    group_levels : sequence
        The two levels of `group`, reference first.
    group_labels : sequence of str
        Display names of `group_levels`.
    response_col : str
        Column of RECIST 1.1 best overall response: exactly ``CR``, ``PR``,
        ``SD``, ``PD`` or ``NE`` for every patient analysed (missing values
        are not allowed: code a patient without assessment as ``NE``).
    conf_level : float
        Two-sided confidence level of all intervals.

    Returns
    -------
    DataFrame
        One row per measure x group (measures ``CR, PR, SD, PD, NE, ORR,
        DCR`` in that order, groups in `group_levels` order), columns:

        - ``measure``: the code above; ``measure_label``: its description;
        - ``group_level``, ``group``: the level and its label;
        - ``count``: patients in the measure's categories;
        - ``n``: patients of the group (all of them, NE included);
        - ``proportion``: count / n; ``lower``, ``upper``: its Clopper-Pearson
          exact interval;
        - ``difference``: proportion of group 2 minus group 1, with
          ``difference_lower``, ``difference_upper`` (Newcombe hybrid score);
        - ``p``: two-sided Fisher's exact test of the 2 x 2 table (group x
          in / not in the measure); ``test``: its name.

        The comparison columns are filled for ORR and DCR, repeated on both
        groups' rows, and NaN / '' for the single categories; NaN when a
        group has no patients.

    Raises
    ------
    ValueError
        If `response_col` is absent, a value is not a RECIST category (the
        message names it), or there are not exactly two groups.
    """
    if len(group_levels) != 2 or len(group_labels) != 2:
        raise ValueError("response_table compares exactly two groups")
    if response_col not in cohort.columns:
        raise ValueError(f"no column {response_col!r} of best overall response")
    levels = [str(v) for v in group_levels]
    in_groups = cohort[group].astype(str).isin(levels)
    data = cohort.loc[in_groups, [group, response_col]].copy()
    data[group] = data[group].astype(str)
    response = data[response_col]
    if response.isna().any():
        raise ValueError(
            f"{response_col}: {int(response.isna().sum())} missing value(s); "
            "code a patient without response assessment as 'NE'"
        )
    invalid = sorted({str(v) for v in response if v not in RECIST_CATEGORIES})
    if invalid:
        raise ValueError(
            f"{response_col}: value(s) {', '.join(repr(v) for v in invalid)} not RECIST 1.1 "
            f"best response ({', '.join(RECIST_CATEGORIES)})"
        )
    totals = {level: int((data[group] == level).sum()) for level in levels}
    rows = []
    for measure, (categories, label) in MEASURES.items():
        counts = {
            level: int(((data[group] == level) & response.isin(categories)).sum())
            for level in levels
        }
        comparison = {
            "difference": math.nan,
            "difference_lower": math.nan,
            "difference_upper": math.nan,
            "p": math.nan,
            "test": "",
        }
        if measure in COMPARED:
            comparison["test"] = "Fisher's exact"
            (c1, c2), (n1, n2) = counts.values(), totals.values()
            if n1 and n2:
                diff_lower, diff_upper = confint_proportions_2indep(
                    c2, n2, c1, n1, method="newcomb", compare="diff", alpha=1 - conf_level
                )
                comparison.update(
                    difference=c2 / n2 - c1 / n1,
                    difference_lower=float(diff_lower),
                    difference_upper=float(diff_upper),
                    p=float(fisher_exact([[c1, n1 - c1], [c2, n2 - c2]]).pvalue),
                )
        for level, name in zip(levels, group_labels, strict=True):
            count, n = counts[level], totals[level]
            lower, upper = _clopper_pearson(count, n, conf_level)
            rows.append(
                {
                    "measure": measure,
                    "measure_label": label,
                    "group_level": level,
                    "group": name,
                    "count": count,
                    "n": n,
                    "proportion": count / n if n else math.nan,
                    "lower": lower,
                    "upper": upper,
                    **comparison,
                }
            )
    return pd.DataFrame(rows)
