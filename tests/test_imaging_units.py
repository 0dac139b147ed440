"""Unit tests of sepher.imaging on small synthetic images with known answers."""

import numpy as np
import pandas as pd
import pytest
import tifffile
from scipy import stats
from skimage.draw import disk
from skimage.measure import regionprops_table

from sepher.errors import InputError
from sepher.imaging import (
    aggregate,
    compare_conditions,
    compartments,
    focus_score,
    image_qc,
    match_instances,
    measure_cells,
    read_image,
    segment_cells,
    segment_nuclei,
    select_channel,
)


def _disk_mask(shape, center, radius):
    m = np.zeros(shape, bool)
    m[disk(center, radius, shape=shape)] = True
    return m


# ---------------------------------------------------------------- segmentation
def test_two_touching_nuclei_are_split():
    px = 0.25  # um
    shape = (120, 160)
    r = 5.0 / px  # 5 um radius
    a = _disk_mask(shape, (60, 80 - 4.5 / px), r)  # centres 9 um apart: overlap
    b = _disk_mask(shape, (60, 80 + 4.5 / px), r)
    rng = np.random.default_rng(0)
    img = 100 + 800.0 * (a | b) + rng.normal(0, 20, shape)
    labels = segment_nuclei(img, px)
    assert labels.max() == 2
    truth = np.zeros(shape, int)
    truth[a] = 1
    truth[b & ~a] = 2
    score = match_instances(labels, truth)
    assert score["f1"] == 1.0
    assert score["mean_iou"] > 0.8


def test_size_filter_in_um2():
    px = 0.5
    shape = (100, 100)
    small = _disk_mask(shape, (25, 25), 1.0 / px)  # area ~3 um^2
    big = _disk_mask(shape, (65, 65), 5.0 / px)  # area ~79 um^2
    img = 10 + 500.0 * (small | big)
    labels = segment_nuclei(img, px, min_area_um2=10.0)
    assert labels.max() == 1
    assert labels[65, 65] == 1 and labels[25, 25] == 0


def test_match_instances_counts():
    truth = np.zeros((20, 20), int)
    truth[2:8, 2:8] = 1
    truth[10:16, 10:16] = 2
    pred = np.zeros_like(truth)
    pred[2:8, 2:8] = 5  # exact
    pred[10:16, 13:19] = 7  # IoU = 18 / 54 = 1/3
    pred[0:2, 15:20] = 9  # spurious
    s = match_instances(pred, truth, iou=0.5)
    assert (s["tp"], s["fp"], s["fn"]) == (1, 2, 1)
    assert s["precision"] == pytest.approx(1 / 3)
    assert s["recall"] == pytest.approx(0.5)
    assert s["f1"] == pytest.approx(2 / 5)
    s2 = match_instances(pred, truth, iou=0.3)
    assert s2["tp"] == 2
    assert s2["mean_iou"] == pytest.approx((1 + 1 / 3) / 2)


def test_cells_expand_keep_nucleus_labels():
    nuclei = np.zeros((60, 60), np.int32)
    nuclei[10:16, 10:16] = 3
    nuclei[40:46, 40:46] = 8
    cells = segment_cells(nuclei, None, 0.5, method="expand", expand_um=2.0)
    assert set(np.unique(cells)) == {0, 3, 8}
    assert np.all(cells[nuclei > 0] == nuclei[nuclei > 0])
    # grown by 2 um = 4 px on each side (city-block-free Euclidean expansion)
    assert cells[6, 13] == 3 and cells[5, 13] == 0


def test_cells_watershed_stops_at_membrane_ridge():
    px = 0.5
    nuclei = np.zeros((40, 80), np.int32)
    nuclei[15:25, 10:20] = 1
    nuclei[15:25, 60:70] = 2
    membrane = np.full((40, 80), 10.0)
    membrane[:, 48:50] = 1000.0  # ridge off-centre, at x = 48-49
    cells = segment_cells(nuclei, membrane, px, max_radius_um=100)
    assert np.all(cells[:, :48] == 1)
    assert np.all(cells[:, 50:] == 2)


