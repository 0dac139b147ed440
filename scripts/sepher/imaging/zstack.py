"""Z-stacks (C, Z, Y, X) for immunofluorescence: per-cell mid-nuclear plane, orthogonal views.

A confocal z-stack of a monolayer has each nucleus in focus at its own depth,
and the apical membrane of a cell lies over its nucleus. A maximum projection
(or one global plane) therefore puts membrane HER2 inside the nuclear outline
and inflates a 2-D "nuclear fraction". The remedy here is to measure each cell
in the plane through the middle of its own nucleus:

1. :func:`focus_plane` picks the stack's global in-focus plane of the nuclear
   stain, on which nuclei (and cells) are segmented in 2-D;
2. :func:`per_cell_planes` finds for every 2-D nucleus the plane through its
   middle (the intensity-weighted centre of its nuclear-stain z-profile);
3. :func:`mid_nuclear_composite` builds one 2-D (C, Y, X) image in which each
   cell's pixels come from its own mid-nuclear plane; the 2-D measurement of
   :mod:`sepher.imaging` then runs on that image unchanged
   (:func:`mid_nuclear_field` does 1-3 for one field).

:func:`orthogonal_view` / :func:`yz_view` cut XZ / YZ sections for a figure
(with :func:`orthogonal_extent` for the true aspect), and
:func:`segment_nuclei_3d` / :func:`segment_nuclei_per_plane` segment nuclei in
3-D or plane by plane (checked against the 3-D labels of the cells3d stack in
tests/test_imaging_zstack.py).

Why hand-written: no installed (or common) library chooses a plane per cell;
scikit-image and SciPy supply the filters, distance transform and watershed
used below. Deep-learning 3-D segmenters (StarDist-3D, Cellpose) are not
dependencies of this project.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage import filters, morphology, segmentation

from sepher.imaging.nuclei import segment_nuclei, working_factor

__all__ = [
    "focus_plane",
    "focus_profile",
    "mid_nuclear_composite",
    "mid_nuclear_field",
    "orthogonal_extent",
    "orthogonal_view",
    "per_cell_planes",
    "segment_nuclei_3d",
    "segment_nuclei_per_plane",
    "yz_view",
]

FOCUS_METHODS = ("laplacian", "normalised_variance", "signal")


def _zyx(stack, name: str = "stack_zyx") -> np.ndarray:
    stack = np.asarray(stack)
    if stack.ndim != 3:
        raise ValueError(f"{name} must be 3-D (Z, Y, X), got shape {stack.shape}")
    return stack


def _czyx(stack) -> np.ndarray:
    stack = np.asarray(stack)
    if stack.ndim != 4:
        raise ValueError(f"stack_czyx must be 4-D (C, Z, Y, X), got shape {stack.shape}")
    return stack


def focus_profile(stack_zyx, method: str = "laplacian", sigma_px: float = 1.0) -> np.ndarray:
    """Focus measure of every plane of a (Z, Y, X) stack (higher = sharper / more signal).

    Parameters
    ----------
    stack_zyx : ndarray, shape (Z, Y, X)
        One channel, normally the nuclear stain.
    method : {"laplacian", "normalised_variance", "signal"}
        ``"laplacian"``: variance of the Laplacian of Gaussian (sigma
        ``sigma_px``), the LAPV measure of Pertuz et al. 2013 (Pattern
        Recognit 46:1415), which peaks where nuclear edges are sharpest;
        ``"normalised_variance"``: variance / mean of the plane (Groen et al.
        1985), less sensitive to noise but pulled towards planes of large
        out-of-focus blur; ``"signal"``: mean intensity, the plane of maximal
        nuclear signal.
    sigma_px : float
        Smoothing of the Laplacian against shot noise.
    """
    stack = _zyx(stack_zyx)
    if method not in FOCUS_METHODS:
        raise ValueError(f"method must be one of {FOCUS_METHODS}, got {method!r}")
    out = np.empty(stack.shape[0])
    for z, plane in enumerate(stack):
        plane = plane.astype(np.float32)
        if method == "laplacian":
            out[z] = ndi.gaussian_laplace(plane, sigma_px).var()
        elif method == "normalised_variance":
            mean = plane.mean()
            out[z] = plane.var() / mean if mean > 0 else 0.0
        else:
            out[z] = plane.mean()
    return out


def focus_plane(stack_zyx, method: str = "laplacian", sigma_px: float = 1.0) -> int:
    """Global in-focus (mid-nuclear) plane of a nuclear-stain stack: the
    0-based z index where :func:`focus_profile` peaks.

    On the cells3d nuclei stack the Laplacian measure picks plane 34 and the
    plane of largest labelled nuclear area is 35 (tests/test_imaging_zstack.py).
    """
    return int(np.argmax(focus_profile(stack_zyx, method=method, sigma_px=sigma_px)))


def _plane_background(plane: np.ndarray, outside: np.ndarray) -> float:
    values = plane[outside]
    if values.size > 200_000:
        values = values[:: values.size // 100_000]
    return float(np.median(values)) if values.size else 0.0


def per_cell_planes(nuclear_zyx, nuclei_2d, fraction: float = 0.5) -> np.ndarray:
    """The z-plane through the middle of every 2-D nucleus.

    For nucleus ``k`` the z-profile is the mean nuclear stain over its 2-D
    pixels in each plane, minus that plane's background (the median of the
    pixels outside every nucleus). Its middle is the intensity-weighted centre
    of the part of the profile above ``fraction`` of its peak, taken on the
    contiguous run of planes around the peak (so a neighbour above or below
    does not pull it), rounded to a plane. Weighting only the upper part keeps
    the long out-of-focus tails of a confocal z-profile, which are asymmetric
    near the stack's ends, from biasing the centre.

    Hand-written: no library picks a plane per object.

    Parameters
    ----------
    nuclear_zyx : ndarray, shape (Z, Y, X)
        Nuclear stain stack.
    nuclei_2d : ndarray of int, shape (Y, X)
        2-D nucleus labels (0 background), e.g. segmented on the global focus
        plane or on a projection.
    fraction : float, default 0.5
        Part of the background-subtracted peak above which planes are weighted.

    Returns
    -------
    planes : ndarray of int, shape (nuclei_2d.max() + 1,)
        ``planes[k]`` is the mid-nuclear plane of nucleus ``k``; -1 for 0
        (background) and for labels not present.
    """
    stack = _zyx(nuclear_zyx, "nuclear_zyx")
    nuclei = np.asarray(nuclei_2d)
    if nuclei.shape != stack.shape[1:]:
        raise ValueError(
            f"nuclei_2d {nuclei.shape} does not match the stack's planes {stack.shape}"
        )
    n = int(nuclei.max()) if nuclei.size else 0
    planes = np.full(n + 1, -1, dtype=np.int64)
    if n == 0:
        return planes
    index = np.unique(nuclei[nuclei > 0])
    outside = nuclei == 0
    profiles = np.empty((index.size, stack.shape[0]))
    for z, plane in enumerate(stack):
        plane = plane.astype(np.float32)
        profiles[:, z] = ndi.mean(plane, nuclei, index) - _plane_background(plane, outside)
    peak_z = np.argmax(profiles, axis=1)
    peak = profiles[np.arange(index.size), peak_z]
    for row, k in enumerate(index):
        profile = profiles[row]
        if not peak[row] > 0:
            planes[k] = peak_z[row]
            continue
        above = profile >= fraction * peak[row]
        run, _ = ndi.label(above)
        keep = run == run[peak_z[row]]
        weights = np.where(keep, profile - fraction * peak[row], 0.0)
        z = np.arange(profile.size)
        centre = (weights * z).sum() / weights.sum() if weights.sum() > 0 else peak_z[row]
        planes[k] = int(np.floor(centre + 0.5))
    return planes


def mid_nuclear_composite(
    stack_czyx,
    nuclei_2d,
    cells_2d,
    *,
    nuclear_channel: int = 0,
    planes: np.ndarray | None = None,
    global_plane: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One 2-D (C, Y, X) image in which every cell is seen in its own mid-nuclear plane.

    Each pixel of cell ``k`` (and of nucleus ``k``) is taken, in every
    channel, from plane ``planes[k]``; pixels of no cell, and cells whose
    nucleus has no plane, from ``global_plane``. So apical membrane lying above
    (or basal membrane below) a nucleus is not counted as nuclear, while the
    lateral membrane, which crosses the mid-nuclear plane, is kept.

    Hand-written: the per-cell choice of plane exists in no library.

    Parameters
    ----------
    stack_czyx : ndarray, shape (C, Z, Y, X)
    nuclei_2d, cells_2d : ndarray of int, shape (Y, X)
        Nucleus and cell labels; cell ``k`` holds nucleus ``k``
        (:func:`sepher.imaging.segment_cells` labels them so).
    nuclear_channel : int, default 0
        Channel of the nuclear stain (for :func:`per_cell_planes` and
        :func:`focus_plane` when ``planes`` / ``global_plane`` are not given).
    planes : ndarray of int, optional
        Output of :func:`per_cell_planes`; computed when None.
    global_plane : int, optional
        Plane for background pixels; :func:`focus_plane` of the nuclear
        channel when None.

    Returns
    -------
    composite : ndarray, shape (C, Y, X), dtype of the stack
    planes : ndarray of int
        The per-label planes used (-1: none, the global plane was used).
    """
    stack = _czyx(stack_czyx)
    nuclei = np.asarray(nuclei_2d)
    cells = np.asarray(cells_2d)
    if nuclei.shape != stack.shape[2:] or cells.shape != stack.shape[2:]:
        raise ValueError(
            f"labels {nuclei.shape} / {cells.shape} do not match the stack's planes {stack.shape}"
        )
    nuclear = stack[nuclear_channel]
    if global_plane is None:
        global_plane = focus_plane(nuclear)
    if planes is None:
        planes = per_cell_planes(nuclear, nuclei)
    planes = np.asarray(planes, dtype=np.int64)
    owner = np.where(nuclei > 0, nuclei, cells).astype(np.int64)
    lookup = np.full(max(int(owner.max()), planes.size - 1) + 1, -1, dtype=np.int64)
    lookup[: planes.size] = planes
    pixel_plane = lookup[owner]
    pixel_plane[(owner == 0) | (pixel_plane < 0)] = int(global_plane)
    composite = stack[:, int(global_plane)].copy()
    for z in np.unique(pixel_plane):
        if z != global_plane:
            where = pixel_plane == z
            composite[:, where] = stack[:, z][:, where]
    return composite, planes


