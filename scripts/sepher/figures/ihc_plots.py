"""Figure 4: HER2 IHC of paired biopsies, before and after treatment.

Panel a shows, for each patient, one representative tile of the pre and of
the post biopsy as a pathologist reads it: the brightfield H-DAB field as
scanned, each tumour cell outlined (1 px) in the colour of its HER2
membrane class (0 / 1+ / 2+ / 3+; non-tumour cells are not outlined), a
scale bar in micrometres and, under the tile, the biopsy's ASCO/CAP 2018
category with its 2023 reporting category, the standard H-score, the
percent of complete membrane staining and the rule that decided the
category. Panel b pairs the pre and post biopsies of each patient on the
standard H-score (membrane intensity only): the marker shape is the 2023
category and the label at every point gives the ASCO/CAP category, the 2023
category and, for 2+, "equivocal: reflex ISH". Panel c pairs the percent
of tumour cells with complete membrane staining, with the ASCO/CAP cut-off.
The paired panels are descriptive (n patients and median change; no test).

Class colours (:data:`HER2_CLASS_COLOURS`) are a lightness ramp from dark
indigo (0) to pale cyan (3+), away from the brown of DAB: every class pair
differs by CIEDE2000 >= 17 for trichromats and for a deuteranope
(:func:`sepher.figures.style.colour_difference`), and each class's outline
stands out (CIEDE2000 >= 41) from the stain it is drawn on (pale unstained
tissue for 0, light / medium / dark brown membranes for 1+ / 2+ / 3+).

Patients are shown as "Patient 1..n" in the order of their pseudonymous
biopsy codes (``patient_id``), which stay in the result tables only.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from sepher.ihc.rules import ASCO_CAP_LABELS, HER2_2023_LABELS

from .style import (
    DOUBLE_COLUMN_MM,
    GREY,
    HER2_CLASS_COLOURS,
    manual_figure,
    mm,
    require_columns,
    stamp_simulated,
    text_width_px,
    wrap_to_width,
)

__all__ = [
    "FIG4_NOTE",
    "HER2_2023_MARKERS",
    "HER2_2023_SHORT",
    "HER2_CLASS_COLOURS",
    "category_text",
    "central_field",
    "patient_labels",
    "plot_biopsies",
    "representative_tiles",
]


#: Ink of the patient lines (the house style's axes colour) and their line styles.
PATIENT_INK = "#262626"
PATIENT_LINESTYLES = (
    "-",
    (0, (4.0, 1.5)),
    (0, (1.0, 1.2)),
    (0, (6.0, 1.5, 1.5, 1.5)),
    (0, (8.0, 2.0)),
    (0, (3.0, 1.0, 1.0, 1.0, 1.0, 1.0)),
)
#: 2023 reporting category -> marker of the paired panel (shape carries it; no colour).
HER2_2023_MARKERS = {
    "HER2-null": "o",
    "HER2-ultralow": "v",
    "HER2-low": "s",
    "HER2-equivocal (reflex ISH)": "D",
    "HER2-positive": "^",
}

#: 2023 reporting category -> text printed next to the ASCO/CAP category.
HER2_2023_SHORT = {
    "HER2-null": "HER2-null",
    "HER2-ultralow": "HER2-ultralow",
    "HER2-low": "HER2-low",
    "HER2-equivocal (reflex ISH)": "equivocal: reflex ISH",
    "HER2-positive": "HER2-positive",
}

#: Caption-ready key of the figure's scores (printed at its foot).
FIG4_NOTE = (
    "H-score: standard (McCarty 1985), 1 \u00d7 % faint + 2 \u00d7 % weak-to-moderate + "
    "3 \u00d7 % intense membrane staining of tumour cells (0\u2013300; membrane intensity "
    "only, not gated on completeness). Categories: ASCO/CAP 2018 IHC (0, 1+, 2+, 3+; "
    "2+ equivocal: reflex ISH) with the 2023 reporting (3+ HER2-positive; 1+ HER2-low; "
    "0 split into HER2-ultralow, faint or incomplete staining in > 0 and \u2264 10 % of "
    "tumour cells, and HER2-null)."
)

SAMPLE_COLUMNS = (
    "patient_id",
    "timepoint",
    "h_score",
    "pct_complete",
    "asco_cap_label",
    "her2_2023",
    "reflex_ish",
)
TIMEPOINTS = ("pre", "post")
TIMEPOINT_LABELS = {"pre": "Pre", "post": "Post"}
_HER2_COLOUR_EDGE = "#262626"  # the house style's axes colour: edge of the key swatches


def patient_labels(patient_ids: Sequence[str]) -> dict[str, str]:
    """Display label "Patient k" of each pseudonymous code, k in sorted code order."""
    return {pid: f"Patient {k}" for k, pid in enumerate(sorted(set(map(str, patient_ids))), 1)}


def representative_tiles(tiles: pd.DataFrame, samples: pd.DataFrame) -> pd.DataFrame:
    """The tile of each biopsy whose own H-score is closest to the biopsy's.

    Parameters
    ----------
    tiles : DataFrame
        One row per tile: ``image_id``, ``patient_id``, ``timepoint``,
        ``h_score`` (the tile's own H-score; NaN without tumour cells).
    samples : DataFrame
        One row per biopsy: ``patient_id``, ``timepoint``, ``h_score``.

    Returns
    -------
    DataFrame
        One row of ``tiles`` per biopsy (ties and tiles without tumour
        cells resolved by ``image_id`` order), sorted by patient and time.
    """
    require_columns(tiles, ("image_id", "patient_id", "timepoint", "h_score"), "tiles")
    require_columns(samples, ("patient_id", "timepoint", "h_score"), "samples")
    biopsy = samples.set_index(["patient_id", "timepoint"])["h_score"]
    rows = []
    for key, group in tiles.groupby(["patient_id", "timepoint"], sort=True):
        target = biopsy.get(key, np.nan)
        distance = (group["h_score"] - target).abs().fillna(np.inf)
        order = group.assign(distance=distance).sort_values(["distance", "image_id"])
        rows.append(order.iloc[0].drop("distance"))
    out = pd.DataFrame(rows)
    out["order"] = out["timepoint"].map({t: i for i, t in enumerate(TIMEPOINTS)})
    return out.sort_values(["patient_id", "order"]).drop(columns="order").reset_index(drop=True)


def central_field(image: np.ndarray, pixel_size_um: float, field_um: float) -> np.ndarray:
    """Central square of ``field_um`` (um) of an image (the whole side when smaller)."""
    side = int(round(field_um / pixel_size_um))
    h, w = image.shape[:2]
    top = max(0, (h - side) // 2)
    left = max(0, (w - side) // 2)
    return image[top : top + min(side, h), left : left + min(side, w)]


def _is_true(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value) if not pd.isna(value) else False


def category_text(asco_cap_label: str, her2_2023: str, reflex_ish) -> str:
    """The printed categories of a biopsy: ``"1+ HER2-low"``, ``"2+ equivocal: reflex ISH"``.

    Parameters
    ----------
    asco_cap_label : str
        ASCO/CAP 2018 category ("0", "1+", "2+", "3+").
    her2_2023 : str
        2023 reporting category, one of ``HER2_2023_LABELS``.
    reflex_ish : bool or str
        The reflex-ISH flag; adds "reflex ISH" when the 2023 text lacks it.

    Returns
    -------
    str
    """
    text = f"{asco_cap_label} {HER2_2023_SHORT[her2_2023]}"
    if _is_true(reflex_ish) and "ISH" not in text:
        text += " \u00b7 reflex ISH"
    return text


def _check_samples(samples: pd.DataFrame) -> pd.DataFrame:
    require_columns(samples, SAMPLE_COLUMNS, "samples")
    samples = samples.assign(
        patient_id=samples["patient_id"].astype(str),
        asco_cap_label=samples["asco_cap_label"].astype(str),
        her2_2023=samples["her2_2023"].astype(str),
    )
    for column, allowed in (("asco_cap_label", ASCO_CAP_LABELS), ("her2_2023", HER2_2023_LABELS)):
        bad = sorted(set(samples[column]) - set(allowed))
        if bad:
            raise ValueError(f"samples column {column!r} has {bad}; expected one of {allowed}")
    return samples


def _spread(values: np.ndarray, min_gap: float, lo: float, hi: float) -> np.ndarray:
    """Move label positions apart by at least ``min_gap``, keeping them in [lo, hi]."""
    values = np.asarray(values, dtype=float)
    order = np.argsort(values, kind="stable")  # by true value: leaders never cross
    placed = np.clip(values[order], lo, hi)
    for i in range(1, len(placed)):
        placed[i] = max(placed[i], placed[i - 1] + min_gap)
    overflow = placed[-1] - hi if len(placed) else 0.0
    if overflow > 0:
        placed -= overflow
        for i in range(len(placed) - 2, -1, -1):
            placed[i] = min(placed[i], placed[i + 1] - min_gap)
    placed = np.maximum(placed, lo)
    out = np.empty_like(placed)
    out[order] = placed
    return out


def _scale_bar(ax, pixel_size_um: float, shape, length_um: float) -> None:
    h, w = shape[:2]
    length_px = length_um / pixel_size_um
    margin = 0.05 * w
    x1, y = w - margin, h - margin
    ax.add_patch(
        Rectangle(
            (x1 - length_px - 0.02 * w, y - 0.13 * h),
            length_px + 0.04 * w,
            0.16 * h,
            facecolor="white",
            edgecolor="none",
            alpha=0.8,
        )
    )
    ax.plot([x1 - length_px, x1], [y, y], color="black", lw=1.6, solid_capstyle="butt")
    ax.text(
        x1 - length_px / 2, y - 0.025 * h, f"{length_um:g} µm", ha="center", va="bottom",
        fontsize=6,
    )  # fmt: skip


def _signed(value: float) -> str:
    """``+12`` / ``\u2212176`` (a true minus sign, as on the axes)."""
    return f"{value:+.0f}".replace("-", "\u2212")


def _paired(samples: pd.DataFrame, column: str) -> pd.DataFrame:
    """Patients with both biopsies: ``pre``, ``post`` values of ``column``."""
    wide = samples.pivot_table(index="patient_id", columns="timepoint", values=column)
    if not set(TIMEPOINTS) <= set(wide.columns):
        return pd.DataFrame(columns=list(TIMEPOINTS))
    return wide[list(TIMEPOINTS)].dropna()


def plot_biopsies(
    tiles: Sequence[dict],
    samples: pd.DataFrame,
    *,
    scale_bar_um: float = 50.0,
    cutoff_pct: float = 10.0,
    simulated: bool = False,
    width_mm: float = DOUBLE_COLUMN_MM,
) -> plt.Figure:
    """Figure 4: pre / post brightfield tiles per patient and paired biopsy scores.

    Parameters
    ----------
    tiles : sequence of dict
        One per shown tile: ``patient_id``, ``timepoint`` ("pre" / "post"),
        ``image`` (uint8 RGB: the brightfield tile with its class outlines,
        :func:`sepher.ihc.class_overlay`) and ``pixel_size_um`` (um).
    samples : DataFrame
        Per-biopsy scores (``results/imaging/ihc_samples.csv``): columns
        ``patient_id``, ``timepoint``, ``h_score`` (standard, 0-300),
        ``pct_complete`` (%), ``asco_cap_label`` ("0", "1+", "2+", "3+"),
        ``her2_2023`` (``HER2_2023_LABELS``), ``reflex_ish`` (bool);
        ``asco_cap_rule`` (text of the deciding rule) is printed under the
        tile when present.
    scale_bar_um : float, default 50
        Scale bar length (um).
    cutoff_pct : float, default 10
        ASCO/CAP cut-off drawn on the complete-staining panel (%).
    simulated : bool, default False
        Stamp the figure "SIMULATED DATA".
    width_mm : float, default 183
        Figure width (journal double column).

    Returns
    -------
    matplotlib.figure.Figure
    """
    samples = _check_samples(samples)
    labels = patient_labels(samples["patient_id"])
    patients = sorted(labels)
    n = max(len(patients), 1)
    by_key = {(str(t["patient_id"]), t["timepoint"]): t for t in tiles}
    # patients are told apart by line style and a "P k" tag, not by colour: every
    # study colour already has a meaning (conditions, groups, HER2 classes)
    colours = {labels[p]: PATIENT_INK for p in patients}
    styles = {labels[p]: PATIENT_LINESTYLES[k % len(PATIENT_LINESTYLES)]
              for k, p in enumerate(patients)}  # fmt: skip

    fig = manual_figure(width_mm, 100.0)  # height set once the text is measured
    renderer = fig.canvas.get_renderer()
    px_per_mm = fig.dpi / 25.4

    def width_mm_of(text, size, weight="normal"):
        return text_width_px(text, renderer, size, weight) / px_per_mm

    # --- horizontal layout (mm from the left) -----------------------------------
    left_mm, gap_mm, right_mm = 7.0, 2.0, 1.0
    tile_mm = min(42.0, (width_mm - left_mm - right_mm - (n - 1) * gap_mm) / n)
    label_pt, rule_pt, line_mm = 6.0, 5.0, 2.5
    rule_of = {}
    if "asco_cap_rule" in samples:
        for row in samples.itertuples():
            rule = str(row.asco_cap_rule) if not pd.isna(row.asco_cap_rule) else ""
            rule = rule.split(": ", 1)[1] if ": " in rule else rule
            rule = rule.replace("<=", "\u2264").replace(">=", "\u2265")
            rule_of[(row.patient_id, row.timepoint)] = wrap_to_width(
                rule, (tile_mm - gap_mm) * px_per_mm, renderer, rule_pt
            )
    rule_lines = max((r.count("\n") + 1 for r in rule_of.values() if r), default=0)
    strip_mm = 2 * line_mm + rule_lines * 0.85 * line_mm + 1.5

    point_text = {
        (row.patient_id, row.timepoint): category_text(
            row.asco_cap_label, row.her2_2023, row.reflex_ish
        )
        for row in samples.itertuples()
    }
    widest = max(
        (width_mm_of(f"P{len(patients)} {t}", label_pt, "bold") for t in point_text.values()),
        default=10.0,
    )
    ylabel_mm, span_mm, lead_mm = 12.0, 18.0, 3.0
    side_mm = widest + lead_mm + 1.0
    b_left = ylabel_mm
    b_width = side_mm + span_mm + side_mm
    c_left = b_left + b_width + 14.0
    legend_mm = max(
        width_mm_of(HER2_2023_SHORT["HER2-equivocal (reflex ISH)"], 6.5) + 9.0,
        width_mm_of("ASCO/CAP cut-off", 6.5) + 9.0,
    )
    c_width = max(22.0, width_mm - right_mm - legend_mm - 2.0 - c_left)

    # --- vertical layout (mm from the bottom) -----------------------------------
    note_pt = 5.5
    note = wrap_to_width(FIG4_NOTE, (width_mm - 2.0) * px_per_mm, renderer, note_pt)
    note_mm = (note.count("\n") + 1) * 2.3 + 1.5
    plot_bottom = note_mm + 9.0
    plot_h = 46.0
    title_mm = 10.0
    key_mm = 9.0
    tiles_bottom = plot_bottom + plot_h + title_mm + 4.0 + key_mm
    row_mm = tile_mm + strip_mm
    top_strip = 9.0
    height_mm = tiles_bottom + 2 * row_mm + gap_mm + top_strip
    fig.set_size_inches(mm(width_mm), mm(height_mm))

    def fx(x):
        return x / width_mm

    def fy(y):
        return y / height_mm

    # --- a: tiles ----------------------------------------------------------------
    fig.text(fx(1.0), fy(height_mm - 1.5), "a", fontsize=9, fontweight="bold", va="top")
    for col, pid in enumerate(patients):
        x0 = left_mm + col * (tile_mm + gap_mm)
        fig.text(fx(x0 + tile_mm / 2), fy(height_mm - top_strip + 2.0), labels[pid],
                 ha="center", va="bottom", fontsize=7, fontweight="bold")  # fmt: skip
        for row, when in enumerate(TIMEPOINTS):
            y0 = tiles_bottom + (1 - row) * (row_mm + gap_mm) + strip_mm
            ax = fig.add_axes((fx(x0), fy(y0), fx(tile_mm), fy(tile_mm)))
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(True)
                spine.set_linewidth(0.4)
                spine.set_color(GREY)
            tile = by_key.get((pid, when))
            score = samples[(samples["patient_id"] == pid) & (samples["timepoint"] == when)]
            if tile is None:
                ax.text(0.5, 0.5, "no biopsy", ha="center", va="center", color=GREY)
            else:
                image = np.asarray(tile["image"])
                # nearest: every outline pixel stays one pixel, never blurred into the stain
                ax.imshow(image, interpolation="nearest")
                ax.set_xlim(-0.5, image.shape[1] - 0.5)
                ax.set_ylim(image.shape[0] - 0.5, -0.5)
                _scale_bar(ax, float(tile["pixel_size_um"]), image.shape, scale_bar_um)
            if len(score):
                s = score.iloc[0]
                text_top = fy(y0 - 0.6)
                fig.text(fx(x0), text_top, point_text[(pid, when)], ha="left", va="top",
                         fontsize=label_pt, fontweight="bold")  # fmt: skip
                fig.text(
                    fx(x0), fy(y0 - 0.6 - line_mm),
                    f"H-score {s['h_score']:.0f} \u00b7 complete {s['pct_complete']:.0f} %",
                    ha="left", va="top", fontsize=label_pt,
                )  # fmt: skip
                rule = rule_of.get((pid, when), "")
                if rule:
                    fig.text(fx(x0), fy(y0 - 0.6 - 2 * line_mm), rule, ha="left", va="top",
                             fontsize=rule_pt, color=GREY, linespacing=1.05)  # fmt: skip
    for row, when in enumerate(TIMEPOINTS):
        y0 = tiles_bottom + (1 - row) * (row_mm + gap_mm) + strip_mm
        fig.text(fx(left_mm - 2.0), fy(y0 + tile_mm / 2), f"{TIMEPOINT_LABELS[when]} biopsy",
                 rotation=90, ha="right", va="center", fontsize=7,
                 fontweight="bold")  # fmt: skip

    # key of panel a: outline colours
    swatches = [
        Patch(
            facecolor=HER2_CLASS_COLOURS[k], edgecolor=_HER2_COLOUR_EDGE, linewidth=0.4, label=k
        )  # fmt: skip
        for k in ASCO_CAP_LABELS
    ]
    fig.legend(
        handles=swatches,
        loc="center left",
        bbox_to_anchor=(fx(left_mm - 1.0), fy(tiles_bottom - key_mm / 2)),
        ncol=4,
        title="Tumour-cell outline: the cell's HER2 membrane class",
        alignment="left",
        columnspacing=1.2,
        handlelength=1.4,
        handleheight=0.9,
    )
    fig.text(
        fx(width_mm - right_mm), fy(tiles_bottom - key_mm / 2),
        "Brightfield H-DAB, as scanned\nnon-tumour cells not outlined",
        ha="right", va="center", fontsize=6, color=GREY,
    )  # fmt: skip

    # --- b: paired H-score ---------------------------------------------------------
    both = _paired(samples, "h_score")
    change = both["post"] - both["pre"]
    summary = (
        f"n = {len(both)} patients with both biopsies; median change (post \u2212 pre) "
        f"{_signed(np.median(change))} (range {_signed(change.min())} to "
        f"{_signed(change.max())}); descriptive, no test"
        if len(both)
        else "no patient with both biopsies"
    )
    ax_b = fig.add_axes((fx(b_left), fy(plot_bottom), fx(b_width), fy(plot_h)))
    lo_x, hi_x = -side_mm / span_mm, 1.0 + side_mm / span_mm
    _paired_axes(ax_b, lo_x, hi_x, 300.0, 50.0, "H-score (standard, 0\u2013300)")
    top_y = fig_title_y = plot_bottom + plot_h + title_mm
    fig.text(fx(1.0), fy(top_y + 3.0), "b", fontsize=9, fontweight="bold", va="top")
    title = wrap_to_width(summary, (b_width + 2.0) * px_per_mm, renderer, 6.0)
    fig.text(fx(b_left), fy(fig_title_y - 1.0), "Standard H-score, pre vs post", fontsize=7,
             fontweight="bold", va="top")  # fmt: skip
    fig.text(fx(b_left), fy(fig_title_y - 4.0), title, fontsize=6, color=GREY, va="top",
             linespacing=1.1)  # fmt: skip
    gap_y = 2.8 / plot_h * 300.0 * 1.04
    lead_x = lead_mm / span_mm
    points: dict[int, list] = {}
    for pid, xs, ys in _paired_lines(ax_b, samples, patients, "h_score", colours, styles, labels):
        tag = labels[pid].replace("Patient ", "P")
        for i, y in zip(xs, ys, strict=True):
            points.setdefault(i, []).append((pid, y, f"{tag} {point_text[(pid, TIMEPOINTS[i])]}"))
    for i, items in points.items():
        ys = np.nan_to_num(np.array([y for _, y, _ in items]))
        placed = _spread(ys, gap_y, 0.5 * gap_y, 300.0 * 1.04 - 0.5 * gap_y)
        dx, ha = (-lead_x, "right") if i == 0 else (lead_x, "left")
        for (pid, y, text), y_text in zip(items, placed, strict=True):
            colour = colours[labels[pid]]
            ax_b.annotate(
                text, xy=(i, y), xytext=(i + dx, y_text), ha=ha, va="center",
                fontsize=label_pt, fontweight="bold", color=colour, annotation_clip=False,
                arrowprops={"arrowstyle": "-", "lw": 0.4, "color": colour,
                            "shrinkA": 0, "shrinkB": 3},
            )  # fmt: skip

    # --- c: paired completeness -----------------------------------------------------
    ax_c = fig.add_axes((fx(c_left), fy(plot_bottom), fx(c_width), fy(plot_h)))
    _paired_axes(ax_c, -0.35, 1.35, 100.0, 20.0,
                 "Tumour cells with complete\nmembrane staining (%)")  # fmt: skip
    fig.text(fx(c_left - 12.0), fy(top_y + 3.0), "c", fontsize=9, fontweight="bold", va="top")
    fig.text(fx(c_left), fy(fig_title_y - 1.0), "Complete staining", fontsize=7,
             fontweight="bold", va="top")  # fmt: skip
    ax_c.axhline(cutoff_pct, color=GREY, lw=0.6, ls=(0, (3, 2)), zorder=0)
    _paired_lines(ax_c, samples, patients, "pct_complete", colours, styles, labels)

    # legends of b and c: patients; 2023 markers and the cut-off below them
    legend_x = fx(c_left + c_width + 2.0)
    first = fig.legend(
        handles=[Line2D([], [], color=colours[labels[p]], ls=styles[labels[p]], lw=1.0,
                        label=labels[p].replace("Patient ", "P"))
                 for p in patients],
        loc="upper left",
        bbox_to_anchor=(legend_x, fy(plot_bottom + plot_h + title_mm - 1.0)),
        title="Patient",
        alignment="left",
        handlelength=1.6,
        labelspacing=0.3,
        borderaxespad=0.0,
    )  # fmt: skip
    shown = [c for c in HER2_2023_LABELS if c in set(samples["her2_2023"])]
    markers = [
        Line2D(
            [],
            [],
            ls="none",
            marker=HER2_2023_MARKERS[c],
            ms=4.5,
            mfc="white",
            mec="black",
            mew=0.8,
            label=HER2_2023_SHORT[c],
        )  # fmt: skip
        for c in shown
    ]
    markers.append(
        Line2D(
            [],
            [],
            color=GREY,
            lw=0.6,
            ls=(0, (3, 2)),
            label=f"c: ASCO/CAP cut-off\n({cutoff_pct:g} % of cells)",
        )  # fmt: skip
    )
    below = first.get_window_extent(renderer).y0 / fig.bbox.height - fy(2.0)
    fig.legend(
        handles=markers,
        loc="upper left",
        bbox_to_anchor=(legend_x, below),
        title="Marker: 2023 category",
        alignment="left",
        handlelength=1.6,
        labelspacing=0.3,
        borderaxespad=0.0,
    )

    fig.text(fx(1.0), fy(0.8), note, fontsize=note_pt, color=GREY, va="bottom",
             linespacing=1.15)  # fmt: skip
    if simulated:
        stamp_simulated(fig)
    return fig


def _paired_lines(ax, samples, patients, column, colours, styles, labels):
    """Draw each patient's pre -> post line of ``column`` on ``ax``, one open
    marker per biopsy in the shape of its 2023 category; returns
    ``[(patient_id, xs, ys), ...]`` (x: index in ``TIMEPOINTS``) for labelling."""
    drawn = []
    for pid in patients:
        rows = samples[samples["patient_id"] == pid].set_index("timepoint")
        xs = [i for i, t in enumerate(TIMEPOINTS) if t in rows.index]
        ys = [float(rows.loc[TIMEPOINTS[i], column]) for i in xs]
        colour = colours[labels[pid]]
        ax.plot(xs, ys, ls=styles[labels[pid]], color=colour, lw=1.0, zorder=2)
        for i, y in zip(xs, ys, strict=True):
            category = rows.loc[TIMEPOINTS[i], "her2_2023"]
            ax.plot(i, y, HER2_2023_MARKERS[category], ms=4.5, mfc="white", mec=colour,
                    mew=1.0, zorder=3)  # fmt: skip
        drawn.append((pid, xs, ys))
    return drawn


def _paired_axes(ax, lo_x: float, hi_x: float, top: float, step: float, ylabel: str) -> None:
    ax.set_xlim(lo_x, hi_x)
    ax.set_ylim(-0.03 * top, top * 1.04)  # markers at 0 clear of the axis
    ax.set_yticks(np.arange(0.0, top + 1e-9, step))
    ax.set_xticks([0, 1], [f"{TIMEPOINT_LABELS[t]}\nbiopsy" for t in TIMEPOINTS])
    ax.set_ylabel(ylabel)
