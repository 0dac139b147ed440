"""Rule report_table: one aggregate result table as a browsable HTML page."""

from pathlib import Path

from sepher.io.tables import read_table
from sepher.report import number_patients, table_html
from sepher.workflow import run_logged, snakemake_or_cli


def main(smk):
    table = number_patients(read_table(smk.input.table))
    source = smk.params.source
    html = table_html(
        table,
        title=smk.params.title,
        note=f"{source}: {len(table)} rows.",
        csv_name=Path(source).name,
    )
    Path(smk.output.html).parent.mkdir(parents=True, exist_ok=True)
    Path(smk.output.html).write_text(html)


run_logged(snakemake_or_cli(globals()), main)
