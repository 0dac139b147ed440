"""Kaplan-Meier figure: curves with CI bands, censor marks, medians, at-risk table.

Used for fig6_km_os, fig7_km_pfs2 (two groups: pertuzumab-naive vs
pertuzumab-pretreated) and figS4_tdm1_by_line (three or four groups).
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .style import (
    GREY,
    SINGLE_COLUMN_MM,
    format_ci,
    format_p,
    format_time,
    group_colours,
    mm,
    require_columns,
    stamp_simulated,
)

CURVE_COLUMNS = ("group", "time", "n_risk", "n_event", "n_censor", "surv", "lower", "upper")
MEDIAN_COLUMNS = ("group", "n", "events", "median", "lower", "upper")
AT_RISK_COLUMNS = ("group", "time", "n_at_risk")


_CORNER_ANCHOR = {
    "upper right": ((0.98, "right"), (0.98, "top")),
    "lower left": ((0.02, "left"), (0.02, "bottom")),
    "lower right": ((0.98, "right"), (0.02, "bottom")),
    "upper left": ((0.02, "left"), (0.98, "top")),
}


def _size_in_axes(ax, bbox):
    """Width and height of a display-space bbox as fractions of the axes."""
    axes_box = ax.get_window_extent()
    return bbox.width / axes_box.width, bbox.height / axes_box.height


def _ink_points(ax, curves, groups, finite_medians, x_max):
    """Points (axes fraction) covered by curves, CI bands and median guides."""
    grid = np.linspace(0, x_max, 300)
    pts = []
    for g in groups:
        cur = curves[curves["group"] == g].sort_values("time", kind="mergesort")
        t = cur["time"].to_numpy(float)
        idx = np.searchsorted(t, grid, side="right") - 1
        keep = (idx >= 0) & (grid <= t[-1])
        s = cur["surv"].to_numpy(float)[idx[keep]]
        lo = cur["lower"].to_numpy(float)[idx[keep]]
        hi = cur["upper"].to_numpy(float)[idx[keep]]
        lo = np.where(np.isfinite(lo), lo, s)
        hi = np.where(np.isfinite(hi), hi, s)
        for frac in np.linspace(0, 1, 6):
            pts.append(np.c_[grid[keep], lo + frac * (hi - lo)])
        pts.append(np.c_[grid[keep], s])
    for med, _ in finite_medians:
        pts.append(np.c_[np.full(20, med), np.linspace(0, 0.5, 20)])
    if finite_medians:
        top = max(m for m, _ in finite_medians)
        pts.append(np.c_[np.linspace(0, top, 50), np.full(50, 0.5)])
    n_curve = sum(len(p) for p in pts[: 7 * len(groups)])
    xy = np.vstack(pts)
    # curves and bands weigh ten times more than the dashed median guides
    weight = np.ones(len(xy))
    weight[:n_curve] = 10.0
    return ax.transAxes.inverted().transform(ax.transData.transform(xy)), weight


def _emptiest_corner(ink, weight, size, exclude=()):
    """Corner of the axes where a box of ``size`` (axes fraction) covers least ink."""
    w, h = size[0] + 0.03, size[1] + 0.03
    best = None
    for loc, ((x, ha), (y, va)) in _CORNER_ANCHOR.items():
        if loc in exclude:
            continue
        x0 = x - w if ha == "right" else x - 0.02
        y0 = y - h if va == "top" else y - 0.02
        inside = (
            (ink[:, 0] >= x0) & (ink[:, 0] <= x0 + w) & (ink[:, 1] >= y0) & (ink[:, 1] <= y0 + h)
        )
        hits = float(weight[inside].sum())
        if best is None or hits < best[1]:
            best = (loc, hits)
    return best


def _x_label(endpoint_label: str, time_unit: str) -> str:
    if str(endpoint_label).lower().startswith(time_unit.lower()):
        return str(endpoint_label)
    return f"{time_unit.capitalize()} from {endpoint_label}"


def _tick_times(at_risk, time_max, tick_step):
    ticks = np.unique(at_risk["time"].to_numpy(dtype=float))
    if time_max is not None:
        ticks = ticks[ticks <= time_max + 1e-9]
    if tick_step is not None:
        on_grid = np.isclose(ticks / tick_step, np.round(ticks / tick_step), atol=1e-6)
        ticks = ticks[on_grid]
    if ticks.size == 0:
        raise ValueError("at_risk has no times within the plotted range to use as x ticks")
    return ticks


def plot_km(
    curves: pd.DataFrame,
    medians: pd.DataFrame,
    at_risk: pd.DataFrame,
    *,
    endpoint_label: str,
    group_labels: Mapping,
    logrank_p: float | None = None,
    hr: Mapping | None = None,
    time_unit: str = "months",
    time_max: float | None = None,
    tick_step: float | None = None,
    simulated: bool = False,
    title: str | None = None,
    ylabel: str = "Survival probability",
    colours: Mapping | None = None,
    width_mm: float = SINGLE_COLUMN_MM,
) -> plt.Figure:
    """Kaplan-Meier curves with a number-at-risk table, as in the paper's figs 6-7.

    Parameters
    ----------
    curves : DataFrame
        One KM step table per group: ``group, time, n_risk, n_event,
        n_censor, surv, lower, upper`` (first row of each group at time 0
        with ``surv = 1``). Drawn as right-continuous steps with a shaded
        pointwise confidence band and ``|`` marks at censored times.
    medians : DataFrame
        ``group, n, events, median, lower, upper``; NaN means not reached
        and prints ``NR``. Shown in the legend with dashed guide lines.
    at_risk : DataFrame
        ``group, time, n_at_risk`` at the x tick times; those times become
        the x ticks and the numbers are printed exactly under them.
    endpoint_label : str
        Start of the time scale, e.g. ``"diagnosis of advanced disease"``,
        giving the x label "Months from diagnosis of advanced disease". A
        label that already starts with the time unit is used as it is.
    group_labels : mapping
        Group value -> display label, in legend and at-risk order.
    logrank_p : float, optional
        Log-rank p-value to annotate.
    hr : mapping, optional
        ``dict(hr=, lower=, upper=, p=, label=)``: Cox hazard ratio with its
        95% CI (``label`` e.g. "pretreated vs naive"; ``p`` optional).
    time_unit : str, default "months"
    time_max : float, optional
        Right end of the x axis (same unit as ``time``). Default: the later
        of the last at-risk time and the last curve time.
    tick_step : float, optional
        Keep only at-risk times that are multiples of this step as ticks.
    simulated : bool, default False
        Stamp the figure "SIMULATED DATA".
    title : str, optional
    ylabel : str, default "Survival probability"
    colours : mapping, optional
        Group value -> colour; default: study colours by display label,
        then the colour-blind-safe palette.
    width_mm : float, default 89 (single column)

    Returns
    -------
    matplotlib.figure.Figure
        Axes ``gid`` "km" (curves) and "at-risk" (table).
    """
    require_columns(curves, CURVE_COLUMNS, "curves")
    require_columns(medians, MEDIAN_COLUMNS, "medians")
    require_columns(at_risk, AT_RISK_COLUMNS, "at_risk")
    groups = list(group_labels)
    if not groups:
        raise ValueError("group_labels is empty")
    for g in groups:
        if not (curves["group"] == g).any():
            raise ValueError(f"group {g!r} of group_labels has no rows in curves")
    label_colours = group_colours([group_labels[g] for g in groups], None)
    colour = {g: label_colours[group_labels[g]] for g in groups}
    if colours:
        colour.update({g: c for g, c in colours.items() if g in colour})

    last_time = float(curves["time"].max())
    ticks = _tick_times(at_risk, time_max, tick_step)
    x_max = float(time_max) if time_max is not None else max(float(ticks[-1]), last_time)

    n_groups = len(groups)
    main_h, risk_h = 56.0, 6.0 + 3.0 * n_groups
    fig = plt.figure(figsize=(mm(width_mm), mm(main_h + risk_h + (5 if title else 0))))
    grid = fig.add_gridspec(2, 1, height_ratios=[main_h, risk_h])
    ax = fig.add_subplot(grid[0])
    ax_risk = fig.add_subplot(grid[1], sharex=ax)
    ax.set_gid("km")
    ax_risk.set_gid("at-risk")

    handles = []
    median_by_group = medians.set_index("group")
    finite_medians = []
    for g in groups:
        c = colour[g]
        cur = curves[curves["group"] == g].sort_values("time", kind="mergesort")
        t = cur["time"].to_numpy(float)
        s = cur["surv"].to_numpy(float)
        lo = cur["lower"].to_numpy(float)
        hi = cur["upper"].to_numpy(float)
        lo = np.where(np.isfinite(lo), lo, s)
        hi = np.where(np.isfinite(hi), hi, s)
        ax.fill_between(t, lo, hi, step="post", color=c, alpha=0.16, linewidth=0)
        (line,) = ax.step(t, s, where="post", color=c, linewidth=1.1, solid_joinstyle="miter")
        censored = cur["n_censor"].to_numpy(float) > 0
        ax.plot(
            t[censored],
            s[censored],
            linestyle="none",
            marker="|",
            markersize=3.2,
            markeredgewidth=0.6,
            color=c,
        )
        label = str(group_labels[g])
        if g in median_by_group.index:
            row = median_by_group.loc[g]
            med = float(row["median"])
            label += (
                f"  {format_time(med)} "
                f"({format_time(float(row['lower']))}\u2013{format_time(float(row['upper']))})"
            )
            if np.isfinite(med):
                finite_medians.append((med, c))
        line.set_label(label)
        handles.append(line)

    # dashed median guides: one horizontal at 0.5, one vertical per reached median
    if finite_medians:
        ax.plot(
            [0, max(m for m, _ in finite_medians)],
            [0.5, 0.5],
            linestyle=(0, (3, 2)),
            linewidth=0.6,
            color=GREY,
            zorder=1,
        )
        for med, c in finite_medians:
            ax.plot([med, med], [0, 0.5], linestyle=(0, (3, 2)), linewidth=0.6, color=c, zorder=1)

    ax.set_xlim(0, x_max)
    ax.set_ylim(0, 1.02)

    notes = []
    if logrank_p is not None:
        notes.append(f"Log-rank {format_p(float(logrank_p))}")
    if hr:
        text = f"HR {format_ci(float(hr['hr']), float(hr['lower']), float(hr['upper']))}"
        if hr.get("p") is not None and np.isfinite(hr.get("p")):
            text += f", {format_p(float(hr['p']))}"
        notes.append(text)
        if hr.get("label"):
            notes.append(f"({hr['label']})")

    legend_kw = {
        "handles": handles,
        "title": f"Median {time_unit} (95% CI)",
        "alignment": "left",
        "frameon": True,
        "facecolor": "white",
        "edgecolor": "none",
        "framealpha": 0.85,
    }
    ink, weight = _ink_points(ax, curves, groups, finite_medians, x_max)
    # the median table sits above the curves, never on them
    legend = ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.01), borderaxespad=0.0, **legend_kw)
    legend.get_frame().set_linewidth(0)
    legend.set_gid("medians")

    if notes:
        note = ax.text(
            0,
            0,
            "\n".join(notes),
            transform=ax.transAxes,
            linespacing=1.35,
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.85, "pad": 1.0},
            gid="tests",
        )
        fig.canvas.draw()
        note_size = _size_in_axes(ax, note.get_window_extent())
        note_loc, _ = _emptiest_corner(ink, weight, note_size)
        (x, ha), (y, va) = _CORNER_ANCHOR[note_loc]
        note.set_position((x, y))
        note.set_horizontalalignment(ha)
        note.set_verticalalignment(va)

    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{x:g}" for x in ticks])
    ax.set_ylabel(ylabel)
    ax.set_xlabel(_x_label(endpoint_label, time_unit))
    ax.tick_params(axis="x", labelbottom=True)
    if title:
        fig.suptitle(title, x=0.01, ha="left", fontsize=7.5, fontweight="bold")

    # number-at-risk table: one row per group, numbers under the x ticks
    for row, g in enumerate(groups):
        sub = at_risk[at_risk["group"] == g]
        lookup = dict(zip(sub["time"].astype(float), sub["n_at_risk"], strict=False))
        for t in ticks:
            n = lookup.get(float(t))
            if n is None:
                continue
            ax_risk.text(
                t,
                row,
                f"{int(n)}",
                ha="center",
                va="center",
                fontsize=6.5,
                color=colour[g],
                gid="at-risk-number",
            )
    ax_risk.set_ylim(n_groups - 0.5, -0.5)
    ax_risk.set_yticks(range(n_groups))
    ax_risk.set_yticklabels([str(group_labels[g]) for g in groups], fontsize=6.5)
    for tick_label, g in zip(ax_risk.get_yticklabels(), groups, strict=True):
        tick_label.set_color(colour[g])
    widest = max((len(f"{int(n)}") for n in at_risk["n_at_risk"]), default=1)
    # numbers are centred on the ticks: keep the group labels clear of the first one
    ax_risk.tick_params(axis="y", length=0, pad=3 + 0.5 * widest * 0.6 * 6.5)
    ax_risk.tick_params(axis="x", length=0, labelbottom=False)
    for spine in ax_risk.spines.values():
        spine.set_visible(False)
    ax_risk.set_title("Number at risk", loc="left", fontsize=6.5, fontweight="normal", pad=2)
    ax_risk.patch.set_visible(False)

    if simulated:
        stamp_simulated(fig)
    return fig
