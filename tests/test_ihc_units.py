"""Units of the IHC library: deconvolution, biopsy rules, the real skimage IHC image."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from skimage import color, data

from sepher.errors import InputError
from sepher.ihc import (
    IHCParams,
    asco_cap_category,
    class_overlay,
    classify_cells,
    estimate_stain_vectors,
    measure_cells,
    paired_changes,
    rgb_to_od,
    score_biopsy,
    score_image,
    stain_matrix,
    unmix_h_dab,
)


def test_deconvolution_matches_skimage_up_to_log_base():
    rgb = data.immunohistochemistry()
    od = rgb_to_od(rgb)
    # skimage: stains = log(max(rgb, 1e-6)) / log(1e-6) @ hed_from_rgb, eosin as 3rd vector
    matrix = np.vstack(
        [stain_matrix()[:2], [0.07, 0.99, 0.11] / np.linalg.norm([0.07, 0.99, 0.11])]
    )
    h, dab = unmix_h_dab(od, matrix)
    ref = color.rgb2hed(rgb)
    scale = np.log(10) / -np.log(1e-6)  # log10 OD -> skimage's units
    # skimage works on (rgb + 1e-6)/255 without flooring; compare on pixels > 0
    ok = np.all(rgb > 0, axis=-1)
    # skimage clips negative amounts to 0
    np.testing.assert_allclose(np.maximum(h[ok], 0) * scale, ref[..., 0][ok], atol=2e-3)
    np.testing.assert_allclose(np.maximum(dab[ok], 0) * scale, ref[..., 2][ok], atol=2e-3)


def test_pure_stain_unmixes_to_itself():
    matrix = stain_matrix()
    od = (0.5 * matrix[0] + 0.3 * matrix[1]).reshape(1, 1, 3).astype(np.float32)
    h, dab = unmix_h_dab(od, matrix)
    assert h[0, 0] == pytest.approx(0.5, abs=1e-5)
    assert dab[0, 0] == pytest.approx(0.3, abs=1e-5)


def test_macenko_recovers_vectors_on_the_real_image():
    od = rgb_to_od(data.immunohistochemistry())
    matrix = estimate_stain_vectors(od)
    # within 25 degrees of Ruifrok's H-DAB (else it would fall back exactly to them)
    cos = np.sum(matrix[:2] * stain_matrix()[:2], axis=1)
    assert np.all(cos > np.cos(np.deg2rad(25)))


def test_asco_cap_rules():
    assert asco_cap_category(100, 50, 11) == 3
    assert asco_cap_category(100, 11, 10) == 2
    assert asco_cap_category(11, 10, 0) == 1
    assert asco_cap_category(10, 0, 0) == 0


def test_cell_classes():
    cls, complete = classify_cells(
        [0.05, 0.25, 0.5, 0.9, 0.9, 0.3], [0.05, 0.5, 1.0, 1.0, 0.5, 1.0]
    )
    assert cls.tolist() == [0, 1, 2, 3, 1, 1]
    assert complete.tolist() == [False, False, True, True, False, True]


def test_score_biopsy_h_score():
    cells = pd.DataFrame({"her2_class": [0] * 10 + [1] * 20 + [2] * 30 + [3] * 40})
    out = score_biopsy(cells)
    assert out["h_score"] == pytest.approx(20 + 60 + 120)
    assert out["asco_cap_label"] == "3+"
    assert out["pct_complete"] == pytest.approx(70)


def test_paired_changes_and_errors():
    samples = pd.DataFrame(
        {
            "patient_id": ["A", "A", "B"],
            "timepoint": ["pre", "post", "pre"],
            "h_score": [250.0, 60.0, 100.0],
            "pct_complete": [80.0, 5.0, 30.0],
            "asco_cap": [3, 1, 2],
        }
    )
    out = paired_changes(samples).set_index("patient_id")
    assert out.loc["A", "h_score_change"] == pytest.approx(-190)
    assert np.isnan(out.loc["B", "h_score_change"])
    with pytest.raises(InputError, match="timepoint"):
        paired_changes(samples.assign(timepoint=["pre", "later", "pre"]))
    with pytest.raises(InputError, match="one biopsy per patient"):
        paired_changes(pd.concat([samples, samples.iloc[[0]]]))


def test_real_ihc_image_cells_and_membrane_dab():
    rgb = data.immunohistochemistry()  # real HER2-like membrane DAB; ~0.5 um/px assumed
    # the default (Macenko vectors from this image) reads it as HER2 3+ as well
    _, _, estimated = score_image(rgb, 0.5)
    assert estimated["stain_vectors_source"] == "macenko" and estimated["asco_cap"] == 3
    # fixed vectors: the same vectors as the unmixing checked below
    cells, labels, summary = score_image(rgb, 0.5, IHCParams(estimate_stains=False))
    # ~250 nuclei visible by eye (epithelium + stroma); at the default settings 252 are found
    assert 150 <= len(cells) <= 400
    assert 80 <= summary["n_tumour_cells"] <= 250
    h, dab = unmix_h_dab(rgb_to_od(rgb))
    band = labels["membrane_band"] > 0
    nuclei = labels["nuclei"] > 0
    # membrane band pixels clearly more DAB than nuclear pixels (0.62 vs 0.30 OD)
    assert dab[band].mean() > 1.5 * dab[nuclei].mean()
    assert h[nuclei].mean() > 2 * h[band].mean()
    # stained epithelium: a clearly HER2-positive pattern
    assert summary["asco_cap"] >= 2
    overlay = class_overlay(rgb, labels["cells"], cells)
    out = Path("/tmp/figs")
    out.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    Image.fromarray(overlay).save(out / "ihc_real_overlay.png")
    assert overlay.shape == rgb.shape and (overlay != rgb).any()


def test_tiled_scoring_agrees_with_one_window():
    """Windows with halos (tile_px=256: 25 windows on 512^2) vs the image in one piece."""
    rgb = data.immunohistochemistry()
    whole, whole_labels, whole_summary = score_image(rgb, 0.5)
    tiled, labels, summary = score_image(rgb, 0.5, tile_px=256)
    assert abs(len(tiled) - len(whole)) <= 0.02 * len(whole)
    assert abs(summary["h_score"] - whole_summary["h_score"]) <= 2.0
    assert summary["asco_cap"] == whole_summary["asco_cap"]
    assert abs(summary["tissue_area_mm2"] / whole_summary["tissue_area_mm2"] - 1) < 0.01
    # nuclei found in the same places (the tiles' cores cover the image once)
    agree = ((labels["nuclei"] > 0) == (whole_labels["nuclei"] > 0)).mean()
    assert agree > 0.995
    # stitched labels: unique ids, each row's nucleus and cell present, bands inside cells
    ids = tiled["cell_id"].to_numpy()
    assert len(np.unique(ids)) == len(ids)
    assert set(np.unique(labels["nuclei"])[1:]) == set(ids)
    band = labels["membrane_band"]
    assert np.array_equal(band[band > 0], labels["cells"][band > 0])
    # nucleus k inside cell k
    nuc = labels["nuclei"]
    assert np.array_equal(labels["cells"][nuc > 0], nuc[nuc > 0])


def test_fast_morphology_equals_scipy_and_skimage():
    from scipy import ndimage as ndi
    from skimage import morphology
    from skimage import segmentation as skseg

    from sepher.ihc import segmentation as seg

    rng = np.random.default_rng(5)
    # h-maxima on an image whose values lie on the quantisation grid (h / 256): exact
    h = 0.03
    image = np.rint(ndi.gaussian_filter(rng.random((200, 173)), 2) * 20000) * (h / 256)
    expected = morphology.h_maxima(image, h).astype(bool)
    assert expected.sum() > 20
    assert np.array_equal(seg._h_maxima(image, h), expected)
    # bilinear up-sampling = ndi.zoom(order=1, grid_mode=True, mode="nearest")
    for factor, shape in ((4, (101, 98)), (3, (60, 61)), (2, (7, 9))):
        small = rng.random((-(-shape[0] // factor), -(-shape[1] // factor))).astype(np.float32)
        zoom = ndi.zoom(small, factor, order=1, grid_mode=True, mode="nearest")
        np.testing.assert_allclose(
            seg._upsample(small, factor, shape), zoom[: shape[0], : shape[1]], atol=1e-6
        )
    mask = rng.random((120, 90)) > 0.55
    assert np.array_equal(seg._open_cross(mask), ndi.binary_opening(mask))
    assert np.array_equal(seg._fill_holes(mask), ndi.binary_fill_holes(mask))
    sparse = rng.random((120, 90)) > 0.97
    for radius in (1.0, 1.5, 2.5, 3.7):
        r = int(radius)
        yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
        disc = yy**2 + xx**2 <= radius**2 + 1e-9
        assert np.array_equal(
            seg._dilate_disc(sparse, radius), ndi.binary_dilation(sparse, structure=disc)
        )
    for pixel_size, reach in ((0.5, 5.0), (0.37, 3.3), (1.0, 2.0)):
        expected = ndi.distance_transform_edt(~sparse) * pixel_size <= reach
        assert np.array_equal(seg._within_distance(sparse, pixel_size, reach), expected)
    # flooding only components with several markers = flooding everything
    surface = ndi.gaussian_filter(rng.random((120, 90)), 2)
    blobs = ndi.gaussian_filter(rng.random((120, 90)), 3) > 0.5
    markers, _ = ndi.label((rng.random((120, 90)) > 0.98) & blobs)
    assert np.array_equal(
        seg._split_watershed(surface, markers, blobs),
        skseg.watershed(surface, markers, mask=blobs),
    )


def test_nucleus_shapes_match_skimage_regionprops():
    from scipy import ndimage as ndi
    from skimage.measure import label, regionprops

    from sepher.ihc.segmentation import _nucleus_shapes

    rng = np.random.default_rng(3)
    labels = label(ndi.gaussian_filter(rng.random((160, 140)), 3) > 0.52)
    area, roundness = _nucleus_shapes(labels)
    for region in regionprops(labels):
        assert area[region.label] == region.area
        if region.axis_major_length > 0:
            expected = region.axis_minor_length / region.axis_major_length
            assert roundness[region.label] == pytest.approx(expected, abs=1e-6)


def test_measure_cells_excess_over_the_nucleus_and_its_fallback():
    """Two cells: one with a nucleus reference, one whose reference is too small."""
    nuclei = np.zeros((40, 60), np.int32)
    nuclei[14:26, 8:20] = 1  # 144 px = 36 um^2 at 0.5 um/px
    nuclei[19:21, 40:42] = 2  # 4 px = 1 um^2: too small, the other cell's reference stands in
    cells = np.zeros_like(nuclei)
    cells[4:36, 2:28] = 1
    cells[4:36, 32:58] = 2
    band = np.where((cells > 0) & (nuclei == 0) & ~ndi_erode(cells > 0), cells, 0)
    dab = np.full(nuclei.shape, 0.2, np.float32)  # a diffuse tint everywhere
    dab[band > 0] = 0.5  # membrane: 0.3 above the tint
    table = measure_cells(
        nuclei, cells, band, np.zeros_like(dab), dab, 0.5, weak=0.1, reference=nuclei > 0
    )
    assert table["membrane_dab_excess_od"].tolist() == pytest.approx([0.3, 0.3])
    assert table["membrane_completeness"].tolist() == [1.0, 1.0]
    assert not any(c.startswith("_") for c in table.columns)
    # the raw band at the weak threshold of the excess would also be "complete";
    # a tint above the membrane is not
    dab[band > 0] = 0.25
    table = measure_cells(
        nuclei, cells, band, np.zeros_like(dab), dab, 0.5, weak=0.1, reference=nuclei > 0
    )
    assert table["membrane_completeness"].tolist() == [0.0, 0.0]


def ndi_erode(mask):
    from scipy import ndimage as ndi

    return ndi.binary_erosion(mask, iterations=2)
