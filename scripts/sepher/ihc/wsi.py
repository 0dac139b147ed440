"""Whole-slide images for HER2 IHC scoring: read, find tissue, tile, score.

A whole-slide image (Aperio SVS, Hamamatsu NDPI, pyramidal or plain
(OME-)TIFF) is read through `tiffslide <https://github.com/Bayer-Group/tiffslide>`_,
a maintained pure-Python (tifffile + zarr) reader with OpenSlide's interface,
which reads only the compressed tiles a region touches. A plain JPEG or PNG
photograph is a one-level slide (read whole: those formats have no tiles).

The chain of :func:`score_slide`:

1. :func:`open_slide`: level sizes, downsamples and the pixel size from the
   metadata (:func:`resolve_pixel_size` checks it against a sample-sheet
   value).
2. :func:`tissue_mask`: tissue at about ``target_um`` per pixel (8 um by
   default), from the pyramid level nearest that size, block-averaged strip
   by strip; tissue is what is not glass (the glass colour is the brightest
   mode of the low-resolution image).
3. :func:`read_roi_geojson` / :func:`restrict_to_roi`: optional tumour
   outlines drawn in QuPath, ANDed with the tissue mask.
4. :func:`iter_tiles`: level-0 tiles (``tile_px`` square, raster order) with
   tissue under them.
5. Each tile is read at scan resolution with a halo of
   :func:`~sepher.ihc.scoring.tile_halo_um` and scored with
   :func:`~sepher.ihc.scoring.score_image`; the cells whose nucleus centroid
   lies in the tile's core are kept, in slide coordinates.

Memory is bounded independently of the slide's size: the low-resolution
image and mask (their size is the slide's area over ``target_um``
squared: 3125 x 3125 px for a 100,000 x 100,000 px slide at 0.25 um per
pixel, 29 MB as 8-bit RGB), one strip of the level the mask is read from
(<= 64 MB), one tile window and the scorer's arrays on it, and the per-cell
table (about 200 bytes per cell).

Coordinates: level-0 pixels, x to the right and y down, as QuPath exports
them; pixel ``(i, j)`` covers ``[j, j + 1) x [i, i + 1)``, so its centre is
at ``(j + 0.5, i + 0.5)``. Cell positions (``x_um``, ``y_um``) are nucleus
centroids in pixel-index units (pixel centres at integers) times the pixel
size, as in :func:`~sepher.ihc.scoring.score_image`.
"""

from __future__ import annotations

import json
import math
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from sepher.errors import InputError

__all__ = [
    "PIXEL_SIZE_TOLERANCE",
    "RoiPolygon",
    "Slide",
    "Tile",
    "TissueMask",
    "is_whole_slide",
    "iter_tiles",
    "open_slide",
    "points_in_roi",
    "rasterise_roi",
    "read_roi_geojson",
    "resolve_pixel_size",
    "restrict_to_roi",
    "score_slide",
    "tissue_mask",
]

#: File name endings always read as whole-slide images (tiled, pyramidal formats).
SLIDE_SUFFIXES = (".svs", ".ndpi")
#: A TIFF with a pyramid, or wider / taller than this (px), is read as a slide.
SLIDE_MIN_SIDE_PX = 8192


def is_whole_slide(path) -> bool:
    """True for a file the IHC stage reads as a whole slide (:func:`score_slide`).

    SVS and NDPI always; a TIFF / OME-TIFF when it has a pyramid (more than
    one resolution level) or a side longer than :data:`SLIDE_MIN_SIDE_PX`
    (a photomicrograph or tile is read whole instead). Only the TIFF header
    is read.
    """
    import tifffile

    path = Path(path)
    name = path.name.lower()
    if name.endswith(SLIDE_SUFFIXES):
        return True
    if not name.endswith((".tif", ".tiff", ".btf")):
        return False
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            shape = series.shape
            levels = len(getattr(series, "levels", [series]))
    except Exception:  # unreadable: the reader's own message comes later
        return False
    spatial = [n for n, axis in zip(shape, series.axes, strict=False) if axis in "YX"]
    return levels > 1 or (bool(spatial) and max(spatial) > SLIDE_MIN_SIDE_PX)


#: Relative disagreement allowed between the metadata and sample-sheet pixel sizes.
PIXEL_SIZE_TOLERANCE = 0.01
#: Pixel sizes (um) outside this range are not a microscope's: a TIFF's
#: resolution tag then holds a print resolution (72 dpi = 353 um) and is ignored.
PLAUSIBLE_PIXEL_UM = (0.01, 100.0)
#: Bytes of one strip read for the low-resolution image (bounds its memory).
STRIP_BYTES = 64 * 2**20
#: A brightfield glass mode darker than this (8-bit mean RGB) is tissue, not glass.
GLASS_MIN_BRIGHTNESS = 150
#: Pixels with every channel at or below this are "no data" (scanner fill), never tissue.
NO_DATA_MAX = 5

_OME_UNITS_UM = {"pm": 1e-6, "nm": 1e-3, "µm": 1.0, "um": 1.0, "mm": 1e3, "cm": 1e4, "m": 1e6}


# --------------------------------------------------------------------------- slides


