"""Figures 2, 3 and S1 from synthetic tables (issue 15).

Every statistic drawn is at replicate level with the adjusted p labelled as
adjusted; conditions segmented without a membrane marker are flagged; fig 2
gets an orthogonal (XZ) view only when a z-stack field is given; fig 3's IC50
panel shows the replicates; fig S1 shows border exclusion and the
segmentation channel. Each figure is rendered to a PNG under tmp_path and
checked for text that overlaps other text or leaves the canvas.
"""

from __future__ import annotations

import itertools
import os

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection
from matplotlib.colors import to_hex

matplotlib.use("Agg")

from sepher.figures import imaging_plots as ip  # noqa: E402
from sepher.figures.style import house_style, save_figure, study_colour  # noqa: E402
from sepher.formatting import format_p  # noqa: E402
from sepher.stats import adjust_pvalues  # noqa: E402

LINES = ["SKBR3", "BT474"]
LOCAL = ["parental", "T-R", "TP-R"]
SEQUENCE = ["T-R", "T-R>T", "T-R>P", "T-R>T+P"]
ALL = LOCAL + SEQUENCE[1:]
MEANS = {"parental": 2700, "T-R": 2300, "TP-R": 950, "T-R>T": 2250, "T-R>P": 1650, "T-R>T+P": 1250}
NUC = {"parental": 0.05, "T-R": 0.08, "TP-R": 0.35, "T-R>T": 0.09, "T-R>P": 0.18, "T-R>T+P": 0.2}
COMPLETE = {"parental": 0.9, "T-R": 0.8, "TP-R": 0.45, "T-R>T": 0.8, "T-R>P": 0.65, "T-R>T+P": 0.6}
#: Fields segmented on HER2 itself: every BT474 field and 3 of SKBR3 T-R's 6.
NO_MARKER = {("BT474", c): 6 for c in ALL} | {("SKBR3", "T-R"): 3}


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def tables():
    rng = np.random.default_rng(15)
    reps, cells = [], []
    for line, cond in itertools.product(LINES, ALL):
        for r in (1, 2, 3):
            m = MEANS[cond] * (1 + 0.06 * rng.standard_normal())
            reps.append(
                {
                    "cell_line": line,
                    "condition": cond,
                    "replicate": r,
                    "her2_net_membrane": m,
                    "nuclear_fraction": NUC[cond] * (1 + 0.1 * rng.standard_normal()),
                    "membrane_completeness": COMPLETE[cond] + 0.03 * rng.standard_normal(),
                    "n_images": 2,
                }
            )
            for c in range(25):
                cells.append(
                    {
                        "cell_line": line,
                        "condition": cond,
                        "replicate": r,
                        "her2_net_membrane": m * (1 + 0.25 * rng.standard_normal()),
                        "border": c < 8,
                        "excluded": c < 8,
                    }
                )
    reps, cells = pd.DataFrame(reps), pd.DataFrame(cells)
    rows = []
    for (line, cond), g in reps.groupby(["cell_line", "condition"], sort=False):
        row = {"level": "condition", "cell_line": line, "condition": cond, "n_replicates": len(g)}
        for v in ("her2_net_membrane", "nuclear_fraction", "membrane_completeness"):
            x = g[v].to_numpy()
            half = 4.303 * x.std(ddof=1) / np.sqrt(3)  # qt(0.975, 2)
            row |= {f"{v}_mean": x.mean(), f"{v}_ci_low": x.mean() - half}
            row[f"{v}_ci_high"] = x.mean() + half
        border = cells[(cells.cell_line == line) & (cells.condition == cond)]["border"]
        row |= {
            "n_images": 6,
            "n_images_without_membrane_marker": NO_MARKER.get((line, cond), 0),
            "n_cells_border": int(border.sum()),
            "fraction_border": float(border.mean()),
        }
        rows.append(row)
    summary = pd.DataFrame(rows)
    comps = []
    pairs = {
        "fig2": [("TP-R", "T-R"), ("TP-R", "parental"), ("T-R", "parental")],
        "fig3": [("T-R>T", "T-R"), ("T-R>P", "T-R"), ("T-R>T+P", "T-R")],
    }
    for family, fam_pairs in pairs.items():
        values = ["her2_net_membrane", "nuclear_fraction", "membrane_completeness"]
        if family == "fig3":
            values = values[:1]
        for line, value, (test, ref) in itertools.product(LINES, values, fam_pairs):
            comps.append(
                {
                    "family": family,
                    "cell_line": line,
                    "value": value,
                    "test": test,
                    "reference": ref,
                    "p": float(rng.uniform(0.0004, 0.04)),
                }
            )
    comps = pd.DataFrame(comps)
    comps["multiplicity"] = "holm"
    comps["p_adjusted"] = np.nan
    for _, idx in comps.groupby("family").groups.items():
        comps.loc[idx, "p_adjusted"] = adjust_pvalues(comps.loc[idx, "p"], "holm")
    fits = []
    for line, cond, r in itertools.product(LINES, SEQUENCE, (1, 2, 3)):
        base = {"T-R": 30, "T-R>T": 34, "T-R>P": 80, "T-R>T+P": 150}[cond]
        fits.append(
            {
                "cell_line": line,
                "condition": cond,
                "drug": "T-DM1",
                "replicate": r,
                "concentration_unit": "ng/mL",
                "ic50_rel": base * np.exp(0.2 * rng.standard_normal()) * (1 + 0.1 * r),
                "ic50_rel_reached": not (cond == "T-R>T+P" and r == 3),
            }
        )
    fits = pd.DataFrame(fits)
    dr = []
    for line, cond in itertools.product(LINES, SEQUENCE[1:]):
        dr.append(
            {
                "family": "fig3",
                "cell_line": line,
                "drug": "T-DM1",
                "numerator": cond,
                "denominator": "T-R",
                "ratio": 2.0,
                "lower": 1.2,
                "upper": 3.3,
                "test": "paired t",
                "p": float(rng.uniform(0.001, 0.03)),
                "n_pairs": 3,
                "n_replicates_numerator": 3,
                "n_replicates_denominator": 3,
                "multiplicity": "holm",
            }
        )
    dr = pd.DataFrame(dr)
    dr["p_adjusted"] = adjust_pvalues(dr["p"], "holm")
    return {
        "replicates": reps,
        "cells": cells,
        "summary": summary,
        "comparisons": comps,
        "fits_by_replicate": fits,
        "ic50_comparisons": dr,
    }


