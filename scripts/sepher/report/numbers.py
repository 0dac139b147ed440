"""The key numbers of a run, as sentences for figure captions.

Each function takes the result tables the workflow writes (pandas
DataFrames, as read by :func:`sepher.io.tables.read_table`) and returns one
reStructuredText paragraph stating the numbers a reader looks for in that
figure: medians with their confidence intervals, test statistics and
p-values (:func:`sepher.formatting.format_p`), hazard ratios, ratios between conditions, category counts. Nothing
here reads files or knows about Snakemake.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from sepher.formatting import format_p

__all__ = [
    "format_ci",
    "format_number",
    "km_numbers",
    "by_line_numbers",
    "flow_numbers",
    "cox_numbers",
    "ph_numbers",
    "table1_numbers",
    "if_numbers",
    "ihc_numbers",
    "ic50_numbers",
    "image_qc_numbers",
    "plate_qc_numbers",
    "excluded_plate_list",
    "metrics_numbers",
    "ADJUSTED_P_LABELS",
]

#: ``stats.multiplicity`` -> how an adjusted p-value is labelled (as in the figures).
ADJUSTED_P_LABELS = {"holm": "Holm-adjusted p", "bh": "BH-adjusted p", "none": "unadjusted p"}

#: Sentence that opens every numbers paragraph (the figure's own text comes first).
LEAD = "**This run.**"


def format_number(value, digits: int = 1) -> str:
    """`value` with `digits` decimals; "NA" for a missing value, "not reached" for inf."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "NA"
    if isinstance(value, float) and math.isinf(value):
        return "not reached"
    return f"{float(value):.{digits}f}"


def format_ci(estimate, lower, upper, digits: int = 1, conf_level: float = 0.95) -> str:
    """ "52.9 (95% CI 48.5-59.5)"; a missing bound reads "NA" (e.g. upper not reached)."""
    level = f"{100 * conf_level:g}%"
    return (
        f"{format_number(estimate, digits)} ({level} CI "
        f"{format_number(lower, digits)}-{format_number(upper, digits)})"
    )


def _label(level, group_levels, group_labels) -> str:
    levels = [str(v) for v in group_levels]
    if str(level) in levels and len(group_labels) == len(levels):
        return str(group_labels[levels.index(str(level))])
    return str(level)


def km_numbers(
    medians: pd.DataFrame,
    logrank: pd.DataFrame,
    cox: pd.DataFrame,
    analysis: str,
    group: str,
    group_levels,
    group_labels=(),
) -> str:
    """Median survival per group with CI, the log-rank p and the univariate HR.

    Parameters
    ----------
    medians, logrank, cox : DataFrame
        ``km_medians.csv``, ``logrank.csv`` and ``cox.csv`` of the cohort stage.
    analysis : {"os", "pfs2"}
        Rows of `medians` and `logrank` to report.
    group : str
        Cohort column compared (``survival.group``); its univariate Cox row
        gives the hazard ratio of the second level versus the first.
    group_levels, group_labels : sequence of str
        Levels (reference first) and their display names.

    Returns
    -------
    str
        One paragraph; times in months.
    """
    rows = medians[medians["analysis"] == analysis]
    rows = rows.set_index(rows["group"].astype(str))
    if rows.empty:
        return ""
    endpoint = str(rows["endpoint"].iloc[0])
    conf_level = float(rows["conf_level"].iloc[0])
    conf_type = str(rows["conf_type"].iloc[0])
    parts = []
    for level in [str(v) for v in group_levels] or list(rows.index):
        if level not in rows.index:
            continue
        row = rows.loc[level]
        parts.append(
            f"{_label(level, group_levels, group_labels)} (n = {int(row['n'])}, "
            f"{int(row['events'])} events): "
            + format_ci(row["median"], row["lower"], row["upper"], 1, conf_level)
        )
    text = f"{LEAD} Median {endpoint}, months ({conf_type} CI): " + "; ".join(parts) + "."
    if "entry" in rows.columns and str(rows["entry"].iloc[0]) not in ("none", "", "nan"):
        text += " Patients at risk from T-DM1 start (delayed entry, left truncation)."
    test = logrank[logrank["analysis"] == analysis]
    if not test.empty:
        test = test.iloc[0]
        text += (
            f" Log-rank chi-squared = {test['chisq']:.2f} on {int(test['df'])} df, "
            f"{format_p(test['p'])}."
        )
        if "n_excluded" in test.index and test["n_excluded"] > 0:
            text += (
                f" {int(test['n_excluded'])} patients whose follow-up ends at T-DM1 start "
                "have no time at risk and are left out."
            )
    if cox is None:
        return text
    hr = cox[
        (cox["endpoint"] == endpoint) & (cox["model"] == "univariate") & (cox["term"] == group)
    ]
    if not hr.empty:
        hr = hr.iloc[0]
        text += (
            f" Univariable Cox hazard ratio (Wald 95% CI, Wald p), "
            f"{_label(hr['level'], group_levels, group_labels)} vs "
            f"{_label(hr['reference'], group_levels, group_labels)}: "
            + format_ci(hr["hr"], hr["hr_lower"], hr["hr_upper"], 2)
            + f", {format_p(hr['p'])}."
        )
    return text


