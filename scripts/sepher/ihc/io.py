"""Files of the IHC stage: brightfield RGB tiles in, label TIFFs and overlays out.

:func:`read_ihc_rgb` reads one H-DAB tile (TIFF / OME-TIFF, PNG, JPEG) as an
(H, W, 3) 8-bit RGB array.
:func:`write_label_tiff` and :func:`write_rgb_png` write deterministic files
(no timestamps, no software tag), so reruns give byte-identical outputs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from sepher.errors import InputError

__all__ = ["FAST_PNG_LEVEL", "read_ihc_rgb", "write_label_tiff", "write_rgb_png"]


def read_ihc_rgb(path) -> np.ndarray:
    """Read a brightfield H-DAB tile as 8-bit RGB.

    Parameters
    ----------
    path : str or Path
        RGB(A) TIFF / OME-TIFF (samples last, or 3-4 channels first), PNG or
        JPEG. The pixel size comes from the sample sheet.

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)
        16-bit files are scaled to 0-255 (divided by 257), float files in
        0-1 multiplied by 255; alpha is dropped, grey or palette PNG / JPEG
        converted to RGB.

    Raises
    ------
    InputError
        Missing or unreadable file, or an image without three colour channels.
    """
    path = Path(path)
    name = str(path)
    if not path.is_file():
        raise InputError(name, "an existing image file", column="path", value=name)
    try:
        if path.suffix.lower() in (".tif", ".tiff", ".btf"):
            data = np.squeeze(tifffile.imread(path))
        else:
            with Image.open(path) as image:
                data = np.asarray(image.convert("RGB"))
    except Exception as exc:  # tifffile / PIL raise many types on corrupt files
        raise InputError(
            name,
            "a readable RGB TIFF, PNG or JPEG image",
            column="path",
            value=f"{type(exc).__name__}: {exc}",
        ) from exc
    if data.ndim == 3 and data.shape[-1] not in (3, 4) and data.shape[0] in (3, 4):
        data = np.moveaxis(data, 0, -1)
    if data.ndim != 3 or data.shape[-1] not in (3, 4):
        raise InputError(
            name,
            "a brightfield RGB image (3 colour channels) for an IHC row",
            column="path",
            value=f"array of shape {data.shape}",
        )
    rgb = data[..., :3]
    if rgb.dtype == np.uint16:
        rgb = np.round(rgb / 257.0)
    elif rgb.dtype != np.uint8:
        rgb = np.asarray(rgb, dtype=np.float64)
        rgb = np.round(rgb * (255.0 if np.nanmax(rgb) <= 1.0 else 1.0))
    return np.clip(rgb, 0, 255).astype(np.uint8)


def write_label_tiff(labels: np.ndarray, path, pixel_size_um: float | None = None) -> None:
    """Write a label image as a zlib-compressed TIFF, byte-identical across runs.

    Parameters
    ----------
    labels : ndarray of int, 2-D
        Label image (0 = background).
    path : str or Path
        Output file; parent folders are created.
    pixel_size_um : float, optional
        Stored as the TIFF resolution (pixels per cm) so image viewers show
        micrometres.
    """
    labels = np.asarray(labels)
    top = int(labels.max(initial=0))
    dtype = np.uint16 if top < 2**16 else np.uint32
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    resolution = None
    if pixel_size_um:
        per_cm = 1e4 / float(pixel_size_um)
        resolution = (per_cm, per_cm)
    tifffile.imwrite(
        path,
        labels.astype(dtype),
        photometric="minisblack",
        compression="zlib",
        metadata=None,
        software=False,
        resolution=resolution,
        resolutionunit="CENTIMETER" if resolution else None,
    )


#: zlib level of the stage's overlay PNGs (:func:`sepher.ihc.stage.write_tile_outputs`):
#: level 1 writes a 2 MP overlay ~5x faster than PIL's default 6, for a file ~12 %
#: larger; PNG is lossless at every level, so the pixels are the same.
FAST_PNG_LEVEL = 1


def write_rgb_png(rgb: np.ndarray, path, *, compress_level: int = 6) -> None:
    """Write an 8-bit RGB image as PNG (no timestamp chunk: deterministic).

    Parameters
    ----------
    rgb : ndarray of uint8, shape (H, W, 3)
    path : str or Path
        Output file; parent folders are created.
    compress_level : int, default 6
        zlib level 0-9 (6: PIL's default). Lossless at every level: only the
        file size and the time to write it change (:data:`FAST_PNG_LEVEL`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(rgb, dtype=np.uint8)).save(
        path, format="PNG", optimize=False, compress_level=int(compress_level)
    )
