"""Reading microscopy images as channel-first (C, Y, X) arrays.

TIFF and OME-TIFF through :mod:`tifffile` (pixel size from the OME
``PhysicalSizeX`` or the TIFF resolution tags when they are present), PNG
and JPEG through :func:`skimage.io.imread`. Every failure is an
:class:`~sepher.errors.InputError` naming the file.
"""

from __future__ import annotations

import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import tifffile
from skimage import io as skio

from sepher.errors import InputError

__all__ = ["read_image", "select_channel", "tiff_pixel_size_um"]

_UNIT_TO_UM = {"nm": 1e-3, "µm": 1.0, "um": 1.0, "micron": 1.0, "mm": 1e3, "cm": 1e4, "m": 1e6}
_RES_UNIT_TO_UM = {2: 25400.0, 3: 10000.0}  # TIFF ResolutionUnit: 2 inch, 3 centimetre


def tiff_pixel_size_um(tif: tifffile.TiffFile) -> float | None:
    """Pixel size (um) recorded in a TIFF, or None when it is not recorded.

    Looks, in order, at OME-XML ``Pixels/@PhysicalSizeX`` (with its unit),
    ImageJ metadata (``unit`` + XResolution), and the baseline XResolution /
    ResolutionUnit tags (inch or centimetre). A resolution of 1 pixel per
    unit with no unit (the tifffile default) counts as not recorded.
    """
    if tif.is_ome and tif.ome_metadata:
        try:
            root = ET.fromstring(tif.ome_metadata)
            for el in root.iter():
                if el.tag.endswith("Pixels") and el.get("PhysicalSizeX"):
                    unit = el.get("PhysicalSizeXUnit", "µm")
                    return float(el.get("PhysicalSizeX")) * _UNIT_TO_UM.get(unit, 1.0)
        except (ET.ParseError, ValueError):
            pass
    page = tif.pages[0]
    tag = page.tags.get("XResolution")
    if tag is None:
        return None
    num, den = tag.value
    if num == 0 or den == 0:
        return None
    px_per_unit = num / den
    ij = tif.imagej_metadata or {}
    if ij.get("unit") in _UNIT_TO_UM and px_per_unit != 1:
        return _UNIT_TO_UM[ij["unit"]] / px_per_unit
    unit_tag = page.tags.get("ResolutionUnit")
    unit = int(unit_tag.value) if unit_tag is not None else 2
    if unit in _RES_UNIT_TO_UM and px_per_unit not in (1, 72, 96, 300):
        # 1/72/96/300 dpi are screen/print defaults written by many programs
        return _RES_UNIT_TO_UM[unit] / px_per_unit
    return None


def _to_cyx(data: np.ndarray, axes: str, path: str) -> np.ndarray:
    axes = axes.upper().replace("I", "Q")
    if "Q" in axes and "C" not in axes and "S" not in axes and axes.count("Q") == 1:
        # untyped pages (plain multi-page TIFF): read as channels
        axes = axes.replace("Q", "C")
    for ax in "TZQ":
        if ax in axes:
            i = axes.index(ax)
            if data.shape[i] > 1:
                kind = {"Z": "a z-stack", "T": "a time series", "Q": "a stack"}[ax]
                raise InputError(
                    path,
                    "a single 2-D plane (Y, X) with optional channels",
                    value=f"{kind} of {data.shape[i]} planes, shape {data.shape}",
                    hint="Export a maximum projection or the focal plane.",
                )
            data = np.take(data, 0, axis=i)
            axes = axes[:i] + axes[i + 1 :]
    if "S" in axes and "C" in axes:
        i = axes.index("S")
        if data.shape[i] == 1:
            data = np.take(data, 0, axis=i)
            axes = axes[:i] + axes[i + 1 :]
    axes = axes.replace("S", "C")
    if axes == "YX":
        return data[np.newaxis]
    if sorted(axes) == ["C", "X", "Y"]:
        return np.transpose(data, [axes.index(a) for a in "CYX"])
    raise InputError(path, "a 2-D image with axes (C,) Y, X", value=f"axes {axes} {data.shape}")