def by_line_numbers(medians: pd.DataFrame, logrank: pd.DataFrame) -> str:
    """Median PFS on T-DM1 per line of therapy, and the log-rank test across lines."""
    rows = medians[medians["analysis"] == "by_line"]
    if rows.empty:
        return ""
    conf_level = float(rows["conf_level"].iloc[0])
    parts = [
        f"line {row['group']} (n = {int(row['n'])}): "
        + format_ci(row["median"], row["lower"], row["upper"], 1, conf_level)
        for _, row in rows.iterrows()
    ]
    text = f"{LEAD} Median PFS on T-DM1, months: " + "; ".join(parts) + "."
    test = logrank[logrank["analysis"] == "by_line"]
    if not test.empty:
        test = test.iloc[0]
        text += (
            f" Log-rank test across lines: chi-squared = {test['chisq']:.2f} on "
            f"{int(test['df'])} df, {format_p(test['p'])}."
        )
    return text


def flow_numbers(flow: pd.DataFrame) -> str:
    """Patients in each box of the cohort flow."""
    flow = flow.set_index("box_id")
    if "all" not in flow.index:
        return ""
    children = flow[flow["parent_id"] == "all"]
    text = f"{LEAD} {int(flow.loc['all', 'n'])} patients: " + ", ".join(
        f"{int(row['n'])} {row['label']}" for _, row in children.iterrows()
    )
    for box_id, row in children.iterrows():
        split = flow[flow["parent_id"] == box_id]
        if not split.empty:
            text += f"; of the {int(row['n'])} {row['label']}: " + ", ".join(
                f"{int(r['n'])} {r['label']}" for _, r in split.iterrows()
            )
    return text + "."


def cox_numbers(
    cox: pd.DataFrame, group: str, model: str = "multivariate", others: bool = True
) -> str:
    """Hazard ratio of the compared group in each endpoint's model, with n and events.

    With `others`, the other terms with p < 0.05 are listed (HR only).
    """
    rows = cox[(cox["model"] == model) & (cox["term"] == group)]
    if rows.empty:
        return ""
    parts = [
        f"{row['endpoint']}: HR {row['level']} vs {row['reference']} "
        + format_ci(row["hr"], row["hr_lower"], row["hr_upper"], 2)
        + f", {format_p(row['p'])} (n = {int(row['n'])}, {int(row['events'])} events"
        + (f", {int(row['n_excluded'])} incomplete cases left out" if row["n_excluded"] else "")
        + ")"
        for _, row in rows.iterrows()
    ]
    text = f"{LEAD} {model.capitalize()} hazard ratio of ``{group}``: " + "; ".join(parts) + "."
    other_terms = cox[(cox["model"] == model) & (cox["term"] != group)]
    significant = other_terms[other_terms["p"] < 0.05]
    if others and not significant.empty:
        text += " Other terms with p < 0.05: " + "; ".join(
            f"{row['endpoint']} {row['term']}"
            + (f" {row['level']}" if isinstance(row["level"], str) and row["level"] else "")
            + f" HR {format_number(row['hr'], 2)}"
            for _, row in significant.iterrows()
        )
        text += "."
    return text


def ph_numbers(ph_test: pd.DataFrame, endpoint: str = "OS") -> str:
    """Global proportional-hazards test and the terms with p < 0.05."""
    rows = ph_test[ph_test["endpoint"] == endpoint]
    if rows.empty:
        return ""
    glob = rows[rows["term"] == "GLOBAL"]
    text = f"{LEAD} {endpoint} model:"
    if not glob.empty:
        g = glob.iloc[0]
        text += f" GLOBAL chi-squared = {g['chisq']:.2f} on {int(g['df'])} df, {format_p(g['p'])}."
    low = rows[(rows["term"] != "GLOBAL") & (rows["p"] < 0.05)]
    if low.empty:
        text += " No term with p < 0.05."
    else:
        text += " Terms with p < 0.05: " + "; ".join(
            f"{row['term']} ({format_p(row['p'])})" for _, row in low.iterrows()
        )
        text += "."
    return text


