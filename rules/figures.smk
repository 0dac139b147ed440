# One target rule per figure id of the paper (docs/architecture.md, figure table).
# `snakemake --cores 2 fig6_km_os` builds that figure and only what it needs.

OS_AXIS_LABEL = {
    "advanced_dx": "Months from diagnosis of advanced disease",
    "tdm1_start": "Months from start of T-DM1",
}
_ENTRY = " (at risk from T-DM1 start)" if SURVIVAL["delayed_entry"] else ""
OS_TITLE = {
    "advanced_dx": "Overall survival" + _ENTRY,
    "tdm1_start": "Overall survival from T-DM1 start",
}
_OTHER_ORIGIN = {"advanced_dx": "tdm1_start", "tdm1_start": "advanced_dx"}[
    SURVIVAL["os_origin"]
]


rule fig5_cohort_flow:
    """Cohort flow: all T-DM1 patients -> line -> compared groups."""
    input:
        flow=rules.survival_flow.output.flow,
        style=HOUSE_STYLE,
        lib=library_of("fig_cohort_flow.py"),
    output:
        **figure_outputs("fig5_cohort_flow", "Cohort", "Fig. 5"),
    log:
        figure_log("fig5_cohort_flow"),
    benchmark:
        figure_benchmark("fig5_cohort_flow")
    conda:
        CONDA_ENV
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        simulated=config["simulated"],
    script:
        "../scripts/fig_cohort_flow.py"


rule fig6_km_os:
    """Kaplan-Meier overall survival from advanced diagnosis, by group."""
    input:
        curves=rules.survival_km.output.curves,
        medians=rules.survival_km.output.medians,
        logrank=rules.survival_km.output.logrank,
        cox=rules.survival_cox.output.coefficients,
        style=HOUSE_STYLE,
        lib=library_of("fig_km.py"),
    output:
        **figure_outputs("fig6_km_os", "Cohort", "Fig. 6"),
    log:
        figure_log("fig6_km_os"),
    benchmark:
        figure_benchmark("fig6_km_os")
    conda:
        CONDA_ENV
    # measured on the demo: 191 MB peak RSS, 2.6 s (fig7, figS4 the same)
    resources:
        mem_mb=500,
        runtime=5,
    params:
        analysis="os",
        endpoint="OS",
        endpoint_label=OS_AXIS_LABEL[SURVIVAL["os_origin"]],
        title=OS_TITLE[SURVIVAL["os_origin"]],
        group=SURVIVAL["group"],
        group_levels=SURVIVAL["group_levels"],
        group_labels=SURVIVAL["group_labels"],
        axis=config["figures"]["km_os"],
        simulated=config["simulated"],
    script:
        "../scripts/fig_km.py"


use rule fig6_km_os as fig7_km_pfs2 with:
    output:
        **figure_outputs("fig7_km_pfs2", "Cohort", "Fig. 7"),
    log:
        figure_log("fig7_km_pfs2"),
    benchmark:
        figure_benchmark("fig7_km_pfs2")
    params:
        analysis="pfs2",
        endpoint="PFS2",
        endpoint_label="Months from start of T-DM1",
        title=f"Progression-free survival on {line_adjective(SURVIVAL['tdm1_line'])} T-DM1 (PFS2)",
        group=SURVIVAL["group"],
        group_levels=SURVIVAL["group_levels"],
        group_labels=SURVIVAL["group_labels"],
        axis=config["figures"]["km_pfs2"],
        simulated=config["simulated"],


use rule fig6_km_os as figS4_tdm1_by_line with:
    output:
        **figure_outputs("figS4_tdm1_by_line", "Cohort", "Fig. S4"),
    log:
        figure_log("figS4_tdm1_by_line"),
    benchmark:
        figure_benchmark("figS4_tdm1_by_line")
    params:
        analysis="by_line",
        endpoint="PFS2",
        endpoint_label="Months from start of T-DM1",
        title="Progression-free survival on T-DM1 by line of therapy",
        group="tdm1_line",
        group_levels=[],
        group_labels=[],
        axis=config["figures"]["km_by_line"],
        simulated=config["simulated"],


rule fig8_cox_forest:
    """Forest plot of the multivariable Cox models for OS and PFS2."""
    input:
        cox=rules.survival_cox.output.coefficients,
        style=HOUSE_STYLE,
        lib=library_of("fig_cox_forest.py"),
    output:
        **figure_outputs("fig8_cox_forest", "Cohort", "Fig. 8"),
    log:
        figure_log("fig8_cox_forest"),
    benchmark:
        figure_benchmark("fig8_cox_forest")
    conda:
        CONDA_ENV
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        tdm1_line=SURVIVAL["tdm1_line"],
        strata=SURVIVAL["strata"],
        delayed_entry=SURVIVAL["delayed_entry"]
        and SURVIVAL["os_origin"] == "advanced_dx",
        simulated=config["simulated"],
    script:
        "../scripts/fig_cox_forest.py"


rule table1_characteristics:
    """Table 1 rendered as a figure (the CSV is results/survival/table1.csv)."""
    input:
        table=rules.survival_table1.output.table1,
        style=HOUSE_STYLE,
        lib=library_of("fig_table.py"),
    output:
        **figure_outputs("table1_characteristics", "Cohort", "Table 1"),
    log:
        figure_log("table1_characteristics"),
    benchmark:
        figure_benchmark("table1_characteristics")
    conda:
        CONDA_ENV
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        kind="table1",
        simulated=config["simulated"],
    script:
        "../scripts/fig_table.py"


