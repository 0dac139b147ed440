"""The cohort stage: from validated endpoints to the study's tables.

Pure functions on the per-patient endpoint table written by
:func:`sepher.io.cohort.read_cohort` (columns ``patient_id, tdm1_line,
<group>, os_months, os_event, pfs2_months, pfs2_event`` + covariates). They
call the R-matching estimators in :mod:`sepher.survival` and return the
tables the figures and the report read. No patient identifier leaves this
module: every table is aggregated.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sepher.survival.cox import fit_cox
from sepher.survival.km import kaplan_meier, km_median
from sepher.survival.logrank import logrank_test
from sepher.survival.zph import cox_zph, scaled_schoenfeld

#: Endpoint key -> (duration column, event column, display name).
ENDPOINTS = {
    "OS": ("os_months", "os_event", "Overall survival"),
    "PFS2": ("pfs2_months", "pfs2_event", "Progression-free survival on T-DM1"),
}


def line_label(line: int, last: int) -> str:
    """'2nd', '3rd', ..., or '4th+' for the pooled last group."""
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(line if line < 20 else line % 10, "th")
    text = f"{line}{suffix}"
    return text + "+" if line == last else text


def analysis_cohort(endpoints, group, group_levels, tdm1_line):
    """Patients of the compared groups treated with T-DM1 in `tdm1_line`."""
    keep = (endpoints["tdm1_line"] == tdm1_line) & endpoints[group].isin(group_levels)
    return endpoints.loc[keep].reset_index(drop=True)


def line_groups(endpoints, by_line_max):
    """Line of T-DM1 as a group label: 2nd, 3rd, ..., `by_line_max`th+ (line 1 kept as 1st)."""
    line = endpoints["tdm1_line"].clip(upper=by_line_max)
    labels = {v: line_label(int(v), by_line_max) for v in sorted(line.unique())}
    return line.map(labels), [labels[v] for v in sorted(labels)]


def at_risk_from_curves(curves, grid):
    """Numbers at risk at the times `grid` from Kaplan-Meier step tables.

    The KM table lists every distinct event or censoring time with its number
    at risk, so the number at risk at t is that of the first listed time
    >= t (0 beyond the last).

    Parameters
    ----------
    curves : DataFrame
        Columns ``group, time, n_risk`` (rows in time order within group).
    grid : array_like
        Times (same unit as ``time``).

    Returns
    -------
    DataFrame
        Columns ``group, time, n_at_risk``.
    """
    grid = np.asarray(grid, dtype=float)
    frames = []
    for group, curve in curves.groupby("group", sort=False):
        curve = curve[curve["time"] > 0] if (curve["time"] > 0).any() else curve
        times = curve["time"].to_numpy(float)
        n_risk = np.append(curve["n_risk"].to_numpy(int), 0)
        first = np.searchsorted(times, grid, side="left")
        frames.append(pd.DataFrame({"group": group, "time": grid, "n_at_risk": n_risk[first]}))
    return pd.concat(frames, ignore_index=True)


def _km_block(analysis, endpoint, time, event, groups, levels, conf_type, conf_level):
    curves, medians = [], []
    for level in levels:
        mask = groups == level
        t, e = time[mask], event[mask]
        curve = kaplan_meier(t, e, conf_type=conf_type, conf_level=conf_level)
        med = km_median(curve)
        curve.insert(0, "group", level)
        curves.append(curve)
        medians.append(
            {
                "group": level,
                "n": int(mask.sum()),
                "events": int(e.sum()),
                "median": med["median"],
                "lower": med["lower"],
                "upper": med["upper"],
            }
        )
    lr = logrank_test(time, event, groups, levels=levels)
    frames = [pd.concat(curves), pd.DataFrame(medians)]
    for frame in frames:
        frame.insert(0, "endpoint", endpoint)
        frame.insert(0, "analysis", analysis)
    frames[1]["conf_type"] = conf_type
    frames[1]["conf_level"] = conf_level
    logrank_row = {
        "analysis": analysis,
        "endpoint": endpoint,
        "groups": " vs ".join(str(v) for v in levels),
        "n": int(len(time)),
        "events": int(event.sum()),
        "chisq": lr["chisq"],
        "df": lr["df"],
        "p": lr["p"],
    }
    return frames, logrank_row


def km_tables(
    endpoints,
    *,
    group,
    group_levels,
    tdm1_line,
    conf_type="log-log",
    conf_level=0.95,
    by_line_max=4,
):
    """Kaplan-Meier curves, medians, numbers at risk and log-rank tests.

    Analyses: ``os`` and ``pfs2`` compare `group_levels` among patients
    treated in `tdm1_line`; ``by_line`` compares T-DM1 PFS across lines
    (all patients).

    Parameters
    ----------
    endpoints : DataFrame
        Per-patient endpoints (months).

    Returns
    -------
    curves, medians, logrank : DataFrame
    """
    cohort = analysis_cohort(endpoints, group, group_levels, tdm1_line)
    parts, tests = [], []
    for analysis, endpoint in (("os", "OS"), ("pfs2", "PFS2")):
        tcol, ecol, _ = ENDPOINTS[endpoint]
        frames, test = _km_block(
            analysis,
            endpoint,
            cohort[tcol].to_numpy(float),
            cohort[ecol].to_numpy(int),
            cohort[group].astype(str).to_numpy(),
            list(group_levels),
            conf_type,
            conf_level,
        )
        parts.append(frames)
        tests.append(test)
    lines, line_levels = line_groups(endpoints, by_line_max)
    frames, test = _km_block(
        "by_line",
        "PFS2",
        endpoints["pfs2_months"].to_numpy(float),
        endpoints["pfs2_event"].to_numpy(int),
        lines.to_numpy(),
        line_levels,
        conf_type,
        conf_level,
    )
    parts.append(frames)
    tests.append(test)
    curves, medians = (pd.concat([p[i] for p in parts], ignore_index=True) for i in range(2))
    return curves, medians, pd.DataFrame(tests)


def _categorical_for(covariates, categorical, data):
    """Levels (reference first) of every categorical term in the model."""
    levels = {}
    for term in covariates:
        if term in categorical:
            levels[term] = [str(v) for v in categorical[term]]
        elif not pd.api.types.is_numeric_dtype(data[term]):
            levels[term] = sorted(data[term].dropna().astype(str).unique())
    return levels


def cox_tables(
    endpoints,
    *,
    group,
    group_levels,
    tdm1_line,
    covariates,
    categorical,
    ties="efron",
    zph_transform="km",
):
    """Univariate and multivariate Cox models for OS and PFS2, with PH tests.

    The group enters every model as a factor with `group_levels[0]` as
    reference. Univariate: one model per term. Multivariate: the group and
    all covariates, complete cases (the excluded count is reported).

    Returns
    -------
    coefficients, models, ph_test, schoenfeld : DataFrame
    """
    cohort = analysis_cohort(endpoints, group, group_levels, tdm1_line).copy()
    terms = [group] + [c for c in covariates if c != group]
    levels = _categorical_for(terms, {group: list(group_levels), **categorical}, cohort)
    for term, term_levels in levels.items():
        cohort[term] = cohort[term].where(cohort[term].isna(), cohort[term].astype(str))
        del term_levels
    coefficient_rows, model_rows, ph_rows, residual_frames = [], [], [], []
    for endpoint, (tcol, ecol, _) in ENDPOINTS.items():
        specs = [("univariate", [term]) for term in terms] + [("multivariate", terms)]
        for model, model_terms in specs:
            result = fit_cox(
                cohort,
                tcol,
                ecol,
                model_terms,
                categorical={t: levels[t] for t in model_terms if t in levels},
                ties=ties,
            )
            table = result.table.copy()
            table.insert(0, "model", model)
            table.insert(0, "endpoint", endpoint)
            table["n"] = result.n
            table["events"] = result.events
            table["n_excluded"] = result.n_excluded
            coefficient_rows.append(table)
            model_rows.append(
                {
                    "endpoint": endpoint,
                    "model": model,
                    "terms": " + ".join(model_terms),
                    "n": result.n,
                    "events": result.events,
                    "n_excluded": result.n_excluded,
                    "loglik": result.loglik,
                    "lr_chisq": result.lr_chisq,
                    "lr_df": result.lr_df,
                    "lr_p": result.lr_p,
                    "wald_chisq": result.wald_chisq,
                    "wald_p": result.wald_p,
                    "score_chisq": result.score_chisq,
                    "score_p": result.score_p,
                    "concordance": result.concordance,
                }
            )
            if model == "multivariate":
                ph = cox_zph(result, transform=zph_transform)
                ph.insert(0, "endpoint", endpoint)
                ph["transform"] = zph_transform
                ph_rows.append(ph)
                residuals = scaled_schoenfeld(result, transform=zph_transform)
                residuals.insert(0, "endpoint", endpoint)
                residual_frames.append(residuals)
    return (
        pd.concat(coefficient_rows, ignore_index=True),
        pd.DataFrame(model_rows),
        pd.concat(ph_rows, ignore_index=True),
        pd.concat(residual_frames, ignore_index=True),
    )


def cohort_flow(endpoints, *, group, group_levels, group_labels, tdm1_line, by_line_max):
    """The cohort flow (fig5) as a tree of boxes with counts from the data.

    Returns
    -------
    DataFrame
        Columns ``box_id, parent_id, label, n``.
    """
    rows = [
        {
            "box_id": "all",
            "parent_id": "",
            "label": "HER2+ ABC treated with T-DM1",
            "n": len(endpoints),
        }
    ]
    lines, line_levels = line_groups(endpoints, by_line_max)
    for level in line_levels:
        box = f"line_{level}"
        rows.append(
            {
                "box_id": box,
                "parent_id": "all",
                "label": f"T-DM1 in {level} line",
                "n": int((lines == level).sum()),
            }
        )
    target = line_label(tdm1_line, by_line_max) if tdm1_line <= by_line_max else None
    if target is not None:
        in_line = endpoints.loc[lines == target]
        for level, label in zip(group_levels, group_labels, strict=True):
            rows.append(
                {
                    "box_id": f"group_{level}",
                    "parent_id": f"line_{target}",
                    "label": label,
                    "n": int((in_line[group].astype(str) == str(level)).sum()),
                }
            )
    return pd.DataFrame(rows)
