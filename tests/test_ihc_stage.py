"""End-to-end: the IHC biopsy stage (fig4_biopsies) of the demo through Snakemake.

One module-scoped run of the ``fig4_biopsies`` target in a scratch directory
(demo images sheet, absolute path; no cohort or plates), then checks on what a
user gets: the figure, the per-cell / per-biopsy / paired tables, label
images, the simulated truth recovered, determinism and an early, clear stop
on a bad sample-sheet row (these are marked slow: they run Snakemake).

Fast: a batch of tiles scored in one job (``score_batch``, the batch rules)
writes each tile's files byte for byte as a batch of one does.
"""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
from PIL import Image

from sepher.ihc import IHCParams
from sepher.ihc.stage import TILE_OUTPUTS, score_batch

from . import workflow
from .conftest import PROJECT
from .workflow import snakemake

slow = pytest.mark.slow  # the tests that run Snakemake

DEMO = PROJECT / "resources" / "demo"
TARGET = "fig4_biopsies"
#: Exact ASCO/CAP agreement of the demo run (calibrated on the reference half) with
#: the designed truth: measured 8 of 8. The 2023 label: 7 of 8 (BX-04 post, null,
#: read as ultralow: 2.3 % of its cells faint, above ultralow_min_pct 1 %).
STAGE_EXACT = 1.0
STAGE_EXACT_2023 = 7 / 8
CALIBRATION = "figS11_ihc_calibration"


def ihc_rows():
    sheet = pd.read_csv(DEMO / "images.tsv", sep="\t", dtype=str, keep_default_na=False)
    return sheet[sheet["assay"] == "IHC"].reset_index(drop=True)


def write_config(directory, images=None, **changes):
    """The IHC stage alone, on the demo sheet unless `images` is given."""
    return workflow.write_config(directory, images=images or DEMO / "images.tsv", **changes)


def outputs(directory):
    """sha256 of every table, label image, overlay and figure of the stage."""
    root = Path(directory) / "results"
    files = [
        *sorted((root / "imaging").rglob("*.csv")),
        *sorted((root / "imaging").rglob("*.json")),
        *sorted((root / "imaging" / "labels").glob("*.tif")),
        *sorted((root / "imaging" / "ihc_overlays").glob("*.png")),
        *sorted((root / "figures").glob(f"{TARGET}.*")),
    ]
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.fixture(scope="module")
def ihc_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("ihc")
    write_config(directory)
    run = snakemake(directory, "--cores", "2", TARGET, CALIBRATION)
    assert run.returncode == 0, run.stderr[-4000:]
    return directory


@pytest.fixture(scope="module")
def samples(ihc_run):
    return pd.read_csv(ihc_run / "results" / "imaging" / "ihc_samples.csv")


@slow
def test_figure_tables_and_label_images_are_made(ihc_run):
    results = ihc_run / "results"
    for ext in ("pdf", "png"):
        assert (results / "figures" / f"{TARGET}.{ext}").stat().st_size > 20000
    for name in ("ihc_cells", "ihc_samples", "ihc_paired"):
        assert (results / "imaging" / f"{name}.csv").stat().st_size > 0
    cells = pd.read_csv(results / "imaging" / "ihc_cells.csv")
    assert list(cells.columns[:3]) == ["image_id", "patient_id", "timepoint"]
    per_image = cells.groupby("image_id").size()
    for image_id in ihc_rows()["image_id"]:
        nuclei = tifffile.imread(results / "imaging" / "labels" / f"{image_id}_nuclei.tif")
        cell_labels = tifffile.imread(results / "imaging" / "labels" / f"{image_id}_cells.tif")
        assert nuclei.shape == cell_labels.shape == (768, 1024)
        assert np.issubdtype(nuclei.dtype, np.unsignedinteger)
        # nucleus k lies in cell k, one table row per nucleus
        assert nuclei.max() == cell_labels.max() == per_image[image_id]
        inside = nuclei > 0
        assert (cell_labels[inside] == nuclei[inside]).all()
        assert (results / "imaging" / "ihc_overlays" / f"{image_id}.png").is_file()