class Slide:
    """An open slide: level geometry, pixel size and a region reader.

    Use :func:`open_slide` to make one; close it (or use it as a context
    manager) to release the file.

    Attributes
    ----------
    path : pathlib.Path
    format : str
        ``"aperio"``, ``"hamamatsu"``, ``"generic-tiff"``, ... (tiffslide's
        format detection) or ``"image"`` for a JPEG / PNG.
    level_dimensions : tuple of (int, int)
        ``(width, height)`` of each level, level 0 the scan resolution
        (OpenSlide's order).
    level_downsamples : tuple of float
        Level-0 pixels per level pixel.
    pixel_size_um : float or None
        Level-0 pixel edge from the metadata (None when the file has none).
    pixel_size_source : str or None
        The metadata field it came from.
    """

    def __init__(
        self,
        path,
        fmt,
        level_dimensions,
        level_downsamples,
        pixel_size_um,
        pixel_size_source,
        *,
        reader=None,
        channels=3,
    ):
        self.path = Path(path)
        self.format = fmt
        self.level_dimensions = tuple((int(w), int(h)) for w, h in level_dimensions)
        self.level_downsamples = tuple(float(d) for d in level_downsamples)
        self.pixel_size_um = pixel_size_um
        self.pixel_size_source = pixel_size_source
        self._reader = reader
        self._channels = channels
        self._image = None

    @property
    def dimensions(self) -> tuple[int, int]:
        """``(width, height)`` of level 0."""
        return self.level_dimensions[0]

    @property
    def level_count(self) -> int:
        return len(self.level_dimensions)

    def read(self, level: int, x: int, y: int, width: int, height: int) -> np.ndarray:
        """Region of one level as 8-bit RGB, shape ``(height, width, 3)``.

        ``x``, ``y``, ``width``, ``height`` are in that level's own pixels
        (unlike OpenSlide's ``read_region``, whose location is in level-0
        pixels) and must lie inside the level.
        """
        level_w, level_h = self.level_dimensions[level]
        if not (0 <= x and 0 <= y and width > 0 and height > 0):
            raise ValueError(f"empty or negative region {(x, y, width, height)}")
        if x + width > level_w or y + height > level_h:
            raise ValueError(
                f"region {(x, y, width, height)} outside level {level} of {level_w} x {level_h}"
            )
        if self._reader is None:
            if self._image is None:
                self._image = _read_plain_image(self.path)
            region = self._image[y : y + height, x : x + width]
        else:
            location = (self._level0_coordinate(x, level), self._level0_coordinate(y, level))
            region = np.asarray(
                self._reader.read_region(location, level, (width, height), as_array=True)
            )
        return _as_rgb8(region, self.path)

    def _level0_coordinate(self, value: int, level: int) -> int:
        """The level-0 coordinate that tiffslide maps to ``value`` at ``level``."""
        ds = self.level_downsamples[level]
        base = int(round(value * ds))
        while int(base / ds) < value:
            base += 1
        while base > 0 and int(base / ds) > value:
            base -= 1
        return base

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        self._image = None

    def __enter__(self) -> Slide:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        w, h = self.dimensions
        return (
            f"Slide({str(self.path)!r}, {self.format}, {w} x {h} px, {self.level_count} level(s), "
            f"pixel {self.pixel_size_um} um)"
        )


