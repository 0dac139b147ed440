# IHC biopsy stage: IHC rows of the images sheet -> per-tile HER2 membrane
# scoring (one job per tile) -> per-biopsy ASCO/CAP scores -> fig4.
import re

# The IHC rows of the images sheet (read and validated once: images_sheet,
# rules/common.smk).
IHC_SHEET = (
    images_sheet()
    .query("assay == 'IHC'")
    .reset_index(drop=True)
    .set_index("image_id", drop=False)
    if configured("images")
    else None
)
IHC_IDS = [] if IHC_SHEET is None else sorted(IHC_SHEET["image_id"])
# IHC tile ids only: the IF stage writes label images to the same folder.
IHC_ID_PATTERN = "|".join(re.escape(i) for i in IHC_IDS) or "(?!)"
IHC = config["ihc"]

# Per tile: its sheet row as plain values (params; a changed row reruns that tile).
IHC_TILES = {
    image_id: {
        "image_id": image_id,
        "patient_id": str(IHC_SHEET.at[image_id, "patient_id"]),
        "timepoint": str(IHC_SHEET.at[image_id, "timepoint"]),
        "pixel_size_um": float(IHC_SHEET.at[image_id, "pixel_size_um"]),
        "reference_score": str(IHC_SHEET.at[image_id, "reference_score"]),
        "roi_geojson": str(IHC_SHEET.at[image_id, "roi_geojson"]),
    }
    for image_id in IHC_IDS
}
# ihc.calibration: reference fits the intensity thresholds on the rows with a
# reference_score and applies them to every tile (rule ihc_calibration).
IHC_CALIBRATE = IHC["calibration"] == "reference"
if IHC_IDS and IHC_CALIBRATE:
    _references = [
        t["reference_score"] for t in IHC_TILES.values() if t["reference_score"]
    ]
    if len(_references) < 4 or len(set(_references)) < 2:
        raise InputError(
            config["images"],
            "at least 4 IHC rows with a reference_score, covering at least 2 different "
            "scores, for ihc.calibration: reference (found "
            f"{len(_references)} rows, scores {sorted(set(_references)) or 'none'})",
            column="reference_score",
            hint="Score more reference images, or set ihc.calibration: none "
            "(literature thresholds).",
        )
# Stage-level keys of the ihc section (the rest are sepher.ihc.IHCParams).
IHC_STAGE_KEYS = (
    "stain_estimation",
    "asco_cap_cutoff_pct",
    "intense_minority_min_pct",
    "ultralow_min_pct",
    "calibration",
    "calibration_bootstrap",
    "calibration_seed",
)
# sepher.ihc.IHCParams from the config section (stage-level keys left out).
IHC_SCORING = {
    key: value
    for key, value in IHC.items()
    if key not in IHC_STAGE_KEYS and not key.startswith("figure_")
} | {"estimate_stains": IHC["stain_estimation"] == "macenko"}


rule ihc_score_tile:
    """One H-DAB tile: nuclei, cells, membrane bands, per-cell HER2 class."""
    input:
        image=lambda wildcards: IHC_SHEET.at[wildcards.image_id, "file"],
        roi=lambda wildcards: IHC_TILES[wildcards.image_id]["roi_geojson"] or [],
        lib=library_of("ihc_score_tile.py"),
    output:
        cells="results/imaging/ihc_tiles/{image_id}_cells.csv",
        summary="results/imaging/ihc_tiles/{image_id}_summary.json",
        nuclei="results/imaging/labels/{image_id}_nuclei.tif",
        cell_labels="results/imaging/labels/{image_id}_cells.tif",
        overlay="results/imaging/ihc_overlays/{image_id}.png",
    log:
        "results/logs/ihc/score_tile/{image_id}.log",
    benchmark:
        "results/benchmarks/ihc/score_tile/{image_id}.tsv"
    wildcard_constraints:
        image_id=IHC_ID_PATTERN,
    conda:
        CONDA_ENV
    # measured: 130-170 MB peak RSS / 1.1 s per 512 x 512 demo tile, ~470 MB at
    # 2048 x 2048 (profiles/slurm groups 20 tiles per job: 20 x 3 min)
    resources:
        mem_mb=1000,
        runtime=3,
    params:
        tile=lambda wildcards: IHC_TILES[wildcards.image_id],
        scoring=IHC_SCORING,
    script:
        "../scripts/ihc_score_tile.py"


