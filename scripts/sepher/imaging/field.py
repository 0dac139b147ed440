"""One IF field end to end: read, QC, nuclei, flat-field, cells, per-cell HER2.

:func:`measure_field` is what the workflow runs per image (in batches of
fields per job, rule ``imaging_measure_if``); the settings it reads are
:data:`FIELD_SETTINGS`, the keys of the ``imaging`` config section that the
rule passes through.

Steps, and why each is there (the per-cell readouts are meant to be the
intensities on the specimen, not those of one microscope's optics):

1. Image QC (focus, saturation) and saturated pixels on the raw channels.
2. Nuclei from the nuclear stain (:func:`~sepher.imaging.nuclei.segment_nuclei`).
3. Flat-field per channel (:mod:`sepher.imaging.illumination`): the
   background where no cell reaches (beyond ``cell_max_radius_um`` of every
   nucleus) is a picture of the illumination; a smooth 2nd-order surface
   fitted to it, minus the camera offset (``camera_offset_adu``) and scaled to
   1 at its best-lit point, divides the image (CellProfiler's Background /
   Fit Polynomial / Divide, per image). Vignetting otherwise makes a cell's
   readout depend on where in the field it sits (here 0.7-1).
4. Nuclear compartments grown over the rim the segmentation leaves out
   (:func:`~sepher.imaging.nuclei.grow_to_half_median`): the nuclear HER2 of a
   cell is otherwise counted a few percent short, a bias that matters for
   nuclear fractions of a few percent.
5. Cells (:func:`~sepher.imaging.cells.segment_cells`): seeded watershed on
   the membrane channel (else HER2) confined to the thresholded foreground
   (``cell_foreground_k``) and with edges against the background redrawn at
   the half maximum of the membrane (``cell_edge_fraction``): without it a
   cell's edge lies in the membrane's blur halo or beyond, and the membrane
   band measured inward from it holds background.
6. Per-cell measurements (:func:`~sepher.imaging.measure.measure_cells`) on
   the flat-fielded channels, with the light the optical blur moves out of
   the membrane band and the nucleus added back (``membrane_spill_um``):
   ``her2_net_membrane`` is the band's HER2 above background as if
   unblurred, the nuclear fraction the one of the unblurred cell; membrane
   completeness is the stained fraction of the band's angular sectors
   (:func:`~sepher.imaging.measure.sector_completeness`), from HER2 alone.

Every cell row and QC record carries ``segmentation_channel``:
``"membrane marker"`` when the field has a membrane channel, ``"HER2"`` when
the cells were outlined on HER2 itself (then segmentation and measurement
share one signal, least reliable where membrane HER2 is low).

On the demo images (simulated with a known truth per cell) this recovers
per-condition membrane HER2 and nuclear fraction within a few percent
(``tests/test_imaging_units.py``); without steps 3-6 membrane HER2 read
0.70-0.75 of the truth.
"""

from __future__ import annotations

import ctypes

import numpy as np
import pandas as pd

from sepher.errors import InputError
from sepher.imaging.cells import segment_cells
from sepher.imaging.illumination import background_blocks, fit_surface, flat_field
from sepher.imaging.io import read_stack, select_channel
from sepher.imaging.measure import estimate_background, measure_cells
from sepher.imaging.nuclei import grow_to_half_median, segment_nuclei
from sepher.imaging.qc import image_qc
from sepher.imaging.settings import FIELD_SETTINGS  # noqa: F401 (re-exported)
from sepher.imaging.zstack import mid_nuclear_field

#: Compartments with a background-subtracted HER2 readout (``her2_net_*``).
COMPARTMENTS = ("membrane", "cytoplasm", "nucleus")
#: ``segmentation_channel`` values: cells outlined on a membrane marker, or on HER2 itself.
MEMBRANE_MARKER, HER2_ITSELF = "membrane marker", "HER2"
#: Defaults of settings added after a config may have been written.
SETTING_DEFAULTS = {"completeness_sectors": 32, "completeness_reference": "cytoplasm"}
#: Sample-sheet columns copied onto every cell row and the QC record.
SAMPLE_KEYS = ("cell_line", "condition", "replicate")


#: Large temporaries stay in the heap up to this size (bytes), see _keep_heap.
HEAP_KEEP_BYTES = 1 << 30
_heap_kept = False


