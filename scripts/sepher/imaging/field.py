"""One IF field end to end: read, QC, nuclei, cells, per-cell HER2.

:func:`measure_field` is what the workflow runs per image (in batches of
fields per job, rule ``imaging_measure_if``); the settings it reads are
:data:`FIELD_SETTINGS`, the keys of the ``imaging`` config section that the
rule passes through.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sepher.imaging.cells import segment_cells
from sepher.imaging.io import read_image, select_channel
from sepher.imaging.measure import measure_cells
from sepher.imaging.nuclei import segment_nuclei
from sepher.imaging.qc import image_qc

#: Keys of the ``imaging`` config section used per field.
FIELD_SETTINGS = (
    "nuclei_min_area_um2",
    "nuclei_max_area_um2",
    "nuclei_smoothing_um",
    "nuclei_background_um",
    "nuclei_threshold",
    "cell_method",
    "cell_expand_um",
    "cell_max_radius_um",
    "cell_smoothing_um",
    "cell_area_um2",
    "membrane_band_um",
    "completeness_k",
    "max_saturated_fraction",
)
#: Compartments with a background-subtracted HER2 readout (``her2_net_*``).
COMPARTMENTS = ("membrane", "cytoplasm", "nucleus")
#: Sample-sheet columns copied onto every cell row and the QC record.
SAMPLE_KEYS = ("cell_line", "condition", "replicate")


def measure_field(row: dict, settings: dict):
    """Measure one IF field described by a sample-sheet row.

    Parameters
    ----------
    row : dict
        ``image_id``, ``file``, ``pixel_size_um``, ``her2_channel``,
        ``nuclear_channel``, ``membrane_channel`` (-1: none) and the
        :data:`SAMPLE_KEYS`.
    settings : dict
        The :data:`FIELD_SETTINGS` of the ``imaging`` config section.

    Returns
    -------
    nuclei, cells : ndarray
        Label images (0 background).
    table : DataFrame
        One row per cell: image id, sample keys, measurements.
    qc : dict
        Per-image QC record (focus, saturation, flags, counts).
    """
    s = settings
    file = row["file"]
    image, pixel_size_um = read_image(file, pixel_size_um=float(row["pixel_size_um"]))
    channels = {
        "her2": select_channel(image, int(row["her2_channel"]), file, column="her2_channel"),
        "nuclear": select_channel(
            image, int(row["nuclear_channel"]), file, column="nuclear_channel"
        ),
    }
    if int(row["membrane_channel"]) >= 0:
        channels["membrane"] = select_channel(
            image, int(row["membrane_channel"]), file, column="membrane_channel"
        )
    del image
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
    sample = {key: str(row[key]) for key in SAMPLE_KEYS}
    table = pd.concat(
        [pd.DataFrame({"image_id": row["image_id"], **sample}, index=table.index), table],
        axis=1,
    )
    qc = {
        "image_id": row["image_id"],
        **sample,
        "pixel_size_um": pixel_size_um,
        "n_nuclei": int(len(np.unique(nuclei[nuclei > 0]))),
        "segmentation_channel": "membrane" if "membrane" in channels else "her2",
        **qc,
    }
    return nuclei, cells, table, qc


def read_labels(field: dict, kind: str) -> np.ndarray:
    """Label image of one field from its batch's multi-page TIFF.

    ``field`` has the batch file per kind (``"nuclei"``, ``"cells"``) and the
    field's ``page`` in it (the workflow's ``if_fields()``).
    """
    import tifffile

    return tifffile.imread(field[kind], key=field["page"])
