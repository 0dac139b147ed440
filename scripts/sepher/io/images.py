"""Start-up check of the image files named in the images sample sheet.

:func:`sepher.io.samplesheet.read_sample_sheet` checks the sheet itself (columns,
values, paths inside the sheet's folder, files exist). :func:`check_sheet_images`
then opens every image once, with the readers the stages use, so that a file
that would stop a job hours into a run stops the run at start-up instead:

* unreadable or truncated files (a TIFF whose header places data past its end),
* a z-stack or time series where a single 2-D plane is expected,
* an IF channel index outside the image's channels,
* an all-black image (every pixel 0), or an IF channel used by the sheet that is
  all 0,
* a channel named by the sheet that the file's metadata do not have, a blank
  ``pixel_size_um`` for a file that records none, a sheet pixel size more than
  1 % from the one the file records (vendor formats), a time series.

ND2, CZI, LIF and OME-Zarr files are opened for their metadata only (no
pixel is read: :func:`sepher.imaging.bioio_reader.open_microscopy`).
:func:`resolve_row` gives a row with channel names turned into indices and a
blank pixel size filled from the file, as the stages need it.

Each problem is one :class:`~sepher.errors.InputError` naming the sample sheet,
the row (with its image_id), the column, the value in the sheet and what was
expected. Images are only read.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import tifffile

from sepher.errors import InputError

__all__ = [
    "IF_CHANNEL_COLUMNS",
    "check_sheet_images",
    "image_stamp",
    "resolve_row",
    "tiff_truncation",
]

#: Sample-sheet columns that hold a 0-based channel index of an IF image.
IF_CHANNEL_COLUMNS = ("her2_channel", "nuclear_channel", "membrane_channel")

_TIFF_SUFFIXES = (".tif", ".tiff", ".btf")


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@contextmanager
def _quiet_tifffile():
    """Collect tifffile's log messages (a corrupt file logs several) instead of printing them."""
    logger = logging.getLogger("tifffile")
    handler = _Collect()
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _truncation(tif, size, messages) -> str | None:
    """How an open TIFF of `size` bytes is cut short, or None (see :func:`tiff_truncation`)."""
    end = 0
    for page in tif.pages:
        for offset, count in zip(page.dataoffsets, page.databytecounts, strict=False):
            end = max(end, int(offset) + int(count))
    if end > size:
        return f"the file has {size} bytes but its TIFF header places image data up to byte {end}"
    if any("offset" in message for message in messages):
        return f"the file has {size} bytes but its TIFF header points to a page past its end"
    return None


def tiff_truncation(path) -> str | None:
    """How a TIFF file is cut short, in words, or None when it is complete.

    A TIFF header lists where each page's image data lies (strip or tile
    offsets and byte counts) and where the next page's header is. A file cut
    short (an interrupted copy or download) points past its own end.
    Files that are not TIFF at all give None (the reader reports them).
    """
    size = os.path.getsize(path)
    with _quiet_tifffile() as messages:
        try:
            with tifffile.TiffFile(path) as tif:
                return _truncation(tif, size, messages)
        except Exception:
            return None


def _row_label(index, image_id):
    return f"{index + 1} (image_id {image_id})"


def _fail(sheet_file, index, row, expected, hint=None, column="path", value=None):
    raise InputError(
        sheet_file,
        expected,
        row=_row_label(index, row["image_id"]),
        column=column,
        value=row["path"] if value is None else value,
        hint=hint,
    )


def _reader_failed(sheet_file, index, row, error: InputError):
    """Re-raise an image reader's error at the sheet row that names the image.

    An error about a sheet column (``pixel_size_um``, a channel column) is
    placed at that column with the sheet's value; any other at ``path``.
    """
    if error.column in ("pixel_size_um", *IF_CHANNEL_COLUMNS):
        _fail(
            sheet_file,
            index,
            row,
            f"{error.expected} (image {row['path']})",
            hint=error.hint,
            column=error.column,
            value=row.get(error.column) if error.value is None else error.value,
        )
    expected = error.expected
    if error.value is not None:
        expected += f" (found: {error.value})"
    _fail(sheet_file, index, row, expected, hint=error.hint)


