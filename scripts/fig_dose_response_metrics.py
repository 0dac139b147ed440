"""Rule figS10_dose_response_metrics: absolute IC50, normalised AUC and GR metrics per
biological replicate, with replicate means, t CIs and a table of the same numbers."""

from sepher.figures.doseresponse_plots import plot_dose_response_metrics
from sepher.figures.style import house_style, save_figure
from sepher.io.tables import read_table
from sepher.workflow import run_logged, snakemake_or_cli


def main(smk):
    p = smk.params
    with house_style(smk.input.style):
        fig = plot_dose_response_metrics(
            read_table(smk.input.fits),
            read_table(smk.input.by_replicate),
            qc=read_table(smk.input.qc),
            comparisons=read_table(smk.input.comparisons),
            drug=p.drug,
            conf_level=p.conf_level,
            simulated=p.simulated,
        )
        save_figure(fig, smk.output.pdf, smk.output.png)


run_logged(snakemake_or_cli(globals()), main)