def table1_numbers(table1: pd.DataFrame) -> str:
    """Group sizes and the characteristics that differ at p < 0.05."""
    groups = [c for c in table1.columns if c not in ("variable", "level", "statistic", "missing")]
    groups = [c for c in groups if c not in ("overall", "p", "test", "smd")]
    n_row = table1[table1["variable"] == "n"]
    text = LEAD
    if not n_row.empty:
        n_row = n_row.iloc[0]
        text += f" {n_row['overall']} patients: " + ", ".join(
            f"{group} {n_row[group]}" for group in groups
        )
        text += "."
    p = pd.to_numeric(table1["p"], errors="coerce")
    differ = table1[p < 0.05]
    if differ.empty:
        text += " No characteristic differs between the groups at p < 0.05."
    else:
        text += " Differing at p < 0.05: " + "; ".join(
            f"{row['variable']} ({format_p(float(row['p']))}, {row['test']})"
            for _, row in differ.iterrows()
        )
        text += "."
    if "smd" in table1.columns:
        smd = pd.to_numeric(table1["smd"], errors="coerce").abs()
        imbalanced = table1.loc[smd > 0.1, "variable"].drop_duplicates()
        text += (
            " Standardised mean difference > 0.1 (imbalance): "
            + (", ".join(imbalanced) if len(imbalanced) else "none")
            + "."
        )
    return text


def if_numbers(
    comparisons: pd.DataFrame,
    value: str = "her2_net_membrane",
    pairs=None,
    name: str = "membrane HER2",
) -> str:
    """Ratios of a per-cell value between conditions (replicate-level Welch tests).

    Parameters
    ----------
    comparisons : DataFrame
        ``if_comparisons.csv``: one row per cell line, value and pair of
        conditions (``test`` vs ``reference``), with ``ratio`` (test /
        reference), ``ratio_ci_low``, ``ratio_ci_high``, ``conf_level``,
        ``n_test``, ``n_reference`` (biological replicates) and ``p``.
    value : str
        The per-cell value reported (default membrane HER2 above background).
    pairs : sequence of (test, reference), optional
        Pairs to report, in this order (default: every pair in the table).
    name : str
        What `value` is, in words.
    """
    rows = comparisons[comparisons["value"] == value]
    if pairs is not None:
        order = {(str(t), str(r)): k for k, (t, r) in enumerate(pairs)}
        keys = zip(rows["test"].astype(str), rows["reference"].astype(str), strict=True)
        rows = rows.assign(_rank=[order.get(key, -1) for key in keys])
        rows = rows[rows["_rank"] >= 0].sort_values(["cell_line", "_rank"], kind="stable")
    if rows.empty:
        return ""
    parts = [
        f"{row['cell_line']} {row['test']} / {row['reference']} "
        + format_ci(row["ratio"], row["ratio_ci_low"], row["ratio_ci_high"], 2, row["conf_level"])
        + f", {format_p(row['p'])} ({int(row['n_test'])} vs {int(row['n_reference'])} replicates)"
        for _, row in rows.iterrows()
    ]
    return f"Ratio of {name} (replicate means, Welch t-test): " + "; ".join(parts) + "."