@slow
def test_biopsy_categories_against_the_truth(samples):
    """The run's categories (the demo config calibrates on the reference-scored
    half of the biopsies) against the designed truth; the issue's goal is every
    biopsy exact. Also the 2023 label follows the 2018 category and the ISH flag
    marks exactly the 2+ biopsies."""
    truth = json.loads((DEMO / "truth" / "ihc_truth.json").read_text())
    truth = pd.DataFrame(truth["biopsies"])
    merged = truth.merge(samples, on=["patient_id", "timepoint"], suffixes=("_true", ""))
    assert len(merged) == len(truth) == len(samples) == 8
    exact = (merged["asco_cap"] == merged["asco_cap_true"]).mean()
    print(merged[["patient_id", "timepoint", "asco_cap_label_true", "asco_cap_label"]])
    assert exact >= STAGE_EXACT
    assert (merged["her2_2023"] == merged["her2_2023_true"]).mean() >= STAGE_EXACT_2023
    assert (samples["reflex_ish"] == (samples["asco_cap"] == 2)).all()
    positive = samples["her2_2023"] == "HER2-positive"
    assert (positive == (samples["asco_cap"] == 3)).all()
    # tiles of a biopsy are pooled (BX-01 has two pre and two post tiles)
    assert merged.set_index(["patient_id", "timepoint"]).loc[("BX-01", "pre"), "n_images"] == 2
    assert samples["has_reference_score"].sum() == 4


@slow
def test_calibration_table_and_figure(ihc_run):
    results = ihc_run / "results"
    table = pd.read_csv(results / "imaging" / "ihc_calibration.csv")
    thresholds = table[table["kind"] == "threshold"].set_index("name")
    assert list(thresholds.index) == ["weak", "moderate", "strong"]
    assert (thresholds["value"].diff().dropna() > 0).all()
    assert (thresholds["ci_low"] <= thresholds["value"]).all()
    agreement = table[table["kind"] == "agreement"].set_index("name")["value"]
    assert agreement["n"] == 6  # the tiles of the four reference-scored biopsies
    confusion = table[table["kind"] == "confusion"]
    assert confusion["value"].sum() == 6
    payload = json.loads((results / "imaging" / "ihc_thresholds.json").read_text())
    assert payload["cv_scheme"] == "leave-one-out"
    for ext in ("pdf", "png"):
        assert (results / "figures" / f"{CALIBRATION}.{ext}").stat().st_size > 20000


@slow
def test_paired_changes_of_one_patient_by_hand(ihc_run, samples):
    paired = pd.read_csv(ihc_run / "results" / "imaging" / "ihc_paired.csv")
    paired = paired.set_index("patient_id")
    assert sorted(paired.index) == ["BX-01", "BX-02", "BX-03", "BX-04"]
    bx = samples[samples["patient_id"] == "BX-03"].set_index("timepoint")
    row = paired.loc["BX-03"]
    for score in ("h_score", "pct_complete", "asco_cap"):
        pre, post = bx.loc["pre", score], bx.loc["post", score]
        assert row[f"{score}_pre"] == pytest.approx(pre, rel=1e-9)
        assert row[f"{score}_post"] == pytest.approx(post, rel=1e-9)
        assert row[f"{score}_change"] == pytest.approx(post - pre, rel=1e-9, abs=1e-9)
    # the designed fall of BX-03 (3+ -> 0 ultralow) is a fall
    assert row["asco_cap_change"] < 0 and row["h_score_change"] < 0


@slow
def test_samples_table_is_per_biopsy_with_percentages(samples):
    assert list(samples[["patient_id", "timepoint"]].itertuples(index=False, name=None)) == [
        (p, t) for p in ("BX-01", "BX-02", "BX-03", "BX-04") for t in ("pre", "post")
    ]
    pct = samples[["pct_0", "pct_1", "pct_2", "pct_3"]].sum(axis=1)
    assert np.allclose(pct, 100.0)
    # standard H-score: membrane intensity levels only, not gated on completeness
    h = samples["pct_faint"] + 2 * samples["pct_weak_moderate"] + 3 * samples["pct_intense"]
    assert np.allclose(h, samples["h_score"])


