"""The report library: caption numbers, generated Methods, HTML tables, provenance."""

import base64
import hashlib
import io
import re

import pandas as pd
import pytest
import yaml

from sepher.io.provenance import image_records, provenance, sha256
from sepher.report import (
    caption_numbers,
    markdown_to_html,
    methods_markdown,
    number_patients,
    render_caption,
    table_html,
)
from sepher.report.methods import cohort_counts, ihc_counts
from sepher.report.numbers import format_ci, ihc_numbers, km_numbers

from .conftest import PROJECT
from .test_workflow_e2e import write_config
from .workflow import snakemake


@pytest.fixture
def config():
    with open(PROJECT / "config" / "config.yaml") as stream:
        return yaml.safe_load(stream)


# Small hand-made result tables (the columns the cohort stage writes).
MEDIANS = pd.DataFrame(
    {
        "analysis": ["os", "os", "pfs2", "pfs2"],
        "endpoint": ["OS", "OS", "PFS2", "PFS2"],
        "group": ["no", "yes", "no", "yes"],
        "n": [194, 177, 194, 177],
        "events": [86, 101, 187, 173],
        "median": [74.04, 52.0, 10.0, 6.0],
        "lower": [60.91, 48.49, 8.84, 5.91],
        "upper": [float("nan"), 59.53, 11.5, 6.87],
        "conf_type": "log-log",
        "conf_level": 0.95,
    }
)
LOGRANK = pd.DataFrame(
    {
        "analysis": ["os", "pfs2"],
        "endpoint": ["OS", "PFS2"],
        "chisq": [11.8, 4.7],
        "df": [1, 1],
        "p": [0.00059, 0.030],
    }
)
COX = pd.DataFrame(
    {
        "endpoint": ["OS", "OS", "OS"],
        "model": ["univariate", "multivariate", "multivariate"],
        "term": ["first_line_pertuzumab", "first_line_pertuzumab", "brain_mets"],
        "column": ["first_line_pertuzumabyes", "first_line_pertuzumabyes", "brain_metsyes"],
        "level": ["yes", "yes", "yes"],
        "reference": ["no", "no", "no"],
        "hr": [1.84, 1.96, 2.08],
        "hr_lower": [1.37, 1.45, 1.39],
        "hr_upper": [2.48, 2.66, 3.12],
        "p": [5.8e-5, 1.4e-5, 0.00037],
        "n": [371, 371, 371],
        "events": [187, 187, 187],
        "n_excluded": [0, 0, 0],
    }
)


def test_ci_with_an_upper_limit_not_reached():
    assert format_ci(74.04, 60.91, float("nan")) == "74.0 (95% CI 60.9-NA)"
    assert format_ci(1.5, 1.2, 1.9, 2, 0.9) == "1.50 (90% CI 1.20-1.90)"


def test_km_caption_states_medians_log_rank_and_hazard_ratio():
    text = km_numbers(
        MEDIANS,
        LOGRANK,
        COX,
        "os",
        "first_line_pertuzumab",
        ["no", "yes"],
        ["Pertuzumab-naive", "Pertuzumab-pretreated"],
    )
    assert "Pertuzumab-naive (n = 194, 86 events): 74.0 (95% CI 60.9-NA)" in text
    assert "Pertuzumab-pretreated (n = 177, 101 events): 52.0 (95% CI 48.5-59.5)" in text
    assert "Log-rank chi-squared = 11.80 on 1 df, p = 0.00059." in text
    assert "Pertuzumab-pretreated vs Pertuzumab-naive: 1.84 (95% CI 1.37-2.48), p < 0.0001" in text
    pfs2 = km_numbers(MEDIANS, LOGRANK, COX, "pfs2", "first_line_pertuzumab", ["no", "yes"])
    assert "Median PFS2" in pfs2 and "no (n = 194, 187 events): 10.0" in pfs2
    assert "p = 0.030." in pfs2


