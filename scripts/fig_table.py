"""Rules table1_characteristics, table2_cox, table3_response: tables rendered as figures."""

from sepher.figures.style import house_style, save_figure
from sepher.figures.tables import (
    TABLE1_FOOTNOTE,
    TABLE_TITLES,
    render_table,
    response_for_print,
    table1_for_print,
    table2_for_print,
)
from sepher.io.tables import read_table
from sepher.workflow import run_logged, snakemake_or_cli


def main(smk):
    kind = smk.params.kind
    if kind == "table1":
        table, footnote = table1_for_print(read_table(smk.input.table)), TABLE1_FOOTNOTE
    elif kind == "response":
        table, footnote = response_for_print(read_table(smk.input.table))
    else:
        table, footnote = table2_for_print(
            read_table(smk.input.table),
            tdm1_line=smk.params.tdm1_line,
            strata=list(smk.params.strata),
            entry=bool(smk.params.delayed_entry),
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
