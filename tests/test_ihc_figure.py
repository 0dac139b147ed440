"""Fig 4 as a pathologist reads it: brightfield tiles with thin class outlines,
a colour-blind-safe class palette, the 2023 categories and the reflex-ISH flag."""

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgb
from matplotlib.text import Text
from scipy.spatial import cKDTree

from sepher.figures import ihc_plots, style
from sepher.figures.inputs import biopsy_tiles
from sepher.ihc import cell_edges, class_overlay
from sepher.ihc.overlay import outline_pixels
from sepher.ihc.rules import HER2_2023_LABELS

#: Optical density (log10) per RGB channel of the synthetic stains: a blue
#: hematoxylin and a brown DAB (Ruifrok & Johnston 2001 directions).
_HEMATOXYLIN = np.array([0.65, 0.70, 0.29])
_DAB = np.array([0.27, 0.57, 0.78])
#: Membrane DAB OD of a cell of class 0, 1+, 2+, 3+.
_MEMBRANE_DAB = (0.0, 0.12, 0.35, 0.8)


def synthetic_tile(seed, class_weights, size=180, spacing=15):
    """A brightfield H-DAB tile of Voronoi cells: tumour on the left, stroma on the right.

    Returns the RGB tile (uint8), the cell labels and the per-cell table
    (``cell_id``, ``her2_class``, ``tumour``).
    """
    rng = np.random.default_rng(seed)
    grid = np.arange(spacing / 2, size, spacing)
    centres = np.array([(y, x) for y in grid for x in grid], float)
    centres += rng.uniform(-spacing / 4, spacing / 4, centres.shape)
    yy, xx = np.mgrid[:size, :size]
    pixels = np.column_stack([yy.ravel(), xx.ravel()])
    distance, nearest = cKDTree(centres).query(pixels)
    labels = (nearest + 1).reshape(size, size)
    tumour = centres[:, 1] < 0.65 * size
    classes = np.where(tumour, rng.choice(4, len(centres), p=class_weights), 0)
    h_od = np.full((size, size), 0.08)
    h_od[distance.reshape(size, size) < 4.0] = 0.7  # nuclei
    membrane = cell_edges(labels) | outline_pixels(labels, 2)
    dab_od = np.where(membrane, np.asarray(_MEMBRANE_DAB)[classes[labels - 1]], 0.0)
    dab_od = np.where(tumour[labels - 1], dab_od, 0.0)
    od = 0.02 + h_od[..., None] * _HEMATOXYLIN + dab_od[..., None] * _DAB
    rgb = np.clip(np.round(245.0 * 10.0 ** (-od)), 0, 255).astype(np.uint8)
    cells = pd.DataFrame(
        {"cell_id": np.arange(1, len(centres) + 1), "her2_class": classes, "tumour": tumour}
    )
    return rgb, labels, cells


#: Five patients whose ten biopsies cover every 2023 category (and every ASCO/CAP score).
SAMPLES = pd.DataFrame(
    [
        ("BX-01", "pre", 250.0, 88.0, "3+", "HER2-positive"),
        ("BX-01", "post", 60.0, 6.0, "1+", "HER2-low"),
        ("BX-02", "pre", 180.0, 45.0, "2+", "HER2-equivocal (reflex ISH)"),
        ("BX-02", "post", 4.0, 0.0, "0", "HER2-ultralow"),
        ("BX-03", "pre", 240.0, 80.0, "3+", "HER2-positive"),
        ("BX-03", "post", 0.0, 0.0, "0", "HER2-null"),
        ("BX-04", "pre", 120.0, 30.0, "2+", "HER2-equivocal (reflex ISH)"),
        ("BX-04", "post", 110.0, 25.0, "2+", "HER2-equivocal (reflex ISH)"),
        ("BX-05", "pre", 70.0, 8.0, "1+", "HER2-low"),
        ("BX-05", "post", 2.0, 0.0, "0", "HER2-null"),
    ],
    columns=["patient_id", "timepoint", "h_score", "pct_complete", "asco_cap_label", "her2_2023"],
)
SAMPLES["reflex_ish"] = SAMPLES["asco_cap_label"] == "2+"
SAMPLES["asco_cap_rule"] = SAMPLES["asco_cap_label"].map(
    {
        "3+": "3+: complete intense membrane staining in > 10 % of tumour cells",
        "2+": "2+: complete weak-to-moderate membrane staining in > 10 % of tumour cells",
        "1+": "1+: faint or incomplete membrane staining in > 10 % of tumour cells",
        "0": "0: no membrane staining, or faint or incomplete staining in <= 10 % of tumour cells",
    }
)
#: Class mix of a tile of a biopsy of each ASCO/CAP score.
MIX = {
    "0": (0.95, 0.05, 0, 0),
    "1+": (0.3, 0.6, 0.1, 0),
    "2+": (0.1, 0.3, 0.5, 0.1),
    "3+": (0.05, 0.1, 0.25, 0.6),
}


