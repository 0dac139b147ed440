"""Rule imaging_measure_if: one IF image -> QC, nuclei, cells, per-cell HER2."""

import numpy as np
import tifffile

from sepher.imaging import (
    image_qc,
    measure_cells,
    read_image,
    segment_cells,
    segment_nuclei,
    select_channel,
)
from sepher.io.tables import write_json, write_table
from sepher.workflow import run_logged

COMPARTMENTS = ("membrane", "cytoplasm", "nucleus")


def write_labels(labels, path):
    """Compressed label TIFF, uint16 when the labels fit, without timestamps."""
    dtype = np.uint16 if labels.max() <= np.iinfo(np.uint16).max else np.uint32
    tifffile.imwrite(
        path,
        labels.astype(dtype),
        compression="zlib",
        metadata=None,
        software=False,
        datetime=False,
    )


def main(smk):
    p, s = smk.params, smk.params.settings
    image, pixel_size_um = read_image(smk.input.image, pixel_size_um=p.pixel_size_um)
    channels = {
        "her2": select_channel(image, p.her2_channel, smk.input.image, column="her2_channel"),
        "nuclear": select_channel(
            image, p.nuclear_channel, smk.input.image, column="nuclear_channel"
        ),
    }
    if p.membrane_channel >= 0:
        channels["membrane"] = select_channel(
            image, p.membrane_channel, smk.input.image, column="membrane_channel"
        )
    qc = image_qc(channels, max_saturated_fraction=s["max_saturated_fraction"])
    nuclei = segment_nuclei(
        channels["nuclear"],
        pixel_size_um,
        min_area_um2=s["nuclei_min_area_um2"],
        max_area_um2=s["nuclei_max_area_um2"],
        smoothing_sigma_um=s["nuclei_smoothing_um"],
        background_size_um=s["nuclei_background_um"],
        threshold_method=s["nuclei_threshold"],
    )
    cells = segment_cells(
        nuclei,
        channels.get("membrane", channels["her2"]),
        pixel_size_um,
        method=s["cell_method"],
        expand_um=s["cell_expand_um"],
        max_radius_um=s["cell_max_radius_um"],
        smoothing_sigma_um=s["cell_smoothing_um"],
    )
    table = measure_cells(
        channels,
        nuclei,
        cells,
        pixel_size_um,
        membrane_band_um=s["membrane_band_um"],
        completeness_k=s["completeness_k"],
        nucleus_area_um2=(s["nuclei_min_area_um2"], s["nuclei_max_area_um2"]),
        cell_area_um2=tuple(s["cell_area_um2"]),
    )
    # HER2 above the field's background (the membrane-band readout of the study)
    for compartment in COMPARTMENTS:
        table[f"her2_net_{compartment}"] = (
            table[f"her2_mean_{compartment}"] - table["her2_background"]
        )
    for key, value in reversed(list(p.sample.items())):
        table.insert(0, key, value)
    table.insert(0, "image_id", smk.wildcards.image_id)
    write_labels(nuclei, smk.output.nuclei)
    write_labels(cells, smk.output.cells)
    write_table(table, smk.output.table)
    write_json(
        {
            "image_id": smk.wildcards.image_id,
            **p.sample,
            "pixel_size_um": pixel_size_um,
            "n_nuclei": int(len(np.unique(nuclei[nuclei > 0]))),
            "segmentation_channel": "membrane" if "membrane" in channels else "her2",
            **qc,
        },
        smk.output.qc,
    )


run_logged(snakemake, main)  # noqa: F821
