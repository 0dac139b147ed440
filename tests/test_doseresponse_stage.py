"""End-to-end: the dose-response stage on the demo plates through Snakemake.

One module-scoped run of fig1, figS2 and the dose-response tables in a
scratch directory (plates only: no cohort, no images), then checks against
the demo truth (resources/demo/truth/plates_truth.json), determinism and a
bad plates file.
"""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from .conftest import PROJECT
from .workflow import snakemake, write_config

pytestmark = pytest.mark.slow  # every test here runs Snakemake

DEMO = PROJECT / "resources" / "demo"
TARGETS = ["fig1_dose_response", "figS2_dose_response_qc", "figS10_dose_response_metrics"]
TABLES = [
    "viability",
    "plate_qc",
    "fits",
    "fits_by_replicate",
    "residuals",
    "curves",
    "comparisons",
]


def table_hashes(directory):
    root = Path(directory) / "results" / "doseresponse"
    return {
        name: hashlib.sha256((root / f"{name}.csv").read_bytes()).hexdigest() for name in TABLES
    }


@pytest.fixture(scope="module")
def dr_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("dr_stage")
    write_config(directory, plates=DEMO / "plates.csv")
    run = snakemake(directory, "--cores", "2", *TARGETS)
    assert run.returncode == 0, run.stderr[-4000:]
    return directory


@pytest.fixture(scope="module")
def truth():
    return json.loads((DEMO / "truth" / "plates_truth.json").read_text())


def read(directory, name):
    return pd.read_csv(
        directory / "results" / "doseresponse" / f"{name}.csv", keep_default_na=False
    )


def test_figures_and_tables_exist(dr_run):
    for figure_id in TARGETS:
        for ext in ("pdf", "png"):
            assert (dr_run / "results" / "figures" / f"{figure_id}.{ext}").stat().st_size > 5000
    for name in TABLES:
        assert (dr_run / "results" / "doseresponse" / f"{name}.csv").is_file()


def test_fits_have_spec_and_fig3_columns(dr_run, truth):
    fits = read(dr_run, "fits")
    for column in (
        "cell_line", "condition", "drug", "model", "concentration_unit",
        "b", "b_se", "b_lower", "b_upper", "c", "d", "e", "e_se", "e_lower", "e_upper",
        "ic50_rel", "ic50_rel_lower", "ic50_rel_upper", "ic50_rel_reached", "ic50_rel_display",
        "ic50_abs", "ic50_abs_lower", "ic50_abs_upper", "ic50_abs_reached", "ic50_abs_display",
        "log_ic50", "hill_slope", "auc", "activity_area", "aic_LL4", "aic_LL5", "aic_W14",
        "aic_best_model", "lack_of_fit_p", "flags", "n", "gr50", "gr_max", "gr_aoc",
    ):  # fmt: skip
        assert column in fits.columns, column
    # one row per simulated curve, in the drug's unit
    assert len(fits) == len(truth["curves"])
    for _, row in fits.iterrows():
        curve = truth["curves"][f"{row['cell_line']}|{row['condition']}|{row['drug']}"]
        assert row["concentration_unit"] == curve["unit"]
    by_replicate = read(dr_run, "fits_by_replicate")
    assert len(by_replicate) == 3 * len(truth["curves"]) - len(truth["failing_plates"])


def test_comparisons_are_replicate_level_with_adjusted_p(dr_run):
    """Issue 15: replicate-level tests (paired on shared replicate ids), Holm within
    each family across lines, drc's well-level EDcomp kept as technical_*."""
    from sepher.doseresponse.stage import COMPARISON_COLUMNS

    comparisons = read(dr_run, "comparisons")
    assert list(comparisons.columns) == list(COMPARISON_COLUMNS)
    assert set(comparisons["inference"]) == {"replicate"}
    assert set(comparisons["test"]) == {"paired t"}  # replicates are days shared by conditions
    assert (comparisons["n_pairs"] >= 2).all()
    assert (comparisons["df"] == comparisons["n_pairs"] - 1).all()
    assert (comparisons["technical_df"] > 10 * comparisons["df"]).all()  # wells, not replicates
    assert set(comparisons["multiplicity"]) == {"holm"}
    assert (comparisons["p_adjusted"] >= comparisons["p"]).all()
    family = np.where(comparisons["numerator"] == "TP-R", "fig1", "fig3")
    assert comparisons["family"].tolist() == family.tolist()


def test_tpr_over_tr_ratio_ci_contains_truth(dr_run, truth):
    """Issue 3: the TP-R/T-R IC50 ratio CI per line contains the simulated ratio."""
    comparisons = read(dr_run, "comparisons").set_index(["cell_line", "numerator", "denominator"])
    for line, ratios in truth["tdm1_ic50_ratios"].items():
        expected = ratios["TP-R/T-R"]["ic50_relative_ratio"]
        row = comparisons.loc[(line, "TP-R", "T-R")]
        assert row["lower"] <= expected <= row["upper"], (line, expected, row.to_dict())


