"""Rule report_methods: the Methods section from config, counts and software versions."""

import json
from pathlib import Path

from sepher.io.tables import read_table
from sepher.report import markdown_to_html, methods_markdown
from sepher.report.methods import stage_counts
from sepher.workflow import run_logged, snakemake_or_cli


def main(smk):
    tables = {
        name: read_table(path)
        for name, path in smk.input.items()
        if name not in ("lib", "provenance")
    }
    software = json.loads(Path(smk.input.provenance).read_text())
    markdown = methods_markdown(dict(smk.params.config), stage_counts(tables), software)
    Path(smk.output.markdown).write_text(markdown)
    Path(smk.output.html).parent.mkdir(parents=True, exist_ok=True)
    Path(smk.output.html).write_text(markdown_to_html(markdown))


run_logged(snakemake_or_cli(globals()), main)
