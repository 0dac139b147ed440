"""Whole-cell segmentation seeded by nuclei.

Two methods, both returning cell labels equal to the nucleus labels (cell
``k`` contains nucleus ``k``; every nucleus gets exactly one cell):

- ``"watershed"``: seeded watershed from the nuclei on the smoothed membrane
  (or membrane-bound HER2) intensity, so bright membrane ridges become the
  borders between neighbouring cells (the CellProfiler "Propagation" idea,
  without its distance term). Growth is confined to a foreground mask: by
  default the pixels within ``max_radius_um`` of a nucleus; a user mask
  (e.g. a cytoplasmic-stain threshold) can be passed instead.
- ``"expand"``: :func:`skimage.segmentation.expand_labels` by ``expand_um``,
  for images without a membrane signal.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage import segmentation

from sepher.imaging.nuclei import (
    block_mean,
    squared_distance_to_background,
    upsample_labels,
    working_factor,
)

__all__ = ["segment_cells"]


def segment_cells(
    nuclei_labels: np.ndarray,
    her2_or_membrane_channel: np.ndarray | None,
    pixel_size_um: float,
    *,
    method: str = "watershed",
    expand_um: float = 5.0,
    max_radius_um: float = 20.0,
    smoothing_sigma_um: float = 0.5,
    foreground: np.ndarray | None = None,
    working_pixel_size_um: float | None = 0.5,
) -> np.ndarray:
    """Segment cells around their nuclei.

    Parameters
    ----------
    nuclei_labels : ndarray of int, 2-D
        Nuclei label image (0 = background).
    her2_or_membrane_channel : ndarray, 2-D, or None
        Membrane marker or membrane-bound HER2 intensities; may be None for
        ``method="expand"``.
    pixel_size_um : float
        Pixel edge length (um).
    method : {"watershed", "expand"}, default "watershed"
        See module docstring.
    expand_um : float, default 5.0
        Growth distance (um) for ``method="expand"`` (typical cytoplasm rim of
        an epithelial cell in culture).
    max_radius_um : float, default 20.0
        For ``"watershed"``: cells extend at most this far (um) from their
        nucleus edge when no ``foreground`` is given.
    smoothing_sigma_um : float, default 0.5
        Gaussian sigma (um) applied to the membrane channel before the
        watershed.
    foreground : ndarray of bool, optional
        Pixels that may belong to a cell (nuclei are always included).
    working_pixel_size_um : float or None, default 0.5
        For ``"watershed"``: finer images are block-averaged by the nearest
        integer factor to about this pixel size, the watershed run there and
        the cells brought back by nearest-neighbour up-sampling (cell edges
        then carry up to half a working pixel of error, well inside a 1 um
        membrane band); nuclei pixels always keep their own label. None keeps
        the native grid.

    Returns
    -------
    ndarray of int32
        Cell labels; label ``k`` is the cell of nucleus ``k``.
    """
    nuclei = np.asarray(nuclei_labels).astype(np.int32, copy=False)
    if method == "expand":
        return segmentation.expand_labels(nuclei, expand_um / pixel_size_um).astype(np.int32)
    if method != "watershed":
        raise ValueError("method must be 'watershed' or 'expand'")
    if her2_or_membrane_channel is None:
        raise ValueError("method='watershed' needs a membrane or HER2 channel")
    membrane = np.asarray(her2_or_membrane_channel, dtype=np.float32)
    if membrane.shape != nuclei.shape:
        raise ValueError(f"shape mismatch: nuclei {nuclei.shape} vs channel {membrane.shape}")
    factor = working_factor(pixel_size_um, working_pixel_size_um)
    if factor > 1:
        markers = _block_max(nuclei, factor)
        membrane = block_mean(membrane, factor)
        if foreground is not None:
            foreground = _block_max(np.asarray(foreground, dtype=np.uint8), factor) > 0
    else:
        markers = nuclei
    work_px = pixel_size_um * factor
    if foreground is None:
        mask = _within_reach(markers == 0, max_radius_um / work_px)
    else:
        mask = np.asarray(foreground, dtype=bool) | (markers > 0)
    landscape = ndi.gaussian_filter(membrane, smoothing_sigma_um / work_px)
    # Nucleus pixels whose 4 neighbours share their label cannot change and
    # add nothing to the flooding: seed from the nuclear rims only (same result).
    interior = _interior(markers)
    cells = segmentation.watershed(
        landscape, markers=np.where(interior, 0, markers), mask=mask & ~interior
    ).astype(np.int32, copy=False)
    np.copyto(cells, markers, where=interior)
    if factor > 1:
        cells = upsample_labels(cells, factor, nuclei.shape)
        np.copyto(cells, nuclei, where=nuclei > 0)
    return cells


def _interior(labels: np.ndarray) -> np.ndarray:
    """Labelled pixels whose 4 neighbours (inside the image) carry the same label."""
    inner = labels > 0
    inner[1:] &= labels[1:] == labels[:-1]
    inner[:-1] &= labels[:-1] == labels[1:]
    inner[:, 1:] &= labels[:, 1:] == labels[:, :-1]
    inner[:, :-1] &= labels[:, :-1] == labels[:, 1:]
    return inner


def _within_reach(background: np.ndarray, radius_px: float) -> np.ndarray:
    """``distance_transform_edt(background) <= radius_px``, exact.

    The city-block distance (>= Euclidean) and the chessboard distance
    (<= Euclidean) decide most pixels; the undecided ones get their exact
    distance from the bounded separable transform
    (:func:`~sepher.imaging.nuclei.squared_distance_to_background`).
    """
    background = np.asarray(background, dtype=bool)
    if background.all():
        return ~background
    reach = ndi.distance_transform_cdt(background, "taxicab") <= radius_px
    undecided = ~reach
    undecided &= ndi.distance_transform_cdt(background, "chessboard") <= radius_px
    index = np.flatnonzero(undecided)
    if index.size:
        _, d2 = squared_distance_to_background(background, radius_px, index=index)
        reach.ravel()[index] = d2 <= radius_px**2
    return reach


def _block_max(labels: np.ndarray, factor: int) -> np.ndarray:
    """Maximum over ``factor x factor`` blocks (partial edge blocks padded with 0)."""
    labels = np.asarray(labels)
    h, w = labels.shape
    ph, pw = -h % factor, -w % factor
    if ph or pw:
        labels = np.pad(labels, ((0, ph), (0, pw)))
    out = labels[::factor, ::factor].copy()
    for dy in range(factor):
        for dx in range(factor):
            if dy or dx:
                np.maximum(out, labels[dy::factor, dx::factor], out=out)
    return out
