"""The cohort stage: from validated endpoints to the study's tables.

Pure functions on the per-patient endpoint table written by
:func:`sepher.io.cohort.read_cohort` (columns ``patient_id, tdm1_line,
<group>, os_months, os_event, pfs2_months, pfs2_event`` + covariates). They
call the R-matching estimators in :mod:`sepher.survival` and return the
tables the figures and the report read. No patient identifier leaves this
module: every table is aggregated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sepher.survival.cox import fit_cox
from sepher.survival.km import kaplan_meier, km_median, rmst_difference
from sepher.survival.logrank import logrank_test
from sepher.survival.weighting import (
    propensity_scores,
    stabilised_weights,
    standardised_differences,
)
from sepher.survival.zph import cox_zph, scaled_schoenfeld

#: Endpoint key -> (duration column, event column, display name).
ENDPOINTS = {
    "OS": ("os_months", "os_event", "Overall survival"),
    "PFS2": ("pfs2_months", "pfs2_event", "Progression-free survival on T-DM1"),
}

#: OS origins (survival.os_origin) -> duration column.
OS_ORIGINS = {"advanced_dx": "os_months", "tdm1_start": "os_tdm1_months"}


@dataclass(frozen=True)
class Timescale:
    """How one endpoint is analysed: duration column, event column, entry column.

    ``entry`` is the delayed-entry (left-truncation) column or None; with it a
    patient is at risk only on (entry, time], as R ``Surv(entry, time, event)``.
    """

    endpoint: str
    time: str
    event: str
    entry: str | None
    origin: str

    @property
    def entry_label(self) -> str:
        return "delayed entry at T-DM1 start" if self.entry else "none"

    def usable(self, data):
        """Rows this timescale can analyse: with delayed entry, follow-up must
        extend past entry (R refuses entry >= time); others are all rows."""
        if self.entry is None:
            return np.ones(len(data), dtype=bool)
        return (data[self.time] > data[self.entry]).to_numpy()

    def arrays(self, data):
        """time, event, entry (or None) arrays of `data`."""
        entry = None if self.entry is None else data[self.entry].to_numpy(float)
        return data[self.time].to_numpy(float), data[self.event].to_numpy(int), entry


def timescales(os_origin="advanced_dx", delayed_entry=True):
    """The primary OS and PFS2 timescales, and the other OS origin (sensitivity).

    Returns
    -------
    dict
        ``{"OS": Timescale, "PFS2": Timescale, "OS_alt": Timescale}``:
        OS from `os_origin` (from advanced diagnosis with delayed entry at
        T-DM1 start when `delayed_entry`), PFS2 from T-DM1 start, and OS from
        the other origin (from advanced diagnosis always with delayed entry,
        the only unbiased form of that origin).
    """
    if os_origin not in OS_ORIGINS:
        raise ValueError(f"os_origin must be one of {list(OS_ORIGINS)}; got {os_origin!r}")
    entry = "entry_months" if (os_origin == "advanced_dx" and delayed_entry) else None
    other = "tdm1_start" if os_origin == "advanced_dx" else "advanced_dx"
    other_entry = "entry_months" if other == "advanced_dx" else None
    return {
        "OS": Timescale("OS", OS_ORIGINS[os_origin], "os_event", entry, os_origin),
        "PFS2": Timescale("PFS2", "pfs2_months", "pfs2_event", None, "tdm1_start"),
        "OS_alt": Timescale("OS", OS_ORIGINS[other], "os_event", other_entry, other),
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


def _km_block(analysis, scale, data, groups, levels, conf_type, conf_level):
    """KM curves and medians per group and the log-rank test of one analysis.

    Rows whose follow-up ends at entry (possible only with delayed entry)
    cannot be analysed and are counted in ``n_excluded``.
    """
    usable = scale.usable(data)
    data, groups = data.loc[usable], np.asarray(groups)[usable]
    time, event, entry = scale.arrays(data)
    curves, medians = [], []
    for level in levels:
        mask = groups == level
        curve = kaplan_meier(
            time[mask],
            event[mask],
            conf_type=conf_type,
            conf_level=conf_level,
            entry=None if entry is None else entry[mask],
        )
        med = km_median(curve)
        curve.insert(0, "group", level)
        curves.append(curve)
        medians.append(
            {
                "group": level,
                "n": int(mask.sum()),
                "events": int(event[mask].sum()),
                "median": med["median"],
                "lower": med["lower"],
                "upper": med["upper"],
            }
        )
    lr = logrank_test(time, event, groups, levels=levels, entry=entry)
    frames = [pd.concat(curves), pd.DataFrame(medians)]
    for frame in frames:
        frame.insert(0, "endpoint", scale.endpoint)
        frame.insert(0, "analysis", analysis)
    frames[1]["conf_type"] = conf_type
    frames[1]["conf_level"] = conf_level
    frames[1]["origin"] = scale.origin
    frames[1]["entry"] = scale.entry_label
    logrank_row = {
        "analysis": analysis,
        "endpoint": scale.endpoint,
        "groups": " vs ".join(str(v) for v in levels),
        "n": int(len(time)),
        "events": int(event.sum()),
        "n_excluded": int((~usable).sum()),
        "chisq": lr["chisq"],
        "df": lr["df"],
        "p": lr["p"],
        "origin": scale.origin,
        "entry": scale.entry_label,
    }
    return frames, logrank_row


def later_lines(endpoints, group, group_levels, tdm1_line):
    """Patients of the compared groups treated with T-DM1 after `tdm1_line`."""
    keep = (endpoints["tdm1_line"] > tdm1_line) & endpoints[group].isin(group_levels)
    return endpoints.loc[keep].reset_index(drop=True)


def km_tables(
    endpoints,
    *,
    group,
    group_levels,
    tdm1_line,
    conf_type="log-log",
    conf_level=0.95,
    by_line_max=4,
    os_origin="advanced_dx",
    delayed_entry=True,
):
    """Kaplan-Meier curves, medians, numbers at risk and log-rank tests.

    Analyses: ``os`` and ``pfs2`` compare `group_levels` among patients
    treated in `tdm1_line` (OS on its configured timescale, see
    :func:`timescales`); ``os_alt`` is OS from the other origin (the
    sensitivity analysis of figS5); ``later_os`` and ``later_pfs2`` compare
    the groups among patients treated with T-DM1 in a later line (figS8);
    ``by_line`` compares T-DM1 PFS across lines (all patients).

    Parameters
    ----------
    endpoints : DataFrame
        Per-patient endpoints (months).

    Returns
    -------
    curves, medians, logrank : DataFrame
    """
    scales = timescales(os_origin, delayed_entry)
    levels = list(group_levels)
    cohort = analysis_cohort(endpoints, group, group_levels, tdm1_line)
    later = later_lines(endpoints, group, group_levels, tdm1_line)
    parts, tests = [], []
    specs = [
        ("os", scales["OS"], cohort),
        ("pfs2", scales["PFS2"], cohort),
        ("os_alt", scales["OS_alt"], cohort),
    ]
    if all((later[group] == level).any() for level in levels):
        specs += [("later_os", scales["OS"], later), ("later_pfs2", scales["PFS2"], later)]
    for analysis, scale, data in specs:
        frames, test = _km_block(
            analysis,
            scale,
            data,
            data[group].astype(str).to_numpy(),
            levels,
            conf_type,
            conf_level,
        )
        parts.append(frames)
        tests.append(test)
    lines, line_levels = line_groups(endpoints, by_line_max)
    frames, test = _km_block(
        "by_line",
        scales["PFS2"],
        endpoints,
        lines.to_numpy(),
        line_levels,
        conf_type,
        conf_level,
    )
    parts.append(frames)
    tests.append(test)
    curves, medians = (pd.concat([p[i] for p in parts], ignore_index=True) for i in range(2))
    return curves, medians, pd.DataFrame(tests)


def rmst_table(
    endpoints,
    *,
    group,
    group_levels,
    tdm1_line,
    horizons,
    os_origin="advanced_dx",
    delayed_entry=True,
    conf_level=0.95,
):
    """Restricted mean survival time per group and its difference (a PH-free effect).

    Parameters
    ----------
    horizons : dict
        Endpoint ("OS", "PFS2") -> horizon in months.

    Returns
    -------
    DataFrame
        One row per endpoint and group (``rmst``, ``se``) and one
        ``difference`` row (group 2 - group 1, SE, Wald CI, p), with
        ``horizon_months``, ``origin`` and ``entry``.
    """
    scales = timescales(os_origin, delayed_entry)
    cohort = analysis_cohort(endpoints, group, group_levels, tdm1_line)
    rows = []
    for endpoint in ("OS", "PFS2"):
        scale = scales[endpoint]
        data = cohort.loc[scale.usable(cohort)]
        time, event, entry = scale.arrays(data)
        common = {
            "endpoint": endpoint,
            "horizon_months": float(horizons[endpoint]),
            "origin": scale.origin,
            "entry": scale.entry_label,
        }
        try:
            res = rmst_difference(
                time,
                event,
                data[group].astype(str).to_numpy(),
                list(group_levels),
                horizons[endpoint],
                conf_level=conf_level,
                entry=entry,
            )
        except ValueError as err:  # horizon beyond a group's follow-up
            rows.append({**common, "row": "difference", "note": str(err)})
            continue
        for _, g in res["table"].iterrows():
            rows.append(
                {
                    **common,
                    "row": "group",
                    "group": g["group"],
                    "n": int(g["n"]),
                    "events": int(g["events"]),
                    "rmst": g["rmst"],
                    "se": g["se"],
                }
            )
        rows.append(
            {
                **common,
                "row": "difference",
                "group": f"{group_levels[1]} - {group_levels[0]}",
                "rmst": res["difference"],
                "se": res["se"],
                "lower": res["lower"],
                "upper": res["upper"],
                "p": res["p"],
            }
        )
    return pd.DataFrame(rows)


def as_levels(series):
    """A categorical column as level strings, missing kept missing.

    Tables read back from CSV give a numeric-coded factor with blanks as
    floats (ECOG 0.0, 1.0, NaN); its levels are the integers' text ("0").
    """
    if pd.api.types.is_numeric_dtype(series):
        return series.map(
            lambda v: None if pd.isna(v) else (str(int(v)) if float(v).is_integer() else str(v))
        ).astype(object)
    return series.where(series.isna(), series.astype(str))


def _categorical_for(covariates, categorical, data):
    """Levels (reference first) of every categorical term in the model."""
    levels = {}
    for term in covariates:
        if term in categorical:
            levels[term] = [str(v) for v in categorical[term]]
        elif not pd.api.types.is_numeric_dtype(data[term]):
            levels[term] = sorted(data[term].dropna().astype(str).unique())
    return levels


def _labelled(data, covariates, categorical):
    """A copy of `data` with every categorical covariate as level strings, and the levels."""
    levels = _categorical_for(covariates, categorical, data)
    data = data.copy()
    for term in levels:
        data[term] = as_levels(data[term])
    return data, levels


def _model_frame(endpoints, group, group_levels, tdm1_line, covariates, categorical, strata):
    """The analysed patients and the terms of the Cox models (group first).

    Returns the labelled cohort, the levels of its categorical terms, all
    terms, the multivariable terms (strata left out) and the strata.
    """
    strata = [c for c in strata if c != group]
    terms = [group] + [c for c in covariates if c != group]
    cohort, levels = _labelled(
        analysis_cohort(endpoints, group, group_levels, tdm1_line),
        terms,
        {group: list(group_levels), **categorical},
    )
    return cohort, levels, terms, [t for t in terms if t not in strata], strata


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
    os_origin="advanced_dx",
    delayed_entry=True,
    strata=(),
):
    """Univariable and multivariable Cox models for OS and PFS2, with PH tests.

    The group enters every model as a factor with `group_levels[0]` as
    reference. Univariable: one model per term. Multivariable: the group and
    all covariates except `strata`, which stratify the baseline hazard (R
    ``+ strata(x)``), complete cases (the excluded count is reported). OS is
    on its configured timescale (:func:`timescales`; delayed entry as R
    ``Surv(entry, time, event)``).

    Returns
    -------
    coefficients, models, ph_test, schoenfeld : DataFrame
    """
    scales = timescales(os_origin, delayed_entry)
    cohort, levels, terms, multi_terms, strata = _model_frame(
        endpoints, group, group_levels, tdm1_line, covariates, categorical, strata
    )
    coefficient_rows, model_rows, ph_rows, residual_frames = [], [], [], []
    for endpoint in ENDPOINTS:
        scale = scales[endpoint]
        data = cohort.loc[scale.usable(cohort)].reset_index(drop=True)
        specs = [("univariate", [term], []) for term in terms] + [
            ("multivariate", multi_terms, strata)
        ]
        for model, model_terms, model_strata in specs:
            result = fit_cox(
                data,
                scale.time,
                scale.event,
                model_terms,
                categorical={t: levels[t] for t in model_terms if t in levels},
                ties=ties,
                entry_col=scale.entry,
                strata=list(model_strata) or None,
            )
            excluded = result.n_excluded + int(len(cohort) - len(data))
            table = result.table.copy()
            table.insert(0, "model", model)
            table.insert(0, "endpoint", endpoint)
            table["n"] = result.n
            table["events"] = result.events
            table["n_excluded"] = excluded
            coefficient_rows.append(table)
            model_rows.append(
                {
                    "endpoint": endpoint,
                    "model": model,
                    "terms": " + ".join(model_terms),
                    "strata": " + ".join(model_strata),
                    "origin": scale.origin,
                    "entry": scale.entry_label,
                    "n": result.n,
                    "events": result.events,
                    "n_excluded": excluded,
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
                ph["strata"] = " + ".join(model_strata)
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


def cohort_flow(
    endpoints,
    *,
    group,
    group_levels,
    group_labels,
    tdm1_line,
    by_line_max,
    covariates=(),
    os_origin="advanced_dx",
    delayed_entry=True,
):
    """The cohort flow (fig5, STROBE) as a tree of boxes with counts from the data.

    Boxes: all patients, T-DM1 line, the compared groups; exclusion boxes
    (``kind`` "excluded") give each reason with its count: patients whose
    group is none of `group_levels`, OS records that end at T-DM1 start
    (no time at risk with delayed entry), and patients left out of the
    multivariable models for a missing covariate (complete cases).

    Returns
    -------
    DataFrame
        Columns ``box_id, parent_id, label, n, kind`` (``cohort`` or
        ``excluded``).
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
    scale = timescales(os_origin, delayed_entry)["OS"]
    if target is not None:
        in_line = endpoints.loc[lines == target]
        other = int((~in_line[group].astype(str).isin([str(v) for v in group_levels])).sum())
        if other:
            rows.append(
                {
                    "box_id": "excluded_group",
                    "parent_id": f"line_{target}",
                    "label": f"Excluded: {group} not " + " / ".join(map(str, group_levels)),
                    "n": other,
                    "kind": "excluded",
                }
            )
        for level, label in zip(group_levels, group_labels, strict=True):
            members = in_line.loc[in_line[group].astype(str) == str(level)]
            box = f"group_{level}"
            rows.append(
                {
                    "box_id": box,
                    "parent_id": f"line_{target}",
                    "label": label,
                    "n": int(len(members)),
                }
            )
            no_time = int((~scale.usable(members)).sum())
            if no_time:
                rows.append(
                    {
                        "box_id": f"excluded_entry_{level}",
                        "parent_id": box,
                        "label": "Excluded from OS: follow-up ends at T-DM1 start",
                        "n": no_time,
                        "kind": "excluded",
                    }
                )
            missing = int(members[list(covariates)].isna().any(axis=1).sum()) if covariates else 0
            if missing:
                rows.append(
                    {
                        "box_id": f"excluded_missing_{level}",
                        "parent_id": box,
                        "label": "Not in multivariable models: a covariate missing",
                        "n": missing,
                        "kind": "excluded",
                    }
                )
    flow = pd.DataFrame(rows)
    flow["kind"] = flow.get("kind", pd.Series(index=flow.index, dtype=object)).fillna("cohort")
    return flow