def _blank(value) -> bool:
    if value is None:
        return True
    try:
        return bool(np.isnan(float(value)))
    except (TypeError, ValueError):
        return False


def _named(value) -> bool:
    """A channel cell holding a name rather than an index."""
    return isinstance(value, str) and not value.strip().lstrip("+-").isdigit()


def _file_metadata(file):
    """(pixel size, channel names, number of channels or None, T) from a file's
    metadata, without reading pixels: bioio for ND2 / CZI / LIF / OME-Zarr,
    the TIFF header otherwise."""
    from sepher.imaging.bioio_reader import is_microscopy_file, open_microscopy
    from sepher.imaging.io import image_channel_names, tiff_pixel_size_um

    lower = file.lower()
    if is_microscopy_file(file) and not lower.endswith((".ome.tif", ".ome.tiff")):
        image = open_microscopy(file)
        return image.pixel_size_um, list(image.channel_names), image.shape[1], image.n_t
    pixel = None
    if lower.endswith(_TIFF_SUFFIXES):
        tif = _open_tiff(file)
        if tif is not None:
            with tif:
                pixel = tiff_pixel_size_um(tif)
    return pixel, image_channel_names(file), None, 1


def resolve_row(row: dict, sheet_file="sample sheet", index=None) -> dict:
    """A sample-sheet row as the stages need it: channel indices and a pixel size.

    Channel names (``her2_channel``, ``nuclear_channel``,
    ``membrane_channel`` holding text) become the 0-based indices of those
    names in the file's metadata
    (:func:`~sepher.imaging.bioio_reader.resolve_channel`: exact, else a
    unique case-insensitive match); a blank ``pixel_size_um`` becomes the
    file's own. A row with integer channels and a pixel size is returned
    unchanged without opening the file; otherwise only the file's metadata
    are read.

    Parameters
    ----------
    row : dict
        A row of :func:`~sepher.io.samplesheet.read_sample_sheet` (with ``file``).
    sheet_file : str
        The sample sheet, named in messages.
    index : int, optional
        The row's 0-based index in the sheet, named in messages.

    Returns
    -------
    dict
        A copy of `row` (unchanged when nothing needed resolving).

    Raises
    ------
    InputError
        A channel name the file does not have (the message lists the file's
        names), or a blank pixel size for a file that records none; names
        the sheet, row, column and value.
    """
    columns = [c for c in IF_CHANNEL_COLUMNS if _named(row.get(c))]
    blank_px = _blank(row.get("pixel_size_um"))
    if not columns and not blank_px:
        return row
    label = _row_label(index, row["image_id"]) if index is not None else row.get("image_id")
    try:
        pixel, names, n, _ = _file_metadata(row["file"])
    except InputError as error:
        if index is None:
            raise
        _reader_failed(sheet_file, index, row, error)
    out = dict(row)
    from sepher.imaging.bioio_reader import resolve_channel

    for column in columns:
        try:
            out[column] = resolve_channel(row[column], names, file=row["file"], n_channels=n)
        except InputError as error:
            raise InputError(
                sheet_file,
                f"{error.expected} (image {row['path']})",
                row=label,
                column=column,
                value=row[column],
                hint=error.hint,
            ) from None
    if blank_px:
        if pixel is None:
            raise InputError(
                sheet_file,
                f"a pixel size: the metadata of {row['path']} record none, so give "
                "pixel_size_um (µm per pixel) in the sample sheet",
                row=label,
                column="pixel_size_um",
                value="",
            )
        out["pixel_size_um"] = float(pixel)
    return out


def _fail_truncated(sheet_file, index, row, cut):
    _fail(
        sheet_file,
        index,
        row,
        f"a complete TIFF file ({cut}: truncated)",
        hint="Copy the image again from its source (an interrupted copy or download "
        "leaves a truncated file).",
    )


def _check_complete(sheet_file, index, row):
    if not row["file"].lower().endswith(_TIFF_SUFFIXES):
        return
    cut = tiff_truncation(row["file"])
    if cut is not None:
        _fail_truncated(sheet_file, index, row, cut)


def _open_tiff(file):
    try:
        return tifffile.TiffFile(file)
    except Exception:  # not a TIFF, or its header is unreadable: the reader says which
        return None


