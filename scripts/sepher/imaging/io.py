"""Reading microscopy images as channel-first (C, Y, X) arrays or (C, Z, Y, X) stacks.

TIFF and OME-TIFF through :mod:`tifffile` (pixel size from the OME
``PhysicalSizeX`` or the TIFF resolution tags when they are present, the z
step from OME ``PhysicalSizeZ`` or ImageJ ``spacing``), PNG and JPEG through
:func:`skimage.io.imread`; Nikon ND2, Zeiss CZI, Leica LIF and OME-Zarr
through bioio (:func:`sepher.imaging.bioio_reader.open_microscopy`, imported
only for those files). OME-TIFF pixels stay on the tifffile path (no bioio
import, the demo's fields read as before); its channel names come from its
OME-XML.

:func:`read_image` returns one 2-D plane and refuses z-stacks and time
series; :func:`read_stack` returns a z-stack (a 2-D file is a stack of one
plane). Channels may be given by index or by their metadata name
(:func:`~sepher.imaging.bioio_reader.resolve_channel`). For vendor files
(OME-TIFF, ND2, CZI, LIF, OME-Zarr) a pixel size given by the caller (the
sample sheet) must agree with the file's within 1 %; for plain TIFF the
file's value wins with a warning beyond 5 %. Every failure is an
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

__all__ = [
    "image_channel_names",
    "read_image",
    "read_nd2",
    "read_stack",
    "select_channel",
    "tiff_pixel_size_um",
    "tiff_z_step_um",
]

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


def tiff_z_step_um(tif: tifffile.TiffFile) -> float | None:
    """Z step (um) between the planes of a TIFF z-stack, or None when not recorded.

    Looks at OME-XML ``Pixels/@PhysicalSizeZ`` (with its unit), then ImageJ
    metadata ``spacing`` (in its ``unit``; no unit or "pixel" counts as not
    recorded).
    """
    if tif.is_ome and tif.ome_metadata:
        try:
            root = ET.fromstring(tif.ome_metadata)
            for el in root.iter():
                if el.tag.endswith("Pixels") and el.get("PhysicalSizeZ"):
                    unit = el.get("PhysicalSizeZUnit", "µm")
                    return float(el.get("PhysicalSizeZ")) * _UNIT_TO_UM.get(unit, 1.0)
        except (ET.ParseError, ValueError):
            pass
    ij = tif.imagej_metadata or {}
    if "spacing" in ij and ij.get("unit") in _UNIT_TO_UM:
        try:
            return float(ij["spacing"]) * _UNIT_TO_UM[ij["unit"]]
        except (TypeError, ValueError):
            return None
    return None


# ---------------------------------------------------------------- ND2
def read_nd2(path) -> tuple[np.ndarray, str, float | None, float | None, list[str]]:
    """Read a Nikon ND2 file through the ``nd2`` package (Talley Lambert, BSD-3).

    ``nd2`` rather than bioio's ND2 plugin: ``bioio-nd2`` pulls ``s3fs`` ->
    ``botocore``, which needs python-dateutil < 3 and conflicts with the pinned
    4.0.0; ``nd2`` is the library that plugin wraps.

    Returns
    -------
    data : ndarray
        The frames with the file's loop axes first (time, stage position, z,
        only those of more than one step), then C, Y, X.
    axes : str
        E.g. ``"TZCYX"``; stage positions are ``P``.
    pixel_size_um, z_step_um : float or None
        From the calibration and the z loop; None when not recorded.
    channel_names : list of str
    """
    import nd2

    with nd2.ND2File(path) as f:
        sizes = dict(f.sizes)
        data = np.asarray(f.asarray())
        voxel = f.voxel_size()
        channels = f.metadata.channels or []
        names = [ch.channel.name for ch in channels]
        z_step = float(voxel.z) if sizes.get("Z", 1) > 1 and voxel.z else None
        pixel = float(voxel.x) if voxel.x and f.metadata.channels else None
    # the package's axis order is loops then C, Y, X (RGB files carry S last)
    if sizes.get("S", 1) > 1:
        raise ValueError("an RGB (brightfield) ND2: sepher reads fluorescence ND2 files")
    order = [a for a in sizes if a not in ("C", "Y", "X", "S")]
    if "C" not in sizes:
        data = data.reshape(tuple(sizes[a] for a in order) + (1, sizes["Y"], sizes["X"]))
    axes = "".join("P" if a == "P" else a for a in order) + "CYX"
    return data, axes, pixel, z_step, names


def _time_series_expected(n_t: int) -> str:
    return f"a single time point (this file has T={n_t} time points)"


def _refuse_time_series(path: str, n_t: int, detail: str):
    raise InputError(
        path,
        _time_series_expected(n_t),
        value=f"a time series of {n_t} time points, {detail}",
        hint="sepher does not measure time series: export one time point (or pass "
        "t=<0-based index> to read_stack to measure one).",
    )


_STACK_HINTS = {
    "Z": "Z-stacks are read by sepher.imaging.io.read_stack and measured per cell in the "
    "mid-nuclear plane (sepher.imaging.zstack); or export the focal plane.",
    "T": "sepher does not measure time series: export one time point (read_stack(..., "
    "t=index) selects one).",
    "Q": "Export a maximum projection or the focal plane.",
}


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
                unit = "time points" if ax == "T" else "planes"
                raise InputError(
                    path,
                    _time_series_expected(data.shape[i])
                    if ax == "T"
                    else "a single 2-D plane (Y, X) with optional channels",
                    value=f"{kind} of {data.shape[i]} {unit}, shape {data.shape}, axes {axes}",
                    hint=_STACK_HINTS[ax],
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
    return series.asarray(), series.axes, tiff_pixel_size_um(tif), tiff_z_step_um(tif)


def _load(path: Path, tif: tifffile.TiffFile | None = None):
    """(data, axes, pixel size, z step) of an image file; InputError when unreadable."""
    name = str(path)
    if not path.is_file():
        raise InputError(name, "an existing image file", hint="Check the sample sheet path.")
    suffix = path.suffix.lower()
    try:
        if tif is not None:
            return _read_tiff(tif)
        if suffix in (".tif", ".tiff", ".btf") or name.lower().endswith(".ome.tif"):
            with tifffile.TiffFile(path) as opened:
                return _read_tiff(opened)
        if suffix == ".nd2":
            data, axes, px, z_step, _ = read_nd2(path)
            return data, axes, px, z_step
        data = np.asarray(skio.imread(path))
        return data, {2: "YX", 3: "YXS"}.get(data.ndim, "?" * data.ndim), None, None
    except InputError:
        raise
    except Exception as exc:  # tifffile / imageio raise many types on corrupt files
        raise InputError(
            name,
            "a readable TIFF, OME-TIFF, ND2, PNG or JPEG image",
            value=f"{type(exc).__name__}: {exc}",
            hint="The file may be truncated or not an image.",
        ) from exc


_OME_TIFF = (".ome.tif", ".ome.tiff")


def _is_bioio_path(path: Path) -> bool:
    """A vendor file whose pixels are read through bioio (every vendor format but OME-TIFF)."""
    from sepher.imaging.bioio_reader import is_microscopy_file

    name = str(path).lower()
    return name.endswith((".nd2", ".czi", ".lif", ".zarr", ".zarr/")) and is_microscopy_file(path)


def _is_vendor_path(path: Path) -> bool:
    return str(path).lower().endswith(_OME_TIFF) or _is_bioio_path(path)


def _load_vendor(path: Path, t: int | None):
    """(C, Z, Y, X) pixels of one time point of an ND2 / CZI / LIF / OME-Zarr file,
    "CZYX", pixel size, z step, channel names; a time series without `t` is refused
    before any pixel is read."""
    from sepher.imaging.bioio_reader import open_microscopy

    name = str(path)
    image = open_microscopy(path)
    if t is None and image.n_t > 1:
        _refuse_time_series(name, image.n_t, f"(T, C, Z, Y, X) {image.shape}")
    try:
        data = image.timepoint(0 if t is None else t)
    except InputError:
        raise
    except Exception as exc:  # a plugin failing on the pixels of a corrupt file
        raise InputError(
            name,
            f"a readable image file ({image.reader})",
            value=f"{type(exc).__name__}: {exc}",
            hint="The file may be truncated.",
        ) from exc
    return data, "CZYX", image.pixel_size_um, image.z_step_um, list(image.channel_names)


def image_channel_names(path, tif: tifffile.TiffFile | None = None) -> list[str]:
    """Channel names recorded in an image file's metadata (no pixel read).

    OME-TIFF: the OME-XML ``Channel/@Name`` of the first image; ND2, CZI,
    LIF, OME-Zarr: :func:`~sepher.imaging.bioio_reader.open_microscopy`;
    any other file: an empty list (it records no names).
    """
    path = Path(path)
    if _is_bioio_path(path):
        from sepher.imaging.bioio_reader import open_microscopy

        return list(open_microscopy(path).channel_names)
    if not str(path).lower().endswith(_OME_TIFF):
        return []
    from sepher.imaging.bioio_reader import _ome_xml_channels

    try:
        if tif is not None:
            xml = tif.ome_metadata
        else:
            with tifffile.TiffFile(path) as opened:
                xml = opened.ome_metadata
        return _ome_xml_channels(xml)[0] if xml else []
    except Exception:  # unreadable header: the pixel reader reports it
        return []


def _resolve_channels(channels, names_of, name: str, n: int) -> list[int]:
    """Indices of `channels` (ints or metadata names); `names_of()` gives the names."""
    from sepher.imaging.bioio_reader import resolve_channel

    names = None
    out = []
    for c in channels:
        if isinstance(c, str) and not c.strip().lstrip("+-").isdigit():
            names = names_of() if names is None else names
            out.append(resolve_channel(c, names, file=name, n_channels=n))
        else:
            out.append(c)
    return out


def _sheet_value(pixel_size_um) -> float | None:
    """A caller's (sample sheet's) pixel size, None when blank (None or NaN)."""
    if pixel_size_um is None:
        return None
    try:
        value = float(pixel_size_um)
    except (TypeError, ValueError):
        return pixel_size_um
    return None if np.isnan(value) else value


def _pixel_size(name: str, file_px, pixel_size_um, strict: bool = False) -> float:
    """The file's pixel size (warning when the sheet disagrees), else the sheet's.

    With `strict` (vendor files) a sheet value more than 1 % from the file's
    is an InputError naming both.
    """
    pixel_size_um = _sheet_value(pixel_size_um)
    if file_px is not None and strict and pixel_size_um is not None:
        from sepher.imaging.bioio_reader import PIXEL_SIZE_TOLERANCE

        if not abs(float(file_px) - float(pixel_size_um)) <= PIXEL_SIZE_TOLERANCE * file_px:
            raise InputError(
                name,
                f"the file's own pixel size within {PIXEL_SIZE_TOLERANCE:.0%}: the file's "
                f"metadata says {file_px:.6g} µm/px",
                column="pixel_size_um",
                value=pixel_size_um,
                hint="Correct the sheet, or leave pixel_size_um blank to use the file's value.",
            )
    if file_px is not None:
        if pixel_size_um is not None and abs(file_px - pixel_size_um) > 0.05 * pixel_size_um:
            warnings.warn(
                f"{name}: file records pixel size {file_px:.4g} um, sample sheet says "
                f"{pixel_size_um:.4g} um; using the file's value",
                stacklevel=3,
            )
        return float(file_px)
    if pixel_size_um is None or not np.isfinite(pixel_size_um) or pixel_size_um <= 0:
        raise InputError(
            name,
            "a pixel size in um (in the file metadata or the sample sheet)",
            column="pixel_size_um",
            value=pixel_size_um,
        )
    return float(pixel_size_um)


def _channels_of(array, channels, names, path, tif, name):
    """The `channels` (indices or metadata names) of `array` (channels first), in
    that order; the file's channel names are read only when a name is asked for."""
    wanted = _resolve_channels(
        channels,
        (lambda: names) if names is not None else (lambda: image_channel_names(path, tif)),
        name,
        array.shape[0],
    )
    return np.stack([select_channel(array, c, name) for c in wanted])