@slow
def test_up_to_date_and_a_figure_option_reruns_only_the_figure(ihc_run, tmp_path):
    run = snakemake(ihc_run, "--cores", "1", "--dry-run", TARGET, "--quiet", "rules")
    assert run.returncode == 0, run.stderr
    assert "Nothing to be done" in run.stdout + run.stderr
    config = write_config(tmp_path, **{"ihc.figure_scale_bar_um": 100.0})
    run = snakemake(ihc_run, "--cores", "1", "--dry-run", TARGET, "--quiet", "rules", config=config)
    assert run.returncode == 0, run.stderr
    out = run.stdout + run.stderr
    assert "fig4_biopsies" in out
    assert "ihc_score_batch" not in out and "ihc_biopsies" not in out, out


@slow
def test_outputs_are_byte_identical_with_one_core(ihc_run, tmp_path):
    write_config(tmp_path)
    run = snakemake(tmp_path, "--cores", "1", TARGET)
    assert run.returncode == 0, run.stderr[-4000:]
    first, second = outputs(ihc_run), outputs(tmp_path)
    n = len(ihc_rows())
    # tables (cells, samples, paired, calibration), thresholds json, tile csv/json,
    # label tifs, overlay pngs, figure
    assert len(first) == 4 + 1 + n * 2 + n * 2 + n + 2
    assert second == first
    shutil.rmtree(tmp_path / "results")


@slow
def test_bad_timepoint_stops_before_any_job(tmp_path):
    rows = ihc_rows()
    (tmp_path / "images" / "ihc").mkdir(parents=True)
    for path in rows["path"]:
        shutil.copy(DEMO / path, tmp_path / path)
    rows.loc[4, "timepoint"] = "during"
    bad_id = rows.loc[4, "image_id"]
    sheet = tmp_path / "images.tsv"
    rows.to_csv(sheet, sep="\t", index=False)
    write_config(tmp_path, images=sheet)
    run = snakemake(tmp_path, "--cores", "1", TARGET)
    assert run.returncode != 0
    message = run.stderr
    assert str(sheet) in message
    assert f"row 5 (image_id {bad_id})" in message
    assert "column 'timepoint'" in message and "value 'during'" in message
    assert "pre or post" in message
    assert not (tmp_path / "results").exists()


def _slide_sheet(tmp_path, pixel_size_um="0.499", roi=""):
    slide = PROJECT / "tests" / "data" / "microscopy" / "cmu1_small_region.svs"
    shutil.copy(slide, tmp_path / "slide.svs")
    sheet = tmp_path / "images.tsv"
    header = "image_id\tpath\tassay\tpixel_size_um\tpatient_id\ttimepoint\troi_geojson\n"
    sheet.write_text(header + f"S1\tslide.svs\tIHC\t{pixel_size_um}\tP01\tpre\t{roi}\n")
    return sheet


@slow
def test_whole_slide_row_is_scored_tile_by_tile_inside_its_roi(tmp_path):
    """An SVS row: pixel size checked against the metadata, tissue tiles scored at
    scan resolution, cells kept inside the QuPath GeoJSON outline only."""
    roi = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"classification": {"name": "Tumor"}},
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[0, 1500], [2220, 1500], [2220, 2967], [0, 2967], [0, 1500]]],
                },
            }
        ],
    }
    (tmp_path / "tumour.geojson").write_text(json.dumps(roi))
    sheet = _slide_sheet(tmp_path, roi="tumour.geojson")
    write_config(tmp_path, images=sheet, **{"ihc.calibration": "none"})
    run = snakemake(tmp_path, "--cores", "1", "results/imaging/ihc_samples.csv")
    assert run.returncode == 0, run.stderr[-4000:]
    cells = pd.read_csv(tmp_path / "results" / "imaging" / "ihc_tiles" / "S1_cells.csv")
    summary = json.loads(
        (tmp_path / "results" / "imaging" / "ihc_tiles" / "S1_summary.json").read_text()
    )
    assert len(cells) > 100 and cells["tile_id"].nunique() >= 2
    assert (cells["y_um"] >= 1500 * 0.499 - 1).all()  # inside the outline
    assert summary["pixel_size_source"] and summary["n_tiles_scored"] >= 2
    labels = tifffile.imread(tmp_path / "results" / "imaging" / "labels" / "S1_cells.tif")
    assert labels.shape == (1024, 1024)


