"""Per-image background and illumination (flat-field) correction.

A widefield field is recorded as ``raw = dark + I(x) * (b + s(x))`` plus
noise: ``dark`` the camera offset (ADU recorded without light), ``I(x)`` the
relative illumination / vignetting of the optical path (1 where the field is
best lit), ``b`` the non-specific background emission and ``s(x)`` the
specific stain. Where there is no cell, ``raw = dark + b I(x)``: the
background is a picture of the illumination. This module estimates it the
way CellProfiler's *CorrectIlluminationCalculate* does with the
"Background" method and "Fit Polynomial" smoothing, but per image and from
pixels known to hold no cell (beyond a cell's reach from every detected
nucleus) rather than from block minima:

1. the field is cut into blocks of about ``block_um``; blocks wholly out of
   reach of every nucleus are background blocks, summarised by their mean;
2. a smooth surface (a 2nd-order polynomial in x and y, as CellProfiler's
   "Fit Polynomial"; lower order when few background blocks exist) is
   fitted to them by weighted least squares, dropping blocks that lie more
   than 3 robust SD from the surface (cells whose nucleus is outside the
   field or was missed) and refitting;
3. ``I(x) = (B(x) - dark) / max(B - dark)`` over the field, and the image is
   corrected with CorrectIlluminationApply's "Divide" on the dark-subtracted
   signal, keeping the camera's intensity units: ``dark + (raw - dark) /
   I(x)``. The background becomes flat (``dark + b``) and every cell's
   signal reads as it would at the best-lit point of the field.

The normalisation to the field's maximum (not its mean) makes a corrected
intensity the one the microscope records on the optical axis, independent of
where in the field the cell sits; a mean-normalised flat field would make
the readout depend on each field's vignetting.

Without background pixels (a confluent field) nothing can be estimated from
the image; the illumination is taken as flat and the background left to
:func:`sepher.imaging.measure.estimate_background`.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

__all__ = ["background_blocks", "fit_surface", "flat_field"]

#: Fewest background blocks for a 2nd- / 1st-order surface; fewer: a constant.
MIN_BLOCKS = {2: 24, 1: 8}


def _block_grid(shape, block_px):
    h, w = shape
    return -(-h // block_px), -(-w // block_px)


def background_blocks(
    nuclei: np.ndarray, pixel_size_um: float, reach_um: float, block_um: float = 5.0
) -> tuple[int, np.ndarray]:
    """Blocks of the field that no cell can reach.

    A block is background when no nucleus pixel lies within ``reach_um`` of
    it (a cell extends at most ``reach_um`` beyond its nucleus, the
    ``cell_max_radius_um`` of the cell segmentation). Decided on the block
    grid: blocks holding a nucleus pixel are dilated by a disc of ``reach_um
    / block_um + 1`` blocks (the extra block covers a nucleus at the far side
    of its block).

    Returns
    -------
    block_px : int
        Block edge (pixels), at least 4.
    mask : ndarray of bool (blocks_y, blocks_x)
        True for background blocks (partial blocks at the right / bottom
        edge included).
    """
    block_px = max(4, int(round(block_um / pixel_size_um)))
    gy, gx = _block_grid(nuclei.shape, block_px)
    h, w = nuclei.shape
    padded = np.zeros((gy * block_px, gx * block_px), dtype=bool)
    padded[:h, :w] = nuclei > 0
    has = padded.reshape(gy, block_px, gx, block_px).any(axis=(1, 3))
    r = reach_um / (block_px * pixel_size_um) + 1.0
    k = int(np.ceil(r))
    yy, xx = np.mgrid[-k : k + 1, -k : k + 1]
    disc = yy**2 + xx**2 <= r**2
    return block_px, ~ndi.binary_dilation(has, structure=disc)


def _block_sums(img: np.ndarray, block_px: int) -> np.ndarray:
    """Sums over ``block_px`` blocks (partial blocks at the bottom / right
    edge included), float64; integer images summed exactly in integers."""
    h, w = img.shape
    acc = np.uint64 if np.issubdtype(img.dtype, np.unsignedinteger) else np.float64
    full = h // block_px
    rows = img[: full * block_px].reshape(full, block_px, w).sum(axis=1, dtype=acc)
    if full * block_px < h:
        rows = np.vstack([rows, img[full * block_px :].sum(axis=0, dtype=acc)[None]])
    sums = np.add.reduceat(rows, np.arange(0, w, block_px), axis=1)
    return sums.astype(np.float64)


def _design(y, x, degree):
    cols = [np.ones_like(y)]
    if degree >= 1:
        cols += [y, x]
    if degree >= 2:
        cols += [y * y, x * y, x * x]
    return np.stack(cols, axis=1)


def fit_surface(
    channel: np.ndarray, block_px: int, blocks: np.ndarray, *, max_degree: int = 2
) -> tuple[np.ndarray | None, int, float]:
    """Smooth background surface of a channel from its background blocks.

    Parameters
    ----------
    channel : ndarray, 2-D
        Raw intensities.
    block_px : int
        Block edge (pixels).
    blocks : ndarray of bool
        Background blocks (:func:`background_blocks`).
    max_degree : int, default 2
        Highest polynomial order (2 needs :data:`MIN_BLOCKS` blocks).

    Returns
    -------
    surface : ndarray of float32 or None
        ``B(x)`` on the full field; None without any background block.
    degree : int
        Order used (-1 when no surface).
    floor : float
        Lowest mean of the background blocks the fit kept (NaN when no
        surface): an upper bound of the camera offset.
    """
    h, w = channel.shape
    gy, gx = blocks.shape
    n_blocks = int(blocks.sum())
    if n_blocks == 0:
        return None, -1, float("nan")
    # block means of the background blocks (row sums then column sums)
    ph, pw = gy * block_px - h, gx * block_px - w
    sums = _block_sums(np.asarray(channel), block_px)
    rows = np.full(gy, block_px, dtype=np.float64)
    cols = np.full(gx, block_px, dtype=np.float64)
    rows[-1] -= ph
    cols[-1] -= pw
    counts = rows[:, None] * cols[None, :]
    means = (sums / counts)[blocks]
    weight = counts[blocks]
    # block centres in coordinates scaled to [-1, 1] over the field
    cy = (np.arange(gy) * block_px + 0.5 * (rows - 1)) / max(h - 1, 1) * 2 - 1
    cx = (np.arange(gx) * block_px + 0.5 * (cols - 1)) / max(w - 1, 1) * 2 - 1
    by, bx = np.meshgrid(cy, cx, indexing="ij")
    by, bx = by[blocks], bx[blocks]
    degree = next((d for d in (2, 1) if d <= max_degree and n_blocks >= MIN_BLOCKS[d]), 0)
    keep = np.ones(n_blocks, dtype=bool)
    for _ in range(4):
        a = _design(by[keep], bx[keep], degree) * np.sqrt(weight[keep])[:, None]
        coef = np.linalg.lstsq(a, means[keep] * np.sqrt(weight[keep]), rcond=None)[0]
        resid = means - _design(by, bx, degree) @ coef
        sd = 1.4826 * np.median(np.abs(resid[keep] - np.median(resid[keep])))
        new = np.abs(resid) <= 3 * sd if sd > 0 else keep
        if new.sum() < max(MIN_BLOCKS.get(degree, 1), n_blocks // 2) or np.array_equal(new, keep):
            break
        keep = new
    y = (np.arange(h, dtype=np.float64) / max(h - 1, 1) * 2 - 1)[:, None]
    x = (np.arange(w, dtype=np.float64) / max(w - 1, 1) * 2 - 1)[None, :]
    c = list(coef) + [0.0] * (6 - len(coef))
    # c0 + c1 y + c2 x + c3 y^2 + c4 xy + c5 x^2, summed as row and column terms
    row_terms = (c[0] + c[1] * y + c[3] * y * y).astype(np.float32)
    col_terms = (c[2] * x + c[5] * x * x).astype(np.float32)
    surface = row_terms + col_terms
    if c[4]:
        surface += (np.float32(c[4]) * y.astype(np.float32)) * x.astype(np.float32)
    return surface, degree, float(means[keep].min())


def flat_field(
    channel: np.ndarray, surface: np.ndarray | None, dark_level: float, min_illumination=0.2
) -> tuple[np.ndarray, dict]:
    """Divide out the illumination estimated from a background surface.

    Parameters
    ----------
    channel : ndarray, 2-D
        Raw intensities.
    surface : ndarray or None
        Background surface ``B(x) = dark + b I(x)`` (:func:`fit_surface`);
        None leaves the channel uncorrected (returned as it is).
    dark_level : float
        Camera offset (ADU).
    min_illumination : float, default 0.2
        Floor of the relative illumination (guards the division where a
        fitted surface extrapolates badly into a corner without background).

    Returns
    -------
    corrected : ndarray
        ``dark + (raw - dark) / I(x)``: rounded to the raw integer dtype when
        the raw image is 8/16-bit and every corrected value fits it,
        float32 otherwise (or without a surface).
    info : dict
        ``illumination_min`` (lowest relative illumination over the field,
        1 when uncorrected) and ``background_level`` (``dark + b``: the flat
        background of the corrected image, NaN when uncorrected).
    """
    img = np.asarray(channel)
    if surface is None:
        return img, {"illumination_min": 1.0, "background_level": np.nan}
    above = surface - np.float32(dark_level)
    peak = float(above.max())
    if not peak > 0:
        return img, {"illumination_min": 1.0, "background_level": np.nan}
    illumination = np.maximum(above / np.float32(peak), np.float32(min_illumination))
    # dark + (raw - dark) / I  =  raw * gain + dark * (1 - gain),  gain = 1 / I
    gain = np.float32(1.0) / illumination
    corrected = img * gain
    gain *= np.float32(-dark_level)
    gain += np.float32(dark_level)
    corrected += gain
    del gain
    if img.dtype in (np.uint8, np.uint16):
        # back to the camera's integer grid when it fits: rounding adds an
        # unbiased error of at most half a grey level, and the integer
        # paths of the measurements (histograms, 32-bit sort keys) apply
        top = np.iinfo(img.dtype).max
        if float(corrected.max()) <= top:
            np.rint(corrected, out=corrected)
            np.maximum(corrected, 0, out=corrected)
            corrected = corrected.astype(img.dtype)
    return corrected, {
        "illumination_min": float(illumination.min()),
        "background_level": float(dark_level + peak),
    }