# ---------------------------------------------------------------- compartments
def test_membrane_band_width_in_um():
    px = 0.5
    cells = np.zeros((60, 60), np.int32)
    cells[10:50, 10:50] = 1  # 40 x 40 px cell surrounded by background
    nuclei = np.zeros_like(cells)
    nuclei[25:35, 25:35] = 1
    comp = compartments(nuclei, cells, px, membrane_band_um=1.0)
    # 1 um band at 0.5 um/px = 2 pixel layers: 40^2 - 36^2 pixels
    assert (comp["membrane"] == 1).sum() == 40**2 - 36**2
    assert np.all(comp["membrane"][10:12, 10:50] == 1)
    assert np.all(comp["membrane"][12:48, 12:48] == 0)
    comp2 = compartments(nuclei, cells, px, membrane_band_um=2.0)
    assert (comp2["membrane"] == 1).sum() == 40**2 - 32**2
    # partition: every cell pixel in exactly one compartment
    total = sum((c > 0).astype(int) for c in comp.values())
    assert np.array_equal(total, (cells > 0).astype(int))
    assert (comp["nucleus"] == 1).sum() == 100


def test_membrane_band_between_touching_cells_and_not_at_image_border():
    cells = np.zeros((20, 40), np.int32)
    cells[:, :20] = 1
    cells[:, 20:] = 2
    nuclei = np.zeros_like(cells)
    comp = compartments(nuclei, cells, 1.0, membrane_band_um=1.0)
    # band: one layer each side of the shared edge; the image border is no edge
    assert np.array_equal(np.unique(np.nonzero(comp["membrane"])[1]), [19, 20])


# ---------------------------------------------------------------- measurement
def _synthetic_cell(rng, px=0.25):
    shape = (200, 200)
    cell = _disk_mask(shape, (100, 100), 10.0 / px)
    nucleus = _disk_mask(shape, (100, 100), 4.0 / px)
    cells = cell.astype(np.int32)
    nuclei = nucleus.astype(np.int32)
    comp = compartments(nuclei, cells, px, membrane_band_um=1.0)
    band = comp["membrane"] == 1
    cyto = comp["cytoplasm"] == 1
    background, i_nuc, i_mem, i_cyto = 100.0, 300.0, 1000.0, 50.0
    her2 = np.full(shape, background)
    her2[nucleus] += i_nuc
    her2[band] += i_mem
    her2[cyto] += i_cyto
    her2 += rng.normal(0, 5.0, shape)
    expected = (
        i_nuc * nucleus.sum() / (i_nuc * nucleus.sum() + i_mem * band.sum() + i_cyto * cyto.sum())
    )
    return her2, nuclei, cells, px, expected


def test_nuclear_fraction_of_synthetic_cell():
    rng = np.random.default_rng(42)
    her2, nuclei, cells, px, expected = _synthetic_cell(rng)
    df = measure_cells({"her2": her2}, nuclei, cells, px)
    assert len(df) == 1
    assert df["nuclear_fraction"].iloc[0] == pytest.approx(expected, rel=0.02)
    assert df["her2_background"].iloc[0] == pytest.approx(100.0, abs=1.0)
    assert df["her2_mean_membrane"].iloc[0] == pytest.approx(1100.0, rel=0.01)
    assert df["her2_mean_nucleus"].iloc[0] == pytest.approx(400.0, rel=0.01)
    assert df["membrane_completeness"].iloc[0] == pytest.approx(1.0)
    assert df["cell_area_um2"].iloc[0] == pytest.approx(np.pi * 10**2, rel=0.02)
    assert not df["border"].iloc[0]


def test_membrane_completeness_half_ring():
    rng = np.random.default_rng(1)
    her2, nuclei, cells, px, _ = _synthetic_cell(rng)
    band = compartments(nuclei, cells, px)["membrane"] == 1
    her2[band & (np.arange(200)[None, :] >= 100)] = 100.0  # right half unstained
    df = measure_cells({"her2": her2}, nuclei, cells, px)
    assert df["membrane_completeness"].iloc[0] == pytest.approx(0.5, abs=0.03)