def _check_vendor_if_image(sheet_file, index, row):
    """An ND2 / CZI / LIF / OME-Zarr IF image, from its metadata only: opens, one
    time point, one scene, pixel size (the sheet's within 1 % of the file's, or
    blank when the file records one), channel names or indices that exist."""
    from sepher.imaging.bioio_reader import PIXEL_SIZE_TOLERANCE, open_microscopy

    try:
        image = open_microscopy(row["file"])
    except InputError as error:
        _reader_failed(sheet_file, index, row, error)
    if image.n_t > 1:
        _fail(
            sheet_file,
            index,
            row,
            f"a single time point (this file has T={image.n_t} time points)",
            hint="sepher does not measure time series: export one time point.",
        )
    sheet_px = None if _blank(row["pixel_size_um"]) else float(row["pixel_size_um"])
    meta = image.pixel_size_um
    if meta is None and sheet_px is None:
        resolve_row(row, sheet_file, index)  # raises: no pixel size anywhere
    if meta is not None and sheet_px is not None:
        if not abs(sheet_px - meta) <= PIXEL_SIZE_TOLERANCE * meta:
            _fail(
                sheet_file,
                index,
                row,
                f"the file's own pixel size within {PIXEL_SIZE_TOLERANCE:.0%}: the file's "
                f"metadata says {meta:.6g} µm/px (image {row['path']})",
                hint="Correct the sheet, or leave pixel_size_um blank to use the file's value.",
                column="pixel_size_um",
                value=row["pixel_size_um"],
            )
    from sepher.imaging.bioio_reader import resolve_channel

    n = image.shape[1]
    for column in IF_CHANNEL_COLUMNS:
        value = row[column]
        if column == "membrane_channel" and not _named(value) and int(value) == -1:
            continue
        try:
            resolve_channel(
                value, image.channel_names, file=row["file"], column=column, n_channels=n
            )
        except InputError as error:
            _reader_failed(sheet_file, index, row, error)


def _check_if_image(sheet_file, index, row):
    """Truncation (from the header), then every pixel, of one IF image: one open of the file.

    ND2, CZI, LIF and OME-Zarr files: metadata only (:func:`_check_vendor_if_image`).
    """
    from sepher.imaging.bioio_reader import is_microscopy_file
    from sepher.imaging.io import read_stack  # imports the imaging stage: only when checking

    file = row["file"]
    if is_microscopy_file(file) and not file.lower().endswith((".ome.tif", ".ome.tiff")):
        _check_vendor_if_image(sheet_file, index, row)
        return
    row = resolve_row(row, sheet_file, index)
    with _quiet_tifffile() as messages:
        tif = _open_tiff(file) if file.lower().endswith(_TIFF_SUFFIXES) else None
        try:
            if tif is not None:
                try:
                    cut = _truncation(tif, os.path.getsize(file), messages)
                except Exception:
                    cut = None  # the reader reports what is wrong
                if cut is not None:
                    _fail_truncated(sheet_file, index, row, cut)
            try:
                stack, _, _ = read_stack(
                    file, pixel_size_um=row["pixel_size_um"], require_z_step=False, tif=tif
                )
                image = stack.max(axis=1)  # a z-stack is checked on its projection
            except InputError as error:
                _reader_failed(sheet_file, index, row, error)
        finally:
            if tif is not None:
                tif.close()
    n = image.shape[0]
    for column in IF_CHANNEL_COLUMNS:
        channel = int(row[column])
        if column == "membrane_channel" and channel == -1:
            continue
        if not 0 <= channel < n:
            _fail(
                sheet_file,
                index,
                row,
                f"a 0-based channel index 0..{n - 1} (image {row['path']} has {n} channel(s))",
                column=column,
                value=channel,
            )
        if not np.any(image[channel]):
            _fail(
                sheet_file,
                index,
                row,
                f"an image with signal in channel {channel} (the {column}); "
                "every pixel of that channel is 0",
                hint="Check the channel indices and the export of the image.",
                column=column,
                value=channel,
            )


