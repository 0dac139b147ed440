"""The ``imaging`` config keys that the IF measuring job reads per field.

Kept apart from :mod:`sepher.imaging.field` so that the Snakefile (rules/imaging.smk)
can read them at every start without importing scipy and scikit-image.
"""

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
    "completeness_sectors",
    "completeness_reference",
    "max_saturated_fraction",
    "camera_offset_adu",
    "cell_foreground_k",
    "cell_edge_fraction",
    "membrane_spill_um",
)