def test_bincount_measurements_equal_regionprops():
    rng = np.random.default_rng(3)
    cells = np.zeros((50, 50), np.int32)
    cells[2:20, 2:20] = 1
    cells[25:48, 5:30] = 2
    cells[5:30, 30:50] = 4  # label 3 absent: ids need not be consecutive
    nuclei = np.zeros_like(cells)
    nuclei[8:14, 8:14] = 1
    nuclei[30:40, 10:20] = 2
    nuclei[12:20, 35:42] = 4
    her2 = rng.integers(0, 4000, cells.shape).astype(np.uint16)
    px = 0.4
    df = measure_cells({"her2": her2}, nuclei, cells, px).set_index("cell_id")
    assert list(df.index) == [1, 2, 4]
    rp_nuc = pd.DataFrame(
        regionprops_table(nuclei, her2, properties=("label", "area", "intensity_mean"))
    ).set_index("label")
    rp_cell = pd.DataFrame(
        regionprops_table(cells, her2, properties=("label", "area", "centroid"))
    ).set_index("label")
    np.testing.assert_allclose(df["her2_mean_nucleus"], rp_nuc["intensity_mean"], rtol=1e-9)
    np.testing.assert_allclose(df["nucleus_area_um2"], rp_nuc["area"] * px**2)
    np.testing.assert_allclose(df["cell_area_um2"], rp_cell["area"] * px**2)
    np.testing.assert_allclose(df["centroid_y_um"], rp_cell["centroid-0"] * px)
    comp = compartments(nuclei, cells, px)
    for k in (1, 2, 4):
        vals = her2[comp["membrane"] == k].astype(float)
        assert df.loc[k, "her2_median_membrane"] == np.median(vals)
        assert df.loc[k, "her2_integrated_membrane"] == vals.sum()
    assert df.loc[4, "border"] and not df.loc[1, "border"]


def test_flags_saturated_and_implausible():
    cells = np.zeros((40, 40), np.int32)
    cells[5:15, 5:15] = 1
    cells[20:38, 20:38] = 2
    nuclei = np.where(cells > 0, cells, 0)
    her2 = np.full(cells.shape, 500, np.uint16)
    her2[7, 7] = 65535
    df = measure_cells({"her2": her2}, nuclei, cells, 1.0, cell_area_um2=(150, 1000))
    assert df["saturated"].tolist() == [True, False]
    assert df["implausible_size"].tolist() == [True, False]


# ---------------------------------------------------------------- QC
def test_image_qc_focus_and_saturation():
    rng = np.random.default_rng(5)
    sharp = (rng.random((128, 128)) > 0.9) * 3000.0 + 200
    from scipy import ndimage as ndi

    blurred = ndi.gaussian_filter(sharp, 3)
    assert focus_score(sharp) > 10 * focus_score(blurred)
    img = np.full((100, 100), 1000, np.uint16)
    img[:2, :] = 65535  # 2 % saturated
    qc = image_qc({"her2": img, "dapi": np.full((100, 100), 10, np.uint16)})
    assert qc["saturated_fraction"]["her2"] == pytest.approx(0.02)
    assert "saturated:her2" in qc["flags"]
    assert "blank:dapi" in qc["flags"]


# ---------------------------------------------------------------- summaries
def _cells_table():
    rows = []
    # condition A replicates 1..3 have image medians {1,2,3} + rep offset; B higher
    for cond, shift in (("T-R", 0.0), ("TP-R", 5.0)):
        for rep in (1, 2, 3):
            for img in (1, 2):
                for cell_value in (-1.0, 0.0, 1.0):
                    rows.append(
                        {
                            "cell_line": "BT-474",
                            "condition": cond,
                            "replicate": rep,
                            "image_id": f"{cond}_{rep}_{img}",
                            "her2_mean_membrane": 10 + shift + rep + 0.5 * img + cell_value,
                            "border": False,
                        }
                    )
    df = pd.DataFrame(rows)
    # a flagged outlier cell that must not count
    bad = df.iloc[0].copy()
    bad["her2_mean_membrane"], bad["border"] = 1e6, True
    return pd.concat([df, bad.to_frame().T], ignore_index=True).astype(
        {"her2_mean_membrane": float, "border": bool, "replicate": int}
    )


