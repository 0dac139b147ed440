"""Simulated demo immunofluorescence fields: regeneration, format, truth, size,
and a rendering model that does not flatter the analysis (3-D cells, widefield
PSF with haze, realistic SNR, incomplete membranes, z-stacks)."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
from scipy import ndimage as ndi

from sepher.simulate.if_images import (
    SHEET_COLUMNS,
    TRUTH_COLUMNS,
    default_if_design,
    default_widefield_parameters,
    render_field,
    render_widefield_field,
    widefield_image,
    write_demo_if_images,
)

DEMO = Path(__file__).resolve().parents[1] / "resources" / "demo"
PIXEL_SIZE_UM = 0.65


def _our_files(root: Path) -> list[str]:
    files = ["images_if.tsv", "truth/if_truth.csv", "truth/if_truth.json"]
    for sub in ("images/if", "truth/if_labels"):
        files += sorted(str(p.relative_to(root)) for p in (root / sub).iterdir())
    return files


def _small_design(*keys, fields=1, zstack=None):
    """The demo design reduced to the conditions ``keys`` (line, condition),
    one replicate of ``fields`` fields, no bad field, optionally one z-stack."""
    design = default_if_design()
    design["conditions"] = [
        c for c in design["conditions"] if (c["cell_line"], c["condition"]) in keys
    ]
    design.update(replicates=1, fields=fields, bad_fields=[])
    design["zstack_fields"] = (
        [] if zstack is None else [{"cell_line": zstack[0], "condition": zstack[1], "replicate": 1}]
    )
    return design


@pytest.fixture(scope="module")
def sheet():
    return pd.read_csv(DEMO / "images_if.tsv", sep="\t", keep_default_na=False)


@pytest.fixture(scope="module")
def truth_cells():
    cells = pd.read_csv(DEMO / "truth" / "if_truth.csv", keep_default_na=False)
    assert cells["touches_border"].dtype == bool
    assert cells["zstack"].dtype == bool
    return cells


@pytest.fixture(scope="module")
def truth():
    return json.loads((DEMO / "truth" / "if_truth.json").read_text(encoding="utf-8"))


def _labels(image_id, kind):
    return tifffile.imread(DEMO / "truth" / "if_labels" / f"{image_id}_{kind}.tif").astype(int)


def _edge_ring(cells):
    """Cell pixels with a 4-neighbour in another cell or the background (plain numpy)."""
    pad = np.pad(cells, 1, mode="edge")
    ring = np.zeros(cells.shape, dtype=bool)
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        ring |= pad[dy : dy + cells.shape[0], dx : dx + cells.shape[1]] != cells
    return ring & (cells > 0)


def test_small_design_reproduces_the_demo_files(tmp_path):
    """Same seed -> byte-identical files: a one-condition design renders the
    committed demo's own fields (every field's generator depends only on the
    seed and its image id), z-stack included."""
    design = _small_design(("SKBR3", "TP-R"), fields=2, zstack=("SKBR3", "TP-R"))
    write_demo_if_images(tmp_path, design=design)
    files = _our_files(tmp_path)
    assert [f for f in files if f.startswith("images/if/")] == [
        f"images/if/IF_SKBR3_TPR_r1_f{k}.ome.tif" for k in (1, 2, 3)
    ]
    for name in files:
        if name.startswith(("images/if/", "truth/if_labels/")):
            assert (tmp_path / name).read_bytes() == (DEMO / name).read_bytes(), name


def test_small_design_is_byte_identical(tmp_path):
    design = _small_design(("BT474", "TP-R"), fields=1, zstack=("BT474", "TP-R"))
    params = {"shape_px": (80, 80)}
    first, second, other = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for out in (first, second):
        write_demo_if_images(out, design=design, params=params)
    write_demo_if_images(other, seed=7, design=design, params=params)
    files = _our_files(first)
    assert files == _our_files(second) and len(files) == 3 + 2 + 6
    for name in files:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    name = "images/if/IF_BT474_TPR_r1_f1.ome.tif"
    assert (other / name).read_bytes() != (first / name).read_bytes()


def test_zstacks_can_be_left_out(tmp_path):
    design = _small_design(("BT474", "parental"), zstack=("BT474", "parental"))
    params = {"shape_px": (96, 96)}
    truth = write_demo_if_images(tmp_path, zstacks=False, design=design, params=params)
    assert truth["zstack_fields"] == []
    assert sorted(p.name for p in (tmp_path / "images" / "if").iterdir()) == [
        "IF_BT474_parental_r1_f1.ome.tif"
    ]
    sheet = pd.read_csv(tmp_path / "images_if.tsv", sep="\t")
    assert list(sheet["image_id"]) == ["IF_BT474_parental_r1_f1"]


def test_sheet_follows_spec(sheet, truth):
    assert tuple(sheet.columns) == SHEET_COLUMNS
    assert sheet["image_id"].is_unique
    assert set(sheet["assay"]) == {"IF"}
    assert set(sheet["cell_line"]) == {"SKBR3", "BT474"}
    assert set(sheet["condition"]) == {"parental", "T-R", "TP-R", "T-R>T", "T-R>P", "T-R>T+P"}
    # 3 replicates x 2 good fields per line and condition, + 4 bad fields + 4 z-stacks
    assert len(sheet) == 2 * 6 * 3 * 2 + 4 + 4
    counts = sheet.groupby(["cell_line", "condition", "replicate"]).size()
    assert len(counts) == 2 * 6 * 3
    assert set(counts) <= {2, 3} and (counts == 3).sum() == 8
    assert (sheet["pixel_size_um"] == PIXEL_SIZE_UM).all()
    # a membrane marker in every field of both lines
    assert set(sheet["membrane_channel"]) == {2}
    for path in sheet["path"]:
        assert (DEMO / path).is_file()
    stacks = {z["image_id"] for z in truth["zstack_fields"]}
    assert stacks == {
        f"IF_{line}_{slug}_r1_f3" for line in ("SKBR3", "BT474") for slug in ("parental", "TPR")
    }


def _pixels(tif):
    return next(el for el in ET.fromstring(tif.ome_metadata).iter() if el.tag.endswith("Pixels"))


def test_images_readable_with_pixel_size(sheet, truth):
    stacks = {z["image_id"] for z in truth["zstack_fields"]}
    for row in sheet.itertuples():
        with tifffile.TiffFile(DEMO / row.path) as tif:
            assert tif.is_ome
            series = tif.series[0]
            data = series.asarray()
            assert data.dtype == np.uint16
            if row.image_id in stacks:
                assert series.axes == "CZYX"
                assert data.shape == (3, 9, 256, 256)
            else:
                assert series.axes == "CYX"
                assert data.shape == (3, 256, 256)
            page = tif.pages[0]
            assert page.compression == tifffile.COMPRESSION.ADOBE_DEFLATE
            assert "DateTime" not in page.tags
            num, den = page.tags["XResolution"].value
            assert page.tags["ResolutionUnit"].value == tifffile.RESUNIT.CENTIMETER
            assert 1e4 * den / num == pytest.approx(PIXEL_SIZE_UM, rel=1e-6)
            pixels = _pixels(tif)
            assert float(pixels.get("PhysicalSizeX")) == pytest.approx(PIXEL_SIZE_UM)
            assert float(pixels.get("PhysicalSizeY")) == pytest.approx(PIXEL_SIZE_UM)
            assert pixels.get("PhysicalSizeXUnit") == "µm"
            names = [el.get("Name") for el in pixels if el.tag.endswith("Channel")]
            assert names == ["HER2", "DAPI", "membrane"]


def test_zstacks_have_z_and_physical_size_z(truth, truth_cells):
    assert len(truth["zstack_fields"]) == 4
    for stack in truth["zstack_fields"]:
        image_id = stack["image_id"]
        with tifffile.TiffFile(DEMO / "images" / "if" / f"{image_id}.ome.tif") as tif:
            pixels = _pixels(tif)
            assert int(pixels.get("SizeZ")) == 9 == stack["planes"]
            assert float(pixels.get("PhysicalSizeZ")) == pytest.approx(0.5)
            assert pixels.get("PhysicalSizeZUnit") == "µm"
            data = tif.series[0].asarray()
        # 9 planes 0.5 um apart, centred on the focal plane; the planes differ
        assert np.diff(stack["focus_z_um"]) == pytest.approx(np.full(8, 0.5))
        assert not np.array_equal(data[:, 0], data[:, -1])
        cells = truth_cells[truth_cells["image_id"] == image_id]
        assert cells["zstack"].all() and len(cells) > 20
        # 3-D truth labels at the recorded planes; their nuclei project into the 2-D labels
        nuclei3 = _labels(image_id, "nuclei_zyx")
        cells3 = _labels(image_id, "cells_zyx")
        assert nuclei3.shape == cells3.shape == (9, 256, 256)
        nuclei2 = _labels(image_id, "nuclei")
        inside = nuclei3 > 0
        assert np.array_equal(nuclei3[inside], np.broadcast_to(nuclei2, nuclei3.shape)[inside])
        assert np.array_equal(cells3[inside], nuclei3[inside])
        # the stack spans the mid-nuclear planes of most interphase cells
        inter = cells[cells["cell_kind"] == "interphase"]
        span = (min(stack["focus_z_um"]), max(stack["focus_z_um"]))
        assert inter["nucleus_z_um"].between(*span).mean() > 0.8


def test_condition_truth_is_mean_of_cell_truth(truth_cells, truth):
    assert tuple(truth_cells.columns) == TRUTH_COLUMNS
    kept = truth_cells[
        (truth_cells["bad_field"] == "")
        & ~truth_cells["zstack"]
        & ~truth_cells["touches_border"]
        & (truth_cells["cell_kind"] == "interphase")
    ]
    assert len(truth["conditions"]) == 12
    for cond in truth["conditions"]:
        sel = kept[
            (kept["cell_line"] == cond["cell_line"]) & (kept["condition"] == cond["condition"])
        ]
        assert cond["n_cells"] == len(sel) > 80
        assert cond["n_images"] == 6
        for value in ("membrane_her2", "membrane_completeness", "nuclear_fraction_cell"):
            # the CSV keeps 6 significant digits
            assert cond[f"{value}_mean"] == pytest.approx(sel[value].mean(), rel=1e-5)


def test_truth_follows_the_study_design(truth):
    cond = {(c["cell_line"], c["condition"]): c for c in truth["conditions"]}
    for line in ("SKBR3", "BT474"):
        par, tr, tpr = (cond[(line, c)] for c in ("parental", "T-R", "TP-R"))
        # TP-R: markedly less membrane HER2 (30-50 % of T-R), more in the nucleus
        assert 0.3 <= tpr["membrane_her2_mean"] / tr["membrane_her2_mean"] <= 0.5
        assert tpr["nuclear_fraction_cell_mean"] > 0.3 > 0.12 > tr["nuclear_fraction_cell_mean"]
        assert par["membrane_her2_mean"] > tr["membrane_her2_mean"]
        # sequential exposure: membrane HER2 falls with pertuzumab exposure
        seq = [cond[(line, c)]["membrane_her2_mean"] for c in ("T-R>T", "T-R>P", "T-R>T+P")]
        assert seq[0] > seq[1] > seq[2]
        assert seq[1] < 0.8 * tr["membrane_her2_mean"]


def test_membrane_completeness_truth_differs_parental_vs_tpr(truth_cells):
    inter = truth_cells[truth_cells["cell_kind"] == "interphase"]
    for line in ("SKBR3", "BT474"):
        cov = {
            c: inter.loc[
                (inter["cell_line"] == line) & (inter["condition"] == c), "membrane_completeness"
            ]
            for c in ("parental", "T-R", "TP-R")
        }
        assert ((cov["parental"] > 0) & (cov["parental"] <= 1)).all()
        # parental and T-R mostly 0.8-1; TP-R lower (Beta, mean ~0.55) and more variable
        assert cov["parental"].between(0.8, 1.0).mean() > 0.85
        assert cov["T-R"].between(0.8, 1.0).mean() > 0.6
        assert 0.45 < cov["TP-R"].mean() < 0.65
        assert cov["TP-R"].std() > 2.5 * cov["parental"].std()
        assert cov["TP-R"].quantile(0.75) < cov["parental"].quantile(0.05)


def test_nuclear_fraction_truths(truth_cells, truth):
    """The apical membrane projects over the nucleus: the ideal 2-D projection
    inflates the nuclear fraction; the mid-nuclear plane excludes the apical
    and basal sheets."""
    inter = truth_cells[(truth_cells["cell_kind"] == "interphase") & ~truth_cells["touches_border"]]
    assert (inter["membrane_her2_over_nucleus"] > 0).all()
    for cond in truth["conditions"]:
        assert cond["nuclear_fraction_projected_mean"] > cond["nuclear_fraction_cell_mean"]
    for column in ("nuclear_fraction_cell", "nuclear_fraction_midplane"):
        assert inter[column].between(0, 1).all()
    # the fractions order cells alike
    assert inter[["nuclear_fraction_cell", "nuclear_fraction_midplane"]].corr().iloc[0, 1] > 0.7
    # whole-cell HER2 adds up
    total = inter[["membrane_her2_total", "cytoplasm_her2", "puncta_her2"]].sum(axis=1)
    nucleus = inter["nucleus_her2"]
    fraction = nucleus / (nucleus + total)
    assert np.abs(fraction - inter["nuclear_fraction_cell"]).median() < 0.02


def test_cell_kinds(truth_cells, sheet):
    good = truth_cells[(truth_cells["bad_field"] == "") & ~truth_cells["touches_border"]]
    kinds = good["cell_kind"].value_counts(normalize=True)
    assert set(kinds.index) == {"interphase", "mitotic", "dead"}
    assert 0.01 < kinds["mitotic"] < 0.1 and 0.01 < kinds["dead"] < 0.1
    by_kind = good.groupby("cell_kind")
    # dead cells: small, little HER2; mitotic cells: round and tall
    assert (
        by_kind["cell_area_um2"].median()["dead"]
        < 0.5 * (by_kind["cell_area_um2"].median()["interphase"])
    )
    total = good["membrane_her2_total"] + good["nucleus_her2"]
    assert total[good["cell_kind"] == "dead"].median() < 0.3 * (
        total[good["cell_kind"] == "interphase"].median()
    )
    assert (
        by_kind["cell_height_um"].median()["mitotic"]
        > 1.5 * (by_kind["cell_height_um"].median()["interphase"])
    )
    # condensed chromatin: mitotic and dead nuclei are brighter in DAPI than interphase ones
    paths = dict(zip(sheet["image_id"], sheet["path"], strict=True))
    ratios = []
    for image_id in good.loc[good["cell_kind"] == "mitotic", "image_id"].unique()[:6]:
        dapi = tifffile.imread(DEMO / paths[image_id])[1].astype(float)
        nuclei = _labels(image_id, "nuclei")
        cells = good[good["image_id"] == image_id].set_index("cell_id")
        means = pd.Series(ndi.mean(dapi, nuclei, cells.index), index=cells.index)
        ratios.append(
            means[cells["cell_kind"] == "mitotic"].mean()
            / means[cells["cell_kind"] == "interphase"].median()
        )
    assert np.median(ratios) > 1.5


def test_cells_per_field_and_sizes(truth_cells):
    good = truth_cells[(truth_cells["bad_field"] == "") & ~truth_cells["zstack"]]
    per_field = good.groupby("image_id").size()
    assert len(per_field) == 72
    assert per_field.between(20, 50).all()
    inter = good[~good["touches_border"] & (good["cell_kind"] == "interphase")]
    # nuclei 8-14 um equivalent diameter: area pi/4 d^2 = 50-154 um^2
    area = inter["nucleus_area_um2"]
    assert area.between(35, 175).all()
    assert (inter["cell_area_um2"] > 1.5 * inter["nucleus_area_um2"]).all()
    # slabs a few um high, nuclei at mid-height near the focal plane
    assert inter["cell_height_um"].between(3.0, 8.0).all()
    assert (inter["nucleus_z_um"] - inter["focus_z_um"]).abs().median() < 1.0


def _snr_by_condition(sheet, truth_cells):
    """Per interphase cell: (mean HER2 on the truth cell's edge ring outside the
    nucleus - field background) / background noise SD; median per condition.

    Background: pixels >= 8 px (5.2 um) from any cell; its level the median,
    its noise SD from horizontal neighbour differences (/ sqrt 2), which the
    smooth vignetting does not inflate."""
    rows = []
    for row in sheet.itertuples():
        cells_truth = truth_cells[truth_cells["image_id"] == row.image_id]
        if cells_truth["bad_field"].iloc[0] or cells_truth["zstack"].iloc[0]:
            continue
        her2 = tifffile.imread(DEMO / row.path)[0].astype(float)
        cells, nuclei = _labels(row.image_id, "cells"), _labels(row.image_id, "nuclei")
        outside = ndi.binary_erosion(cells == 0, iterations=8)
        level = np.median(her2[outside])
        pairs = outside[:, 1:] & outside[:, :-1]
        noise = np.std((her2[:, 1:] - her2[:, :-1])[pairs]) / np.sqrt(2)
        ring = np.where(_edge_ring(cells) & (nuclei == 0), cells, 0)
        n = cells.max()
        net = np.bincount(ring.ravel(), her2.ravel(), n + 1)[1:] / np.maximum(
            np.bincount(ring.ravel(), minlength=n + 1)[1:], 1
        )
        cells_truth = cells_truth.set_index("cell_id")
        keep = (cells_truth["cell_kind"] == "interphase") & ~cells_truth["touches_border"]
        snr = (net[keep.index[keep] - 1] - level) / noise
        rows += [(row.cell_line, row.condition, s) for s in snr]
    table = pd.DataFrame(rows, columns=["cell_line", "condition", "snr"])
    return table.groupby(["cell_line", "condition"])["snr"].median()


def test_membrane_snr_is_realistic(sheet, truth_cells):
    """TP-R membrane SNR about 3-5, parental about 10-20 (measured: SKBR3 4.3 /
    13.1, BT474 4.0 / 12.9), with plain numpy on the truth labels."""
    snr = _snr_by_condition(sheet, truth_cells)
    for line in ("SKBR3", "BT474"):
        assert 3.0 <= snr[(line, "TP-R")] <= 5.0
        assert 10.0 <= snr[(line, "parental")] <= 20.0
        assert snr[(line, "parental")] > 2 * snr[(line, "TP-R")]
        assert snr[(line, "T-R>T+P")] < snr[(line, "T-R>P")] < snr[(line, "T-R>T")]


def _fwhm(profile, step):
    """Full width at half maximum of a single-peaked profile (linear interpolation)."""
    half = profile.max() / 2
    above = np.flatnonzero(profile >= half)
    lo, hi = above[0], above[-1]
    left = lo - (profile[lo] - half) / (profile[lo] - profile[lo - 1])
    right = hi + (profile[hi] - half) / (profile[hi] - profile[hi + 1])
    return (right - left) * step


def test_widefield_psf_blurs_and_adds_haze():
    p = default_widefield_parameters()
    px, dz = p["pixel_size_um"], p["z_step_um"]
    z = (np.arange(24) + 0.5) * dz
    # a point in focus keeps its amount, blurred to FWHM 2.355 x 0.65 um
    point = np.zeros((24, 65, 65))
    point[6, 32, 32] = 1000.0
    image = widefield_image(point, z, [z[6]])[0]
    assert image.sum() == pytest.approx(1000.0, rel=1e-3)
    assert _fwhm(image[32], px) == pytest.approx(2.355 * 0.65, rel=0.05)
    # out-of-focus light is not removed: 4 um and 8 um away the point still sends
    # 0.75 exp(-dz^2 / 8) + 0.25 = 35 % and 25 % of its light into the plane, spread wider
    for planes, share in ((8, 0.35), (16, 0.25)):
        far = widefield_image(point, z, [z[6] + planes * dz])[0]
        assert far.sum() / 1000.0 == pytest.approx(share, abs=0.01)
        assert _fwhm(far[32], px) > 2.0
    # a lateral membrane 4 um high (a vertical sheet), focus at mid-height:
    # the recorded profile across it is >= 1.6 um wide
    sheet = np.zeros((24, 9, 65))
    sheet[:8, :, 32] = 1.0
    profile = widefield_image(sheet, z, [2.0])[0][4]
    assert _fwhm(profile, px) >= 1.6


def test_haze_around_cells_in_the_demo(sheet):
    """Widefield haze: the marker is brighter just outside the cells than far away."""
    excess = []
    for image_id in sheet["image_id"][sheet["image_id"].str.endswith("_r1_f1")]:
        marker = tifffile.imread(DEMO / "images" / "if" / f"{image_id}.ome.tif")[2]
        cells = _labels(image_id, "cells")
        near = ndi.binary_dilation(cells > 0, iterations=2) & (cells == 0)
        far = ndi.binary_erosion(cells == 0, iterations=10)
        excess.append(np.median(marker[near]) - np.median(marker[far]))
    assert np.median(excess) > 5


def test_labels_match_rendered_cells(sheet, truth_cells):
    # one good field per line and condition
    good = sheet[sheet["image_id"].str.endswith("_r1_f1")]
    assert len(good) == 12
    measured, expected = [], []
    for row in good.itertuples():
        image = tifffile.imread(DEMO / row.path).astype(np.float64)
        nuclei, cells = _labels(row.image_id, "nuclei"), _labels(row.image_id, "cells")
        cells_truth = truth_cells[truth_cells["image_id"] == row.image_id].set_index("cell_id")
        n = len(cells_truth)
        px2 = PIXEL_SIZE_UM**2
        assert np.array_equal(np.unique(cells[cells > 0]), np.arange(1, n + 1))
        assert np.array_equal(np.unique(nuclei[nuclei > 0]), np.arange(1, n + 1))
        assert np.array_equal(cells[nuclei > 0], nuclei[nuclei > 0])
        ids = cells_truth.index.to_numpy()
        assert np.allclose(
            ndi.sum_labels(np.ones_like(cells), cells, ids) * px2,
            cells_truth["cell_area_um2"],
            rtol=1e-5,
        )
        assert np.allclose(
            ndi.sum_labels(np.ones_like(nuclei), nuclei, ids) * px2,
            cells_truth["nucleus_area_um2"],
            rtol=1e-5,
        )
        her2, dapi = image[0], image[1]
        outside = ndi.binary_erosion(cells == 0, iterations=6)
        dapi_bg = np.median(dapi[outside])
        dapi_nuc = ndi.mean(dapi, nuclei, ids)
        cyto = np.median(dapi[(cells > 0) & (nuclei == 0)]) - dapi_bg
        assert (dapi_nuc - dapi_bg > 4 * cyto).mean() > 0.95
        # the membrane ring of the truth labels follows the truth membrane HER2
        keep = (cells_truth["cell_kind"] == "interphase") & ~cells_truth["touches_border"]
        ring = np.where(_edge_ring(cells) & (nuclei == 0), cells, 0)
        net = (ndi.mean(her2, ring, ids) - np.median(her2[outside])) / cells_truth[
            "illumination_mean"
        ]
        measured += list(net[keep])
        expected += list(cells_truth.loc[keep, "membrane_her2"])
    assert np.corrcoef(measured, expected)[0, 1] > 0.8


def test_bad_fields(sheet, truth, truth_cells):
    bad = {b["image_id"]: b["defect"] for b in truth["bad_fields"]}
    assert sorted(bad.values()) == ["out_of_focus", "out_of_focus", "saturated", "saturated"]
    flagged = truth_cells.groupby("image_id")["bad_field"].first()
    assert {k: v for k, v in flagged.items() if v} == bad
    paths = dict(zip(sheet["image_id"], sheet["path"], strict=True))

    def sharpness(image_id):
        dapi = tifffile.imread(DEMO / paths[image_id])[1].astype(np.float64)
        return np.abs(ndi.laplace(dapi)).var() / dapi.mean() ** 2

    for image_id, defect in bad.items():
        image = tifffile.imread(DEMO / paths[image_id])
        sibling = image_id[: -len("f3")] + "f1"
        if defect == "saturated":
            assert (image[0] == 65535).sum() > 1000
        else:
            assert (image == 65535).sum() == 0
            assert sharpness(image_id) < 0.5 * sharpness(sibling)
    for image_id in sheet["image_id"]:
        if image_id not in bad:
            assert (tifffile.imread(DEMO / paths[image_id]) == 65535).sum() == 0


def test_render_widefield_field_is_seeded():
    params = {"shape_px": (96, 96)}
    a = render_widefield_field(np.random.default_rng(7), 20.0, 0.2, params=params)
    b = render_widefield_field(np.random.default_rng(7), 20.0, 0.2, params=params)
    assert np.array_equal(a["image"], b["image"])
    assert a["cells_truth"].equals(b["cells_truth"])
    c = render_widefield_field(np.random.default_rng(8), 20.0, 0.2, params=params)
    assert not np.array_equal(a["image"], c["image"])
    stack = render_widefield_field(np.random.default_rng(7), 20.0, 0.2, zstack=True, params=params)
    assert stack["image"].shape == (3, 9, 96, 96)
    assert stack["nuclei_zyx"].shape == (9, 96, 96)
    with pytest.raises(ValueError, match="defect"):
        render_widefield_field(np.random.default_rng(7), 20.0, 0.2, defect="blurry")


def test_render_field_is_seeded_and_hits_targets():
    """The earlier 2-D model (the imaging benchmark's fields)."""
    a = render_field(np.random.default_rng(7), 1500.0, 0.35)
    b = render_field(np.random.default_rng(7), 1500.0, 0.35)
    assert np.array_equal(a["image"], b["image"])
    assert np.array_equal(a["cells"], b["cells"])
    c = render_field(np.random.default_rng(8), 1500.0, 0.35)
    assert not np.array_equal(a["image"], c["image"])
    cells = pd.concat([a["cells_truth"], c["cells_truth"]])
    n = len(cells)
    assert cells["membrane_her2"].mean() == pytest.approx(1500.0, abs=4 * 1500 * 0.31 / np.sqrt(n))
    sd_fraction = np.sqrt(0.35 * 0.65 / 31)
    assert cells["nuclear_fraction"].mean() == pytest.approx(0.35, abs=4 * sd_fraction / np.sqrt(n))
    with pytest.raises(ValueError, match="defect"):
        render_field(np.random.default_rng(7), 1500.0, 0.35, defect="blurry")


def test_demo_folder_under_25_mb():
    # disk usage as `du` counts it (4 KiB blocks), of the whole resources/demo
    total = 0
    for folder, _dirs, files in os.walk(DEMO):
        for name in files:
            st = os.stat(os.path.join(folder, name))
            total += max(st.st_blocks * 512, st.st_size)
    assert total < 25 * 1024**2
    images = sum(p.stat().st_size for p in (DEMO / "images" / "if").iterdir())
    assert images < 18 * 1024**2