def _field(condition, seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:96, :96]
    nuclei = np.zeros((96, 96), int)
    cells = np.zeros((96, 96), int)
    her2 = rng.normal(100, 10, (96, 96))
    nuclear = rng.normal(50, 5, (96, 96))
    for k, (cy, cx) in enumerate([(24, 24), (24, 70), (70, 24), (70, 70)], start=1):
        r = np.hypot(yy - cy, xx - cx)
        cells[r < 18] = k
        nuclei[r < 8] = k
        her2[(r > 15) & (r < 18)] += MEANS[condition]
        nuclear[r < 8] += 800
    return {
        "condition": condition,
        "cell_line": "SKBR3",
        "image_id": f"IF_{condition}",
        "her2": her2,
        "nuclear": nuclear,
        "nuclei": nuclei,
        "cells": cells,
        "pixel_size_um": 0.5,
    }


def _stack(nz=16, ny=72, nx=80, z_mid=9):
    """CZYX stack: three nuclei (brightest in plane z_mid) under an apical HER2 membrane."""
    zz, yy, xx = np.mgrid[:nz, :ny, :nx]
    nuclear = np.full((nz, ny, nx), 20.0)
    her2 = np.full((nz, ny, nx), 30.0)
    centres = [(14, 14, 50.0), (32, 46, 100.0), (50, 16, 150.0)]  # (y, x, radius^2 in px^2)
    for cy, cx, r2 in centres:
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 < r2
        nuclear += 800 * inside * np.exp(-0.5 * ((zz - z_mid) / 2.5) ** 2)
        her2 += 600 * inside * (zz == nz - 3)  # apical membrane over the nucleus
    return np.stack([her2, nuclear]).astype(np.float32)


