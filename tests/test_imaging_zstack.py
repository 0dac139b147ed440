"""Z-stacks: reading (OME-TIFF, ImageJ, ND2), per-cell mid-nuclear plane, orthogonal views,
nuclear segmentation per plane and in 3-D against the real cells3d stack's 3-D labels.

Reference files (origins, licences, SHA-256: tests/data/README.md):
- images/cells3d_nuclei_zstack.tif (+ _labels): scikit-image cells3d nuclei channel,
  60 x 256 x 256 uint16, voxel 0.29 x 0.26 x 0.26 um, 20 labelled nuclei;
- microscopy/cluster.nd2: Nikon ND2, T3 Z10 C2 31 x 38, voxel 0.168 x 0.168 x 0.5 um.
"""

import numpy as np
import pytest
import tifffile
from scipy import ndimage as ndi

from sepher.errors import InputError
from sepher.imaging.io import read_image, read_nd2, read_stack
from sepher.imaging.metrics import iou_pairs, match_instances
from sepher.imaging.zstack import (
    focus_plane,
    mid_nuclear_composite,
    mid_nuclear_field,
    orthogonal_extent,
    orthogonal_view,
    per_cell_planes,
    segment_nuclei_3d,
    segment_nuclei_per_plane,
    yz_view,
)

STACK = "images/cells3d_nuclei_zstack.tif"
LABELS = "images/cells3d_nuclei_zstack_labels.tif"
ND2 = "microscopy/cluster.nd2"
VOXEL_UM = (0.29, 0.26, 0.26)  # z, y, x (not recorded in the file)


@pytest.fixture(scope="module")
def cells3d(reference_data):
    # a plain multi-page TIFF: its axes and voxel size are given, not read
    stack, px, dz = read_stack(
        reference_data(STACK), pixel_size_um=VOXEL_UM[1], z_step_um=VOXEL_UM[0], axes="ZYX"
    )
    labels = tifffile.imread(reference_data(LABELS))
    return stack[0], labels, px, dz


def _true_mid_plane(labels):
    """Plane of largest labelled nuclear area."""
    return int(np.argmax((labels > 0).sum(axis=(1, 2))))


def test_cells3d_reads_as_a_stack(cells3d):
    nuclear, labels, px, dz = cells3d
    assert nuclear.shape == (60, 256, 256) and nuclear.dtype == np.uint16
    assert (px, dz) == (0.26, 0.29)
    assert np.unique(labels[labels > 0]).size == 20
    assert _true_mid_plane(labels) == 35


def test_cells3d_focus_plane_is_the_mid_nuclear_plane(cells3d):
    nuclear, labels, _, _ = cells3d
    # measured: Laplacian 33, maximal signal 34; labels' largest area at 35.
    # Tolerance 3 planes (0.87 um), a fifteenth of the nuclei's ~13 um height.
    assert abs(focus_plane(nuclear) - 35) <= 3
    assert abs(focus_plane(nuclear, method="signal") - 35) <= 3


def test_cells3d_per_plane_segmentation_of_the_mid_plane(cells3d):
    nuclear, labels, px, _ = cells3d
    z = _true_mid_plane(labels)
    pred = segment_nuclei_per_plane(nuclear, px, planes=[z])
    assert not pred[:z].any() and not pred[z + 1 :].any()
    score = match_instances(pred[z], labels[z], iou=0.5)
    print(f"cells3d mid-plane 2-D F1@0.5 = {score['f1']:.3f} {score}")
    # measured F1 0.818 (18 of 20 matched; 4 of the 6 unmatched objects are
    # nuclei cut by the image border that the labels leave out), mean IoU 0.919
    assert score["f1"] >= 0.75
    assert score["mean_iou"] >= 0.85


def test_cells3d_3d_segmentation(cells3d):
    nuclear, labels, px, dz = cells3d
    pred = segment_nuclei_3d(nuclear, (dz, px, px))
    assert pred.shape == labels.shape
    score = match_instances(pred, labels, iou=0.5)  # IoU of 3-D objects (voxels)
    print(f"cells3d 3-D F1@0.5 = {score['f1']:.3f} {score}")
    # measured F1 0.905 (19 of 20 matched, 22 objects), mean matched IoU 0.921
    assert score["f1"] >= 0.85
    assert score["mean_iou"] >= 0.85


