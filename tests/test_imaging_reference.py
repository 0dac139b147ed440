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