def _texts(fig, artists=False):
    """(text, window extent) of every visible, non-empty text drawn on the figure."""
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    items = list(fig.texts)
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            items += [t.label1 for t in axis._update_ticks()]  # the ticks drawn
            items.append(axis.label)
        items += [ax.title, ax._left_title, ax._right_title, *ax.texts]
        legend = ax.get_legend()
        if legend is not None:
            items += [*legend.get_texts(), legend.get_title()]
    out = []
    for t in items:
        if t.get_visible() and t.get_text().strip():
            out.append((t if artists else t.get_text(), t.get_window_extent(renderer)))
    return out


def _parallel_apart(a, b):
    """Two texts rotated alike (slanted tick labels): apart if their baselines are a line apart.

    Their window extents (axis-aligned boxes of slanted text) overlap even when the
    glyphs do not; the distance between the parallel baselines decides.
    """
    angle = np.deg2rad(a.get_rotation())
    if a.get_rotation() == 0 or a.get_rotation() != b.get_rotation():
        return False
    pa = np.array(a.get_transform().transform(a.get_position()))
    pb = np.array(b.get_transform().transform(b.get_position()))
    d = pb - pa
    perpendicular = abs(d[0] * np.sin(angle) - d[1] * np.cos(angle))
    lines = max(a.get_text().count("\n"), b.get_text().count("\n")) + 1
    height = a.get_fontsize() * 1.2 * lines * a.figure.dpi / 72
    return perpendicular >= height


def assert_no_overlap(fig):
    """No two texts overlap and every text lies inside the canvas."""
    texts = _texts(fig, artists=True)
    canvas = fig.bbox
    outside = [
        t.get_text()
        for t, b in texts
        if b.x0 < canvas.x0 - 1
        or b.x1 > canvas.x1 + 1
        or b.y0 < canvas.y0 - 1
        or b.y1 > canvas.y1 + 1
    ]
    assert outside == []
    clashes = [
        f"{a.get_text()!r} x {b.get_text()!r}"
        for (a, ba), (b, bb) in itertools.combinations(texts, 2)
        if ba.overlaps(bb) and ba.width > 0 and bb.width > 0 and not _parallel_apart(a, b)
    ]
    assert clashes == []


def _all_text(fig):
    """Every text drawn, one per line; the footnotes' own line breaks become spaces."""
    return "\n".join(s.replace("\n", " ") if len(s) > 60 else s for s, _ in _texts(fig))


def _render(fig, tmp_path, name):
    png = tmp_path / f"{name}.png"
    save_figure(fig, None, png, dpi=150)
    if os.environ.get("SEPHER_KEEP_FIGURES"):  # look at them: SEPHER_KEEP_FIGURES=/some/dir
        save_figure(fig, None, os.path.join(os.environ["SEPHER_KEEP_FIGURES"], png.name))
    assert png.stat().st_size > 10_000
    return png


def _fig2(tables, **kwargs):
    return ip.plot_her2_localisation(
        [_field(c, i) for i, c in enumerate(LOCAL)],
        tables["cells"],
        tables["replicates"],
        tables["summary"],
        tables["comparisons"],
        conditions=LOCAL,
        lines=LINES,
        simulated=True,
        **kwargs,
    )