def test_aggregate_hierarchy():
    out = aggregate(_cells_table(), values=["her2_mean_membrane"])
    img = out["image"].set_index("image_id")
    assert img.loc["T-R_1_1", "her2_mean_membrane"] == 11.5
    assert img.loc["T-R_1_1", "n_cells"] == 3 and img.loc["T-R_1_1", "n_cells_excluded"] == 1
    rep = out["replicate"]
    a = rep[rep.condition == "T-R"].set_index("replicate")["her2_mean_membrane"]
    np.testing.assert_allclose(a.to_numpy(), [11.75, 12.75, 13.75])
    cond = out["condition"].set_index("condition")
    lo, hi = stats.t.interval(0.95, 2, loc=12.75, scale=1.0 / np.sqrt(3))
    assert cond.loc["T-R", "her2_mean_membrane_mean"] == pytest.approx(12.75)
    assert cond.loc["T-R", "her2_mean_membrane_ci_low"] == pytest.approx(lo)
    assert cond.loc["T-R", "her2_mean_membrane_ci_high"] == pytest.approx(hi)
    assert cond.loc["T-R", "n_replicates"] == 3


def test_compare_conditions_welch_and_hedges():
    rep = pd.DataFrame(
        {"condition": ["a"] * 3 + ["b"] * 4, "v": [1.0, 2.0, 3.0, 4.0, 6.0, 5.0, 7.0]}
    )
    res = compare_conditions(rep, "a", "b", value="v")
    ref = stats.ttest_ind([4, 6, 5, 7], [1, 2, 3], equal_var=False)
    assert res["p"] == pytest.approx(ref.pvalue)
    assert res["t"] == pytest.approx(ref.statistic)
    assert res["difference"] == pytest.approx(3.5)
    ci = ref.confidence_interval(0.95)
    assert res["difference_ci_low"] == pytest.approx(ci.low)
    assert res["difference_ci_high"] == pytest.approx(ci.high)
    # Hedges' g: pooled SD sqrt((2*1 + 3*1.6667)/5) = sqrt(7/5); J = 1 - 3/(4*7-9)
    g = (1 - 3 / 19) * 3.5 / np.sqrt(7 / 5)
    assert res["hedges_g"] == pytest.approx(g)
    assert res["ratio"] == pytest.approx(5.5 / 2.0)
    assert res["ratio_ci_low"] < res["ratio"] < res["ratio_ci_high"]
    with pytest.raises(ValueError):
        compare_conditions(rep.iloc[:4], "a", "b", value="v")


# ---------------------------------------------------------------- reading
def test_read_tiff_channels_and_resolution(tmp_path):
    data = np.arange(2 * 8 * 9, dtype=np.uint16).reshape(2, 8, 9) + 1
    p = tmp_path / "img.tif"
    tifffile.imwrite(
        p,
        data,
        photometric="minisblack",
        resolution=(1e4 / 0.325, 1e4 / 0.325),
        resolutionunit="CENTIMETER",
    )
    with pytest.warns(UserWarning, match="using the file's value"):
        img, px = read_image(p, pixel_size_um=0.5)
    assert img.shape == (2, 8, 9) and img.dtype == np.uint16
    assert px == pytest.approx(0.325)  # from the file, not the sheet
    ome = tmp_path / "img.ome.tif"
    tifffile.imwrite(
        ome, data, metadata={"axes": "CYX", "PhysicalSizeX": 0.2, "PhysicalSizeY": 0.2}
    )
    img, px = read_image(ome)
    assert px == pytest.approx(0.2) and img.shape == (2, 8, 9)
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, data[0])
    img, px = read_image(plain, pixel_size_um=0.65)
    assert img.shape == (1, 8, 9) and px == 0.65
    assert np.array_equal(select_channel(read_image(p)[0], 1), data[1])


def test_read_png(tmp_path):
    from skimage import io as skio

    rgb = np.zeros((10, 12, 3), np.uint8)
    rgb[..., 1] = 200
    p = tmp_path / "x.png"
    skio.imsave(p, rgb, check_contrast=False)
    img, px = read_image(p, pixel_size_um=1.0)
    assert img.shape == (3, 10, 12)
    assert img[1].max() == 200