# --------------------------------------------------------------------------
# proportional hazards: what was done about each violation
# --------------------------------------------------------------------------
def ph_actions(ph_test, *, strata=(), alpha=0.05):
    """The PH test table with an ``action`` column saying what was done per term.

    A term with p < `alpha` (cox.zph) is flagged: its hazard ratio is an
    average over follow-up, so the restricted mean survival time difference
    (rmst.csv) is the PH-free effect measure reported for the group, and a
    covariate can be moved to ``survival.strata``. Strata are listed as rows
    of their own (they have no coefficient to test).
    """
    table = ph_test.copy()
    actions = []
    for _, row in table.iterrows():
        if row["term"] == "GLOBAL":
            actions.append("global test")
        elif row["p"] < alpha:
            actions.append(
                "violation: HR averages a time-varying effect; RMST difference reported; "
                "stratify via survival.strata if a covariate"
            )
        else:
            actions.append("no evidence against PH")
    table["action"] = actions
    extra = []
    for endpoint in table["endpoint"].unique():
        for column in strata:
            extra.append(
                {
                    "endpoint": endpoint,
                    "term": column,
                    "action": "stratified: own baseline hazard (survival.strata), not tested",
                }
            )
    if extra:
        table = pd.concat([table, pd.DataFrame(extra)], ignore_index=True)
    return table


