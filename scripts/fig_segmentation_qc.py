"""Rule figS1_segmentation_qc: overlays per condition, QC flag counts, flagged fields."""

from sepher.figures.imaging_plots import plot_segmentation_qc
from sepher.figures.inputs import segmentation_qc_inputs
from sepher.figures.style import house_style, save_figure
from sepher.io.tables import read_table
from sepher.workflow import run_logged, snakemake_or_cli


def main(smk):
    p = smk.params
    data = segmentation_qc_inputs(
        read_table(smk.input.cells), read_table(smk.input.image_qc), p.fields, p.groups
    )
    with house_style(smk.input.style):
        fig = plot_segmentation_qc(
            data["overlays"],
            data["flagged"],
            data["flag_counts"],
            n_flagged=data["n_flagged"],
            simulated=p.simulated,
        )
        save_figure(fig, smk.output.pdf, smk.output.png)


run_logged(snakemake_or_cli(globals()), main)