def test_cells3d_per_cell_planes_find_each_nucleus_centre(cells3d):
    nuclear, labels, px, _ = cells3d
    ids = np.unique(labels[labels > 0])
    centre_z = dict(
        zip(ids, np.array(ndi.center_of_mass(labels > 0, labels, ids))[:, 0], strict=True)
    )
    # (1) on the true 2-D labels of the mid plane
    nuclei_2d = labels[_true_mid_plane(labels)]
    planes = per_cell_planes(nuclear, nuclei_2d)
    assert planes[0] == -1
    err = np.array([planes[k] - centre_z[k] for k in np.unique(nuclei_2d[nuclei_2d > 0])])
    print(f"per-cell plane error, true 2-D labels: median |e| {np.median(np.abs(err)):.2f}")
    # measured: median |error| 0.46 planes, max 2.9 (20 nuclei)
    assert err.size == 20
    assert np.median(np.abs(err)) <= 1.0 and np.abs(err).max() <= 3.5
    # (2) on the 2-D segmentation of the global focus plane, matched at IoU 0.5
    z0 = focus_plane(nuclear)
    seg = segment_nuclei_per_plane(nuclear, px, planes=[z0])[z0]
    planes = per_cell_planes(nuclear, seg)
    pred_ids, true_ids, iou = iou_pairs(seg, labels[z0])
    ok = iou >= 0.5
    err = np.array(
        [planes[p] - centre_z[t] for p, t in zip(pred_ids[ok], true_ids[ok], strict=True)]
    )
    print(f"per-cell plane error, segmented: median |e| {np.median(np.abs(err)):.2f}")
    # measured: 18 matched nuclei, median |error| 0.49 planes, max 1.5
    assert err.size >= 17
    assert np.median(np.abs(err)) <= 1.0 and np.abs(err).max() <= 3.0


# ---------------------------------------------------------------- ND2
def test_nd2_read_with_its_metadata(reference_data):
    data, axes, px, dz, names = read_nd2(reference_data(ND2))
    assert axes == "TZCYX" and data.shape == (3, 10, 2, 31, 38) and data.dtype == np.uint16
    assert px == pytest.approx(0.16780898, rel=1e-6)
    assert dz == 0.5
    assert names == ["5-FAM/pH 9.0", "FM 4-64/2% CHAPS"]
    # pixel sums as read by the nd2 package 0.12.0 (`nd2.ND2File(path).asarray()`),
    # which gives the identical (3, 10, 2, 31, 38) array
    assert int(data.sum(dtype=np.int64)) == 4832891
    assert int(data[1, 4, 1].sum(dtype=np.int64)) == 129772


def test_nd2_time_series_refused_by_the_2d_path_and_selected_by_t(reference_data):
    path = reference_data(ND2)
    with pytest.raises(InputError, match="time series of 3 time points"):
        read_image(path)
    with pytest.raises(InputError, match="t=<0-based index>"):
        read_stack(path)
    stack, px, dz = read_stack(path, t=1)
    assert stack.shape == (2, 10, 31, 38)
    assert px == pytest.approx(0.1678, abs=1e-4) and dz == 0.5
    assert np.array_equal(stack, read_nd2(path)[0][1].transpose(1, 0, 2, 3))
    with pytest.raises(InputError, match="time point index 0..2"):
        read_stack(path, t=3)
    # the membrane dye peaks a plane or two above the 5-FAM signal
    assert focus_plane(stack[1], method="signal") >= focus_plane(stack[0], method="signal")


