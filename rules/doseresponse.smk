# Dose-response stage: plates -> viability and plate QC (failing plates
# excluded) -> curve fits (drc conventions), pooled and per biological
# replicate -> ED50 ratios between conditions at replicate level, p adjusted
# within each figure's family -> figs 1, S2 and S10.

FIGURES.update(
    {
        "fig1_dose_response": "plates",
        "figS2_dose_response_qc": "plates",
        "figS10_dose_response_metrics": "plates",
    }
)
# (its tables are registered at the end, from the rules' outputs)

DOSERESPONSE = config["doseresponse"]


include: "doseresponse_common.smk"


wildcard_constraints:
    shard=r"dr[0-9]+",
    part=r"p[0-9]+",


if PLATES_FORMAT != "long":

    rule plates_import:
        """Plates as the instrument wrote them (plater, grid + plate map, GDSC-style)
        -> the long table, each well with its source file, plate and cell; the wells
        left out (overflow, not in the plate map) in the import log."""
        input:
            sources=input_files("plates"),
            lib=library_of("plates_import.py"),
        output:
            table=PLATES_IMPORTED,
            log=PLATES_IMPORT_LOG,
        log:
            "results/logs/doseresponse/plates_import.log",
        benchmark:
            "results/benchmarks/doseresponse/plates_import.tsv"
        conda:
            CONDA_ENV
        resources:
            mem_mb=2000,
            runtime=30,
        params:
            plates=config.get("plates"),
            fmt=PLATES_FORMAT,
            plate_map=config.get("plate_map"),
        script:
            "../scripts/plates_import.py"


rule doseresponse_split:
    """The plates table streamed into one plates file per shard of cell lines."""
    input:
        plates=PLATES_TABLE,
        lib=library_of("doseresponse_split.py"),
    output:
        plates=dr_shard_files(DR_SHARD_FILES["plates"]),
        rows=dr_shard_files(DR_SHARD_FILES["rows"]),
    log:
        "results/logs/doseresponse/split.log",
    benchmark:
        "results/benchmarks/doseresponse/split.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=1000,
        runtime=30,
    params:
        shards=doseresponse_shards() if configured("plates") else {},
    script:
        "../scripts/doseresponse_split.py"


rule doseresponse_normalise:
    """Viability per well (blank and vehicle of its plate); Z', vehicle CV and signal
    window per plate; failing plates excluded (qc_action) or flagged."""
    input:
        plates=dr_shard_file(DR_SHARD_FILES["plates"]),
        rows=dr_shard_file(DR_SHARD_FILES["rows"]),
        lib=library_of("doseresponse_normalise.py"),
    output:
        viability=dr_shard_file(DR_TABLES["viability"]),
        qc=dr_shard_file(DR_TABLES["qc"]),
    log:
        "results/logs/doseresponse/normalise_{shard}.log",
    benchmark:
        "results/benchmarks/doseresponse/normalise_{shard}.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        min_z_prime=DOSERESPONSE["min_z_prime"],
        max_cv_percent=DOSERESPONSE["max_cv_percent"],
        min_signal_window=DOSERESPONSE["min_signal_window"],
        qc_action=DOSERESPONSE["qc_action"],
        plates_file=plates_source() if PLATES_FORMAT == "long" else PLATES_IMPORTED,
    script:
        "../scripts/doseresponse_normalise.py"


#: the fit rule's tables (per part, then per shard)
DR_FIT_TABLES = ("fits", "by_replicate", "residuals", "curves")


rule doseresponse_fit:
    """One fit per curve (line x condition x drug), replicates pooled and per replicate:
    the curves of one part of a shard (doseresponse.curves_per_job curves per part)."""
    input:
        viability=rules.doseresponse_normalise.output.viability,
        lib=library_of("doseresponse_fit.py"),
    output:
        **{key: dr_part_file(DR_TABLES[key]) for key in DR_FIT_TABLES},
    log:
        "results/logs/doseresponse/fit_{shard}_{part}.log",
    benchmark:
        "results/benchmarks/doseresponse/fit_{shard}_{part}.tsv"
    conda:
        CONDA_ENV
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
        part=lambda wildcards: doseresponse_parts(wildcards.shard).index(wildcards.part),
        n_parts=lambda wildcards: len(doseresponse_parts(wildcards.shard)),
    script:
        "../scripts/doseresponse_fit.py"


rule doseresponse_fit_join:
    """The fit parts' tables of a shard concatenated in part order (the shard's tables)."""
    input:
        **{key: dr_part_files(DR_TABLES[key]) for key in DR_FIT_TABLES},
        lib=library_of("doseresponse_fit_join.py"),
    output:
        **{key: dr_shard_file(DR_TABLES[key]) for key in DR_FIT_TABLES},
    log:
        "results/logs/doseresponse/fit_join_{shard}.log",
    benchmark:
        "results/benchmarks/doseresponse/fit_join_{shard}.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=500,
        runtime=10,
    script:
        "../scripts/doseresponse_fit_join.py"


