"""Rule fig4_biopsies: brightfield IHC tiles with class outlines and paired pre/post
biopsy scores per patient (ASCO/CAP 2018 and 2023 categories, standard H-score)."""

import pandas as pd

from sepher.figures.ihc_plots import plot_biopsies
from sepher.figures.inputs import biopsy_tiles
from sepher.figures.style import house_style, save_figure
from sepher.io.tables import read_table
from sepher.workflow import run_logged, snakemake_or_cli


def main(smk):
    p = smk.params
    samples = read_table(smk.input.samples)
    samples["patient_id"] = samples["patient_id"].astype(str)
    shown = biopsy_tiles(
        samples,
        pd.DataFrame(p.tiles),
        smk.input.summaries,
        smk.input.overlays,
        field_um=p.field_um,
    )
    with house_style(smk.input.style):
        fig = plot_biopsies(
            shown,
            samples,
            scale_bar_um=p.scale_bar_um,
            cutoff_pct=p.cutoff_pct,
            simulated=p.simulated,
        )
        save_figure(fig, smk.output.pdf, smk.output.png)


run_logged(snakemake_or_cli(globals()), main)