# ---------------------------------------------------------------- TIFF stacks
def test_ome_and_imagej_stacks_carry_their_z_step(tmp_path):
    data = np.random.default_rng(0).integers(1, 500, (2, 5, 16, 18), dtype=np.uint16)
    ome = tmp_path / "s.ome.tif"
    tifffile.imwrite(
        ome,
        data,
        metadata={"axes": "CZYX", "PhysicalSizeX": 0.2, "PhysicalSizeY": 0.2, "PhysicalSizeZ": 0.8},
    )
    stack, px, dz = read_stack(ome)
    assert stack.shape == (2, 5, 16, 18) and np.array_equal(stack, data)
    assert (px, dz) == (pytest.approx(0.2), pytest.approx(0.8))
    with pytest.raises(InputError, match="read_stack"):
        read_image(ome)
    ij = tmp_path / "s_ij.tif"
    tifffile.imwrite(
        ij,
        np.moveaxis(data, 0, 1),  # ImageJ order Z, C, Y, X
        imagej=True,
        resolution=(1 / 0.3, 1 / 0.3),
        metadata={"axes": "ZCYX", "spacing": 0.45, "unit": "um"},
    )
    stack, px, dz = read_stack(ij)
    assert np.array_equal(stack, data)
    assert (px, dz) == (pytest.approx(0.3), pytest.approx(0.45))
    stack, _, _ = read_stack(ij, channels=[1])
    assert np.array_equal(stack[0], data[1])


def test_stack_errors_and_two_d_files(tmp_path):
    plain = tmp_path / "plain.tif"
    # untyped pages: read as channels unless axes are given
    tifffile.imwrite(plain, np.ones((4, 8, 8), np.uint16), photometric="minisblack")
    stack, px, dz = read_stack(plain, pixel_size_um=0.5)
    assert stack.shape == (4, 1, 8, 8) and dz is None and px == 0.5
    with pytest.raises(InputError, match="z step"):
        read_stack(plain, pixel_size_um=0.5, axes="ZYX")
    stack, _, dz = read_stack(plain, pixel_size_um=0.5, z_step_um=0.3, axes="ZYX")
    assert stack.shape == (1, 4, 8, 8) and dz == 0.3
    # the per-cell mid-nuclear measurement needs no z step
    assert read_stack(plain, 0.5, axes="ZYX", require_z_step=False)[2] is None
    with tifffile.TiffFile(plain) as tif:  # an already opened file, as read_image takes
        assert read_stack(plain, 0.5, z_step_um=0.3, axes="ZYX", tif=tif)[0].shape == (1, 4, 8, 8)
    with pytest.raises(InputError, match="one letter per dimension"):
        read_stack(plain, pixel_size_um=0.5, axes="YX")
    series = tmp_path / "t.ome.tif"
    tifffile.imwrite(
        series,
        np.ones((3, 4, 8, 8), np.uint16),
        metadata={"axes": "TZYX", "PhysicalSizeX": 0.5, "PhysicalSizeZ": 1.0},
    )
    with pytest.raises(InputError, match="time series of 3 time points") as info:
        read_image(series)
    assert str(series) in str(info.value)
    with pytest.raises(InputError, match="a single time point"):
        read_stack(series)
    assert read_stack(series, t=2)[0].shape == (1, 4, 8, 8)


# ---------------------------------------------------------------- synthetic cell
def _cell_with_apical_cap():
    """One cell as a cylinder (radius 14 px, planes 2-19) with a lateral membrane
    shell and an apical membrane cap (planes 18-19) over an ellipsoidal nucleus
    centred on plane 9; 3-D Gaussian blur with a wider z spread, as a confocal PSF."""
    nz, ny, nx = 24, 48, 48
    z, y, x = np.mgrid[:nz, :ny, :nx].astype(float)
    r = np.hypot(y - 24, x - 24)
    inside = (r <= 14) & (z >= 2) & (z <= 19)
    nucleus = ((r / 7) ** 2 + ((z - 9) / 4) ** 2) <= 1
    membrane = inside & ((r >= 12.5) | (z >= 18))
    dapi = ndi.gaussian_filter(np.where(nucleus, 1000.0, 0.0), (1.5, 1.0, 1.0)) + 50
    her2 = ndi.gaussian_filter(np.where(membrane, 800.0, 0.0), (1.5, 1.0, 1.0)) + 50
    stack = np.stack([dapi, her2]).astype(np.float32)
    nuclei_2d = (r[0] <= 7).astype(np.int32)
    cells_2d = (r[0] <= 14).astype(np.int32)
    return stack, nuclei_2d, cells_2d


