"""Rule fig3_sequential_exposure: membrane HER2 and T-DM1 IC50 per sequence.

The IC50 panel is at replicate level when the rule passes the dose-response
``fits_by_replicate`` and ``ic50_comparisons`` (``comparisons.csv``) tables;
with the pooled ``fits`` only it shows the pooled fits; with none (plates
not configured) it is left out.
"""

from sepher.figures.imaging_plots import plot_sequential_exposure
from sepher.figures.style import house_style, save_figure
from sepher.io.tables import read_table
from sepher.workflow import run_logged, snakemake_or_cli


def optional_table(smk, name):
    """The table of input `name` ([] or absent when plates are not configured), or None."""
    files = smk.input.get(name, [])
    files = [files] if isinstance(files, str) else list(files)
    return read_table(files[0]) if files else None


def main(smk):
    p = smk.params
    summary = read_table(smk.input.summary)
    with house_style(smk.input.style):
        fig = plot_sequential_exposure(
            read_table(smk.input.replicates),
            summary[summary["level"] == "condition"],
            read_table(smk.input.comparisons),
            optional_table(smk, "fits"),
            conditions=list(p.conditions),
            lines=list(dict.fromkeys(line for line, _ in p.groups)),
            drug=p.drug,
            conf_level=p.conf_level,
            simulated=p.simulated,
            fits_by_replicate=optional_table(smk, "fits_by_replicate"),
            ic50_comparisons=optional_table(smk, "ic50_comparisons"),
        )
        save_figure(fig, smk.output.pdf, smk.output.png)


run_logged(snakemake_or_cli(globals()), main)