# ----------------------------------------------------------------------------- overlay
def test_overlay_outlines_tumour_cells_in_class_colours_on_the_rgb_tile():
    rgb, labels, cells = synthetic_tile(1, MIX["2+"])
    overlay = class_overlay(rgb, labels, cells)
    assert overlay.shape == rgb.shape and overlay.dtype == np.uint8
    changed = np.any(overlay != rgb, axis=-1)
    tumour_ids = cells.loc[cells["tumour"], "cell_id"].to_numpy()
    tumour_edges = cell_edges(labels) & np.isin(labels, tumour_ids)
    # 1 px: only the tumour cells' own edge pixels change; stroma and interiors are the tile
    assert not np.any(changed & ~tumour_edges)
    np.testing.assert_array_equal(overlay[~tumour_edges], rgb[~tumour_edges])
    # each outline pixel is its cell's class colour
    class_of = dict(zip(cells["cell_id"], cells["her2_class"], strict=True))
    for label, colour in ihc_plots.HER2_CLASS_COLOURS.items():
        k = ("0", "1+", "2+", "3+").index(label)
        ids = [i for i in tumour_ids if class_of[i] == k]
        where = tumour_edges & np.isin(labels, ids)
        assert where.any(), label
        expected = np.round(255 * np.array(to_rgb(colour)))
        np.testing.assert_array_equal(overlay[where], np.broadcast_to(expected, (where.sum(), 3)))


def test_overlay_width_alpha_and_stroma():
    rgb, labels, cells = synthetic_tile(2, MIX["3+"])
    one = outline_pixels(labels, 1)
    two = outline_pixels(labels, 2)
    np.testing.assert_array_equal(one, cell_edges(labels))
    assert np.all(two[one]) and two.sum() > 1.6 * one.sum()
    wide = class_overlay(rgb, labels, cells, width=2)
    assert (
        np.any(wide != rgb, axis=-1).sum()
        > np.any(class_overlay(rgb, labels, cells) != rgb, axis=-1).sum()
    )
    # alpha 0.5: the mean of tile and class colour on the outline
    colours = {"0": "#000000", "1+": "#000000", "2+": "#000000", "3+": "#000000"}
    half = class_overlay(rgb, labels, cells, alpha=0.5, colours=colours)
    edge = one & np.isin(labels, cells.loc[cells["tumour"], "cell_id"])
    np.testing.assert_array_equal(half[edge], np.round(0.5 * rgb[edge]).astype(np.uint8))
    # non-tumour cells only when asked, in neutral grey at half the opacity
    stroma = one & np.isin(labels, cells.loc[~cells["tumour"], "cell_id"])
    np.testing.assert_array_equal(class_overlay(rgb, labels, cells)[stroma], rgb[stroma])
    shown = class_overlay(rgb, labels, cells, show_stroma=True)
    grey = 0.5 * rgb[stroma] + 0.5 * 191.0
    np.testing.assert_array_equal(shown[stroma], np.round(grey).astype(np.uint8))
    with pytest.raises(ValueError, match="width"):
        outline_pixels(labels, 0)
    with pytest.raises(ValueError, match="same"):
        class_overlay(rgb[:10], labels, cells)


# ----------------------------------------------------------------------------- palette
def test_class_palette_is_colour_blind_safe_and_stands_out_from_the_stain():
    colours = ihc_plots.HER2_CLASS_COLOURS
    assert list(colours) == ["0", "1+", "2+", "3+"]
    deltas = {
        deuteranopia: min(
            style.colour_difference(a, b, deuteranopia=deuteranopia)
            for a, b in itertools.combinations(colours.values(), 2)
        )
        for deuteranopia in (False, True)
    }
    # documented in ihc_plots: 21.6 (trichromat) and 18.8 (deuteranopia), above MIN_DELTA_E
    assert deltas[False] == pytest.approx(21.6, abs=0.05)
    assert deltas[True] == pytest.approx(18.8, abs=0.05)
    assert min(deltas.values()) >= style.MIN_DELTA_E
    # lightness ramp: no yellow / orange / red; each outline contrasts with its stain
    stain = {
        "0": ("#ECECEA", "#DDD3C0", "#C9C6D6"),  # glass / cast / pale unstained tissue
        "1+": ("#D2B08C", "#C9A98A"),  # light-brown membranes
        "2+": ("#926D49", "#A07850"),  # medium brown
        "3+": ("#6D4422", "#4A2A14"),  # dark brown (skimage's IHC image: #6D4422)
    }
    for label, backgrounds in stain.items():
        for background, deuteranopia in itertools.product(backgrounds, (False, True)):
            delta = style.colour_difference(colours[label], background, deuteranopia)
            assert delta >= 40, (label, background, deuteranopia, round(delta, 1))
    # a new meaning: the family "HER2 class" of the study palette, no colour reused
    assert colours is style.HER2_CLASS_COLOURS
    taken = {c.lower() for family, c, _ in style.PALETTE_TABLE.values() if family != "HER2 class"}
    assert not taken & {c.lower() for c in colours.values()}


