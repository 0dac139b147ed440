"""sepher.imaging: immunofluorescence measurement of HER2 per cell.

Read an image (:func:`read_image`), segment nuclei (:func:`segment_nuclei`)
and cells (:func:`segment_cells`), split cells into nucleus / membrane band /
cytoplasm (:func:`compartments`), measure each cell (:func:`measure_cells`),
check image quality (:func:`image_qc`), summarise per image / replicate /
condition (:func:`aggregate`) and compare conditions on replicates
(:func:`compare_conditions`). Lengths are in micrometres throughout.
"""

from typing import TYPE_CHECKING

# Eager, unlike the others: `compartments` is also the name of its submodule, and
# importing a submodule sets the package attribute of that name to the module. Its
# module needs numpy alone at import.
from sepher.imaging.compartments import compartments, distance_to_cell_edge

# The functions are imported from their modules when first used (PEP 562): the
# Snakefile imports sepher.imaging.field at every start, which must not pull in
# scipy.ndimage, scipy.stats and scikit-image (seconds per start). The imports
# below are what a type checker (and sepher.workflow.library_modules, which reads
# them to track the rules' library files) sees.
if TYPE_CHECKING:
    from sepher.imaging.cells import segment_cells
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

_WHERE = {
    "segment_cells": "cells",
    "read_image": "io",
    "select_channel": "io",
    "estimate_background": "measure",
    "measure_cells": "measure",
    "match_instances": "metrics",
    "segment_nuclei": "nuclei",
    "subtract_background": "nuclei",
    "flag_focus_outliers": "qc",
    "focus_score": "qc",
    "image_qc": "qc",
    "aggregate": "summary",
    "aggregate_images": "summary",
    "aggregate_replicates": "summary",
    "compare_conditions": "summary",
}


def __getattr__(name):
    if name in _WHERE:
        import importlib

        value = getattr(importlib.import_module(f"sepher.imaging.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'sepher.imaging' has no attribute {name!r}")


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
