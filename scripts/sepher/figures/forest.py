"""Forest plot of the multivariate Cox models (fig8_cox_forest).

One row per model term, one panel per endpoint side by side (OS, PFS2),
hazard ratios on a log axis with a reference line at 1, and the hazard
ratio with its 95% CI and the p-value printed as text columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Rectangle
from matplotlib.transforms import blended_transform_factory

from sepher.formatting import format_p

from .style import (
    DOUBLE_COLUMN_MM,
    GREY,
    LIGHT_GREY,
    format_ci,
    humanise,
    is_blank,
    manual_figure,
    mm,
    require_columns,
    stamp_simulated,
    stamp_width_px,
    wrap_to_width,
)

COX_COLUMNS = (
    "endpoint",
    "model",
    "term",
    "column",
    "level",
    "reference",
    "hr",
    "hr_lower",
    "hr_upper",
    "p",
    "n",
    "events",
)

ROW_MM = 4.4  # row pitch
FONT_PT = 6.5
TITLE_PT = 7.5
_PT_MM = 25.4 / 72.0
_NICE_TICKS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1, 2, 4, 5, 10, 20, 50, 100)


def row_label(row: Mapping, term_labels: Mapping | None = None) -> str:
    """Display label of a Cox row: ``"Term: level vs reference"`` or ``"Term"``."""
    term_labels = term_labels or {}
    term = term_labels.get(row["term"], term_labels.get(row["column"], humanise(row["term"])))
    if is_blank(row["level"]):
        return str(term)
    text = f"{term}: {row['level']}"
    if not is_blank(row["reference"]):
        text += f" vs {row['reference']}"
    return text


def _hr_ticks(lo: float, hi: float) -> list[float]:
    """Log-axis ticks: doubling (0.25, 0.5, 1, 2, 4) or 1-2-5 for wide ranges."""
    if hi / lo <= 40:
        ticks = [2.0**k for k in range(-8, 9) if lo <= 2.0**k <= hi]
    else:
        ticks = [t for t in _NICE_TICKS if lo <= t <= hi and str(t)[0] in "125"]
    return ticks or [1.0]


def _text_width_mm(fig, texts: Sequence[str], **kwargs) -> float:
    """Rendered width of the widest string, mm."""
    renderer = fig.canvas.get_renderer()
    widest = 0.0
    for s in texts:
        t = fig.text(
            0,
            0,
            s,
            fontsize=kwargs.get("fontsize", FONT_PT),
            **{k: v for k, v in kwargs.items() if k != "fontsize"},
        )
        widest = max(widest, t.get_window_extent(renderer).width / fig.dpi * 25.4)
        t.remove()
    return widest


def plot_forest(
    cox_table: pd.DataFrame,
    endpoints: Sequence[str] = ("OS", "PFS2"),
    endpoint_labels: Mapping | None = None,
    simulated: bool = False,
    *,
    term_labels: Mapping | None = None,
    model: str = "multivariate",
    width_mm: float = DOUBLE_COLUMN_MM,
    subtitle: str | None = None,
) -> plt.Figure:
    """Forest plot of hazard ratios, one panel per endpoint side by side.

    Parameters
    ----------
    cox_table : DataFrame
        ``endpoint, model, term, column, level, reference, hr, hr_lower,
        hr_upper, p, n, events`` as in ``results/survival/cox.csv``; rows
        with ``model == "multivariate"`` are drawn.
    endpoints : sequence of str, default ("OS", "PFS2")
        Endpoints to show, left to right; absent ones are skipped.
    endpoint_labels : mapping, optional
        Endpoint -> panel title, e.g. ``{"OS": "Overall survival"}``.
    simulated : bool, default False
        Stamp the figure "SIMULATED DATA".
    term_labels : mapping, optional
        Term or column -> display name (default: the column name humanised,
        ``visceral_mets`` -> "Visceral mets").
    model : str, default "multivariate"
    width_mm : float, default 183 (double column)
    subtitle : str, optional
        One line over the panels, across the figure (wrapped between words
        to its width), saying what the model is, e.g. "Multivariable Cox
        model adjusted for age, ...; complete cases, n = 340". ``None``
        draws none (the layout is then unchanged).

    Returns
    -------
    matplotlib.figure.Figure
        One axes per endpoint (``gid`` "forest-<endpoint>").
    """
    require_columns(cox_table, COX_COLUMNS, "cox_table")
    endpoint_labels = dict(endpoint_labels or {})
    table = cox_table[cox_table["model"] == model]
    endpoints = [e for e in endpoints if (table["endpoint"] == e).any()]
    if not endpoints:
        raise ValueError(f"cox_table has no '{model}' rows for endpoints {list(endpoints)}")

    # rows: union of (term, level) in order of first appearance
    keys: list[tuple] = []
    labels: dict = {}
    for _, r in table[table["endpoint"].isin(endpoints)].iterrows():
        key = (r["term"], "" if is_blank(r["level"]) else str(r["level"]))
        if key not in keys:
            keys.append(key)
            labels[key] = row_label(r, term_labels)
    n_rows = len(keys)

    finite = table[table["endpoint"].isin(endpoints)]
    lows = finite["hr_lower"].to_numpy(float)
    highs = finite["hr_upper"].to_numpy(float)
    lo = np.nanmin(np.where(np.isfinite(lows) & (lows > 0), lows, np.nan))
    hi = np.nanmax(np.where(np.isfinite(highs), highs, np.nan))
    lo, hi = min(lo, 1.0) / 1.25, max(hi, 1.0) * 1.25

    fig = manual_figure(width_mm, 10.0)
    label_w = _text_width_mm(fig, list(labels.values())) + 3.0
    hr_texts, p_texts = {}, {}
    for e in endpoints:
        sub = table[table["endpoint"] == e]
        for _, r in sub.iterrows():
            key = (r["term"], "" if is_blank(r["level"]) else str(r["level"]))
            hr_texts[(e, key)] = format_ci(
                float(r["hr"]), float(r["hr_lower"]), float(r["hr_upper"])
            )
            p_texts[(e, key)] = format_p(float(r["p"]), prefix="")
    hr_col_w = _text_width_mm(fig, [*hr_texts.values(), "HR (95% CI)"]) + 3.0
    p_col_w = _text_width_mm(fig, [*p_texts.values(), "p"]) + 2.0
    gap = 5.0
    left, right = 2.0, 2.0
    n_e = len(endpoints)
    plot_w = (width_mm - left - right - label_w - n_e * (hr_col_w + p_col_w) - n_e * gap) / n_e
    if plot_w < 22.0:
        raise ValueError(
            f"labels too wide for a {width_mm:.0f} mm figure; pass shorter term_labels"
        )

    # panel titles: the endpoint (bold, wrapped to the panel width) over "n = , events ="
    renderer = fig.canvas.get_renderer()
    panel_w = plot_w + hr_col_w + p_col_w
    titles = {}
    for e in endpoints:
        titles[e] = wrap_to_width(
            str(endpoint_labels.get(e, e)),
            panel_w / 25.4 * fig.dpi,
            renderer,
            TITLE_PT,
            "bold",
        )
    title_lines = max(t.count("\n") + 1 for t in titles.values())
    header_to_n = 1.2 + FONT_PT * 1.2 * _PT_MM + 1.0  # header row, then the n line
    n_to_title = FONT_PT * 1.2 * _PT_MM + 0.6
    title_h = title_lines * TITLE_PT * 1.2 * _PT_MM
    head = 2.0 + (4.0 if simulated else 0.0)  # the stamp keeps the top strip
    subtitle_text = ""
    subtitle_top = 1.0
    if subtitle is not None and not is_blank(subtitle):
        room_mm = width_mm - left - right
        if simulated:  # the subtitle shares the top strip with the stamp, left of it
            probe = stamp_simulated(fig)
            room_mm -= stamp_width_px(fig, probe) / fig.dpi * 25.4 + 3.0
            probe.remove()
        subtitle_text = wrap_to_width(
            " ".join(str(subtitle).split()), room_mm / 25.4 * fig.dpi, renderer, FONT_PT
        )
        lines = subtitle_text.count("\n") + 1
        head = max(head, subtitle_top + lines * FONT_PT * 1.2 * _PT_MM + 2.0)
    top = head + header_to_n + n_to_title + title_h + 0.5
    bottom = 10.0
    height = top + n_rows * ROW_MM + bottom
    fig.set_size_inches(mm(width_mm), mm(height))

    def fx(x_mm):
        return x_mm / width_mm

    def fy(y_mm):  # y measured from the top
        return 1.0 - y_mm / height

    ax_bottom = fy(top + n_rows * ROW_MM)
    ax_height = n_rows * ROW_MM / height
    x = left + label_w
    header_y = fy(top - 1.2)
    n_y = fy(top - header_to_n)
    title_y = fy(top - header_to_n - n_to_title)
    axes = []
    for e in endpoints:
        sub = table[table["endpoint"] == e]
        ax = fig.add_axes((fx(x), ax_bottom, fx(plot_w), ax_height))
        ax.set_gid(f"forest-{e}")
        axes.append(ax)
        ax.set_xscale("log")
        ax.set_xlim(lo, hi)
        ax.set_ylim(n_rows - 0.5, -0.5)
        ax.axvline(1.0, color=GREY, linewidth=0.6, linestyle=(0, (3, 2)), zorder=1)
        ticks = _hr_ticks(lo, hi)
        ax.set_xticks(ticks)
        ax.set_xticklabels([f"{t:g}" for t in ticks])
        ax.xaxis.set_minor_locator(plt.NullLocator())
        ax.set_yticks([])
        ax.spines["left"].set_visible(False)
        ax.set_xlabel("Hazard ratio (log scale)", fontsize=FONT_PT)
        ax.tick_params(axis="x", labelsize=FONT_PT)
        ax.patch.set_visible(False)
        row_of = {k: i for i, k in enumerate(keys)}
        text_tr = blended_transform_factory(fig.transFigure, ax.transData)
        for _, r in sub.iterrows():
            key = (r["term"], "" if is_blank(r["level"]) else str(r["level"]))
            i = row_of[key]
            est, l_, u_ = float(r["hr"]), float(r["hr_lower"]), float(r["hr_upper"])
            if np.isfinite(est) and est > 0:
                ax.plot(
                    [max(l_, lo), min(u_, hi)], [i, i], color="#262626", linewidth=0.9, zorder=2
                )
                ax.plot(est, i, marker="s", markersize=3.6, color="#262626", zorder=3)
            ax.text(
                fx(x + plot_w + 2.0),
                i,
                hr_texts[(e, key)],
                transform=text_tr,
                ha="left",
                va="center",
                fontsize=FONT_PT,
                gid="hr-text",
            )
            ax.text(
                fx(x + plot_w + hr_col_w + p_col_w - 1.0),
                i,
                p_texts[(e, key)],
                transform=text_tr,
                ha="right",
                va="center",
                fontsize=FONT_PT,
                gid="p-text",
            )
        n, events = int(sub["n"].max()), int(sub["events"].max())
        fig.text(
            fx(x),
            title_y,
            titles[e],
            ha="left",
            va="bottom",
            fontsize=TITLE_PT,
            fontweight="bold",
            gid="panel-title",
        )
        fig.text(
            fx(x),
            n_y,
            f"n = {n}, events = {events}",
            ha="left",
            va="bottom",
            fontsize=FONT_PT,
            color=GREY,
            gid="panel-n",
        )
        fig.text(
            fx(x + plot_w + 2.0),
            header_y,
            "HR (95% CI)",
            ha="left",
            va="bottom",
            fontsize=FONT_PT,
            fontweight="bold",
        )
        fig.text(
            fx(x + plot_w + hr_col_w + p_col_w - 1.0),
            header_y,
            "p",
            ha="right",
            va="bottom",
            fontsize=FONT_PT,
            fontweight="bold",
            fontstyle="italic",
        )
        x += plot_w + hr_col_w + p_col_w + gap

    label_tr = blended_transform_factory(fig.transFigure, axes[0].transData)
    for i in range(0, n_rows, 2):  # zebra stripes across labels, plots and text columns
        axes[0].add_patch(
            Rectangle(
                (fx(left - 1.0), i - 0.5),
                fx(x - gap - left + 1.0),
                1.0,
                transform=label_tr,
                facecolor=LIGHT_GREY,
                alpha=0.18,
                linewidth=0,
                zorder=0,
                clip_on=False,
            )
        )
    for i, key in enumerate(keys):
        axes[0].text(
            fx(left),
            i,
            labels[key],
            transform=label_tr,
            ha="left",
            va="center",
            fontsize=FONT_PT,
            gid="row-label",
        )
    fig.text(
        fx(left), header_y, "Variable", ha="left", va="bottom", fontsize=FONT_PT, fontweight="bold"
    )
    if subtitle_text:
        fig.text(
            fx(left),
            fy(subtitle_top),
            subtitle_text,
            ha="left",
            va="top",
            fontsize=FONT_PT,
            linespacing=1.2,
            gid="subtitle",
        )
    if simulated:
        stamp_simulated(fig)
    return fig