def test_category_text_names_both_classifications_and_the_ish_flag():
    assert ihc_plots.category_text("2+", "HER2-equivocal (reflex ISH)", True) == (
        "2+ equivocal: reflex ISH"
    )
    assert ihc_plots.category_text("0", "HER2-ultralow", "False") == "0 HER2-ultralow"
    assert ihc_plots.category_text("1+", "HER2-low", False) == "1+ HER2-low"
    # the flag shows even when a category text lacks it
    assert ihc_plots.category_text("2+", "HER2-low", "True") == "2+ HER2-low \u00b7 reflex ISH"
    assert set(ihc_plots.HER2_2023_MARKERS) == set(HER2_2023_LABELS)
    assert len(set(ihc_plots.HER2_2023_MARKERS.values())) == len(HER2_2023_LABELS)


# ----------------------------------------------------------------------------- figure
def _texts(fig):
    texts = list(fig.texts)
    for legend in fig.legends:
        texts += [*legend.get_texts(), legend.get_title()]
    for ax in fig.axes:
        texts += list(ax.texts)
        texts += [*ax.get_xticklabels(), *ax.get_yticklabels(), ax.yaxis.label]
    return [t for t in texts if t.get_visible() and t.get_text().strip()]


def _render(tmp_path, samples=SAMPLES, simulated=True):
    """Through the entry script's path: overlay PNGs and summaries -> biopsy_tiles -> figure."""
    from PIL import Image

    rows, summaries, overlays = [], [], []
    for k, row in enumerate(samples.itertuples()):
        image_id = f"{row.patient_id}_{row.timepoint}_1"
        rgb, labels, cells = synthetic_tile(10 + k, MIX[row.asco_cap_label])
        path = tmp_path / f"{image_id}.png"
        Image.fromarray(class_overlay(rgb, labels, cells)).save(path)
        summary = tmp_path / f"{image_id}_summary.json"
        summary.write_text(json.dumps({"image_id": image_id, "h_score": row.h_score}))
        overlays.append(path)
        summaries.append(summary)
        rows.append((image_id, row.patient_id, row.timepoint, 0.5))
    tiles = pd.DataFrame(rows, columns=["image_id", "patient_id", "timepoint", "pixel_size_um"])
    shown = biopsy_tiles(samples, tiles, summaries, overlays, field_um=80.0)
    with style.house_style():
        fig = ihc_plots.plot_biopsies(shown, samples, simulated=simulated)
        style.save_figure(fig, None, tmp_path / "fig4.png", dpi=150)
    return fig, shown


def test_fig4_shows_rgb_tiles_both_classifications_and_no_overlapping_text(tmp_path):
    import matplotlib.pyplot as plt

    fig, shown = _render(tmp_path)
    assert (tmp_path / "fig4.png").stat().st_size > 0
    assert style.is_stamped(fig)
    # panel a: the brightfield tile itself (colour, not a greyscale channel), 160 px field
    images = [ax.images[0].get_array() for ax in fig.axes if ax.images]
    assert len(images) == len(SAMPLES)
    for image, tile in zip(images, shown, strict=True):
        np.testing.assert_array_equal(np.asarray(image), tile["image"])
        assert image.shape == (160, 160, 3)
        assert np.any(image[..., 0] != image[..., 2])
    words = " ".join(t.get_text() for t in _texts(fig))
    for label in HER2_2023_LABELS:
        assert ihc_plots.HER2_2023_SHORT[label] in words, label
    assert words.count("equivocal: reflex ISH") >= 2 * 3  # 3 biopsies of 2+: tile and point
    assert "n = 5 patients with both biopsies" in words
    assert (
        "median change (post \u2212 pre) \u2212176" in words and "no test" in words
    )  # median of post - pre
    assert "H-score (standard, 0\u2013300)" in words and "membrane intensity" in words
    assert "complete weak-to-moderate membrane staining in > 10 %" in words.replace("\n", " ")
    # nothing overlaps, nothing leaves the canvas
    renderer = fig.canvas.get_renderer()
    # the text's own box (an annotation's extent would include its leader line)
    boxes = [(t.get_text(), Text.get_window_extent(t, renderer)) for t in _texts(fig)]
    canvas = fig.bbox
    for text, box in boxes:
        assert box.x0 >= canvas.x0 - 1 and box.x1 <= canvas.x1 + 1, text
        assert box.y0 >= canvas.y0 - 1 and box.y1 <= canvas.y1 + 1, text
    for (ta, a), (tb, b) in itertools.combinations(boxes, 2):
        assert not a.overlaps(b), (ta, tb)
    plt.close(fig)


def test_fig4_rejects_an_unknown_2023_category(tmp_path):
    bad = SAMPLES.assign(her2_2023=SAMPLES["her2_2023"].replace("HER2-null", "HER2-zero"))
    with pytest.raises(ValueError, match="her2_2023"):
        ihc_plots.plot_biopsies([], bad)
    with pytest.raises(ValueError, match="reflex_ish"):
        ihc_plots.plot_biopsies([], SAMPLES.drop(columns="reflex_ish"))