def _nuclear_fraction(her2, nuclei, cells):
    net = her2 - 50.0
    return net[nuclei > 0].sum() / net[cells > 0].sum()


def test_mid_nuclear_composite_drops_the_apical_membrane_over_the_nucleus():
    stack, nuclei, cells = _cell_with_apical_cap()
    planes = per_cell_planes(stack[0], nuclei)
    assert planes[1] == 9
    composite, used = mid_nuclear_composite(
        stack, nuclei, cells, nuclear_channel=0, global_plane=focus_plane(stack[0])
    )
    assert np.array_equal(used, planes)
    assert np.array_equal(composite, stack[:, 9])  # the one cell fills its plane here
    projected = _nuclear_fraction(stack[1].max(axis=0), nuclei, cells)
    mid = _nuclear_fraction(composite[1], nuclei, cells)
    print(f"nuclear HER2 fraction: max projection {projected:.3f}, mid-nuclear {mid:.4f}")
    # the cap puts membrane over the nucleus in the projection (fraction ~0.24);
    # the mid-nuclear plane sees only the lateral ring (fraction ~0)
    assert projected > 0.15
    assert mid < 0.02 and mid < projected / 10


def test_composite_takes_each_cell_from_its_own_plane():
    stack = np.zeros((1, 6, 4, 8), np.uint16)
    for z in range(6):
        stack[0, z] = z + 1  # value = plane + 1
    nuclei = np.zeros((4, 8), np.int32)
    nuclei[1, 1], nuclei[1, 5] = 1, 2
    cells = np.zeros((4, 8), np.int32)
    cells[:, :3], cells[:, 4:7] = 1, 2
    planes = np.array([-1, 4, 1])
    composite, _ = mid_nuclear_composite(stack, nuclei, cells, planes=planes, global_plane=2)
    assert composite.dtype == np.uint16
    expected = np.full((4, 8), 3)  # background: global plane 2
    expected[:, :3], expected[:, 4:7] = 5, 2
    assert np.array_equal(composite[0], expected)


def test_orthogonal_views_and_extent():
    stack, _, _ = _cell_with_apical_cap()
    xz = orthogonal_view(stack, 24, 4, 44)
    assert xz.shape == (2, 24, 40)
    assert np.array_equal(xz, stack[:, :, 24, 4:44])
    # the section shows the nucleus at plane 9 and the apical cap at the top
    assert int(np.argmax(xz[0, :, 20])) == 9
    assert int(np.argmax(xz[1, :, 20])) in (18, 19)
    thick = orthogonal_view(stack, 24, 4, 44, half_width=2)
    assert np.allclose(thick, stack[:, :, 22:27, 4:44].mean(axis=2))
    yz = yz_view(stack, 30, 0, 48)
    assert yz.shape == (2, 24, 48) and np.array_equal(yz, stack[:, :, :, 30])
    assert orthogonal_extent(24, 4, 44, 0.25, 0.5) == (1.0, 11.0, -0.25, 11.75)


def test_mid_nuclear_field_on_cells3d_planes(cells3d):
    nuclear, _, px, _ = cells3d
    stack = nuclear[np.newaxis, 25:46]  # 21 planes around the middle: quick
    image, info = mid_nuclear_field(stack, 0, px)
    assert image.shape == (1, 256, 256) and image.dtype == np.uint16
    assert info["n_planes"] == 21 and 0 <= info["focus_plane"] < 21
    used = info["planes"][info["planes"] >= 0]
    assert used.size >= 15 and used.min() >= 0 and used.max() < 21
    single, info1 = mid_nuclear_field(stack[:, 10:11], 0, px)
    assert np.array_equal(single, stack[:, 10]) and info1["n_planes"] == 1
