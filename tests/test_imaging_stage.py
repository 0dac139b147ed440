"""End-to-end: the immunofluorescence (IF) stage on the demo images through Snakemake.

One module-scoped run of fig2, figS1 and the imaging tables in a scratch
directory (images only: no cohort, no plates), then checks against the demo
truth (resources/demo/truth/), determinism and a bad sheet. The run uses the
demo camera's offset (``imaging.camera_offset_adu``, the simulator's
``camera_offset_adu``) for the flat-field correction.

The demo (issue 15) has 80 IF fields rendered by a 3-D widefield model, a
membrane-marker channel in every field and four 9-plane z-stacks; the truth
is in other units than the measurement for membrane HER2 (per um^2 of
lateral membrane), so membrane HER2 is checked relative to each line's T-R.
"""

import hashlib
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import tifffile

from sepher.imaging import aggregate

from .conftest import PROJECT
from .workflow import snakemake, write_config

pytestmark = pytest.mark.slow

DEMO = PROJECT / "resources" / "demo"
TARGETS = ["fig2_her2_localisation", "figS1_segmentation_qc"]
TABLES = ["if_cells", "if_summary", "if_replicates", "if_comparisons", "if_image_qc"]


def table_hashes(directory):
    root = Path(directory) / "results" / "imaging"
    return {
        name: hashlib.sha256((root / f"{name}.csv").read_bytes()).hexdigest() for name in TABLES
    }


@pytest.fixture(scope="module")
def if_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("if_stage")
    truth = json.loads((DEMO / "truth" / "if_truth.json").read_text())
    offset = truth["field_parameters"]["camera_offset_adu"]
    write_config(directory, images=DEMO / "images.tsv", **{"imaging.camera_offset_adu": offset})
    run = snakemake(directory, "--cores", "2", *TARGETS)
    assert run.returncode == 0, run.stderr[-4000:]
    return directory


@pytest.fixture(scope="module")
def truth():
    return json.loads((DEMO / "truth" / "if_truth.json").read_text())


@pytest.fixture(scope="module")
def conditions(if_run):
    summary = pd.read_csv(if_run / "results" / "imaging" / "if_summary.csv")
    return summary[summary["level"] == "condition"].set_index(["cell_line", "condition"])


def test_figures_tables_and_labels_exist(if_run):
    for figure_id in TARGETS:
        for ext in ("pdf", "png"):
            assert (if_run / "results" / "figures" / f"{figure_id}.{ext}").stat().st_size > 5000
    for name in TABLES:
        assert (if_run / "results" / "imaging" / f"{name}.csv").is_file()
    sheet = pd.read_csv(DEMO / "images.tsv", sep="\t")
    if_ids = sheet.loc[sheet["assay"] == "IF", "image_id"]
    assert len(if_ids) == 80
    # label images: one multi-page TIFF per batch of fields (imaging.fields_per_job)
    for kind in ("nuclei", "cells"):
        pages = []
        for path in sorted(
            (if_run / "results" / "imaging" / "labels" / "if").glob(f"*_{kind}.tif")
        ):
            with tifffile.TiffFile(path) as tif:
                pages += [(page.description, page.shape) for page in tif.pages]
        assert sorted(description for description, _ in pages) == sorted(if_ids)
        assert all(shape == (256, 256) for _, shape in pages)


def test_cells_table_has_spec_columns_and_flags(if_run):
    cells = pd.read_csv(if_run / "results" / "imaging" / "if_cells.csv")
    for column in (
        "image_id",
        "cell_id",
        "cell_line",
        "condition",
        "replicate",
        "nucleus_area_um2",
        "cell_area_um2",
        "her2_mean_membrane",
        "her2_integrated_membrane",
        "her2_mean_nucleus",
        "her2_integrated_nucleus",
        "her2_mean_cytoplasm",
        "her2_integrated_cytoplasm",
        "her2_net_membrane",
        "nuclear_fraction",
        "membrane_completeness",
        "membrane_sectors",
        "segmentation_channel",
        "border",
        "saturated",
        "implausible_size",
        "image_flags",
        "excluded",
    ):
        assert column in cells.columns, column
    # flagged cells are kept in the table (with their flags)
    assert cells["border"].any() and cells["excluded"].any()
    assert set(cells["segmentation_channel"]) == {"membrane marker"}


