"""The simulated HER2 IHC photomicrographs: truth from the design, realism, determinism."""

import hashlib
import io
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from sepher.ihc.deconvolution import DAB_RGB_OD, HEMATOXYLIN_RGB_OD
from sepher.ihc.rules import HER2_2023_LABELS
from sepher.simulate.ihc_images import (
    DEMO_BIOPSIES,
    DESIGN_CATEGORIES,
    DESIGN_MIXTURES,
    LEVEL_MEMBRANE_OD,
    MEMBRANE_STATES,
    encode_jpeg,
    simulate_ihc_tile,
    truth_summary,
    write_demo_ihc,
)

SMALL = (384, 512)  # 96 x 128 um at 0.25 um/px: fast, still ~35 tumour cells
SMALL_STUDY = (("BX-09", "pre", "3+", 1, True), ("BX-09", "post", "0-ultralow", 1, False))


def _digests(folder):
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _angle_deg(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    cos = a @ b / np.linalg.norm(a) / np.linalg.norm(b)
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def _pct(mixture, names):
    index = [s[0] for s in MEMBRANE_STATES]
    return 100 * sum(mixture[index.index(n)] for n in names)


def test_write_demo_ihc_twice_is_byte_identical_jpeg(tmp_path):
    write_demo_ihc(tmp_path / "a", seed=7, biopsies=SMALL_STUDY, shape=SMALL)
    write_demo_ihc(tmp_path / "b", seed=7, biopsies=SMALL_STUDY, shape=SMALL)
    first = _digests(tmp_path / "a")
    assert first == _digests(tmp_path / "b")
    assert sorted(k for k in first if k.startswith("images/")) == [
        "images/ihc/BX-09_post_1.jpg",
        "images/ihc/BX-09_pre_1.jpg",
    ]
    with Image.open(tmp_path / "a" / "images" / "ihc" / "BX-09_pre_1.jpg") as image:
        assert image.format == "JPEG" and image.mode == "RGB"
        assert image.size == (SMALL[1], SMALL[0])
    payload = json.loads((tmp_path / "a" / "truth" / "ihc_truth.json").read_text())
    assert all(80 <= im["jpeg_quality"] <= 92 for im in payload["images"])
    # another seed draws other tiles
    write_demo_ihc(tmp_path / "c", seed=8, biopsies=SMALL_STUDY, shape=SMALL)
    assert (
        _digests(tmp_path / "c")["images/ihc/BX-09_pre_1.jpg"]
        != first["images/ihc/BX-09_pre_1.jpg"]
    )


def test_shipped_demo_starts_with_this_generators_tiles(tmp_path, project_dir):
    # the first tile comes first from the seed's stream, so regenerating a
    # one-tile first biopsy must give the shipped file's bytes
    patient, timepoint, design, _, reference = DEMO_BIOPSIES[0]
    first = ((patient, timepoint, design, 1, reference),)
    write_demo_ihc(tmp_path, seed=20200279, biopsies=first)
    demo = project_dir / "resources" / "demo"
    for name in ("BX-01_pre_1.jpg",):
        made = (tmp_path / "images" / "ihc" / name).read_bytes()
        assert (
            hashlib.sha256(made).digest()
            == hashlib.sha256((demo / "images" / "ihc" / name).read_bytes()).digest()
        ), f"resources/demo is stale: run scripts/make_demo_data.py ({name})"


def test_sheet_reference_scores_and_truth_files(tmp_path):
    payload = write_demo_ihc(tmp_path, seed=3, biopsies=SMALL_STUDY, shape=SMALL)
    sheet = pd.read_csv(tmp_path / "images_ihc.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert list(sheet.columns) == [
        "image_id",
        "path",
        "assay",
        "pixel_size_um",
        "patient_id",
        "timepoint",
        "reference_score",
    ]
    assert list(sheet["reference_score"]) == ["3+", ""]
    assert list(sheet["path"]) == ["images/ihc/BX-09_pre_1.jpg", "images/ihc/BX-09_post_1.jpg"]
    biopsies = pd.DataFrame(payload["biopsies"])
    assert list(biopsies["asco_cap_label"]) == ["3+", "0"]
    assert list(biopsies["her2_2023"]) == ["HER2-positive", "HER2-ultralow"]
    assert list(biopsies["guideline_asco_cap"]) == list(biopsies["asco_cap"])
    cells = pd.read_csv(tmp_path / "truth" / "ihc_truth.csv")
    # the JSON percentages are the per-cell truth's
    pre = cells[(cells["timepoint"] == "pre") & cells["invasive"]]
    assert biopsies.loc[0, "n_tumour_cells"] == len(pre)
    intense_complete = (pre["intensity_level"] == 3) & pre["complete"]
    assert biopsies.loc[0, "pct_complete_intense"] == pytest.approx(
        100 * intense_complete.mean(), abs=1e-4
    )


def test_demo_design_covers_every_category_with_losses_and_half_reference():
    design = {(p, t): (cat, tiles, ref) for p, t, cat, tiles, ref in DEMO_BIOPSIES}
    assert len(design) == 8 and {p for p, _ in design} == {"BX-01", "BX-02", "BX-03", "BX-04"}
    cats = {cat for cat, _, _ in design.values()}
    assert cats == {"3+", "2+", "1+", "0-ultralow", "0-null"}
    # loss of HER2 after T+P in some patients, not all
    score = {k: DESIGN_CATEGORIES[v[0]][0] for k, v in design.items()}
    falls = [p for p in ("BX-01", "BX-02", "BX-03", "BX-04") if score[p, "post"] < score[p, "pre"]]
    assert 1 <= len(falls) < 4
    # half the biopsies carry a reference score and they span 0, 1+, 2+, 3+
    referenced = [k for k, v in design.items() if v[2]]
    assert len(referenced) == 4
    assert {score[k] for k in referenced} == {0, 1, 2, 3}
    total_px = sum(tiles for _, tiles, _ in design.values()) * 768 * 1024
    assert total_px < 12e6


def test_design_mixtures_sit_away_from_the_guideline_cut_offs():
    m = DESIGN_MIXTURES
    assert all(np.isclose(sum(v), 1.0) for v in m.values())
    assert _pct(m["3+"], ["intense_complete"]) >= 40
    assert _pct(m["2+"], ["weak_moderate_complete"]) >= 30
    assert _pct(m["2+"], ["intense_complete"]) < 3
    assert _pct(m["1+"], ["faint_incomplete"]) >= 40
    complete = ["faint_complete", "weak_moderate_complete", "intense_complete"]
    assert _pct(m["1+"], complete) < 3
    assert 3 <= _pct(m["0-ultralow"], ["faint_incomplete"]) <= 7
    assert _pct(m["0-null"], ["none"]) == 100
    for mixture in m.values():  # unusual-pattern cells never decide a category
        assert _pct(mixture, ["weak_moderate_incomplete", "intense_incomplete"]) <= 4
    assert DESIGN_CATEGORIES["0-null"][1] == HER2_2023_LABELS[0] == "HER2-null"


@pytest.mark.parametrize("design", ["3+", "2+", "1+", "0-ultralow", "0-null"])
def test_truth_counts_match_the_design_exactly(design):
    rng = np.random.default_rng(11)
    _, truth, labels = simulate_ihc_tile(rng, design, shape=SMALL, dcis=False, necrosis=False)
    inv = truth[truth["invasive"]]
    n = len(inv)
    assert n >= 20
    counts = inv["state"].value_counts()
    for (name, _, _), fraction in zip(MEMBRANE_STATES, DESIGN_MIXTURES[design], strict=True):
        assert abs(counts.get(name, 0) - fraction * n) < 1.0, name  # largest remainder
    # every truth row is a labelled cell, with the per-cell ASCO/CAP class
    assert set(truth["cell_id"]) == set(np.unique(labels["cells"])) - {0}
    lv, comp = truth["intensity_level"], truth["complete"]
    expected = np.select([(lv == 3) & comp, lv >= 2, lv == 1], [3, 2, 1], 0)
    assert (truth["her2_class"] == expected).all()
    assert (truth["unusual_pattern"] == ((lv >= 2) & ~comp)).all()
    for level, (low, high) in LEVEL_MEMBRANE_OD.items():
        od = truth.loc[lv == level, "membrane_od"]
        assert ((od >= low) & (od <= high)).all(), level
    stained = truth[lv > 0]
    assert (stained.loc[stained["complete"], "membrane_completeness"] >= 0.93).all()
    assert (stained.loc[~stained["complete"], "membrane_completeness"] <= 0.65).all()
    assert truth_summary(truth)["guideline_asco_cap"] == DESIGN_CATEGORIES[design][0]


def test_white_balance_cast_glass_level_and_stain_vectors_away_from_defaults():
    for seed in (1, 2, 3):
        rgb, _, labels, params = simulate_ihc_tile(
            np.random.default_rng(seed), "1+", shape=SMALL, return_params=True
        )
        glass = np.median(rgb[labels["glass"]].astype(float), axis=0)
        assert 195 <= glass[0] <= 236  # glass below 255 (205-235, vignetting <= 3 %)
        assert glass.max() < 245
        assert 0.92 <= glass[1] / glass[0] <= 0.98  # yellow-brown cast: G and B lower
        assert 0.79 <= glass[2] / glass[0] <= 0.91
        cast = params["white_balance_cast"]
        assert cast[0] == 1 and 0.93 <= cast[1] <= 0.97 and 0.80 <= cast[2] <= 0.90
        assert 205 <= params["glass_level"] <= 235
        h_angle = _angle_deg(params["hematoxylin_rgb_od"], HEMATOXYLIN_RGB_OD)
        d_angle = _angle_deg(params["dab_rgb_od"], DAB_RGB_OD)
        assert 5 - 0.05 <= h_angle <= 12 + 0.05 and 5 - 0.05 <= d_angle <= 12 + 0.05
        assert min(params["hematoxylin_rgb_od"]) > 0 and min(params["dab_rgb_od"]) > 0


def test_stroma_is_blue_grey_without_eosin_and_tumours_carry_cytoplasmic_tint():
    for seed in (4, 5, 6):
        rgb, truth, labels, params = simulate_ihc_tile(
            np.random.default_rng(seed),
            "0-null",
            shape=SMALL,
            dcis=False,
            necrosis=False,
            return_params=True,
        )
        glass = np.median(rgb[labels["glass"]].astype(float), axis=0)
        stroma = ~labels["glass"] & (labels["cells"] == 0)
        t = np.median(rgb[stroma].astype(float), axis=0) / glass  # cast removed
        # eosin absorbs green: pink stroma has T_G well below T_R; hematoxylin
        # and neutral grey absorb R and G about equally, blue no more than red
        assert t[1] / t[0] >= 0.96
        assert t[2] / t[0] >= 0.98
        assert t.max() < 0.99  # but the stroma is not empty glass
        # HER2-0 tumours: diffuse cytoplasmic DAB (0.03-0.12 OD), no membrane
        assert 0.03 <= params["cytoplasm_dab_tint_od"] <= 0.12
        assert (truth.loc[truth["invasive"], "intensity_level"] == 0).all()


def test_dcis_and_necrosis_are_present_and_flagged_not_invasive():
    rgb, truth, labels = simulate_ihc_tile(
        np.random.default_rng(21), "3+", dcis=True, necrosis=True, shape=(640, 768)
    )
    assert labels["dcis"].any() and labels["necrosis"].any()
    comp = truth.set_index("cell_id")["compartment"]
    assert {"invasive", "dcis", "myoepithelial"} <= set(comp)
    assert not truth.loc[truth["compartment"] != "invasive", "invasive"].any()
    # DCIS and its rim lie in the duct; invasive cells outside it
    cells = labels["cells"]
    in_duct = pd.Series(cells[labels["dcis"]]).value_counts()
    for cid, kind in comp.items():
        inside = in_duct.get(cid, 0) / np.count_nonzero(cells == cid)
        assert inside == (1.0 if kind != "invasive" else 0.0), (cid, kind)
    # the myoepithelial rim is HER2-negative; no cell reaches into necrosis
    assert (truth.loc[truth["compartment"] == "myoepithelial", "intensity_level"] == 0).all()
    assert not (cells[labels["necrosis"]] > 0).any()
    # pyknotic fragments: dark hematoxylin specks in the necrosis, no eosin either
    necrosis = rgb[labels["necrosis"]].astype(float)
    assert necrosis.min(axis=1).min() < 0.6 * np.median(rgb[labels["glass"]].min(axis=1))
    # truth counts and percentages use the invasive cells only
    summary = truth_summary(truth)
    assert summary["n_tumour_cells"] == int(truth["invasive"].sum())
    assert summary["n_non_invasive_cells"] == int((~truth["invasive"]).sum()) > 0


def test_jpeg_encoding_is_deterministic_and_lossy():
    rgb, _, _ = simulate_ihc_tile(np.random.default_rng(2), "2+", shape=(128, 160))
    first, second = encode_jpeg(rgb, 85), encode_jpeg(rgb, 85)
    assert first == second and first[:2] == b"\xff\xd8"
    decoded = np.asarray(Image.open(io.BytesIO(first)))
    assert decoded.shape == rgb.shape
    assert 0 < np.abs(decoded.astype(int) - rgb).mean() < 6


def test_older_four_class_fractions_still_accepted():
    _, truth, _ = simulate_ihc_tile(
        np.random.default_rng(0), (0.25, 0.25, 0.25, 0.25), shape=SMALL, dcis=False
    )
    inv = truth[truth["invasive"]]
    assert set(inv["state"]) <= {
        "none",
        "faint_incomplete",
        "weak_moderate_complete",
        "intense_complete",
    }
    assert np.bincount(inv["her2_class"], minlength=4).min() >= len(inv) // 4 - 1
    with pytest.raises(ValueError, match="design"):
        simulate_ihc_tile(np.random.default_rng(0), "4+", shape=SMALL)
