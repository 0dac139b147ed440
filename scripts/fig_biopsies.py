"""Rule fig4_biopsies: IHC tiles and paired pre/post biopsy scores per patient."""

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from sepher.figures.ihc_plots import central_field, plot_biopsies, representative_tiles
from sepher.figures.style import house_style, save_figure
from sepher.io.tables import read_table
from sepher.workflow import run_logged


def main(smk):
    logging.getLogger("fontTools").setLevel(logging.WARNING)  # PDF font subsetting chatter
    p = smk.params
    samples = read_table(smk.input.samples)
    tiles = pd.DataFrame(p.tiles)
    samples["patient_id"] = samples["patient_id"].astype(str)
    own_h = {}
    for path in smk.input.summaries:
        summary = json.loads(Path(path).read_text())
        own_h[summary["image_id"]] = summary["h_score"]
    tiles["h_score"] = tiles["image_id"].map(own_h)
    overlays = {Path(path).name.removesuffix(".png"): path for path in smk.input.overlays}
    shown = []
    for tile in representative_tiles(tiles, samples).itertuples():
        print(f"{tile.patient_id} {tile.timepoint}: tile {tile.image_id}")
        image = np.asarray(Image.open(overlays[tile.image_id]).convert("RGB"))
        shown.append(
            {
                "patient_id": tile.patient_id,
                "timepoint": tile.timepoint,
                "pixel_size_um": tile.pixel_size_um,
                "image": central_field(image, tile.pixel_size_um, p.field_um),
            }
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


run_logged(snakemake, main)
