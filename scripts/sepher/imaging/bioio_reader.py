"""Vendor microscopy files (OME-TIFF, ND2, CZI, LIF, OME-Zarr) through bioio.

:func:`open_microscopy` opens one file with the bioio reader plugin of its
format and returns a :class:`MicroscopyImage`: the pixels as a lazy
(T, C, Z, Y, X) array and the metadata sepher needs (channel names, pixel
size, z step, number of time points). Only the metadata are read on opening,
so the start-up check of a sample sheet costs no pixel read.

Formats, by file name (case-insensitive):

==========================  ================================  ==================
suffix                      reader                            plugin fallback
==========================  ================================  ==================
``.ome.tif``, ``.ome.tiff`` ``bioio-ome-tiff``                tifffile
``.nd2``                    ``bioio-nd2``                     ``nd2`` package
``.czi``                    ``bioio-czi`` (aicspylibczi)      none
``.lif``                    ``bioio-lif`` (liffile)           none
``.zarr`` folder            zarr 3 (OME-NGFF 0.4 / 0.5)       --
==========================  ================================  ==================

OME-Zarr is read with :mod:`zarr` directly: ``bioio-ome-zarr`` (every
version) needs ``s3fs`` -> ``botocore``, which requires python-dateutil < 3
and so conflicts with the pinned 4.0.0. The NGFF layout is small (the
``multiscales`` axes, the first dataset's path and its ``scale``
transformation, ``omero`` channel labels); :func:`_open_ome_zarr` reads the
full-resolution level.

Plain TIFF, PNG and JPEG are not vendor formats: :mod:`sepher.imaging.io`
reads them itself (no bioio import). bioio is imported only when a vendor
file is opened.

Channel names in the sample sheet are resolved to indices by
:func:`resolve_channel`: an exact match first, then a case-insensitive one
("alexa fluor 488" finds "Alexa Fluor 488") when it is unique.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sepher.errors import InputError

__all__ = [
    "PIXEL_SIZE_TOLERANCE",
    "VENDOR_SUFFIXES",
    "MicroscopyImage",
    "is_microscopy_file",
    "open_microscopy",
    "resolve_channel",
]

#: File-name endings read by :func:`open_microscopy` (``.zarr`` is a folder).
VENDOR_SUFFIXES = (".ome.tif", ".ome.tiff", ".nd2", ".czi", ".lif", ".zarr")
#: Relative tolerance for X == Y pixel sizes and for the sheet's value vs the file's.
PIXEL_SIZE_TOLERANCE = 0.01

_DIMS = "TCZYX"
_UNIT_TO_UM = {
    "nanometer": 1e-3,
    "nm": 1e-3,
    "micrometer": 1.0,
    "micron": 1.0,
    "µm": 1.0,
    "um": 1.0,
    "millimeter": 1e3,
    "mm": 1e3,
    "centimeter": 1e4,
    "meter": 1e6,
    "m": 1e6,
}


def is_microscopy_file(path) -> bool:
    """True when `path` names a vendor format :func:`open_microscopy` reads."""
    name = str(path).lower().rstrip("/\\")
    return name.endswith(VENDOR_SUFFIXES)


@dataclass(frozen=True, eq=False)
class MicroscopyImage:
    """One microscopy file: lazy pixels and the metadata sepher uses.

    Attributes
    ----------
    path : str
    data : array-like, shape (T, C, Z, Y, X)
        Lazy (a dask array, or a zarr array for OME-Zarr) or a numpy array;
        :meth:`asarray` and :meth:`timepoint` read pixels.
    channel_names : list of str
        One name per channel, as the file's metadata give them.
    pixel_size_um : float or None
        Physical X pixel size (Y agrees within 1 %); None when not recorded.
    z_step_um : float or None
        Distance between z planes; None when not recorded.
    n_t : int
        Number of time points.
    dims : str
        The file's own dimension order as the reader reports it (e.g. ``"TCZYX"``);
        :attr:`data` is always T, C, Z, Y, X.
    reader : str
        The reader used, e.g. ``"bioio_nd2"``, ``"nd2"``, ``"zarr"``.
    """

    path: str
    data: Any
    channel_names: list[str] = field(default_factory=list)
    pixel_size_um: float | None = None
    z_step_um: float | None = None
    n_t: int = 1
    dims: str = _DIMS
    reader: str = ""

    @property
    def shape(self) -> tuple[int, ...]:
        """(T, C, Z, Y, X)."""
        return tuple(int(n) for n in self.data.shape)

    def asarray(self) -> np.ndarray:
        """Every pixel as a numpy (T, C, Z, Y, X) array."""
        data = self.data
        return np.asarray(data.compute() if hasattr(data, "compute") else data[...])

    def timepoint(self, t: int = 0) -> np.ndarray:
        """The pixels of time point `t` (0-based) as a numpy (C, Z, Y, X) array."""
        if not 0 <= int(t) < self.n_t:
            raise InputError(
                self.path, f"a time point index 0..{self.n_t - 1}", column="t", value=t
            )
        part = self.data[int(t)]
        return np.asarray(part.compute() if hasattr(part, "compute") else part)


def _positive(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) and number > 0 else None


def _check_square(path: str, x: float | None, y: float | None) -> float | None:
    """The X pixel size, after checking Y agrees with it within 1 %."""
    if x is not None and y is not None and abs(x - y) > PIXEL_SIZE_TOLERANCE * x:
        raise InputError(
            path,
            "square pixels (X and Y pixel sizes equal within 1 %)",
            value=f"X {x:.6g} µm, Y {y:.6g} µm",
            hint="sepher measures lengths and areas with one pixel size; resample the image "
            "to square pixels.",
        )
    return x if x is not None else y


def _plugin_reader(suffix: str):
    """The bioio reader class for a suffix, or None when its plugin is not installed."""
    try:
        if suffix == ".nd2":
            import bioio_nd2

            return bioio_nd2.Reader
        if suffix == ".czi":
            import bioio_czi

            return bioio_czi.Reader
        if suffix == ".lif":
            import bioio_lif

            return bioio_lif.Reader
        import bioio_ome_tiff

        return bioio_ome_tiff.Reader
    except ImportError:
        return None


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in (".ome.tiff", ".ome.tif", ".nd2", ".czi", ".lif", ".zarr"):
        if name.endswith(suffix):
            return ".ome.tif" if suffix == ".ome.tiff" else suffix
    return path.suffix.lower()


def _open_bioio(path: Path, reader_class) -> MicroscopyImage:
    import warnings

    from bioio import BioImage

    name = str(path)
    with warnings.catch_warnings():
        # bioio-ome-tiff 1.4.0 passes ome-types a parser argument it now ignores
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="bioio_ome_tiff")
        warnings.filterwarnings("ignore", message=".*parser argument is ignored.*")
        image = BioImage(path, reader=reader_class)
        return _from_bioio(name, image)


def _from_bioio(name: str, image) -> MicroscopyImage:
    scenes = image.scenes
    if len(scenes) > 1:
        raise InputError(
            name,
            "one field per file (one scene / stage position)",
            value=f"{len(scenes)} scenes: " + ", ".join(str(s) for s in scenes[:5]),
            hint="Export each position (scene) as its own file.",
        )
    dims = image.dims
    order = "".join(dims.order)
    sizes = {d: int(getattr(dims, d)) for d in dims.order}
    if sizes.get("S", 1) > 1:
        if sizes.get("C", 1) > 1:
            raise InputError(
                name, "one channel axis", value=f"dims {order} with RGB samples and channels"
            )
        data = image.get_image_dask_data("TZYXS")
        data = data.transpose(0, 4, 1, 2, 3)  # samples as channels
        names = ["red", "green", "blue", "alpha"][: sizes["S"]]
    else:
        data = image.get_image_dask_data(_DIMS)
        names = [str(c) for c in (image.channel_names or [])]
    sizes_px = image.physical_pixel_sizes
    pixel = _check_square(name, _positive(sizes_px.X), _positive(sizes_px.Y))
    z_step = _positive(sizes_px.Z)
    if len(names) != data.shape[1]:
        names = [f"Channel:{i}" for i in range(data.shape[1])]
    return MicroscopyImage(
        path=name,
        data=data,
        channel_names=names,
        pixel_size_um=pixel,
        z_step_um=z_step,
        n_t=int(data.shape[0]),
        dims=order,
        reader=type(image.reader).__module__.split(".")[0],
    )


def _open_nd2_fallback(path: Path) -> MicroscopyImage:
    """ND2 through the ``nd2`` package (:func:`sepher.imaging.io.read_nd2`) when
    ``bioio-nd2`` is not installed; positions are refused as by bioio."""
    from sepher.imaging.io import read_nd2

    data, axes, pixel, z_step, names = read_nd2(path)
    name = str(path)
    if "P" in axes:
        i = axes.index("P")
        raise InputError(
            name,
            "one field per file (one scene / stage position)",
            value=f"{data.shape[i]} stage positions",
            hint="Export each position (scene) as its own file.",
        )
    for ax in "TZ":
        if ax not in axes:
            data = data[np.newaxis]
            axes = ax + axes
    data = np.transpose(data, [axes.index(a) for a in _DIMS])
    return MicroscopyImage(name, data, names, pixel, z_step, int(data.shape[0]), axes, "nd2")


def _ome_xml_channels(xml: str) -> tuple[list[str], float | None, float | None]:
    import xml.etree.ElementTree as ET

    root = ET.fromstring(xml)
    for el in root.iter():
        if el.tag.endswith("Pixels"):
            names = [
                ch.get("Name") or ch.get("ID") or f"Channel:{i}"
                for i, ch in enumerate(c for c in el if c.tag.endswith("Channel"))
            ]
            x = _positive(el.get("PhysicalSizeX"))
            y = _positive(el.get("PhysicalSizeY"))
            scale = _UNIT_TO_UM.get(el.get("PhysicalSizeXUnit", "µm"), 1.0)
            return names, None if x is None else x * scale, None if y is None else y * scale
    return [], None, None


def _open_ome_tiff_fallback(path: Path) -> MicroscopyImage:
    """OME-TIFF through tifffile when ``bioio-ome-tiff`` is not installed."""
    import tifffile

    from sepher.imaging.io import tiff_z_step_um

    name = str(path)
    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        data, axes = series.asarray(), series.axes.upper()
        names, x, y = _ome_xml_channels(tif.ome_metadata or "<OME/>")
        z_step = tiff_z_step_um(tif)
    for ax in _DIMS:
        if ax not in axes:
            data = data[np.newaxis]
            axes = ax + axes
    extra = [a for a in axes if a not in _DIMS]
    if extra:
        raise InputError(name, "an OME-TIFF with axes T, C, Z, Y, X", value=f"axes {axes}")
    data = np.transpose(data, [axes.index(a) for a in _DIMS])
    if len(names) != data.shape[1]:
        names = [f"Channel:{i}" for i in range(data.shape[1])]
    pixel = _check_square(name, x, y)
    return MicroscopyImage(
        name, data, names, pixel, z_step, int(data.shape[0]), series.axes, "tifffile"
    )


def _open_ome_zarr(path: Path) -> MicroscopyImage:
    """OME-Zarr (NGFF 0.4 on zarr format 2, 0.5 on zarr format 3): level 0.

    Reads ``multiscales[0]``: its ``axes`` (names t, c, z, y, x; any missing
    one has size 1), ``datasets[0].path`` and that dataset's ``scale``
    transformation (combined with a global one, units from the axes), and the
    ``omero.channels[].label`` names.
    """
    import zarr

    name = str(path)
    group = zarr.open_group(str(path), mode="r")
    attrs = dict(group.attrs)
    attrs = attrs.get("ome", attrs)  # NGFF 0.5 nests the metadata under "ome"
    multiscales = attrs.get("multiscales")
    if not multiscales:
        raise InputError(name, "an OME-Zarr image group (a 'multiscales' attribute)")
    ms = multiscales[0]
    axes = [a["name"].lower() if isinstance(a, dict) else str(a).lower() for a in ms["axes"]]
    units = [a.get("unit") if isinstance(a, dict) else None for a in ms["axes"]]
    dataset = ms["datasets"][0]
    scale = np.ones(len(axes))
    for transforms in (
        ms.get("coordinateTransformations", []),
        dataset.get("coordinateTransformations", []),
    ):
        for t in transforms:
            if t.get("type") == "scale":
                scale = scale * np.asarray(t["scale"], dtype=float)
    array = group[dataset["path"]]
    unknown = [a for a in axes if a not in "tczyx"]
    if unknown:
        raise InputError(name, "OME-Zarr axes among t, c, z, y, x", value=",".join(axes))

    def length(axis):
        if axis not in axes:
            return None
        i = axes.index(axis)
        return _positive(scale[i] * _UNIT_TO_UM.get(units[i] or "micrometer", 1.0))

    data = _ZarrTCZYX(array, "".join(axes).upper())
    omero = attrs.get("omero") or {}
    names = [str(ch.get("label", "")) for ch in omero.get("channels", [])]
    if len(names) != data.shape[1] or not all(names):
        names = [f"Channel:{i}" for i in range(data.shape[1])]
    pixel = _check_square(name, length("x"), length("y"))
    return MicroscopyImage(
        name,
        data,
        names,
        pixel,
        length("z"),
        int(data.shape[0]),
        "".join(axes).upper(),
        "zarr",
    )


class _ZarrTCZYX:
    """A zarr array seen as (T, C, Z, Y, X): reads only the time point asked for."""

    def __init__(self, array, axes: str):
        self.array = array
        self.axes = axes
        sizes = dict(zip(axes, array.shape, strict=True))
        self.shape = tuple(int(sizes.get(a, 1)) for a in _DIMS)

    def __getitem__(self, key):
        if key is Ellipsis:
            return np.stack([self[t] for t in range(self.shape[0])])
        t = int(key)
        index = tuple(t if a == "T" else slice(None) for a in self.axes)
        data = np.asarray(self.array[index])
        axes = self.axes.replace("T", "")
        for ax in "CZYX":
            if ax not in axes:
                data = data[np.newaxis]
                axes = ax + axes
        return np.transpose(data, [axes.index(a) for a in "CZYX"])


def open_microscopy(path) -> MicroscopyImage:
    """Open a vendor microscopy file: metadata now, pixels when asked for.

    Parameters
    ----------
    path : str or Path
        An OME-TIFF, ND2, CZI or LIF file, or an OME-Zarr folder
        (:data:`VENDOR_SUFFIXES`).

    Returns
    -------
    MicroscopyImage

    Raises
    ------
    InputError
        Missing or unreadable file, a format not in :data:`VENDOR_SUFFIXES`
        (or whose plugin is not installed), several scenes / stage
        positions, X and Y pixel sizes differing by more than 1 %.
    """
    path = Path(path)
    name = str(path)
    suffix = _suffix(path)
    if suffix not in (".ome.tif", ".nd2", ".czi", ".lif", ".zarr"):
        raise InputError(
            name,
            "a microscopy file: OME-TIFF (.ome.tif, .ome.tiff), ND2, CZI, LIF or OME-Zarr "
            "(.zarr folder)",
            value=path.name,
        )
    exists = path.is_dir() if suffix == ".zarr" else path.is_file()
    if not exists:
        kind = "folder" if suffix == ".zarr" else "file"
        raise InputError(name, f"an existing {kind}", hint="Check the sample sheet path.")
    try:
        if suffix == ".zarr":
            return _open_ome_zarr(path)
        reader_class = _plugin_reader(suffix)
        if reader_class is not None:
            return _open_bioio(path, reader_class)
        if suffix == ".nd2":
            return _open_nd2_fallback(path)
        if suffix == ".ome.tif":
            return _open_ome_tiff_fallback(path)
        plugin = {".czi": "bioio-czi", ".lif": "bioio-lif"}[suffix]
        raise InputError(
            name,
            f"a format whose reader is installed ({plugin} is not)",
            value=path.name,
            hint=f"Install {plugin} (pinned in requirements.lock).",
        )
    except InputError:
        raise
    except Exception as exc:  # the plugins raise many types on corrupt files
        raise InputError(
            name,
            f"a readable {suffix.lstrip('.').upper()} file",
            value=f"{type(exc).__name__}: {exc}",
            hint="The file may be truncated, or not of the format its name says.",
        ) from exc


_INTEGER = re.compile(r"[+-]?\d+")


def resolve_channel(
    spec, channel_names, *, file="image", column=None, row=None, n_channels=None
) -> int:
    """The 0-based index of a channel given by index or by name.

    Parameters
    ----------
    spec : int or str
        An index (``2``, ``"2"``) or a channel name from the file's metadata
        (``"Alexa Fluor 488"``): an exact match wins, else a case-insensitive
        match when exactly one channel has that name.
    channel_names : sequence of str or None
        The file's channel names (:attr:`MicroscopyImage.channel_names`);
        None or empty when the file records none (then only indices work).
    file, column, row
        Named in the error (the sample sheet's row and column, or the image).
    n_channels : int, optional
        The number of channels, for the index range check (default: the
        number of names).

    Returns
    -------
    int

    Raises
    ------
    InputError
        An index out of range, or a name the file does not have (the message
        lists the file's channel names).
    """
    names = [str(n) for n in (channel_names or [])]
    n = len(names) if n_channels is None else int(n_channels)
    if isinstance(spec, (bool, np.bool_)):
        spec = str(spec)
    if isinstance(spec, (int, np.integer)) or (
        isinstance(spec, str) and _INTEGER.fullmatch(spec.strip())
    ):
        index = int(spec)
        if n and not 0 <= index < n:
            raise InputError(
                file,
                f"a channel index 0..{n - 1} (the image has {n} channel(s))",
                row=row,
                column=column,
                value=spec,
            )
        return index
    text = str(spec).strip()
    if text in names:
        return names.index(text)
    folded = [i for i, c in enumerate(names) if c.casefold() == text.casefold()]
    if len(folded) == 1:
        return folded[0]
    listed = ", ".join(json.dumps(c, ensure_ascii=False) for c in names) if names else "none"
    raise InputError(
        file,
        f"a channel index or one of the file's channel names ({listed})",
        row=row,
        column=column,
        value=spec,
        hint="Names are matched exactly, or ignoring case when only one channel matches."
        if names
        else "The file records no channel names: give a 0-based index.",
    )
