"""Rule fig5_cohort_flow: the cohort flow diagram, counts from the data."""

from sepher.figures.flow import plot_flow
from sepher.figures.style import house_style, save_figure
from sepher.io.tables import read_table
from sepher.workflow import run_logged, snakemake_or_cli


def main(smk):
    flow = read_table(smk.input.flow)
    flow["parent_id"] = flow["parent_id"].fillna("")
    with house_style(smk.input.style):
        fig = plot_flow(flow, simulated=smk.params.simulated)
        save_figure(fig, smk.output.pdf, smk.output.png)


run_logged(snakemake_or_cli(globals()), main)