def _keep_heap() -> None:
    """Let glibc serve and keep large arrays from the process heap.

    By default glibc maps every allocation above 32 MB afresh from the
    kernel and returns it on free, so each full-size temporary of a 4096 x
    4096 field (64-128 MB) is zero-filled page by page again: on a busy
    machine that cost a third of the CPU time of a field, as system time.
    Raising the mmap and trim thresholds (``mallopt``) keeps freed memory for
    the next temporary; the process's resident size then stays near its
    peak, which is the per-field budget anyway (a job measures its fields one
    after another). Process-wide, once; a no-op where glibc is absent.
    """
    global _heap_kept
    if _heap_kept:
        return
    _heap_kept = True
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        libc.mallopt(m_mmap_threshold, HEAP_KEEP_BYTES)
        libc.mallopt(m_trim_threshold, HEAP_KEEP_BYTES)
    except (OSError, AttributeError):
        pass


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
    _keep_heap()
    s = settings
    file = row["file"]
    # A z-stack (CZYX) is measured per cell in its mid-nuclear plane
    # (sepher.imaging.zstack): nuclei segmented on the in-focus plane choose each
    # cell's plane, so apical membrane above or below a nucleus is not read as nuclear.
    stack, pixel_size_um, z_step_um = read_stack(
        file, pixel_size_um=float(row["pixel_size_um"]), require_z_step=False
    )
    select_channel(stack, int(row["nuclear_channel"]), file, column="nuclear_channel")
    zinfo = {"n_planes": 1, "focus_plane": 0, "plane_spread": 0}
    if stack.shape[1] > 1:
        image, zinfo = mid_nuclear_field(
            stack,
            int(row["nuclear_channel"]),
            pixel_size_um,
            owner_radius_um=s["cell_max_radius_um"],
            min_area_um2=s["nuclei_min_area_um2"],
            max_area_um2=s["nuclei_max_area_um2"],
            smoothing_sigma_um=s["nuclei_smoothing_um"],
            background_size_um=s["nuclei_background_um"],
            threshold_method=s["nuclei_threshold"],
        )
    else:
        image = stack[:, 0]
    del stack
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
    saturated = _saturated_pixels(channels)
    nuclei = segment_nuclei(
        channels["nuclear"],
        pixel_size_um,
        min_area_um2=s["nuclei_min_area_um2"],
        max_area_um2=s["nuclei_max_area_um2"],
        smoothing_sigma_um=s["nuclei_smoothing_um"],
        background_size_um=s["nuclei_background_um"],
        threshold_method=s["nuclei_threshold"],
    )
    # Flat-field every channel from its own background (pixels no cell reaches).
    block_px, blocks = background_blocks(nuclei, pixel_size_um, s["cell_max_radius_um"])
    illumination = {}
    dark = s["camera_offset_adu"]
    for role in list(channels):
        surface, degree, floor = fit_surface(channels[role], block_px, blocks)
        if surface is not None and not dark < floor:
            raise InputError(
                file,
                f"a camera offset below the image's background (its {role} channel's "
                f"background falls to {floor:.1f} in places)",
                row=f"image_id {row['image_id']}",
                column="imaging.camera_offset_adu",
                value=dark,
                hint="Set imaging.camera_offset_adu to the camera's offset, or 0 when the "
                "images are already offset-subtracted.",
            )
        channels[role], info = flat_field(channels[role], surface, dark)
        illumination[role] = {
            "degree": degree,
            **{k: (v if np.isfinite(v) else None) for k, v in info.items()},
        }
        del surface
    # nuclear compartment edge at half the nucleus's typical stain (for measuring)
    level = illumination["nuclear"]["background_level"]
    if level is None:
        level = estimate_background(channels["nuclear"], nuclei)[0]
    nuclei = grow_to_half_median(nuclei, channels["nuclear"], level, pixel_size_um)
    cells = segment_cells(
        nuclei,
        channels.get("membrane", channels["her2"]),
        pixel_size_um,
        method=s["cell_method"],
        expand_um=s["cell_expand_um"],
        max_radius_um=s["cell_max_radius_um"],
        smoothing_sigma_um=s["cell_smoothing_um"],
        foreground="threshold",
        foreground_k=s["cell_foreground_k"],
        edge_fraction=s["cell_edge_fraction"],
    )
    table = measure_cells(
        channels,
        nuclei,
        cells,
        pixel_size_um,
        membrane_band_um=s["membrane_band_um"],
        completeness_k=s["completeness_k"],
        completeness_sectors=s.get(
            "completeness_sectors", SETTING_DEFAULTS["completeness_sectors"]
        ),
        completeness_reference=s.get(
            "completeness_reference", SETTING_DEFAULTS["completeness_reference"]
        ),
        nucleus_area_um2=(s["nuclei_min_area_um2"], s["nuclei_max_area_um2"]),
        cell_area_um2=tuple(s["cell_area_um2"]),
        saturated=saturated,
        spill_um=s["membrane_spill_um"],
        median_roles=("her2",),
    )
    # HER2 above the field's background (the membrane-band readout of the
    # study), the membrane band's with the light the blur moved out of it
    for compartment in COMPARTMENTS:
        table[f"her2_net_{compartment}"] = (
            table[f"her2_mean_{compartment}"] - table["her2_background"]
        )
    if "her2_membrane_spill" in table:
        table["her2_net_membrane"] += table["her2_membrane_spill"]
    sample = {key: str(row[key]) for key in SAMPLE_KEYS}
    segmentation_channel = MEMBRANE_MARKER if "membrane" in channels else HER2_ITSELF
    table = pd.concat(
        [pd.DataFrame({"image_id": row["image_id"], **sample}, index=table.index), table],
        axis=1,
    )
    table["segmentation_channel"] = segmentation_channel
    qc = {
        "image_id": row["image_id"],
        **sample,
        "pixel_size_um": pixel_size_um,
        "n_nuclei": int(len(np.unique(nuclei[nuclei > 0]))),
        "z_planes": int(zinfo["n_planes"]),
        "z_step_um": z_step_um,
        "focus_plane": int(zinfo["focus_plane"]),
        "z_plane_spread": float(zinfo["plane_spread"]),
        "segmentation_channel": segmentation_channel,
        "illumination": illumination,
        **qc,
    }
    return nuclei, cells, table, qc


def _saturated_pixels(channels: dict) -> np.ndarray | None:
    """Pixels at the integer dtype maximum in any raw channel (None when no
    channel is integer: float images are not judged)."""
    hit = None
    for channel in channels.values():
        if np.issubdtype(channel.dtype, np.integer):
            at_max = channel == np.iinfo(channel.dtype).max
            hit = at_max if hit is None else hit | at_max
    return hit


def read_labels(field: dict, kind: str) -> np.ndarray:
    """Label image of one field from its batch's multi-page TIFF.

    ``field`` has the batch file per kind (``"nuclei"``, ``"cells"``) and the
    field's ``page`` in it (the workflow's ``if_fields()``).
    """
    import tifffile

    return tifffile.imread(field[kind], key=field["page"])
