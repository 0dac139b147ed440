"""End-to-end: the IHC biopsy stage (fig4_biopsies) of the demo through Snakemake.

One module-scoped run of the ``fig4_biopsies`` target in a scratch directory
(demo images sheet, absolute path; no cohort or plates), then checks on what a
user gets: the figure, the per-cell / per-biopsy / paired tables, label
images, the simulated truth recovered, determinism and an early, clear stop
on a bad sample-sheet row.
"""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile

from . import workflow
from .conftest import PROJECT
from .workflow import snakemake

pytestmark = pytest.mark.slow  # every test here runs Snakemake

DEMO = PROJECT / "resources" / "demo"
TARGET = "fig4_biopsies"


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
    run = snakemake(directory, "--cores", "2", TARGET)
    assert run.returncode == 0, run.stderr[-4000:]
    return directory


@pytest.fixture(scope="module")
def samples(ihc_run):
    return pd.read_csv(ihc_run / "results" / "imaging" / "ihc_samples.csv")


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
        assert nuclei.shape == cell_labels.shape == (512, 512)
        assert np.issubdtype(nuclei.dtype, np.unsignedinteger)
        # nucleus k lies in cell k, one table row per nucleus
        assert nuclei.max() == cell_labels.max() == per_image[image_id]
        inside = nuclei > 0
        assert (cell_labels[inside] == nuclei[inside]).all()
        assert (results / "imaging" / "ihc_overlays" / f"{image_id}.png").is_file()


def test_every_biopsy_category_equals_truth_and_h_score_within_10(samples):
    truth = json.loads((DEMO / "truth" / "ihc_truth.json").read_text())
    truth = pd.DataFrame(truth["biopsies"])
    merged = truth.merge(samples, on=["patient_id", "timepoint"], suffixes=("_true", ""))
    assert len(merged) == len(truth) == len(samples) == 8
    assert (merged["asco_cap"] == merged["asco_cap_true"]).all(), merged[
        ["patient_id", "timepoint", "asco_cap_true", "asco_cap"]
    ]
    assert (merged["asco_cap_label"].astype(str) == merged["asco_cap_label_true"]).all()
    assert np.abs(merged["h_score"] - merged["h_score_true"]).max() <= 10.0
    # tiles of a biopsy are pooled (BX-01 has two pre and two post tiles)
    assert merged.set_index(["patient_id", "timepoint"]).loc[("BX-01", "pre"), "n_images"] == 2


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
    # the designed falls: BX-03 3+ -> 2+, BX-01 3+ -> 1+
    assert (row["asco_cap_pre_label"], row["asco_cap_post_label"]) == ("3+", "2+")
    assert paired.loc["BX-01", "asco_cap_change"] == -2


def test_samples_table_is_per_biopsy_with_percentages(samples):
    assert list(samples[["patient_id", "timepoint"]].itertuples(index=False, name=None)) == [
        (p, t) for p in ("BX-01", "BX-02", "BX-03", "BX-04") for t in ("pre", "post")
    ]
    pct = samples[["pct_0", "pct_1", "pct_2", "pct_3"]].sum(axis=1)
    assert np.allclose(pct, 100.0)
    h = samples["pct_1"] + 2 * samples["pct_2"] + 3 * samples["pct_3"]
    assert np.allclose(h, samples["h_score"])


def test_up_to_date_and_a_figure_option_reruns_only_the_figure(ihc_run, tmp_path):
    run = snakemake(ihc_run, "--cores", "1", "--dry-run", TARGET, "--quiet", "rules")
    assert run.returncode == 0, run.stderr
    assert "Nothing to be done" in run.stdout + run.stderr
    config = write_config(tmp_path, **{"ihc.figure_scale_bar_um": 100.0})
    run = snakemake(ihc_run, "--cores", "1", "--dry-run", TARGET, "--quiet", "rules", config=config)
    assert run.returncode == 0, run.stderr
    out = run.stdout + run.stderr
    assert "fig4_biopsies" in out
    assert "ihc_score_tile" not in out and "ihc_biopsies" not in out, out


def test_outputs_are_byte_identical_with_one_core(ihc_run, tmp_path):
    write_config(tmp_path)
    run = snakemake(tmp_path, "--cores", "1", TARGET)
    assert run.returncode == 0, run.stderr[-4000:]
    first, second = outputs(ihc_run), outputs(tmp_path)
    assert len(first) == 3 + 11 * 2 + 11 * 2 + 11 + 2  # tables, tile csv/json, tifs, pngs, figure
    assert second == first
    shutil.rmtree(tmp_path / "results")


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
