"""Rule ihc_score_tile: HER2 membrane scoring of one H-DAB tile."""

from sepher.ihc import (
    IHCParams,
    class_overlay,
    dab_greyscale,
    rgb_to_od,
    score_image,
    stain_matrix,
    unmix_h_dab,
)
from sepher.ihc.io import read_ihc_rgb, write_label_tiff, write_rgb_png
from sepher.io.tables import write_json, write_table
from sepher.workflow import run_logged


def main(smk):
    tile = smk.params.tile
    params = IHCParams.from_dict(smk.params.scoring)
    rgb = read_ihc_rgb(smk.input.image)
    pixel_size_um = tile["pixel_size_um"]
    cells, labels, summary = score_image(rgb, pixel_size_um, params)
    print(f"{tile['image_id']}: {len(cells)} cells, {summary['n_tumour_cells']} tumour cells")
    ids = {key: tile[key] for key in ("image_id", "patient_id", "timepoint")}
    table = cells.assign(**ids)[[*ids, *cells.columns]].sort_values("cell_id")
    write_table(table, smk.output.cells)
    write_json({**ids, "pixel_size_um": pixel_size_um, **summary}, smk.output.summary)
    write_label_tiff(labels["nuclei"], smk.output.nuclei, pixel_size_um)
    write_label_tiff(labels["cells"], smk.output.cell_labels, pixel_size_um)
    # fig4's tile: the DAB channel (vectors as used: fixed, or estimated per tile)
    # with each cell's outline in its HER2 class colour
    if params.estimate_stains:
        matrix = stain_matrix(summary["hematoxylin_vector"], summary["dab_vector"])
    else:
        matrix = stain_matrix(params.hematoxylin, params.dab)
    _, dab = unmix_h_dab(rgb_to_od(rgb, params.background_intensity), matrix)
    write_rgb_png(class_overlay(dab_greyscale(dab), labels["cells"], cells), smk.output.overlay)


run_logged(snakemake, main)
