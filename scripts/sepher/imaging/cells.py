"""Whole-cell segmentation seeded by nuclei.

Two methods, both returning cell labels equal to the nucleus labels (cell
``k`` contains nucleus ``k``; every nucleus gets exactly one cell):

- ``"watershed"``: seeded watershed from the nuclei on the smoothed membrane
  (or membrane-bound HER2) intensity, so bright membrane ridges become the
  borders between neighbouring cells (the CellProfiler "Propagation" idea,
  without its distance term). Growth is confined to a foreground mask: by
  default the pixels within ``max_radius_um`` of a nucleus; a user mask
  (e.g. a cytoplasmic-stain threshold) can be passed instead, or
  ``foreground="threshold"`` thresholds the channel itself (as
  CellProfiler's IdentifySecondaryObjects thresholds its secondary image).
  Where a cell meets the background, its edge can then be redrawn at a
  fraction of the local membrane intensity (``edge_fraction``, a
  half-maximum edge), see :func:`trim_to_edge`.
- ``"expand"``: :func:`skimage.segmentation.expand_labels` by ``expand_um``,
  for images without a membrane signal.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage import measure, segmentation

from sepher.imaging.compartments import _dilate_disc
from sepher.imaging.nuclei import (
    block_mean,
    fill_holes,
    neighbour_set,
    upsample_labels,
    watershed_by_component,
    working_factor,
)

__all__ = ["segment_cells", "trim_to_edge"]


def segment_cells(
    nuclei_labels: np.ndarray,
    her2_or_membrane_channel: np.ndarray | None,
    pixel_size_um: float,
    *,
    method: str = "watershed",
    expand_um: float = 5.0,
    max_radius_um: float = 20.0,
    smoothing_sigma_um: float = 0.5,
    foreground: np.ndarray | str | None = None,
    foreground_k: float = 5.0,
    edge_fraction: float | None = None,
    edge_depth_um: float = 3.0,
    max_hole_um2: float = 10.0,
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
    foreground : ndarray of bool or "threshold", optional
        Pixels that may belong to a cell (nuclei are always included), within
        ``max_radius_um`` of a nucleus. ``"threshold"``: the pixels of the
        smoothed channel above the background by ``foreground_k`` noise SDs
        (level and SD: median and 1.4826 x MAD of the smoothed channel beyond
        every cell's reach), holes up to ``max_hole_um2`` filled; without
        enough pixels beyond reach (a confluent field) no threshold is
        applied.
    foreground_k : float, default 5.0
        Threshold of ``foreground="threshold"`` in noise SDs of the smoothed
        channel (5 SD: ~1 false pixel in 3.5 million from noise alone, while a
        cytoplasmic stain a few percent of the membrane's is kept).
    edge_fraction : float, optional
        Peel each cell's edge against the background back to where the
        (unsmoothed) intensity falls below this fraction of its inner
        neighbour's (0.5: a half-maximum edge), see :func:`trim_to_edge`.
        None keeps the thresholded edge.
    edge_depth_um : float, default 3.0
        How far inside the foreground edge (um) :func:`trim_to_edge` may
        move it: the blur halo a ``foreground_k`` threshold adds outside a
        bright membrane, ``sigma * sqrt(2 ln(membrane / threshold))`` for
        the combined optical and smoothing blur sigma (~1 um at 0.5-0.65 um
        pixels), up to ~4 sigma for membranes a thousand times the noise.
    max_hole_um2 : float, default 10.0
        ``foreground="threshold"``: holes in the thresholded foreground up
        to this area (um^2) are filled (dim patches of cytoplasm); larger
        ones are background enclosed by cells and stay out (filling them
        would let a cell grow across the gap and claim its neighbour's
        membrane). 10 um^2 is the smallest plausible nucleus, far smaller
        than the gaps between cells.
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
    user_mask = foreground is not None and not isinstance(foreground, str)
    if isinstance(foreground, str) and foreground != "threshold":
        raise ValueError("foreground must be a boolean mask, 'threshold' or None")
    if factor > 1:
        markers = _block_max(nuclei, factor)
        membrane = block_mean(membrane, factor)
        if user_mask:
            foreground = _block_max(np.asarray(foreground, dtype=np.uint8), factor) > 0
    else:
        markers = nuclei
    work_px = pixel_size_um * factor
    # Nuclei are the seeds, not part of the relief: a bright nucleus (HER2
    # moved into the nucleus) would otherwise leave a smoothed halo higher
    # than the membrane around its seed, and the neighbours would flood the
    # cell's cytoplasm across the membrane before the seed could.
    relief = np.where(markers > 0, membrane.min(), membrane)
    landscape = ndi.gaussian_filter(relief, smoothing_sigma_um / work_px)
    del relief
    reach = _dilate_disc(markers > 0, max_radius_um / work_px)
    level = None
    if user_mask:
        mask = np.asarray(foreground, dtype=bool) | (markers > 0)
    else:
        mask = reach
        if foreground == "threshold" or edge_fraction is not None:
            level, sd = _background_of(landscape, ~reach)
        if foreground == "threshold" and level is not None:
            above = landscape > np.float32(level + foreground_k * sd)
            hole_px = max_hole_um2 / work_px**2
            mask = _fill_small_holes(above | (markers > 0), hole_px) & reach
    # Nucleus pixels whose 4 neighbours share their label cannot change and
    # add nothing to the flooding: seed from the nuclear rims only (same result).
    interior = _interior(markers)
    cells = watershed_by_component(landscape, np.where(interior, 0, markers), mask & ~interior)
    np.copyto(cells, markers, where=interior)
    if edge_fraction is not None and level is not None:
        cells = trim_to_edge(
            cells,
            markers,
            membrane,
            level,
            fraction=edge_fraction,
            depth_px=edge_depth_um / work_px,
        )
    if factor > 1:
        cells = upsample_labels(cells, factor, nuclei.shape)
        np.copyto(cells, nuclei, where=nuclei > 0)
    return cells


def _fill_small_holes(mask: np.ndarray, max_px: float) -> np.ndarray:
    """``mask`` with its holes (background components not touching the field
    border, 4-connected) of at most ``max_px`` pixels filled."""
    holes = fill_holes(mask) & ~mask
    if not holes.any():
        return mask
    lab, _ = ndi.label(holes)
    small = np.bincount(lab.ravel()) <= max_px
    small[0] = False
    return mask | small[lab]


#: Fewest pixels beyond every cell's reach for a background estimate.
MIN_BACKGROUND_PX = 400


def _background_of(landscape: np.ndarray, outside: np.ndarray):
    """Median and robust SD (1.4826 x MAD) of the smoothed channel on the
    pixels beyond every cell's reach; (None, None) when there are fewer than
    :data:`MIN_BACKGROUND_PX` of them."""
    values = landscape[outside]
    if values.size < MIN_BACKGROUND_PX:
        return None, None
    # a regular subsample of at most ~2**17 pixels estimates both as well
    values = values[:: max(1, values.size >> 17)]
    level = float(np.median(values))
    sd = float(1.4826 * np.median(np.abs(values - np.float32(level))))
    return level, sd


def trim_to_edge(
    cells: np.ndarray,
    nuclei: np.ndarray,
    intensity: np.ndarray,
    level: float,
    *,
    fraction: float = 0.5,
    depth_px: float = 3.0,
) -> np.ndarray:
    """Peel each cell's edge facing the background back to the membrane.

    A threshold a few noise SDs above background puts the edge of a bright
    membrane where its blurred tail fades into the noise, 1-3 pixels beyond
    the plasma membrane: a membrane band measured inward from that edge then
    holds background and misses the membrane's inner half. Going outward
    from the membrane, the intensity falls; the membrane's edge is where it
    has fallen to ``fraction`` of the value next to it (0.5: a half-maximum
    criterion applied pixel by pixel, on the unsmoothed image so only the
    optics' blur matters). So the outermost layer of a cell (pixels with a
    4-neighbour outside every cell; the field border is no edge) is peeled
    where its intensity above background is below ``fraction`` x the highest
    of its inward neighbours (8-neighbours in the same cell that are not
    themselves exposed to the background: a pixel is judged against the
    membrane behind it, not against the membrane beside it where a gap in
    the membrane exposes the cytoplasm; against all its same-cell
    neighbours at a corner where every one is exposed), and the newly
    exposed pixels are tested in turn, at most ``depth_px`` layers deep. On
    the membrane's crest a pixel is at least as bright as its inner
    neighbours and stays; a cell whose edge carries no membrane signal keeps
    the half-maximum of its cytoplasm's step. Nuclei are never peeled.

    A cell that grew across a narrow gap into its neighbour's blur halo may
    have reached that neighbour's membrane crest; peeling the halo cuts the
    crest off from its nucleus. Such pieces join the cell they touch most
    (then the peeling is repeated once for them); pieces touching no cell are
    dropped, so every cell stays one region holding its nucleus.

    Parameters
    ----------
    cells, nuclei : ndarray of int
        Cell and nucleus labels (same grid as ``intensity``).
    intensity : ndarray of float32
        Membrane (or HER2) intensity.
    level : float
        Background level of ``intensity``.
    fraction : float, default 0.5
        Peel a pixel below this fraction of its brightest same-cell
        neighbour (both above background).
    depth_px : float, default 3.0
        Most layers peeled.

    Returns
    -------
    ndarray of int32
        Trimmed cell labels.
    """
    layers = int(np.ceil(depth_px))
    if layers < 1:
        return cells
    nuclei = np.asarray(nuclei)
    out, changed = _peel(cells, nuclei, intensity, level, fraction, layers)
    if not changed:
        return cells
    # pieces cut off from their nucleus join the cell they touch (docstring)
    out, moved = _adopt_orphans(out, nuclei)
    if moved:
        out, changed = _peel(out, nuclei, intensity, level, fraction, layers)
        if changed:
            out, _ = _adopt_orphans(out, nuclei, adopt=False)
    return out


def _peel(cells, nuclei, intensity, level, fraction, layers):
    """The layer-by-layer peeling of :func:`trim_to_edge`; (labels, changed)."""
    # pad with -1: the field border is neither a cell nor the background
    lab = np.pad(np.asarray(cells, dtype=np.int32), 1, constant_values=-1)
    width = lab.shape[1]
    value = np.pad(np.asarray(intensity, dtype=np.float32) - np.float32(level), 1).ravel()
    frozen = np.pad(nuclei > 0, 1).ravel()
    flat = lab.ravel()
    side = (-width, width, -1, 1)
    around = side + (-width - 1, -width + 1, width - 1, width + 1)
    edge = np.zeros(lab.shape, dtype=bool)
    background = lab == 0
    edge[1:] |= background[:-1]
    edge[:-1] |= background[1:]
    edge[:, 1:] |= background[:, :-1]
    edge[:, :-1] |= background[:, 1:]
    exposed = edge.ravel() & (flat > 0)
    layer = np.flatnonzero(exposed & ~frozen)
    changed = False
    for _ in range(layers):
        if not layer.size:
            break
        own = flat[layer]
        ref = np.full(layer.size, -np.inf, dtype=np.float32)
        beside = np.full(layer.size, -np.inf, dtype=np.float32)
        for offset in around:
            nb = layer + offset
            same = flat[nb] == own
            inward = same & ~exposed[nb]
            np.maximum(ref, np.where(inward, value[nb], -np.inf), out=ref)
            np.maximum(beside, np.where(same, value[nb], -np.inf), out=beside)
        # a corner pixel whose neighbours are all exposed: judged against them
        ref = np.where(np.isfinite(ref), ref, beside)
        drop = layer[value[layer] < np.float32(fraction) * np.maximum(ref, 0)]
        if not drop.size:
            break
        changed = True
        flat[drop] = 0
        exposed[drop] = False
        nb = neighbour_set(drop, side, flat.size)
        layer = nb[(flat[nb] > 0) & ~frozen[nb]]
        exposed[layer] = True
    return np.ascontiguousarray(lab[1:-1, 1:-1]), changed


def _adopt_orphans(cells, nuclei, adopt=True):
    """Pieces of a cell not connected to its nucleus join the cell they touch
    most (4-neighbours), or are dropped (``adopt=False`` or touching none).
    Returns (labels, whether any piece was adopted)."""
    parts = measure.label(cells, connectivity=1)
    n_parts = int(parts.max())
    rooted = np.zeros(n_parts + 1, dtype=bool)
    rooted[parts[nuclei > 0]] = True
    rooted[0] = True
    orphan = ~rooted[parts]
    if not orphan.any():
        return cells, False
    cells = cells.copy()
    new = np.zeros(n_parts + 1, dtype=np.int64)
    if adopt:
        keys, votes = [], []
        for a, b, pa, pb in (
            (orphan[1:], rooted[parts[:-1]] & (cells[:-1] > 0), parts[1:], cells[:-1]),
            (orphan[:-1], rooted[parts[1:]] & (cells[1:] > 0), parts[:-1], cells[1:]),
            (
                orphan[:, 1:],
                rooted[parts[:, :-1]] & (cells[:, :-1] > 0),
                parts[:, 1:],
                cells[:, :-1],
            ),
            (
                orphan[:, :-1],
                rooted[parts[:, 1:]] & (cells[:, 1:] > 0),
                parts[:, :-1],
                cells[:, 1:],
            ),
        ):
            sel = a & b
            keys.append(pa[sel].astype(np.int64))
            votes.append(pb[sel].astype(np.int64))
        keys, votes = np.concatenate(keys), np.concatenate(votes)
        if keys.size:
            pair, count = np.unique(keys * (int(cells.max()) + 1) + votes, return_counts=True)
            part, label = pair // (int(cells.max()) + 1), pair % (int(cells.max()) + 1)
            order = np.lexsort((-count, part))
            first = np.r_[True, part[order][1:] != part[order][:-1]]
            new[part[order][first]] = label[order][first]
    cells[orphan] = new[parts[orphan]]
    return cells, bool(adopt and (new > 0).any())


def _interior(labels: np.ndarray) -> np.ndarray:
    """Labelled pixels whose 4 neighbours (inside the image) carry the same label."""
    inner = labels > 0
    inner[1:] &= labels[1:] == labels[:-1]
    inner[:-1] &= labels[:-1] == labels[1:]
    inner[:, 1:] &= labels[:, 1:] == labels[:, :-1]
    inner[:, :-1] &= labels[:, :-1] == labels[:, 1:]
    return inner


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
