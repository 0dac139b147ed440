"""Rule figS1_segmentation_qc: overlays per condition, QC flag counts, flagged fields,
border-cell exclusion and the segmentation channel per condition."""

from sepher.figures.imaging_plots import (
    border_counts,
    plot_segmentation_qc,
    segmentation_channel_counts,
)
from sepher.figures.inputs import segmentation_qc_inputs
from sepher.figures.style import house_style, save_figure
from sepher.io.tables import read_table
from sepher.workflow import run_logged, snakemake_or_cli


def main(smk):
    p = smk.params
    cells = read_table(smk.input.cells)
    image_qc = read_table(smk.input.image_qc)
    data = segmentation_qc_inputs(cells, image_qc, p.fields, p.groups)
    summary_file = smk.input.get("summary")
    summary = read_table(summary_file) if summary_file else None
    if summary is not None:
        summary = summary[summary["level"] == "condition"]
    border = border_counts(cells=cells, conditions_summary=summary)
    segmentation = (
        segmentation_channel_counts(image_qc) if "segmentation_channel" in image_qc else None
    )
    with house_style(smk.input.style):
        fig = plot_segmentation_qc(
            data["overlays"],
            data["flagged"],
            data["flag_counts"],
            n_flagged=data["n_flagged"],
            simulated=p.simulated,
            border=border,
            segmentation=segmentation,
        )
        save_figure(fig, smk.output.pdf, smk.output.png)


run_logged(snakemake_or_cli(globals()), main)
