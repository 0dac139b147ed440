"""Sample sheets of one assay run end to end (issue 13, point 5).

An IHC-only sheet has no IF column at all (no cell_line, condition, replicate,
her2_channel, nuclear_channel, membrane_channel) and an IF-only sheet no IHC
column (patient_id, timepoint). Each is cut from the demo sheet, kept small (a
few fields), and run through the workflow's default target set with only the
images input configured: the assay's figures and tables are made, the other
assay makes nothing.
"""

import csv
import shutil
from pathlib import Path

import pytest

from sepher.io.samplesheet import COMMON_COLUMNS, IF_SHEET_COLUMNS, IHC_COLUMNS

from .workflow import DEMO, demo_sheet_rows, snakemake, write_config

pytestmark = pytest.mark.slow

#: The columns of each one-assay sheet.
ASSAY_COLUMNS = {"IHC": list(COMMON_COLUMNS + IHC_COLUMNS), "IF": list(IF_SHEET_COLUMNS)}
#: Small studies: two patients with a pre and a post biopsy; field 1 of every
#: condition x replicate of one cell line (no QC-failure fields).
KEEP = {
    "IHC": lambda row: row["patient_id"] in ("BX-02", "BX-03"),
    "IF": lambda row: row["cell_line"] == "SKBR3",
}
IF_FIGURES = ("fig2_her2_localisation", "fig3_sequential_exposure", "figS1_segmentation_qc")


def one_assay_sheet(directory, assay):
    """Write ``<directory>/inputs/images.tsv`` with the demo rows of `assay` only
    and only its columns, the images copied beside it; return the sheet."""
    inputs = Path(directory) / "inputs"
    _, rows = demo_sheet_rows(fields=("1",), bad_fields=False)
    rows = [row for row in rows if row["assay"] == assay and KEEP[assay](row)]
    columns = ASSAY_COLUMNS[assay]
    for row in rows:
        (inputs / row["path"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(DEMO / row["path"], inputs / row["path"])
    sheet = inputs / "images.tsv"
    with open(sheet, "w", newline="") as stream:
        writer = csv.DictWriter(
            stream, fieldnames=columns, delimiter="\t", lineterminator="\n", extrasaction="ignore"
        )
        writer.writeheader()
        writer.writerows(rows)
    return sheet


def made(directory):
    """Files under results/ (relative paths), logs and benchmarks left out."""
    results = Path(directory) / "results"
    return {
        str(path.relative_to(results))
        for path in results.rglob("*")
        if path.is_file() and path.relative_to(results).parts[0] not in ("logs", "benchmarks")
    }


def run(directory, assay):
    sheet = one_assay_sheet(directory, assay)
    header = sheet.read_text().splitlines()[0].split("\t")
    assert header == ASSAY_COLUMNS[assay]
    # a sheet of the required columns only has no reference_score: literature thresholds
    write_config(directory, images=sheet, **{"ihc.calibration": "none"})
    result = snakemake(directory, "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    return made(directory)


def test_ihc_only_sheet_runs_to_fig4(tmp_path):
    files = run(tmp_path, "IHC")
    assert {
        "figures/fig4_biopsies.pdf",
        "figures/fig4_biopsies.png",
        "imaging/ihc_cells.csv",
        "imaging/ihc_samples.csv",
        "imaging/ihc_paired.csv",
        "provenance.json",
        "methods.md",
        "report/captions/fig4_biopsies.rst",
        "report/tables/ihc_samples.html",
    } <= files
    figures = {f for f in files if f.startswith("figures/")}
    assert figures == {"figures/fig4_biopsies.pdf", "figures/fig4_biopsies.png"}
    assert not [f for f in files if "if_" in f or f.startswith("imaging/labels/if")]
    assert not [f for f in files if f.startswith(("survival/", "doseresponse/"))]


def test_if_only_sheet_runs_to_figs_2_3_s1(tmp_path):
    files = run(tmp_path, "IF")
    expected = {f"figures/{figure_id}.{ext}" for figure_id in IF_FIGURES for ext in ("pdf", "png")}
    assert {f for f in files if f.startswith("figures/")} == expected
    assert {
        "imaging/if_cells.csv",
        "imaging/if_summary.csv",
        "imaging/if_replicates.csv",
        "imaging/if_comparisons.csv",
        "provenance.json",
        "methods.md",
        "report/captions/fig2_her2_localisation.rst",
        "report/tables/if_summary.html",
    } <= files
    assert not [f for f in files if "ihc" in f]
    assert not [f for f in files if f.startswith(("survival/", "doseresponse/"))]


@pytest.mark.parametrize(
    "assay, target, expected",
    [
        ("IHC", "fig2_her2_localisation", "expected at least one IF row (assay IF)"),
        ("IF", "fig4_biopsies", "expected at least one IHC row (assay IHC)"),
    ],
)
def test_asking_for_the_other_assays_figure_says_so(tmp_path, assay, target, expected):
    sheet = one_assay_sheet(tmp_path, assay)
    write_config(tmp_path, images=sheet, **{"ihc.calibration": "none"})
    result = snakemake(tmp_path, "--cores", "1", "--dry-run", target)
    assert result.returncode != 0
    message = f"Invalid input: file {sheet}, column 'assay'; {expected}"
    output = result.stdout + result.stderr  # Snakemake prints input function errors on stdout
    assert output.count(message) == 1, output[-3000:]