def mid_nuclear_field(
    stack_czyx,
    nuclear_channel: int,
    pixel_size_um: float,
    *,
    owner_radius_um: float = 20.0,
    focus_method: str = "laplacian",
    **segment_kwargs,
) -> tuple[np.ndarray, dict]:
    """The (C, Y, X) image on which a z-stack field is measured, with its z record.

    Nuclei are segmented (:func:`sepher.imaging.segment_nuclei`, keyword
    arguments passed on) on the global focus plane of the nuclear channel;
    each pixel within ``owner_radius_um`` of a nucleus is given to its nearest
    nucleus (:func:`skimage.segmentation.expand_labels`, the cell's extent
    before the cell segmentation, whose labels equal the nuclei's), and the
    composite takes each such pixel from that nucleus's mid-nuclear plane
    (:func:`mid_nuclear_composite`). A one-plane stack is returned as is.

    Returns
    -------
    image : ndarray, shape (C, Y, X)
    info : dict
        ``n_planes``, ``focus_plane`` (global), ``planes`` (per nucleus of the
        focus-plane segmentation, -1 unused), ``plane_spread`` (5-95 % range
        of the per-cell planes, in planes).
    """
    stack = _czyx(stack_czyx)
    if stack.shape[1] == 1:
        return stack[:, 0], {"n_planes": 1, "focus_plane": 0, "planes": None, "plane_spread": 0}
    nuclear = stack[nuclear_channel]
    z0 = focus_plane(nuclear, method=focus_method)
    nuclei = segment_nuclei(nuclear[z0], pixel_size_um, **segment_kwargs)
    owners = segmentation.expand_labels(nuclei, owner_radius_um / pixel_size_um)
    image, planes = mid_nuclear_composite(
        stack, nuclei, owners, nuclear_channel=nuclear_channel, global_plane=z0
    )
    used = planes[planes >= 0]
    spread = int(np.ptp(np.percentile(used, [5, 95]))) if used.size else 0
    return image, {
        "n_planes": int(stack.shape[1]),
        "focus_plane": z0,
        "planes": planes,
        "plane_spread": spread,
    }


