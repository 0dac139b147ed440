# Immunofluorescence (IF) stage: images sheet (IF rows) -> nuclei and cells per
# image -> per-cell HER2 -> summaries and replicate-level comparisons -> figs 2, 3, S1.

# Figures and tables are registered at the end, when the sheet has IF rows.

IMAGING = config["imaging"]

from sepher.imaging.settings import FIELD_SETTINGS


include: "imaging_common.smk"


wildcard_constraints:
    batch=r"if[0-9]+",


rule imaging_measure_if:
    """A batch of IF fields, one after another: QC, nuclei, cells, per-cell HER2 per compartment."""
    input:
        images=lambda w: [row["file"] for row in if_batch_rows(w)],
        lib=library_of("imaging_measure_if.py"),
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
        CONDA_ENV
    # measured: 160 MB peak RSS / 12 s per batch of 16 demo fields (256 x 256 px),
    # one field in memory at a time; ~370 MB at 2048 x 2048 px, ~1 GB at 4096 x 4096
    resources:
        mem_mb=1500,
        runtime=lambda w: 5 + 2 * len(if_batches()[w.batch]),
    params:
        rows=if_batch_rows,
        settings={key: IMAGING[key] for key in FIELD_SETTINGS},
    script:
        "../scripts/imaging_measure_if.py"


rule imaging_summarise_if:
    """All IF cells; per image / replicate / condition summaries; replicate-level comparisons, adjusted per figure family."""
    input:
        cells=if_measured("cells"),
        qc=if_measured("qc"),
        lib=library_of("imaging_summarise_if.py"),
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
        CONDA_ENV
    # measured on the demo: 160 MB peak RSS, 1.6 s
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        focus_outlier_k=IMAGING["focus_outlier_k"],
        conf_level=IMAGING["conf_level"],
        comparisons=IMAGING["comparisons"],
        localisation_conditions=IMAGING["localisation_conditions"],
        multiplicity=config.get("stats", {}).get("multiplicity", "holm"),
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
        zstack=lambda w: [orthogonal_field()["file"]] if orthogonal_field() else [],
        style=HOUSE_STYLE,
        lib=library_of("fig_her2_localisation.py"),
    output:
        **figure_outputs("fig2_her2_localisation", "In vitro (imaging)", "Fig. 2"),
    log:
        figure_log("fig2_her2_localisation"),
    benchmark:
        figure_benchmark("fig2_her2_localisation")
    conda:
        CONDA_ENV
    # measured on the demo: 352 MB peak RSS, 3.8 s
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        fields=if_fields(),
        groups=if_groups(),
        conditions=IMAGING["localisation_conditions"],
        line=IMAGING["representative_line"],
        conf_level=IMAGING["conf_level"],
        orthogonal=orthogonal_field(),
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
        fits_by_replicate=doseresponse_by_replicate,
        ic50_comparisons=doseresponse_comparisons,
        style=HOUSE_STYLE,
        lib=library_of("fig_sequential_exposure.py"),
    output:
        **figure_outputs("fig3_sequential_exposure", "In vitro (imaging)", "Fig. 3"),
    log:
        figure_log("fig3_sequential_exposure"),
    benchmark:
        figure_benchmark("fig3_sequential_exposure")
    conda:
        CONDA_ENV
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        groups=if_groups(),
        conditions=IMAGING["sequence_conditions"],
        drug=config["doseresponse"]["drug"],
        conf_level=IMAGING["conf_level"],
        simulated=config["simulated"],
    script:
        "../scripts/fig_sequential_exposure.py"


rule figS1_segmentation_qc:
    """Segmentation overlays per condition, QC flag counts, flagged fields."""
    input:
        cells=rules.imaging_summarise_if.output.cells,
        image_qc=rules.imaging_summarise_if.output.image_qc,
        summary=rules.imaging_summarise_if.output.summary,
        nuclei=if_per_batch("nuclei"),
        labels=if_per_batch("labels"),
        style=HOUSE_STYLE,
        lib=library_of("fig_segmentation_qc.py"),
    output:
        **figure_outputs("figS1_segmentation_qc", "In vitro (imaging)", "Fig. S1"),
    log:
        figure_log("figS1_segmentation_qc"),
    benchmark:
        figure_benchmark("figS1_segmentation_qc")
    conda:
        CONDA_ENV
    # measured on the demo: 259 MB peak RSS, 3.8 s
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        fields=if_fields(),
        groups=if_groups(),
        simulated=config["simulated"],
    script:
        "../scripts/fig_segmentation_qc.py"


# The images input feeds two stages (IF here, IHC in rules/ihc.smk): extend, never
# replace; a sheet without IF rows makes no IF figure or table.
if if_image_ids():
    FIGURES.update(
        {
            "fig2_her2_localisation": "images",
            "fig3_sequential_exposure": "images",
            "figS1_segmentation_qc": "images",
        }
    )
    TABLES.setdefault("images", []).extend(
        [
            rules.imaging_summarise_if.output.cells,
            rules.imaging_summarise_if.output.summary,
            rules.imaging_summarise_if.output.replicates,
            rules.imaging_summarise_if.output.comparisons,
        ]
    )
