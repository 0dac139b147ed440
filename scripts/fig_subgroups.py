"""Rule figS8_subgroups: subgroup forest plot of the group hazard ratio."""

from sepher.figures.cohort_plots import plot_subgroups
from sepher.figures.labels import variable_label
from sepher.figures.style import house_style, save_figure
from sepher.io.tables import read_table
from sepher.workflow import run_logged, snakemake_or_cli


def main(smk):
    p = smk.params
    table = read_table(smk.input.subgroups)
    table["variable_label"] = [
        "All patients" if v == "all" else variable_label(v) for v in table["variable"]
    ]
    labels = list(p.group_labels)
    with house_style(smk.input.style):
        fig = plot_subgroups(
            table,
            endpoint_label="Overall survival",
            endpoint=p.endpoint,
            comparison=f"Hazard ratio, {labels[1]} vs {labels[0]}",
            simulated=p.simulated,
            title="Subgroups: univariable Cox within each level; interaction by likelihood ratio",
        )
        save_figure(fig, smk.output.pdf, smk.output.png)


run_logged(snakemake_or_cli(globals()), main)