def test_forest_caption_names_significant_other_terms():
    tables = {"cox": COX}
    settings = {"survival": {"group": "first_line_pertuzumab", "group_levels": ["no", "yes"]}}
    text = caption_numbers("fig8_cox_forest", tables, settings)
    assert "OS: HR yes vs no 1.96 (95% CI 1.45-2.66), p < 0.0001 (n = 371, 187 events)" in text
    assert "OS brain_mets yes HR 2.08" in text


def test_a_figure_without_its_tables_gets_no_numbers():
    assert caption_numbers("fig1_dose_response", {"cox": COX}, {}) == ""
    assert render_caption("**Figure 1.**\n\n", "") == "**Figure 1.**\n"
    assert (
        render_caption("**Figure 1.**", "**This run.** x") == "**Figure 1.**\n\n**This run.** x\n"
    )


def test_if_caption_gives_ratio_ci_and_p_per_pair():
    comparisons = pd.DataFrame(
        {
            "cell_line": ["BT474", "BT474"],
            "value": ["her2_net_membrane", "her2_net_membrane"],
            "test": ["TP-R", "T-R>T"],
            "reference": ["T-R", "T-R"],
            "conf_level": [0.95, 0.95],
            "n_reference": [3, 3],
            "n_test": [3, 3],
            "ratio": [0.415, 0.98],
            "ratio_ci_low": [0.362, 0.82],
            "ratio_ci_high": [0.476, 1.17],
            "p": [0.00016, 0.73],
        }
    )
    settings = {
        "imaging": {
            "comparisons": [
                {"test": "TP-R", "reference": "T-R"},
                {"test": "T-R>T", "reference": "T-R"},
            ],
            "localisation_conditions": ["parental", "T-R", "TP-R"],
            "sequence_conditions": ["T-R", "T-R>T"],
        }
    }
    fig2 = caption_numbers("fig2_her2_localisation", {"if_comparisons": comparisons}, settings)
    assert "BT474 TP-R / T-R 0.41 (95% CI 0.36-0.48), p = 0.00016 (3 vs 3 replicates)" in fig2
    assert "T-R>T" not in fig2
    fig3 = caption_numbers("fig3_sequential_exposure", {"if_comparisons": comparisons}, settings)
    assert "BT474 T-R>T / T-R 0.98 (95% CI 0.82-1.17), p = 0.73" in fig3
    assert "TP-R" not in fig3


def test_ihc_caption_counts_categories_and_names_no_patient():
    samples = pd.DataFrame(
        {
            "patient_id": ["BX-07", "BX-07", "BX-02", "BX-02"],
            "timepoint": ["pre", "post", "pre", "post"],
            "asco_cap_label": ["3+", "1+", "3+", "3+"],
        }
    )
    paired = pd.DataFrame(
        {
            "patient_id": ["BX-07", "BX-02"],
            "h_score_pre": [245.1, 249.0],
            "h_score_post": [56.7, 202.5],
            "h_score_change": [-188.4, -46.5],
            "asco_cap_pre_label": ["3+", "3+"],
            "asco_cap_post_label": ["1+", "3+"],
        }
    )
    text = ihc_numbers(samples, paired)
    assert "2 patients, 4 biopsies." in text
    assert "ASCO/CAP pre: 2 x 3+." in text and "ASCO/CAP post: 1 x 1+, 1 x 3+." in text
    # patients numbered in the order of their codes: BX-02 is patient 1
    assert "patient 1 249 -> 202 (3+ -> 3+); patient 2 245 -> 57 (3+ -> 1+)" in text
    assert "fell in 2 of 2" in text
    assert "BX-" not in text