rule ihc_calibration:
    """Fit the membrane intensity thresholds on the tiles with a reference score
    (pathologist's or control score), with bootstrap CIs and cross-validated agreement.
    """
    input:
        cells=ihc_tile_cells,
        lib=library_of("ihc_calibration.py"),
    output:
        table="results/imaging/ihc_calibration.csv",
        thresholds="results/imaging/ihc_thresholds.json",
    log:
        "results/logs/ihc/calibration.log",
    benchmark:
        "results/benchmarks/ihc/calibration.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        tiles=list(IHC_TILES.values()),
        scoring=IHC_SCORING,
        cutoff_pct=IHC["asco_cap_cutoff_pct"],
        intense_minority_min_pct=IHC["intense_minority_min_pct"],
        n_boot=IHC["calibration_bootstrap"],
        seed=IHC["calibration_seed"],
    script:
        "../scripts/ihc_calibration.py"


rule ihc_biopsies:
    """Pool the tiles of each biopsy: per-cell table, ASCO/CAP scores, pre/post changes."""
    input:
        cells=ihc_tile_cells,
        thresholds=rules.ihc_calibration.output.thresholds if IHC_CALIBRATE else [],
        lib=library_of("ihc_biopsies.py"),
    output:
        cells="results/imaging/ihc_cells.csv",
        samples="results/imaging/ihc_samples.csv",
        paired="results/imaging/ihc_paired.csv",
    log:
        "results/logs/ihc/biopsies.log",
    benchmark:
        "results/benchmarks/ihc/biopsies.tsv"
    conda:
        CONDA_ENV
    # measured on the demo: 114 MB peak RSS, 0.8 s
    resources:
        mem_mb=500,
        runtime=5,
    params:
        tiles=list(IHC_TILES.values()),
        scoring=IHC_SCORING,
        cutoff_pct=IHC["asco_cap_cutoff_pct"],
        intense_minority_min_pct=IHC["intense_minority_min_pct"],
        ultralow_min_pct=IHC["ultralow_min_pct"],
    script:
        "../scripts/ihc_biopsies.py"


rule fig4_biopsies:
    """IHC tiles (DAB, membranes by class) and paired pre/post scores per patient."""
    input:
        samples=rules.ihc_biopsies.output.samples,
        summaries=expand(rules.ihc_score_tile.output.summary, image_id=IHC_IDS),
        overlays=expand(rules.ihc_score_tile.output.overlay, image_id=IHC_IDS),
        style=HOUSE_STYLE,
        lib=library_of("fig_biopsies.py"),
    output:
        **figure_outputs("fig4_biopsies", "Biopsies", "Fig. 4"),
    log:
        figure_log("fig4_biopsies"),
    benchmark:
        figure_benchmark("fig4_biopsies")
    conda:
        CONDA_ENV
    # measured on the demo: 211 MB peak RSS, 2.6 s
    resources:
        mem_mb=500,
        runtime=10,
    params:
        tiles=list(IHC_TILES.values()),
        field_um=IHC["figure_field_um"],
        scale_bar_um=IHC["figure_scale_bar_um"],
        cutoff_pct=IHC["asco_cap_cutoff_pct"],
        simulated=config["simulated"],
    script:
        "../scripts/fig_biopsies.py"


rule figS11_ihc_calibration:
    """IHC threshold calibration: reference images' membrane DAB by score, fitted
    thresholds with CIs, cross-validated confusion matrix."""
    input:
        table=rules.ihc_calibration.output.table,
        thresholds=rules.ihc_calibration.output.thresholds,
        cells=ihc_tile_cells,
        style=HOUSE_STYLE,
        lib=library_of("fig_ihc_calibration.py"),
    output:
        **figure_outputs("figS11_ihc_calibration", "Biopsies", "Fig. S11"),
    log:
        figure_log("figS11_ihc_calibration"),
    benchmark:
        figure_benchmark("figS11_ihc_calibration")
    conda:
        CONDA_ENV
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        tiles=list(IHC_TILES.values()),
        simulated=config["simulated"],
    script:
        "../scripts/fig_ihc_calibration.py"


# A sheet without IHC rows makes no IHC figure or table.
if IHC_IDS:
    FIGURES.update({"fig4_biopsies": "images"})
    TABLES.setdefault("images", []).extend(
        [
            rules.ihc_biopsies.output.cells,
            rules.ihc_biopsies.output.samples,
            rules.ihc_biopsies.output.paired,
        ]
    )
if IHC_IDS and IHC_CALIBRATE:
    FIGURES.update({"figS11_ihc_calibration": "images"})
    TABLES["images"].append(rules.ihc_calibration.output.table)
