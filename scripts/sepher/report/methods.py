"""A Methods section generated from the run: configuration, counts, software.

:func:`methods_markdown` writes what each stage did with the exact
parameters of the configuration actually used, the counts of what went in
(patients, events, images, cells, biopsies, plates, curves) and the names
and versions of the software, so that a reviewer can check a paper's
methods against the run. The ``*_counts`` functions derive the counts from
the aggregate result tables. Nothing here reads files.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping

import pandas as pd

from sepher.stats import MULTIPLICITY_LABELS

__all__ = [
    "cohort_counts",
    "imaging_counts",
    "ihc_counts",
    "doseresponse_counts",
    "stage_counts",
    "methods_markdown",
    "markdown_to_html",
]


def _pct(level) -> str:
    return f"{100 * float(level):g}%"


def _list(items) -> str:
    items = [str(i) for i in items]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


# --- counts from the result tables -------------------------------------------------------


def cohort_counts(flow: pd.DataFrame, medians: pd.DataFrame) -> dict:
    """Patients in the cohort and per group, events per endpoint of the analysed line.

    Parameters
    ----------
    flow : DataFrame
        ``flow.csv`` (box_id, parent_id, label, n).
    medians : DataFrame
        ``km_medians.csv`` (analysis, endpoint, group, n, events, ...).
    """
    boxes = flow.set_index("box_id")
    analysed = medians[medians["analysis"] == "os"]
    events = {
        str(endpoint): int(rows["events"].sum())
        for endpoint, rows in medians[medians["analysis"].isin(["os", "pfs2"])].groupby(
            "endpoint", sort=False
        )
    }
    return {
        "patients": int(boxes.loc["all", "n"]) if "all" in boxes.index else None,
        "analysed": int(analysed["n"].sum()),
        "groups": {str(g): int(n) for g, n in zip(analysed["group"], analysed["n"], strict=True)},
        "lines": {
            str(row["label"]): int(row["n"])
            for _, row in flow[flow["parent_id"] == "all"].iterrows()
        },
        "events": events,
    }


def imaging_counts(image_qc: pd.DataFrame, per_image: pd.DataFrame) -> dict:
    """Images (kept / left out by QC), cells, replicates, conditions of the IF stage.

    Parameters
    ----------
    image_qc : DataFrame
        ``if_image_qc.csv``: one row per image with a boolean ``image_excluded``.
    per_image : DataFrame
        The per-image rows of ``if_summary.csv`` (``n_cells``,
        ``n_cells_excluded``, ``cell_line``, ``condition``, ``replicate``).
    """
    excluded = image_qc["image_excluded"].astype(str).str.lower().isin(["true", "1"])
    return {
        "images": int(len(image_qc)),
        "images_excluded": int(excluded.sum()),
        "cells": int(per_image["n_cells"].sum()),
        "cells_excluded": int(per_image["n_cells_excluded"].sum()),
        "cell_lines": sorted(per_image["cell_line"].astype(str).unique()),
        "conditions": list(dict.fromkeys(per_image["condition"].astype(str))),
        "replicates": int(
            per_image[["cell_line", "condition", "replicate"]].drop_duplicates().shape[0]
        ),
    }


def ihc_counts(samples: pd.DataFrame) -> dict:
    """Tiles, biopsies, patients and cells of the IHC stage (``ihc_samples.csv``)."""
    return {
        "tiles": int(samples["n_images"].sum()),
        "biopsies": int(len(samples)),
        "patients": int(samples["patient_id"].nunique()),
        "cells": int(samples["n_cells"].sum()),
        "tumour_cells": int(samples["n_tumour_cells"].sum()),
    }


def _plates_with_action(plate_qc: pd.DataFrame, action: str) -> list[tuple[str, str]]:
    if "qc_action" not in plate_qc.columns:
        return []
    rows = plate_qc[plate_qc["qc_action"].fillna("").astype(str).str.strip() == action]
    rows = rows.sort_values("plate_id", kind="stable")
    flags = rows["flags"] if "flags" in rows.columns else pd.Series("", index=rows.index)
    return [
        (str(plate), str(reason) if str(reason) not in ("", "nan") else "failed plate QC")
        for plate, reason in zip(rows["plate_id"], flags.fillna(""), strict=True)
    ]


def doseresponse_counts(fits: pd.DataFrame, plate_qc: pd.DataFrame | None = None) -> dict:
    """Curves fitted (rows of ``fits.csv``), plates read and those QC excluded or flagged.

    Returns
    -------
    dict
        ``curves``, ``cell_lines`` and, with `plate_qc`, ``plates`` and
        ``excluded_plates`` / ``flagged_plates``: ``(plate_id, reason)`` pairs
        of the plates whose ``qc_action`` is "excluded" / "flagged".
    """
    counts = {"curves": int(len(fits))}
    if "cell_line" in fits.columns:
        counts["cell_lines"] = sorted(fits["cell_line"].astype(str).unique())
    if plate_qc is not None:
        counts["plates"] = int(len(plate_qc))
        counts["excluded_plates"] = _plates_with_action(plate_qc, "excluded")
        counts["flagged_plates"] = _plates_with_action(plate_qc, "flagged")
    return counts


def stage_counts(tables: Mapping) -> dict:
    """Counts of each stage that ran, from its result tables.

    Parameters
    ----------
    tables : mapping of str to DataFrame
        Result tables by name: ``flow`` and ``km_medians`` (cohort),
        ``image_qc`` and ``if_summary`` (imaging), ``ihc_samples`` (IHC),
        ``fits`` and optionally ``plate_qc`` (dose-response). A stage whose
        tables are absent is left out.

    Returns
    -------
    dict
        ``cohort``, ``imaging``, ``ihc``, ``doseresponse``: the counts of
        :func:`cohort_counts`, :func:`imaging_counts`, :func:`ihc_counts`,
        :func:`doseresponse_counts`.
    """
    counts = {}
    if "flow" in tables:
        counts["cohort"] = cohort_counts(tables["flow"], tables["km_medians"])
    if "if_summary" in tables:
        summary = tables["if_summary"]
        counts["imaging"] = imaging_counts(tables["image_qc"], summary[summary["level"] == "image"])
    if "ihc_samples" in tables:
        counts["ihc"] = ihc_counts(tables["ihc_samples"])
    if "fits" in tables:
        counts["doseresponse"] = doseresponse_counts(tables["fits"], tables.get("plate_qc"))
    return counts


# --- the text ----------------------------------------------------------------------------


def _name(level, levels, labels) -> str:
    """Display name of a group level: "Pertuzumab-naive (no)"."""
    if str(level) in levels and len(labels) == len(levels):
        return f"{labels[levels.index(str(level))]} ({level})"
    return str(level)


def _cohort(survival: Mapping, counts: Mapping | None) -> list[str]:
    levels = [str(v) for v in survival["group_levels"]]
    labels = [str(v) for v in survival.get("group_labels", [])] or levels
    lines = ["## Cohort: survival analysis", ""]
    if counts:
        lines.append(
            f"The cohort table held {counts['patients']} patients treated with T-DM1 "
            f"({_list(f'{n} {label}' for label, n in counts['lines'].items())}). "
            f"{counts['analysed']} patients treated with T-DM1 in line {survival['tdm1_line']} "
            f"were analysed ({_list(f'{n} {_name(g, levels, labels)}' for g, n in counts['groups'].items())}"
            f" by `{survival['group']}`); events: "
            + _list(f"{n} for {endpoint}" for endpoint, n in counts["events"].items())
            + "."
        )
        lines.append("")
    categorical = survival.get("categorical", {})
    origin = survival.get("os_origin", "advanced_dx")
    delayed = bool(survival.get("delayed_entry", True)) and origin == "advanced_dx"
    if origin == "advanced_dx":
        os_text = (
            "- Endpoints: overall survival (OS) from diagnosis of advanced disease to death from "
            "any cause, censored at last contact"
        )
        if delayed:
            os_text += (
                "; because a patient enters the cohort only by starting T-DM1, OS is analysed "
                "with delayed entry (left truncation): each patient is at risk from T-DM1 start, "
                "as R `Surv(entry, time, event)`, in the Kaplan-Meier estimates, the log-rank "
                "test (counting-process risk sets) and the Cox models, which removes "
                "immortal-time bias. OS from T-DM1 start is the sensitivity analysis (Fig. S5)"
            )
        else:
            os_text += (
                " (no delayed entry: `survival.delayed_entry` false; the time from advanced "
                "diagnosis to T-DM1 start is immortal time and biases the comparison)"
            )
    else:
        os_text = (
            "- Endpoints: overall survival (OS) from T-DM1 start to death from any cause, "
            "censored at last contact; OS from advanced diagnosis with delayed entry is the "
            "sensitivity analysis (Fig. S5)"
        )
    strata = survival.get("strata") or []
    weighting = survival.get("weighting", "none")
    lines += [
        os_text + "; progression-free survival on T-DM1 (PFS2) from the "
        "start of T-DM1 to progression or death, censored at last contact; months = days / "
        "30.4375. Patients are the unit of analysis.",
        f"- Groups: `{survival['group']}`, levels {_list(levels)} (reference: {levels[0]}; "
        f"shown as {_list(labels)}).",
        f"- Kaplan-Meier estimates with {_pct(survival['conf_level'])} confidence intervals on the "
        f'{survival["km_ci"]} scale (R `survfit(conf.type = "{survival["km_ci"]}")`); median '
        "survival and its confidence limits as in R survival 3.5-3 (`print.survfit`).",
        "- Groups compared by the two-sided log-rank test (R `survdiff`, rho = 0; with delayed "
        "entry the same statistic on counting-process risk sets). One prespecified group "
        "comparison per endpoint: no multiplicity correction; subgroup interaction tests are "
        "exploratory.",
        f"- Cox proportional-hazards models with {survival['cox_ties']} ties (R `coxph`), "
        "hazard ratios with Wald 95% confidence intervals and Wald p-values; univariable models "
        "for the group and each covariate, and one multivariable model per endpoint with the "
        f"group and the covariates {_list(f'`{c}`' for c in survival['covariates'])}"
        + (f", stratified by {_list(f'`{c}`' for c in strata)} (R `strata()`)" if strata else "")
        + "; complete cases (patients with a missing covariate are left out of that model and "
        "counted in Table 2 and the flow diagram).",
        (
            "- Confounding: stabilised inverse-probability-of-treatment weights (average "
            "treatment effect) from a logistic propensity model of the group on "
            + _list(
                f"`{c}`" for c in (survival.get("weighting_covariates") or survival["covariates"])
            )
            + " and the calendar year of T-DM1 start (era, when the dates give it), complete "
            "cases; "
            + (
                "weights capped at the {:g}th and {:g}th percentiles; ".format(
                    *survival["weight_truncation"]
                )
                if survival.get("weight_truncation")
                else "no weight truncation; "
            )
            + "balance as standardised mean differences before and after weighting (absolute SMD "
            "< 0.1 taken as balanced, Austin 2009; Fig. S6), propensity overlap (Fig. S7), "
            "weighted Kaplan-Meier medians and a weighted Cox model with robust sandwich "
            "standard errors (R `coxph(weights = w, robust = TRUE)`)."
            if weighting == "iptw"
            else "- Confounding: the multivariable Cox model only (`survival.weighting: none`)."
        ),
        "- Non-proportional hazards: the restricted mean survival time to "
        f"{survival.get('rmst_horizon_months', 60):g} months (OS) and "
        f"{survival.get('pfs2_rmst_horizon_months', 24):g} months (PFS2) per group and its "
        "difference with a Wald 95% CI (R `print(survfit, rmean = )` per group; SEs "
        "combined as independent) is reported as an effect measure free of the PH "
        "assumption; each PH violation is listed with what was done about it (ph_test.csv).",
        "- Missing covariates: complete cases in the primary analysis; sensitivity analysis by "
        f"multiple imputation by chained equations (m = {survival.get('multiple_imputation', 20)}, "
        "predictive mean matching for continuous and ordered covariates, logistic regression for "
        "binary and unordered ones; event indicator and Nelson-Aalen cumulative hazard in the "
        "imputation models, White & Royston 2009), pooled by Rubin's rules (mi_cox.csv; "
        "assumes missing at random).",
        "- Categorical covariates (reference level first): "
        + "; ".join(f"`{c}` ({', '.join(map(str, lv))})" for c, lv in categorical.items())
        + ".",
        "- Proportional hazards: score test of the scaled Schoenfeld residuals per term and "
        f"GLOBAL, time transform `{survival['zph_transform']}` (R `cox.zph`, survival >= 3.0).",
        "- Table 1: n (%) with the chi-squared test (Fisher's exact test for 2 x 2 tables with "
        "an expected count below 5) for categorical covariates; median [Q1, Q3] with the "
        "Kruskal-Wallis test for continuous ones (Python package tableone), descriptive; "
        "standardised mean differences; year of T-DM1 start; median follow-up by reverse "
        "Kaplan-Meier per group.",
        "- Subgroups (Fig. S8): hazard ratio of the group within each level of "
        + (_list(f"`{c}`" for c in survival.get("subgroups") or []) or "no variable")
        + "; interaction p by the likelihood-ratio test of the group x subgroup product term.",
        "- Best response (RECIST 1.1, when recorded): objective response (CR + PR) and "
        "disease control (CR + PR + SD) rates with Clopper-Pearson exact 95% CIs, compared by "
        "Fisher's exact test (Table 3).",
        f"- T-DM1 after line {survival['tdm1_line']} (Fig. S9): the groups compared among "
        "patients treated in later lines (Kaplan-Meier, log-rank).",
        "- PFS on T-DM1 by line (Fig. S4): all patients, lines above "
        f"{survival['by_line_max']} pooled, log-rank test across lines.",
        "",
    ]
    return lines


def _imaging(imaging: Mapping, counts: Mapping | None, stats: Mapping | None = None) -> list[str]:
    lines = ["## In vitro: HER2 immunofluorescence", ""]
    if counts:
        lines.append(
            f"{counts['images']} immunofluorescence images ({counts['images_excluded']} left out "
            f"by image QC) of {len(counts['cell_lines'])} cell line(s) "
            f"({_list(counts['cell_lines'])}) in {len(counts['conditions'])} conditions "
            f"({_list(counts['conditions'])}), {counts['replicates']} biological replicates; "
            f"{counts['cells']} cells analysed ({counts['cells_excluded']} more left out by cell QC)."
        )
        lines.append("")
    low, high = imaging["cell_area_um2"]
    lines += [
        "- Image QC: a field is left out when more than "
        f"{imaging['max_saturated_fraction']} of the pixels of a channel are at the detector "
        f"maximum, or when its focus score is more than {imaging['focus_outlier_k']} robust SDs "
        "below the run median.",
        f"- Nuclei: nuclear stain smoothed (Gaussian, sigma {imaging['nuclei_smoothing_um']} um), "
        f"background subtracted (window {imaging['nuclei_background_um']} um), "
        f"`{imaging['nuclei_threshold']}` threshold (scikit-image), touching nuclei split by "
        f"watershed; nuclei of {imaging['nuclei_min_area_um2']}-"
        f"{imaging['nuclei_max_area_um2']} um^2 kept.",
        f"- Cells: {imaging['cell_method']} from the nuclei "
        + (
            f"on the membrane channel (else HER2), smoothed {imaging['cell_smoothing_um']} um, at "
            f"most {imaging['cell_max_radius_um']} um beyond the nucleus"
            if imaging["cell_method"] == "watershed"
            else f"(expansion by {imaging['cell_expand_um']} um)"
        )
        + f"; cells of {low}-{high} um^2 kept; cells touching the field border or holding "
        "saturated pixels are left out.",
        *_imaging_measurements(imaging),
        "- Summaries: median of cells per image, mean of images per biological replicate, mean "
        f"of replicates per condition with a {_pct(imaging['conf_level'])} t confidence "
        "interval over replicates (SuperPlots, Lord et al. 2020).",
        "- Comparisons within each cell line on replicate means: Welch t-test; ratio of means "
        "with a delta-method confidence interval on the log scale; Hedges' g. Pairs (test vs "
        "reference): "
        + "; ".join(f"{c['test']} vs {c['reference']}" for c in imaging.get("comparisons", []))
        + ".",
        *_imaging_inference(stats),
        "",
    ]
    return lines


def _imaging_measurements(imaging: Mapping) -> list[str]:
    """Bullets on what is measured per cell.

    The one place for the IF measurement text (membrane-marker flag, z-stack
    planes, membrane completeness, border-cell exclusion): the imaging
    helpers extend these bullets.
    """
    return [
        f"- Per cell: HER2 mean and integrated intensity in the nucleus, the cytoplasm and a "
        f"{imaging['membrane_band_um']} um membrane band inside the cell edge (outside the "
        "nucleus), minus the field background; nuclear fraction = background-subtracted "
        "nuclear / whole-cell integrated HER2; membrane completeness = fraction of the band "
        f"above background + {imaging['completeness_k']} SD.",
    ]


def _imaging_inference(stats: Mapping | None) -> list[str]:
    """The multiplicity bullet of the IF comparisons (``stats.multiplicity``)."""
    multiplicity = str((stats or {}).get("multiplicity", "holm"))
    return [
        "- Multiplicity: IF p-values adjusted within each figure's family of comparisons "
        f"(Fig. 2; Fig. 3) by {MULTIPLICITY_LABELS.get(multiplicity, multiplicity)} "
        f"(`stats.multiplicity: {multiplicity}`), printed as adjusted.",
    ]


def _ihc(ihc: Mapping, counts: Mapping | None) -> list[str]:
    lines = ["## Biopsies: HER2 immunohistochemistry", ""]
    if counts:
        lines.append(
            f"{counts['tiles']} H-DAB tiles of {counts['biopsies']} biopsies from "
            f"{counts['patients']} patients (pre and post treatment); {counts['cells']} cells "
            f"detected, {counts['tumour_cells']} tumour cells scored."
        )
        lines.append("")
    stains = (
        "stain vectors estimated per tile (Macenko et al. 2009) on the OD from the tile's own "
        "glass level, with the fixed vectors as fallback when the estimate is implausible "
        "(hematoxylin not bluer than DAB, < 15 degrees apart or > 20 degrees from the fixed "
        f"vectors; hematoxylin {ihc['hematoxylin']}, DAB {ihc['dab']})"
        if ihc["stain_estimation"] == "macenko"
        else f"fixed stain vectors (Ruifrok & Johnston 2001; hematoxylin {ihc['hematoxylin']}, "
        f"DAB {ihc['dab']}, RGB optical density)"
    )
    glass = (
        "the glass level I0 estimated per RGB channel from each image's own glass (brightest "
        "uniform near-grey blocks; this removes a white-balance cast), falling back to "
        f"{ihc['background_intensity']} when glass covers < 1 % of the image"
        if ihc.get("background", "estimate") == "estimate"
        else f"glass intensity I0 = {ihc['background_intensity']}"
    )
    calibrated = ihc.get("calibration") == "reference"
    thresholds = (
        "fitted on the images with a reference score (see Calibration)"
        if calibrated
        else f"faint >= {ihc['weak']}, weak-to-moderate >= {ihc['moderate']}, intense >= "
        f"{ihc['strong']} OD: QuPath's positive-cell defaults 0.2 / 0.4 / 0.6 (Bankhead et al. "
        "2017) scaled to the band, whose two 1 um halves straddle a membrane stain ~0.6-2 um "
        "wide (Scheel et al. 2018); not fitted to our simulation"
    )
    lines += [
        f"- Colour deconvolution into hematoxylin and DAB optical density with {stains}; "
        f"{glass}; tissue = summed RGB OD above {ihc['tissue_od_threshold']}. Whole-slide "
        "images (SVS, NDPI, pyramidal TIFF; tiffslide) are read tile by tile at scan "
        "resolution where a low-resolution (8 um) tissue mask, and an optional QuPath "
        "GeoJSON tumour outline, has tissue; the pixel size from the slide's metadata must "
        "agree with the sample sheet's within 1 %.",
        f"- Nuclei: hematoxylin OD above {ihc['nucleus_threshold_od']} and at least "
        f"{ihc['nucleus_contrast_od']} above the local background (smoothing "
        f"{ihc['nucleus_smoothing_um']} um, background sigma "
        f"{ihc['nucleus_background_sigma_um']} um), touching nuclei split by watershed from "
        f"seeds of dynamic >= {ihc['nucleus_split_h_od']} OD; {ihc['nucleus_min_area_um2']}-"
        f"{ihc['nucleus_max_area_um2']} um^2.",
        f"- Cells: {ihc['cell_method']} from the nuclei (at most {ihc['cell_expansion_um']} um "
        f"beyond the nucleus); membrane band {ihc['membrane_width_um']} um inside the cell edge."
        + (
            " Only tumour epithelium is scored, found without DAB (so that HER2-0 tumour is "
            "not lost): local area fraction of round nuclei (>= "
            f"{ihc['epithelium_min_nucleus_area_um2']} um^2, roundness >= "
            f"{ihc['epithelium_min_nucleus_roundness']}) >= "
            f"{ihc['epithelium_min_nuclear_fraction']} (Gaussian sigma "
            f"{ihc['epithelium_sigma_um']} um) and local extranuclear non-DAB OD >= "
            f"{ihc['epithelium_min_extranuclear_od']}; other cells are kept but not scored."
            if ihc["exclude_stroma"]
            else ""
        ),
        "- Per tumour cell: membrane DAB excess = band mean DAB OD minus the cell's own "
        "nucleus DAB OD (a colour cast or diffuse cytoplasmic tint, which no membrane HER2 "
        "explains, cancels); intensity level none / faint / weak-to-moderate / intense by the "
        f"thresholds {thresholds}; completeness = stained fraction of {ihc['n_sectors']} "
        "angular sectors of the band (a sector is stained when its excess reaches the faint "
        f"threshold); complete = completeness >= {ihc['complete_fraction']}. Per-cell class "
        "(ASCO/CAP wording): 3+ complete intense, 2+ complete weak-to-moderate, 1+ faint or "
        f"incomplete, 0 none or stained over <= {ihc['max_fraction_for_0']} of the "
        "circumference; moderate-to-intense incomplete staining is flagged as an unusual "
        "pattern.",
        "- Per biopsy (all tiles pooled), ASCO/CAP 2018 (Wolff et al. 2018): 3+ when complete "
        f"intense staining is in > {ihc['asco_cap_cutoff_pct']} % of tumour cells; 2+ "
        "(equivocal: reflex ISH) when complete weak-to-moderate staining is in > "
        f"{ihc['asco_cap_cutoff_pct']} %, or complete intense staining is present (>= "
        f"{ihc['intense_minority_min_pct']} % of cells) but in <= "
        f"{ihc['asco_cap_cutoff_pct']} %, or moderate-to-intense incomplete staining is in > "
        f"{ihc['asco_cap_cutoff_pct']} % (unusual pattern); 1+ when faint or incomplete "
        f"staining is in > {ihc['asco_cap_cutoff_pct']} %; else 0. 2023 reporting (ASCO/CAP "
        "2023 update; DESTINY-Breast04/06): 3+ HER2-positive, 2+ HER2-equivocal (reflex "
        "ISH), 1+ HER2-low, 0 HER2-ultralow when faint or incomplete staining is present "
        f"(>= {ihc['ultralow_min_pct']} % of cells) in <= 10 %, else HER2-null.",
        "- Standard H-score (McCarty et al. 1985) = 1 x % faint + 2 x % weak-to-moderate + "
        "3 x % intense membrane staining of tumour cells (0-300; membrane intensity only, not "
        "gated on completeness); percent of tumour cells with complete staining reported "
        "separately. Pre/post changes per patient (post - pre), descriptive.",
    ]
    if calibrated:
        lines.append(
            "- Calibration: the three intensity thresholds are fitted on the images with a "
            "reference score (pathologist's or a control's): exhaustive search over a 0.005 "
            "OD grid maximising linearly weighted Cohen's kappa between the images' ASCO/CAP "
            "categories and the reference scores (ties: exact agreement, then the centre of "
            "the optimal interval, then the literature defaults); 95 % intervals from "
            f"{ihc['calibration_bootstrap']} bootstrap resamples of the images stratified by "
            "score; agreement (exact, weighted kappa, confusion matrix) by leave-one-out "
            "(<= 30 images) or 5-fold cross-validation over images; completeness stays the "
            "one measured at the configured faint threshold. The fitted thresholds are "
            "applied to every image (results/imaging/ihc_calibration.csv, Fig. S11)."
        )
    lines.append("")
    return lines


#: ``doseresponse.inference`` -> how IC50s are compared (Methods wording).
INFERENCE_TEXT = {
    "replicate": (
        "two-stage analysis: each biological replicate (experiment) of a curve is fitted "
        "separately (drc conventions, as above) and the log relative ED50s of two conditions "
        "of one cell line are compared at the replicate level, by a paired t test on the "
        "per-replicate differences when the two conditions share replicate ids (same day), "
        "else by Welch's t test (Welch-Satterthwaite df)"
    ),
    "mixed": (
        "each biological replicate of a curve is fitted separately (drc conventions) and the "
        "log relative ED50s are compared in a linear mixed model with condition as fixed and "
        "replicate as random intercept (REML, statsmodels MixedLM; t reference on the "
        "between-within df N - G - 1), the two-stage approximation of a nonlinear mixed "
        "model (R medrc); Welch's t test where no replicate carries both conditions"
    ),
    "technical": (
        "joint least-squares fit of all wells of both conditions (drc `EDcomp`, delta "
        "method, t on the residual df): wells are the units, so this is a technical "
        "(pseudo-replicated) comparison, not a test across biological replicates"
    ),
}


def _doseresponse(dr: Mapping, counts: Mapping | None, stats: Mapping | None = None) -> list[str]:
    stats = stats or {}
    multiplicity = str(stats.get("multiplicity", "holm"))
    inference = str(dr.get("inference", "replicate"))
    qc_action = str(dr.get("qc_action", "exclude"))
    level = _pct(dr["conf_level"])
    lines = ["## In vitro (dose-response)", ""]
    if counts:
        text = f"{counts['curves']} dose-response curves fitted"
        if "plates" in counts:
            text += f" from {counts['plates']} plates"
        if counts.get("cell_lines"):
            text += f" ({_list(counts['cell_lines'])})"
        lines += [text + ".", ""]
    sw = dr.get("min_signal_window")
    failing = (
        f"a Z'-factor below {dr['min_z_prime']}, a vehicle CV above {dr['max_cv_percent']}%"
        + (f" or a signal window below {sw}" if sw is not None else "")
    )
    qc_text = (
        "- Plate QC per plate: Z'-factor = 1 - 3 (SD vehicle + SD reference) / |mean vehicle "
        "- mean reference| (Zhang et al. 1999), the reference being the plate's kill-control "
        "wells when it has them, else its blank wells; vehicle CV = SD / mean of the vehicle "
        "wells (%); signal window = (|mean vehicle - mean reference| - 3 (SD vehicle + SD "
        "reference)) / SD vehicle (Iversen et al. 2006). The CV of blank wells is not used "
        "(a CV of a near-zero mean says nothing). A plate fails with "
        + failing
        + "; "
        + (
            "failing plates are excluded (`doseresponse.qc_action: exclude`): left out of "
            "every fit, test and figure, and listed in Fig. S2."
            if qc_action == "exclude"
            else "failing plates are fitted and flagged (`doseresponse.qc_action: flag`)."
        )
    )
    if counts and "excluded_plates" in counts:
        excluded = counts["excluded_plates"]
        qc_text += (
            f" Excluded plates ({len(excluded)}): "
            + "; ".join(f"{plate} ({reason})" for plate, reason in excluded)
            + "."
            if excluded
            else " No plate was excluded."
        )
        if counts.get("flagged_plates"):
            qc_text += (
                " Flagged and kept: "
                + "; ".join(f"{plate} ({reason})" for plate, reason in counts["flagged_plates"])
                + "."
            )
    lines += [
        "- Viability = (signal - plate blank mean) / (plate vehicle mean - blank mean); vehicle "
        "wells enter the fits as dose-0 observations (R drc).",
        qc_text,
        f"- Model `{dr['model']}` (R drc conventions b, c, d, e) fitted to each curve; "
        f"{_list(f'`{m}`' for m in dr['candidate_models'])} compared by AIC; outliers: "
        f"`{dr['outliers']}`"
        + (f" (ROUT, Q = {dr['outlier_q']})" if dr["outliers"] == "rout" else "")
        + (f" (loss `{dr['robust_loss']}`)" if dr["outliers"] == "robust" else "")
        + ".",
        f"- Relative effective doses ED{', ED'.join(str(v) for v in dr['ed_levels'])} (ED50 = "
        f"relative IC50, the dose at the curve's midpoint (c + d) / 2) with {level} "
        "delta-method confidence intervals (t on the residual df); absolute IC50 = dose at "
        "50% of vehicle (not reached when the curve stays above it within the tested doses).",
        f"- Unit of analysis: the biological replicate. {dr['drug']} IC50 ratios within each "
        f"cell line ({INFERENCE_TEXT.get(inference, inference)}; `doseresponse.inference: "
        f"{inference}`): ratio = exp(mean difference of log ED50), with a {level} t-based "
        "confidence interval on the log scale, back-transformed. Pairs: "
        + "; ".join(f"{c['numerator']} / {c['denominator']}" for c in dr.get("comparisons", []))
        + ".",
        f"- Multiplicity: p-values adjusted within each figure's family of comparisons (Fig. 1; "
        f"Fig. 3), across cell lines, by {MULTIPLICITY_LABELS.get(multiplicity, multiplicity)} "
        f"(`stats.multiplicity: {multiplicity}`); figures and tables print the adjusted p, "
        "labelled as adjusted.",
        "- Technical secondary result: the well-level joint fit of both conditions (R drc "
        "`EDcomp`, delta-method CI, t on the residual df) and its shared-ED50 F test are kept "
        "as the `technical_*` columns of comparisons.csv; they treat wells as independent and "
        "are not used for inference."
        if inference != "technical"
        else "- The well-level (technical) comparison is the reported one "
        "(`doseresponse.inference: technical`); it does not test across biological replicates.",
        "- Per-replicate metrics (Fig. S10): absolute IC50 where reached, normalised AUC (mean "
        "fitted viability over the tested log-dose range), GR50 and GRmax (Hafner et al. 2016) "
        "when time-zero plates exist; replicate mean (geometric for IC50 and GR50) with a "
        f"{level} t confidence interval over replicates.",
        "",
    ]
    return lines


def _software(software: Mapping) -> list[str]:
    packages = software.get("packages", {})
    lines = [
        "## Software",
        "",
        f"sepher workflow (commit `{software.get('workflow_commit', 'unknown')}`) run with "
        f"Snakemake {packages.get('snakemake', 'unknown')} on Python "
        f"{software.get('python', 'unknown')}; packages: "
        + ", ".join(
            f"{name} {version}"
            for name, version in sorted(packages.items())
            if name != "snakemake" and version != "not installed"
        )
        + ". Input checksums (SHA-256) and the full configuration: `results/provenance.json`.",
        "",
    ]
    return lines


def methods_markdown(
    config: Mapping,
    counts: Mapping | None = None,
    software: Mapping | None = None,
    stages=("doseresponse", "imaging", "ihc", "cohort"),
) -> str:
    """The Methods section of a run, as Markdown.

    Parameters
    ----------
    config : mapping
        The configuration actually used (with defaults filled in).
    counts : mapping, optional
        Per stage (``"cohort"``, ``"imaging"``, ``"ihc"``, ``"doseresponse"``)
        the counts from :func:`cohort_counts`, :func:`imaging_counts`,
        :func:`ihc_counts`, :func:`doseresponse_counts`.
    software : mapping, optional
        ``packages`` (name -> version), ``python``, ``workflow_commit``, as
        in ``provenance.json``.
    stages : sequence of str
        Stages run, in the order of the study; a stage is written only when
        its input (``cohort``, ``plates``, ``images``) is configured.

    Returns
    -------
    str
        Markdown text (headings, paragraphs, bullet lists, inline code).
    """
    counts = counts or {}
    inputs = {"cohort": "cohort", "imaging": "images", "ihc": "images", "doseresponse": "plates"}
    lines = ["# Methods", ""]
    if config.get("simulated"):
        lines += ["All inputs of this run are **simulated** (demo data set).", ""]
    writers = {
        "cohort": lambda: _cohort(config["survival"], counts.get("cohort")),
        "imaging": lambda: _imaging(config["imaging"], counts.get("imaging"), config.get("stats")),
        "ihc": lambda: _ihc(config["ihc"], counts.get("ihc")),
        "doseresponse": lambda: _doseresponse(
            config["doseresponse"], counts.get("doseresponse"), config.get("stats")
        ),
    }
    for stage in stages:
        if config.get(inputs[stage]):
            lines += writers[stage]()
    if software:
        lines += _software(software)
    return "\n".join(lines).rstrip() + "\n"


def _inline(text: str) -> str:
    text = html.escape(text, quote=False)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)


def markdown_to_html(markdown: str, title: str = "Methods") -> str:
    """The Markdown written by :func:`methods_markdown` as a standalone HTML page.

    Only what that function writes is understood: ``#``/``##`` headings,
    paragraphs, ``- `` bullet lists, ``**bold**`` and ```code```.
    """
    body, in_list = [], False
    for line in markdown.splitlines():
        if line.startswith("- "):
            if not in_list:
                body.append("<ul>")
                in_list = True
            body.append(f"<li>{_inline(line[2:])}</li>")
            continue
        if in_list:
            body.append("</ul>")
            in_list = False
        if line.startswith("## "):
            body.append(f"<h2>{_inline(line[3:])}</h2>")
        elif line.startswith("# "):
            body.append(f"<h1>{_inline(line[2:])}</h1>")
        elif line.strip():
            body.append(f"<p>{_inline(line)}</p>")
    if in_list:
        body.append("</ul>")
    style = (
        "body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;font-size:14px;"
        "max-width:52em;margin:16px;line-height:1.45;color:#222}"
        "h1{font-size:20px}h2{font-size:16px;margin-top:1.2em}code{font-size:12px}"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{style}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )
