# Dose-response stage: plates -> viability and plate QC -> curve fits (drc
# conventions) -> ED50 ratios between conditions -> figs 1 and S2.

FIGURES.update(
    {
        "fig1_dose_response": "plates",
        "figS2_dose_response_qc": "plates",
    }
)
TABLES["plates"] = [
    "results/doseresponse/viability.csv",
    "results/doseresponse/plate_qc.csv",
    "results/doseresponse/fits.csv",
    "results/doseresponse/fits_by_replicate.csv",
    "results/doseresponse/comparisons.csv",
]

DOSERESPONSE = config["doseresponse"]


include: "doseresponse_common.smk"


wildcard_constraints:
    shard=r"dr[0-9]+",


rule doseresponse_split:
    """The plates table streamed into one plates file per shard of cell lines."""
    input:
        plates=config.get("plates") or [],
        lib=library("io/tables"),
    output:
        plates=dr_shard_files("plates.csv"),
        rows=dr_shard_files("rows.txt"),
    log:
        "results/logs/doseresponse/split.log",
    benchmark:
        "results/benchmarks/doseresponse/split.tsv"
    conda:
        "../envs/doseresponse.yaml"
    resources:
        mem_mb=1000,
        runtime=30,
    params:
        shards=doseresponse_shards() if configured("plates") else {},
    script:
        "../scripts/doseresponse_split.py"


rule doseresponse_normalise:
    """Viability per well (blank and vehicle of its plate); Z' and control CVs per plate."""
    input:
        plates="results/doseresponse/shards/{shard}/plates.csv",
        rows="results/doseresponse/shards/{shard}/rows.txt",
        lib=library("io/plates", "io/tables", "doseresponse"),
    output:
        viability="results/doseresponse/shards/{shard}/viability.csv",
        qc="results/doseresponse/shards/{shard}/plate_qc.csv",
    log:
        "results/logs/doseresponse/normalise_{shard}.log",
    benchmark:
        "results/benchmarks/doseresponse/normalise_{shard}.tsv"
    conda:
        "../envs/doseresponse.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        min_z_prime=DOSERESPONSE["min_z_prime"],
        max_cv_percent=DOSERESPONSE["max_cv_percent"],
    script:
        "../scripts/doseresponse_normalise.py"


rule doseresponse_fit:
    """One fit per curve (line x condition x drug), replicates pooled and per replicate."""
    input:
        viability=rules.doseresponse_normalise.output.viability,
        lib=library("io/tables", "doseresponse"),
    output:
        fits="results/doseresponse/shards/{shard}/fits.csv",
        by_replicate="results/doseresponse/shards/{shard}/fits_by_replicate.csv",
        residuals="results/doseresponse/shards/{shard}/residuals.csv",
        curves="results/doseresponse/shards/{shard}/curves.csv",
    log:
        "results/logs/doseresponse/fit_{shard}.log",
    benchmark:
        "results/benchmarks/doseresponse/fit_{shard}.tsv"
    conda:
        "../envs/doseresponse.yaml"
    resources:
        mem_mb=1000,
        runtime=60,
    params:
        model=DOSERESPONSE["model"],
        candidate_models=DOSERESPONSE["candidate_models"],
        outliers=DOSERESPONSE["outliers"],
        outlier_q=DOSERESPONSE["outlier_q"],
        robust_loss=DOSERESPONSE["robust_loss"],
        ed_levels=DOSERESPONSE["ed_levels"],
        conf_level=DOSERESPONSE["conf_level"],
        fit_replicates=DOSERESPONSE["fit_replicates"],
    script:
        "../scripts/doseresponse_fit.py"