use rule table1_characteristics as table2_cox with:
    input:
        table=rules.survival_cox.output.coefficients,
        style=HOUSE_STYLE,
        lib=library_of("fig_table.py"),
    output:
        **figure_outputs("table2_cox", "Cohort", "Table 2"),
    log:
        figure_log("table2_cox"),
    benchmark:
        figure_benchmark("table2_cox")
    params:
        kind="table2",
        tdm1_line=SURVIVAL["tdm1_line"],
        strata=SURVIVAL["strata"],
        delayed_entry=SURVIVAL["delayed_entry"]
        and SURVIVAL["os_origin"] == "advanced_dx",
        simulated=config["simulated"],


rule figS3_ph_diagnostics:
    """Scaled Schoenfeld residuals and PH score tests of the multivariate models."""
    input:
        schoenfeld=rules.survival_cox.output.schoenfeld,
        ph_test=rules.survival_cox.output.ph_test,
        style=HOUSE_STYLE,
        lib=library_of("fig_ph_diagnostics.py"),
    output:
        **figure_outputs("figS3_ph_diagnostics", "Cohort", "Fig. S3"),
    log:
        figure_log("figS3_ph_diagnostics"),
    benchmark:
        figure_benchmark("figS3_ph_diagnostics")
    conda:
        CONDA_ENV
    # measured on the demo: 156 MB peak RSS, 2.9 s
    resources:
        mem_mb=500,
        runtime=5,
    params:
        endpoint="OS",
        tdm1_line=SURVIVAL["tdm1_line"],
        simulated=config["simulated"],
    script:
        "../scripts/fig_ph_diagnostics.py"


use rule fig6_km_os as figS5_os_from_tdm1 with:
    output:
        **figure_outputs("figS5_os_from_tdm1", "Cohort", "Fig. S5"),
    log:
        figure_log("figS5_os_from_tdm1"),
    benchmark:
        figure_benchmark("figS5_os_from_tdm1")
    params:
        analysis="os_alt",
        endpoint="OS",
        endpoint_label=OS_AXIS_LABEL[_OTHER_ORIGIN],
        title="Sensitivity analysis: "
        + {
            "tdm1_start": "overall survival from T-DM1 start",
            "advanced_dx": "overall survival from advanced diagnosis, delayed entry",
        }[_OTHER_ORIGIN],
        group=SURVIVAL["group"],
        group_levels=SURVIVAL["group_levels"],
        group_labels=SURVIVAL["group_labels"],
        axis=config["figures"]["km_os"],
        simulated=config["simulated"],


use rule fig6_km_os as figS9_later_lines with:
    output:
        **figure_outputs("figS9_later_lines", "Cohort", "Fig. S9"),
    log:
        figure_log("figS9_later_lines"),
    benchmark:
        figure_benchmark("figS9_later_lines")
    params:
        analysis="later_pfs2",
        endpoint="PFS2",
        endpoint_label="Months from start of T-DM1",
        title=f"Progression-free survival on T-DM1 after line {SURVIVAL['tdm1_line']}",
        group=SURVIVAL["group"],
        group_levels=SURVIVAL["group_levels"],
        group_labels=SURVIVAL["group_labels"],
        axis=config["figures"]["km_pfs2"],
        simulated=config["simulated"],


rule figS6_iptw_balance:
    """Love plot: covariate balance (absolute SMD) before and after IPTW."""
    input:
        balance=rules.survival_weighting.output.balance,
        style=HOUSE_STYLE,
        lib=library_of("fig_iptw.py"),
    output:
        **figure_outputs("figS6_iptw_balance", "Cohort", "Fig. S6"),
    log:
        figure_log("figS6_iptw_balance"),
    benchmark:
        figure_benchmark("figS6_iptw_balance")
    conda:
        CONDA_ENV
    resources:
        mem_mb=500,
        runtime=5,
    params:
        kind="balance",
        group_labels=SURVIVAL["group_labels"],
        simulated=config["simulated"],
    script:
        "../scripts/fig_iptw.py"


use rule figS6_iptw_balance as figS7_propensity_overlap with:
    input:
        propensity=rules.survival_weighting.output.propensity,
        style=HOUSE_STYLE,
        lib=library_of("fig_iptw.py"),
    output:
        **figure_outputs("figS7_propensity_overlap", "Cohort", "Fig. S7"),
    log:
        figure_log("figS7_propensity_overlap"),
    benchmark:
        figure_benchmark("figS7_propensity_overlap")
    params:
        kind="overlap",
        group_labels=SURVIVAL["group_labels"],
        simulated=config["simulated"],


rule figS8_subgroups:
    """Subgroup forest plot: group hazard ratio per level, interaction p."""
    input:
        subgroups=rules.survival_subgroups.output.subgroups,
        style=HOUSE_STYLE,
        lib=library_of("fig_subgroups.py"),
    output:
        **figure_outputs("figS8_subgroups", "Cohort", "Fig. S8"),
    log:
        figure_log("figS8_subgroups"),
    benchmark:
        figure_benchmark("figS8_subgroups")
    conda:
        CONDA_ENV
    resources:
        mem_mb=500,
        runtime=5,
    params:
        endpoint="OS",
        group_labels=SURVIVAL["group_labels"],
        simulated=config["simulated"],
    script:
        "../scripts/fig_subgroups.py"


use rule table1_characteristics as table3_response with:
    input:
        table=rules.survival_response.output.response,
        style=HOUSE_STYLE,
        lib=library_of("fig_table.py"),
    output:
        **figure_outputs("table3_response", "Cohort", "Table 3"),
    log:
        figure_log("table3_response"),
    benchmark:
        figure_benchmark("table3_response")
    params:
        kind="response",
        simulated=config["simulated"],