rule doseresponse_compare:
    """ED50 ratios between conditions per line at replicate level (paired / Welch t or a
    mixed model on log ED); drc's well-level EDcomp and shared-ED50 F test as technical_*.
    """
    input:
        by_replicate=rules.doseresponse_fit_join.output.by_replicate,
        residuals=rules.doseresponse_fit_join.output.residuals,
        lib=library_of("doseresponse_compare.py"),
    output:
        comparisons=dr_shard_file(DR_TABLES["comparisons"]),
    log:
        "results/logs/doseresponse/compare_{shard}.log",
    benchmark:
        "results/benchmarks/doseresponse/compare_{shard}.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        comparisons=DOSERESPONSE["comparisons"],
        drug=DOSERESPONSE["drug"],
        model=DOSERESPONSE["model"],
        conf_level=DOSERESPONSE["conf_level"],
        inference=DOSERESPONSE["inference"],
        multiplicity=config["stats"]["multiplicity"],
        figure_conditions=DOSERESPONSE["figure_conditions"],
    script:
        "../scripts/doseresponse_compare.py"


rule doseresponse_join:
    """The shards' tables joined, shard after shard (cell-line order); comparisons'
    p adjusted within each family across every line."""
    input:
        **{key: dr_shard_files(name) for key, name in DR_TABLES.items()},
        lib=library_of("doseresponse_join.py"),
    output:
        **{key: f"results/doseresponse/{name}" for key, name in DR_TABLES.items()},
    log:
        "results/logs/doseresponse/join.log",
    benchmark:
        "results/benchmarks/doseresponse/join.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=1000,
        runtime=30,
    params:
        multiplicity=config["stats"]["multiplicity"],
    script:
        "../scripts/doseresponse_join.py"


rule fig1_dose_response:
    """T-DM1 viability curves per line: replicate means, fits with CI bands, IC50s, ratios."""
    input:
        residuals=rules.doseresponse_join.output.residuals,
        fits=rules.doseresponse_join.output.fits,
        curves=rules.doseresponse_join.output.curves,
        comparisons=rules.doseresponse_join.output.comparisons,
        by_replicate=rules.doseresponse_join.output.by_replicate,
        qc=rules.doseresponse_join.output.qc,
        style=HOUSE_STYLE,
        lib=library_of("fig_dose_response.py"),
    output:
        **figure_outputs("fig1_dose_response", "In vitro (dose-response)", "Fig. 1"),
    log:
        figure_log("fig1_dose_response"),
    benchmark:
        figure_benchmark("fig1_dose_response")
    conda:
        CONDA_ENV
    resources:
        mem_mb=500,
        runtime=5,
    params:
        drug=DOSERESPONSE["drug"],
        conditions=DOSERESPONSE["figure_conditions"],
        conf_level=DOSERESPONSE["conf_level"],
        simulated=config["simulated"],
        multiplicity=config["stats"]["multiplicity"],
        inference=DOSERESPONSE["inference"],
    script:
        "../scripts/fig_dose_response.py"


rule figS2_dose_response_qc:
    """Plate heat maps of raw signal, Z' per plate, residuals of the fits."""
    input:
        viability=rules.doseresponse_join.output.viability,
        qc=rules.doseresponse_join.output.qc,
        residuals=rules.doseresponse_join.output.residuals,
        style=HOUSE_STYLE,
        lib=library_of("fig_dose_response_qc.py"),
    output:
        **figure_outputs(
            "figS2_dose_response_qc", "In vitro (dose-response)", "Fig. S2"
        ),
    log:
        figure_log("figS2_dose_response_qc"),
    benchmark:
        figure_benchmark("figS2_dose_response_qc")
    conda:
        CONDA_ENV
    resources:
        mem_mb=500,
        runtime=5,
    params:
        drug=DOSERESPONSE["drug"],
        min_z_prime=DOSERESPONSE["min_z_prime"],
        n_heatmaps=DOSERESPONSE["qc_heatmap_plates"],
        simulated=config["simulated"],
        qc_action=DOSERESPONSE["qc_action"],
    script:
        "../scripts/fig_dose_response_qc.py"


rule figS10_dose_response_metrics:
    """Per-curve metrics beyond the relative IC50: absolute IC50 where reached, AUC on
    log dose, GR50 / GRmax with time-zero plates; replicate-level ratios."""
    input:
        fits=rules.doseresponse_join.output.fits,
        by_replicate=rules.doseresponse_join.output.by_replicate,
        qc=rules.doseresponse_join.output.qc,
        comparisons=rules.doseresponse_join.output.comparisons,
        style=HOUSE_STYLE,
        lib=library_of("fig_dose_response_metrics.py"),
    output:
        **figure_outputs(
            "figS10_dose_response_metrics", "In vitro (dose-response)", "Fig. S10"
        ),
    log:
        figure_log("figS10_dose_response_metrics"),
    benchmark:
        figure_benchmark("figS10_dose_response_metrics")
    conda:
        CONDA_ENV
    resources:
        mem_mb=500,
        runtime=5,
    params:
        drug=DOSERESPONSE["drug"],
        conf_level=DOSERESPONSE["conf_level"],
        simulated=config["simulated"],
    script:
        "../scripts/fig_dose_response_metrics.py"


TABLES["plates"] = [
    rules.doseresponse_join.output.viability,
    rules.doseresponse_join.output.qc,
    rules.doseresponse_join.output.fits,
    rules.doseresponse_join.output.by_replicate,
    rules.doseresponse_join.output.comparisons,
] + ([PLATES_IMPORTED, PLATES_IMPORT_LOG] if PLATES_FORMAT != "long" else [])
