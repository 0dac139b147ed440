"""Rules table1_characteristics and table2_cox: tables rendered as figures."""

from sepher.figures.style import house_style, save_figure
from sepher.figures.tables import (
    TABLE1_FOOTNOTE,
    TABLE_TITLES,
    render_table,
    table1_for_print,
    table2_for_print,
)
from sepher.io.tables import read_table
from sepher.workflow import run_logged, snakemake_or_cli


def main(smk):
    kind = smk.params.kind
    if kind == "table1":
        table, footnote = table1_for_print(read_table(smk.input.table)), TABLE1_FOOTNOTE
    else:
        table, footnote = table2_for_print(
            read_table(smk.input.table), tdm1_line=smk.params.tdm1_line
        )
    with house_style(smk.input.style):
        fig = render_table(
            table,
            title=TABLE_TITLES[kind],
            simulated=smk.params.simulated,
            footnote=footnote,
            bold_groups=kind == "table2",  # endpoint headings of Table 2
        )
        save_figure(fig, smk.output.pdf, smk.output.png)


run_logged(snakemake_or_cli(globals()), main)
