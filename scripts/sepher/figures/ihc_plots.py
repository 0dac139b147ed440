"""Figure 4: HER2 IHC of paired biopsies, before and after treatment.

Panel a shows, for each patient, one representative tile of the pre and of
the post biopsy: the DAB deconvolution channel (grey, white = no DAB) with
each cell's outline coloured by its HER2 membrane class (0 / 1+ / 2+ / 3+,
grey: non-tumour), a scale bar in micrometres and the biopsy's ASCO/CAP
category and H-score. Panels b and c pair the pre and post biopsies of each
patient: H-score and percent of tumour cells with complete membrane
staining, the ASCO/CAP category written at every point.

Patients are shown as "Patient 1..n" in the order of their pseudonymous
biopsy codes (``patient_id``), which stay in the result tables only.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import to_hex
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from sepher.ihc.overlay import CLASS_COLOURS, DAB_DISPLAY_MAX_OD

from .style import (
    DOUBLE_COLUMN_MM,
    GREY,
    group_colours,
    manual_figure,
    require_columns,
    stamp_simulated,
)

__all__ = [
    "central_field",
    "patient_labels",
    "plot_biopsies",
    "representative_tiles",
]

SAMPLE_COLUMNS = ("patient_id", "timepoint", "h_score", "pct_complete", "asco_cap_label")
TIMEPOINTS = ("pre", "post")
TIMEPOINT_LABELS = {"pre": "Pre", "post": "Post"}
_PT_MM = 25.4 / 72.0


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


def _spread(values: np.ndarray, min_gap: float, lo: float, hi: float) -> np.ndarray:
    """Move label positions apart by at least ``min_gap``, keeping them in [lo, hi]."""
    values = np.asarray(values, dtype=float)
    order = np.argsort(values, kind="stable")
    placed = values[order].copy()
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


def _tile_axes(fig, rect_mm, width_mm, height_mm):
    left, bottom, w, h = rect_mm
    return fig.add_axes((left / width_mm, bottom / height_mm, w / width_mm, h / height_mm))


def plot_biopsies(
    tiles: Sequence[dict],
    samples: pd.DataFrame,
    *,
    scale_bar_um: float = 50.0,
    cutoff_pct: float = 10.0,
    dab_max_od: float = DAB_DISPLAY_MAX_OD,
    simulated: bool = False,
    width_mm: float = DOUBLE_COLUMN_MM,
) -> plt.Figure:
    """Figure 4: pre / post IHC tiles per patient and paired biopsy scores.

    Parameters
    ----------
    tiles : sequence of dict
        One per shown tile: ``patient_id``, ``timepoint`` ("pre" / "post"),
        ``image`` (uint8 RGB overlay, e.g. :func:`sepher.ihc.class_overlay`
        on :func:`sepher.ihc.dab_greyscale`) and ``pixel_size_um`` (um).
    samples : DataFrame
        Per-biopsy scores (``results/imaging/ihc_samples.csv``): columns
        ``patient_id``, ``timepoint``, ``h_score`` (0-300), ``pct_complete``
        (%), ``asco_cap_label`` ("0", "1+", "2+", "3+").
    scale_bar_um : float, default 50
        Scale bar length (um).
    cutoff_pct : float, default 10
        ASCO/CAP cut-off drawn on the complete-staining panel (%).
    dab_max_od : float, default 1.5
        DAB OD shown black in the tiles (for the grey scale key).
    simulated : bool, default False
        Stamp the figure "SIMULATED DATA".
    width_mm : float, default 183
        Figure width (journal double column).

    Returns
    -------
    matplotlib.figure.Figure
    """
    require_columns(samples, SAMPLE_COLUMNS, "samples")
    samples = samples.assign(patient_id=samples["patient_id"].astype(str))
    labels = patient_labels(samples["patient_id"])
    patients = sorted(labels)
    n = max(len(patients), 1)
    by_key = {(str(t["patient_id"]), t["timepoint"]): t for t in tiles}

    # layout (mm, from the bottom-left corner)
    left_mm, gap_mm, right_mm = 7.0, 2.0, 1.0
    tile_mm = min(42.0, (width_mm - left_mm - right_mm - (n - 1) * gap_mm) / n)
    plot_h, plot_bottom = 48.0, 11.0
    legend_h = 9.0
    top_strip = 13.0
    tiles_bottom = plot_bottom + plot_h + 12.0 + legend_h
    height_mm = tiles_bottom + 2 * tile_mm + gap_mm + top_strip
    fig = manual_figure(width_mm, height_mm)

    def fig_y(mm_from_bottom):
        return mm_from_bottom / height_mm

    def fig_x(mm_from_left):
        return mm_from_left / width_mm

    # --- a: tiles --------------------------------------------------------------
    fig.text(fig_x(1.0), fig_y(height_mm - 3.5), "a", fontsize=9, fontweight="bold", va="top")
    for col, pid in enumerate(patients):
        x0 = left_mm + col * (tile_mm + gap_mm)
        fig.text(
            fig_x(x0 + tile_mm / 2),
            fig_y(height_mm - top_strip + 1.5),
            labels[pid],
            ha="center",
            va="bottom",
            fontsize=7,
            fontweight="bold",
        )
        for row, when in enumerate(TIMEPOINTS):
            y0 = tiles_bottom + (1 - row) * (tile_mm + gap_mm)
            ax = _tile_axes(fig, (x0, y0, tile_mm, tile_mm), width_mm, height_mm)
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
                continue
            image = np.asarray(tile["image"])
            ax.imshow(image, interpolation="antialiased")
            ax.set_xlim(-0.5, image.shape[1] - 0.5)
            ax.set_ylim(image.shape[0] - 0.5, -0.5)
            _scale_bar(ax, float(tile["pixel_size_um"]), image.shape, scale_bar_um)
            if len(score):
                s = score.iloc[0]
                ax.text(
                    0.03,
                    0.97,
                    f"{s['asco_cap_label']}   H-score {s['h_score']:.0f}",
                    transform=ax.transAxes,
                    ha="left",
                    va="top",
                    fontsize=6,
                    fontweight="bold",
                    bbox={"boxstyle": "square,pad=0.25", "facecolor": "white",
                          "edgecolor": "none", "alpha": 0.85},
                )  # fmt: skip
    for row, when in enumerate(TIMEPOINTS):
        y0 = tiles_bottom + (1 - row) * (tile_mm + gap_mm)
        fig.text(
            fig_x(left_mm - 2.0),
            fig_y(y0 + tile_mm / 2),
            f"{TIMEPOINT_LABELS[when]} biopsy",
            rotation=90,
            ha="right",
            va="center",
            fontsize=7,
            fontweight="bold",
        )

    # key: outline colours and DAB grey scale
    handles = [
        Line2D([], [], color=to_hex(np.array(CLASS_COLOURS[k]) / 255), lw=2.0, label=label)
        for k, label in ((0, "0"), (1, "1+"), (2, "2+"), (3, "3+"), ("stroma", "non-tumour"))
    ]
    key_y = fig_y(tiles_bottom - legend_h / 2 - 1.0)
    fig.legend(
        handles=handles,
        loc="center left",
        bbox_to_anchor=(fig_x(left_mm - 1.0), key_y),
        ncol=5,
        title="Cell outline: HER2 membrane class",
        alignment="left",
        columnspacing=1.2,
        handlelength=1.4,
    )
    bar_w = 34.0
    cax = fig.add_axes(
        (fig_x(width_mm - right_mm - bar_w - 3.0), fig_y(tiles_bottom - legend_h + 2.0),
         fig_x(bar_w), fig_y(2.2))
    )  # fmt: skip
    gradient = np.linspace(0, dab_max_od, 256)[None, :]
    cax.imshow(gradient, cmap="gray_r", aspect="auto", extent=(0, dab_max_od, 0, 1))
    cax.set_yticks([])
    cax.set_xticks(np.arange(0, dab_max_od + 1e-9, 0.5))
    cax.tick_params(labelsize=6)
    cax.set_title("DAB channel (optical density)", fontsize=6.5, fontweight="normal", pad=2)

    # --- b, c: paired scores --------------------------------------------------
    colours = group_colours([labels[p] for p in patients])
    panel_w = 55.0
    panels = (
        ("b", "h_score", "H-score", 300.0, 16.0),
        ("c", "pct_complete", "Tumour cells with complete\nmembrane staining (%)", 100.0, 95.0),
    )
    for letter, column, ylabel, top, x_left in panels:
        ax = fig.add_axes((fig_x(x_left), fig_y(plot_bottom), fig_x(panel_w), fig_y(plot_h)))
        fig.text(
            fig_x(x_left - 15.0),
            fig_y(plot_bottom + plot_h + 8.0),
            letter,
            fontsize=9,
            fontweight="bold",
            va="top",
        )
        ax.set_xlim(-0.75, 1.75)
        ax.set_ylim(0, top * 1.04)
        ax.set_xticks([0, 1], [f"{TIMEPOINT_LABELS[t]} biopsy" for t in TIMEPOINTS])
        ax.set_ylabel(ylabel)
        ax.set_title("Labels: ASCO/CAP category", fontsize=6.5, fontweight="normal", color=GREY)
        if column == "pct_complete":
            ax.axhline(
                cutoff_pct,
                color=GREY,
                lw=0.6,
                ls=(0, (3, 2)),
                zorder=0,
                label=f"ASCO/CAP cut-off\n({cutoff_pct:g} % of cells)",
            )
        points = {}
        for pid in patients:
            rows = samples[samples["patient_id"] == pid].set_index("timepoint")
            xs = [i for i, t in enumerate(TIMEPOINTS) if t in rows.index]
            ys = [float(rows.loc[TIMEPOINTS[i], column]) for i in xs]
            ax.plot(xs, ys, "-o", color=colours[labels[pid]], lw=1.0, ms=3.5, zorder=3,
                    label=labels[pid])  # fmt: skip
            for i, y in zip(xs, ys, strict=True):
                points.setdefault(i, []).append((pid, y, rows.loc[TIMEPOINTS[i], "asco_cap_label"]))
        gap = 0.075 * top
        for i, items in points.items():
            ys = np.array([y for _, y, _ in items])
            placed = _spread(np.nan_to_num(ys), gap, 0.02 * top, top)
            dx, ha = (-0.1, "right") if i == 0 else (0.1, "left")
            for (pid, y, cat), y_text in zip(items, placed, strict=True):
                ax.annotate(
                    cat,
                    xy=(i, y),
                    xytext=(i + dx, y_text),
                    ha=ha,
                    va="center",
                    fontsize=6,
                    fontweight="bold",
                    color=colours[labels[pid]],
                    arrowprops={"arrowstyle": "-", "lw": 0.4, "color": colours[labels[pid]],
                                "shrinkA": 0, "shrinkB": 2},
                )  # fmt: skip
        if letter == "c":
            ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5))
    if simulated:
        stamp_simulated(fig)
    return fig