def test_methods_follow_the_config(config):
    text = methods_markdown(config)
    assert "log-log scale" in text and "efron ties" in text and "1.0 um membrane band" in text
    config["survival"]["km_ci"] = "log"
    config["survival"]["conf_level"] = 0.9
    config["imaging"]["membrane_band_um"] = 1.5
    config["ihc"]["stain_estimation"] = "macenko"
    config["doseresponse"] = {
        "model": "LL.3",
        "candidate_models": ["LL.3", "W1.4"],
        "outliers": "none",
        "outlier_q": 0.01,
        "robust_loss": "soft_l1",
        "ed_levels": [50],
        "conf_level": 0.95,
        "drug": "T-DM1",
        "comparisons": [{"numerator": "TP-R", "denominator": "T-R"}],
        "min_z_prime": 0.4,
        "max_cv_percent": 20.0,
    }
    changed = methods_markdown(config)
    assert "90% confidence intervals on the log scale" in changed
    assert 'survfit(conf.type = "log")' in changed
    assert "1.5 um membrane band" in changed
    assert "Macenko" in changed
    assert "Model `LL.3`" in changed and "Z'-factor below 0.4" in changed
    # a stage whose input is left out is left out of the Methods
    config.pop("images")
    assert "immunofluorescence" not in methods_markdown(config).lower()


def test_methods_state_counts_and_versions(config):
    flow = pd.DataFrame(
        {
            "box_id": ["all", "line_2nd", "line_3rd", "group_no", "group_yes"],
            "parent_id": ["", "all", "all", "line_2nd", "line_2nd"],
            "label": ["all", "T-DM1 in 2nd line", "T-DM1 in 3rd line", "naive", "pretreated"],
            "n": [461, 371, 90, 194, 177],
        }
    )
    counts = {
        "cohort": cohort_counts(flow, MEDIANS),
        "ihc": ihc_counts(
            pd.DataFrame(
                {
                    "patient_id": ["a", "a", "b", "b"],
                    "n_images": [2, 2, 1, 1],
                    "n_cells": [400, 500, 200, 300],
                    "n_tumour_cells": [300, 400, 150, 250],
                }
            )
        ),
    }
    assert counts["cohort"]["events"] == {"OS": 187, "PFS2": 360}
    software = {
        "packages": {"snakemake": "9.27.1", "lifelines": "0.30.3"},
        "python": "3.11.7",
        "workflow_commit": "abc123",
    }
    text = methods_markdown(config, counts, software)
    assert "The cohort table held 461 patients" in text
    assert "371 patients treated with T-DM1 in line 2 were analysed" in text
    assert "194 Pertuzumab-naive (no) and 177 Pertuzumab-pretreated (yes)" in text
    assert "events: 187 for OS and 360 for PFS2" in text
    assert "6 H-DAB tiles of 4 biopsies from 2 patients" in text
    assert "1400 cells detected, 1100 tumour cells scored" in text
    assert "Snakemake 9.27.1 on Python 3.11.7" in text and "lifelines 0.30.3" in text
    assert "commit `abc123`" in text
    html = markdown_to_html(text)
    assert html.count("<h2>") == text.count("\n## ") and "<code>abc123</code>" in html
    assert html.count("<li>") == len(re.findall(r"^- ", text, flags=re.M))


def test_table_page_shows_every_row_and_embeds_the_csv():
    table = pd.DataFrame({"group": ["no", "<yes>"], "n": [194, 177], "median": [70.24229979, 52.9]})
    page = table_html(table, "KM medians", "results/survival/km_medians.csv", "km_medians.csv")
    assert page.count("<tr>") == 3  # header and two rows
    assert "&lt;yes&gt;" in page and "70.24" in page and '<td class="num">194</td>' in page
    encoded = re.search(r'href="data:text/csv;base64,([^"]+)"', page).group(1)
    assert pd.read_csv(io.StringIO(base64.b64decode(encoded).decode())).equals(table)


def test_report_tables_number_patients_instead_of_naming_them():
    table = pd.DataFrame({"patient_id": ["BX-09", "BX-02", "BX-09"], "h_score": [1.0, 2.0, 3.0]})
    numbered = number_patients(table)
    assert list(numbered["patient"]) == ["patient 2", "patient 1", "patient 2"]
    assert "BX-" not in table_html(numbered, "t")


def test_checksums_stream_in_chunks(tmp_path):
    data = bytes(range(256)) * 5000  # 1.28 MB, many chunks of 4 kB
    path = tmp_path / "image.tif"
    path.write_bytes(data)
    assert sha256(path, chunk_bytes=4096) == hashlib.sha256(data).hexdigest()