def ihc_numbers(samples: pd.DataFrame, paired: pd.DataFrame | None = None) -> str:
    """ASCO/CAP categories of the pre and post biopsies, and the paired H-score change.

    Patients are numbered 1, 2, ... in the order of their pseudonymous codes
    (as in the figure): no identifier appears in the text.
    """
    if samples.empty:
        return ""
    codes = sorted(samples["patient_id"].astype(str).unique())
    number = {code: k + 1 for k, code in enumerate(codes)}
    text = f"{LEAD} {len(codes)} patients, {len(samples)} biopsies."
    for timepoint in ("pre", "post"):
        rows = samples[samples["timepoint"] == timepoint]
        if rows.empty:
            continue
        counts = rows["asco_cap_label"].astype(str).value_counts()
        order = [c for c in ("0", "1+", "2+", "3+") if c in counts.index]
        text += f" ASCO/CAP {timepoint}: " + ", ".join(f"{counts[c]} x {c}" for c in order) + "."
        if "her2_2023" in rows:
            labels = rows["her2_2023"].astype(str).value_counts()
            text += " 2023: " + ", ".join(f"{labels[k]} x {k}" for k in sorted(labels.index)) + "."
    if "reflex_ish" in samples:
        ish = int(_is_true(samples["reflex_ish"]).sum())
        if ish:
            text += f" {ish} biopsies 2+ equivocal: reflex ISH."
    if paired is not None and not paired.empty:
        paired = paired.assign(_n=paired["patient_id"].astype(str).map(number))
        paired = paired.sort_values("_n")
        text += " H-score pre -> post: " + "; ".join(
            f"patient {row['_n']} {format_number(row['h_score_pre'], 0)} -> "
            f"{format_number(row['h_score_post'], 0)} "
            f"({row['asco_cap_pre_label']} -> {row['asco_cap_post_label']})"
            for _, row in paired.iterrows()
        )
        down = int(np.sum(paired["h_score_change"] < 0))
        text += f". H-score fell in {down} of {len(paired)} patients."
    return text


def _adjusted_label(method) -> str:
    key = str(method).strip().lower() if method is not None else "none"
    return ADJUSTED_P_LABELS.get(key, f"{method}-adjusted p")


def _is_true(values) -> pd.Series:
    return pd.Series(values).astype(str).str.strip().str.lower().isin(["true", "1", "yes"])


def ic50_numbers(comparisons: pd.DataFrame, conf_level: float = 0.95, family=None) -> str:
    """IC50 (ED50) ratios between conditions per cell line, with CI, test and adjusted p.

    Parameters
    ----------
    comparisons : DataFrame
        ``results/doseresponse/comparisons.csv`` with ``cell_line``,
        ``numerator``, ``denominator``, ``ratio``, ``lower``, ``upper``, ``p``
        (``drug`` optional). A replicate-level table also has ``test``,
        ``n_replicates_numerator``, ``n_replicates_denominator``,
        ``p_adjusted``, ``multiplicity``, ``family`` and ``conf_level``: the
        test, the replicates and the adjusted p (labelled as adjusted) are
        stated; an old (well-level) table gives its p as unadjusted.
    conf_level : float
        Level of the CIs when the table has no ``conf_level`` column.
    family : str, optional
        Only the rows of this ``family`` (``"fig1"``, ``"fig3"``) when the
        table has that column.
    """
    if family is not None and "family" in comparisons.columns:
        comparisons = comparisons[comparisons["family"].astype(str) == family]
    if comparisons.empty:
        return ""
    replicate_level = "p_adjusted" in comparisons.columns
    if "conf_level" in comparisons.columns:
        conf_level = float(comparisons["conf_level"].iloc[0])
    parts = []
    for _, row in comparisons.iterrows():
        text = f"{row['cell_line']} {row['numerator']} / {row['denominator']} " + format_ci(
            row["ratio"], row["lower"], row["upper"], 2, conf_level
        )
        if replicate_level:
            test = str(row.get("test", ""))
            if test.startswith("paired") and pd.notna(row.get("n_pairs", np.nan)):
                text += f", {test}, {int(row['n_pairs'])} replicate pairs"
            elif pd.notna(row.get("n_replicates_numerator", np.nan)):
                text += (
                    f", {test}, {int(row['n_replicates_numerator'])} vs "
                    f"{int(row['n_replicates_denominator'])} replicates"
                )
            text += ", " + format_p(
                row["p_adjusted"], prefix=_adjusted_label(row.get("multiplicity", "none"))
            )
        else:
            text += f", {format_p(row['p'])}"
        parts.append(text)
    drug = f"{comparisons['drug'].iloc[0]} " if "drug" in comparisons.columns else ""
    if replicate_level:
        method = str(comparisons["multiplicity"].iloc[0]) if "multiplicity" in comparisons else ""
        what = (
            "relative ED50; unit: biological replicate; test on log IC50; t CI on the log scale; "
            + (f"{_adjusted_label(method)} within the figure's family" if method else "")
        )
        tail = (
            " The well-level drc EDcomp ratios (wells as units) are the technical_* columns "
            "of comparisons.csv."
            if "technical_ratio" in comparisons.columns
            else ""
        )
    else:
        what = "relative ED50, delta-method CI; wells as units, unadjusted"
        tail = ""
    return f"{LEAD} {drug}IC50 ratio ({what}): " + "; ".join(parts) + "." + tail


