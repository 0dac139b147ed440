"""sepher.imaging: immunofluorescence measurement of HER2 per cell.

Read an image (:func:`read_image`), segment nuclei (:func:`segment_nuclei`)
and cells (:func:`segment_cells`), split cells into nucleus / membrane band /
cytoplasm (:func:`compartments`), measure each cell (:func:`measure_cells`),
check image quality (:func:`image_qc`), summarise per image / replicate /
condition (:func:`aggregate`) and compare conditions on replicates
(:func:`compare_conditions`). Lengths are in micrometres throughout.
"""

from sepher.imaging.cells import segment_cells
from sepher.imaging.compartments import compartments, distance_to_cell_edge
from sepher.imaging.io import read_image, select_channel
from sepher.imaging.measure import estimate_background, measure_cells
from sepher.imaging.metrics import match_instances
from sepher.imaging.nuclei import segment_nuclei, subtract_background
from sepher.imaging.qc import flag_focus_outliers, focus_score, image_qc
from sepher.imaging.summary import (
    aggregate,
    aggregate_images,
    aggregate_replicates,
    compare_conditions,
)

__all__ = [
    "aggregate",
    "aggregate_images",
    "aggregate_replicates",
    "compare_conditions",
    "compartments",
    "distance_to_cell_edge",
    "estimate_background",
    "flag_focus_outliers",
    "focus_score",
    "image_qc",
    "match_instances",
    "measure_cells",
    "read_image",
    "segment_cells",
    "segment_nuclei",
    "select_channel",
    "subtract_background",
]