def _check_ihc_image(sheet_file, index, row):
    from sepher.ihc.io import read_ihc_rgb
    from sepher.ihc.wsi import is_whole_slide

    if is_whole_slide(row["file"]):
        _check_ihc_slide(sheet_file, index, row)
        return
    resolve_row(row, sheet_file, index)  # a blank pixel size: the file must record one
    with _quiet_tifffile():
        try:
            rgb = read_ihc_rgb(row["file"])
        except InputError as error:
            _reader_failed(sheet_file, index, row, error)
    if not np.any(rgb):
        _fail(
            sheet_file,
            index,
            row,
            "an image with signal (found: all pixels are 0)",
            hint="Check the export of the image.",
        )


def _check_ihc_slide(sheet_file, index, row):
    """A whole slide: opens, its metadata pixel size agrees with the sheet's
    (within 1 %), and its smallest level has signal; no full-resolution read."""
    from sepher.ihc.wsi import open_slide, resolve_pixel_size

    try:
        with open_slide(row["file"]) as slide:
            resolve_pixel_size(slide, float(row["pixel_size_um"]))
            level = slide.level_count - 1
            width, height = slide.level_dimensions[level]
            thumbnail = slide.read(level, 0, 0, width, height)
    except InputError as error:
        _reader_failed(sheet_file, index, row, error)
    if not np.any(thumbnail):
        _fail(
            sheet_file,
            index,
            row,
            "a slide with signal (found: all pixels of its smallest level are 0)",
            hint="Check the export of the slide.",
        )


def _check_rows(sheet_file, rows) -> InputError | None:
    """Check (index, row) pairs in order; the first problem, or None."""
    try:
        for index, row in rows:
            if row["assay"] == "IF":
                _check_if_image(sheet_file, index, row)
            else:
                _check_complete(sheet_file, index, row)
                _check_ihc_image(sheet_file, index, row)
    except InputError as error:
        return error
    return None


def check_sheet_images(sheet, sheet_file, workers: int = 1) -> None:
    """Open every image of a validated sample sheet; raise at the first bad one.

    Parameters
    ----------
    sheet : DataFrame
        :func:`~sepher.io.samplesheet.read_sample_sheet` of the whole sheet
        (index = 0-based sheet row, with the ``file`` column).
    sheet_file : str or Path
        The sample sheet, named in messages.
    workers : int
        Processes that read images at once (1: this process only). With more,
        the sheet is checked in blocks of consecutive rows and the error
        raised is still that of the first bad row in sheet order.

    Raises
    ------
    InputError
        Truncated or unreadable image, z-stack or time series, channel index
        out of range, all-black image or all-black IF channel in use; names
        the sheet, the row (and image_id), the column, the value and the
        expectation.
    """
    sheet_file = str(sheet_file)
    rows = list(zip(sheet.index, sheet.to_dict("records"), strict=True))
    if workers <= 1 or len(rows) < 2:
        error = _check_rows(sheet_file, rows)
    else:
        error = _check_rows_parallel(sheet_file, rows, workers)
    if error is not None:
        raise error


def _check_rows_parallel(sheet_file, rows, workers) -> InputError | None:
    """:func:`_check_rows` over blocks of rows in `workers` forked processes.

    Forked, so the workers start at once with everything this process has
    imported; only while this process runs a single thread (Snakemake's
    main process does while it reads the Snakefile), since a fork copies
    other threads' locks half-taken. Otherwise the rows are checked here, one
    after another. Blocks are collected in sheet order, so the first bad row
    wins whichever worker reaches it first; the blocks after it are cancelled.
    """
    import multiprocessing
    import threading
    from concurrent.futures import ProcessPoolExecutor

    if threading.active_count() > 1 or "fork" not in multiprocessing.get_all_start_methods():
        return _check_rows(sheet_file, rows)
    size = max(16, min(256, -(-len(rows) // (workers * 8))))
    blocks = [rows[start : start + size] for start in range(0, len(rows), size)]
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [pool.submit(_check_rows, sheet_file, block) for block in blocks]
        for future in futures:
            error = future.result()
            if error is not None:
                for later in futures:
                    later.cancel()
                return error
    return None


def image_stamp(sheet) -> list:
    """(path, size, mtime) of every image: what a cached check depends on."""
    stamps = []
    for file in sheet["file"]:
        stat = Path(file).stat()
        stamps.append([file, stat.st_size, stat.st_mtime_ns])
    return stamps