def image_qc_numbers(image_qc: pd.DataFrame) -> str:
    """Images kept and left out by image QC (``if_image_qc.csv``), with the flags raised."""
    if image_qc.empty:
        return ""
    excluded = image_qc["image_excluded"].astype(str).str.lower().isin(["true", "1"])
    text = f"{LEAD} {len(image_qc)} images, {int(excluded.sum())} left out by image QC"
    flags = image_qc.loc[excluded, "image_flags"].dropna().astype(str)
    counts = pd.Series(
        [f for value in flags for f in re.split(r"[;|, ]+", value) if f]
    ).value_counts()
    if not counts.empty:
        text += " (" + ", ".join(f"{flag}: {n}" for flag, n in counts.items()) + ")"
    return text + "."


def excluded_plate_list(plate_qc: pd.DataFrame, action: str = "excluded") -> list[str]:
    """``"<plate_id> (<reason>)"`` of each plate whose ``qc_action`` is `action`, in plate order."""
    if plate_qc is None or plate_qc.empty or "qc_action" not in plate_qc.columns:
        return []
    rows = plate_qc[plate_qc["qc_action"].fillna("").astype(str).str.strip() == action]
    rows = rows.sort_values("plate_id", kind="stable")
    out = []
    for _, row in rows.iterrows():
        reason = str(row.get("flags", "") or "")
        out.append(f"{row['plate_id']} ({reason if reason not in ('', 'nan') else 'failed QC'})")
    return out


def plate_qc_numbers(plate_qc: pd.DataFrame, fits: pd.DataFrame | None, min_z_prime) -> str:
    """Z'-factor over treated plates (by reference), signal window, the plates excluded or
    flagged by QC (by id, with the reason), outlier wells left out of the fits."""
    if plate_qc.empty:
        return ""
    z = pd.to_numeric(plate_qc["z_prime"], errors="coerce")
    text = f"{LEAD} {len(plate_qc)} plates"
    finite = z.dropna()
    if len(finite):
        text += (
            f"; Z'-factor of the {len(finite)} treated plates median {finite.median():.2f}"
            f" (range {finite.min():.2f} to {finite.max():.2f})"
        )
        if min_z_prime is not None:
            text += f", {int((finite < float(min_z_prime)).sum())} below {float(min_z_prime):g}"
        if "z_prime_reference" in plate_qc.columns:
            ref = plate_qc.loc[z.notna(), "z_prime_reference"].fillna("blank").astype(str)
            counts = ref.value_counts()
            text += (
                " (reference: "
                + ", ".join(
                    f"{counts[k]} {'kill control' if k == 'kill' else k}"
                    for k in sorted(counts.index)
                )
                + ")"
            )
    if "signal_window" in plate_qc.columns:
        sw = pd.to_numeric(plate_qc["signal_window"], errors="coerce").dropna()
        if len(sw):
            text += (
                f"; signal window median {sw.median():.1f} (range {sw.min():.1f} to {sw.max():.1f})"
            )
    if "qc_action" in plate_qc.columns:
        excluded = excluded_plate_list(plate_qc, "excluded")
        flagged = excluded_plate_list(plate_qc, "flagged")
        text += f"; {len(excluded)} plate(s) excluded from every fit" + (
            ": " + ", ".join(excluded) if excluded else ""
        )
        if flagged:
            text += f"; {len(flagged)} flagged and kept: " + ", ".join(flagged)
    else:
        passed = _is_true(plate_qc["qc_pass"]) if "qc_pass" in plate_qc else True
        text += f"; {int((~passed).sum())} plate(s) flagged by plate QC"
    if fits is not None and not fits.empty and "n_outliers" in fits:
        n_out = int(pd.to_numeric(fits["n_outliers"], errors="coerce").fillna(0).sum())
        text += f"; {n_out} outlier well(s) left out of {len(fits)} curve fit(s)"
    return text + "."


