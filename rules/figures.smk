# One target rule per figure id of the paper (SPEC "Figures").
# `snakemake --cores 2 fig6_km_os` builds that figure and only what it needs.


rule fig5_cohort_flow:
    """Cohort flow: all T-DM1 patients -> line -> compared groups."""
    input:
        flow=rules.survival_flow.output.flow,
        style=HOUSE_STYLE,
        lib=library(*FIGURE_BASE, "figures/flow"),
    output:
        pdf="results/figures/fig5_cohort_flow.pdf",
        png=report(
            "results/figures/fig5_cohort_flow.png",
            caption=report_caption("fig5_cohort_flow"),
            category="Cohort",
            subcategory="Figures",
            labels={"figure": "Fig. 5"},
        ),
    log:
        "results/logs/figures/fig5_cohort_flow.log",
    benchmark:
        "results/benchmarks/figures/fig5_cohort_flow.tsv"
    conda:
        "../envs/figures.yaml"
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
        lib=library(*FIGURE_BASE, "figures/km_plot", "survival"),
    output:
        pdf="results/figures/fig6_km_os.pdf",
        png=report(
            "results/figures/fig6_km_os.png",
            caption=report_caption("fig6_km_os"),
            category="Cohort",
            subcategory="Figures",
            labels={"figure": "Fig. 6"},
        ),
    log:
        "results/logs/figures/fig6_km_os.log",
    benchmark:
        "results/benchmarks/figures/fig6_km_os.tsv"
    conda:
        "../envs/figures.yaml"
    resources:
        mem_mb=1500,
        runtime=10,
    params:
        analysis="os",
        endpoint="OS",
        endpoint_label="Months from diagnosis of advanced disease",
        title="Overall survival",
        group=SURVIVAL["group"],
        group_levels=SURVIVAL["group_levels"],
        group_labels=SURVIVAL["group_labels"],
        axis=config["figures"]["km_os"],
        simulated=config["simulated"],
    script:
        "../scripts/fig_km.py"


use rule fig6_km_os as fig7_km_pfs2 with:
    output:
        pdf="results/figures/fig7_km_pfs2.pdf",
        png=report(
            "results/figures/fig7_km_pfs2.png",
            caption=report_caption("fig7_km_pfs2"),
            category="Cohort",
            subcategory="Figures",
            labels={"figure": "Fig. 7"},
        ),
    log:
        "results/logs/figures/fig7_km_pfs2.log",
    benchmark:
        "results/benchmarks/figures/fig7_km_pfs2.tsv"
    params:
        analysis="pfs2",
        endpoint="PFS2",
        endpoint_label="Months from start of T-DM1",
        title="Progression-free survival on second-line T-DM1 (PFS2)",
        group=SURVIVAL["group"],
        group_levels=SURVIVAL["group_levels"],
        group_labels=SURVIVAL["group_labels"],
        axis=config["figures"]["km_pfs2"],
        simulated=config["simulated"],


use rule fig6_km_os as figS4_tdm1_by_line with:
    output:
        pdf="results/figures/figS4_tdm1_by_line.pdf",
        png=report(
            "results/figures/figS4_tdm1_by_line.png",
            caption=report_caption("figS4_tdm1_by_line"),
            category="Cohort",
            subcategory="Figures",
            labels={"figure": "Fig. S4"},
        ),
    log:
        "results/logs/figures/figS4_tdm1_by_line.log",
    benchmark:
        "results/benchmarks/figures/figS4_tdm1_by_line.tsv"
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
    """Forest plot of the multivariate Cox models for OS and PFS2."""
    input:
        cox=rules.survival_cox.output.coefficients,
        style=HOUSE_STYLE,
        lib=library(*FIGURE_BASE, "figures/forest"),
    output:
        pdf="results/figures/fig8_cox_forest.pdf",
        png=report(
            "results/figures/fig8_cox_forest.png",
            caption=report_caption("fig8_cox_forest"),
            category="Cohort",
            subcategory="Figures",
            labels={"figure": "Fig. 8"},
        ),
    log:
        "results/logs/figures/fig8_cox_forest.log",
    benchmark:
        "results/benchmarks/figures/fig8_cox_forest.tsv"
    conda:
        "../envs/figures.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        simulated=config["simulated"],
    script:
        "../scripts/fig_cox_forest.py"


rule table1_characteristics:
    """Table 1 rendered as a figure (the CSV is results/survival/table1.csv)."""
    input:
        table=rules.survival_table1.output.table1,
        style=HOUSE_STYLE,
        lib=library(*FIGURE_BASE, "figures/tables"),
    output:
        pdf="results/figures/table1_characteristics.pdf",
        png=report(
            "results/figures/table1_characteristics.png",
            caption=report_caption("table1_characteristics"),
            category="Cohort",
            subcategory="Figures",
            labels={"figure": "Table 1"},
        ),
    log:
        "results/logs/figures/table1_characteristics.log",
    benchmark:
        "results/benchmarks/figures/table1_characteristics.tsv"
    conda:
        "../envs/figures.yaml"
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
        lib=library(*FIGURE_BASE, "figures/tables"),
    output:
        pdf="results/figures/table2_cox.pdf",
        png=report(
            "results/figures/table2_cox.png",
            caption=report_caption("table2_cox"),
            category="Cohort",
            subcategory="Figures",
            labels={"figure": "Table 2"},
        ),
    log:
        "results/logs/figures/table2_cox.log",
    benchmark:
        "results/benchmarks/figures/table2_cox.tsv"
    params:
        kind="table2",
        simulated=config["simulated"],


rule figS3_ph_diagnostics:
    """Scaled Schoenfeld residuals and PH score tests of the multivariate models."""
    input:
        schoenfeld=rules.survival_cox.output.schoenfeld,
        ph_test=rules.survival_cox.output.ph_test,
        style=HOUSE_STYLE,
        lib=library(*FIGURE_BASE, "figures/zph_plot"),
    output:
        pdf="results/figures/figS3_ph_diagnostics.pdf",
        png=report(
            "results/figures/figS3_ph_diagnostics.png",
            caption=report_caption("figS3_ph_diagnostics"),
            category="Cohort",
            subcategory="Figures",
            labels={"figure": "Fig. S3"},
        ),
    log:
        "results/logs/figures/figS3_ph_diagnostics.log",
    benchmark:
        "results/benchmarks/figures/figS3_ph_diagnostics.tsv"
    conda:
        "../envs/figures.yaml"
    resources:
        mem_mb=1500,
        runtime=10,
    params:
        endpoint="OS",
        simulated=config["simulated"],
    script:
        "../scripts/fig_ph_diagnostics.py"
