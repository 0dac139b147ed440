# Immunofluorescence (IF) stage: images sheet (IF rows) -> nuclei and cells per
# image -> per-cell HER2 -> summaries and replicate-level comparisons -> figs 2, 3, S1.

FIGURES.update(
    {
        "fig2_her2_localisation": "images",
        "fig3_sequential_exposure": "images",
        "figS1_segmentation_qc": "images",
    }
)
# The images input feeds two stages (IF here, IHC in rules/ihc.smk): extend, never replace.
TABLES.setdefault("images", []).extend(
    [
        "results/imaging/if_cells.csv",
        "results/imaging/if_summary.csv",
        "results/imaging/if_replicates.csv",
        "results/imaging/if_comparisons.csv",
    ]
)

IMAGING = config["imaging"]


include: "imaging_common.smk"


wildcard_constraints:
    image_id=r"[^/]+",


rule imaging_measure_if:
    """One IF image: QC, nuclei, cells, per-cell HER2 in nucleus / cytoplasm / membrane band."""
    input:
        image=lambda w: if_row(w)["file"],
        lib=library("imaging", "io"),
    output:
        nuclei="results/imaging/labels/{image_id}_nuclei.tif",
        cells="results/imaging/labels/{image_id}_cells.tif",
        table="results/imaging/per_image/{image_id}_cells.csv",
        qc="results/imaging/per_image/{image_id}_qc.json",
    log:
        "results/logs/imaging/measure/{image_id}.log",
    benchmark:
        "results/benchmarks/imaging/measure/{image_id}.tsv"
    conda:
        "../envs/imaging.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        pixel_size_um=lambda w: float(if_row(w)["pixel_size_um"]),
        her2_channel=lambda w: int(if_row(w)["her2_channel"]),
        nuclear_channel=lambda w: int(if_row(w)["nuclear_channel"]),
        membrane_channel=lambda w: int(if_row(w)["membrane_channel"]),
        sample=lambda w: {
            key: str(if_row(w)[key]) for key in ("cell_line", "condition", "replicate")
        },
        settings={
            key: IMAGING[key]
            for key in (
                "nuclei_min_area_um2",
                "nuclei_max_area_um2",
                "nuclei_smoothing_um",
                "nuclei_background_um",
                "nuclei_threshold",
                "cell_method",
                "cell_expand_um",
                "cell_max_radius_um",
                "cell_smoothing_um",
                "cell_area_um2",
                "membrane_band_um",
                "completeness_k",
                "max_saturated_fraction",
            )
        },
    script:
        "../scripts/imaging_measure_if.py"


rule imaging_summarise_if:
    """All IF cells; per image / replicate / condition summaries; replicate-level comparisons."""
    input:
        cells=if_per_image("cells"),
        qc=if_per_image("qc"),
        lib=library("imaging", "io"),
    output:
        cells="results/imaging/if_cells.csv",
        summary="results/imaging/if_summary.csv",
        replicates="results/imaging/if_replicates.csv",
        comparisons="results/imaging/if_comparisons.csv",
        image_qc="results/imaging/if_image_qc.csv",
    log:
        "results/logs/imaging/summarise_if.log",
    benchmark:
        "results/benchmarks/imaging/summarise_if.tsv"
    conda:
        "../envs/imaging.yaml"
    resources:
        mem_mb=1500,
        runtime=10,
    params:
        image_ids=if_image_ids(),
        focus_outlier_k=IMAGING["focus_outlier_k"],
        conf_level=IMAGING["conf_level"],
        comparisons=IMAGING["comparisons"],
    script:
        "../scripts/imaging_summarise_if.py"


rule fig2_her2_localisation:
    """IF fields with outlines; per-cell membrane HER2; membrane HER2 and nuclear fraction by condition."""
    input:
        cells=rules.imaging_summarise_if.output.cells,
        summary=rules.imaging_summarise_if.output.summary,
        replicates=rules.imaging_summarise_if.output.replicates,
        comparisons=rules.imaging_summarise_if.output.comparisons,
        images=if_image_files(),
        nuclei=if_per_image("nuclei"),
        labels=if_per_image("labels"),
        style=HOUSE_STYLE,
        lib=library("figures", "imaging"),
    output:
        pdf="results/figures/fig2_her2_localisation.pdf",
        png=report(
            "results/figures/fig2_her2_localisation.png",
            caption=report_caption("fig2_her2_localisation"),
            category="In vitro: imaging",
            subcategory="Figures",
            labels={"figure": "Fig. 2"},
        ),
    log:
        "results/logs/figures/fig2_her2_localisation.log",
    benchmark:
        "results/benchmarks/figures/fig2_her2_localisation.tsv"
    conda:
        "../envs/imaging.yaml"
    resources:
        mem_mb=1500,
        runtime=10,
    params:
        fields=if_fields(),
        groups=if_groups(),
        conditions=IMAGING["localisation_conditions"],
        line=IMAGING["representative_line"],
        conf_level=IMAGING["conf_level"],
        simulated=config["simulated"],
    script:
        "../scripts/fig_her2_localisation.py"


rule fig3_sequential_exposure:
    """Membrane HER2 (IF) and T-DM1 IC50 (dose-response, when plates are configured) per sequence."""
    input:
        summary=rules.imaging_summarise_if.output.summary,
        replicates=rules.imaging_summarise_if.output.replicates,
        comparisons=rules.imaging_summarise_if.output.comparisons,
        fits=doseresponse_fits,
        style=HOUSE_STYLE,
        lib=library("figures"),
    output:
        pdf="results/figures/fig3_sequential_exposure.pdf",
        png=report(
            "results/figures/fig3_sequential_exposure.png",
            caption=report_caption("fig3_sequential_exposure"),
            category="In vitro: imaging",
            subcategory="Figures",
            labels={"figure": "Fig. 3"},
        ),
    log:
        "results/logs/figures/fig3_sequential_exposure.log",
    benchmark:
        "results/benchmarks/figures/fig3_sequential_exposure.tsv"
    conda:
        "../envs/imaging.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        groups=if_groups(),
        conditions=IMAGING["sequence_conditions"],
        drug="T-DM1",
        conf_level=IMAGING["conf_level"],
        simulated=config["simulated"],
    script:
        "../scripts/fig_sequential_exposure.py"


rule figS1_segmentation_qc:
    """Segmentation overlays per condition, QC flag counts, flagged fields."""
    input:
        cells=rules.imaging_summarise_if.output.cells,
        image_qc=rules.imaging_summarise_if.output.image_qc,
        images=if_image_files(),
        nuclei=if_per_image("nuclei"),
        labels=if_per_image("labels"),
        style=HOUSE_STYLE,
        lib=library("figures", "imaging"),
    output:
        pdf="results/figures/figS1_segmentation_qc.pdf",
        png=report(
            "results/figures/figS1_segmentation_qc.png",
            caption=report_caption("figS1_segmentation_qc"),
            category="In vitro: imaging",
            subcategory="Figures",
            labels={"figure": "Fig. S1"},
        ),
    log:
        "results/logs/figures/figS1_segmentation_qc.log",
    benchmark:
        "results/benchmarks/figures/figS1_segmentation_qc.tsv"
    conda:
        "../envs/imaging.yaml"
    resources:
        mem_mb=1500,
        runtime=10,
    params:
        fields=if_fields(),
        groups=if_groups(),
        simulated=config["simulated"],
    script:
        "../scripts/fig_segmentation_qc.py"
