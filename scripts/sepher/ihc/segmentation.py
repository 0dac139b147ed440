"""Nuclei, cells, membrane bands and tumour epithelium in H-DAB images.

Modelled on QuPath's cell detection (Bankhead et al., Sci Rep 2017;7:16878):
nuclei from the hematoxylin OD (Gaussian smoothing, an OD threshold against
the local background, watershed split, area limits in um^2), cells by growing
each nucleus a few micrometres, and a membrane band at each cell's edge.
All lengths are in micrometres and converted with ``pixel_size_um``.
"""

from __future__ import annotations

from math import isqrt, lcm

import numpy as np
from scipy import ndimage as ndi
from skimage import morphology, segmentation

__all__ = [
    "cell_edges",
    "membrane_band",
    "nuclei_block_grid",
    "segment_cells",
    "segment_nuclei",
    "tumour_epithelium",
]


def _block_mean(image: np.ndarray, factor: int) -> np.ndarray:
    """Mean over ``factor x factor`` blocks (edge-padded to a multiple of it).

    Summed from strided views (``factor`` row slices, then ``factor`` column
    slices): an order of magnitude faster than ``reshape(...).mean(axis=(1,
    3))``, whose reduction runs over non-contiguous axes.
    """
    if factor <= 1:
        return image
    h, w = image.shape
    ph, pw = -h % factor, -w % factor
    if ph or pw:
        image = np.pad(image, ((0, ph), (0, pw)), mode="edge")
    hh, ww = image.shape
    rows = image[0::factor].astype(np.float32)
    for i in range(1, factor):
        rows += image[i::factor]
    blocks = rows.reshape(hh // factor, ww // factor, factor)
    out = blocks[..., 0].copy()
    for j in range(1, factor):
        out += blocks[..., j]
    out *= np.float32(1.0 / (factor * factor))
    return out


def _linear_taps(n_small: int, factor: int, n_out: int):
    """Source indices and weights of linear interpolation by an integer factor.

    Output pixel ``i`` sits at ``(i + 0.5) / factor - 0.5`` in the small grid
    (pixel centres aligned, as ``ndi.zoom(..., grid_mode=True)``), edges
    clamped (``mode="nearest"``).
    """
    x = (np.arange(n_out) + 0.5) / factor - 0.5
    x0 = np.floor(x)
    weight = (x - x0).astype(np.float32)
    i0 = x0.astype(np.intp)
    return np.clip(i0, 0, n_small - 1), np.clip(i0 + 1, 0, n_small - 1), weight


def _upsample(small: np.ndarray, factor: int, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear up-sampling of a block-mean image back to ``shape``.

    Equal (to float32 rounding) to ``ndi.zoom(small, factor, order=1,
    grid_mode=True, mode="nearest")`` cropped to ``shape``, and several times
    faster: rows by gathering whole rows, columns by ``factor`` shifted
    slices (output column ``j * factor + t`` mixes small columns ``j + x0``
    and ``j + x0 + 1`` with weights fixed by ``t``).
    """
    if factor <= 1:
        return small
    small = np.asarray(small, dtype=np.float32)
    i0, i1, w = _linear_taps(small.shape[0], factor, shape[0])
    rows = small[i0]
    rows *= (1 - w)[:, None]
    rows += small[i1] * w[:, None]
    n = small.shape[1]
    m = -(-shape[1] // factor)  # output column blocks, m <= n
    padded = np.empty((shape[0], n + 2), dtype=np.float32)
    padded[:, 1:-1] = rows
    padded[:, 0] = rows[:, 0]
    padded[:, -1] = rows[:, -1]
    out = np.empty((shape[0], m * factor), dtype=np.float32)
    blocks = out.reshape(shape[0], m, factor)
    for t in range(factor):
        x = (t + 0.5) / factor - 0.5
        x0 = int(np.floor(x))
        weight = np.float32(x - x0)
        blocks[:, :, t] = padded[:, 1 + x0 : 1 + x0 + m] * (1 - weight)
        blocks[:, :, t] += padded[:, 2 + x0 : 2 + x0 + m] * weight
    return out[:, : shape[1]]


def _background_factor(pixel_size_um: float, background_sigma_um: float) -> int:
    """Block size (px) of the local-background mean of :func:`segment_nuclei`."""
    return max(1, int(round(background_sigma_um / pixel_size_um / 4)))


def _seed_factor(pixel_size_um: float, smoothing_sigma_um: float) -> int:
    """Block size (px) of the h-maxima seed grid of :func:`segment_nuclei`."""
    return max(1, int(smoothing_sigma_um / pixel_size_um + 1e-9))


def nuclei_block_grid(
    pixel_size_um: float, smoothing_sigma_um: float = 1.0, background_sigma_um: float = 8.0
) -> int:
    """Period (px) of the block grids :func:`segment_nuclei` works on.

    A window whose origin is a multiple of it sees the same blocks as the
    whole image, so tiled and untiled nuclei agree away from window edges.
    """
    return lcm(
        _seed_factor(pixel_size_um, smoothing_sigma_um),
        _background_factor(pixel_size_um, background_sigma_um),
    )


def segment_nuclei(
    hematoxylin: np.ndarray,
    pixel_size_um: float,
    *,
    mask: np.ndarray | None = None,
    smoothing_sigma_um: float = 1.0,
    threshold_od: float = 0.08,
    background_sigma_um: float = 8.0,
    contrast_od: float = 0.03,
    split_h_od: float = 0.03,
    min_area_um2: float = 16.0,
    max_area_um2: float = 400.0,
    smoothed: np.ndarray | None = None,
) -> np.ndarray:
    """Segment nuclei in the hematoxylin OD channel.

    A pixel is nucleus when its smoothed hematoxylin OD exceeds both
    ``threshold_od`` (absolute, as QuPath's 0.1 OD) and the local mean OD
    (Gaussian, ``background_sigma_um``) by ``contrast_od``. The local term
    keeps densely packed tumour nuclei apart where their neighbours raise the
    baseline, and negative hematoxylin (DAB crosstalk) is clipped to 0 first.
    Touching nuclei are split by a watershed on the smoothed OD from its
    h-maxima (a seed must stand ``split_h_od`` above its surroundings),
    searched on a grid of about ``smoothing_sigma_um`` pixels for speed.

    Parameters
    ----------
    hematoxylin : ndarray of float, 2-D
        Hematoxylin amount (OD) from :func:`~sepher.ihc.unmix_h_dab`.
    pixel_size_um : float
        Pixel edge length (um).
    mask : ndarray of bool, optional
        Where nuclei may lie (e.g. the tissue mask).
    smoothing_sigma_um : float, default 1.0
        Gaussian sigma (um) before thresholding (QuPath: 1.5 um; 1 um keeps
        small, densely packed tumour nuclei apart).
    threshold_od : float, default 0.08
        Minimum smoothed hematoxylin OD of a nucleus pixel.
    background_sigma_um : float, default 8.0
        Sigma (um) of the local mean (QuPath's background radius: 8 um,
        wider than a nucleus).
    contrast_od : float, default 0.03
        Minimum excess over the local mean.
    split_h_od : float, default 0.03
        Minimum dynamic (OD) of a watershed seed.
    min_area_um2, max_area_um2 : float, default 16 and 400
        Nucleus area limits (um^2): QuPath's maximum; a minimum above
        QuPath's 10 um^2 drops chromatin fragments (carcinoma nuclei are
        ~30-150 um^2).
    smoothed : ndarray of float32, optional
        ``ndi.gaussian_filter(np.clip(hematoxylin, 0, None), smoothing_sigma_um /
        pixel_size_um)`` when already computed (e.g. for a whole image
        scored in windows); computed here otherwise.

    Returns
    -------
    ndarray of int32
        Nuclei labels 1..n (0 = none).
    """
    image = np.clip(np.asarray(hematoxylin, dtype=np.float32), 0, None)
    if smoothed is None:
        smooth = ndi.gaussian_filter(image, smoothing_sigma_um / pixel_size_um)
    else:
        smooth = np.asarray(smoothed, dtype=np.float32)
    factor = _background_factor(pixel_size_um, background_sigma_um)
    local = ndi.gaussian_filter(
        _block_mean(image, factor), background_sigma_um / pixel_size_um / factor
    )
    local = _upsample(local.astype(np.float32), factor, image.shape)
    foreground = (smooth > threshold_od) & (smooth - local > contrast_od)
    if mask is not None:
        foreground &= mask
    foreground = _fill_holes(_open_cross(foreground))
    markers, _ = ndi.label(
        _split_seeds(smooth, split_h_od, pixel_size_um, smoothing_sigma_um) & foreground
    )
    labels = _split_watershed(-smooth, markers, foreground)
    return _filter_areas(labels, pixel_size_um, min_area_um2, max_area_um2)


def _split_watershed(surface: np.ndarray, markers: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``segmentation.watershed(surface, markers, mask=mask)``, flooding only where needed.

    The flood never leaves a 4-connected component of ``mask``, so a
    component holding one marker becomes that marker's label whole and one
    holding none stays 0; only components with several markers (touching
    nuclei) are flooded.
    """
    components, n_components = ndi.label(mask)
    at = np.flatnonzero(markers)
    pairs = np.unique(
        components.ravel()[at].astype(np.int64) * (int(markers.max()) + 1) + markers.ravel()[at]
    )
    owner, marker = np.divmod(pairs, int(markers.max()) + 1)
    count = np.bincount(owner, minlength=n_components + 1)
    single = np.zeros(n_components + 1, dtype=np.int32)
    one = count[owner] == 1
    single[owner[one]] = marker[one]
    labels = single[components]
    several = count >= 2
    several[0] = False
    if several.any():
        crowded = several[components]
        flooded = segmentation.watershed(surface, markers, mask=crowded)
        labels[crowded] = flooded[crowded]
    return labels


def _split_seeds(
    smooth: np.ndarray, h: float, pixel_size_um: float, smoothing_sigma_um: float
) -> np.ndarray:
    """Watershed seeds: h-maxima of the smoothed OD, found on a coarser grid.

    The h-maxima (regional maxima of dynamic >= ``h``; Soille 2003, 6.3.4)
    are searched on a block-mean copy with pixels about ``smoothing_sigma_um``
    wide, and each coarse seed marks its block at full resolution. The image
    is already smoothed at that scale, so nothing resolvable is lost, and the
    grey reconstruction behind the h-maxima (a sort of every pixel) runs on
    1/factor^2 of the pixels: 4x fewer at 0.5 um/px, 16x at 0.25 um/px. On
    the demo tiles and scikit-image's IHC sample this gives the full-
    resolution nuclei to within 2 %.
    """
    factor = _seed_factor(pixel_size_um, smoothing_sigma_um)
    if factor == 1:
        return _h_maxima(smooth, h)
    coarse = _h_maxima(_block_mean(smooth, factor), h)
    fine = np.repeat(np.repeat(coarse, factor, axis=0), factor, axis=1)
    return fine[: smooth.shape[0], : smooth.shape[1]]


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """``ndi.binary_fill_holes`` (4-connected background) by one labelling.

    A hole is a 4-connected background component that does not touch the
    image border; labelling the background once is faster than the
    iterated conditional dilation of ``binary_fill_holes`` and gives the
    same mask.
    """
    background, n = ndi.label(~mask)
    if n == 0:
        return mask
    open_ids = np.unique(
        np.concatenate([background[0], background[-1], background[:, 0], background[:, -1]])
    )
    hole = np.ones(n + 1, dtype=bool)
    hole[open_ids] = False
    hole[0] = False
    return mask | hole[background]


def _h_maxima(image: np.ndarray, h: float) -> np.ndarray:
    """h-maxima of a float image (``skimage.morphology.h_maxima``, 8-connected).

    The regional maxima of dynamic >= ``h`` (Soille 2003, 6.3.4): pixels
    where the image exceeds its grey reconstruction by dilation from
    ``image - h`` by at least ``h``. Computed on the image quantised to
    steps of ``h / 256`` (OD 1.2e-4 at the default ``h``; at most 65000
    levels), so the reconstruction's sort of every pixel is a radix sort of
    16-bit levels and the levels are their own ranks: one O(n) sort instead
    of two comparison sorts, ~3x faster than scikit-image's float path.
    Maxima whose dynamic differs from ``h`` by less than a step may differ.
    """
    image = np.asarray(image, dtype=np.float64)
    if image.size == 0:
        return np.zeros(image.shape, dtype=bool)
    # levels counted from 0 (or a negative minimum): a non-negative image is
    # quantised on the same grid in every window of it
    low = min(float(image.min()), 0.0)
    span = float(image.max()) - low
    if span < h:
        return np.zeros(image.shape, dtype=bool)
    step = max(h / 256.0, span / 65000.0)
    levels = np.rint((image - low) / step).astype(np.int32)
    h_levels = max(1, int(round(h / step)))
    marker = np.maximum(levels - h_levels, 0)
    rec = _reconstruct_by_dilation(marker.astype(np.uint16), levels.astype(np.uint16))
    return levels - rec >= h_levels


def _reconstruct_by_dilation(seed: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Grey reconstruction by dilation (8-connected) of uint16 ``seed`` under ``mask``.

    Same algorithm and inner loop as ``skimage.morphology.reconstruction``
    (Vincent 1993 via CellProfiler's rank-linked list), but with the 16-bit
    levels as ranks and a radix sort. Falls back to the public function if
    scikit-image's inner loop moves.
    """
    try:
        from skimage.morphology._grayreconstruct import reconstruction_loop
    except ImportError:  # pragma: no cover - private scikit-image module moved
        reconstruction_loop = None
    h, w = seed.shape
    size = 2 * (h + 2) * (w + 2)
    if reconstruction_loop is None or size >= 2**31:
        rec = morphology.reconstruction(seed.astype(np.float64), mask, method="dilation")
        return rec.astype(np.int32)
    images = np.full((2, h + 2, w + 2), seed.min(initial=0), dtype=np.uint16)
    images[0, 1:-1, 1:-1] = seed
    images[1, 1:-1, 1:-1] = mask
    flat = images.reshape(-1)
    order = np.argsort(flat, kind="stable")[::-1].astype(np.int32)
    prev = np.full(size, -1, dtype=np.int32)
    after = np.full(size, -1, dtype=np.int32)
    prev[order[1:]] = order[:-1]
    after[order[:-1]] = order[1:]
    ranks = flat.astype(np.uint32)
    strides = np.array(
        [dy * (w + 2) + dx for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx], dtype=np.int32
    )
    image_stride = (h + 2) * (w + 2)
    reconstruction_loop(ranks, prev, after, strides, int(order[0]), image_stride)
    return ranks[:image_stride].reshape(h + 2, w + 2)[1:-1, 1:-1].astype(np.int32)


def _filter_areas(labels, pixel_size_um, min_area_um2, max_area_um2) -> np.ndarray:
    areas = np.bincount(labels.ravel()) * pixel_size_um**2
    keep = (areas >= min_area_um2) & (areas <= max_area_um2)
    keep[0] = False
    new_ids = np.zeros(len(areas), dtype=np.int32)
    new_ids[keep] = np.arange(1, keep.sum() + 1, dtype=np.int32)
    return new_ids[labels]


def segment_cells(
    nuclei: np.ndarray,
    pixel_size_um: float,
    *,
    dab: np.ndarray | None = None,
    method: str = "watershed",
    expansion_um: float = 5.0,
    smoothing_sigma_um: float = 0.5,
    mask: np.ndarray | None = None,
    surface: np.ndarray | None = None,
) -> np.ndarray:
    """Grow each nucleus into its cell; cell ``k`` contains nucleus ``k``.

    Parameters
    ----------
    nuclei : ndarray of int
        Nuclei labels.
    pixel_size_um : float
        Pixel edge length (um).
    dab : ndarray of float, optional
        DAB OD; needed for ``method="watershed"``.
    method : {"expand", "watershed"}, default "watershed"
        ``"expand"``: each nucleus grows by ``expansion_um``, neighbours
        meeting half-way (QuPath's cell expansion). ``"watershed"``: seeded
        watershed on the smoothed DAB within the same reach, so stained
        membranes become the borders between neighbours.
    expansion_um : float, default 5.0
        Maximum growth (um) beyond the nucleus (QuPath's default 5 um).
    smoothing_sigma_um : float, default 0.5
        Gaussian sigma (um) of the DAB for ``"watershed"``.
    mask : ndarray of bool, optional
        Pixels cells may cover (e.g. the tissue mask); nuclei always stay.
    surface : ndarray of float32, optional
        For ``"watershed"``: ``ndi.gaussian_filter(dab, smoothing_sigma_um /
        pixel_size_um)`` when already computed; ``dab`` is then not read.

    Returns
    -------
    ndarray of int32
        Cell labels.
    """
    nuclei = np.asarray(nuclei, dtype=np.int32)
    if method not in ("expand", "watershed"):
        raise ValueError("method must be 'expand' or 'watershed'")
    if method == "expand":
        distance, indices = ndi.distance_transform_edt(nuclei == 0, return_indices=True)
        reach = distance * pixel_size_um <= expansion_um
    else:
        if dab is None and surface is None:
            raise ValueError("method='watershed' needs the DAB channel")
        reach = _within_distance(nuclei > 0, pixel_size_um, expansion_um)
    if mask is not None:
        reach &= mask | (nuclei > 0)
    if method == "expand":
        cells = nuclei[indices[0], indices[1]]
        cells[~reach] = 0
        return cells
    if surface is None:
        surface = ndi.gaussian_filter(
            np.asarray(dab, dtype=np.float32), smoothing_sigma_um / pixel_size_um
        )
    # Flood only from the nuclei's rims: an interior nucleus pixel (all four
    # neighbours in its own nucleus) would be queued and popped without ever
    # labelling anything, so leaving it out gives the same cells, faster.
    rim = cell_edges(nuclei)
    interior = (nuclei > 0) & ~rim
    cells = segmentation.watershed(surface, np.where(rim, nuclei, 0), mask=reach & ~interior)
    cells[interior] = nuclei[interior]
    return cells.astype(np.int32, copy=False)


def _within_distance(seeds: np.ndarray, pixel_size_um: float, distance_um: float) -> np.ndarray:
    """Pixels within ``distance_um`` (Euclidean) of a ``seeds`` pixel.

    Same as ``ndi.distance_transform_edt(~seeds) * pixel_size_um <=
    distance_um`` but cheaper for a short reach: the distance to the nearest
    seed within each row, then for each row offset ``dy`` within reach, rows
    ``dy`` away whose row distance is at most ``sqrt(r^2 - dy^2)``.
    """
    seeds = np.asarray(seeds, dtype=bool)
    h, w = seeds.shape
    # largest squared pixel distance d2 with sqrt(d2) * pixel_size <= distance (as the EDT test)
    limit = int(np.floor(distance_um / pixel_size_um)) + 2
    d2 = np.arange(limit**2 + 1)
    allowed = d2[np.sqrt(d2) * pixel_size_um <= distance_um]
    if allowed.size == 0:
        return seeds.copy()
    max_d2 = int(allowed.max())
    radius = isqrt(max_d2)
    cap = radius + 1
    index = np.arange(w, dtype=np.int32)
    left = np.maximum.accumulate(np.where(seeds, index, -cap - 1), axis=1)
    right = np.minimum.accumulate(np.where(seeds, index, w + cap)[:, ::-1], axis=1)[:, ::-1]
    row_distance = np.minimum(np.minimum(index - left, right - index), cap)
    dtype = np.uint8 if cap < 256 else np.int32
    row_distance = row_distance.astype(dtype)
    out = row_distance <= radius
    for dy in range(1, min(radius, h - 1) + 1):
        dx = isqrt(max_d2 - dy * dy)
        out[dy:] |= row_distance[:-dy] <= dx
        out[:-dy] |= row_distance[dy:] <= dx
    return out


def _open_cross(mask: np.ndarray) -> np.ndarray:
    """``ndi.binary_opening(mask)`` (3 x 3 cross, outside = False) by shifted slices."""
    mask = np.asarray(mask, dtype=bool)
    eroded = mask.copy()
    eroded[1:] &= mask[:-1]
    eroded[:-1] &= mask[1:]
    eroded[:, 1:] &= mask[:, :-1]
    eroded[:, :-1] &= mask[:, 1:]
    eroded[[0, -1], :] = False
    eroded[:, [0, -1]] = False
    opened = eroded.copy()
    opened[1:] |= eroded[:-1]
    opened[:-1] |= eroded[1:]
    opened[:, 1:] |= eroded[:, :-1]
    opened[:, :-1] |= eroded[:, 1:]
    return opened


def _dilate_disc(mask: np.ndarray, radius: float) -> np.ndarray:
    """``ndi.binary_dilation`` by the disc ``dy^2 + dx^2 <= radius^2`` (outside = False).

    The disc as horizontal runs: the mask is widened along rows by each
    run's half-width, then shifted by the run's row offset and OR-ed; a few
    byte-wise passes instead of one neighbourhood scan per pixel.
    """
    mask = np.asarray(mask, dtype=bool)
    r = int(np.floor(radius + 1e-9))
    widened = [mask]
    for dx in range(1, r + 1):
        wider = widened[-1].copy()
        wider[:, dx:] |= mask[:, :-dx]
        wider[:, :-dx] |= mask[:, dx:]
        widened.append(wider)
    out = widened[r].copy()
    for dy in range(1, min(r, mask.shape[0] - 1) + 1):
        run = widened[isqrt(int(np.floor(radius**2 + 1e-9)) - dy * dy)]
        out[dy:] |= run[:-dy]
        out[:-dy] |= run[dy:]
    return out


def cell_edges(cells: np.ndarray) -> np.ndarray:
    """Cell pixels with a 4-neighbour of another label (another cell or none).

    The image border is not an edge (the cell continues outside the field).
    """
    cells = np.asarray(cells)
    edge = np.zeros(cells.shape, dtype=bool)
    differs = cells[1:, :] != cells[:-1, :]
    edge[1:, :] |= differs
    edge[:-1, :] |= differs
    differs = cells[:, 1:] != cells[:, :-1]
    edge[:, 1:] |= differs
    edge[:, :-1] |= differs
    return edge & (cells > 0)


def membrane_band(
    cells: np.ndarray,
    nuclei: np.ndarray,
    pixel_size_um: float,
    width_um: float = 1.0,
    *,
    return_edge_zone: bool = False,
):
    """Membrane band: cell pixels within ``width_um`` of the cell edge.

    Parameters
    ----------
    cells, nuclei : ndarray of int
        Cell and nuclei labels (nucleus ``k`` in cell ``k``).
    pixel_size_um : float
        Pixel edge length (um).
    width_um : float, default 1.0
        Band width (um) inward from the edge. Neighbouring cells' bands
        together straddle their shared membrane (2 x width), which covers a
        membrane blurred to ~1-2 um by a 20x / 40x brightfield objective.

    return_edge_zone : bool, default False
        Also return the edge zone: every pixel within ``width_um`` of a cell
        edge, nucleus pixels included (a nucleus touching its cell's edge is
        blurred into by the membrane there).

    Returns
    -------
    ndarray of int32
        Cell id on band pixels (nucleus pixels excluded), 0 elsewhere; with
        ``return_edge_zone`` a tuple ``(band, zone)`` (zone: bool).
    """
    cells = np.asarray(cells, dtype=np.int32)
    edge = cell_edges(cells)
    radius = width_um / pixel_size_um - 0.5
    if radius >= 1:
        edge = _dilate_disc(edge, radius)
    band = edge & (cells > 0) & (np.asarray(nuclei) == 0)
    band = np.where(band, cells, 0).astype(np.int32)
    return (band, edge) if return_edge_zone else band


def _smooth(image: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian smoothing on a block-mean down-sampled copy (sigma >= 4 px)."""
    factor = max(1, int(round(sigma_px / 4)))
    small = ndi.gaussian_filter(_block_mean(image, factor), sigma_px / factor)
    return _upsample(small.astype(np.float32), factor, image.shape)


def tumour_epithelium(
    nuclei: np.ndarray,
    pixel_size_um: float,
    *,
    od_sum: np.ndarray | None = None,
    counterstain_od: np.ndarray | None = None,
    tissue: np.ndarray | None = None,
    sigma_um: float = 8.0,
    min_nuclear_fraction: float = 0.15,
    extranuclear_sigma_um: float = 4.0,
    min_extranuclear_od: float = 0.0,
    min_nucleus_area_um2: float = 0.0,
    min_nucleus_roundness: float = 0.0,
) -> np.ndarray:
    """Tumour epithelium versus stroma: dense nuclei in dense cytoplasm.

    Give ``counterstain_od`` (the summed OD of everything but DAB: the
    hematoxylin and residual part, :func:`~sepher.ihc.scoring.score_image`
    passes it) rather than ``od_sum``: the call then uses no DAB at all, so a
    HER2 0 tumour, whose cells lost the stain, is found as readily as a 3+
    one (issue 16: the DAB-weighted call read pale HER2 0 tumour as stroma).

    Carcinoma cells pack their nuclei closely (nuclei cover ~20-40 % of a
    tumour nest) in continuous cytoplasm; stroma has scattered fibroblast
    and immune nuclei among pale collagen fibres and clefts. A pixel is
    epithelium where (1) the Gaussian-weighted fraction of area covered by
    nuclei (sigma ``sigma_um``, about one cell diameter) reaches
    ``min_nuclear_fraction`` and (2) the mean summed RGB OD of the tissue
    *outside* nuclei (sigma ``extranuclear_sigma_um``) reaches
    ``min_extranuclear_od``: stroma's pale fibres are ~0.2-0.35 (scikit-image's
    IHC sample), tumour cytoplasm with DAB 0.7-1.3, unstained (HER2 0)
    carcinoma cytoplasm ~0.5. Deliberately simple: a HER2 0 tumour with
    cytoplasm as pale as stroma is read as stroma, and dense lymphocytic
    infiltrates in dense matrix as tumour.

    Parameters
    ----------
    nuclei : ndarray of int
        Nuclei labels.
    pixel_size_um : float
        Pixel edge length (um).
    od_sum : ndarray of float, optional
        Summed RGB OD (DAB included: the older call); without it or
        ``counterstain_od`` only criterion (1) is applied.
    counterstain_od : ndarray of float, optional
        Summed RGB OD without DAB's share (``od_sum - dab * sum(dab
        vector)``); used instead of ``od_sum`` when given.
    tissue : ndarray of bool, optional
        Tissue mask; epithelium lies within it.
    sigma_um : float, default 8.0
        Gaussian sigma (um) of the nuclear density.
    min_nuclear_fraction : float, default 0.15
        Local nuclear area fraction from which a pixel can be epithelium.
    extranuclear_sigma_um : float, default 4.0
        Gaussian sigma (um) of the extranuclear OD.
    min_extranuclear_od : float, default 0.0
        Minimum local mean summed OD outside nuclei; 0 or less skips the
        criterion. With ``counterstain_od`` on a HER2 IHC slide it is best
        skipped (:class:`~sepher.ihc.IHCParams` does): hematoxylin stains
        nuclei, not cytoplasm, so the DAB-free OD of unstained tumour
        cytoplasm is as faint as stroma's (the realistic demo tiles: both
        ~0-0.1), and the criterion drops pale HER2 0 / 1+ nests while
        keeping nothing out that the tissue mask does not.
    min_nucleus_area_um2, min_nucleus_roundness : float, default 0
        Only nuclei at least this large (um^2) and this round (minor / major
        axis of the equal-moment ellipse) count towards the density:
        carcinoma nuclei are large and round-to-oval (~30-150 um^2), stromal
        fibroblasts spindle-shaped and lymphocytes small. 0 counts every
        nucleus (the older call).

    Returns
    -------
    ndarray of bool
    """
    nuclei = np.asarray(nuclei)
    is_nucleus = nuclei > 0
    counted = is_nucleus
    if min_nucleus_area_um2 > 0 or min_nucleus_roundness > 0:
        area, roundness = _nucleus_shapes(nuclei)
        keep = (area * pixel_size_um**2 >= min_nucleus_area_um2) & (
            roundness >= min_nucleus_roundness
        )
        keep[0] = False
        counted = keep[nuclei]
    density = _smooth(counted.astype(np.float32), sigma_um / pixel_size_um)
    epithelium = density >= min_nuclear_fraction
    if counterstain_od is not None:
        od_sum = counterstain_od
    if od_sum is not None and min_extranuclear_od > 0:
        weight = ~is_nucleus if tissue is None else (~is_nucleus & tissue)
        weight = weight.astype(np.float32)
        sigma_px = extranuclear_sigma_um / pixel_size_um
        total = _smooth(np.asarray(od_sum, dtype=np.float32) * weight, sigma_px)
        share = _smooth(weight, sigma_px)
        epithelium &= total >= min_extranuclear_od * np.maximum(share, 1e-3)
    if tissue is not None:
        epithelium &= tissue
    return epithelium


def _nucleus_shapes(nuclei: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Area (px) and roundness of each label (index = label; label 0 unused).

    Roundness is the minor / major axis ratio of the ellipse with the same
    second moments (``skimage.measure.regionprops``' axis lengths), from
    per-label pixel-coordinate sums: one pass of ``np.bincount`` instead of a
    region loop.
    """
    flat = nuclei.ravel()
    at = np.flatnonzero(flat)
    ids = flat[at]
    size = int(flat.max(initial=0)) + 1
    ys, xs = np.divmod(at, nuclei.shape[1])
    ys = ys.astype(np.float64)
    xs = xs.astype(np.float64)
    n = np.bincount(ids, minlength=size).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        my = np.bincount(ids, ys, size) / n
        mx = np.bincount(ids, xs, size) / n
        vyy = np.bincount(ids, ys * ys, size) / n - my**2
        vxx = np.bincount(ids, xs * xs, size) / n - mx**2
        vxy = np.bincount(ids, ys * xs, size) / n - my * mx
        half_trace = (vyy + vxx) / 2
        root = np.sqrt(np.maximum(((vyy - vxx) / 2) ** 2 + vxy**2, 0))
        roundness = np.sqrt(np.maximum(half_trace - root, 0) / (half_trace + root))
    return n, np.nan_to_num(roundness, nan=0.0)