# --------------------------------------------------------------------------
# confounding: inverse probability of treatment weighting
# --------------------------------------------------------------------------


def weighting_tables(
    endpoints,
    *,
    group,
    group_levels,
    tdm1_line,
    covariates,
    categorical,
    os_origin="advanced_dx",
    delayed_entry=True,
    truncation=None,
    conf_level=0.95,
    ties="efron",
    bins=20,
):
    """IPTW analysis: propensity model, stabilised ATE weights, balance, weighted estimates.

    The propensity of `group_levels[1]` is a logistic model on `covariates`
    plus the calendar year of T-DM1 start when the data give it (era);
    patients with a missing propensity covariate are left out (complete
    cases, counted). Weights are stabilised (Robins 2000) and optionally
    capped at the `truncation` percentiles.

    Returns
    -------
    dict of DataFrame
        ``iptw`` (weighted Cox of the group per endpoint, robust SE, as R
        ``coxph(..., weights = w, robust = TRUE)``; weighted KM medians per
        group; weight summaries), ``balance`` (SMD before / after
        weighting) and ``propensity`` (histogram of propensity scores per
        group, 0-1 in `bins` bins; aggregated, no patient rows).
    """
    scales = timescales(os_origin, delayed_entry)
    cohort = analysis_cohort(endpoints, group, group_levels, tdm1_line)
    ps_covariates = [c for c in covariates if c != group]
    if "tdm1_start_year" in cohort and cohort["tdm1_start_year"].notna().all():
        ps_covariates.append("tdm1_start_year")
    data, levels = _labelled(cohort, ps_covariates, categorical)
    data[group] = data[group].astype(str)
    ps, _ = propensity_scores(data, group, list(group_levels), ps_covariates, levels)
    ps = np.asarray(ps, dtype=float)
    keep = np.isfinite(ps)
    data = data.loc[keep].reset_index(drop=True)
    ps = ps[keep]
    treated = (data[group] == str(group_levels[1])).to_numpy()
    truncate = tuple(truncation) if truncation else None
    weights = stabilised_weights(treated, ps, truncate=truncate)
    data["_w"] = weights
    n_excluded = int((~keep).sum())

    balance = standardised_differences(
        data, group, list(group_levels), ps_covariates, levels, weights=weights
    )
    balance.insert(0, "n_excluded", n_excluded)

    edges = np.linspace(0.0, 1.0, bins + 1)
    hist_rows = []
    for level in group_levels:
        counts, _ = np.histogram(ps[(data[group] == str(level)).to_numpy()], bins=edges)
        for k in range(bins):
            hist_rows.append(
                {
                    "group": level,
                    "bin_left": edges[k],
                    "bin_right": edges[k + 1],
                    "n": int(counts[k]),
                }
            )

    rows = []
    common = {"truncation": "none" if truncate is None else f"{truncate[0]:g}-{truncate[1]:g} pct"}
    for level, is_t in ((group_levels[0], False), (group_levels[1], True)):
        w = weights[treated == is_t]
        rows.append(
            {
                "row": "weights",
                "endpoint": "",
                "group": level,
                "n": int(w.size),
                "weight_sum": float(w.sum()),
                "weight_min": float(w.min()),
                "weight_max": float(w.max()),
                "ess": float(w.sum() ** 2 / np.sum(w**2)),
                **common,
            }
        )
    for endpoint in ("OS", "PFS2"):
        scale = scales[endpoint]
        sub = data.loc[scale.usable(data)].reset_index(drop=True)
        time, event, entry = scale.arrays(sub)
        result = fit_cox(
            sub,
            scale.time,
            scale.event,
            [group],
            categorical={group: [str(v) for v in group_levels]},
            ties=ties,
            entry_col=scale.entry,
            weights_col="_w",
            robust=True,
        )
        coef = result.table.iloc[0]
        rows.append(
            {
                "row": "cox",
                "endpoint": endpoint,
                "group": f"{group_levels[1]} vs {group_levels[0]}",
                "term": coef["column"],
                "n": result.n,
                "events": result.events,
                "n_excluded": n_excluded + int(len(data) - len(sub)),
                "coef": coef["coef"],
                "se_robust": coef["se_robust"],
                "hr": coef["hr"],
                "hr_lower": coef["hr_lower"],
                "hr_upper": coef["hr_upper"],
                "p": coef["p"],
                "origin": scale.origin,
                "entry": scale.entry_label,
                **common,
            }
        )
        groups = sub[group].to_numpy()
        for level in group_levels:
            mask = groups == str(level)
            curve = kaplan_meier(
                time[mask],
                event[mask],
                conf_level=conf_level,
                entry=None if entry is None else entry[mask],
                weights=sub["_w"].to_numpy(float)[mask],
                robust=True,
            )
            med = km_median(curve)
            rows.append(
                {
                    "row": "km_median",
                    "endpoint": endpoint,
                    "group": level,
                    "n": int(mask.sum()),
                    "median": med["median"],
                    "lower": med["lower"],
                    "upper": med["upper"],
                    "origin": scale.origin,
                    "entry": scale.entry_label,
                    **common,
                }
            )
    return {
        "iptw": pd.DataFrame(rows),
        "balance": balance,
        "propensity": pd.DataFrame(hist_rows),
    }


