"""Immunofluorescence figures: HER2 localisation (fig 2), sequential exposure
(fig 3) and segmentation / image QC (fig S1).

Pure functions: arrays and tables in, a :class:`matplotlib.figure.Figure`
out. Image panels share one HER2 display range so that brightness compares
across conditions; HER2 is shown in green, the nuclear stain in magenta
(colour-blind safe), segmentation outlines in white (cells) and yellow
(nuclei), with a scale bar in micrometres.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
from matplotlib.patches import Rectangle
from skimage.segmentation import find_boundaries

from sepher.figures.style import (
    DOUBLE_COLUMN_MM,
    GREY,
    LIGHT_GREY,
    PALETTE,
    group_colours,
    manual_figure,
    stamp_simulated,
)
from sepher.formatting import format_p

__all__ = [
    "choose_representative",
    "display_range",
    "field_rgb",
    "plot_her2_localisation",
    "plot_segmentation_qc",
    "plot_sequential_exposure",
]

HER2_LABEL = "Membrane HER2\n(ADU above background)"
NUCLEAR_FRACTION_LABEL = "Nuclear fraction of HER2"


def choose_representative(per_image: pd.DataFrame, value: str = "her2_net_membrane") -> pd.Series:
    """Representative image of each condition, chosen deterministically.

    The image whose median ``value`` is closest to the condition's median
    over its images (ties: first image id).

    Parameters
    ----------
    per_image : DataFrame
        Image-level summary with ``cell_line``, ``condition``, ``image_id``
        and ``value``.

    Returns
    -------
    Series
        Image id indexed by (cell_line, condition).
    """
    out = {}
    for key, group in per_image.groupby(["cell_line", "condition"], sort=True):
        distance = (group[value] - group[value].median()).abs()
        order = pd.DataFrame({"d": distance.round(9), "id": group["image_id"]})
        out[key] = order.sort_values(["d", "id"])["id"].iloc[0]
    return pd.Series(out, dtype=object)


def display_range(channels, low: float = 0.5, high: float = 99.8) -> tuple[float, float]:
    """Common display range (percentiles ``low``, ``high``) over several images."""
    values = np.concatenate([np.asarray(c, dtype=np.float32).ravel() for c in channels])
    lo, hi = np.percentile(values, [low, high])
    return float(lo), float(max(hi, lo + 1.0))


def _scale(channel, limits):
    lo, hi = limits
    return np.clip((np.asarray(channel, dtype=np.float32) - lo) / (hi - lo), 0.0, 1.0)


def field_rgb(
    her2=None,
    nuclear=None,
    *,
    her2_range=None,
    nuclear_range=None,
    nuclei=None,
    cells=None,
) -> np.ndarray:
    """RGB rendering of a field: HER2 green, nuclear stain magenta, outlines.

    Parameters
    ----------
    her2, nuclear : ndarray, 2-D, optional
        Channel intensities (either may be None).
    her2_range, nuclear_range : (float, float), optional
        Display ranges (intensity units); default each image's percentiles.
    nuclei, cells : ndarray of int, optional
        Label images drawn as yellow (nuclei) and white (cells) outlines.

    Returns
    -------
    ndarray, shape (Y, X, 3), float in [0, 1]
    """
    shape = (her2 if her2 is not None else nuclear).shape
    rgb = np.zeros(shape + (3,), dtype=np.float32)
    if her2 is not None:
        rgb[..., 1] += _scale(her2, her2_range or display_range([her2]))
    if nuclear is not None:
        n = _scale(nuclear, nuclear_range or display_range([nuclear]))
        rgb[..., 0] += n
        rgb[..., 2] += n
    rgb = np.clip(rgb, 0, 1)
    if cells is not None:
        rgb[find_boundaries(cells, mode="inner")] = (1.0, 1.0, 1.0)
    if nuclei is not None:
        rgb[find_boundaries(nuclei, mode="inner")] = (1.0, 0.85, 0.0)
    return rgb


def _image_axis(ax, rgb, pixel_size_um, title=None, bar_um=20.0, label_bar=False):
    ax.imshow(rgb, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    h, w = rgb.shape[:2]
    length = bar_um / pixel_size_um
    x0, y0 = w - length - 0.05 * w, h - 0.07 * h
    ax.add_patch(Rectangle((x0, y0), length, 0.025 * h, color="white", lw=0))
    if label_bar:
        ax.text(
            x0 + length / 2,
            y0 - 0.02 * h,
            f"{bar_um:g} µm",
            color="white",
            ha="center",
            va="bottom",
            fontsize=5.5,
        )
    if title:
        ax.set_title(title, fontsize=6.5, fontweight="normal", loc="center", pad=2)


def _condition_axis(ax, conditions, replicates, summary, value, colours, conf_level, jitter=0.12):
    """Replicate means (dots) with the condition mean and its t-CI (bar)."""
    for i, condition in enumerate(conditions):
        reps = replicates[replicates["condition"] == condition][value].dropna().to_numpy()
        offsets = np.linspace(-jitter, jitter, max(len(reps), 1))[: len(reps)]
        ax.scatter(i + offsets, reps, s=9, color=colours[condition], alpha=0.75, lw=0, zorder=3)
        row = summary[summary["condition"] == condition]
        if len(row):
            mean = float(row[f"{value}_mean"].iloc[0])
            lo, hi = float(row[f"{value}_ci_low"].iloc[0]), float(row[f"{value}_ci_high"].iloc[0])
            ax.errorbar(
                i,
                mean,
                yerr=[[mean - lo], [hi - mean]],
                fmt="none",
                ecolor="#262626",
                elinewidth=0.8,
                capsize=2.5,
                zorder=4,
            )
            ax.plot([i - 0.25, i + 0.25], [mean, mean], color="#262626", lw=1.0, zorder=4)
    ax.set_xticks(range(len(conditions)), conditions)
    ax.set_xlim(-0.6, len(conditions) - 0.4)


def _p_bracket(ax, x1, x2, y, text):
    ax.plot([x1, x1, x2, x2], [y * 0.985, y, y, y * 0.985], color=GREY, lw=0.6)
    ax.text((x1 + x2) / 2, y, text, ha="center", va="bottom", fontsize=5.5, color="#262626")


def _add_p_values(ax, conditions, comparisons, value, top):
    """Brackets with the replicate-level Welch p of each comparison shown."""
    level = 0
    for _, row in comparisons[comparisons["value"] == value].iterrows():
        if row["test"] in conditions and row["reference"] in conditions:
            i, j = conditions.index(row["reference"]), conditions.index(row["test"])
            _p_bracket(ax, min(i, j), max(i, j), top * (1.08 + 0.13 * level), format_p(row["p"]))
            level += 1
    ax.set_ylim(0, top * (1.12 + 0.13 * max(level, 1)))


def plot_her2_localisation(
    fields: list[dict],
    cells: pd.DataFrame,
    replicates: pd.DataFrame,
    conditions_summary: pd.DataFrame,
    comparisons: pd.DataFrame,
    *,
    conditions: list[str],
    lines: list[str] | None = None,
    conf_level: float = 0.95,
    simulated: bool = False,
) -> plt.Figure:
    """Figure 2: HER2 localisation by immunofluorescence.

    Parameters
    ----------
    fields : list of dict
        One representative field per condition (display order), each with
        ``condition``, ``cell_line``, ``image_id``, ``her2``, ``nuclear``
        (2-D arrays), ``nuclei``, ``cells`` (labels), ``pixel_size_um``.
    cells : DataFrame
        Per-cell table (``if_cells.csv``); excluded cells are not drawn.
    replicates, conditions_summary, comparisons : DataFrame
        ``if_replicates.csv``, condition rows of ``if_summary.csv`` and
        ``if_comparisons.csv``.
    conditions : list of str
        Conditions shown, in order.
    conf_level : float
        Level of the plotted CIs (for the axis note).
    simulated : bool
        Stamp "SIMULATED DATA".

    Returns
    -------
    matplotlib.figure.Figure
    """
    lines = list(lines or dict.fromkeys(conditions_summary["cell_line"]))
    n_rows = len(fields)
    img_w = 31.0
    fig_h = 12 + n_rows * (img_w + 3) + 66
    fig = manual_figure(DOUBLE_COLUMN_MM, fig_h)
    W, H = DOUBLE_COLUMN_MM, fig_h

    def axes_mm(x, y, w, h):
        return fig.add_axes([x / W, 1 - (y + h) / H, w / W, h / H])

    her2_range = display_range([f["her2"] for f in fields])
    nuc_range = display_range([f["nuclear"] for f in fields])
    line_name = fields[0]["cell_line"] if fields else ""
    fig.text(4 / W, 1 - 4 / H, "a", fontsize=9, fontweight="bold", va="top")
    fig.text(
        10 / W,
        1 - 4.6 / H,
        f"{line_name}: representative fields",
        fontsize=6.5,
        va="top",
    )
    for r, field in enumerate(fields):
        y = 12 + r * (img_w + 3)
        panels = [
            ("HER2", field_rgb(her2=field["her2"], her2_range=her2_range)),
            ("Nuclear stain", field_rgb(nuclear=field["nuclear"], nuclear_range=nuc_range)),
            (
                "Merge + segmentation",
                field_rgb(
                    field["her2"],
                    field["nuclear"],
                    her2_range=her2_range,
                    nuclear_range=nuc_range,
                    nuclei=field["nuclei"],
                    cells=field["cells"],
                ),
            ),
        ]
        for c, (title, rgb) in enumerate(panels):
            ax = axes_mm(18 + c * (img_w + 2), y, img_w, img_w)
            _image_axis(
                ax, rgb, field["pixel_size_um"], title if r == 0 else None, label_bar=(c == 2)
            )
        fig.text(
            15 / W,
            1 - (y + img_w / 2) / H,
            field["condition"],
            rotation=90,
            ha="right",
            va="center",
            fontsize=7,
            fontweight="bold",
        )

    # b: per-cell distributions with replicate means (SuperPlot), both lines
    colours = group_colours(conditions)
    x_b = 18 + 3 * (img_w + 2) + 19
    w_b = W - x_b - 4
    h_b = (n_rows * (img_w + 3) - 3 - 14 - 4) / 2
    kept = cells[~cells["excluded"].astype(bool)]
    fig.text((x_b - 10) / W, 1 - 4 / H, "b", fontsize=9, fontweight="bold", va="top")
    for k, line in enumerate(lines[:2]):
        ax = axes_mm(x_b, 14 + k * (h_b + 14), w_b, h_b)
        per_line = kept[kept["cell_line"] == line]
        for i, condition in enumerate(conditions):
            values = per_line.loc[per_line["condition"] == condition, "her2_net_membrane"]
            values = values.dropna().to_numpy()
            if len(values) > 1:
                parts = ax.violinplot(values, positions=[i], widths=0.75, showextrema=False)
                for body in parts["bodies"]:
                    body.set_facecolor(colours[condition])
                    body.set_alpha(0.25)
                    body.set_edgecolor("none")
            rng = np.random.default_rng(i)
            ax.scatter(
                i + rng.uniform(-0.22, 0.22, len(values)),
                values,
                s=1.2,
                color=colours[condition],
                alpha=0.45,
                lw=0,
                rasterized=True,
            )
            reps = replicates[
                (replicates["cell_line"] == line) & (replicates["condition"] == condition)
            ]
            ax.scatter(
                np.full(len(reps), i),
                reps["her2_net_membrane"],
                s=16,
                marker="D",
                color="white",
                edgecolor="#262626",
                lw=0.7,
                zorder=4,
            )
        ax.set_xticks(range(len(conditions)), conditions)
        ax.set_xlim(-0.6, len(conditions) - 0.4)
        ax.set_ylabel("Membrane HER2 per cell\n(ADU above background)")
        ax.set_title(line, loc="left")
        ax.set_ylim(bottom=min(0, ax.get_ylim()[0]))

    # c, d: condition means with CI and replicate-level p, both lines
    y_c = 12 + n_rows * (img_w + 3) + 8
    h_c = 40
    panels = [
        ("c", "her2_net_membrane", HER2_LABEL),
        ("d", "nuclear_fraction", NUCLEAR_FRACTION_LABEL),
    ]
    n_lines = max(len(lines), 1)
    w_c = (W - 22 - 12 * (2 * n_lines - 1)) / (2 * n_lines)
    for p_i, (letter, value, label) in enumerate(panels):
        for k, line in enumerate(lines):
            x = 18 + (p_i * n_lines + k) * (w_c + 12)
            ax = axes_mm(x, y_c, w_c, h_c)
            if k == 0:
                fig.text(
                    (x - 14) / W, 1 - (y_c - 5) / H, letter, fontsize=9, fontweight="bold", va="top"
                )
            reps = replicates[replicates["cell_line"] == line]
            summ = conditions_summary[conditions_summary["cell_line"] == line]
            comp = comparisons[comparisons["cell_line"] == line]
            _condition_axis(ax, conditions, reps, summ, value, colours, conf_level)
            top = np.nanmax(
                np.r_[
                    reps[reps["condition"].isin(conditions)][value].to_numpy(),
                    summ[summ["condition"].isin(conditions)][f"{value}_ci_high"],
                ]
            )
            _add_p_values(ax, conditions, comp, value, top)
            ax.set_title(line, loc="left")
            if k == 0:
                ax.set_ylabel(label)
    fig.text(
        18 / W,
        1 - (y_c + h_c + 8) / H,
        "a: HER2 green (one display range for all fields), nuclear stain magenta; outlines: "
        "cells white, nuclei yellow; scale bars 20 µm.\n"
        "b: violins and small dots, cells (flagged cells and fields left out); diamonds, biological replicates.\n"
        "c, d: dots, biological replicates (mean of image medians); bar, mean with "
        f"{conf_level:.0%} t-CI over replicates; p, Welch t-test on replicate means.",
        fontsize=5.5,
        color=GREY,
        va="top",
    )
    if simulated:
        stamp_simulated(fig)
    return fig


def plot_sequential_exposure(
    replicates: pd.DataFrame,
    conditions_summary: pd.DataFrame,
    comparisons: pd.DataFrame,
    fits: pd.DataFrame | None,
    *,
    conditions: list[str],
    lines: list[str] | None = None,
    drug: str = "T-DM1",
    conf_level: float = 0.95,
    simulated: bool = False,
):
    """Figure 3: membrane HER2 and T-DM1 IC50 after sequential exposure.

    Parameters
    ----------
    replicates, conditions_summary, comparisons : DataFrame
        IF replicate table, condition rows of the IF summary, comparisons.
    fits : DataFrame or None
        Dose-response fits (``cell_line, condition, drug, ic50_rel,
        ic50_rel_lower, ic50_rel_upper, ic50_rel_reached,
        concentration_unit``); None draws the HER2 panels only.
    conditions : list of str
        Sequences shown, reference (T-R) first.

    Returns
    -------
    matplotlib.figure.Figure
    """
    lines = list(lines or dict.fromkeys(conditions_summary["cell_line"]))
    has_fits = fits is not None and len(fits) > 0
    n_cols = len(lines)
    n_rows = 2 if has_fits else 1
    H = 8 + n_rows * 62
    fig = manual_figure(DOUBLE_COLUMN_MM, H)
    W = DOUBLE_COLUMN_MM
    colours = dict(zip(conditions, PALETTE[: len(conditions)], strict=False))
    colours.update(group_colours(conditions[:1]))
    w = (W - 24 - 14 * (n_cols - 1)) / n_cols

    def axes_mm(x, y, w_, h_):
        return fig.add_axes([x / W, 1 - (y + h_) / H, w_ / W, h_ / H])

    for k, line in enumerate(lines):
        x = 20 + k * (w + 14)
        ax = axes_mm(x, 14, w, 40)
        reps = replicates[replicates["cell_line"] == line]
        summ = conditions_summary[conditions_summary["cell_line"] == line]
        _condition_axis(ax, conditions, reps, summ, "her2_net_membrane", colours, conf_level)
        top = np.nanmax(
            np.r_[
                reps[reps["condition"].isin(conditions)]["her2_net_membrane"],
                summ[summ["condition"].isin(conditions)]["her2_net_membrane_ci_high"],
            ]
        )
        comp = comparisons[
            (comparisons["cell_line"] == line) & (comparisons["reference"] == conditions[0])
        ]
        _add_p_values(ax, conditions, comp, "her2_net_membrane", top)
        ax.set_title(f"{line}: membrane HER2 (IF)", loc="left")
        if k == 0:
            ax.set_ylabel(HER2_LABEL)
            fig.text(4 / W, 1 - 8 / H, "a", fontsize=9, fontweight="bold", va="top")
        if has_fits:
            ax2 = axes_mm(x, 14 + 62, w, 40)
            sel = fits[(fits["cell_line"] == line) & (fits["drug"] == drug)]
            unit = str(sel["concentration_unit"].iloc[0]) if len(sel) else ""
            for i, condition in enumerate(conditions):
                row = sel[sel["condition"] == condition]
                if not len(row):
                    continue
                row = row.iloc[0]
                est, lo, hi = row["ic50_rel"], row["ic50_rel_lower"], row["ic50_rel_upper"]
                reached = str(row["ic50_rel_reached"]).lower() in ("true", "1", "yes")
                if np.isfinite(est):
                    ax2.errorbar(
                        i,
                        est,
                        yerr=[[est - lo], [hi - est]]
                        if np.isfinite(lo) and np.isfinite(hi)
                        else None,
                        fmt="o",
                        color=colours[condition],
                        mfc=colours[condition] if reached else "white",
                        ms=4,
                        capsize=2.5,
                        elinewidth=0.8,
                    )
            ax2.set_yscale("log")
            # plain numbers (10, 20, 50) rather than 2x10^1 on the log axis
            ax2.yaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:g}"))
            ax2.yaxis.set_minor_formatter(mticker.FuncFormatter(lambda v, _: f"{v:g}"))
            ax2.set_xticks(range(len(conditions)), conditions)
            ax2.set_xlim(-0.6, len(conditions) - 0.4)
            ax2.set_title(f"{line}: {drug} IC50 (dose-response)", loc="left")
            if k == 0:
                ax2.set_ylabel(f"{drug} IC50 ({unit})\n{conf_level:.0%} CI")
                fig.text(4 / W, 1 - 70 / H, "b", fontsize=9, fontweight="bold", va="top")
    fig.text(
        20 / W,
        1 - (14 + 40 + 8) / H,
        "a: dots, biological replicates (mean of image medians); bar, mean with "
        f"{conf_level:.0%} t-CI;\np, Welch t-test on replicate means vs {conditions[0]}."
        + ("" if has_fits else " IC50 panel omitted: no plate data configured."),
        fontsize=5.5,
        color=GREY,
        va="top",
    )
    if simulated:
        stamp_simulated(fig)
    return fig


def plot_segmentation_qc(
    overlays: list[dict],
    flagged: list[dict],
    flag_counts: pd.DataFrame,
    *,
    n_flagged: int | None = None,
    simulated: bool = False,
):
    """Figure S1: segmentation overlays, QC flag counts, flagged fields.

    Parameters
    ----------
    overlays : list of dict
        Fields to show (``label``, ``rgb``, ``pixel_size_um``), one per condition.
    flagged : list of dict
        Flagged fields (``label``, ``rgb``, ``pixel_size_um``).
    n_flagged : int, optional
        Number of flagged fields in all (when ``flagged`` shows only the first).
    flag_counts : DataFrame
        Index ``cell_line / condition``; columns: percentage of cells carrying
        each flag (``border``, ``saturated``, ``implausible_size``) and
        ``images_flagged``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    n_cols = 6
    size = (DOUBLE_COLUMN_MM - 10 - 2 * (n_cols - 1)) / n_cols
    n_over_rows = int(np.ceil(len(overlays) / n_cols))
    n_flag_rows = int(np.ceil(len(flagged) / n_cols)) if flagged else 0
    rows_h = (n_over_rows + n_flag_rows) * (size + 6) + (12 if flagged else 0)
    H = 12 + rows_h + 10 + 55
    W = DOUBLE_COLUMN_MM
    fig = manual_figure(W, H)

    def axes_mm(x, y, w_, h_):
        return fig.add_axes([x / W, 1 - (y + h_) / H, w_ / W, h_ / H])

    fig.text(3 / W, 1 - 4 / H, "a", fontsize=9, fontweight="bold", va="top")
    fig.text(
        9 / W,
        1 - 4.6 / H,
        "Segmentation: cells (white) and nuclei (yellow) outlines on "
        "HER2 (green) and nuclear stain (magenta), one field per condition",
        fontsize=6.5,
        va="top",
    )
    y = 12
    for i, field in enumerate(overlays):
        r, c = divmod(i, n_cols)
        ax = axes_mm(5 + c * (size + 2), y + r * (size + 6), size, size)
        _image_axis(ax, field["rgb"], field["pixel_size_um"], field["label"], label_bar=(i == 0))
    y += n_over_rows * (size + 6)
    if flagged:
        fig.text(3 / W, 1 - (y + 1) / H, "b", fontsize=9, fontweight="bold", va="top")
        fig.text(
            9 / W,
            1 - (y + 1.6) / H,
            "Fields flagged by image QC (left out of every summary)"
            + (
                f": first {len(flagged)} of {n_flagged}"
                if n_flagged and n_flagged > len(flagged)
                else ""
            ),
            fontsize=6.5,
            va="top",
        )
        y += 12
        for i, field in enumerate(flagged):
            r, c = divmod(i, n_cols)
            ax = axes_mm(5 + c * (size + 2), y + r * (size + 6), size, size)
            _image_axis(ax, field["rgb"], field["pixel_size_um"], field["label"])
            ax.title.set_color("#A0302A")
        y += n_flag_rows * (size + 6) - 6
    letter = "c" if flagged else "b"
    y += 6
    fig.text(3 / W, 1 - y / H, letter, fontsize=9, fontweight="bold", va="top")
    ax = axes_mm(18, y + 4, W - 60, 40)
    cell_flags = [c for c in ("border", "saturated", "implausible_size") if c in flag_counts]
    x = np.arange(len(flag_counts))
    width = 0.8 / max(len(cell_flags), 1)
    flag_colours = dict(zip(cell_flags, (LIGHT_GREY, "#D55E00", "#0072B2"), strict=False))
    for j, flag in enumerate(cell_flags):
        ax.bar(
            x + (j - (len(cell_flags) - 1) / 2) * width,
            flag_counts[flag],
            width,
            color=flag_colours[flag],
            label=flag.replace("_", " "),
        )
    for xi, n_img in zip(x, flag_counts.get("images_flagged", []), strict=False):
        if n_img:
            ax.text(
                xi,
                ax.get_ylim()[1] * 0.98,
                f"{int(n_img)} image{'s' if n_img > 1 else ''}\nflagged",
                ha="center",
                va="top",
                fontsize=5,
                color="#A0302A",
            )
    ax.set_xticks(x, list(flag_counts.index), rotation=40, ha="right")
    ax.set_ylabel("Cells flagged (%)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, title="Cell flag")
    if simulated:
        stamp_simulated(fig)
    return fig