def orthogonal_view(stack_czyx, y: int, x0: int = 0, x1: int | None = None, half_width: int = 0):
    """XZ section through row ``y`` from column ``x0`` to ``x1`` (exclusive).

    Parameters
    ----------
    stack_czyx : ndarray, shape (C, Z, Y, X)
    y : int
        Row of the section.
    x0, x1 : int
        Column range (``x1`` None: to the edge).
    half_width : int, default 0
        Average rows ``y - half_width .. y + half_width`` (a thicker section
        against noise); the stack's dtype is kept when 0, float32 otherwise.

    Returns
    -------
    ndarray, shape (C, Z, x1 - x0)
        Z runs along axis 1 (plane 0 first); display it with
        :func:`orthogonal_extent` so that one um is as long in z as in x.
    """
    stack = _czyx(stack_czyx)
    rows = slice(max(0, y - half_width), min(stack.shape[2], y + half_width + 1))
    section = stack[:, :, rows, x0:x1]
    if half_width == 0:
        return section[:, :, 0]
    return section.astype(np.float32).mean(axis=2)


def yz_view(stack_czyx, x: int, y0: int = 0, y1: int | None = None, half_width: int = 0):
    """YZ section through column ``x`` from row ``y0`` to ``y1``: shape (C, Z, y1 - y0).

    As :func:`orthogonal_view` with rows and columns exchanged.
    """
    stack = _czyx(stack_czyx)
    return orthogonal_view(np.swapaxes(stack, 2, 3), x, y0, y1, half_width)


