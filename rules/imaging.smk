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

from sepher.imaging.field import FIELD_SETTINGS


include: "imaging_common.smk"


wildcard_constraints:
    batch=r"if[0-9]+",


rule imaging_measure_if:
    """A batch of IF fields, one after another: QC, nuclei, cells, per-cell HER2 per compartment."""
    input:
        images=lambda w: [row["file"] for row in if_batch_rows(w)],
        lib=library("imaging", "io"),
    output:
        nuclei=IF_BATCH_FILES["nuclei"],
        cells=IF_BATCH_FILES["labels"],
        table=IF_BATCH_FILES["cells"],
        qc=IF_BATCH_FILES["qc"],
    log:
        "results/logs/imaging/measure/{batch}.log",
    benchmark:
        "results/benchmarks/imaging/measure/{batch}.tsv"
    conda:
        "../envs/imaging.yaml"
    resources:
        mem_mb=1500,
        runtime=lambda w: 5 + 2 * len(if_batches()[w.batch]),
    params:
        rows=if_batch_rows,
        settings={key: IMAGING[key] for key in FIELD_SETTINGS},
    script:
        "../scripts/imaging_measure_if.py"


rule imaging_summarise_if:
    """All IF cells; per image / replicate / condition summaries; replicate-level comparisons."""
    input:
        cells=if_per_batch("cells"),
        qc=if_per_batch("qc"),
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
        nuclei=if_per_batch("nuclei"),
        labels=if_per_batch("labels"),
        style=HOUSE_STYLE,
        lib=library("figures", "imaging"),
    output:
        pdf="results/figures/fig2_her2_localisation.pdf",
        png=report(
            "results/figures/fig2_her2_localisation.png",
            caption=report_caption("fig2_her2_localisation"),
            category="In vitro (imaging)",
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
            category="In vitro (imaging)",
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
        nuclei=if_per_batch("nuclei"),
        labels=if_per_batch("labels"),
        style=HOUSE_STYLE,
        lib=library("figures", "imaging"),
    output:
        pdf="results/figures/figS1_segmentation_qc.pdf",
        png=report(
            "results/figures/figS1_segmentation_qc.png",
            caption=report_caption("figS1_segmentation_qc"),
            category="In vitro (imaging)",
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