def test_sequence_ratios_ci_contain_truth(dr_run, truth):
    """Each sequence vs T-R: ratio of the simulated IC50s (day effects cancel) in the CI."""
    comparisons = read(dr_run, "comparisons")
    assert set(comparisons["numerator"]) == {"TP-R", "T-R>T", "T-R>P", "T-R>T+P"}
    for row in comparisons.itertuples():
        e_num = truth["curves"][f"{row.cell_line}|{row.numerator}|T-DM1"]["e"]
        e_den = truth["curves"][f"{row.cell_line}|{row.denominator}|T-DM1"]["e"]
        assert row.lower <= e_num / e_den <= row.upper, (row, e_num / e_den)


def test_not_reached_ic50_is_flagged(dr_run, truth):
    """Absolute IC50 (50 % viability) reached exactly where the simulated curve crosses it."""
    fits = read(dr_run, "fits")
    for _, row in fits.iterrows():
        curve = truth["curves"][f"{row['cell_line']}|{row['condition']}|{row['drug']}"]
        reached = str(row["ic50_abs_reached"]) == "True"
        assert reached == curve["ic50_reached"], (row["cell_line"], row["condition"], row["drug"])
        if not reached:
            assert row["ic50_abs"] == "" and row["ic50_abs_display"].startswith("> ")


def test_outlier_well_is_left_out(dr_run, truth):
    outlier = truth["outlier"]
    residuals = read(dr_run, "residuals")
    hit = residuals[
        (residuals["plate_id"] == outlier["plate_id"])
        & (residuals["well"] == outlier["well"])
        & (residuals["drug"] == outlier["drug"])
    ]
    assert len(hit) == 1 and str(hit["outlier"].iloc[0]) == "True"
    fits = read(dr_run, "fits").set_index(["cell_line", "condition", "drug"])
    row = fits.loc[(outlier["cell_line"], outlier["condition"], outlier["drug"])]
    assert f"{outlier['plate_id']}:{outlier['well']}" in row["outlier_wells"]
    # few false alarms: at most 2 % of the fitted wells flagged (ROUT Q = 1 %)
    flagged = residuals["outlier"].astype(str) == "True"
    assert flagged.sum() <= 0.02 * len(residuals), flagged.sum()


def test_plate_qc_acts(dr_run, truth):
    """Z' per plate; plates failing QC are excluded from every fit (qc_action exclude)."""
    qc = read(dr_run, "plate_qc").set_index("plate_id")
    assert set(qc.index) == set(truth["plates"])
    for plate, info in truth["plates"].items():
        if "vehicle" in info["wells_by_role"]:
            assert float(qc.loc[plate, "z_prime"]) < 1.0
            assert qc.loc[plate, "z_prime_reference"] in ("kill", "blank")
            assert qc.loc[plate, "n_vehicle"] == info["wells_by_role"]["vehicle"]
        else:  # time-zero plates are not judged
            assert qc.loc[plate, "z_prime"] == "" and qc.loc[plate, "qc_action"] == ""
    passed = qc["qc_pass"].astype(str) == "True"
    assert (qc.loc[~passed, "qc_action"] == "excluded").all()
    assert (qc.loc[passed, "qc_action"] == "").all()
    excluded = set(qc.index[~passed])
    viability = read(dr_run, "viability")
    marked = viability["plate_excluded"].astype(str) == "True"
    assert set(viability.loc[marked, "plate_id"]) == excluded
    assert not set(read(dr_run, "residuals")["plate_id"]) & excluded


def test_tables_identical_with_one_core_and_one_shard_per_line(dr_run, tmp_path):
    """Determinism across cores, and sharding: 2 shards (one per line) join to the same bytes."""
    write_config(tmp_path, plates=DEMO / "plates.csv", **{"doseresponse.plates_per_job": 21})
    run = snakemake(tmp_path, "--cores", "1", "doseresponse_join")
    assert run.returncode == 0, run.stderr[-4000:]
    shards = sorted(p.name for p in (tmp_path / "results/doseresponse/shards").iterdir())
    assert shards == ["dr0001", "dr0002"]
    first, second = table_hashes(dr_run), table_hashes(tmp_path)
    assert first == second


def test_duplicate_well_stops_before_any_job(tmp_path):
    lines = (DEMO / "plates.csv").read_text().splitlines()
    header, rows = lines[0], lines[1:]
    plate, well = rows[4].split(",")[:2]
    bad = [header, *rows[:10], rows[4], *rows[10:]]  # row 5 again, as data row 11
    plates = tmp_path / "bad_plates.csv"
    plates.write_text("\n".join(bad) + "\n")
    write_config(tmp_path, plates=plates)
    run = snakemake(tmp_path, "--cores", "1", *TARGETS)
    assert run.returncode != 0
    text = run.stdout + run.stderr
    assert "bad_plates.csv" in text and "row 11" in text and "column 'well'" in text
    assert f"value '{well}'" in text and plate in text
    assert not (tmp_path / "results").exists()
    shutil.rmtree(tmp_path / ".snakemake", ignore_errors=True)