# ----------------------------------------------------------------------------- p labels
def test_p_label_names_the_adjustment():
    row = {"p": 0.0004, "p_adjusted": 0.0012, "multiplicity": "holm"}
    assert ip.p_label(row) == "Holm-adj. p = 0.0012"
    assert ip.p_label(row | {"multiplicity": "bh"}) == "BH-adj. p = 0.0012"
    # not adjusted: plain p (equal to p_adjusted); a table from before issue 15: plain p
    assert ip.p_label({"p": 0.0004, "p_adjusted": 0.0004, "multiplicity": "none"}) == (
        "p = 0.00040"
    )
    assert ip.p_label({"p": 0.0004}) == "p = 0.00040"


def test_family_and_multiplicity_of(tables):
    comps = tables["comparisons"]
    assert set(ip.family_rows(comps, "fig3")["test"]) == {"T-R>T", "T-R>P", "T-R>T+P"}
    assert len(ip.family_rows(comps.drop(columns="family"), "fig3")) == len(comps)
    assert ip.multiplicity_of(comps) == "holm"
    assert ip.multiplicity_of(comps.drop(columns="p_adjusted")) == "none"
    mixed = comps.assign(multiplicity=["holm", "bh"] * (len(comps) // 2))
    with pytest.raises(ValueError, match="mixes multiplicity"):
        ip.multiplicity_of(mixed)
    assert "Holm step-down" in ip.adjustment_note("holm")


def test_one_palette_for_every_condition():
    colours = ip.condition_colours(ALL)
    assert len(set(colours.values())) == len(ALL)  # no colour means two conditions
    assert all(colours[c] == study_colour(c) for c in ALL)  # the study palette's own
    # a condition keeps its colour whatever else is drawn with it
    assert ip.condition_colours(SEQUENCE)["T-R"] == colours["T-R"]
    assert ip.condition_colours(LOCAL)["TP-R"] == colours["TP-R"]


# ----------------------------------------------------------------------------- figure 2
def test_fig2_adjusted_p_flag_and_completeness(tables, tmp_path):
    with house_style():
        fig = _fig2(tables)
        text = _all_text(fig)
        _render(fig, tmp_path, "fig2")
        assert_no_overlap(fig)
    shown = ip.family_rows(tables["comparisons"], "fig2")
    for row in shown.itertuples():
        assert format_p(row.p_adjusted, prefix="Holm-adj. p") in text
        assert format_p(row.p) not in text.splitlines()  # the raw p is never a bracket
    assert "Welch t-test on replicate means" in text
    assert "Holm step-down adjustment" in text
    assert "Membrane completeness" in text
    # the dagger: every BT474 condition and SKBR3 T-R, with counts in the footnote
    assert "T-R\u2020\nn = 3" in text
    assert "parental\u2020" in text  # BT474
    assert "SKBR3 T-R 3/6" in text and "BT474 parental 6/6" in text
    assert "SKBR3 parental" not in text
    assert "apical" not in text and "XZ" not in text  # no z-stack, no panel, no placeholder


def test_fig2_without_flags_or_new_columns_is_as_before(tables, tmp_path):
    """Tables from before issue 15: raw p labelled p, no dagger, no completeness flag."""
    summary = tables["summary"].drop(
        columns=["n_images_without_membrane_marker", "n_images", "membrane_completeness_mean"]
    )
    comps = tables["comparisons"].drop(columns=["p_adjusted", "multiplicity", "family"])
    comps = comps[comps["test"].isin(LOCAL)]
    with house_style():
        fig = ip.plot_her2_localisation(
            [_field(c, i) for i, c in enumerate(LOCAL)],
            tables["cells"],
            tables["replicates"],
            summary,
            comps,
            conditions=LOCAL,
            lines=LINES,
        )
        text = _all_text(fig)
        assert_no_overlap(fig)
    assert "\u2020" not in text and "adj. p" not in text
    assert format_p(comps["p"].iloc[0]) in text
    assert "not adjusted for multiplicity" in text


def test_choose_section_picks_the_median_nucleus_and_its_mid_plane():
    stack = _stack(z_mid=9)
    section = ip.choose_section(stack[1], pixel_size_um=0.5, width_um=20)
    # nucleus areas ~ pi*50, pi*100, pi*150 px: the median is the one at (32, 46)
    assert section["row"] == 32
    assert (section["x0"], section["x1"]) == (46 - 20, 46 + 20)
    assert section["z"] == 9


def test_fig2_orthogonal_view_panel(tables, tmp_path):
    stack = _stack(z_mid=9)
    data = ip.orthogonal_section(
        stack, 0.5, 0.4, her2_channel=0, nuclear_channel=1, width_um=20, label="SKBR3 TP-R"
    )
    nz = stack.shape[1]
    assert data["xz_her2"].shape == (nz, 40) and data["xz_nuclear"].shape == (nz, 40)
    # the apical HER2 plane lies above the nucleus in the section
    assert int(np.argmax(data["xz_her2"].mean(axis=1))) == nz - 3
    assert int(np.argmax(data["xz_nuclear"].mean(axis=1))) == 9
    with house_style():
        fig = _fig2(tables, orthogonal=data)
        text = _all_text(fig)
        _render(fig, tmp_path, "fig2_xz")
        assert_no_overlap(fig)
    assert {"apical", "basal", "5 µm", "SKBR3 TP-R"} <= set(text.splitlines())
    xz = [
        im
        for ax in fig.axes
        for im in ax.images
        if im.get_extent()[3] == pytest.approx((nz - 0.5) * 0.4)
    ]
    assert len(xz) == 1  # drawn in µm: Z extent = planes x z step, aspect equal
    assert xz[0].axes.get_aspect() == 1.0


# ----------------------------------------------------------------------------- figure 3
def _fig3(tables, **kwargs):
    return ip.plot_sequential_exposure(
        tables["replicates"],
        tables["summary"],
        tables["comparisons"],
        None,
        conditions=SEQUENCE,
        lines=LINES,
        simulated=True,
        **kwargs,
    )


def test_replicate_ic50_is_the_geometric_mean_with_t_ci():
    fits = pd.DataFrame(
        {
            "cell_line": "A",
            "drug": "D",
            "condition": "x",
            "ic50_rel": [10.0, 20.0, 40.0],
        }
    )
    out = ip.replicate_ic50(fits, line="A", drug="D", conditions=["x", "y"]).set_index("condition")
    # exp(mean(log(c(10, 20, 40)))) = 20; half-width qt(0.975, 2) * sd(log(...)) / sqrt(3)
    assert out.loc["x", "geomean"] == pytest.approx(20.0)
    assert out.loc["x", "upper"] == pytest.approx(20 * np.exp(4.302653 * np.log(2) / np.sqrt(3)))
    assert out.loc["x", "n"] == 3 and out.loc["y", "n"] == 0


def test_fig3_replicate_ic50_panel_and_palette(tables, tmp_path):
    with house_style():
        fig = _fig3(
            tables,
            fits_by_replicate=tables["fits_by_replicate"],
            ic50_comparisons=tables["ic50_comparisons"],
        )
        text = _all_text(fig)
        _render(fig, tmp_path, "fig3")
        assert_no_overlap(fig)
    for row in tables["ic50_comparisons"].itertuples():
        assert format_p(row.p_adjusted, prefix="Holm-adj. p") in text
    for row in ip.family_rows(tables["comparisons"], "fig3").itertuples():
        assert format_p(row.p_adjusted, prefix="Holm-adj. p") in text
    assert "paired t-test on log IC50 (n = 3 pairs)" in text
    assert "T-R>T+P\nn = 3" in text
    # one dot per replicate fit, in the condition's palette colour (open: not reached)
    colours = ip.condition_colours(ALL)
    ic50_axes = [ax for ax in fig.axes if "IC50" in ax.get_title(loc="left")]
    assert len(ic50_axes) == 2
    dots = [pc for ax in ic50_axes for pc in ax.collections if isinstance(pc, PathCollection)]
    edges = [to_hex(c) for pc in dots for c in pc.get_edgecolor()]
    assert len(edges) == len(tables["fits_by_replicate"])
    assert set(edges) == {to_hex(colours[c]) for c in SEQUENCE}
    assert colours["T-R>T"] != colours["TP-R"]  # T-R>T never takes TP-R's colour


def test_fig3_without_plates_and_with_pooled_fits(tables, tmp_path):
    with house_style():
        fig = _fig3(tables)
        text = _all_text(fig)
        assert_no_overlap(fig)
        assert "IC50 panel omitted" in text
        pooled = tables["fits_by_replicate"].groupby(["cell_line", "condition", "drug"]).first()
        pooled = pooled.reset_index().assign(ic50_rel_lower=10.0, ic50_rel_upper=300.0)
        fig = ip.plot_sequential_exposure(
            tables["replicates"],
            tables["summary"],
            tables["comparisons"],
            pooled,
            conditions=SEQUENCE,
            lines=LINES,
        )
        _render(fig, tmp_path, "fig3_pooled")
        assert "pooled fit" in _all_text(fig)
        assert_no_overlap(fig)


# ----------------------------------------------------------------------------- figure S1
def test_border_and_segmentation_counts(tables):
    from_cells = ip.border_counts(cells=tables["cells"])
    from_summary = ip.border_counts(conditions_summary=tables["summary"])
    pd.testing.assert_frame_equal(from_cells, from_summary.loc[from_cells.index])
    assert from_cells.loc["SKBR3 T-R", "n_cells_border"] == 24  # 8 of 25 cells x 3 replicates
    qc = pd.DataFrame(
        {
            "cell_line": ["A", "A", "A", "B"],
            "condition": ["x", "x", "x", "x"],
            # the table's spelling (sepher.imaging.field) and the short one
            "segmentation_channel": ["membrane marker", "HER2", "membrane", "her2"],
        }
    )
    counts = ip.segmentation_channel_counts(qc)
    assert counts.loc["A x"].tolist() == [2, 1, 3]
    assert counts.loc["B x"].tolist() == [0, 1, 1]
    with pytest.raises(ValueError, match="segmentation_channel"):
        ip.segmentation_channel_counts(qc.assign(segmentation_channel="wga"))


def test_figS1_border_and_segmentation_panels(tables, tmp_path):
    labels = [f"{line} {c}" for line in LINES for c in ALL]
    flag_counts = pd.DataFrame(
        {"border": 32.0, "saturated": 0.0, "implausible_size": 0.5, "images_flagged": 0},
        index=labels,
    )
    flag_counts.loc["SKBR3 T-R", ["saturated", "images_flagged"]] = [12.0, 1]
    overlays = [
        {"label": k, "rgb": ip.field_rgb(f["her2"], f["nuclear"]), "pixel_size_um": 0.5}
        for k, f in zip(labels, [_field(c, i) for i, c in enumerate(ALL * 2)], strict=True)
    ]
    rows = [
        {"cell_line": line, "condition": c, "segmentation_channel": ch}
        for (line, c) in itertools.product(LINES, ALL)
        for k in range(6)
        for ch in ["her2" if k < NO_MARKER.get((line, c), 0) else "membrane"]
    ]
    segmentation = ip.segmentation_channel_counts(pd.DataFrame(rows))
    border = ip.border_counts(conditions_summary=tables["summary"])
    with house_style():
        fig = ip.plot_segmentation_qc(
            overlays,
            overlays[:2],
            flag_counts,
            n_flagged=3,
            border=border,
            segmentation=segmentation,
            simulated=True,
        )
        text = _all_text(fig)
        _render(fig, tmp_path, "figS1")
        assert_no_overlap(fig)
    assert text.count("\n24\n") + text.splitlines().count("24") >= 12  # border counts drawn
    assert "BT474 T-R>P\u2020" in text and "SKBR3 T-R\u2020" in text
    assert "SKBR3 parental\u2020" not in text
    assert "HER2 itself (no marker)" in text
    seg_axes = [ax for ax in fig.axes if ax.get_ylabel() == "Fields"]
    heights = [p.get_height() for p in seg_axes[0].patches]
    # membrane bars then HER2 bars, in condition order
    expected = segmentation.loc[labels]
    assert heights == expected["membrane"].tolist() + expected["her2"].tolist()


def test_figS1_without_new_inputs_is_as_before(tmp_path):
    flag_counts = pd.DataFrame(
        {"border": [30.0, 40.0], "saturated": [0.0, 5.0], "images_flagged": [0, 2]},
        index=["A x", "A y"],
    )
    field = _field("T-R", 1)
    overlays = [
        {"label": k, "rgb": ip.field_rgb(field["her2"], field["nuclear"]), "pixel_size_um": 0.5}
        for k in flag_counts.index
    ]
    with house_style():
        fig = ip.plot_segmentation_qc(overlays, [], flag_counts)
        assert_no_overlap(fig)
        text = _all_text(fig)
    assert "2 images\nflagged" in text and "Fields" not in text


def test_orthogonal_section_from_an_ome_tiff_z_stack(tmp_path):
    """A CZYX OME-TIFF read by sepher.imaging.io.read_stack gives the same section."""
    import tifffile

    from sepher.imaging.io import read_stack

    stack = _stack(z_mid=6, nz=12)
    path = tmp_path / "zstack.ome.tif"
    tifffile.imwrite(
        path,
        stack,
        metadata={"axes": "CZYX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5, "PhysicalSizeZ": 0.8},
        ome=True,
    )
    read, pixel_um, z_step_um = read_stack(path)
    assert (pixel_um, z_step_um) == (0.5, 0.8)
    data = ip.orthogonal_section(
        read, pixel_um, z_step_um, her2_channel=0, nuclear_channel=1, width_um=20
    )
    assert (data["row"], data["z"]) == (32, 6)
    np.testing.assert_array_equal(data["xz_nuclear"], stack[1, :, 32, 26:66])


def test_fig3_ignores_well_level_ic50_tests_and_names_welch(tables):
    """A well-level comparisons table (before issue 15) draws no IC50 bracket; Welch is named."""
    old = tables["ic50_comparisons"].drop(
        columns=["n_pairs", "n_replicates_numerator", "n_replicates_denominator", "p_adjusted"]
    )
    with house_style():
        fig = _fig3(tables, fits_by_replicate=tables["fits_by_replicate"], ic50_comparisons=old)
        ic50_axes = [ax for ax in fig.axes if "IC50" in ax.get_title(loc="left")]
        assert all(not ax.texts for ax in ic50_axes)
        welch = tables["ic50_comparisons"].assign(
            test="Welch t", n_pairs=0, n_replicates_denominator=4
        )
        text = _all_text(
            _fig3(tables, fits_by_replicate=tables["fits_by_replicate"], ic50_comparisons=welch)
        )
    assert "Welch t-test on log IC50 (n = 3-4 replicates per condition)" in text


def test_marker_flags_from_the_summary_or_the_cells(tables):
    assert ip.marker_flags(tables["summary"])[("SKBR3", "T-R")] == (3, 6)
    assert ("SKBR3", "parental") not in ip.marker_flags(tables["summary"])
    cells = pd.DataFrame(
        {
            "cell_line": "A",
            "condition": ["x", "x", "x", "y"],
            "image_id": ["i1", "i1", "i2", "i3"],
            "segmentation_channel": ["HER2", "HER2", "membrane marker", "membrane marker"],
        }
    )
    old_summary = tables["summary"].drop(columns="n_images_without_membrane_marker")
    assert ip.marker_flags(old_summary, cells) == {("A", "x"): (1, 2)}
    assert ip.marker_flags(old_summary) == {}