# --------------------------------------------------------------------------
# subgroups
# --------------------------------------------------------------------------
def subgroup_table(
    endpoints,
    *,
    group,
    group_levels,
    tdm1_line,
    subgroups,
    categorical,
    os_origin="advanced_dx",
    delayed_entry=True,
    ties="efron",
):
    """Hazard ratio of the group within each level of each subgroup variable.

    Per level: a Cox model of the group alone among that level's patients.
    Interaction p: likelihood-ratio test of the model ``group + v +
    group:v`` against ``group + v`` (patients with `v` known), df = levels
    - 1. A level whose model cannot be fitted (no event, one group only)
    gets NaN (shown as NE).

    Returns
    -------
    DataFrame
        ``endpoint, variable, level, n, events, hr, hr_lower, hr_upper,
        p_interaction, interaction_df`` (one ``all`` row per endpoint first).
    """
    from sepher.survival.distributions import chi2_sf

    scales = timescales(os_origin, delayed_entry)
    cohort = analysis_cohort(endpoints, group, group_levels, tdm1_line)
    data, levels = _labelled(cohort, list(subgroups), categorical)
    data[group] = data[group].astype(str)
    group_cat = {group: [str(v) for v in group_levels]}
    rows = []

    def fit(frame, scale, terms, cats):
        return fit_cox(
            frame,
            scale.time,
            scale.event,
            terms,
            categorical=cats,
            ties=ties,
            entry_col=scale.entry,
            concordance=False,
        )

    for endpoint in ("OS", "PFS2"):
        scale = scales[endpoint]
        sub = data.loc[scale.usable(data)].reset_index(drop=True)
        overall = fit(sub, scale, [group], group_cat).table.iloc[0]
        rows.append(
            {
                "endpoint": endpoint,
                "variable": "all",
                "level": "All patients",
                "n": int(len(sub)),
                "events": int(sub[scale.event].sum()),
                "hr": overall["hr"],
                "hr_lower": overall["hr_lower"],
                "hr_upper": overall["hr_upper"],
            }
        )
        for variable in subgroups:
            known = sub.loc[sub[variable].notna()].reset_index(drop=True)
            cats = {**group_cat, variable: levels[variable]}
            try:
                main = fit(known, scale, [group, variable], cats)
                inter = fit(known, scale, [group, variable, f"{group}:{variable}"], cats)
                lr = 2 * (inter.loglik - main.loglik)
                df = inter.lr_df - main.lr_df
                p_int = float(chi2_sf(lr, df))
            except (ValueError, np.linalg.LinAlgError):
                df, p_int = len(levels[variable]) - 1, np.nan
            for level in levels[variable]:
                part = known.loc[known[variable] == level].reset_index(drop=True)
                row = {
                    "endpoint": endpoint,
                    "variable": variable,
                    "level": level,
                    "n": int(len(part)),
                    "events": int(part[scale.event].sum()),
                    "hr": np.nan,
                    "hr_lower": np.nan,
                    "hr_upper": np.nan,
                    "p_interaction": p_int,
                    "interaction_df": int(df),
                }
                both = part[group].nunique() == 2 and part[scale.event].sum() > 0
                if both:
                    try:
                        est = fit(part, scale, [group], group_cat).table.iloc[0]
                        row.update(hr=est["hr"], hr_lower=est["hr_lower"], hr_upper=est["hr_upper"])
                    except (ValueError, np.linalg.LinAlgError):
                        pass
                rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------