@slow
def test_whole_slide_pixel_size_disagreeing_with_metadata_stops(tmp_path):
    sheet = _slide_sheet(tmp_path, pixel_size_um="0.25")
    write_config(tmp_path, images=sheet, **{"ihc.calibration": "none"})
    run = snakemake(tmp_path, "--cores", "1", "results/imaging/ihc_samples.csv")
    assert run.returncode != 0
    assert "0.25" in run.stderr and "0.499" in run.stderr, run.stderr[-2000:]
    assert not (tmp_path / "results").exists()


# ---------------------------------------------------------------- batches (fast)


def _tile_files(directory, ids):
    """Per-tile output paths (as rules/ihc.smk names them) under `directory`."""
    names = {
        "cells": "ihc_tiles/{}_cells.csv",
        "summary": "ihc_tiles/{}_summary.json",
        "nuclei": "labels/{}_nuclei.tif",
        "cell_labels": "labels/{}_cells.tif",
        "overlay": "ihc_overlays/{}.png",
    }
    return {kind: [Path(directory) / names[kind].format(i) for i in ids] for kind in TILE_OUTPUTS}


def test_a_batch_of_three_tiles_writes_the_files_of_three_single_tile_jobs(tmp_path):
    """rules/ihc.smk scores ihc.tiles_per_job rows per job: every file of a tile
    is byte-identical whether its batch holds 1 or 3 tiles (nothing carries over
    from one tile to the next)."""
    rows = ihc_rows().iloc[[4, 6, 7]]  # BX-02 pre (2+), BX-03 pre and post
    images, tiles = [], []
    for row in rows.itertuples():
        # the central 384 x 384 of the demo tile (30-45 cells; lossless PNG), to keep
        # the test fast
        with Image.open(DEMO / row.path) as image:
            crop = np.asarray(image.convert("RGB"))[192:576, 320:704]
        path = tmp_path / f"{row.image_id}.png"
        Image.fromarray(crop).save(path)
        images.append(path)
        tiles.append(
            {
                "image_id": row.image_id,
                "patient_id": row.patient_id,
                "timepoint": row.timepoint,
                "pixel_size_um": float(row.pixel_size_um),
                "reference_score": row.reference_score,
                "roi_geojson": "",
            }
        )
    params = IHCParams(estimate_stains=True)
    ids = [t["image_id"] for t in tiles]
    for k in range(3):  # three jobs of one tile
        score_batch([images[k]], [tiles[k]], params, _tile_files(tmp_path / "one", [ids[k]]))
    summaries = score_batch(images, tiles, params, _tile_files(tmp_path / "three", ids))
    assert [s["image_id"] for s in summaries] == ids
    one, three = _tile_files(tmp_path / "one", ids), _tile_files(tmp_path / "three", ids)
    for kind in TILE_OUTPUTS:
        for a, b in zip(one[kind], three[kind], strict=True):
            assert a.read_bytes() == b.read_bytes(), (kind, a.name)
    cells = pd.read_csv(three["cells"][1])
    assert len(cells) > 10 and (cells["image_id"] == ids[1]).all()
    assert list(cells.columns[:3]) == ["image_id", "patient_id", "timepoint"]


def test_score_batch_needs_one_output_per_row(tmp_path):
    files = _tile_files(tmp_path, ["a"])
    files["overlay"] = []
    with pytest.raises(ValueError, match="0 overlay outputs for 1 sheet rows"):
        score_batch(["a.png"], [{"image_id": "a"}], IHCParams(), files)
