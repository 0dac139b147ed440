"""Rule fig8_cox_forest: forest plot of the multivariate Cox models."""

from sepher.figures.forest import plot_forest
from sepher.figures.labels import VARIABLE_LABELS, endpoint_names
from sepher.figures.style import house_style, save_figure
from sepher.io.tables import read_table
from sepher.workflow import run_logged, snakemake_or_cli


def main(smk):
    cox = read_table(smk.input.cox)
    with house_style(smk.input.style):
        fig = plot_forest(
            cox,
            endpoints=("OS", "PFS2"),
            endpoint_labels=endpoint_names(smk.params.tdm1_line),
            simulated=smk.params.simulated,
            term_labels=VARIABLE_LABELS,
        )
        save_figure(fig, smk.output.pdf, smk.output.png)


run_logged(snakemake_or_cli(globals()), main)