def read_image(
    path, pixel_size_um: float | None = None, channels=None, tif: tifffile.TiffFile | None = None
) -> tuple[np.ndarray, float]:
    """Read a 2-D (multi-channel) image as a (C, Y, X) array.

    Parameters
    ----------
    path : str or Path
        TIFF / OME-TIFF, ND2 (version 3), PNG or JPEG file holding one plane;
        z-stacks are read by :func:`read_stack`.
    pixel_size_um : float, optional
        Pixel edge length (um) from the sample sheet; used when the file does
        not record one. When both exist and differ by more than 5 %, the
        file's value wins and a warning is issued.
    channels : sequence of int or str, optional
        Channels to keep (in that order), by 0-based index or by the name the
        file's metadata give them; all by default.
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
    names = None
    if _is_bioio_path(path):
        data, axes, file_px, _, names = _load_vendor(path, None)
    else:
        data, axes, file_px, _ = _load(path, tif)
    image = _to_cyx(np.asarray(data), axes, name)
    if image.dtype not in (np.uint8, np.uint16):
        image = image.astype(np.float32)
    if channels is not None:
        image = _channels_of(image, channels, names, path, tif, name)
    if not np.any(image):
        raise InputError(name, "an image with signal", value="all pixels are 0")
    return image, _pixel_size(name, file_px, pixel_size_um, strict=_is_vendor_path(path))


def _to_czyx(data: np.ndarray, axes: str, path: str, t: int | None) -> np.ndarray:
    axes = axes.upper().replace("I", "Q")
    if "Q" in axes and "C" not in axes and "S" not in axes and axes.count("Q") == 1:
        axes = axes.replace("Q", "C")  # untyped pages (plain multi-page TIFF): channels
    if "T" in axes:
        i = axes.index("T")
        n_t = data.shape[i]
        if t is None and n_t > 1:
            _refuse_time_series(path, n_t, f"shape {data.shape}, axes {axes}")
        k = 0 if t is None else int(t)
        if not 0 <= k < n_t:
            raise InputError(path, f"a time point index 0..{n_t - 1}", column="t", value=t)
        data = np.take(data, k, axis=i)
        axes = axes[:i] + axes[i + 1 :]
    for ax in "PQ":
        if ax in axes:
            i = axes.index(ax)
            if data.shape[i] > 1:
                kind = {"P": "stage positions", "Q": "untyped planes"}[ax]
                raise InputError(
                    path,
                    "one field: a z-stack with axes (C,) Z, Y, X",
                    value=f"{data.shape[i]} {kind}, shape {data.shape}, axes {axes}",
                    hint="Export each position as its own file."
                    if ax == "P"
                    else "Say what the pages are with read_stack(..., axes='ZYX' or 'CZYX').",
                )
            data = np.take(data, 0, axis=i)
            axes = axes[:i] + axes[i + 1 :]
    if "S" in axes and "C" in axes:
        i = axes.index("S")
        if data.shape[i] == 1:
            data = np.take(data, 0, axis=i)
            axes = axes[:i] + axes[i + 1 :]
    axes = axes.replace("S", "C")
    for ax in "CZ":
        if ax not in axes:
            data = data[np.newaxis]
            axes = ax + axes
    if sorted(axes) != ["C", "X", "Y", "Z"]:
        raise InputError(
            path, "a z-stack with axes (C,) Z, Y, X", value=f"axes {axes} {data.shape}"
        )
    return np.transpose(data, [axes.index(a) for a in "CZYX"])


def read_stack(
    path,
    pixel_size_um: float | None = None,
    z_step_um: float | None = None,
    *,
    channels=None,
    t: int | None = None,
    axes: str | None = None,
    require_z_step: bool = True,
    tif: tifffile.TiffFile | None = None,
) -> tuple[np.ndarray, float, float | None]:
    """Read a z-stack (or a 2-D image, as a stack of one plane) as (C, Z, Y, X).

    Parameters
    ----------
    path : str or Path
        OME-TIFF / ImageJ TIFF with a Z axis, Nikon ND2 (version 3), or any
        file :func:`read_image` reads.
    pixel_size_um : float, optional
        Pixel edge length (um) from the sample sheet; the file's value wins
        (with a warning when they differ by more than 5 %).
    z_step_um : float, optional
        Distance between planes (um) when the file does not record one; the
        file's value (OME ``PhysicalSizeZ``, ImageJ ``spacing``, the ND2 z
        loop's step) wins.
    channels : sequence of int or str, optional
        Channels to keep (in that order), by 0-based index or metadata name;
        all by default.
    t : int, optional
        0-based time point to read from a time series. Without it a series of
        more than one time point is refused.
    axes : str, optional
        The file's axes when its metadata do not say (a plain multi-page TIFF
        is otherwise read as channels), e.g. ``"ZYX"`` or ``"CZYX"``. Ignored
        for ND2, CZI, LIF and OME-Zarr, whose metadata always say.
    require_z_step : bool, default True
        Refuse a stack of several planes whose z step is unknown. False
        returns None instead (the per-cell mid-nuclear measurement needs no
        step; orthogonal views and 3-D segmentation do).
    tif : tifffile.TiffFile, optional
        `path` already opened by the caller (as in :func:`read_image`).

    Returns
    -------
    stack : ndarray, shape (C, Z, Y, X)
        uint8 / uint16 kept as stored, other dtypes as float32.
    pixel_size_um : float
    z_step_um : float or None
        None for a single plane with no recorded step (or any stack with no
        known step when ``require_z_step`` is False).

    Raises
    ------
    InputError
        As :func:`read_image`; a time series without ``t``; several stage
        positions; a z-stack with no z step known; ``axes`` that do not fit.
    """
    path = Path(path)
    name = str(path)
    names = None
    if _is_bioio_path(path):
        data, file_axes, file_px, file_z, names = _load_vendor(path, t)
        axes = None
    else:
        data, file_axes, file_px, file_z = _load(path, tif)
    data = np.asarray(data)
    if axes is not None:
        given = axes.upper()
        if len(given) != data.ndim:
            raise InputError(
                name,
                f"axes with one letter per dimension of the data {data.shape}",
                column="axes",
                value=axes,
            )
        file_axes = given
    stack = _to_czyx(data, file_axes, name, None if names is not None else t)
    if stack.dtype not in (np.uint8, np.uint16):
        stack = stack.astype(np.float32)
    if channels is not None:
        stack = _channels_of(stack, channels, names, path, tif, name)
    if not np.any(stack):
        raise InputError(name, "an image with signal", value="all pixels are 0")
    pixel = _pixel_size(name, file_px, pixel_size_um, strict=_is_vendor_path(path))
    if file_z is not None:
        if z_step_um is not None and abs(file_z - z_step_um) > 0.05 * z_step_um:
            warnings.warn(
                f"{name}: file records z step {file_z:.4g} um, sample sheet says "
                f"{z_step_um:.4g} um; using the file's value",
                stacklevel=2,
            )
        z_step = float(file_z)
    elif z_step_um is not None and np.isfinite(z_step_um) and z_step_um > 0:
        z_step = float(z_step_um)
    elif stack.shape[1] > 1 and require_z_step:
        raise InputError(
            name,
            "a z step in um (OME PhysicalSizeZ, ImageJ spacing, or given as z_step_um)",
            column="z_step_um",
            value=z_step_um,
        )
    else:
        z_step = None
    return stack, pixel, z_step


def select_channel(
    image: np.ndarray, index, path="image", column=None, row=None, channel_names=None
) -> np.ndarray:
    """Return channel ``index`` (0-based) of a (C, Y, X) image.

    ``index`` may also be a channel name when ``channel_names`` (the file's,
    :func:`image_channel_names`) are given
    (:func:`~sepher.imaging.bioio_reader.resolve_channel`).

    Raises
    ------
    InputError
        ``index`` is not an integer in ``0 .. C-1`` nor one of
        ``channel_names``; names ``path``, ``row`` and ``column`` (e.g. the
        sample-sheet column ``her2_channel``).
    """
    n = image.shape[0]
    if channel_names is not None and isinstance(index, str):
        from sepher.imaging.bioio_reader import resolve_channel

        index = resolve_channel(
            index, channel_names, file=path, column=column, row=row, n_channels=n
        )
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
