"""Colour deconvolution of brightfield H-DAB images (Ruifrok & Johnston 2001).

Transmitted light follows Beer-Lambert per RGB channel, so the optical density
``OD = -log10(I / I0)`` is linear in the amount of each stain:
``OD_rgb = sum_s c_s * v_s`` with ``v_s`` the unit OD vector (colour) of stain
``s``. With three stain vectors stacked as the rows of a 3 x 3 matrix ``M``,
the stain amounts are ``c = OD @ inv(M)``.

Defaults are the H-DAB vectors of Ruifrok & Johnston (Anal Quant Cytol Histol
2001;23:291), the ones used by scikit-image (``skimage.color.hed_from_rgb``)
and QuPath ("H-DAB default"); the third (residual) vector is the normalised
cross product of the other two, as in QuPath. :func:`estimate_stain_vectors`
estimates the two vectors per image instead (Macenko et al., ISBI 2009).

:func:`estimate_background` measures the glass level ``I0`` per RGB channel
from an image's tissue-free pixels. Photomicrographs are rarely white-balanced
on the glass: a camera's yellow-brown cast and glass well below 255 would
otherwise add a constant OD to every pixel, which colour deconvolution reads
largely as DAB (about 0.2 OD on the nuclei of a HER2 0 tumour). Dividing by
the measured per-channel glass level removes both.

All OD values here are decimal (log10) OD, QuPath's unit.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

__all__ = [
    "DAB_RGB_OD",
    "HEMATOXYLIN_RGB_OD",
    "estimate_background",
    "estimate_stain_vectors",
    "stain_vectors_plausible",
    "od_planes",
    "rgb_to_od",
    "stain_matrix",
    "tissue_from_od_sum",
    "tissue_mask",
    "unmix_h_dab",
    "unmix_planes",
]

#: Unit OD vector of hematoxylin (R, G, B), Ruifrok & Johnston 2001.
HEMATOXYLIN_RGB_OD = (0.65, 0.70, 0.29)
#: Unit OD vector of DAB (R, G, B), Ruifrok & Johnston 2001.
DAB_RGB_OD = (0.27, 0.57, 0.78)


def _unit(vector) -> np.ndarray:
    v = np.asarray(vector, dtype=np.float64).reshape(3)
    norm = np.linalg.norm(v)
    if not np.isfinite(norm) or norm == 0:
        raise ValueError(f"stain vector must be a non-zero 3-vector, got {vector!r}")
    return v / norm


def stain_matrix(hematoxylin=HEMATOXYLIN_RGB_OD, dab=DAB_RGB_OD, residual=None) -> np.ndarray:
    """Stack unit stain OD vectors into a 3 x 3 matrix (rows H, DAB, residual).

    Parameters
    ----------
    hematoxylin, dab : sequence of 3 float
        OD vectors (R, G, B) of the two stains; normalised to unit length.
        Defaults: Ruifrok & Johnston's H-DAB (skimage / QuPath defaults).
    residual : sequence of 3 float, optional
        Third vector; default the normalised cross product ``H x DAB``
        (QuPath's residual), which takes up whatever is neither stain.

    Returns
    -------
    ndarray, shape (3, 3)
        Rows: hematoxylin, DAB, residual unit OD vectors.
    """
    h, d = _unit(hematoxylin), _unit(dab)
    r = np.cross(h, d) if residual is None else np.asarray(residual, dtype=np.float64)
    matrix = np.vstack([h, d, _unit(r)])
    if abs(np.linalg.det(matrix)) < 1e-6:
        raise ValueError("stain vectors are (nearly) collinear; colour deconvolution is undefined")
    return matrix


def rgb_to_od(rgb: np.ndarray, background_intensity=255.0) -> np.ndarray:
    """Optical density ``-log10(I / I0)`` per RGB channel.

    Parameters
    ----------
    rgb : ndarray, shape (..., 3)
        Transmitted-light intensities (uint8, uint16 or float in the same
        units as ``background_intensity``).
    background_intensity : float or sequence of 3 float, default 255.0
        ``I0``, the intensity of unstained glass (per channel if a sequence).
        255 is QuPath's default for 8-bit images; a measured white level
        (e.g. the 99th percentile of a background region) is more exact.

    Returns
    -------
    ndarray of float32, shape (..., 3)
        OD >= 0 (intensities above ``I0`` are clipped to OD 0; zero
        intensities are floored at ``I0 / 255``, OD <= ~2.4).
    """
    rgb = np.asarray(rgb)
    if rgb.ndim < 2 or rgb.shape[-1] != 3:
        raise ValueError(f"expected an RGB image of shape (..., 3), got {rgb.shape}")
    od = np.empty(rgb.shape, dtype=np.float32)
    for channel, plane in enumerate(od_planes(rgb, background_intensity)):
        od[..., channel] = plane
    return od


def od_planes(rgb: np.ndarray, background_intensity=255.0) -> list[np.ndarray]:
    """:func:`rgb_to_od` as three contiguous float32 planes (R, G, B).

    Whole-image steps then read contiguous memory instead of every third
    float of an interleaved array.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim < 2 or rgb.shape[-1] != 3:
        raise ValueError(f"expected an RGB image of shape (..., 3), got {rgb.shape}")
    i0 = np.broadcast_to(np.asarray(background_intensity, dtype=np.float64), (3,))
    if np.any(i0 <= 0):
        raise ValueError("background_intensity must be > 0")
    if rgb.dtype == np.uint8:
        # one lookup table per channel: 256 logs instead of one per pixel
        levels = np.maximum(np.arange(256, dtype=np.float64), 1.0)
        lut = np.clip(-np.log10(levels[None, :] / i0[:, None]), 0, None).astype(np.float32)
        return [lut[channel][rgb[..., channel]] for channel in range(3)]
    floor = (i0 / 255.0).astype(np.float32)
    planes = []
    for channel in range(3):
        intensity = rgb[..., channel].astype(np.float32)
        od = -np.log10(np.maximum(intensity, floor[channel]) / np.float32(i0[channel]))
        planes.append(np.clip(od, 0, None).astype(np.float32, copy=False))
    return planes


def unmix_h_dab(od: np.ndarray, matrix: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Hematoxylin and DAB amounts (OD units) from an RGB OD image.

    Parameters
    ----------
    od : ndarray of float, shape (..., 3)
        RGB optical density (:func:`rgb_to_od`).
    matrix : ndarray, shape (3, 3), optional
        Stain matrix (:func:`stain_matrix`); default H-DAB.

    Returns
    -------
    hematoxylin, dab : ndarray of float32, shape ``od.shape[:-1]``
        Stain amounts as the OD the stain alone would give along its own
        vector (may be slightly negative from noise).
    """
    return unmix_planes(od[..., 0], od[..., 1], od[..., 2], matrix)


def unmix_planes(
    r: np.ndarray, g: np.ndarray, b: np.ndarray, matrix: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`unmix_h_dab` on separate R, G, B OD planes (:func:`od_planes`)."""
    matrix = stain_matrix() if matrix is None else np.asarray(matrix, dtype=np.float64)
    inverse = np.linalg.inv(matrix).astype(np.float32)
    hematoxylin = r * inverse[0, 0]
    hematoxylin += g * inverse[1, 0]
    hematoxylin += b * inverse[2, 0]
    dab = r * inverse[0, 1]
    dab += g * inverse[1, 1]
    dab += b * inverse[2, 1]
    return hematoxylin.astype(np.float32, copy=False), dab.astype(np.float32, copy=False)


def tissue_mask(
    od: np.ndarray,
    pixel_size_um: float,
    *,
    od_threshold: float = 0.2,
    smoothing_sigma_um: float = 2.0,
    min_area_um2: float = 200.0,
) -> np.ndarray:
    """Tissue versus white background (glass, lumina, tears).

    A pixel is tissue when its smoothed summed RGB OD exceeds
    ``od_threshold``; tissue pieces smaller than ``min_area_um2`` are dropped
    and background holes smaller than it are filled.

    Parameters
    ----------
    od : ndarray of float, shape (H, W, 3)
        RGB optical density.
    pixel_size_um : float
        Pixel edge length (um).
    od_threshold : float, default 0.2
        Summed OD (R + G + B) separating tissue from glass. Clean glass is
        ~0.0-0.1 (scikit-image's IHC sample: ~0.11 at its lumen); the
        palest stroma is ~0.25 or more.
    smoothing_sigma_um : float, default 2.0
        Gaussian sigma (um) before thresholding.
    min_area_um2 : float, default 200.0
        Smallest tissue piece / background hole kept (um^2).

    Returns
    -------
    ndarray of bool, shape (H, W)
    """
    od = np.asarray(od)
    od_sum = od[..., 0] + od[..., 1] + od[..., 2]
    return tissue_from_od_sum(
        od_sum,
        pixel_size_um,
        od_threshold=od_threshold,
        smoothing_sigma_um=smoothing_sigma_um,
        min_area_um2=min_area_um2,
    )


def tissue_from_od_sum(
    od_sum: np.ndarray,
    pixel_size_um: float,
    *,
    od_threshold: float = 0.2,
    smoothing_sigma_um: float = 2.0,
    min_area_um2: float = 200.0,
    smoothed: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`tissue_mask` from the summed RGB OD (float32, shape (H, W)).

    ``smoothed``, when given, is ``ndi.gaussian_filter(od_sum, smoothing_sigma_um /
    pixel_size_um)`` already computed (float32); ``od_sum`` is then not read.
    """
    if smoothed is None:
        smoothed = ndi.gaussian_filter(
            np.asarray(od_sum, dtype=np.float32), smoothing_sigma_um / pixel_size_um
        )
    mask = smoothed > od_threshold
    min_px = int(round(min_area_um2 / pixel_size_um**2))
    if min_px > 1:
        mask = _remove_small(mask, min_px)
        mask = ~_remove_small(~mask, min_px)
    return mask


def _remove_small(mask: np.ndarray, min_px: int) -> np.ndarray:
    """``mask`` without its 4-connected components smaller than ``min_px`` pixels.

    Labels written as ``intp`` (what ``np.bincount`` and the lookup index
    with, so neither converts a copy of the label image first); with no
    small component the mask comes back as a copy, untouched.
    """
    labels = np.empty(mask.shape, dtype=np.intp)
    n = ndi.label(mask, output=labels)
    if n == 0:
        return mask
    keep = np.bincount(labels.ravel(), minlength=n + 1) >= min_px
    keep[0] = False
    if keep[1:].all():
        return np.array(mask, dtype=bool, copy=True)
    return keep[labels]


def estimate_stain_vectors(
    od: np.ndarray,
    *,
    mask: np.ndarray | None = None,
    od_min: float = 0.15,
    angle_percentile: float = 1.0,
    max_pixels: int = 200_000,
    max_deviation_deg: float = 20.0,
    default_matrix: np.ndarray | None = None,
    min_angle_deg: float = 15.0,
    min_dab_od_ratio: float | None = 1.0,
    return_status: bool = False,
):
    """Per-image H and DAB vectors by Macenko et al. (ISBI 2009).

    Pixels with every channel's OD above ``od_min`` are projected onto the
    plane of the two largest principal directions of their OD; the stain
    vectors are the directions at the ``angle_percentile`` and
    ``100 - angle_percentile`` percentiles of the angle in that plane. The
    more red-absorbing one (larger R component) is hematoxylin (blue), the
    other DAB (brown).

    Parameters
    ----------
    od : ndarray of float, shape (H, W, 3)
        RGB optical density.
    mask : ndarray of bool, optional
        Pixels to use (e.g. the tissue mask); default all.
    od_min : float, default 0.15
        Minimum OD per channel (Macenko's beta): excludes near-transparent
        pixels whose direction is noise.
    angle_percentile : float, default 1.0
        Macenko's alpha (robust extremes of the angle distribution).
    max_pixels : int, default 200000
        At most this many pixels are used (an even stride: deterministic).
    max_deviation_deg : float, default 20.0
        A stain whose estimate deviates more than this from the default
        vector (e.g. the DAB of a HER2 0 biopsy, which has almost no DAB) is
        left at the default. 20 degrees rejects the neutral grey of unstained
        tissue (21 degrees from Ruifrok's DAB), which Macenko's second
        direction finds in a hematoxylin-only image.
    default_matrix : ndarray, shape (3, 3), optional
        Fallback stain matrix; default :func:`stain_matrix`.
    min_angle_deg : float, default 15.0
        The estimate must pass :func:`stain_vectors_plausible` (hematoxylin
        bluer than DAB, at least this far apart), else the fallback is used
        whole.
    return_status : bool, default False
        Also return a short text saying which vectors were used:
        ``"macenko"``, ``"macenko (hematoxylin; DAB fixed)"``, ``"macenko
        (DAB; hematoxylin fixed)"`` or ``"fixed: <reason>"``.

    Returns
    -------
    ndarray, shape (3, 3)
        Stain matrix (rows H, DAB, residual), usable by :func:`unmix_h_dab`;
        with ``return_status`` a tuple ``(matrix, status)``.

    Notes
    -----
    The OD must be computed with the image's own glass level
    (:func:`estimate_background`): a colour cast left in the OD shifts every
    pixel along one direction and tilts the estimated plane.
    """
    default = stain_matrix() if default_matrix is None else np.asarray(default_matrix)

    def result(matrix, status):
        return (matrix, status) if return_status else matrix

    pixels = od.reshape(-1, 3)
    if mask is not None:
        pixels = pixels[np.asarray(mask).ravel()]
    pixels = pixels[np.all(pixels > od_min, axis=1)]
    if len(pixels) > max_pixels:
        pixels = pixels[:: int(np.ceil(len(pixels) / max_pixels))]
    if len(pixels) < 100:
        return result(default.copy(), f"fixed: {len(pixels)} stained pixels (< 100)")
    pixels = pixels.astype(np.float64)
    _, eigenvectors = np.linalg.eigh(np.cov(pixels, rowvar=False))
    plane = eigenvectors[:, [2, 1]]  # two largest principal directions
    plane *= np.where(plane[0:1, :].sum(axis=0) < 0, -1.0, 1.0)  # point into positive OD
    projected = pixels @ plane
    angle = np.arctan2(projected[:, 1], projected[:, 0])
    low, high = np.percentile(angle, [angle_percentile, 100 - angle_percentile])
    candidates = [plane @ np.array([np.cos(a), np.sin(a)]) for a in (low, high)]
    candidates = [c * np.sign(c.sum()) / np.linalg.norm(c) for c in candidates]
    if candidates[0][0] >= candidates[1][0]:
        hematoxylin, dab = candidates
        dab_side = "high"
    else:
        dab, hematoxylin = candidates
        dab_side = "low"
    dab_dense = True
    if min_dab_od_ratio is not None:
        norm = np.linalg.norm(pixels, axis=1)
        edge = 5.0
        q_low, q_high = np.percentile(angle, [edge, 100 - edge])
        low_od = float(np.median(norm[angle <= q_low]))
        high_od = float(np.median(norm[angle >= q_high]))
        dab_od, h_od = (high_od, low_od) if dab_side == "high" else (low_od, high_od)
        dab_dense = dab_od >= min_dab_od_ratio * h_od
    limit = np.cos(np.deg2rad(max_deviation_deg))
    kept = []
    if hematoxylin @ default[0] < limit:
        hematoxylin = default[0]
    else:
        kept.append("hematoxylin")
    if dab @ default[1] < limit or not dab_dense:
        dab = default[1]
    else:
        kept.append("DAB")
    if not kept:
        return result(
            default.copy(), f"fixed: estimates > {max_deviation_deg:g} degrees from the defaults"
        )
    ok, reason = stain_vectors_plausible(hematoxylin, dab, min_angle_deg=min_angle_deg)
    if not ok:
        return result(default.copy(), f"fixed: {reason}")
    try:
        matrix = stain_matrix(hematoxylin, dab)
    except ValueError:
        return result(default.copy(), "fixed: estimated vectors collinear")
    if len(kept) == 2:
        return result(matrix, "macenko")
    other = "DAB" if kept == ["hematoxylin"] else "hematoxylin"
    return result(matrix, f"macenko ({kept[0]}; {other} fixed)")


def estimate_background(
    rgb: np.ndarray,
    *,
    default=255.0,
    min_fraction: float = 0.01,
    block_px: int = 16,
    max_block_sd: float = 4.0,
    max_saturation: float = 0.35,
    min_brightness: float = 100.0,
    tolerance: float = 4.0,
    max_pixels: int = 4_000_000,
    return_details: bool = False,
):
    """Glass level ``I0`` per RGB channel from the image's tissue-free pixels.

    Glass (and lumina, tears) is the brightest, featureless part of a
    brightfield image. The image is cut into ``block_px`` x ``block_px``
    blocks; a block is a candidate when it is uniform (standard deviation
    of the brightness, the mean of R, G and B, at most ``max_block_sd``
    grey levels: glass carries only camera noise, tissue carries texture),
    nearly grey (saturation ``(max - min) / max`` of its mean colour at most
    ``max_saturation``; a white-balance cast tints glass only slightly) and
    bright (at least ``min_brightness``). The glass level ``c`` is the
    median brightness of the brightest ``min_fraction`` of all blocks among
    the candidates, and the glass blocks are the candidates within
    ``tolerance`` grey levels below ``c`` or brighter (block means are
    averaged over hundreds of pixels, so glass forms a tight cluster,
    separate from pale stroma). ``I0`` is the per-channel median of the
    glass blocks' means: the glass's mean transmitted intensity, the
    Beer-Lambert reference (a high percentile of single pixels would put
    noisy glass at a negative OD). When candidates cover less than
    ``min_fraction`` of the blocks (a field filled with tissue), ``default``
    is returned instead.

    Written by hand: scikit-image and QuPath leave ``I0`` to the user
    (QuPath's "Estimate stain vectors" asks for a background region).

    Parameters
    ----------
    rgb : ndarray, shape (H, W, 3)
        Brightfield image (8-bit levels; an alpha channel is dropped).
    default : float or sequence of 3 float, default 255.0
        ``I0`` when the image has too little glass.
    min_fraction : float, default 0.01
        Least fraction of the image that must be glass.
    block_px : int, default 16
        Block edge (px): 4 um at 0.25 um/px.
    max_block_sd : float, default 4.0
        Largest brightness standard deviation within a glass block.
    max_saturation : float, default 0.35
        Largest saturation of a glass block's mean colour (a 0.80 blue gain
        gives 0.2).
    min_brightness : float, default 100.0
        Least brightness of a glass block.
    tolerance : float, default 4.0
        Glass blocks may lie this many grey levels below the glass level
        (uneven illumination, vignetting).
    max_pixels : int, default 4000000
        Larger images are sampled on a regular grid of blocks
        (deterministic).
    return_details : bool, default False
        Also return a dict: ``estimated`` (bool), ``glass_fraction`` (of the
        blocks) and ``source`` (a short text for the summary).

    Returns
    -------
    ndarray, shape (3,)
        ``I0`` per channel (R, G, B); with ``return_details`` a tuple
        ``(I0, details)``.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[-1] not in (3, 4):
        raise ValueError(f"expected an RGB image of shape (H, W, 3), got {rgb.shape}")
    fallback = np.broadcast_to(np.asarray(default, dtype=np.float64), (3,)).copy()
    k = max(1, int(block_px))
    rows, cols = rgb.shape[0] // k, rgb.shape[1] // k
    details = {"estimated": False, "glass_fraction": 0.0}
    i0 = None
    if rows and cols:
        # every s-th block row / column when the image is large: deterministic
        step = max(1, int(np.ceil(np.sqrt(rows * cols * k * k / max_pixels))))
        image = rgb[: rows * k, : cols * k, :3].reshape(rows, k, cols, k, 3)[::step, :, ::step]
        colour, brightness = _block_colour_brightness(image)
        block_sd = brightness.std(axis=(1, 3))
        level = colour.mean(axis=-1)
        high = colour.max(axis=-1)
        saturation = (high - colour.min(axis=-1)) / np.maximum(high, 1.0)
        n_blocks = level.size
        candidate = (
            (block_sd <= max_block_sd) & (saturation <= max_saturation) & (level >= min_brightness)
        )
        n_min = max(1, int(np.ceil(min_fraction * n_blocks)))
        values = np.sort(level[candidate])[::-1]
        if values.size >= n_min:
            centre = float(np.median(values[:n_min]))
            glass = candidate & (level >= centre - tolerance)
            fraction = float(glass.sum() / n_blocks)
            details["glass_fraction"] = round(fraction, 4)
            if glass.sum() >= n_min:
                i0 = np.median(colour[glass], axis=0).astype(np.float64)
        else:
            details["glass_fraction"] = round(float(values.size / n_blocks), 4)
    if i0 is None or np.any(i0 <= 0):
        details["source"] = (
            f"fixed {[round(float(v), 1) for v in fallback]}: glass on "
            f"{100 * details['glass_fraction']:.2f} % of the image (< {100 * min_fraction:g} %)"
        )
        i0 = fallback
    else:
        details["estimated"] = True
        details["source"] = "estimated from the glass"
    if return_details:
        return i0, details
    return i0


def _block_colour_brightness(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Block mean colour and pixel brightness of :func:`estimate_background`.

    ``image`` is the (blocks_y, k, blocks_x, k, 3) block view. The values
    are those of ``image.astype(np.float32).mean(axis=(1, 3))`` and
    ``.mean(axis=-1)``, bit for bit, several times faster: for 8-bit levels
    the sums are integers (exact in any order: a 16 x 16 block sums to at
    most 65280 < 2**24) and a float32 mean is the sum divided by the count.
    Other dtypes take numpy's route.
    """
    if image.dtype != np.uint8 or image.shape[1] * image.shape[3] > 2**16:
        image = image.astype(np.float32)
        return image.mean(axis=(1, 3)), image.mean(axis=-1)
    k_y, k_x = image.shape[1], image.shape[3]
    # sum the k_x columns of each block, then its k_y rows (strided slices: contiguous reads)
    across = image[:, :, :, 0, :].astype(np.int32)
    for j in range(1, k_x):
        across += image[:, :, :, j, :]
    total = across[:, 0].copy()
    for i in range(1, k_y):
        total += across[:, i]
    colour = total.astype(np.float32) / np.float32(k_y * k_x)
    levels = image[..., 0].astype(np.int16)
    levels += image[..., 1]
    levels += image[..., 2]
    return colour, levels.astype(np.float32) / np.float32(3)


def stain_vectors_plausible(hematoxylin, dab, *, min_angle_deg: float = 15.0) -> tuple[bool, str]:
    """Whether an H / DAB vector pair looks like hematoxylin and DAB.

    Hematoxylin (blue) absorbs red more than blue and DAB (brown) blue more
    than red, so hematoxylin's R - B OD component must exceed DAB's; and the
    two must be at least ``min_angle_deg`` apart (Ruifrok & Johnston's pair:
    36.8 degrees), else unmixing them amplifies noise without separating
    anything.

    Returns
    -------
    ok : bool
    reason : str
        Empty when plausible, else why not.
    """
    h, d = _unit(hematoxylin), _unit(dab)
    if not h[0] - h[2] > d[0] - d[2]:
        return False, "hematoxylin vector not bluer than DAB"
    angle = float(np.degrees(np.arccos(np.clip(h @ d, -1.0, 1.0))))
    if angle < min_angle_deg:
        return False, f"H and DAB {angle:.1f} degrees apart (< {min_angle_deg:g})"
    return True, ""