# missing covariates: multiple imputation as a sensitivity analysis
# --------------------------------------------------------------------------
def imputation_table(
    endpoints,
    *,
    group,
    group_levels,
    tdm1_line,
    covariates,
    categorical,
    os_origin="advanced_dx",
    delayed_entry=True,
    strata=(),
    ties="efron",
    m=20,
    seed=0,
):
    """The multivariable Cox models by complete cases and by MICE, side by side.

    The primary analysis uses complete cases (:func:`cox_tables`); here
    missing covariates are imputed `m` times by chained equations
    (:func:`sepher.survival.imputation.mice_cox`, outcome in the imputation
    model) and the estimates pooled by Rubin's rules, assuming missing at
    random. Ordered categorical covariates (levels in config order, e.g.
    ECOG) are imputed as codes by predictive mean matching.

    Returns
    -------
    DataFrame
        ``endpoint, analysis ("complete cases" | "MICE, m = <m>"), term,
        column, level, reference, coef, se, hr, hr_lower, hr_upper, p, n,
        n_missing`` (n_missing: patients with any missing covariate).
    """
    from sepher.survival.imputation import mice_cox

    scales = timescales(os_origin, delayed_entry)
    cohort, levels, terms, multi_terms, strata = _model_frame(
        endpoints, group, group_levels, tdm1_line, covariates, categorical, strata
    )
    n_missing = int(cohort[terms].isna().any(axis=1).sum())
    ordinal = [t for t in levels if t != group and len(levels[t]) > 2]
    frames = []
    for endpoint in ENDPOINTS:
        scale = scales[endpoint]
        data = cohort.loc[scale.usable(cohort)].reset_index(drop=True)
        fit_kwargs = {"entry_col": scale.entry, "strata": strata or None}
        complete = fit_cox(
            data,
            scale.time,
            scale.event,
            multi_terms,
            categorical={t: levels[t] for t in multi_terms if t in levels},
            ties=ties,
            concordance=False,
            **fit_kwargs,
        )
        cc = complete.table[["term", "column", "level", "reference", "coef", "se", "hr"]].copy()
        cc[["hr_lower", "hr_upper", "p"]] = complete.table[["hr_lower", "hr_upper", "p"]]
        cc.insert(0, "analysis", "complete cases")
        cc["n"] = complete.n
        frames.append(cc.assign(endpoint=endpoint))
        mi = mice_cox(
            data,
            scale.time,
            scale.event,
            multi_terms,
            categorical={t: levels[t] for t in terms if t in levels},
            m=m,
            seed=seed,
            ties=ties,
            extra_predictors=strata,
            ordinal=ordinal,
            fit_kwargs=fit_kwargs,
        )
        table = mi.table[
            [
                "term",
                "column",
                "level",
                "reference",
                "coef",
                "se",
                "hr",
                "hr_lower",
                "hr_upper",
                "p",
            ]
        ].copy()
        table.insert(0, "analysis", f"MICE, m = {m}")
        table["n"] = mi.n
        frames.append(table.assign(endpoint=endpoint))
    out = pd.concat(frames, ignore_index=True)
    out["n_missing"] = n_missing
    return out[["endpoint", *[c for c in out.columns if c != "endpoint"]]]
