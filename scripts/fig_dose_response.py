"""Rule fig1_dose_response: T-DM1 dose-response curves per cell line."""

from sepher.figures.doseresponse_plots import plot_dose_response
from sepher.figures.style import house_style, save_figure
from sepher.io.tables import read_table
from sepher.workflow import run_logged, snakemake_or_cli


def main(smk):
    p = smk.params
    with house_style(smk.input.style):
        fig = plot_dose_response(
            read_table(smk.input.residuals),
            read_table(smk.input.fits),
            read_table(smk.input.curves),
            read_table(smk.input.comparisons),
            drug=p.drug,
            conditions=list(p.conditions),
            conf_level=p.conf_level,
            simulated=p.simulated,
        )
        save_figure(fig, smk.output.pdf, smk.output.png)


run_logged(snakemake_or_cli(globals()), main)
