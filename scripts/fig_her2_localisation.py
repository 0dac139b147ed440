"""Rule fig2_her2_localisation: IF fields with outlines and HER2 by condition."""

from sepher.figures.imaging_plots import choose_representative, plot_her2_localisation
from sepher.figures.style import house_style, save_figure
from sepher.imaging import read_image
from sepher.imaging.field import read_labels
from sepher.io.tables import read_table
from sepher.workflow import run_logged


def load_field(image_id, spec):
    image, pixel_size_um = read_image(spec["file"], pixel_size_um=spec["pixel_size_um"])
    return {
        "image_id": image_id,
        "her2": image[spec["her2_channel"]],
        "nuclear": image[spec["nuclear_channel"]],
        "nuclei": read_labels(spec, "nuclei"),
        "cells": read_labels(spec, "cells"),
        "pixel_size_um": pixel_size_um,
    }


def main(smk):
    p = smk.params
    cells = read_table(smk.input.cells)
    summary = read_table(smk.input.summary)
    replicates = read_table(smk.input.replicates)
    comparisons = read_table(smk.input.comparisons)
    per_image = summary[summary["level"] == "image"]
    per_condition = summary[summary["level"] == "condition"]
    lines = list(dict.fromkeys(line for line, _ in p.groups))
    line = p.line or lines[0]
    chosen = choose_representative(per_image[per_image["cell_line"] == line])
    fields = []
    for condition in p.conditions:
        if (line, condition) not in chosen.index:
            continue
        image_id = chosen[(line, condition)]
        field = load_field(image_id, p.fields[image_id])
        fields.append({**field, "cell_line": line, "condition": condition})
    with house_style(smk.input.style):
        fig = plot_her2_localisation(
            fields,
            cells,
            replicates,
            per_condition,
            comparisons,
            conditions=list(p.conditions),
            lines=lines,
            conf_level=p.conf_level,
            simulated=p.simulated,
        )
        save_figure(fig, smk.output.pdf, smk.output.png)


run_logged(snakemake, main)
