"""Rule fig3_sequential_exposure: membrane HER2 and T-DM1 IC50 per sequence."""

from sepher.figures.imaging_plots import plot_sequential_exposure
from sepher.figures.style import house_style, save_figure
from sepher.io.tables import read_table
from sepher.workflow import run_logged, snakemake_or_cli


def main(smk):
    p = smk.params
    summary = read_table(smk.input.summary)
    fits_files = list(smk.input.get("fits", []))  # [] when plates are not configured
    fits = read_table(fits_files[0]) if fits_files else None
    with house_style(smk.input.style):
        fig = plot_sequential_exposure(
            read_table(smk.input.replicates),
            summary[summary["level"] == "condition"],
            read_table(smk.input.comparisons),
            fits,
            conditions=list(p.conditions),
            lines=list(dict.fromkeys(line for line, _ in p.groups)),
            drug=p.drug,
            conf_level=p.conf_level,
            simulated=p.simulated,
        )
        save_figure(fig, smk.output.pdf, smk.output.png)


run_logged(snakemake_or_cli(globals()), main)
