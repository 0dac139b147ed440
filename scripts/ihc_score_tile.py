"""Rule ihc_score_tile: HER2 membrane scoring of one H-DAB tile."""

from sepher.ihc import IHCParams
from sepher.ihc.io import read_ihc_rgb, write_label_tiff, write_rgb_png
from sepher.ihc.stage import score_slide_row, score_tile
from sepher.ihc.wsi import is_whole_slide
from sepher.io.tables import write_json, write_table
from sepher.workflow import run_logged, snakemake_or_cli


def main(smk):
    tile = smk.params.tile
    params = IHCParams.from_dict(smk.params.scoring)
    if is_whole_slide(smk.input.image):
        roi = tile.get("roi_geojson") or None
        cells, labels, summary, overlay = score_slide_row(smk.input.image, tile, params, roi=roi)
    else:
        rgb = read_ihc_rgb(smk.input.image)
        cells, labels, summary, overlay = score_tile(rgb, tile, params)
    print(f"{tile['image_id']}: {len(cells)} cells, {summary['n_tumour_cells']} tumour cells")
    write_table(cells, smk.output.cells)
    write_json(summary, smk.output.summary)
    write_label_tiff(labels["nuclei"], smk.output.nuclei, summary["pixel_size_um"])
    write_label_tiff(labels["cells"], smk.output.cell_labels, summary["pixel_size_um"])
    write_rgb_png(overlay, smk.output.overlay)


run_logged(snakemake_or_cli(globals()), main)
