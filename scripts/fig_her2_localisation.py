"""Rule fig2_her2_localisation: IF fields with outlines and HER2 by condition."""

from sepher.figures.imaging_plots import plot_her2_localisation
from sepher.figures.inputs import localisation_fields
from sepher.figures.style import house_style, save_figure
from sepher.io.tables import read_table
from sepher.workflow import run_logged, snakemake_or_cli


def main(smk):
    p = smk.params
    summary = read_table(smk.input.summary)
    per_image = summary[summary["level"] == "image"]
    lines = list(dict.fromkeys(line for line, _ in p.groups))
    fields = localisation_fields(
        per_image, p.fields, line=p.line or lines[0], conditions=p.conditions
    )
    with house_style(smk.input.style):
        fig = plot_her2_localisation(
            fields,
            read_table(smk.input.cells),
            read_table(smk.input.replicates),
            summary[summary["level"] == "condition"],
            read_table(smk.input.comparisons),
            conditions=list(p.conditions),
            lines=lines,
            conf_level=p.conf_level,
            simulated=p.simulated,
        )
        save_figure(fig, smk.output.pdf, smk.output.png)


run_logged(snakemake_or_cli(globals()), main)
