"""The IHC speed work (issue 18, item 2) leaves every scored number unchanged.

The hashes below were computed by the scoring code as it stood before that work
(commit 1b83930, unchanged ``sepher.ihc``), on demo tiles scored whole
(``tile_px`` 1024: one window) and in overlapping windows (``tile_px`` 700:
the path of photos larger than 1024 px). Any later speed-up must reproduce
them bit for bit: the cells table as the stage writes it
(:func:`sepher.io.tables.write_table`), the same table at full float
precision, and the three label images.
"""

import hashlib

import numpy as np
import pytest

from sepher.ihc.io import FAST_PNG_LEVEL, read_ihc_rgb, write_rgb_png
from sepher.ihc.scoring import score_image
from sepher.io.tables import write_table

DEMO = "resources/demo/images/ihc"

#: (tile, tile_px) -> sha256 of the written cells CSV, of the table at %.17g, of
#: the nuclei + cells + membrane_band label bytes (int32). Computed with the
#: code before the speed work (commit 1b83930), not with the code under test.
BEFORE = {
    ("BX-01_pre_1", 1024): (
        "f0d24576aad93ed3a97488b1082cf4bbcfab52a243b21e98db0b7a92f7cb7ffe",
        "9e1e3dc7e5132ecb87f8773b23a730ec2759c8dd7255b6e832667a524a2ab5b1",
        "98504e606f67f9203be2f105a319018faee8d4dddd41f3eeae60b5bfb39813b7",
    ),
    ("BX-02_pre_1", 1024): (
        "7981cb2557c856fc133d250eb8c31d81c552b341c96436bb17db9ae190a0e001",
        "e7f08841f5d7cf58f70cd414ad42b0cc5065b6432fad20d9af4bb9e304f1e2ba",
        "f14cba093e5c5f0e6f07c75f377e7cd45c165a14ee15c27bcf0ed0bf0ad55268",
    ),
    ("BX-04_pre_1", 1024): (
        "ed49deb2914a195a338a23807396170264c4a567df288e274c691cebe0907105",
        "a22088327fc08e699623da7f47e52f3dd4f9fc010c4fe78b1df69829396cd3c4",
        "51121be170fcdaedf70494135e670265ce31f05f9659fa001ff5e66368805790",
    ),
    ("BX-04_post_1", 1024): (
        "2b403247ab3c0e875b21091dc70e407b4f18d917491e12d1ac91986c57c61d97",
        "1daf7ffc89443f7f235a651bbaf09f2fdc5d91c0e3a4bb9674fa49dab61c5a7c",
        "9e2f1a9e60dbbbb3b0ebae60c170582e6ee5abfe20b1bd50a4f1cfee9d3e4d4b",
    ),
    ("BX-01_pre_1", 700): (
        "836e2fa711dbde8befec58934eea489f1774de2e15b722b6b2841c7642950fe3",
        "2076e9da4153a0139e398e16c3770f6d66a0cf36eaca423acd2a0d6599f2b117",
        "ba98f367a5981be7536402ae8fddbbd7e9cccad5fbe772c360965e561268334a",
    ),
    ("BX-04_post_1", 700): (
        "1d68cc418434c487c156b85ce1b383e34a76527c1ed29ad35a0f2c9adeff2f7c",
        "9e6763450acf05dd2ebfba0fe1ca9722040d83d2fd11f0a55f1283ff3b7c2b8d",
        "6cae5067c31d9762ea2ff0a2aaf461ab148d7713ddc70c300b56a515708710dc",
    ),
}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(("tile", "tile_px"), list(BEFORE))
def test_scores_unchanged_by_the_speed_work(project_dir, tmp_path, tile, tile_px):
    rgb = read_ihc_rgb(project_dir / DEMO / f"{tile}.jpg")
    cells, labels, _ = score_image(rgb, 0.25, tile_px=tile_px)
    path = tmp_path / "cells.csv"
    write_table(cells, path)
    full = cells.to_csv(index=False, float_format="%.17g", lineterminator="\n").encode()
    label_bytes = b"".join(labels[k].tobytes() for k in ("nuclei", "cells", "membrane_band"))
    assert (_sha(path.read_bytes()), _sha(full), _sha(label_bytes)) == BEFORE[(tile, tile_px)]


def test_overlay_png_pixels_round_trip(tmp_path):
    """The overlay PNG (fast zlib level) holds exactly the pixels it was given."""
    from PIL import Image

    rgb = np.random.default_rng(0).integers(0, 256, size=(37, 53, 3), dtype=np.uint8)
    path = tmp_path / "overlay.png"
    write_rgb_png(rgb, path, compress_level=FAST_PNG_LEVEL)
    with Image.open(path) as image:
        assert image.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(image), rgb)


@pytest.mark.parametrize("sigma", [0.3, 2.0, 4.0, 8.0])
def test_window_gaussian_equals_filtering_the_window_alone(sigma):
    """Frames re-filtered at inner edges, the rest copied: the same floats."""
    from scipy import ndimage as ndi

    from sepher.ihc.scoring import _gaussian_in_window

    rng = np.random.default_rng(int(sigma * 10))
    source = rng.gamma(2.0, 0.2, size=(150, 170)).astype(np.float32)
    smoothed = ndi.gaussian_filter(source, sigma)
    windows = [
        (slice(0, 150), slice(0, 170)),
        (slice(0, 90), slice(40, 170)),
        (slice(30, 120), slice(25, 100)),
        (slice(100, 150), slice(0, 20)),
        (slice(7, 30), slice(150, 170)),
    ]
    for window in windows:
        expected = ndi.gaussian_filter(np.ascontiguousarray(source[window]), sigma)
        got = _gaussian_in_window(source, smoothed, sigma, window)
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)


def test_block_colour_brightness_equals_numpy_float_means():
    """The integer block sums give numpy's float32 means bit for bit."""
    from sepher.ihc.deconvolution import _block_colour_brightness

    rgb = np.random.default_rng(3).integers(0, 256, size=(200, 330, 3), dtype=np.uint8)
    for k, step in ((16, 1), (16, 3), (5, 1), (1, 2)):
        rows, cols = rgb.shape[0] // k, rgb.shape[1] // k
        view = rgb[: rows * k, : cols * k].reshape(rows, k, cols, k, 3)[::step, :, ::step]
        as_float = view.astype(np.float32)
        colour, brightness = _block_colour_brightness(view)
        np.testing.assert_array_equal(colour, as_float.mean(axis=(1, 3)))
        np.testing.assert_array_equal(brightness, as_float.mean(axis=-1))


def test_remove_small_drops_exactly_the_small_components():
    from scipy import ndimage as ndi

    from sepher.ihc.deconvolution import _remove_small

    rng = np.random.default_rng(4)
    mask = ndi.gaussian_filter(rng.random((120, 140)), 3.0) > 0.5
    labels, _ = ndi.label(mask)
    sizes = np.bincount(labels.ravel())
    for min_px in (1, 30, int(np.median(sizes[1:])), sizes.max() + 1):
        keep = sizes >= min_px
        keep[0] = False
        got = _remove_small(mask, min_px)
        assert got is not mask
        np.testing.assert_array_equal(got, keep[labels])