def open_slide(path) -> Slide:
    """Open a whole-slide image or a plain photograph.

    SVS, NDPI, (pyramidal) TIFF and OME-TIFF go through tiffslide; JPEG and
    PNG through Pillow as a one-level slide with no pixel size (their dpi
    field is a print setting, usually 72 or 96).

    The pixel size is tiffslide's ``tiffslide.mpp-x`` / ``mpp-y`` (or
    OpenSlide's ``openslide.mpp-x``) property, then an OME-XML
    ``PhysicalSizeX`` / ``Y``; a value outside :data:`PLAUSIBLE_PIXEL_UM`
    (a print resolution in a plain TIFF) counts as missing.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    Slide

    Raises
    ------
    sepher.errors.InputError
        The file is missing or unreadable, not 8-bit, or its pixels are
        not square (x and y sizes differ by more than 1 %).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, expected="an existing slide or image file")
    reader = _open_tiffslide(path)
    if reader is None:
        return _open_plain_image(path)
    try:
        props = reader.properties
        sample = np.asarray(reader.read_region((0, 0), 0, (1, 1), as_array=True))
        if sample.dtype != np.uint8 or sample.ndim != 3 or sample.shape[-1] not in (1, 3, 4):
            raise InputError(
                path,
                expected="an 8-bit RGB (or greyscale) brightfield slide",
                value=f"{sample.dtype}, {sample.shape[-1] if sample.ndim == 3 else 1} channel(s)",
            )
        pixel_um, source = _metadata_pixel_size(path, props, reader)
        return Slide(
            path,
            props.get("tiffslide.vendor") or reader.detect_format(path) or "tiff",
            reader.level_dimensions,
            reader.level_downsamples,
            pixel_um,
            source,
            reader=reader,
            channels=sample.shape[-1],
        )
    except BaseException:
        reader.close()
        raise


def _open_tiffslide(path: Path):
    import tifffile
    import tiffslide

    try:
        with warnings.catch_warnings():
            # tiffslide warns that NDPI / Ventana metadata parsing is partial
            warnings.simplefilter("ignore", UserWarning)
            reader = tiffslide.TiffSlide(path)
            _ = reader.properties
    except (tifffile.TiffFileError, ValueError, KeyError, NotImplementedError, OSError):
        return None
    return reader


def _open_plain_image(path: Path) -> Slide:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError) as error:
        raise InputError(
            path,
            expected="a whole-slide image (SVS, NDPI, pyramidal or plain TIFF / OME-TIFF) "
            "or a JPEG / PNG image",
            hint=f"The file could not be read ({error}).",
        ) from None
    return Slide(path, "image", [(width, height)], [1.0], None, None)


def _read_plain_image(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _as_rgb8(region: np.ndarray, path: Path) -> np.ndarray:
    if region.ndim == 2:
        region = region[..., None]
    if region.shape[-1] == 1:
        region = np.repeat(region, 3, axis=-1)
    elif region.shape[-1] == 4:
        region = region[..., :3]
    if region.dtype != np.uint8:
        raise InputError(path, expected="8-bit RGB pixels", value=str(region.dtype))
    return np.ascontiguousarray(region)


def _plausible(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    low, high = PLAUSIBLE_PIXEL_UM
    return value if math.isfinite(value) and low < value < high else None


def _metadata_pixel_size(path: Path, props: dict, reader) -> tuple[float | None, str | None]:
    """(pixel size um, source) from tiffslide / OpenSlide properties or OME-XML."""
    found = None
    for prefix in ("tiffslide", "openslide"):
        x = _plausible(props.get(f"{prefix}.mpp-x"))
        y = _plausible(props.get(f"{prefix}.mpp-y"))
        if x is not None:
            found = (x, y, f"{prefix}.mpp-x")
            break
    if found is None:
        found = _ome_pixel_size(reader)
    if found is None:
        return None, None
    x, y, source = found
    if y is not None and abs(x - y) > PIXEL_SIZE_TOLERANCE * max(x, y):
        raise InputError(
            path,
            expected="square pixels (x and y pixel sizes within 1 %)",
            value=f"{x:.6g} x {y:.6g} um ({source})",
        )
    return x, source


def _ome_pixel_size(reader) -> tuple[float, float | None, str] | None:
    try:
        xml = reader.ts_tifffile.ome_metadata
    except AttributeError:
        return None
    if not xml:
        return None
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return None
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] != "Pixels":
            continue
        sizes = []
        for axis in ("X", "Y"):
            value = _plausible_ome(element, axis)
            sizes.append(value)
        if sizes[0] is not None:
            return sizes[0], sizes[1], "OME PhysicalSizeX"
        return None
    return None


def _plausible_ome(element, axis: str) -> float | None:
    value = element.get(f"PhysicalSize{axis}")
    unit = element.get(f"PhysicalSize{axis}Unit", "µm")
    if value is None or unit not in _OME_UNITS_UM:
        return None
    try:
        return _plausible(float(value) * _OME_UNITS_UM[unit])
    except ValueError:
        return None


def resolve_pixel_size(slide: Slide, sheet_um: float | None = None) -> float:
    """The pixel size to score with: the metadata's, the sheet's, or both agreeing.

    Parameters
    ----------
    slide : Slide
    sheet_um : float, optional
        ``pixel_size_um`` given in the sample sheet.

    Returns
    -------
    float
        Level-0 pixel edge (um).

    Raises
    ------
    sepher.errors.InputError
        Neither is known, or both are and differ by more than
        :data:`PIXEL_SIZE_TOLERANCE` (1 %) of the metadata value.
    """
    sheet = None
    if sheet_um is not None and not (isinstance(sheet_um, float) and math.isnan(sheet_um)):
        try:
            sheet = float(sheet_um)
        except (TypeError, ValueError):
            sheet = -1.0
        if not (math.isfinite(sheet) and sheet > 0):
            raise InputError(
                slide.path,
                column="pixel_size_um",
                value=sheet_um,
                expected="a positive pixel size in micrometres",
            )
    meta = slide.pixel_size_um
    if meta is None and sheet is None:
        raise InputError(
            slide.path,
            column="pixel_size_um",
            expected="a pixel size: the file's metadata has none, so give pixel_size_um "
            "(um per pixel at scan resolution) in the sample sheet",
        )
    if meta is None:
        return sheet
    if sheet is not None and abs(sheet - meta) > PIXEL_SIZE_TOLERANCE * meta:
        raise InputError(
            slide.path,
            column="pixel_size_um",
            value=sheet_um,
            expected=f"the slide's own pixel size, {meta:.6g} um ({slide.pixel_size_source} "
            f"in the file's metadata), within {PIXEL_SIZE_TOLERANCE:.0%}",
            hint="The sample sheet says "
            f"{sheet:.6g} um and the file {meta:.6g} um: correct the sheet or leave it empty.",
        )
    return meta


# --------------------------------------------------------------------------- tissue


@dataclass(frozen=True, eq=False)
class TissueMask:
    """Low-resolution tissue mask of a slide.

    Attributes
    ----------
    mask : ndarray of bool, shape (rows, cols)
        Tissue (True) at the mask's scale; mask pixel ``(r, c)`` covers
        level-0 pixels ``[c * downsample, (c + 1) * downsample)`` in x and
        likewise in y.
    downsample : float
        Level-0 pixels per mask pixel.
    pixel_size_um : float
        Edge of one mask pixel (um).
    level : int
        Slide level the mask was computed from (block-averaged by
        ``downsample / level_downsamples[level]``).
    modality : str
        ``"brightfield"`` or ``"fluorescence"``.
    glass_rgb : tuple of 3 float or None
        Brightfield glass colour (8-bit RGB) the tissue was measured against.
    """

    mask: np.ndarray
    downsample: float
    pixel_size_um: float
    level: int
    modality: str
    glass_rgb: tuple[float, float, float] | None = None

    @property
    def tissue_fraction(self) -> float:
        return float(self.mask.mean()) if self.mask.size else 0.0

    @property
    def tissue_area_mm2(self) -> float:
        return float(self.mask.sum()) * self.pixel_size_um**2 * 1e-6


def tissue_mask(
    slide: Slide,
    *,
    target_um: float = 8.0,
    pixel_size_um: float | None = None,
    modality: str = "auto",
    od_threshold: float = 0.15,
    saturation_threshold: float = 0.10,
    min_object_um2: float = 10_000.0,
    max_hole_um2: float = 10_000.0,
) -> TissueMask:
    """Tissue (not glass) at about ``target_um`` per pixel.

    The image is read from the coarsest level whose pixel is at most
    ``target_um`` and block-averaged by a whole factor to about
    ``target_um``, strip by strip (:data:`STRIP_BYTES`), so only the
    low-resolution image is ever held.

    Brightfield: the glass colour is the median RGB of the pixels in the
    brightest mode of the brightness histogram (smoothed; modes under 5 %
    of the highest ignored) when that mode is brighter than
    :data:`GLASS_MIN_BRIGHTNESS`, else (no glass in view) the per-channel
    99th percentile. A pixel is tissue when its optical density relative to
    the glass, summed over RGB, reaches ``od_threshold`` or its saturation
    relative to the glass (``1 - min/max`` of the glass-normalised RGB)
    reaches ``saturation_threshold``; the glass of the real CMU-1 SVS lies
    below 0.05 summed OD. Fluorescence (the median brightness under 100, or
    ``modality="fluorescence"``): the background is the darkest mode of
    the brightest channel and tissue is where that channel, smoothed over
    16 um, exceeds it by three robust standard deviations (at least 2
    grey levels). Pixels with every channel at or below
    :data:`NO_DATA_MAX` (scanner fill) are never tissue. Then tissue pieces
    smaller than ``min_object_um2`` are dropped and holes smaller than
    ``max_hole_um2`` filled.

    Parameters
    ----------
    slide : Slide
    target_um : float, default 8.0
        Mask pixel size (um); 8-16 resolves tissue fragments of a few cells.
    pixel_size_um : float, optional
        Level-0 pixel size; default the slide's metadata value.
    modality : {"auto", "brightfield", "fluorescence"}
    od_threshold, saturation_threshold : float
        Brightfield tissue thresholds (see above).
    min_object_um2, max_hole_um2 : float
        Clean-up areas (um^2).

    Returns
    -------
    TissueMask
    """
    px = pixel_size_um if pixel_size_um is not None else slide.pixel_size_um
    if px is None:
        raise InputError(
            slide.path,
            column="pixel_size_um",
            expected="a pixel size (the slide's metadata has none) to find tissue at "
            f"{target_um} um per pixel",
        )
    if modality not in ("auto", "brightfield", "fluorescence"):
        raise ValueError(f"modality must be auto, brightfield or fluorescence, got {modality!r}")
    want = max(1.0, float(target_um) / px)
    level = max(i for i, ds in enumerate(slide.level_downsamples) if ds <= want * 1.01 or i == 0)
    factor = max(1, int(round(want / slide.level_downsamples[level])))
    low = _lowres_rgb(slide, level, factor)
    downsample = slide.level_downsamples[level] * factor
    mask_px_um = px * downsample
    if modality == "auto":
        brightness = low.mean(axis=-1) if low.size else np.zeros(1)
        modality = "fluorescence" if np.median(brightness) < 100 else "brightfield"
    glass = None
    if modality == "brightfield":
        glass = _glass_rgb(low)
        mask = _brightfield_tissue(low, glass, od_threshold, saturation_threshold)
    else:
        mask = _fluorescence_tissue(low, max(1.0, 16.0 / mask_px_um))
    min_px = int(math.ceil(min_object_um2 / mask_px_um**2))
    hole_px = int(math.ceil(max_hole_um2 / mask_px_um**2))
    from skimage.morphology import remove_small_holes, remove_small_objects

    if min_px > 1:
        mask = remove_small_objects(mask, max_size=min_px - 1, connectivity=2)
    if hole_px > 1:
        mask = remove_small_holes(mask, max_size=hole_px - 1, connectivity=1)
    return TissueMask(
        mask=mask,
        downsample=float(downsample),
        pixel_size_um=float(mask_px_um),
        level=int(level),
        modality=modality,
        glass_rgb=None if glass is None else tuple(round(float(v), 2) for v in glass),
    )


def _lowres_rgb(slide: Slide, level: int, factor: int) -> np.ndarray:
    """Level ``level`` block-averaged by ``factor`` (8-bit RGB), read in strips."""
    width, height = slide.level_dimensions[level]
    rows = -(-height // factor)
    cols = -(-width // factor)
    out = np.empty((rows, cols, 3), dtype=np.uint8)
    # per output row: factor input rows, held as uint8 and summed as uint32
    per_row = width * factor * 3 * 5
    step = max(1, STRIP_BYTES // per_row)
    for r0 in range(0, rows, step):
        r1 = min(rows, r0 + step)
        y0, y1 = r0 * factor, min(height, r1 * factor)
        strip = slide.read(level, 0, y0, width, y1 - y0)
        out[r0:r1] = _block_mean(strip, factor)
    return out


def _block_mean(image: np.ndarray, factor: int) -> np.ndarray:
    """Mean over ``factor`` x ``factor`` blocks (partial blocks at the edges), uint8."""
    if factor == 1:
        return image
    sums = _block_sum(_block_sum(image, factor, 0), factor, 1)
    n_rows = np.minimum(factor, image.shape[0] - np.arange(sums.shape[0]) * factor)
    n_cols = np.minimum(factor, image.shape[1] - np.arange(sums.shape[1]) * factor)
    counts = (n_rows[:, None] * n_cols[None, :])[..., None]
    return np.rint(sums / counts).astype(np.uint8)


def _block_sum(array: np.ndarray, factor: int, axis: int) -> np.ndarray:
    """Sums of ``factor`` consecutive entries along ``axis`` (the last block partial), uint32.

    ``factor`` strided passes (entry ``k`` of every block at a time): each
    reads 1 / ``factor`` of the array, so the whole costs about one pass.
    """
    length = array.shape[axis]
    shape = list(array.shape)
    shape[axis] = -(-length // factor)
    out = np.zeros(shape, dtype=np.uint32)
    take = [slice(None)] * array.ndim
    put = [slice(None)] * array.ndim
    for k in range(min(factor, length)):
        take[axis] = slice(k, None, factor)
        part = array[tuple(take)]
        put[axis] = slice(0, part.shape[axis])
        out[tuple(put)] += part
    return out


def _glass_rgb(low: np.ndarray) -> np.ndarray:
    """Glass colour: median RGB of the brightest histogram mode (see :func:`tissue_mask`)."""
    valid = low.max(axis=-1) > NO_DATA_MAX
    pixels = low[valid].astype(np.float32)
    if len(pixels) == 0:
        return np.full(3, 255.0)
    brightness = pixels.mean(axis=-1)
    hist = np.bincount(np.rint(brightness).astype(np.int64), minlength=256)[:256]
    smooth = ndi.gaussian_filter1d(hist.astype(float), 2.0, mode="constant")
    padded = np.concatenate([[-1.0], smooth, [-1.0]])
    peaks = np.flatnonzero(
        (smooth >= padded[:-2]) & (smooth >= padded[2:]) & (smooth >= 0.05 * smooth.max())
    )
    mode = int(peaks.max())
    if mode < GLASS_MIN_BRIGHTNESS:
        return np.percentile(pixels, 99, axis=0)
    near = np.abs(brightness - mode) <= 4
    return np.median(pixels[near], axis=0)


def _brightfield_tissue(low, glass, od_threshold, saturation_threshold) -> np.ndarray:
    mask = np.zeros(low.shape[:2], dtype=bool)
    glass = np.maximum(np.asarray(glass, dtype=np.float32), 1.0)
    step = max(1, 2**20 // max(1, low.shape[1]))
    for r0 in range(0, low.shape[0], step):
        rgb = low[r0 : r0 + step].astype(np.float32)
        valid = rgb.max(axis=-1) > NO_DATA_MAX
        norm = np.clip(rgb / glass, 1.0 / 255.0, 1.0)
        od_sum = -np.log10(norm).sum(axis=-1)
        saturation = 1.0 - norm.min(axis=-1) / norm.max(axis=-1)
        mask[r0 : r0 + step] = valid & (
            (od_sum >= od_threshold) | (saturation >= saturation_threshold)
        )
    return mask


def _fluorescence_tissue(low: np.ndarray, sigma_px: float) -> np.ndarray:
    signal = low.max(axis=-1).astype(np.float32)
    valid = signal > NO_DATA_MAX
    hist = np.bincount(np.rint(signal).astype(np.int64).ravel(), minlength=256)[:256]
    smooth = ndi.gaussian_filter1d(hist.astype(float), 1.0, mode="constant")
    background = float(np.argmax(smooth))
    below = signal[signal <= background]
    spread = 1.4826 * float(np.median(background - below)) if below.size else 0.0
    level = background + max(3.0 * spread, 2.0)
    return valid & (ndi.gaussian_filter(signal, sigma_px) > level)


# --------------------------------------------------------------------------- regions of interest


class RoiPolygon(NamedTuple):
    """One polygon of a region of interest, in level-0 pixels.

    ``exterior`` is an ``(n, 2)`` array of ``(x, y)`` vertices; ``holes`` a
    tuple of such arrays; ``name`` and ``classification`` the QuPath
    annotation's name and class (or None).
    """

    exterior: np.ndarray
    holes: tuple[np.ndarray, ...]
    name: str | None
    classification: str | None


def read_roi_geojson(path) -> list[RoiPolygon]:
    """Regions of interest from a QuPath GeoJSON export (tumour outlines).

    Accepts a FeatureCollection, a list of Features (QuPath's "Export
    objects as GeoJSON" without "FeatureCollection"), one Feature or a bare
    geometry. Polygon and MultiPolygon geometries (also inside a
    GeometryCollection) are read, their first ring the outline and the others
    holes; points and lines (cell detections, rulers) are skipped.
    Coordinates are level-0 pixels.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    list of RoiPolygon

    Raises
    ------
    sepher.errors.InputError
        Not JSON, not GeoJSON, a ring with fewer than 3 finite vertices, or
        no polygon at all.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(
            path, expected="a GeoJSON file (QuPath: File > Export objects as GeoJSON)"
        ) from error
    polygons: list[RoiPolygon] = []
    for number, (geometry, properties) in enumerate(_features(data, path), 1):
        name = properties.get("name") if isinstance(properties, dict) else None
        classification = properties.get("classification") if isinstance(properties, dict) else None
        if isinstance(classification, dict):
            classification = classification.get("name")
        for rings in _polygon_rings(geometry, path, number):
            parsed = [_ring(ring, path, number) for ring in rings]
            if parsed:
                polygons.append(
                    RoiPolygon(
                        parsed[0],
                        tuple(parsed[1:]),
                        None if name is None else str(name),
                        None if classification is None else str(classification),
                    )
                )
    if not polygons:
        raise InputError(
            path,
            expected="at least one Polygon or MultiPolygon annotation (a tumour outline)",
        )
    return polygons


def _features(data, path):
    if isinstance(data, list):
        for item in data:
            yield from _features(item, path)
        return
    if not isinstance(data, dict) or "type" not in data:
        raise InputError(path, expected="GeoJSON objects with a 'type'", value=type(data).__name__)
    kind = data["type"]
    if kind == "FeatureCollection":
        for item in data.get("features") or []:
            yield from _features(item, path)
    elif kind == "Feature":
        yield data.get("geometry"), data.get("properties") or {}
    else:
        yield data, {}


def _polygon_rings(geometry, path, number):
    if not isinstance(geometry, dict):
        return
    kind = geometry.get("type")
    if kind == "Polygon":
        yield geometry.get("coordinates") or []
    elif kind == "MultiPolygon":
        yield from geometry.get("coordinates") or []
    elif kind == "GeometryCollection":
        for part in geometry.get("geometries") or []:
            yield from _polygon_rings(part, path, number)


def _ring(ring, path, number) -> np.ndarray:
    try:
        points = np.asarray(ring, dtype=float)
    except (TypeError, ValueError):
        points = np.zeros((0, 2))
    if points.ndim != 2 or points.shape[1] < 2 or len(points) < 3:
        raise InputError(
            path,
            row=number,
            column="geometry.coordinates",
            expected="polygon rings of at least 3 [x, y] vertices",
        )
    points = points[:, :2]
    if not np.isfinite(points).all():
        raise InputError(
            path, row=number, column="geometry.coordinates", expected="finite coordinates"
        )
    if len(points) > 3 and np.array_equal(points[0], points[-1]):
        points = points[:-1]
    return points


def rasterise_roi(
    polygons: Sequence[RoiPolygon], shape: tuple[int, int], downsample: float
) -> np.ndarray:
    """Boolean mask of the polygons (holes excluded) at ``downsample`` level-0 px per pixel.

    A mask pixel is inside when its centre is (``skimage.draw.polygon``);
    a hole clears only its own polygon, so overlapping outlines unite.
    """
    from skimage.draw import polygon as fill_polygon

    out = np.zeros(shape, dtype=bool)
    for poly in polygons:
        this = np.zeros(shape, dtype=bool)
        rr, cc = fill_polygon(
            poly.exterior[:, 1] / downsample - 0.5, poly.exterior[:, 0] / downsample - 0.5, shape
        )
        this[rr, cc] = True
        for hole in poly.holes:
            rr, cc = fill_polygon(
                hole[:, 1] / downsample - 0.5, hole[:, 0] / downsample - 0.5, shape
            )
            this[rr, cc] = False
        out |= this
    return out


def restrict_to_roi(tissue: TissueMask, polygons: Sequence[RoiPolygon]) -> TissueMask:
    """The tissue mask ANDed with the rasterised regions of interest."""
    roi = rasterise_roi(polygons, tissue.mask.shape, tissue.downsample)
    return replace(tissue, mask=tissue.mask & roi)


def points_in_roi(polygons: Sequence[RoiPolygon], x_px, y_px) -> np.ndarray:
    """Whether each point (level-0 pixel-index coordinates) lies in a polygon and not its holes.

    A pixel index ``j`` is QuPath coordinate ``j + 0.5`` (the pixel centre).
    """
    from skimage.measure import points_in_poly

    points = np.column_stack([np.asarray(x_px, float) + 0.5, np.asarray(y_px, float) + 0.5])
    inside = np.zeros(len(points), dtype=bool)
    for poly in polygons:
        this = points_in_poly(points, poly.exterior)
        for hole in poly.holes:
            this &= ~points_in_poly(points, hole)
        inside |= this
    return inside


# --------------------------------------------------------------------------- tiles and scoring


class Tile(NamedTuple):
    """A level-0 tile: origin ``(x, y)`` and size ``(w, h)`` in pixels."""

    x: int
    y: int
    w: int
    h: int


def iter_tiles(
    slide: Slide,
    mask: TissueMask,
    *,
    tile_px: int = 1024,
    min_tissue_fraction: float = 0.05,
) -> Iterator[Tile]:
    """Level-0 tiles in raster order (rows top to bottom) that hold tissue.

    The slide is cut into ``tile_px`` squares from its top-left corner (the
    last row and column narrower); a tile is yielded when the mask pixels
    under it are tissue over at least ``min_tissue_fraction`` of them (and
    at least one is). Its grid index is ``(y // tile_px) * n_columns + x //
    tile_px``.
    """
    tile_px = int(tile_px)
    if tile_px < 1:
        raise ValueError(f"tile_px must be a positive number of pixels, got {tile_px!r}")
    width, height = slide.dimensions
    m = mask.mask
    ds = mask.downsample
    integral = np.zeros((m.shape[0] + 1, m.shape[1] + 1), dtype=np.int32)
    integral[1:, 1:] = np.cumsum(np.cumsum(m, axis=0, dtype=np.int32), axis=1)
    for y in range(0, height, tile_px):
        h = min(tile_px, height - y)
        r0 = min(m.shape[0] - 1, int(y / ds))
        r1 = min(m.shape[0], max(r0 + 1, math.ceil((y + h) / ds)))
        for x in range(0, width, tile_px):
            w = min(tile_px, width - x)
            c0 = min(m.shape[1] - 1, int(x / ds))
            c1 = min(m.shape[1], max(c0 + 1, math.ceil((x + w) / ds)))
            count = integral[r1, c1] - integral[r0, c1] - integral[r1, c0] + integral[r0, c0]
            if count > 0 and count >= min_tissue_fraction * (r1 - r0) * (c1 - c0):
                yield Tile(x, y, w, h)


#: Columns :func:`score_slide` adds to the per-cell table.
SLIDE_COLUMNS = ("tile_id", "tile_x_px", "tile_y_px")


def score_slide(
    path,
    params=None,
    *,
    pixel_size_um: float | None = None,
    roi=None,
    tile_px: int = 1024,
    max_tiles: int | None = None,
    target_um: float = 8.0,
    min_tissue_fraction: float = 0.05,
) -> tuple[pd.DataFrame, dict]:
    """Score HER2 membrane staining over a whole slide, tile by tile.

    Each tissue tile of :func:`iter_tiles` is read at level 0 with a halo of
    :func:`~sepher.ihc.scoring.tile_halo_um` on every side (clipped at the
    slide's edge) and scored with :func:`~sepher.ihc.scoring.score_image`
    as one window; the cells whose nucleus centroid lies in the tile's core
    are kept, so every cell belongs to one tile and sees its neighbours. A
    cell found by two neighbouring tiles (its nucleus segmented slightly
    differently near a core edge) has two centroids closer than the
    smallest nucleus's radius (``sqrt(nucleus_min_area_um2 / pi)``); the
    later tile's copy is dropped. With ``roi``, only cells whose centroid
    lies inside a region (not in a hole) are kept. Only one tile (and the
    low-resolution mask) is in memory at a time; the result is
    deterministic.

    Parameters
    ----------
    path : str, path-like or Slide
        The slide (see :func:`open_slide`).
    params : IHCParams or dict, optional
        Scoring parameters (defaults: :class:`~sepher.ihc.scoring.IHCParams`).
    pixel_size_um : float, optional
        Sample-sheet pixel size; checked against the metadata
        (:func:`resolve_pixel_size`).
    roi : str, path-like or sequence of RoiPolygon, optional
        Regions of interest (a QuPath GeoJSON file or polygons).
    tile_px : int, default 1024
        Tile core edge (level-0 px); ~1024 keeps the scorer fastest.
    max_tiles : int, optional
        Score only the first ``max_tiles`` tissue tiles (raster order).
    target_um : float, default 8.0
        Pixel size of the tissue mask (:func:`tissue_mask`).
    min_tissue_fraction : float, default 0.05
        See :func:`iter_tiles`.

    Returns
    -------
    cells : DataFrame
        The columns of :func:`~sepher.ihc.scoring.score_image` with
        ``x_um`` / ``y_um`` in slide space (from the level-0 origin) and
        ``cell_id`` numbered over the slide, plus ``tile_id`` (grid index),
        ``tile_x_px`` and ``tile_y_px`` (the tile's level-0 origin).
    summary : dict
        Slide geometry and pixel size, mask and tile counts, tissue and
        scored areas, duplicates dropped, and the slide's scores
        (:func:`~sepher.ihc.biopsy.score_biopsy` on its cells).
    """
    from sepher.ihc.biopsy import score_biopsy
    from sepher.ihc.scoring import CELL_COLUMNS, _params, score_image, tile_halo_um

    p = _params(params)
    own = not isinstance(path, Slide)
    slide = open_slide(path) if own else path
    try:
        px = resolve_pixel_size(slide, pixel_size_um)
        tissue = tissue_mask(slide, target_um=target_um, pixel_size_um=px)
        polygons = None
        if roi is not None:
            polygons = read_roi_geojson(roi) if isinstance(roi, str | Path) else list(roi)
            tissue = restrict_to_roi(tissue, polygons)
        width, height = slide.dimensions
        n_cols = -(-width // int(tile_px))
        n_grid = n_cols * -(-height // int(tile_px))
        halo = int(math.ceil(tile_halo_um(p) / px))
        tables = []
        n_tissue_tiles = 0
        scored_px = 0
        tiles = list(
            iter_tiles(slide, tissue, tile_px=tile_px, min_tissue_fraction=min_tissue_fraction)
        )
        p, colour = _slide_colour(slide, tissue, tiles, p)
        for tile in tiles:
            n_tissue_tiles += 1
            if max_tiles is not None and len(tables) >= max_tiles:
                continue
            x0, y0 = max(0, tile.x - halo), max(0, tile.y - halo)
            x1, y1 = min(width, tile.x + tile.w + halo), min(height, tile.y + tile.h + halo)
            rgb = slide.read(0, x0, y0, x1 - x0, y1 - y0)
            cells, _, _ = score_image(rgb, px, p, tile_px=max(rgb.shape[:2]))
            del rgb
            cx = cells["x_um"].to_numpy() / px + x0
            cy = cells["y_um"].to_numpy() / px + y0
            keep = (cx >= tile.x) & (cx < tile.x + tile.w) & (cy >= tile.y) & (cy < tile.y + tile.h)
            if polygons is not None:
                keep &= points_in_roi(polygons, cx, cy)
            cells = cells[keep].copy()
            cells["x_um"] = cx[keep] * px
            cells["y_um"] = cy[keep] * px
            cells["tile_id"] = (tile.y // tile_px) * n_cols + tile.x // tile_px
            cells["tile_x_px"] = tile.x
            cells["tile_y_px"] = tile.y
            tables.append(cells)
            scored_px += tile.w * tile.h
        columns = [*tables[0].columns] if tables else [*CELL_COLUMNS, *SLIDE_COLUMNS]
        frames = [t for t in tables if len(t)]
        if frames:
            cells = pd.concat(frames, ignore_index=True)
        else:
            cells = pd.DataFrame({c: pd.Series(dtype=_empty_dtype(c)) for c in columns})
        cells, n_duplicates = _drop_cross_tile_duplicates(
            cells, math.sqrt(p.nucleus_min_area_um2 / math.pi)
        )
        cells["cell_id"] = np.arange(1, len(cells) + 1, dtype=np.int64)
        for column in SLIDE_COLUMNS:
            cells[column] = cells[column].astype(np.int64)
        summary = {
            "slide": Path(slide.path).name,
            "format": slide.format,
            "width_px": int(width),
            "height_px": int(height),
            "levels": int(slide.level_count),
            "pixel_size_um": float(px),
            "pixel_size_source": slide.pixel_size_source or "sample sheet",
            "mask_level": tissue.level,
            "mask_downsample": tissue.downsample,
            "mask_pixel_size_um": tissue.pixel_size_um,
            "modality": tissue.modality,
            "glass_rgb": None if tissue.glass_rgb is None else [float(v) for v in tissue.glass_rgb],
            "tissue_area_mm2": tissue.tissue_area_mm2,
            "roi_polygons": 0 if polygons is None else len(polygons),
            "tile_px": int(tile_px),
            "halo_px": halo,
            "n_tiles_grid": int(n_grid),
            "n_tiles_tissue": int(n_tissue_tiles),
            "n_tiles_scored": len(tables),
            "scored_area_mm2": float(scored_px * px**2 * 1e-6),
            "n_duplicates_dropped": int(n_duplicates),
            **colour,
            **score_biopsy(cells),
        }
        return cells, summary
    finally:
        if own:
            slide.close()


#: Tissue tiles (spread over the slide) whose pixels estimate the slide's stain vectors.
STAIN_SAMPLE_TILES = 8


def _slide_colour(slide, tissue, tiles, p):
    """One glass level and one pair of stain vectors for the whole slide.

    A slide is one staining run: estimating per tile would let the vectors,
    and so every cell's DAB, drift from tile to tile (and differ from the
    same field scored whole). The glass level is the tissue mask's glass
    colour (its brightest mode) when ``background`` is ``estimate``; with
    ``estimate_stains`` the Macenko vectors come from up to
    :data:`STAIN_SAMPLE_TILES` tissue tiles spread evenly over the slide
    (every 4th pixel of each), with the plausibility checks and fallback of
    :func:`~sepher.ihc.deconvolution.estimate_stain_vectors`. Returns the
    parameters every tile is scored with (fixed vectors and glass level) and
    the summary entries.
    """
    from sepher.ihc.deconvolution import (
        estimate_stain_vectors,
        od_planes,
        stain_matrix,
    )

    background = p.background_intensity
    source = "fixed"
    if p.background == "estimate" and tissue.glass_rgb is not None:
        background = tuple(float(v) for v in tissue.glass_rgb)
        source = "slide glass (low-resolution mask)"
    matrix = stain_matrix(p.hematoxylin, p.dab)
    vectors = "fixed"
    if p.estimate_stains and tiles:
        step = max(1, len(tiles) // STAIN_SAMPLE_TILES)
        samples = []
        for tile in tiles[::step][:STAIN_SAMPLE_TILES]:
            rgb = slide.read(0, tile.x, tile.y, tile.w, tile.h)[::4, ::4]
            samples.append(np.stack(od_planes(rgb, background), axis=-1).reshape(-1, 1, 3))
        od = np.concatenate(samples, axis=0)
        mask = od.sum(axis=-1) > p.tissue_od_threshold
        matrix, vectors = estimate_stain_vectors(
            od, mask=mask, default_matrix=matrix, return_status=True
        )
    fixed = replace(
        p,
        hematoxylin=tuple(float(v) for v in matrix[0]),
        dab=tuple(float(v) for v in matrix[1]),
        estimate_stains=False,
        background="fixed",
        background_intensity=background,
    )
    summary = {
        "background_rgb": [float(v) for v in np.broadcast_to(background, 3)],
        "background_source": source,
        "stain_vectors_source": f"slide: {vectors}",
        "hematoxylin_vector": [round(float(v), 4) for v in matrix[0]],
        "dab_vector": [round(float(v), 4) for v in matrix[1]],
    }
    return fixed, summary


def _empty_dtype(column: str):
    if column in ("tumour", "complete", "unusual_pattern"):
        return bool
    if column in ("cell_id", "her2_class", "membrane_intensity_level", *SLIDE_COLUMNS):
        return np.int64
    return float


def _drop_cross_tile_duplicates(cells: pd.DataFrame, radius_um: float) -> tuple[pd.DataFrame, int]:
    """Drop the later-tile copy of a cell whose centroid lies within ``radius_um`` of
    a cell kept by another tile."""
    if len(cells) < 2 or cells["tile_id"].nunique() < 2:
        return cells.reset_index(drop=True), 0
    from scipy.spatial import cKDTree

    xy = cells[["x_um", "y_um"]].to_numpy(dtype=float)
    pairs = cKDTree(xy).query_pairs(radius_um, output_type="ndarray")
    if len(pairs) == 0:
        return cells.reset_index(drop=True), 0
    tiles = cells["tile_id"].to_numpy()
    pairs = pairs[tiles[pairs[:, 0]] != tiles[pairs[:, 1]]]
    drop = np.unique(pairs.max(axis=1))
    keep = np.ones(len(cells), dtype=bool)
    keep[drop] = False
    return cells[keep].reset_index(drop=True), int(len(drop))
