"""Rule figS2_dose_response_qc: plate heat maps, Z' and signal window per plate, the plates
failing QC, fit residuals."""

from sepher.figures.doseresponse_plots import plot_dose_response_qc
from sepher.figures.style import house_style, save_figure
from sepher.io.tables import read_table
from sepher.workflow import run_logged, snakemake_or_cli


def main(smk):
    p = smk.params
    with house_style(smk.input.style):
        fig = plot_dose_response_qc(
            read_table(smk.input.viability),
            read_table(smk.input.qc),
            read_table(smk.input.residuals),
            drug=p.drug,
            min_z_prime=p.min_z_prime,
            n_heatmaps=p.n_heatmaps,
            simulated=p.simulated,
            qc_action=p.qc_action if "qc_action" in p.keys() else "exclude",
        )
        save_figure(fig, smk.output.pdf, smk.output.png)


run_logged(snakemake_or_cli(globals()), main)