def test_read_errors(tmp_path):
    data = np.ones((3, 16, 16), np.uint16)
    good = tmp_path / "good.tif"
    tifffile.imwrite(good, data, photometric="minisblack")
    with pytest.raises(InputError, match="channel index 0..2"):
        read_image(good, 1.0, channels=[3])
    with pytest.raises(InputError, match="her2_channel"):
        select_channel(read_image(good, 1.0)[0], 5, good, column="her2_channel", row=4)
    trunc = tmp_path / "trunc.tif"
    trunc.write_bytes(good.read_bytes()[:200])
    with pytest.raises(InputError, match="trunc.tif"):
        read_image(trunc, 1.0)
    notimg = tmp_path / "notes.png"
    notimg.write_text("not an image")
    with pytest.raises(InputError, match="readable"):
        read_image(notimg, 1.0)
    zstack = tmp_path / "z.tif"
    tifffile.imwrite(
        zstack, np.ones((5, 2, 16, 16), np.uint16), metadata={"axes": "ZCYX"}, imagej=True
    )
    with pytest.raises(InputError, match="z-stack"):
        read_image(zstack, 1.0)
    black = tmp_path / "black.tif"
    tifffile.imwrite(black, np.zeros((16, 16), np.uint16))
    with pytest.raises(InputError, match="all pixels are 0"):
        read_image(black, 1.0)
    with pytest.raises(InputError, match="pixel size"):
        read_image(good)
    with pytest.raises(InputError, match="existing"):
        read_image(tmp_path / "missing.tif", 1.0)


# ---------------------------------------------------------------- fast kernels
# The speed-ups (issue 4) replace library calls by cheaper equivalents; each is
# checked here against the call it replaces on random inputs.
def test_h_maxima_watershed_equals_reconstruction_markers():
    from scipy import ndimage as ndi
    from skimage import morphology, segmentation

    from sepher.imaging.nuclei import watershed_h_maxima

    rng = np.random.default_rng(7)
    agree = []
    for _ in range(5):
        surface = ndi.gaussian_filter(rng.random((160, 170)), 4).astype(np.float32) * 50
        mask = surface > np.quantile(surface, 0.4)
        ours = watershed_h_maxima(surface, mask, 0.1)
        markers, _ = ndi.label(morphology.h_maxima(surface, 0.1) & mask)
        ref = segmentation.watershed(-surface, markers, mask=mask)
        assert ours.max() == ref.max()  # same maxima survive
        agree.append(match_instances(ours, ref, iou=0.5)["f1"])
    assert min(agree) == 1.0


def test_distance_fill_and_opening_equal_scipy():
    from scipy import ndimage as ndi
    from skimage.morphology import disk as disk_fp

    from sepher.imaging.nuclei import distance_to_background_um, fill_holes, open_disk

    rng = np.random.default_rng(8)
    for _ in range(5):
        m = ndi.gaussian_filter(rng.random((120, 130)), 3) > 0.5
        m[rng.random(m.shape) < 0.01] = True
        ref = ndi.distance_transform_edt(m).astype(np.float32) * np.float32(0.4)
        assert np.array_equal(distance_to_background_um(m, 0.4), ref)
        assert np.array_equal(fill_holes(m), ndi.binary_fill_holes(m))
        for r in (1, 2):
            assert np.array_equal(open_disk(m, r), ndi.binary_opening(m, structure=disk_fp(r)))


def test_fast_medians_background_and_noise_equal_numpy():
    from sepher.imaging.measure import estimate_background, label_medians, noise_sd

    rng = np.random.default_rng(9)
    labels = rng.integers(0, 6, (80, 90))
    for values in (
        rng.integers(0, 5000, labels.shape).astype(np.uint16),
        rng.normal(0, 100, labels.shape).astype(np.float32),
    ):
        med = label_medians(values, labels, 6)
        ref = [np.median(values[labels == k].astype(float)) for k in range(1, 6)]
        np.testing.assert_array_equal(med[:5], ref)  # label 6 is absent
        assert np.isnan(med[5])
        as_float = values.astype(np.float32)
        assert estimate_background(values, labels) == estimate_background(as_float, labels)
        confluent = np.ones_like(labels)
        lvl, sd = estimate_background(values, confluent)
        assert lvl == pytest.approx(np.percentile(as_float, 2), rel=1e-6)
        img = as_float.astype(np.float64)
        kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], float)
        conv = sum(
            kernel[i, j] * img[i : img.shape[0] - 2 + i, j : img.shape[1] - 2 + j]
            for i in range(3)
            for j in range(3)
        )
        expected = np.sqrt(np.pi / 2) * np.abs(conv).sum() / (6 * 78 * 88)
        assert sd == pytest.approx(expected, rel=1e-6)
        assert noise_sd(values) == sd
