"""Figure captions with this run's numbers.

A caption is the figure's fixed description (``report/<figure_id>.rst``, a
Jinja/reStructuredText template that Snakemake renders with the figure
rule's ``snakemake.config``, ``params`` and ``input``) followed by one
paragraph of numbers computed from the result tables (:mod:`.numbers`).
"""

from __future__ import annotations

from collections.abc import Mapping

from sepher.report import numbers

__all__ = ["CAPTION_TABLES", "caption_numbers", "render_caption"]

#: Result tables (keys of the `tables` mapping) each figure's numbers come from.
CAPTION_TABLES = {
    "fig1_dose_response": ("ic50_comparisons", "plate_qc"),
    "fig2_her2_localisation": ("if_comparisons",),
    "fig3_sequential_exposure": ("if_comparisons", "ic50_comparisons"),
    "fig4_biopsies": ("ihc_samples", "ihc_paired"),
    "fig5_cohort_flow": ("flow",),
    "fig6_km_os": ("km_medians", "logrank", "cox"),
    "fig7_km_pfs2": ("km_medians", "logrank", "cox"),
    "fig8_cox_forest": ("cox",),
    "table1_characteristics": ("table1",),
    "table2_cox": ("cox",),
    "figS3_ph_diagnostics": ("ph_test",),
    "figS4_tdm1_by_line": ("km_medians", "logrank"),
    "figS5_os_from_tdm1": ("km_medians", "logrank"),
    "figS9_later_lines": ("km_medians", "logrank"),
    "figS6_iptw_balance": ("balance", "iptw"),
    "figS7_propensity_overlap": ("iptw",),
    "figS8_subgroups": ("subgroups",),
    "table3_response": ("response",),
    "figS1_segmentation_qc": ("if_image_qc",),
    "figS2_dose_response_qc": ("plate_qc", "fits"),
    "figS10_dose_response_metrics": ("by_replicate", "plate_qc"),
}


def _pairs(comparisons, conditions, reference=None):
    """(test, reference) pairs among `conditions` (config order), for the IF ratios."""
    pairs = []
    for item in comparisons:
        test, ref = str(item["test"]), str(item["reference"])
        if test in conditions and ref in conditions and (reference is None or ref == reference):
            pairs.append((test, ref))
    return pairs


def caption_numbers(figure_id: str, tables: Mapping, settings: Mapping) -> str:
    """The numbers paragraph of one figure's caption.

    Parameters
    ----------
    figure_id : str
        Figure id of the paper (``fig6_km_os``, ...).
    tables : mapping of str to DataFrame
        Result tables by name (see :data:`CAPTION_TABLES`); a table that is
        absent (stage not configured) leaves its sentence out.
    settings : mapping
        The run's configuration (``survival``, ``imaging``, ``doseresponse``
        sections are read: group, levels and labels; IF comparisons and
        condition lists; the Z'-factor threshold).

    Returns
    -------
    str
        reStructuredText paragraph, or "" when the figure has no tables here.
    """
    survival = settings.get("survival", {})
    imaging = settings.get("imaging", {})
    group = survival.get("group", "")
    levels = survival.get("group_levels", [])
    labels = survival.get("group_labels", [])
    have = {name: tables[name] for name in CAPTION_TABLES.get(figure_id, ()) if name in tables}
    if not have:
        return ""
    if figure_id in ("fig6_km_os", "fig7_km_pfs2"):
        analysis = "os" if figure_id == "fig6_km_os" else "pfs2"
        return numbers.km_numbers(
            have["km_medians"], have["logrank"], have["cox"], analysis, group, levels, labels
        )
    if figure_id in ("figS5_os_from_tdm1", "figS9_later_lines"):
        analysis = "os_alt" if figure_id == "figS5_os_from_tdm1" else "later_pfs2"
        return numbers.km_numbers(
            have["km_medians"], have["logrank"], None, analysis, group, levels, labels
        )
    if figure_id in ("figS6_iptw_balance", "figS7_propensity_overlap"):
        return numbers.iptw_numbers(have["iptw"], have.get("balance"), levels, labels)
    if figure_id == "figS8_subgroups":
        return numbers.subgroup_numbers(have["subgroups"])
    if figure_id == "table3_response":
        return numbers.response_numbers(have["response"])
    if figure_id == "figS4_tdm1_by_line":
        return numbers.by_line_numbers(have["km_medians"], have["logrank"])
    if figure_id == "fig5_cohort_flow":
        return numbers.flow_numbers(have["flow"])
    if figure_id == "fig8_cox_forest":
        return numbers.cox_numbers(have["cox"], group, "multivariate")
    if figure_id == "table2_cox":
        return " ".join(
            text
            for text in (
                numbers.cox_numbers(have["cox"], group, "univariate", others=False),
                numbers.cox_numbers(have["cox"], group, "multivariate").replace(
                    numbers.LEAD + " ", ""
                ),
            )
            if text
        )
    if figure_id == "table1_characteristics":
        return numbers.table1_numbers(have["table1"])
    if figure_id == "figS3_ph_diagnostics":
        return numbers.ph_numbers(have["ph_test"], "OS")
    if figure_id == "figS1_segmentation_qc":
        return numbers.image_qc_numbers(have["if_image_qc"])
    if figure_id == "figS2_dose_response_qc":
        min_z = settings.get("doseresponse", {}).get("min_z_prime")
        return numbers.plate_qc_numbers(have["plate_qc"], have.get("fits"), min_z)
    if figure_id == "figS10_dose_response_metrics":
        if "by_replicate" not in have:
            return ""
        drug = settings.get("doseresponse", {}).get("drug")
        text = numbers.metrics_numbers(have["by_replicate"], drug)
        excluded = numbers.excluded_plate_list(have.get("plate_qc"))
        if text and excluded:
            text += " Replicates of the plates excluded by QC are left out: " + (
                ", ".join(excluded) + "."
            )
        return text
    if figure_id == "fig1_dose_response":
        text = numbers.ic50_numbers(have["ic50_comparisons"], family="fig1")
        excluded = numbers.excluded_plate_list(have.get("plate_qc"))
        if text and excluded:
            text += " Plates excluded by QC (not fitted, not drawn): " + ", ".join(excluded) + "."
        return text
    if figure_id == "fig4_biopsies":
        return numbers.ihc_numbers(have["ihc_samples"], have.get("ihc_paired"))
    comparisons = imaging.get("comparisons", [])
    parts = []
    if "if_comparisons" in have:
        table = have["if_comparisons"]
        if figure_id == "fig2_her2_localisation":
            conditions = [str(c) for c in imaging.get("localisation_conditions", [])]
            values = (
                ("her2_net_membrane", "membrane HER2"),
                ("nuclear_fraction", "nuclear fraction"),
            )
        else:
            conditions = [str(c) for c in imaging.get("sequence_conditions", [])]
            values = (("her2_net_membrane", "membrane HER2"),)
        pairs = _pairs(comparisons, conditions)
        parts += [numbers.if_numbers(table, value, pairs, name) for value, name in values]
    if "ic50_comparisons" in have:
        family = "fig3" if figure_id == "fig3_sequential_exposure" else None
        parts.append(
            numbers.ic50_numbers(have["ic50_comparisons"], family=family).replace(
                numbers.LEAD + " ", ""
            )
        )
    parts = [p for p in parts if p]
    return " ".join([numbers.LEAD, *parts]) if parts else ""


def render_caption(template: str, numbers_text: str) -> str:
    """The figure's caption template followed by its numbers paragraph."""
    template = template.rstrip() + "\n"
    return template + ("\n" + numbers_text + "\n" if numbers_text else "")
