"""Rule figS1_segmentation_qc: overlays per condition, QC flag counts, flagged fields."""

from sepher.figures.imaging_plots import field_rgb, plot_segmentation_qc
from sepher.figures.style import house_style, save_figure
from sepher.imaging import read_image
from sepher.imaging.field import read_labels
from sepher.io.tables import read_table
from sepher.workflow import run_logged

CELL_FLAGS = ["border", "saturated", "implausible_size"]
#: Flagged fields shown (the first by image id); all are counted in panel b.
MAX_FLAGGED_SHOWN = 8


def overlay(spec, label):
    image, pixel_size_um = read_image(spec["file"], pixel_size_um=spec["pixel_size_um"])
    rgb = field_rgb(
        image[spec["her2_channel"]],
        image[spec["nuclear_channel"]],
        nuclei=read_labels(spec, "nuclei"),
        cells=read_labels(spec, "cells"),
    )
    return {"label": label, "rgb": rgb, "pixel_size_um": pixel_size_um}


def main(smk):
    p = smk.params
    cells = read_table(smk.input.cells)
    image_qc = read_table(smk.input.image_qc)
    kept = image_qc[~image_qc["image_excluded"].astype(bool)]
    # first good field (by image id) of each condition: a deterministic sample
    sample = kept.sort_values("image_id").groupby(["cell_line", "condition"], sort=False).first()
    sample = sample.reset_index()
    order = {tuple(group): i for i, group in enumerate(p.groups)}
    sample["order"] = [order[(r.cell_line, r.condition)] for r in sample.itertuples()]
    sample = sample.sort_values("order")
    overlays = [
        overlay(p.fields[r.image_id], f"{r.cell_line} {r.condition}") for r in sample.itertuples()
    ]
    bad = image_qc[image_qc["image_excluded"].astype(bool)].sort_values("image_id")
    flagged = [
        overlay(
            p.fields[r.image_id],
            f"{r.cell_line} {r.condition}\n{r.image_flags.replace('_', ' ')}",
        )
        for r in bad.head(MAX_FLAGGED_SHOWN).itertuples()
    ]
    grouped = cells.groupby(["cell_line", "condition"], sort=False)
    counts = (grouped[CELL_FLAGS].mean() * 100).reset_index()
    images_flagged = bad.groupby(["cell_line", "condition"]).size()
    counts["images_flagged"] = [
        int(images_flagged.get((r.cell_line, r.condition), 0)) for r in counts.itertuples()
    ]
    counts["order"] = [order[(r.cell_line, r.condition)] for r in counts.itertuples()]
    counts = counts.sort_values("order")
    counts.index = counts["cell_line"] + " " + counts["condition"]
    with house_style(smk.input.style):
        fig = plot_segmentation_qc(
            overlays, flagged, counts, n_flagged=len(bad), simulated=p.simulated
        )
        save_figure(fig, smk.output.pdf, smk.output.png)


run_logged(snakemake, main)