rule doseresponse_compare:
    """ED50 ratios between conditions per line (joint fit, delta method); shared-ED50 F test."""
    input:
        residuals=rules.doseresponse_fit.output.residuals,
        lib=library("io/tables", "doseresponse"),
    output:
        comparisons="results/doseresponse/shards/{shard}/comparisons.csv",
    log:
        "results/logs/doseresponse/compare_{shard}.log",
    benchmark:
        "results/benchmarks/doseresponse/compare_{shard}.tsv"
    conda:
        "../envs/doseresponse.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        comparisons=DOSERESPONSE["comparisons"],
        drug=DOSERESPONSE["drug"],
        model=DOSERESPONSE["model"],
        conf_level=DOSERESPONSE["conf_level"],
    script:
        "../scripts/doseresponse_compare.py"


DR_TABLES = {
    "viability": "viability.csv",
    "qc": "plate_qc.csv",
    "fits": "fits.csv",
    "by_replicate": "fits_by_replicate.csv",
    "residuals": "residuals.csv",
    "curves": "curves.csv",
    "comparisons": "comparisons.csv",
}


rule doseresponse_join:
    """The shards' tables joined, shard after shard (cell-line order)."""
    input:
        **{key: dr_shard_files(name) for key, name in DR_TABLES.items()},
    output:
        **{key: f"results/doseresponse/{name}" for key, name in DR_TABLES.items()},
    log:
        "results/logs/doseresponse/join.log",
    benchmark:
        "results/benchmarks/doseresponse/join.tsv"
    conda:
        "../envs/doseresponse.yaml"
    resources:
        mem_mb=1000,
        runtime=30,
    script:
        "../scripts/doseresponse_join.py"


rule fig1_dose_response:
    """T-DM1 viability curves per line: replicate means, fits with CI bands, IC50s, ratios."""
    input:
        residuals=rules.doseresponse_join.output.residuals,
        fits=rules.doseresponse_join.output.fits,
        curves=rules.doseresponse_join.output.curves,
        comparisons=rules.doseresponse_join.output.comparisons,
        style=HOUSE_STYLE,
        lib=library(*FIGURE_BASE, "figures/doseresponse_plots"),
    output:
        pdf="results/figures/fig1_dose_response.pdf",
        png=report(
            "results/figures/fig1_dose_response.png",
            caption=report_caption("fig1_dose_response"),
            category="In vitro (dose-response)",
            subcategory="Figures",
            labels={"figure": "Fig. 1"},
        ),
    log:
        "results/logs/figures/fig1_dose_response.log",
    benchmark:
        "results/benchmarks/figures/fig1_dose_response.tsv"
    conda:
        "../envs/doseresponse.yaml"
    resources:
        mem_mb=500,
        runtime=5,
    params:
        drug=DOSERESPONSE["drug"],
        conditions=DOSERESPONSE["figure_conditions"],
        conf_level=DOSERESPONSE["conf_level"],
        simulated=config["simulated"],
    script:
        "../scripts/fig_dose_response.py"


rule figS2_dose_response_qc:
    """Plate heat maps of raw signal, Z' per plate, residuals of the fits."""
    input:
        viability=rules.doseresponse_join.output.viability,
        qc=rules.doseresponse_join.output.qc,
        residuals=rules.doseresponse_join.output.residuals,
        style=HOUSE_STYLE,
        lib=library(*FIGURE_BASE, "figures/doseresponse_plots", "io/plates"),
    output:
        pdf="results/figures/figS2_dose_response_qc.pdf",
        png=report(
            "results/figures/figS2_dose_response_qc.png",
            caption=report_caption("figS2_dose_response_qc"),
            category="In vitro (dose-response)",
            subcategory="Figures",
            labels={"figure": "Fig. S2"},
        ),
    log:
        "results/logs/figures/figS2_dose_response_qc.log",
    benchmark:
        "results/benchmarks/figures/figS2_dose_response_qc.tsv"
    conda:
        "../envs/doseresponse.yaml"
    resources:
        mem_mb=500,
        runtime=5,
    params:
        drug=DOSERESPONSE["drug"],
        min_z_prime=DOSERESPONSE["min_z_prime"],
        n_heatmaps=DOSERESPONSE["qc_heatmap_plates"],
        simulated=config["simulated"],
    script:
        "../scripts/fig_dose_response_qc.py"
