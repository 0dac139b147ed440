"""Per-cell measurements: areas, HER2 per compartment, membrane completeness,
nuclear fraction and QC flags.

Every compartment of every cell is coded in one label image
(:func:`~sepher.imaging.compartments.compartment_codes`), so each channel
needs one :func:`numpy.bincount` for its sums and one sort for its medians;
no Python loop runs over cells.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sepher.imaging.compartments import compartment_codes

__all__ = ["estimate_background", "label_medians", "label_sums", "measure_cells", "noise_sd"]

COMPARTMENTS = ("nucleus", "cytoplasm", "membrane")  # column order of the table
COMPARTMENT_ORDER = ("nucleus", "membrane", "cytoplasm")  # order of compartment_codes


def label_sums(values: np.ndarray, labels: np.ndarray, n_labels: int):
    """Pixel counts and intensity sums per label 0..n_labels (bincount)."""
    lab = labels.ravel()
    count = np.bincount(lab, minlength=n_labels + 1)[: n_labels + 1]
    total = np.bincount(lab, weights=values.ravel().astype(np.float64), minlength=n_labels + 1)
    return count, total[: n_labels + 1]


def _sortable_key(values: np.ndarray) -> tuple[np.ndarray, int] | None:
    """Non-negative int64 keys ordering like ``values`` and their bit width,
    for uint8/uint16 (the values) and float32 (IEEE bits made monotone);
    None for other dtypes."""
    if values.dtype in (np.uint8, np.uint16):
        return values.astype(np.int64), 8 * values.dtype.itemsize
    if values.dtype == np.float32:
        bits = values.view(np.uint32).astype(np.int64)
        neg = bits >= 1 << 31
        bits[neg] = (1 << 32) - 1 - bits[neg]
        bits[~neg] += 1 << 31
        return bits, 32
    return None


def _key_values(key: np.ndarray, dtype, bits: int) -> np.ndarray:
    low = key & ((1 << bits) - 1)
    if dtype == np.float32:
        neg = low < (1 << 31)
        low = np.where(neg, (1 << 32) - 1 - low, low - (1 << 31)).astype(np.uint32)
        return low.view(np.float32).astype(np.float64)
    return low.astype(np.float64)


def label_medians(values: np.ndarray, labels: np.ndarray, n_labels: int) -> np.ndarray:
    """Median intensity per label 1..n_labels (NaN for empty labels).

    One sort of the labelled pixels: uint8/uint16 and float32 images are
    sorted on a single int64 key ``label * 2**bits + value`` (several times
    faster than a lexsort; float32 through its order-preserving bit
    pattern), other dtypes with :func:`numpy.lexsort`. Labels must lie in
    0..n_labels.
    """
    lab = np.asarray(labels).ravel()
    raw = np.asarray(values).ravel()
    if raw.dtype in (np.uint8, np.uint16, np.float32) and n_labels < 1 << 30:
        key, bits = _sortable_key(raw)
        key |= lab.astype(np.int64, copy=False) << bits
        key.sort()
        count = np.bincount(lab, minlength=n_labels + 1)[: n_labels + 1]
        pick = _median_positions(count)
        out = np.full(n_labels, np.nan)
        has = count[1:] > 0
        lo, hi = pick
        out[has] = 0.5 * (
            _key_values(key[lo[has]], raw.dtype, bits) + _key_values(key[hi[has]], raw.dtype, bits)
        )
        return out
    sel = lab > 0
    lab = lab[sel]
    val = raw[sel].astype(np.float64)
    val = val[np.lexsort((val, lab))]
    count = np.bincount(lab, minlength=n_labels + 1)[1 : n_labels + 1]
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    out = np.full(n_labels, np.nan)
    has = count > 0
    lo = start[has] + (count[has] - 1) // 2
    hi = start[has] + count[has] // 2
    out[has] = 0.5 * (val[lo] + val[hi])
    return out


def _median_positions(count: np.ndarray):
    """Positions of the lower and upper middle elements of labels 1..n in an
    array sorted by label (label 0 first), from the counts per label 0..n."""
    start = np.cumsum(count) - count
    c = count[1:]
    return start[1:] + (c - 1) // 2, start[1:] + c // 2


def estimate_background(channel: np.ndarray, cells: np.ndarray, min_fraction: float = 0.05):
    """Background level and noise SD of a channel.

    When at least ``min_fraction`` of the field lies outside all cells, the
    level is the median and the SD 1.4826 x MAD of those pixels. Otherwise
    (confluent fields) the level is the 2nd percentile of the channel and the
    SD the fast noise estimate of Immerkaer (1996, Comput Vis Image Underst
    64:300), see :func:`noise_sd`. 8/16-bit images are summarised through
    their histogram (same numbers, no sort).

    Returns
    -------
    (float, float)
        Background level and SD, in the channel's intensity units.
    """
    channel = np.asarray(channel)
    outside_mask = np.asarray(cells) == 0
    n_out = int(np.count_nonzero(outside_mask))
    if n_out >= min_fraction * channel.size and n_out > 100:
        if channel.dtype in (np.uint8, np.uint16):
            hist = np.bincount(channel[outside_mask], minlength=1 << 8 * channel.dtype.itemsize)
            level = _hist_median(np.arange(hist.size, dtype=np.float64), hist)
            dev = np.abs(np.arange(hist.size, dtype=np.float64) - level)
            order = np.argsort(dev, kind="stable")
            # scaled in float32 like the float path below
            return level, float(1.4826 * np.float32(_hist_median(dev[order], hist[order])))
        outside = channel[outside_mask].astype(np.float32, copy=False)
        level = float(np.median(outside))
        sd = float(1.4826 * np.median(np.abs(outside - level)))
        return level, sd
    if channel.dtype in (np.uint8, np.uint16):
        hist = np.bincount(channel.ravel(), minlength=1 << 8 * channel.dtype.itemsize)
        level = _hist_percentile(hist, 2.0)
        return level, noise_sd(channel)
    img = channel.astype(np.float32, copy=False)
    return float(np.percentile(img, 2)), noise_sd(img)


def _hist_median(values: np.ndarray, counts: np.ndarray) -> float:
    """Median of a multiset given as sorted ``values`` with ``counts``
    (mean of the two middle elements when the total is even)."""
    cum = np.cumsum(counts)
    total = int(cum[-1])
    lo = values[np.searchsorted(cum, (total - 1) // 2, side="right")]
    hi = values[np.searchsorted(cum, total // 2, side="right")]
    return float(0.5 * (lo + hi))


def _hist_percentile(hist: np.ndarray, q: float) -> float:
    """``numpy.percentile(values, q)`` (linear interpolation) of integer
    values 0..len(hist)-1 given by their histogram."""
    cum = np.cumsum(hist)
    pos = q / 100 * (int(cum[-1]) - 1)
    below = int(np.floor(pos))
    lo = float(np.searchsorted(cum, below, side="right"))
    hi = float(np.searchsorted(cum, below + 1, side="right"))
    return lo + (hi - lo) * (pos - below)


def noise_sd(image: np.ndarray) -> float:
    """Gaussian noise SD of an image by Immerkaer's (1996) Laplacian-difference
    estimator, insensitive to smooth structure: ``sqrt(pi/2) / (6 (H-2)(W-2))
    * sum |I * N|`` with ``N = [[1,-2,1],[-2,4,-2],[1,-2,1]]``, applied as
    its two separable second differences (in exact integers for 8/16-bit
    images)."""
    img = np.asarray(image)
    h, w = img.shape
    if h < 3 or w < 3:
        return float(img.astype(np.float64).std())
    img = img.astype(np.int32 if img.dtype in (np.uint8, np.uint16) else np.float32, copy=False)
    rows = img[:, :-2] + img[:, 2:]
    rows -= 2 * img[:, 1:-1]
    conv = rows[:-2] + rows[2:]
    conv -= 2 * rows[1:-1]
    total = np.abs(conv).sum(dtype=np.float64)
    return float(np.sqrt(np.pi / 2) * total / (6 * (h - 2) * (w - 2)))


def _saturation_value(channel: np.ndarray):
    if np.issubdtype(channel.dtype, np.integer):
        return np.iinfo(channel.dtype).max
    return None


def measure_cells(
    image_channels: dict,
    nuclei: np.ndarray,
    cells: np.ndarray,
    pixel_size_um: float,
    *,
    her2_role: str = "her2",
    membrane_band_um: float = 1.0,
    completeness_k: float = 3.0,
    background: dict | None = None,
    nucleus_area_um2: tuple[float, float] = (10.0, 400.0),
    cell_area_um2: tuple[float, float] = (30.0, 5000.0),
    saturation_value: float | None = None,
) -> pd.DataFrame:
    """Measure every cell.

    Parameters
    ----------
    image_channels : dict of str to ndarray
        Channel role (e.g. ``"her2"``, ``"nuclear"``, ``"membrane"``) to its
        2-D intensity image. Every role is measured; ``her2_role`` must be
        present.
    nuclei, cells : ndarray of int
        Nuclei and cell labels (cell ``k`` holds nucleus ``k``).
    pixel_size_um : float
        Pixel edge length (um).
    her2_role : str, default "her2"
        Role whose intensities define completeness and nuclear fraction.
    membrane_band_um : float, default 1.0
        Membrane band width (um), see :func:`sepher.imaging.compartments`.
    completeness_k : float, default 3.0
        A membrane-band pixel is "stained" when HER2 > background + k * SD.
    background : dict of str to (level, sd), optional
        Background per role; estimated with :func:`estimate_background`
        when missing.
    nucleus_area_um2, cell_area_um2 : (float, float)
        Plausible area ranges (um^2) for the ``implausible_size`` flag.
    saturation_value : float, optional
        Intensity at or above which a pixel is saturated; default the
        dtype maximum for integer images (float images: not judged).

    Returns
    -------
    pandas.DataFrame
        One row per cell: ``cell_id``, ``centroid_y_um``, ``centroid_x_um``,
        ``nucleus_area_um2``, ``cell_area_um2``, ``membrane_area_um2``,
        ``cytoplasm_area_um2``; per role and compartment
        ``{role}_mean_{c}``, ``{role}_integrated_{c}`` (sum of intensities,
        intensity units x pixels), ``{role}_median_{c}`` and
        ``{role}_background``; then ``membrane_completeness`` (fraction of
        membrane-band pixels above background + k SD), ``nuclear_fraction``
        (background-subtracted nuclear / whole-cell integrated HER2), and
        flags ``border``, ``saturated``, ``implausible_size``.
    """
    if her2_role not in image_channels:
        raise ValueError(f"image_channels has no '{her2_role}' role: {sorted(image_channels)}")
    cells = np.asarray(cells)
    n = int(cells.max()) if cells.size else 0
    ids = np.arange(1, n + 1)
    code = compartment_codes(nuclei, cells, pixel_size_um, membrane_band_um)
    flat = code.ravel()
    n_codes = 3 * n + 1
    # columns: 0 nucleus, 1 membrane band, 2 cytoplasm (see compartment_codes)
    count = np.bincount(flat, minlength=n_codes)
    per_comp = count[1:].reshape(n, 3)
    count_cell = per_comp.sum(axis=1)
    px_area = pixel_size_um**2
    h, w = cells.shape
    coord = np.repeat(np.arange(h, dtype=np.float64), w)
    sum_y = np.bincount(flat, weights=coord, minlength=n_codes)[1:].reshape(n, 3).sum(axis=1)
    coord = np.tile(np.arange(w, dtype=np.float64), h)
    sum_x = np.bincount(flat, weights=coord, minlength=n_codes)[1:].reshape(n, 3).sum(axis=1)
    del coord
    present = count_cell > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {
            "cell_id": ids,
            "centroid_y_um": sum_y / count_cell * pixel_size_um,
            "centroid_x_um": sum_x / count_cell * pixel_size_um,
        }
    counts = dict(zip(COMPARTMENT_ORDER, per_comp.T, strict=True))
    out["nucleus_area_um2"] = counts["nucleus"] * px_area
    out["cell_area_um2"] = count_cell * px_area
    out["membrane_area_um2"] = counts["membrane"] * px_area
    out["cytoplasm_area_um2"] = counts["cytoplasm"] * px_area
    background = dict(background or {})
    saturated = np.zeros(n, dtype=bool)
    totals = {}
    for role, channel in image_channels.items():
        channel = np.asarray(channel)
        if channel.shape != cells.shape:
            raise ValueError(f"channel '{role}' shape {channel.shape} != labels {cells.shape}")
        if role not in background:
            background[role] = estimate_background(channel, cells)
        out[f"{role}_background"] = np.full(n, background[role][0])
        total = np.bincount(flat, weights=channel.ravel(), minlength=n_codes)[1:].reshape(n, 3)
        totals[role] = total
        medians = label_medians(channel, code, n_codes - 1).reshape(n, 3)
        for c in COMPARTMENTS:
            j = COMPARTMENT_ORDER.index(c)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[f"{role}_mean_{c}"] = np.where(counts[c] > 0, total[:, j] / counts[c], np.nan)
            out[f"{role}_integrated_{c}"] = total[:, j]
            out[f"{role}_median_{c}"] = medians[:, j]
        sat = saturation_value if saturation_value is not None else _saturation_value(channel)
        if sat is not None:
            hit = channel >= sat
            if hit.any():
                hit_ids = np.unique(cells[hit])
                saturated[hit_ids[hit_ids > 0] - 1] = True
    # HER2-derived readouts
    her2 = np.asarray(image_channels[her2_role])
    level, sd = background[her2_role]
    stained = her2 > level + completeness_k * sd
    n_stained = np.bincount(flat[stained.ravel()], minlength=n_codes)[1:].reshape(n, 3)[:, 1]
    her2_total = totals[her2_role]
    her2_cell = her2_total.sum(axis=1)
    nuc_net = her2_total[:, 0] - level * counts["nucleus"]
    cell_net = her2_cell - level * count_cell
    with np.errstate(invalid="ignore", divide="ignore"):
        out["membrane_completeness"] = np.where(
            counts["membrane"] > 0, n_stained / counts["membrane"], np.nan
        )
        out["nuclear_fraction"] = np.where(cell_net > 0, nuc_net / cell_net, np.nan)
    edge = np.unique(np.concatenate([cells[0], cells[-1], cells[:, 0], cells[:, -1]]))
    out["border"] = np.isin(ids, edge)
    out["saturated"] = saturated
    lo_n, hi_n = nucleus_area_um2
    lo_c, hi_c = cell_area_um2
    out["implausible_size"] = (
        (out["nucleus_area_um2"] < lo_n)
        | (out["nucleus_area_um2"] > hi_n)
        | (out["cell_area_um2"] < lo_c)
        | (out["cell_area_um2"] > hi_c)
    )
    return pd.DataFrame(out)[present].reset_index(drop=True)