def _read_tiff(tif: tifffile.TiffFile):
    series = tif.series[0]
    return series.asarray(), series.axes, tiff_pixel_size_um(tif)


def read_image(
    path, pixel_size_um: float | None = None, channels=None, tif: tifffile.TiffFile | None = None
) -> tuple[np.ndarray, float]:
    """Read a 2-D (multi-channel) image as a (C, Y, X) array.

    Parameters
    ----------
    path : str or Path
        TIFF / OME-TIFF, PNG or JPEG file.
    pixel_size_um : float, optional
        Pixel edge length (um) from the sample sheet; used when the file does
        not record one. When both exist and differ by more than 5 %, the
        file's value wins and a warning is issued.
    channels : sequence of int, optional
        0-based channel indices to keep (in that order); all by default.
    tif : tifffile.TiffFile, optional
        `path` already opened by the caller (the start-up check, which reads
        the TIFF header first); read from it instead of opening the file again.
        The caller closes it.

    Returns
    -------
    image : ndarray, shape (C, Y, X)
        uint8 / uint16 kept as stored (so saturation stays detectable); any
        other dtype converted to float32. RGB(A) files give C = 3 (4).
    pixel_size_um : float
        Pixel edge length in micrometres.

    Raises
    ------
    InputError
        Missing, unreadable or truncated file; z-stack or time series; a
        channel index out of range; an all-black image; no pixel size known.
    """
    path = Path(path)
    name = str(path)
    if not path.is_file():
        raise InputError(name, "an existing image file", hint="Check the sample sheet path.")
    file_px = None
    suffix = path.suffix.lower()
    try:
        if tif is not None:
            data, axes, file_px = _read_tiff(tif)
        elif suffix in (".tif", ".tiff", ".btf") or name.lower().endswith(".ome.tif"):
            with tifffile.TiffFile(path) as opened:
                data, axes, file_px = _read_tiff(opened)
        else:
            data = np.asarray(skio.imread(path))
            axes = {2: "YX", 3: "YXS"}.get(data.ndim, "?" * data.ndim)
    except InputError:
        raise
    except Exception as exc:  # tifffile / imageio raise many types on corrupt files
        raise InputError(
            name,
            "a readable TIFF, OME-TIFF, PNG or JPEG image",
            value=f"{type(exc).__name__}: {exc}",
            hint="The file may be truncated or not an image.",
        ) from exc
    image = _to_cyx(np.asarray(data), axes, name)
    if image.dtype not in (np.uint8, np.uint16):
        image = image.astype(np.float32)
    if channels is not None:
        image = np.stack([select_channel(image, c, name) for c in channels])
    if not np.any(image):
        raise InputError(name, "an image with signal", value="all pixels are 0")
    if file_px is not None:
        if pixel_size_um is not None and abs(file_px - pixel_size_um) > 0.05 * pixel_size_um:
            warnings.warn(
                f"{name}: file records pixel size {file_px:.4g} um, sample sheet says "
                f"{pixel_size_um:.4g} um; using the file's value",
                stacklevel=2,
            )
        return image, float(file_px)
    if pixel_size_um is None or not np.isfinite(pixel_size_um) or pixel_size_um <= 0:
        raise InputError(
            name,
            "a pixel size in um (in the file metadata or the sample sheet)",
            column="pixel_size_um",
            value=pixel_size_um,
        )
    return image, float(pixel_size_um)


def select_channel(image: np.ndarray, index, path="image", column=None, row=None) -> np.ndarray:
    """Return channel ``index`` (0-based) of a (C, Y, X) image.

    Raises
    ------
    InputError
        ``index`` is not an integer in ``0 .. C-1``; names ``path``, ``row``
        and ``column`` (e.g. the sample-sheet column ``her2_channel``).
    """
    n = image.shape[0]
    try:
        i = int(index)
        ok = float(index) == i and 0 <= i < n
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InputError(
            path,
            f"a channel index 0..{n - 1} (the image has {n} channel(s))",
            row=row,
            column=column,
            value=index,
        )
    return image[i]