def test_bad_fields_are_flagged_and_left_out(if_run, truth):
    qc = pd.read_csv(if_run / "results" / "imaging" / "if_image_qc.csv", keep_default_na=False)
    flagged = dict(
        zip(
            qc.loc[qc["image_excluded"], "image_id"],
            qc.loc[qc["image_excluded"], "image_flags"],
            strict=True,
        )
    )
    expected = {b["image_id"]: b["defect"] for b in truth["bad_fields"]}
    assert flagged == expected
    summary = pd.read_csv(if_run / "results" / "imaging" / "if_summary.csv")
    assert not set(summary["image_id"].dropna()) & set(expected)


@pytest.fixture(scope="module")
def true_conditions():
    """The per-cell truth summarised like the workflow's cells (median per
    image, mean per replicate, mean per condition): interphase cells (the
    truth's condition means are over these) of the good fields, z-stacks
    included, not touching the field border."""
    cells = pd.read_csv(DEMO / "truth" / "if_truth.csv", keep_default_na=False)
    cells = cells[
        (cells["bad_field"] == "")
        & (cells["touches_border"].astype(str) == "False")
        & (cells["cell_kind"] == "interphase")
    ]
    values = ["membrane_her2", "membrane_completeness", "nuclear_fraction_projected"]
    summary = aggregate(cells, values=values, exclude_flags=())
    return summary["condition"].set_index(["cell_line", "condition"])


def _over_tr(table, column):
    """A condition column over its line's T-R (condition index)."""
    reference = table[column].xs("T-R", level="condition")
    return table[column] / reference.reindex(table.index.get_level_values("cell_line")).to_numpy()


@pytest.mark.parametrize(
    ("measured", "true", "scale", "tolerance"),
    [
        ("her2_net_membrane", "membrane_her2", "ratio_to_TR", 0.20),
        ("membrane_completeness", "membrane_completeness", "absolute", 0.08),
        ("nuclear_fraction", "nuclear_fraction_projected", "absolute", 0.07),
    ],
)
def test_condition_values_recover_truth(
    conditions, true_conditions, truth, measured, true, scale, tolerance
):
    """Issue 15: the workflow's condition values (if_summary.csv) against the
    truth summarised the same way.

    - Membrane HER2 relative to the line's T-R (the truth is per um^2 of
      lateral membrane, the measurement a 1 um band mean, about 1.5x): the
      ratio within 20 % of the true ratio. Measured max 13.2 % (BT474
      T-R>T+P 0.451 vs 0.398; the per-field scale varies with SD about 8 %),
      margin 6.8 points.
    - Membrane completeness within 0.08 (measured max 0.055, BT474 parental
      0.979 vs 0.924: image medians of near-complete cells reach 1).
    - Nuclear fraction against the truth a 2-D reading sees (the nuclear
      column, apical membrane over the nucleus included), within 0.07
      (measured: 0.005-0.047 below, max BT474 parental; z-stacks, measured
      in their mid-nuclear plane, included as the workflow does).
    """
    assert len(truth["conditions"]) == 12
    keys = [(t["cell_line"], t["condition"]) for t in truth["conditions"]]
    value = conditions[f"{measured}_mean"]
    expected = true_conditions[f"{true}_mean"]
    if scale == "ratio_to_TR":
        value = _over_tr(conditions, f"{measured}_mean")
        expected = _over_tr(true_conditions, f"{true}_mean")
        error = value / expected - 1
    else:
        error = value - expected
    error = error.reindex(keys)
    print(measured, error.round(3).to_dict())
    assert error.notna().all()
    assert (error.abs() <= tolerance).all(), error.round(3).to_dict()


def test_membrane_completeness_parental_vs_tpr(if_run):
    """Completeness discriminates parental from TP-R in both lines, at the level
    of biological replicates with the family's multiplicity adjustment.
    Measured: parental 0.974 / 0.979, TP-R 0.543 / 0.534 (SKBR3 / BT474);
    Holm-adjusted p 0.0054 / 0.024 (fig2 family of 18 tests)."""
    comparisons = pd.read_csv(if_run / "results" / "imaging" / "if_comparisons.csv")
    rows = comparisons[
        (comparisons["value"] == "membrane_completeness")
        & (comparisons["test"] == "TP-R")
        & (comparisons["reference"] == "parental")
    ].set_index("cell_line")
    assert set(rows.index) == {"SKBR3", "BT474"}
    for line, row in rows.iterrows():
        assert row["mean_reference"] - row["mean_test"] >= 0.2, line
        assert row["p_adjusted"] < 0.05, line


