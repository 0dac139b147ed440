"""Simulated demo immunofluorescence fields: regeneration, format, truth, size."""

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
    membrane_band,
    render_field,
    write_demo_if_images,
)

DEMO = Path(__file__).resolve().parents[1] / "resources" / "demo"
PIXEL_SIZE_UM = 0.65


def _our_files(root: Path) -> list[str]:
    files = ["images_if.tsv", "truth/if_truth.csv", "truth/if_truth.json"]
    for sub in ("images/if", "truth/if_labels"):
        files += sorted(str(p.relative_to(root)) for p in (root / sub).iterdir())
    return files


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo_if")
    write_demo_if_images(out)
    return out


@pytest.fixture(scope="module")
def sheet():
    return pd.read_csv(DEMO / "images_if.tsv", sep="\t", keep_default_na=False)


@pytest.fixture(scope="module")
def truth_cells():
    cells = pd.read_csv(DEMO / "truth" / "if_truth.csv", keep_default_na=False)
    assert cells["touches_border"].dtype == bool
    return cells


@pytest.fixture(scope="module")
def truth():
    return json.loads((DEMO / "truth" / "if_truth.json").read_text(encoding="utf-8"))


def test_regeneration_is_byte_identical(regenerated):
    committed = _our_files(DEMO)
    fresh = _our_files(regenerated)
    assert fresh == committed
    assert len([f for f in fresh if f.startswith("images/if/")]) == 76
    for name in committed:
        assert (regenerated / name).read_bytes() == (DEMO / name).read_bytes(), name


def test_sheet_follows_spec(sheet):
    assert tuple(sheet.columns) == SHEET_COLUMNS
    assert sheet["image_id"].is_unique
    assert set(sheet["assay"]) == {"IF"}
    assert set(sheet["cell_line"]) == {"SKBR3", "BT474"}
    assert set(sheet["condition"]) == {"parental", "T-R", "TP-R", "T-R>T", "T-R>P", "T-R>T+P"}
    # 3 replicates x 2 good fields per line and condition (+ 4 extra bad fields)
    counts = sheet.groupby(["cell_line", "condition", "replicate"]).size()
    assert len(counts) == 2 * 6 * 3
    assert set(counts) <= {2, 3} and (counts == 3).sum() == 4
    assert (sheet["pixel_size_um"] == PIXEL_SIZE_UM).all()
    assert set(sheet["membrane_channel"]) == {"", "2"}
    for path in sheet["path"]:
        assert (DEMO / path).is_file()


def test_images_readable_with_pixel_size(sheet):
    for row in sheet.itertuples():
        with tifffile.TiffFile(DEMO / row.path) as tif:
            assert tif.is_ome
            series = tif.series[0]
            data = series.asarray()
            n_channels = 3 if row.membrane_channel != "" else 2
            assert series.axes == "CYX"
            assert data.dtype == np.uint16
            assert data.shape == (n_channels, 256, 256)
            page = tif.pages[0]
            assert page.compression == tifffile.COMPRESSION.ADOBE_DEFLATE
            assert "DateTime" not in page.tags
            # resolution tags: pixels per centimetre
            num, den = page.tags["XResolution"].value
            assert page.tags["ResolutionUnit"].value == tifffile.RESUNIT.CENTIMETER
            assert 1e4 * den / num == pytest.approx(PIXEL_SIZE_UM, rel=1e-6)
            pixels = next(
                el for el in ET.fromstring(tif.ome_metadata).iter() if el.tag.endswith("Pixels")
            )
            assert float(pixels.get("PhysicalSizeX")) == pytest.approx(PIXEL_SIZE_UM)
            assert float(pixels.get("PhysicalSizeY")) == pytest.approx(PIXEL_SIZE_UM)
            assert pixels.get("PhysicalSizeXUnit") == "µm"


def test_condition_truth_is_mean_of_cell_truth(truth_cells, truth):
    assert tuple(truth_cells.columns) == TRUTH_COLUMNS
    kept = truth_cells[(truth_cells["bad_field"] == "") & ~truth_cells["touches_border"]]
    assert len(truth["conditions"]) == 12
    for cond in truth["conditions"]:
        sel = kept[
            (kept["cell_line"] == cond["cell_line"]) & (kept["condition"] == cond["condition"])
        ]
        assert cond["n_cells"] == len(sel) > 80
        assert cond["n_images"] == 6
        # the CSV keeps 6 significant digits
        assert cond["membrane_her2_mean"] == pytest.approx(sel["membrane_her2"].mean(), rel=1e-5)
        assert cond["nuclear_fraction_mean"] == pytest.approx(
            sel["nuclear_fraction"].mean(), rel=1e-5
        )


def test_truth_follows_the_study_design(truth):
    cond = {(c["cell_line"], c["condition"]): c for c in truth["conditions"]}
    for line in ("SKBR3", "BT474"):
        tr, tpr = cond[(line, "T-R")], cond[(line, "TP-R")]
        # TP-R: markedly less membrane HER2 (35-50 % of T-R), more in the nucleus
        assert 0.35 <= tpr["membrane_her2_mean"] / tr["membrane_her2_mean"] <= 0.5
        assert tpr["nuclear_fraction_mean"] > 0.3 > 0.12 > tr["nuclear_fraction_mean"]
        # sequential exposure: membrane HER2 falls with pertuzumab exposure
        seq = [cond[(line, c)]["membrane_her2_mean"] for c in ("T-R>T", "T-R>P", "T-R>T+P")]
        assert seq[0] > seq[1] > seq[2]
        assert seq[1] < 0.8 * tr["membrane_her2_mean"]