def orthogonal_extent(
    n_z: int, start: int, stop: int, pixel_size_um: float, z_step_um: float
) -> tuple[float, float, float, float]:
    """``imshow`` extent (left, right, bottom, top) in um of an XZ / YZ section.

    With ``origin="lower"`` and ``aspect="equal"`` the section then has its
    true geometry (the z step is usually 2-4 x the pixel size), plane 0 at
    the bottom.
    """
    return (
        start * pixel_size_um,
        stop * pixel_size_um,
        -0.5 * z_step_um,
        (n_z - 0.5) * z_step_um,
    )


def segment_nuclei_per_plane(nuclear_zyx, pixel_size_um: float, planes=None, **kwargs):
    """2-D nuclear segmentation (:func:`sepher.imaging.segment_nuclei`) of each plane.

    Parameters
    ----------
    nuclear_zyx : ndarray, shape (Z, Y, X)
    pixel_size_um : float
    planes : sequence of int, optional
        Planes to segment (the others stay 0); all by default.
    **kwargs
        Passed to :func:`~sepher.imaging.segment_nuclei`.

    Returns
    -------
    labels : ndarray of int32, shape (Z, Y, X)
        Each plane labelled on its own (objects are not linked across planes);
        labels are offset so that they are unique in the stack.
    """
    stack = _zyx(nuclear_zyx, "nuclear_zyx")
    labels = np.zeros(stack.shape, dtype=np.int32)
    offset = 0
    for z in range(stack.shape[0]) if planes is None else planes:
        plane = segment_nuclei(stack[z], pixel_size_um, **kwargs)
        labels[z] = np.where(plane > 0, plane + offset, 0)
        offset += int(plane.max())
    return labels