def metrics_numbers(by_replicate: pd.DataFrame, drug: str | None = None) -> str:
    """Replicate fits behind fig S10: absolute IC50 reached or not, GR metrics available or not.

    Parameters
    ----------
    by_replicate : DataFrame
        ``fits_by_replicate.csv`` (``cell_line, condition, drug, replicate,
        ic50_abs_reached`` and ``gr_max`` when time-zero plates exist).
    drug : str, optional
        Only this drug's fits (default: every drug in the table).
    """
    if drug is not None and "drug" in by_replicate.columns:
        by_replicate = by_replicate[by_replicate["drug"].astype(str) == drug]
    if by_replicate.empty:
        return ""
    n = len(by_replicate)
    text = f"{LEAD} {n} replicate fits"
    if "ic50_abs_reached" in by_replicate.columns:
        missed = by_replicate[~_is_true(by_replicate["ic50_abs_reached"]).to_numpy()]
        text += f"; absolute IC50 reached in {n - len(missed)}"
        if len(missed):
            groups = missed.groupby(["cell_line", "condition"], sort=True).size()
            text += (
                " (not reached: "
                + ", ".join(f"{line} {condition} {k}" for (line, condition), k in groups.items())
                + ")"
            )
    gr = (
        pd.to_numeric(by_replicate.get("gr_max"), errors="coerce")
        if "gr_max" in by_replicate
        else None
    )
    if gr is not None and gr.notna().any():
        text += f"; GR metrics from time-zero plates in {int(gr.notna().sum())} fits"
    else:
        text += "; no time-zero plates: GR metrics not available"
    return text + "."


def iptw_numbers(iptw: pd.DataFrame, balance, group_levels, group_labels) -> str:
    """IPTW: weights, balance, weighted Cox (robust SE) and weighted KM medians."""
    parts = []
    weights = iptw[iptw["row"] == "weights"]
    if not weights.empty:
        parts.append(
            "Stabilised ATE weights: "
            + "; ".join(
                f"{_label(r['group'], group_levels, group_labels)} n = {int(r['n'])}, "
                f"range {r['weight_min']:.2f}-{r['weight_max']:.2f}, effective sample size "
                f"{r['ess']:.0f}"
                for _, r in weights.iterrows()
            )
            + f" (truncation: {weights['truncation'].iloc[0]})."
        )
    if balance is not None and not balance.empty:
        before = balance["smd_unweighted"].abs()
        after = balance["smd_weighted"].abs()
        parts.append(
            f"Largest absolute SMD {before.max():.2f} before and {after.max():.2f} after weighting; "
            f"{int((after > 0.1).sum())} of {len(balance)} covariate levels above 0.1."
        )
    for _, r in iptw[iptw["row"] == "cox"].iterrows():
        parts.append(
            f"Weighted Cox, {r['endpoint']} (robust sandwich SE): HR "
            + format_ci(r["hr"], r["hr_lower"], r["hr_upper"], 2)
            + f", {format_p(r['p'])} (n = {int(r['n'])}, {int(r['events'])} events)."
        )
    medians = iptw[iptw["row"] == "km_median"]
    for endpoint, rows in medians.groupby("endpoint", sort=False):
        parts.append(
            f"Weighted Kaplan-Meier median {endpoint}, months: "
            + "; ".join(
                f"{_label(r['group'], group_levels, group_labels)} "
                + format_ci(r["median"], r["lower"], r["upper"], 1)
                for _, r in rows.iterrows()
            )
            + "."
        )
    return " ".join([LEAD, *parts]) if parts else ""


def subgroup_numbers(subgroups: pd.DataFrame) -> str:
    """Interaction p per subgroup variable (OS and PFS2)."""
    parts = []
    for endpoint, rows in subgroups[subgroups["variable"] != "all"].groupby("endpoint", sort=False):
        tests = rows.groupby("variable", sort=False)["p_interaction"].first()
        parts.append(
            f"{endpoint}: interaction "
            + "; ".join(f"{v} {format_p(p)}" for v, p in tests.items())
            + f" ({len(tests)} tests, no multiplicity correction: exploratory)."
        )
    return " ".join([LEAD, *parts]) if parts else ""


def response_numbers(response: pd.DataFrame) -> str:
    """ORR and DCR per group with Fisher's exact p."""
    if response.empty:
        return ""
    text = [LEAD]
    for column in ("measure", "group"):
        if column not in response.columns:
            return ""
    for measure in ("ORR", "DCR"):
        rows = response[response["measure"] == measure]
        if rows.empty:
            continue
        p = rows["p"].dropna()
        text.append(
            f"{measure}: "
            + "; ".join(
                f"{r['group']} {100 * r['proportion']:.0f}% "
                f"({100 * r['lower']:.0f}-{100 * r['upper']:.0f})"
                for _, r in rows.iterrows()
            )
            + (f", Fisher's exact {format_p(p.iloc[0])}." if len(p) else ".")
        )
    return " ".join(text) if len(text) > 1 else ""
