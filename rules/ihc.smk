# IHC biopsy stage: IHC rows of the images sheet -> per-tile HER2 membrane
# scoring (several tiles per job, ihc.tiles_per_job; a whole slide alone) ->
# per-biopsy ASCO/CAP scores -> fig4.


include: "ihc_common.smk"


# One rule per batch (its outputs are the batch's per-tile files, so each batch
# is a rule of its own: ihc_score_batch_ihc0001, ...). Its params are the rows of
# the batch: a changed sheet row reruns only its batch.
# Resources: one image is in memory at a time, so mem_mb does not grow with the
# batch; runtime does. Measured (2 MP photos, 1 core): ~2.5 s per 1920 x 1080
# photo with its files, ~1.5 s per 1280 x 720, plus ~2 s of start-up per job;
# 130-170 MB peak RSS per 512 x 512 tile, ~470 MB at 2048 x 2048. A whole slide
# scores at ~1 MP/s of tissue per core (bench/bench_wsi.py); for slides larger
# than ~3 GP of tissue raise its request (--set-resources ihc_score_batch_ihcNNNN:runtime=...).
# On SLURM the batches go to the cluster in groups (profiles/slurm: group ihc_tiles).
for _batch, _ids in IHC_BATCHES.items():
    _slide = _ids[0] in IHC_SLIDES

    rule:
        name:
            f"ihc_score_batch_{_batch}"
        input:
            images=[IHC_SHEET.at[i, "file"] for i in _ids],
            rois=[
                IHC_TILES[i]["roi_geojson"]
                for i in _ids
                if IHC_TILES[i]["roi_geojson"]
            ],
            lib=library_of("ihc_score_batch.py"),
        output:
            **{
                kind: expand(pattern, image_id=_ids)
                for kind, pattern in IHC_TILE_FILES.items()
            },
        log:
            f"results/logs/ihc/score_batch/{_batch}.log",
        benchmark:
            f"results/benchmarks/ihc/score_batch/{_batch}.tsv"
        group:
            "ihc_tiles"
        conda:
            CONDA_ENV
        resources:
            mem_mb=3000 if _slide else 1000,
            runtime=60 if _slide else 3 + len(_ids),
            image_slots=1,
        params:
            tiles=[IHC_TILES[i] for i in _ids],
            scoring=IHC_SCORING,
        script:
            "../scripts/ihc_score_batch.py"


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
        summaries=expand(IHC_TILE_FILES["summary"], image_id=IHC_IDS),
        overlays=expand(IHC_TILE_FILES["overlay"], image_id=IHC_IDS),
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
