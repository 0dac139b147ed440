"""End-to-end: the cohort stage of the demo study through Snakemake.

One module-scoped run of the whole workflow in a scratch directory (the demo
cohort, absolute paths), then checks on what a user gets: every figure and
table, the calibration the demo data promise, rerun scoping, determinism.
"""

import hashlib
import shutil
from pathlib import Path

import pandas as pd
import pytest

from . import workflow
from .conftest import PROJECT
from .workflow import DEMO, snakemake

pytestmark = pytest.mark.slow  # every test here runs Snakemake

COHORT_FIGURES = [
    "fig5_cohort_flow",
    "fig6_km_os",
    "fig7_km_pfs2",
    "fig8_cox_forest",
    "table1_characteristics",
    "table2_cox",
    "figS3_ph_diagnostics",
    "figS4_tdm1_by_line",
]


def write_config(directory, **changes):
    """The cohort stage alone: plates and images are left out (their stages too)."""
    return workflow.write_config(directory, cohort=DEMO / "cohort.csv", **changes)


def tables(directory):
    root = Path(directory) / "results"
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*.csv"))
        if "benchmarks" not in p.parts
    }


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("demo")
    write_config(directory)
    run = snakemake(directory, "--cores", "2")
    assert run.returncode == 0, run.stderr[-4000:]
    return directory


def test_every_cohort_figure_and_table_is_made(demo_run):
    for figure_id in COHORT_FIGURES:
        for ext in ("pdf", "png"):
            path = demo_run / "results" / "figures" / f"{figure_id}.{ext}"
            assert path.stat().st_size > 5000, path
    for name in ("km_medians", "logrank", "cox", "ph_test", "table1", "flow"):
        assert (demo_run / "results" / "survival" / f"{name}.csv").is_file()
    assert (demo_run / "results" / "provenance.json").is_file()


def test_demo_calibration_is_reported_by_the_workflow(demo_run):
    """SPEC: second line, median OS ~52 vs 74 and PFS2 ~6 vs 10 months (15%)."""
    medians = pd.read_csv(demo_run / "results" / "survival" / "km_medians.csv")
    medians = medians.set_index(["analysis", "group"])["median"]
    targets = {("os", "yes"): 52, ("os", "no"): 74, ("pfs2", "yes"): 6, ("pfs2", "no"): 10}
    for key, target in targets.items():
        assert abs(medians[key] - target) <= 0.15 * target, (key, medians[key])
    logrank = pd.read_csv(demo_run / "results" / "survival" / "logrank.csv").set_index("analysis")
    assert logrank.loc["os", "p"] < 0.01
    assert logrank.loc["pfs2", "p"] < 0.05


def test_flow_counts_match_the_design(demo_run):
    flow = pd.read_csv(demo_run / "results" / "survival" / "flow.csv").set_index("box_id")
    assert flow.loc["all", "n"] == 555
    assert flow.loc["line_2nd", "n"] == 371
    assert flow.loc["group_yes", "n"] == 177
    assert flow.loc["group_no", "n"] == 194


def test_no_patient_identifier_in_aggregate_tables(demo_run):
    cohort = pd.read_csv(PROJECT / "resources" / "demo" / "cohort.csv")
    ids = set(cohort["patient_id"].astype(str))
    for name in ("km_medians", "logrank", "cox", "cox_models", "ph_test", "table1", "flow"):
        text = (demo_run / "results" / "survival" / f"{name}.csv").read_text()
        assert not any(pid in text for pid in ids), name


def test_up_to_date_after_run(demo_run):
    run = snakemake(demo_run, "--cores", "1", "--dry-run", "--quiet", "rules")
    assert run.returncode == 0
    assert "Nothing to be done" in run.stdout + run.stderr


def test_changing_one_figure_parameter_reruns_that_figure_alone(demo_run):
    config = write_config(demo_run / "..", **{"figures.km_os.time_max_months": 96})
    run = snakemake(demo_run, "--cores", "1", "--dry-run", "--quiet", "rules", config=config)
    assert run.returncode == 0, run.stderr
    out = run.stdout + run.stderr
    assert "fig6_km_os" in out
    for other in ("fig7_km_pfs2", "figS4_tdm1_by_line", "survival_km", "survival_cox"):
        assert other not in out, out


def test_one_figure_target_builds_only_what_it_needs(tmp_path):
    write_config(tmp_path)
    run = snakemake(tmp_path, "--cores", "1", "fig8_cox_forest", "--dry-run", "--quiet", "rules")
    assert run.returncode == 0, run.stderr
    out = run.stdout + run.stderr
    assert "survival_cox" in out and "fig8_cox_forest" in out
    for other in ("survival_km", "fig6_km_os", "survival_table1"):
        assert other not in out


def test_tables_are_byte_identical_with_one_core(demo_run, tmp_path):
    write_config(tmp_path)
    run = snakemake(tmp_path, "--cores", "1")
    assert run.returncode == 0, run.stderr[-4000:]
    assert tables(tmp_path) == tables(demo_run)
    for figure_id in COHORT_FIGURES:
        for ext in ("pdf", "png"):
            a = (demo_run / "results" / "figures" / f"{figure_id}.{ext}").read_bytes()
            b = (tmp_path / "results" / "figures" / f"{figure_id}.{ext}").read_bytes()
            assert a == b, f"{figure_id}.{ext} differs between runs"
    shutil.rmtree(tmp_path / "results")


def test_misspelt_config_key_stops_before_any_job(tmp_path):
    config = write_config(tmp_path)
    text = config.read_text().replace("km_ci:", "kmci:")
    config.write_text(text)
    run = snakemake(tmp_path, "--cores", "1")
    assert run.returncode != 0
    assert "survival.kmci" in run.stderr and "Did you mean 'km_ci'?" in run.stderr
    assert not (tmp_path / "results").exists()
