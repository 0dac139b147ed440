"""sepher.ihc: HER2 membrane scoring of brightfield DAB + hematoxylin biopsies.

ASCO/CAP 2018 and 2023 rules live in :mod:`sepher.ihc.rules`; threshold
calibration from reference scores in :mod:`sepher.ihc.calibration`; whole-slide
images (SVS, NDPI, pyramidal TIFF; QuPath GeoJSON regions) in :mod:`sepher.ihc.wsi`.

Per image, :func:`score_image` runs colour deconvolution (:func:`rgb_to_od`,
:func:`stain_matrix`, :func:`unmix_h_dab`, optionally
:func:`estimate_stain_vectors`), a tissue mask (:func:`tissue_mask`), nuclei
(:func:`segment_nuclei`), cells (:func:`segment_cells`), membrane bands
(:func:`membrane_band`), the tumour epithelium (:func:`tumour_epithelium`)
and per-cell measurement and classes (:func:`measure_cells`,
:func:`classify_cells`). Per biopsy, :func:`score_biopsy` /
:func:`score_biopsies` give the ASCO/CAP 2018 category, H-score and percent
complete staining; :func:`paired_changes` compares pre / post biopsies.
Lengths are in micrometres, optical densities in log10 units.
"""

from sepher.ihc.biopsy import (
    ASCO_CAP_LABELS,
    asco_cap_category,
    paired_changes,
    score_biopsies,
    score_biopsy,
)
from sepher.ihc.deconvolution import (
    DAB_RGB_OD,
    HEMATOXYLIN_RGB_OD,
    estimate_stain_vectors,
    rgb_to_od,
    stain_matrix,
    tissue_mask,
    unmix_h_dab,
)
from sepher.ihc.overlay import DAB_DISPLAY_MAX_OD, class_overlay, dab_greyscale
from sepher.ihc.rules import (
    HER2_2023_LABELS,
    INTENSITY_LABELS,
    asco_cap_2018,
    her2_2023,
    intensity_levels,
    standard_h_score,
)
from sepher.ihc.scoring import CELL_COLUMNS, IHCParams, classify_cells, measure_cells, score_image
from sepher.ihc.segmentation import (
    cell_edges,
    membrane_band,
    segment_cells,
    segment_nuclei,
    tumour_epithelium,
)

__all__ = [
    "ASCO_CAP_LABELS",
    "CELL_COLUMNS",
    "HER2_2023_LABELS",
    "INTENSITY_LABELS",
    "asco_cap_2018",
    "her2_2023",
    "intensity_levels",
    "standard_h_score",
    "DAB_DISPLAY_MAX_OD",
    "DAB_RGB_OD",
    "HEMATOXYLIN_RGB_OD",
    "IHCParams",
    "asco_cap_category",
    "cell_edges",
    "class_overlay",
    "classify_cells",
    "dab_greyscale",
    "estimate_stain_vectors",
    "measure_cells",
    "membrane_band",
    "paired_changes",
    "rgb_to_od",
    "score_biopsies",
    "score_biopsy",
    "score_image",
    "segment_cells",
    "segment_nuclei",
    "stain_matrix",
    "tissue_mask",
    "tumour_epithelium",
    "unmix_h_dab",
]
