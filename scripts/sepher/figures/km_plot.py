"""Kaplan-Meier figure: curves with CI bands, censor marks, medians, at-risk table.

Used for fig6_km_os, fig7_km_pfs2 (two groups: pertuzumab-naive vs
pertuzumab-pretreated) and figS4_tdm1_by_line (three or four groups).
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.transforms import offset_copy

from sepher.formatting import format_p

from .style import (
    GREY,
    SINGLE_COLUMN_MM,
    fit_suptitle,
    format_ci,
    format_time,
    group_colours,
    mm,
    require_columns,
    stamp_simulated,
    study_linestyle,
    text_width_px,
    wrap_to_width,
)

CURVE_COLUMNS = ("group", "time", "n_risk", "n_event", "n_censor", "surv", "lower", "upper")
MEDIAN_COLUMNS = ("group", "n", "events", "median", "lower", "upper")
AT_RISK_COLUMNS = ("group", "time", "n_at_risk")

#: Text size of the number-at-risk table, pt.
AT_RISK_FONT_PT = 6.5
#: Least share of the figure width left to the plot; longer group labels of the
#: at-risk table (which set the left margin) are wrapped to keep it.
MIN_PLOT_SHARE = 0.62
#: Widest share of the axes width the test annotation may take before it is wrapped.
NOTE_SHARE = 0.62
#: Least free space between neighbouring tick labels / at-risk numbers, pt.
TICK_GAP_PT = 3.0
#: Least height of the plot, mm, and of one text line of the at-risk table, mm.
MIN_PLOT_MM = 40.0
AT_RISK_ROW_MM = 3.2


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


def _corner_box(x, ha, y, va, size):
    """Region (x0, y0, w, h), axes fraction, taken by a box anchored in a corner."""
    w, h = size[0] + 0.03, size[1] + 0.03
    x0 = x - w if ha == "right" else x - 0.02
    y0 = y - h if va == "top" else y - 0.02
    return x0, y0, w, h


def _ink_in_box(ink, weight, box):
    x0, y0, w, h = box
    inside = (ink[:, 0] >= x0) & (ink[:, 0] <= x0 + w) & (ink[:, 1] >= y0) & (ink[:, 1] <= y0 + h)
    return float(weight[inside].sum())


def _free_spot(ink, weight, size, n_grid: int = 9):
    """A place for a box of ``size`` (axes fraction) covering no curve or CI band.

    Corners are tried first (upper right, upper left, lower left, lower right),
    then a grid of positions inside the axes. Median guide lines (weight 1)
    may be covered, curves and bands (weight 10) not.

    Returns
    -------
    tuple or None
        ``((x, ha), (y, va))`` text anchor in axes fraction, or ``None`` when
        every position covers a curve or band.
    """
    candidates = []  # (text anchor, region covered)
    for loc in ("upper right", "upper left", "lower left", "lower right"):
        (x, ha), (y, va) = _CORNER_ANCHOR[loc]
        candidates.append((((x, ha), (y, va)), _corner_box(x, ha, y, va, size)))
    w, h = size[0] + 0.03, size[1] + 0.03
    if w <= 0.96 and h <= 0.96:
        for y0 in np.linspace(0.98 - h, 0.02, n_grid):
            for x0 in np.linspace(0.98 - w, 0.02, n_grid):
                anchor = ((x0 + 0.015, "left"), (y0 + 0.015, "bottom"))
                candidates.append((anchor, (x0, y0, w, h)))
    best = None
    for anchor, box in candidates:
        hits = _ink_in_box(ink, weight, box)
        if hits < 10.0 and (best is None or hits < best[1]):
            best = (anchor, hits)
            if hits == 0:
                break
    return None if best is None else best[0]


def _x_label(endpoint_label: str, time_unit: str) -> str:
    if str(endpoint_label).lower().startswith(time_unit.lower()):
        return str(endpoint_label)
    return f"{time_unit.capitalize()} from {endpoint_label}"


def thin_ticks(positions_px, widest_px: float, gap_px: float) -> int:
    """Smallest stride k such that every k-th tick leaves room for its label.

    Parameters
    ----------
    positions_px : array_like
        Display x of the ticks, increasing.
    widest_px : float
        Width of the widest label printed under a tick (tick label or
        number at risk), pixels.
    gap_px : float
        Free space wanted between neighbouring labels, pixels.

    Returns
    -------
    int
        Stride ``k >= 1``; keep ``ticks[::k]``.
    """
    pos = np.asarray(positions_px, float)
    need = widest_px + gap_px
    k = 1
    while k < max(len(pos), 1) and np.any(np.diff(pos[::k]) < need):
        k += 1
    return k


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
    hr_note: str | None = None,
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
        95% CI (``label`` e.g. "Pertuzumab-pretreated vs Pertuzumab-naive",
        printed in parentheses and wrapped to the width of the test lines;
        ``p`` optional). The tests go where they hide no curve or band, else
        above the axes under the median table.
    time_unit : str, default "months"
    time_max : float, optional
        Right end of the x axis (same unit as ``time``). Default: the later
        of the last at-risk time and the last curve time.
    tick_step : float, optional
        Keep only at-risk times that are multiples of this step as ticks.
        When the labels under neighbouring ticks (tick labels, numbers at
        risk) would touch, only every k-th tick is kept.
    simulated : bool, default False
        Stamp the figure "SIMULATED DATA".
    title : str, optional
        Wrapped between words to the width left by the simulated-data stamp.
    ylabel : str, default "Survival probability"
        :func:`km_ylabel` gives "Progression-free probability" for PFS
        endpoints.
    colours : mapping, optional
        Group value -> colour; default: study colours by display label,
        then the colour-blind-safe palette.
    width_mm : float, default 89 (single column)
        Group labels of the at-risk table are wrapped (at spaces or after
        hyphens) when they would leave the plot less than 62% of it; the
        height grows so that the plot is at least 40 mm tall and the rows of
        the at-risk table never touch.
    hr_note : str, optional
        The model behind `hr`, printed after "HR" in parentheses, e.g.
        ``"univariable Cox"`` gives "HR (univariable Cox) 0.63 (0.49\u20130.81)";
        ``None`` prints "HR 0.63 (...)".

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
    # lines of therapy (fig S4) are black and greys: their own line styles tell them apart
    linestyle = {g: study_linestyle(group_labels[g]) for g in groups}
    if colours:
        colour.update({g: c for g, c in colours.items() if g in colour})

    last_time = float(curves["time"].max())
    ticks = _tick_times(at_risk, time_max, tick_step)
    x_max = float(time_max) if time_max is not None else max(float(ticks[-1]), last_time)

    n_groups = len(groups)
    fig = plt.figure(figsize=(mm(width_mm), mm(80.0)))
    renderer = fig.canvas.get_renderer()
    if title:
        fig.suptitle(title, x=0.01, ha="left", fontsize=7.5, fontweight="bold")
    if simulated:
        stamp_simulated(fig)  # also wraps a title that would run under the stamp
    else:
        fit_suptitle(fig)  # a title wider than the figure wraps
    title_lines = fig.get_suptitle().count("\n") + 1 if title else 0
    main_h = 56.0
    title_h = 5.0 + 3.3 * (title_lines - 1) if title else 0.0

    def risk_height(label_lines):
        return 6.0 + 3.0 * n_groups * label_lines

    fig.set_size_inches(mm(width_mm), mm(main_h + risk_height(1) + title_h))
    grid = fig.add_gridspec(2, 1, height_ratios=[main_h, risk_height(1)])
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
        (line,) = ax.step(
            t,
            s,
            where="post",
            color=c,
            linewidth=1.1,
            linestyle=linestyle[g],
            solid_joinstyle="miter",
        )
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
        head = f"HR ({hr_note})" if hr_note else "HR"
        text = f"{head} {format_ci(float(hr['hr']), float(hr['lower']), float(hr['upper']))}"
        if hr.get("p") is not None and np.isfinite(hr.get("p")):
            text += f", {format_p(float(hr['p']))}"
        notes.append(text)

    legend_kw = {
        "handles": handles,
        "title": f"Median {time_unit} (95% CI)",
        "alignment": "left",
        "frameon": True,
        "facecolor": "white",
        "edgecolor": "none",
        "framealpha": 0.85,
    }
    # the median table sits above the curves, never on them
    legend = ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.01), borderaxespad=0.0, **legend_kw)
    legend.get_frame().set_linewidth(0)
    legend.set_gid("medians")

    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{x:g}" for x in ticks])
    ax.set_ylabel(ylabel)
    ax.set_xlabel(_x_label(endpoint_label, time_unit))
    ax.tick_params(axis="x", labelbottom=True)

    ax_risk.set_ylim(n_groups - 0.5, -0.5)
    ax_risk.set_yticks(range(n_groups))
    ax_risk.set_yticklabels([str(group_labels[g]) for g in groups], fontsize=AT_RISK_FONT_PT)
    for tick_label, g in zip(ax_risk.get_yticklabels(), groups, strict=True):
        tick_label.set_color(colour[g])
        tick_label.set_linespacing(1.1)
    number_text = {
        g: {float(t): f"{int(n)}" for t, n in zip(sub["time"], sub["n_at_risk"], strict=True)}
        for g, sub in at_risk.groupby("group", sort=False)
    }
    widest_number = max(
        (
            text_width_px(n, renderer, AT_RISK_FONT_PT)
            for g in groups
            for n in number_text.get(g, {}).values()
        ),
        default=0.0,
    )
    # numbers are centred on the ticks: keep the group labels clear of the first one
    pad_pt = 3.0 + 0.5 * widest_number * 72.0 / fig.dpi
    ax_risk.tick_params(axis="y", length=0, pad=pad_pt)
    ax_risk.tick_params(axis="x", length=0, labelbottom=False)
    for spine in ax_risk.spines.values():
        spine.set_visible(False)
    ax_risk.set_title("Number at risk", loc="left", fontsize=6.5, fontweight="normal", pad=2)
    ax_risk.patch.set_visible(False)

    # long group labels set a wide left margin: wrap them if the plot gets too narrow
    label_lines = 1
    fig.canvas.draw()
    fig_w_px = fig.get_size_inches()[0] * fig.dpi
    deficit = MIN_PLOT_SHARE * fig_w_px - ax.get_window_extent(renderer).width
    # how far the group labels reach left of the plot's own y label: all that wrapping can win
    excess = ax.get_tightbbox(renderer).x0 - ax_risk.get_tightbbox(renderer).x0
    if deficit > 0 and excess > 0:
        widest_label = max(
            text_width_px(str(group_labels[g]), renderer, AT_RISK_FONT_PT) for g in groups
        )
        budget = widest_label - min(deficit, excess) - 2.0
        wrapped = [
            wrap_to_width(str(group_labels[g]), budget, renderer, AT_RISK_FONT_PT) for g in groups
        ]
        wrapped_lines = max(label.count("\n") + 1 for label in wrapped)
        if wrapped_lines > 1:
            label_lines = wrapped_lines
            ax_risk.set_yticklabels(wrapped, fontsize=AT_RISK_FONT_PT)
            for tick_label, g in zip(ax_risk.get_yticklabels(), groups, strict=True):
                tick_label.set_color(colour[g])
                tick_label.set_linespacing(1.1)
            grid.set_height_ratios([main_h, risk_height(label_lines)])
            fig.set_size_inches(mm(width_mm), mm(main_h + risk_height(label_lines) + title_h))
            renderer = fig.canvas.get_renderer()
            fig.canvas.draw()

    # thin the ticks when their labels or the numbers at risk would run into each other
    tick_font = ax.get_xticklabels()[0].get_fontsize()
    widest = max(
        widest_number,
        max(text_width_px(f"{x:g}", renderer, tick_font) for x in ticks),
    )
    tick_px = ax.transData.transform(np.c_[ticks, np.zeros_like(ticks)])[:, 0]
    stride = thin_ticks(tick_px, widest, TICK_GAP_PT * fig.dpi / 72.0)
    if stride > 1:
        ticks = ticks[::stride]
        ax.set_xticks(ticks)
        ax.set_xticklabels([f"{x:g}" for x in ticks])
    ax.set_xlim(0, x_max)

    # number-at-risk table: one row per group, numbers under the x ticks
    for row, g in enumerate(groups):
        lookup = number_text.get(g, {})
        for t in ticks:
            n = lookup.get(float(t))
            if n is None:
                continue
            ax_risk.text(
                t,
                row,
                n,
                ha="center",
                va="center",
                fontsize=AT_RISK_FONT_PT,
                color=colour[g],
                gid="at-risk-number",
            )

    if notes:
        label = f"({hr['label']})" if hr and hr.get("label") else None
        _, header_mm = _place_note(fig, ax, (notes, label), curves, groups, finite_medians, x_max)
        if header_mm > 0:  # keep the plot's height: the figure grows by the note
            ratios = grid.get_height_ratios()
            grid.set_height_ratios([ratios[0] + header_mm, ratios[1]])
            w_in, h_in = fig.get_size_inches()
            fig.set_size_inches(w_in, h_in + mm(header_mm))
    _ensure_heights(fig, ax, ax_risk, grid, MIN_PLOT_MM, AT_RISK_ROW_MM * n_groups * label_lines)
    return fig


def _ensure_heights(fig, ax, ax_risk, grid, plot_mm, risk_mm, rounds: int = 3):
    """Grow the figure until the plot and the at-risk table reach their heights, mm.

    Constrained layout shares what the titles, legend and labels leave over
    between the two axes in a fixed ratio; a tall median table or many
    groups can then squeeze the rows of the at-risk table into each other.
    """
    ratios = list(grid.get_height_ratios())
    for _ in range(rounds):
        fig.canvas.draw()
        plot_h = ax.get_position().height * fig.get_size_inches()[1] * 25.4
        risk_h = ax_risk.get_position().height * fig.get_size_inches()[1] * 25.4
        short_plot, short_risk = plot_mm - plot_h, risk_mm - risk_h
        if short_plot <= 0.05 and short_risk <= 0.05:
            return
        # the axes keep the height ratio: growing the figure by d grows both by their share
        share_plot, share_risk = ratios[0] / sum(ratios), ratios[1] / sum(ratios)
        grow = max(short_plot / share_plot, short_risk / share_risk, 0.0) + 0.2
        w_in, h_in = fig.get_size_inches()
        fig.set_size_inches(w_in, h_in + mm(grow))


def _place_note(fig, ax, notes, curves, groups, finite_medians, x_max):
    """Test annotation, wrapped to fit the axes, where it covers no curve or band.

    ``notes`` is ``(statistics, label)``: lines of test results kept whole,
    and an optional comparison label wrapped to their width. When every
    place inside the axes would hide data, the note goes above the axes,
    under the median table.

    Returns
    -------
    note : matplotlib.text.Text
    header_mm : float
        Height the note adds above the axes, mm (0 when it sits inside).
    """
    note = ax.text(
        0,
        0,
        "",
        transform=ax.transAxes,
        linespacing=1.35,
        bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.85, "pad": 1.0},
        gid="tests",
    )
    renderer = fig.canvas.get_renderer()
    statistics, label = notes
    for _ in range(2):  # wrap, lay out, and wrap again if the axes came out narrower
        fig.canvas.draw()
        room = ax.get_window_extent(renderer).width
        size = note.get_fontsize()
        # the statistics stay whole; the comparison label wraps to their width
        width = max([NOTE_SHARE * room] + [text_width_px(t, renderer, size) for t in statistics])
        lines = list(statistics)
        if label:
            lines.append(wrap_to_width(label, min(width, 0.94 * room), renderer, size))
        note.set_text("\n".join(lines))
        while note.get_fontsize() > 5.5 and note.get_window_extent(renderer).width > 0.94 * room:
            note.set_fontsize(note.get_fontsize() - 0.5)
    ink, weight = _ink_points(ax, curves, groups, finite_medians, x_max)
    note_size = _size_in_axes(ax, note.get_window_extent(renderer))
    spot = _free_spot(ink, weight, note_size)
    if spot is not None:
        (x, ha), (y, va) = spot
        note.set_position((x, y))
        note.set_horizontalalignment(ha)
        note.set_verticalalignment(va)
        return note, 0.0
    # no free place inside the axes: print the tests above it, under the median table
    if label:
        room = ax.get_window_extent(renderer).width
        lines = [*statistics, wrap_to_width(label, 0.98 * room, renderer, note.get_fontsize())]
        note.set_text("\n".join(lines))
    note.set_position((0.0, 1.01))
    note.set_horizontalalignment("left")
    note.set_verticalalignment("bottom")
    note.set_bbox(None)
    legend = ax.get_legend()
    if legend is not None:
        # lift the median table by the note's height (in points: independent of the layout)
        lift_pt = note.get_window_extent(renderer).height * 72.0 / fig.dpi + 1.5
        lifted = offset_copy(ax.transAxes, fig=fig, y=lift_pt, units="points")
        legend.set_bbox_to_anchor((0.0, 1.01), transform=lifted)
    return note, note.get_window_extent(renderer).height / fig.dpi * 25.4 + 0.6


#: Wording of a Cox model next to its hazard ratio on a KM figure, by ``model`` of cox.csv.
HR_NOTES = {"univariate": "univariable Cox", "multivariate": "multivariable Cox"}


def km_ylabel(endpoint: str) -> str:
    """y label of a Kaplan-Meier figure of `endpoint`.

    Parameters
    ----------
    endpoint : str
        Endpoint key, e.g. ``"OS"``, ``"PFS2"``, ``"PFS"``.

    Returns
    -------
    str
        "Progression-free probability" for progression endpoints (keys
        starting with "PFS", any case), else "Survival probability".
    """
    if str(endpoint).strip().upper().startswith("PFS"):
        return "Progression-free probability"
    return "Survival probability"


def km_inputs(
    curves: pd.DataFrame,
    medians: pd.DataFrame,
    logrank: pd.DataFrame,
    cox: pd.DataFrame | None,
    *,
    analysis: str,
    endpoint: str,
    group: str,
    group_levels=(),
    group_labels=(),
    time_max: float,
    tick_step: float,
    hr_model: str = "univariate",
    hr_note: str | None = None,
) -> dict:
    """The data arguments of :func:`plot_km` for one analysis of the survival stage's tables.

    Parameters
    ----------
    curves, medians, logrank : DataFrame
        ``km_curves.csv``, ``km_medians.csv``, ``logrank.csv`` of
        :func:`sepher.survival.stage.km_tables` (all analyses; column
        ``analysis``).
    cox : DataFrame or None
        ``cox.csv``; its univariate hazard ratio of `group` for `endpoint`
        is shown for the ``os`` and ``pfs2`` analyses.
    analysis : str
        ``"os"``, ``"pfs2"`` or ``"by_line"``.
    endpoint : str
        ``"OS"`` or ``"PFS2"`` (the Cox table's endpoint).
    group : str
        Compared column (the Cox term of the hazard ratio).
    group_levels, group_labels : sequence
        Levels of `group` and their display names (``survival.group_levels``
        / ``group_labels``); empty for ``by_line``, where every level found
        is shown as ``"<level> line"``.
    time_max, tick_step : float
        x axis end and tick step; numbers at risk are computed at the ticks.
    hr_model : str, default "univariate"
        The ``model`` of the Cox table's row whose hazard ratio is shown.
    hr_note : str, optional
        Wording of that model next to the HR; default from
        :data:`HR_NOTES` (``"univariate"`` -> "univariable Cox"), else
        `hr_model` itself.

    Returns
    -------
    dict
        ``curves``, ``medians``, ``at_risk``, ``group_labels``,
        ``logrank_p``, ``hr`` and ``hr_note`` (None unless ``os``/``pfs2``),
        ``ylabel`` (:func:`km_ylabel` of `endpoint`), to pass to
        :func:`plot_km` as keyword arguments.
    """
    from sepher.survival.stage import at_risk_from_curves

    pick = {}
    for name, table in (("curves", curves), ("medians", medians), ("logrank", logrank)):
        pick[name] = table[table["analysis"] == analysis]
    if len(group_levels):
        levels = [str(v) for v in group_levels]
        labels = dict(zip(levels, group_labels, strict=True))
    else:
        levels = list(dict.fromkeys(pick["medians"]["group"].astype(str)))
        labels = {level: f"{level} line" for level in levels}
    for name in ("curves", "medians"):
        pick[name] = pick[name].assign(group=pick[name]["group"].astype(str))
    grid = np.arange(0, time_max + 1e-9, tick_step)
    hr = None
    note = None
    if analysis in ("os", "pfs2"):
        rows = cox[
            (cox["endpoint"] == endpoint) & (cox["model"] == hr_model) & (cox["term"] == group)
        ]
        if rows.empty:
            raise ValueError(
                f"cox table has no '{hr_model}' row of term {group!r} for endpoint {endpoint!r}"
            )
        row = rows.iloc[0]
        note = hr_note if hr_note is not None else HR_NOTES.get(hr_model, hr_model)
        hr = {
            "hr": row["hr"],
            "lower": row["hr_lower"],
            "upper": row["hr_upper"],
            "p": row["p"],
            "label": f"{labels[levels[1]]} vs {labels[levels[0]]}",
        }
    return {
        "curves": pick["curves"],
        "medians": pick["medians"],
        "at_risk": at_risk_from_curves(pick["curves"], grid),
        "group_labels": labels,
        "logrank_p": float(pick["logrank"]["p"].iloc[0]),
        "hr": hr,
        "hr_note": note,
        "ylabel": km_ylabel(endpoint),
    }