def segment_nuclei_3d(
    nuclear_zyx,
    voxel_um,
    *,
    smoothing_sigma_um: float = 0.5,
    threshold_method: str = "otsu",
    split_h_um: float = 1.0,
    min_volume_um3: float = 20.0,
    working_pixel_size_um: float | None = 0.5,
) -> np.ndarray:
    """3-D nuclear instance segmentation of a (Z, Y, X) nuclear-stain stack.

    1. The stack is averaged in x-y blocks down to about
       ``working_pixel_size_um`` (z kept: it is already coarser), then smoothed
       with an anisotropic Gaussian of ``smoothing_sigma_um`` in every axis.
    2. Foreground by a global threshold of the smoothed stack (Otsu by default;
       ``"li"`` for dim stains); holes closed plane by plane (nucleoli).
    3. Touching nuclei are split by a watershed on the Euclidean distance to
       the background computed with the true voxel size (so the coarser z step
       is not counted as a pixel), seeded by its h-maxima of height
       ``split_h_um``: two nuclei are split when the neck between them is at
       least that much thinner than both.
    4. Objects below ``min_volume_um3`` are dropped; labels are brought back
       to the full grid by nearest neighbour.

    Hand-written as a composition of SciPy / scikit-image steps: no installed
    library segments anisotropic 3-D nuclei without a trained network. On the
    cells3d stack (20 labelled nuclei) it reaches matched F1 0.90 at IoU 0.5,
    mean matched IoU 0.92, in about a second (tests/test_imaging_zstack.py).

    Parameters
    ----------
    nuclear_zyx : ndarray, shape (Z, Y, X)
    voxel_um : sequence of 3 floats
        (z step, pixel height, pixel width) in um.
    smoothing_sigma_um, threshold_method, split_h_um, min_volume_um3,
    working_pixel_size_um
        As described above; ``working_pixel_size_um`` None segments at full
        resolution.

    Returns
    -------
    labels : ndarray of int32, shape (Z, Y, X)
    """
    stack = _zyx(nuclear_zyx, "nuclear_zyx")
    voxel = np.asarray(voxel_um, dtype=float)
    if voxel.shape != (3,) or not np.all(voxel > 0):
        raise ValueError(f"voxel_um must be 3 positive lengths (z, y, x), got {voxel_um}")
    thresholds = {"otsu": filters.threshold_otsu, "li": filters.threshold_li}
    if threshold_method not in thresholds:
        raise ValueError(f"threshold_method must be one of {sorted(thresholds)}")
    factor = working_factor(float(voxel[1]), working_pixel_size_um)
    nz, ny, nx = stack.shape
    work = stack.astype(np.float32)
    if factor > 1:
        py, px = -ny % factor, -nx % factor
        work = np.pad(work, ((0, 0), (0, py), (0, px)), mode="edge")
        work = work.reshape(nz, work.shape[1] // factor, factor, work.shape[2] // factor, factor)
        work = work.mean(axis=(2, 4))
    step = voxel * np.array([1.0, factor, factor])
    smooth = ndi.gaussian_filter(work, smoothing_sigma_um / step)
    mask = smooth > thresholds[threshold_method](smooth)
    mask = np.stack([ndi.binary_fill_holes(m) for m in mask])
    distance = ndi.distance_transform_edt(mask, sampling=step)
    distance = ndi.gaussian_filter(distance, smoothing_sigma_um / step)
    markers, _ = ndi.label(morphology.h_maxima(distance, split_h_um))
    labels = segmentation.watershed(-distance, markers, mask=mask)
    volume = np.bincount(labels.ravel()) * float(np.prod(step))
    small = volume < min_volume_um3
    small[0] = False
    labels[small[labels]] = 0
    labels, _, _ = segmentation.relabel_sequential(labels)
    if factor > 1:
        labels = np.repeat(np.repeat(labels, factor, axis=1), factor, axis=2)[:, :ny, :nx]
    return np.ascontiguousarray(labels, dtype=np.int32)
