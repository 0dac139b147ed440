"""IF segmentation against real public images (origins and licences: tests/data/README.md)."""

import numpy as np
import pytest
import tifffile
from scipy import ndimage as ndi
from skimage import filters

from sepher.imaging import (
    match_instances,
    measure_cells,
    read_image,
    segment_cells,
    segment_nuclei,
)

DSB_IMG = "images/dsb2018_nuclei_img.tif"
DSB_LABELS = "images/dsb2018_nuclei_labels.tif"
CELLS3D = "images/cells3d_slice28_membrane_nuclei.tif"


def test_dsb2018_nuclei_f1_at_iou_05(reference_data):
    # pixel size not recorded; README: treat as 0.5 um (nuclei 12-25 px across)
    image, px = read_image(reference_data(DSB_IMG), pixel_size_um=0.5)
    truth = tifffile.imread(reference_data(DSB_LABELS))
    assert np.unique(truth[truth > 0]).size == 125  # distinct hand-drawn nuclei
    pred = segment_nuclei(image[0], px)
    score = match_instances(pred, truth, iou=0.5)
    print(f"DSB2018 F1@0.5 = {score['f1']:.3f}  {score}")
    assert score["f1"] >= 0.85
    assert score["mean_iou"] >= 0.75


@pytest.fixture(scope="module")
def cells3d(reference_data):
    image, px = read_image(reference_data(CELLS3D), pixel_size_um=0.26)
    membrane, nuclear = image[0].astype(np.float32), image[1]
    nuclei = segment_nuclei(nuclear, px)
    cells = segment_cells(nuclei, membrane, px)
    return membrane, nuclear, nuclei, cells, px


def test_cells3d_one_cell_per_nucleus(cells3d):
    membrane, _, nuclei, cells, _ = cells3d
    # ~20 nuclei are visible, several cut by the image border
    assert 15 <= nuclei.max() <= 30
    ids = np.arange(1, nuclei.max() + 1)
    assert set(np.unique(cells[cells > 0])) == set(ids)
    # every nucleus lies wholly inside the cell carrying its label
    assert np.all(cells[nuclei > 0] == nuclei[nuclei > 0])
    # each cell is one connected region
    for k in ids:
        assert ndi.label(cells == k)[1] == 1


def test_cells3d_boundaries_follow_membrane(cells3d):
    membrane, _, _, cells, px = cells3d
    lo, hi = ndi.minimum_filter(cells, 3), ndi.maximum_filter(cells, 3)
    between_cells = (cells > 0) & (lo != hi) & (lo > 0)
    inside = (cells > 0) & (lo == hi)
    ratio = membrane[between_cells].mean() / membrane[inside].mean()
    smooth = ndi.gaussian_filter(membrane, 1.0)
    ridge = smooth > filters.threshold_otsu(smooth)
    dist_um = ndi.distance_transform_edt(~ridge) * px
    near = np.mean(dist_um[between_cells] <= 1.0)
    print(
        f"cells3d boundary/inside membrane ratio = {ratio:.2f}; within 1 um of ridge = {near:.2f}"
    )
    assert ratio > 1.5
    assert near > 0.7


def test_cells3d_membrane_band_is_brighter_than_cytoplasm(cells3d):
    membrane, nuclear, nuclei, cells, px = cells3d
    df = measure_cells({"her2": membrane, "nuclear": nuclear}, nuclei, cells, px)
    assert len(df) == nuclei.max()
    ok = df["her2_mean_membrane"] > df["her2_mean_cytoplasm"]
    assert ok.mean() >= 0.8
    # the nuclear stain is where the nuclei are
    assert (df["nuclear_mean_nucleus"] > 1.5 * df["nuclear_mean_membrane"]).mean() >= 0.9


def _weak_her2(membrane, level, snr, seed=15):
    """The membrane channel as a dim, noisy 'HER2' (TP-R-like): its signal above
    the background scaled to a fifth, plus Gaussian noise with SD = the 95th
    percentile of the scaled signal / ``snr``."""
    rng = np.random.default_rng(seed)
    signal = 0.2 * (membrane - level)
    sd = np.percentile(signal, 95) / snr
    return (level + signal + rng.normal(0, sd, membrane.shape)).astype(np.float32)


def test_cells3d_her2_vs_membrane_marker_segmentation(cells3d):
    """Issue 15: cells outlined on a membrane marker (a) against cells outlined
    on HER2 itself, with the workflow's settings: (b) the same channel taken
    as HER2 (no marker) takes the same path and must give the same cells;
    (b') a weak, noisy HER2 (signal at a fifth, SNR 4 and 3 at the membrane)
    still finds every cell, with matched IoU 0.97-0.98 (measured with these
    seeds: SNR 4: F1 1.0, mean IoU 0.981; SNR 3: F1 1.0, mean IoU 0.981)."""
    from sepher.imaging.measure import estimate_background
    from sepher.imaging.metrics import compare_segmentations

    membrane, _, nuclei, _, px = cells3d
    kw = {
        "method": "watershed",
        "max_radius_um": 7.0,
        "smoothing_sigma_um": 0.5,
        "foreground": "threshold",
        "foreground_k": 5.0,
        "edge_fraction": 0.5,
    }
    marker = segment_cells(nuclei, membrane, px, **kw)
    same = compare_segmentations(marker, segment_cells(nuclei, membrane.copy(), px, **kw))
    assert same["f1"] == 1.0 and same["mean_iou"] == 1.0
    level = estimate_background(membrane, marker)[0]
    for snr, expected_iou in ((4, 0.981), (3, 0.981)):
        weak = segment_cells(nuclei, _weak_her2(membrane, level, snr), px, **kw)
        score = compare_segmentations(marker, weak)
        print(f"cells3d marker vs weak HER2 (SNR {snr}): {score}")
        assert score["n_a"] == 22
        assert score["f1"] >= 0.95
        assert score["mean_iou"] == pytest.approx(expected_iou, abs=0.01)


def test_cells3d_membrane_as_her2_reads_complete(cells3d):
    """A membrane marker taken as HER2 stains the whole perimeter: completeness
    (sector test against the cell's cytoplasm, on the marker's outlines) has
    median 1.0 and mean 0.977 over the 22 cells (measured); dimmed to a fifth
    with noise at SNR 4 (seed 15) a dim stretch of membrane is no longer
    detected in some sectors: mean 0.802, median 0.864 (measured)."""
    from sepher.imaging.measure import estimate_background

    membrane, nuclear, nuclei, cells, px = cells3d
    level = estimate_background(membrane, cells)[0]
    expected = ((1.0, 0.977), (0.864, 0.802))  # (median, mean), measured
    for her2, (median, mean) in zip(
        (membrane, _weak_her2(membrane, level, 4)), expected, strict=True
    ):
        df = measure_cells({"her2": her2}, nuclei, cells, px, spill_um=1.0)
        completeness = df["membrane_completeness"]
        print(completeness.describe())
        assert completeness.notna().all()
        assert completeness.median() == pytest.approx(median, abs=0.03)
        assert completeness.mean() == pytest.approx(mean, abs=0.03)