def test_provenance_records_every_image_of_the_sheet(tmp_path, config):
    (tmp_path / "if").mkdir()
    images = [tmp_path / "if" / "a.tif", tmp_path / "b.png"]
    for k, image in enumerate(images):
        image.write_bytes(b"pixels" * (k + 1))
    sheet = tmp_path / "images.tsv"
    sheet.write_text("image_id\tpath\na\tif/a.tif\nb\tb.png\n")
    record = provenance([sheet], config, images=images, images_root=tmp_path, repo_dir=PROJECT)
    assert record["images"] == {
        "b.png": {"sha256": hashlib.sha256(b"pixels" * 2).hexdigest(), "bytes": 12},
        "if/a.tif": {"sha256": hashlib.sha256(b"pixels").hexdigest(), "bytes": 6},
    }
    assert record["inputs"][str(sheet)]["sha256"] == hashlib.sha256(sheet.read_bytes()).hexdigest()
    assert re.fullmatch(r"\d+\.\d+\.\d+", record["snakemake"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", record["run_date_utc"])
    assert re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", record["workflow_commit"])
    assert record["config"] is config
    assert image_records([images[0]]) == {images[0].as_posix(): record["images"]["if/a.tif"]}


@pytest.mark.slow
def test_report_rules_are_in_the_default_run(tmp_path):
    write_config(tmp_path)
    run = snakemake(tmp_path, "--cores", "1", "--dry-run", "--quiet", "rules")
    assert run.returncode == 0, run.stderr
    out = run.stdout + run.stderr
    for rule in ("report_captions", "report_table", "report_methods", "provenance"):
        assert rule in out, rule


# --------------------------------------------------------------------------- caption templates
def _render(figure_id, config):
    """A caption template rendered as Snakemake's report renders it."""
    import types

    import jinja2

    template = (PROJECT / "report" / f"{figure_id}.rst").read_text()
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
    return env.from_string(template).render(snakemake=types.SimpleNamespace(config=config))


@pytest.mark.parametrize("line", [1, 2, 3, 4, 11, 12, 21, 22, 23, 113])
def test_captions_name_the_configured_tdm1_line(config, line):
    from sepher.figures.labels import line_adjective

    config["survival"]["tdm1_line"] = line
    fig7 = _render("fig7_km_pfs2", config)
    assert f"Progression-free survival on {line_adjective(line)} T-DM1 (PFS2)" in fig7
    assert f"the {line_adjective(line)} patients" in _render("fig5_cohort_flow", config)
    assert "{" not in fig7 and "%" not in fig7.splitlines()[0]


def test_captions_name_the_configured_drug(config):
    config["doseresponse"]["drug"] = "trastuzumab deruxtecan"
    for figure_id in ("fig1_dose_response", "fig3_sequential_exposure"):
        text = _render(figure_id, config)
        assert "trastuzumab deruxtecan" in text
        assert "T-DM1" not in text, figure_id


def test_demo_captions_unchanged(config):
    """With the demo config the templates read as they always did."""
    assert _render("fig7_km_pfs2", config).startswith(
        "**Figure 7. Progression-free survival on second-line T-DM1 (PFS2)** from T-DM1 start to"
    )
    assert "and the second-line patients split by first-line pertuzumab" in _render(
        "fig5_cohort_flow", config
    )
    assert _render("fig1_dose_response", config).startswith("**Figure 1. T-DM1 activity in")
    assert "(b) T-DM1 relative IC50" in _render("fig3_sequential_exposure", config)


# --------------------------------------------------------------------------- dose-response
# A replicate-level comparisons table (the columns doseresponse_compare writes).
IC50 = pd.DataFrame(
    {
        "cell_line": ["BT474", "SKBR3", "SKBR3"],
        "drug": "T-DM1",
        "family": ["fig1", "fig1", "fig3"],
        "numerator": ["TP-R", "TP-R", "T-R>T"],
        "denominator": "T-R",
        "test": ["paired t", "Welch t", "paired t"],
        "n_replicates_numerator": [3, 3, 3],
        "n_replicates_denominator": [3, 2, 3],
        "n_pairs": [3, float("nan"), 3],
        "ratio": [4.673, 6.618, 1.264],
        "lower": [3.17, 5.13, 0.81],
        "upper": [6.18, 8.11, 1.97],
        "p": [0.003, 0.004, 0.25],
        "p_adjusted": [0.006, 0.006, 0.25],
        "multiplicity": "holm",
        "technical_ratio": [4.67, 6.62, 1.26],
        "conf_level": 0.95,
    }
)
PLATE_QC = pd.DataFrame(
    {
        "plate_id": ["BT474-TR-B1", "SKBR3-TR-B2", "SKBR3-TPR-B1", "SKBR3-T0-B1"],
        "z_prime": [0.31, 0.72, 0.80, float("nan")],
        "z_prime_reference": ["kill", "blank", "kill", float("nan")],
        "signal_window": [1.2, 6.0, 8.0, float("nan")],
        "qc_pass": [False, False, True, True],
        "qc_action": ["excluded", "flagged", float("nan"), float("nan")],
        "flags": ["Z' 0.31 < 0.5", "vehicle CV 21.0% > 20%", float("nan"), float("nan")],
    }
)


def test_ic50_caption_names_test_replicates_and_adjusted_p():
    text = caption_numbers("fig1_dose_response", {"ic50_comparisons": IC50}, {})
    assert text.startswith("**This run.** T-DM1 IC50 ratio (relative ED50; unit: biological")
    assert "BT474 TP-R / T-R 4.67 (95% CI 3.17-6.18), paired t, 3 replicate pairs, " in text
    assert "Holm-adjusted p = 0.0060" in text
    assert "SKBR3 TP-R / T-R 6.62 (95% CI 5.13-8.11), Welch t, 3 vs 2 replicates" in text
    assert "T-R>T" not in text  # fig 3's family is not fig 1's
    assert "technical_* columns" in text
    fig3 = caption_numbers("fig3_sequential_exposure", {"ic50_comparisons": IC50}, {})
    assert "SKBR3 T-R>T / T-R 1.26" in fig3 and "TP-R / T-R" not in fig3


def test_old_ic50_table_reads_as_unadjusted_well_level():
    old = IC50.drop(columns=["p_adjusted", "multiplicity", "test", "family"])
    text = caption_numbers("fig1_dose_response", {"ic50_comparisons": old}, {})
    assert "wells as units, unadjusted" in text and "BT474 TP-R / T-R 4.67" in text


def test_qc_captions_list_excluded_plates_by_id():
    fig1 = caption_numbers(
        "fig1_dose_response", {"ic50_comparisons": IC50, "plate_qc": PLATE_QC}, {}
    )
    assert "Plates excluded by QC (not fitted, not drawn): BT474-TR-B1 (Z' 0.31 < 0.5)." in fig1
    s2 = caption_numbers(
        "figS2_dose_response_qc", {"plate_qc": PLATE_QC}, {"doseresponse": {"min_z_prime": 0.5}}
    )
    assert "Z'-factor of the 3 treated plates median 0.72 (range 0.31 to 0.80), 1 below 0.5" in s2
    assert "(reference: 1 blank, 2 kill control)" in s2
    assert "1 plate(s) excluded from every fit: BT474-TR-B1 (Z' 0.31 < 0.5)" in s2
    assert "1 flagged and kept: SKBR3-TR-B2 (vehicle CV 21.0% > 20%)" in s2


def test_metrics_caption_counts_not_reached_and_gr():
    by_rep = pd.DataFrame(
        {
            "cell_line": ["SKBR3"] * 4,
            "condition": ["TP-R", "TP-R", "TP-R", "T-R"],
            "drug": ["T-DM1", "T-DM1", "T-DM1", "pertuzumab"],
            "replicate": [1, 2, 3, 1],
            "ic50_abs_reached": [True, False, True, False],
            "gr_max": [-0.3, -0.2, float("nan"), float("nan")],
        }
    )
    text = caption_numbers(
        "figS10_dose_response_metrics",
        {"by_replicate": by_rep, "plate_qc": PLATE_QC},
        {"doseresponse": {"drug": "T-DM1"}},
    )
    assert "3 replicate fits; absolute IC50 reached in 2 (not reached: SKBR3 TP-R 1)" in text
    assert "GR metrics from time-zero plates in 2 fits" in text
    assert "left out: BT474-TR-B1 (Z' 0.31 < 0.5)." in text


def test_methods_state_the_replicate_level_dose_response_analysis(config):
    from sepher.report.methods import doseresponse_counts

    fits = pd.DataFrame({"cell_line": ["BT474", "SKBR3"]})
    counts = {"doseresponse": doseresponse_counts(fits, PLATE_QC)}
    assert counts["doseresponse"]["excluded_plates"] == [("BT474-TR-B1", "Z' 0.31 < 0.5")]
    text = methods_markdown(config, counts)
    section = text.split("## In vitro (dose-response)")[1].split("\n## ")[0]
    for words in (
        "Unit of analysis: the biological replicate",
        "paired t test on the per-replicate differences when the two conditions share "
        "replicate ids",
        "Welch's t test",
        "95% t-based confidence interval on the log scale",
        "Holm step-down adjustment (family-wise error rate) (`stats.multiplicity: holm`)",
        "drc `EDcomp`",
        "`technical_*` columns",
        "kill-control wells when it has them, else its blank wells",
        "signal window",
        "vehicle CV above 20.0%",
        "Excluded plates (1): BT474-TR-B1 (Z' 0.31 < 0.5).",
        "Flagged and kept: SKBR3-TR-B2 (vehicle CV 21.0% > 20%).",
        "absolute IC50 = dose at 50% of vehicle",
    ):
        assert words in section, words
    config["stats"]["multiplicity"] = "bh"
    config["doseresponse"]["inference"] = "mixed"
    config["doseresponse"]["qc_action"] = "flag"
    changed = methods_markdown(config, counts)
    assert "Benjamini-Hochberg adjustment (false discovery rate) (`stats.multiplicity: bh`)" in (
        changed
    )
    assert "random intercept" in changed and "`doseresponse.inference: mixed`" in changed
    assert "failing plates are fitted and flagged (`doseresponse.qc_action: flag`)" in changed
    # the IF section states its multiplicity too (the IF measurement bullets are the imaging
    # helpers' place)
    assert "IF p-values adjusted within each figure's family" in changed


def test_dose_response_captions_follow_the_config(config):
    fig1 = _render("fig1_dose_response", config)
    assert "paired t test on log IC50" in fig1 and "(Holm;" in fig1
    assert "**relative** IC50" in fig1 and "(c + d) / 2" in fig1
    config["stats"]["multiplicity"] = "bh"
    config["doseresponse"]["inference"] = "mixed"
    config["doseresponse"]["qc_action"] = "flag"
    fig1 = _render("fig1_dose_response", config)
    assert "(Benjamini-Hochberg;" in fig1 and "linear mixed model" in fig1
    assert "paired t test" not in fig1
    assert "fitted and flagged (``qc_action: flag``)" in _render("figS2_dose_response_qc", config)
    s10 = _render("figS10_dose_response_metrics", config)
    assert s10.startswith("**Figure S10. T-DM1 dose-response metrics per biological replicate**")
    assert "Benjamini-Hochberg" in s10 and "{" not in s10
    config["doseresponse"]["drug"] = "trastuzumab deruxtecan"
    assert "T-DM1" not in _render("figS10_dose_response_metrics", config)


def test_library_modules_cache_follows_edits(tmp_path):
    """The import graph (rules' library inputs) is parsed once per file version: an edit
    that adds an import is seen by the next call in the same process."""
    import os

    from sepher.workflow import library_modules

    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("import os\n")
    (package / "b.py").write_text("")
    script = tmp_path / "entry.py"
    script.write_text("from pkg import a\n")
    first = library_modules(script, package)
    assert first == sorted([str(package / "__init__.py"), str(package / "a.py")])
    assert library_modules(script, package) == first
    (package / "a.py").write_text("import os\nfrom pkg import b\n")
    stat = (package / "a.py").stat()
    os.utime(package / "a.py", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert str(package / "b.py") in library_modules(script, package)