def test_tpr_loses_membrane_her2_per_line(if_run):
    """TP-R below T-R in membrane HER2 in each line (replicate-level Welch).
    Measured: ratio 0.42 SKBR3, 0.38 BT474; p 0.039 / 1e-5, Holm-adjusted
    0.195 / 0.0002: after adjustment the SKBR3 loss is not significant (its
    T-R replicates read 30, 47, 40), so only the unadjusted p is asserted."""
    comparisons = pd.read_csv(if_run / "results" / "imaging" / "if_comparisons.csv")
    rows = comparisons[
        (comparisons["value"] == "her2_net_membrane")
        & (comparisons["test"] == "TP-R")
        & (comparisons["reference"] == "T-R")
    ].set_index("cell_line")
    assert set(rows.index) == {"SKBR3", "BT474"}
    for line, row in rows.iterrows():
        assert row["mean_test"] < row["mean_reference"], line
        assert row["p"] < 0.05, line
        assert row["ratio_ci_high"] < 1, line


def test_comparisons_carry_family_and_adjusted_p(if_run):
    comparisons = pd.read_csv(if_run / "results" / "imaging" / "if_comparisons.csv")
    for column in ("family", "p", "p_adjusted", "multiplicity"):
        assert column in comparisons.columns, column
    assert comparisons["family"].notna().all()
    assert set(comparisons["multiplicity"]) == {"holm"}  # stats.multiplicity default
    assert (comparisons["p_adjusted"] >= comparisons["p"]).all()
    assert (comparisons["p_adjusted"] <= 1).all()


def test_summary_reports_marker_fields_and_border_cells(conditions):
    """Every demo field has the membrane marker; border-cell exclusion is
    counted per condition."""
    assert len(conditions) == 12
    assert (conditions["n_images_without_membrane_marker"] == 0).all()
    assert (conditions["fraction_images_without_membrane_marker"] == 0).all()
    for column in ("n_cells_border", "fraction_border"):
        assert column in conditions.columns, column
        assert (conditions[column] > 0).all(), column
    assert (conditions["fraction_border"] < 1).all()


def test_image_qc_records_z_planes(if_run, truth):
    qc = pd.read_csv(if_run / "results" / "imaging" / "if_image_qc.csv", keep_default_na=False)
    assert len(qc) == 80
    stacks = {field["image_id"] for field in truth["zstack_fields"]}
    assert stacks == {
        f"IF_{line}_{condition}_r1_f3"
        for line in ("SKBR3", "BT474")
        for condition in ("parental", "TPR")
    }
    planes = qc.set_index("image_id")["z_planes"].astype(int)
    assert (planes[sorted(stacks)] == 9).all()
    assert (planes.drop(sorted(stacks)) == 1).all()


def test_tables_identical_on_rerun_with_one_core(if_run, tmp_path):
    first = table_hashes(if_run)
    shutil.rmtree(if_run / "results" / "imaging")
    run = snakemake(if_run, "--cores", "1", "imaging_summarise_if", "--rerun-triggers", "mtime")
    assert run.returncode == 0, run.stderr[-4000:]
    assert table_hashes(if_run) == first


def test_channel_out_of_range_stops_before_any_job(tmp_path):
    sheet = pd.read_csv(DEMO / "images.tsv", sep="\t", dtype=str, keep_default_na=False)
    sheet = sheet[sheet["assay"] == "IF"].head(3).copy()
    sheet.loc[sheet.index[1], "her2_channel"] = "5"
    sheet["path"] = [str(Path("images") / Path(p).name) for p in sheet["path"]]
    (tmp_path / "images").mkdir()
    for p in sheet["path"]:
        shutil.copyfile(DEMO / "images" / "if" / Path(p).name, tmp_path / p)
    sheet_path = tmp_path / "bad.tsv"
    sheet.to_csv(sheet_path, sep="\t", index=False)
    write_config(tmp_path, images=sheet_path)
    run = snakemake(tmp_path, "--cores", "1", "figS1_segmentation_qc")
    assert run.returncode != 0
    text = run.stderr + run.stdout
    image_id = sheet["image_id"].iloc[1]
    assert "bad.tsv" in text and f"row 2 (image_id {image_id})" in text
    assert "column 'her2_channel'" in text and "value '5'" in text and "0..2" in text
    assert not (tmp_path / "results").exists()
