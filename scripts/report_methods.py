"""Rule report_methods: the Methods section from config, counts and software versions."""

import json
from pathlib import Path

from sepher.io.tables import read_table
from sepher.report import markdown_to_html, methods_markdown
from sepher.report.methods import cohort_counts, doseresponse_counts, ihc_counts, imaging_counts
from sepher.workflow import run_logged


def counts_of(smk):
    """Counts of each stage run, from the tables given as named inputs."""
    have = {
        name: read_table(path)
        for name, path in smk.input.items()
        if name not in ("lib", "provenance")
    }
    counts = {}
    if "flow" in have:
        counts["cohort"] = cohort_counts(have["flow"], have["km_medians"])
    if "if_summary" in have:
        summary = have["if_summary"]
        counts["imaging"] = imaging_counts(have["image_qc"], summary[summary["level"] == "image"])
    if "ihc_samples" in have:
        counts["ihc"] = ihc_counts(have["ihc_samples"])
    if "fits" in have:
        counts["doseresponse"] = doseresponse_counts(have["fits"], have.get("plate_qc"))
    return counts


def main(smk):
    software = json.loads(Path(smk.input.provenance).read_text())
    markdown = methods_markdown(dict(smk.params.config), counts_of(smk), software)
    Path(smk.output.markdown).write_text(markdown)
    Path(smk.output.html).parent.mkdir(parents=True, exist_ok=True)
    Path(smk.output.html).write_text(markdown_to_html(markdown))


run_logged(snakemake, main)