def test_cells_per_field_and_sizes(truth_cells):
    good = truth_cells[truth_cells["bad_field"] == ""]
    per_field = good.groupby("image_id").size()
    assert len(per_field) == 72
    assert per_field.between(25, 45).all()
    good = good[~good["touches_border"]]  # border cells may be cut by the field edge
    # nuclei 8-14 um equivalent diameter: area pi/4 d^2 = 50-154 um^2; touching
    # sisters lose a sliver to each other, pixels are 0.65 um
    area = good["nucleus_area_um2"]
    assert area.between(35, 175).all()
    assert area.between(np.pi / 4 * 8**2 * 0.9, np.pi / 4 * 14**2 * 1.1).mean() > 0.9
    assert (good["cell_area_um2"] > 1.5 * good["nucleus_area_um2"]).all()


def _check_labels_match_image(row, truth_cells):
    image = tifffile.imread(DEMO / row.path).astype(np.float64)
    nuclei = tifffile.imread(DEMO / "truth" / "if_labels" / f"{row.image_id}_nuclei.tif")
    cells = tifffile.imread(DEMO / "truth" / "if_labels" / f"{row.image_id}_cells.tif")
    cells_truth = truth_cells[truth_cells["image_id"] == row.image_id].set_index("cell_id")
    n = len(cells_truth)
    px2 = PIXEL_SIZE_UM**2
    # label ids 1..n, nucleus k inside cell k, areas as in the truth table
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
    # the nuclear stain lights up the nucleus labels, not the rest
    dapi_bg = np.median(dapi[outside])
    dapi_nuc = ndi.mean(dapi, nuclei, ids)
    assert (dapi_nuc - dapi_bg > 8 * (np.median(dapi[(cells > 0) & (nuclei == 0)]) - dapi_bg)).all()
    # HER2 membrane band of the truth labels recovers the truth (blur spreads ~8 % out)
    her2_bg = np.median(her2[outside])
    band = np.where(membrane_band(cells, PIXEL_SIZE_UM, 1.0) & (nuclei == 0), cells, 0)
    measured = (ndi.mean(her2, band, ids) - her2_bg) / cells_truth["illumination_mean"]
    ratio = measured / cells_truth["membrane_her2"]
    assert 0.85 < ratio.median() < 0.97
    assert np.corrcoef(measured, cells_truth["membrane_her2"])[0, 1] > 0.99
    # nuclear fraction from the image vs truth
    nuc_net = ndi.sum_labels(her2 - her2_bg, nuclei, ids)
    cell_net = ndi.sum_labels(her2 - her2_bg, cells, ids)
    inner = ~cells_truth["touches_border"].to_numpy()
    error = (nuc_net / cell_net - cells_truth["nuclear_fraction"]).to_numpy()[inner]
    assert np.abs(np.median(error)) < 0.03


def test_labels_match_rendered_cells(sheet, truth_cells):
    # one good field per line and main condition, plus the sequential design
    good = sheet[sheet["image_id"].str.endswith("_r1_f1")]
    assert len(good) == 12
    for row in good.itertuples():
        _check_labels_match_image(row, truth_cells)


def test_truth_band_is_the_measured_membrane_band():
    from sepher.imaging.compartments import compartments

    image_id = "IF_SKBR3_TPR_r2_f1"
    nuclei = tifffile.imread(DEMO / "truth" / "if_labels" / f"{image_id}_nuclei.tif")
    cells = tifffile.imread(DEMO / "truth" / "if_labels" / f"{image_id}_cells.tif")
    ours = membrane_band(cells, PIXEL_SIZE_UM, 1.0) & (nuclei == 0)
    theirs = compartments(nuclei, cells, PIXEL_SIZE_UM, membrane_band_um=1.0)["membrane"] > 0
    assert np.array_equal(ours, theirs)


def test_bad_fields(sheet, truth, truth_cells):
    bad = {b["image_id"]: b["defect"] for b in truth["bad_fields"]}
    assert sorted(bad.values()) == ["out_of_focus", "out_of_focus", "saturated", "saturated"]
    flagged = truth_cells.groupby("image_id")["bad_field"].first()
    assert {k: v for k, v in flagged.items() if v} == bad
    paths = dict(zip(sheet["image_id"], sheet["path"], strict=True))

    def sharpness(image_id):
        dapi = tifffile.imread(DEMO / paths[image_id])[1].astype(np.float64)
        return np.abs(ndi.laplace(dapi)).mean() / dapi.mean()

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


def test_render_field_is_seeded_and_hits_targets():
    a = render_field(np.random.default_rng(7), 1500.0, 0.35)
    b = render_field(np.random.default_rng(7), 1500.0, 0.35)
    assert np.array_equal(a["image"], b["image"])
    assert np.array_equal(a["cells"], b["cells"])
    c = render_field(np.random.default_rng(8), 1500.0, 0.35)
    assert not np.array_equal(a["image"], c["image"])
    cells = pd.concat([a["cells_truth"], c["cells_truth"]])
    # population targets: mean membrane HER2 1500 (log-normal SD 0.3), nuclear fraction 0.35
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
    assert images < 15 * 1024**2
