"""Figures of the confounding and subgroup analyses of the cohort stage.

* :func:`plot_love` — covariate balance before and after weighting (a
  "Love plot"): the absolute standardised mean difference of every
  covariate level, unweighted and weighted, with the 0.1 threshold of
  Austin (2009, Stat Med 28:3083).
* :func:`plot_propensity_overlap` — the propensity score distributions of
  the two groups as a mirrored histogram, from aggregated bin counts (no
  patient-level data reach the figure).
* :func:`plot_subgroups` — hazard ratios of the group comparison within the
  levels of each subgroup variable, with the interaction p of each variable.

Every figure is laid out by hand in millimetres (:func:`manual_figure`): row
pitch, label columns and text blocks are measured from the rendered text,
so nothing overlaps whatever the labels; all text is at least 6 pt. The two
groups keep their study colours (:func:`group_colours`); the Love plot's
"unweighted" and "weighted" series use grey and black (no group colour) and open
versus filled markers, so they stay apart in greyscale.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import FuncFormatter, MaxNLocator
from matplotlib.transforms import blended_transform_factory

from sepher.formatting import format_p

from .forest import _hr_ticks
from .style import (
    DOUBLE_COLUMN_MM,
    GREY,
    LIGHT_GREY,
    SINGLE_COLUMN_MM,
    fit_suptitle,
    format_ci,
    group_colours,
    humanise,
    is_blank,
    manual_figure,
    mm,
    require_columns,
    stamp_box_pt,
    stamp_simulated,
    text_width_px,
    wrap_to_width,
)

BALANCE_COLUMNS = ("covariate", "level", "label", "smd_unweighted", "smd_weighted")
HIST_COLUMNS = ("group", "bin_left", "bin_right", "n")
SUBGROUP_COLUMNS = (
    "endpoint",
    "variable",
    "variable_label",
    "level",
    "n",
    "events",
    "hr",
    "hr_lower",
    "hr_upper",
    "p_interaction",
)

#: Colours and markers of the Love plot's two series (not the groups' colours).
UNWEIGHTED_COLOUR = GREY
WEIGHTED_COLOUR = "#000000"
#: Colour of the hazard-ratio points of the subgroup forest plot (as in fig 8).
POINT_COLOUR = "#262626"  # neutral: blue and vermillion mean the two groups

FONT_PT = 6.5
TITLE_PT = 7.5
_PT_MM = 25.4 / 72.0
LINE_MM = FONT_PT * 1.2 * _PT_MM  # pitch of one text line, mm
ROW_MM = 4.4  # pitch of a one-line row, mm
MARGIN_MM = 1.5
#: Widest share of the figure width the row labels may take before they wrap.
LABEL_SHARE = 0.42


# --------------------------------------------------------------------------- helpers
def _width_mm(fig, text: str, size: float = FONT_PT, weight="normal") -> float:
    """Rendered width of the widest line of `text`, mm."""
    renderer = fig.canvas.get_renderer()
    widest = max(text_width_px(line, renderer, size, weight) for line in str(text).split("\n"))
    return widest / fig.dpi * 25.4


def _height_mm(fig, artist) -> float:
    """Rendered height of a text or legend, mm (does not depend on the figure height)."""
    fig.canvas.draw()
    return artist.get_window_extent(fig.canvas.get_renderer()).height / fig.dpi * 25.4


def _wrap(fig, text: str, width_mm: float, size: float = FONT_PT, weight="normal") -> str:
    """`text` wrapped between words so that every line is narrower than `width_mm`."""
    renderer = fig.canvas.get_renderer()
    return wrap_to_width(str(text), width_mm / 25.4 * fig.dpi, renderer, size, weight)


def _row_centres(lines: list[int]) -> tuple[np.ndarray, float]:
    """Centres of rows of the given line counts and their total height, mm from the top."""
    heights = np.array([ROW_MM + (k - 1) * LINE_MM for k in lines], float)
    edges = np.concatenate([[0.0], np.cumsum(heights)])
    return (edges[:-1] + edges[1:]) / 2.0, float(edges[-1])


class _Header:
    """Title, simulated-data stamp and legend across the top of a hand-laid figure.

    The title (bold, wrapped to end before the stamp) and the stamp share
    the top strip; the legend goes under them. :attr:`height_mm` is the
    height the header takes; :meth:`place` puts it once the figure has its
    final size.
    """

    def __init__(self, fig, width_mm, title, simulated, handles=(), labels=(), x_mm=MARGIN_MM):
        self.fig = fig
        self.x_mm = x_mm
        self.legend = None
        strip = 0.0
        if title:
            fig.suptitle(
                " ".join(str(title).split()),
                x=x_mm / width_mm,
                y=1.0,
                ha="left",
                va="top",
                fontsize=TITLE_PT,
                fontweight="bold",
            )
        if simulated:
            stamp_simulated(fig)  # wraps the title to end before the stamp
            height_pt, inset_pt = stamp_box_pt()
            strip = (height_pt + inset_pt) * _PT_MM + 0.6
        elif title:
            fit_suptitle(fig)
        self.title_top = 1.0
        if title:
            strip = max(strip, self.title_top + _height_mm(fig, fig._suptitle) + 0.8)
        self.legend_top = strip + (0.6 if strip else MARGIN_MM)
        self.height_mm = self.legend_top
        if len(handles):
            avail = width_mm - x_mm - MARGIN_MM
            for ncol in (len(handles), 1):
                if self.legend is not None:
                    self.legend.remove()
                self.legend = fig.legend(
                    handles,
                    labels,
                    loc="upper left",
                    bbox_to_anchor=(0.0, 1.0),
                    ncol=ncol,
                    frameon=False,
                    borderaxespad=0.0,
                    borderpad=0.0,
                    columnspacing=1.6,
                    fontsize=FONT_PT,
                )
                self.legend.set_gid("legend")
                fig.canvas.draw()
                box = self.legend.get_window_extent(fig.canvas.get_renderer())
                if box.width / fig.dpi * 25.4 <= avail:
                    break
            self.height_mm = self.legend_top + _height_mm(fig, self.legend) + 1.0

    def place(self, width_mm: float, height_mm: float) -> None:
        suptitle = getattr(self.fig, "_suptitle", None)
        if suptitle is not None:
            suptitle.set_y(1.0 - self.title_top / height_mm)
        if self.legend is not None:
            self.legend.set_bbox_to_anchor(
                (self.x_mm / width_mm, 1.0 - self.legend_top / height_mm),
                transform=self.fig.transFigure,
            )


def _plain_number(value) -> str:
    """A count for print: ``12``, never ``12.0``; NaN as an empty string."""
    if value is None or is_blank(value):
        return ""
    value = float(value)
    return f"{value:.0f}" if value == round(value) else f"{value:g}"


# --------------------------------------------------------------------------- Love plot
def _balance_labels(balance: pd.DataFrame, labels: Mapping | None) -> list[str]:
    """Display text of every balance row.

    ``labels[covariate]`` (the covariate's display name, with ": level"
    added for a categorical level) wins; else the ``label`` column; else
    the covariate name humanised.
    """
    labels = dict(labels or {})
    out = []
    for _, r in balance.iterrows():
        level = "" if is_blank(r["level"]) else str(r["level"])
        if r["covariate"] in labels:
            text = str(labels[r["covariate"]]) + (f": {level}" if level else "")
        elif not is_blank(r["label"]):
            text = str(r["label"])
        else:
            text = humanise(r["covariate"]) + (f": {level}" if level else "")
        out.append(" ".join(text.split()))
    return out


def plot_love(
    balance: pd.DataFrame,
    *,
    simulated: bool = False,
    threshold: float = 0.1,
    labels: Mapping | None = None,
    title: str | None = None,
    width_mm: float = SINGLE_COLUMN_MM,
) -> plt.Figure:
    """Love plot: absolute standardised mean differences before and after weighting.

    Parameters
    ----------
    balance : DataFrame
        ``covariate, level, label, smd_unweighted, smd_weighted``, one row
        per numeric covariate or level of a categorical one (as in
        ``results/survival/balance.csv``); drawn top to bottom in the
        table's order, so the levels of a covariate stay together. A NaN
        SMD draws no marker (a series with none is left out of the legend).
    simulated : bool, default False
        Stamp the figure "SIMULATED DATA".
    threshold : float, default 0.1
        |SMD| drawn as a dashed line and named in the legend; 0.1 is the
        usual limit of negligible imbalance (Austin 2009, Stat Med 28:3083).
    labels : mapping, optional
        Covariate -> display name; a level is added as "Name: level".
        Rows of other covariates show their ``label`` (else the covariate
        name humanised).
    title : str, optional
        Bold title over the plot, wrapped to end before the stamp.
    width_mm : float, default 89 (single column)
        Row labels wider than 42% of it wrap between words.

    Returns
    -------
    matplotlib.figure.Figure
        One axes, ``gid`` "love"; the unweighted markers are the line with
        ``gid`` "unweighted" (open circles), the weighted ones "weighted"
        (filled circles), the threshold line "threshold".
    """
    require_columns(balance, BALANCE_COLUMNS, "balance")
    if balance.empty:
        raise ValueError("balance has no rows")
    if not np.isfinite(threshold) or threshold <= 0:
        raise ValueError(f"threshold must be a positive number, not {threshold!r}")
    unweighted = np.abs(pd.to_numeric(balance["smd_unweighted"], errors="coerce").to_numpy(float))
    weighted = np.abs(pd.to_numeric(balance["smd_weighted"], errors="coerce").to_numpy(float))
    texts = _balance_labels(balance, labels)

    fig = manual_figure(width_mm, 50.0)
    wrapped = [_wrap(fig, t, LABEL_SHARE * width_mm) for t in texts]
    label_w = max(_width_mm(fig, t) for t in wrapped)
    centres, rows_h = _row_centres([t.count("\n") + 1 for t in wrapped])

    handles, names = [], []
    style_unweighted = {
        "marker": "o",
        "markersize": 4.4,
        "markerfacecolor": "white",
        "markeredgecolor": UNWEIGHTED_COLOUR,
        "markeredgewidth": 1.0,
        "linestyle": "none",
    }
    style_weighted = {
        "marker": "o",
        "markersize": 3.2,
        "markerfacecolor": WEIGHTED_COLOUR,
        "markeredgecolor": WEIGHTED_COLOUR,
        "markeredgewidth": 0.6,
        "linestyle": "none",
    }
    threshold_style = {"color": GREY, "linewidth": 0.7, "linestyle": (0, (3, 2))}
    if np.isfinite(unweighted).any():
        handles.append(Line2D([], [], **style_unweighted))
        names.append("Unweighted")
    if np.isfinite(weighted).any():
        handles.append(Line2D([], [], **style_weighted))
        names.append("Weighted")
    handles.append(Line2D([], [], **threshold_style))
    names.append(f"Threshold {threshold:g}")
    header = _Header(fig, width_mm, title, simulated, handles, names)

    bottom = 9.5  # x tick labels and x label
    top = header.height_mm + 1.0
    height = top + rows_h + bottom
    fig.set_size_inches(mm(width_mm), mm(height))
    left = MARGIN_MM + label_w + 2.0
    right = 3.0  # half a tick label
    ax = fig.add_axes(
        (left / width_mm, bottom / height, (width_mm - left - right) / width_mm, rows_h / height)
    )
    ax.set_gid("love")
    header.place(width_mm, height)

    finite = np.concatenate([unweighted[np.isfinite(unweighted)], weighted[np.isfinite(weighted)]])
    x_max = max(float(finite.max()) if finite.size else 0.0, threshold) * 1.08
    # a little room left of 0, so that markers at |SMD| ~ 0 are drawn whole
    ax.set_xlim(-0.025 * x_max, x_max)
    ax.spines["left"].set_visible(False)
    ax.set_ylim(rows_h, 0.0)
    ticks = MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]).tick_values(0.0, x_max)
    ax.set_xticks(ticks[(ticks >= 0) & (ticks <= x_max)])
    ax.set_xlabel("Absolute standardised mean difference")
    ax.set_yticks(centres)
    ax.set_yticklabels(wrapped, fontsize=FONT_PT, linespacing=1.15)
    ax.tick_params(axis="y", length=0, pad=2.0)
    for y in centres:  # faint guides from each label across the plot
        ax.axhline(y, color=LIGHT_GREY, linewidth=0.4, zorder=0)
    ax.axvline(threshold, zorder=1, gid="threshold", **threshold_style)
    keep = np.isfinite(unweighted)
    ax.plot(unweighted[keep], centres[keep], zorder=3, gid="unweighted", **style_unweighted)
    keep = np.isfinite(weighted)
    ax.plot(weighted[keep], centres[keep], zorder=4, gid="weighted", **style_weighted)
    return fig


# --------------------------------------------------------------------------- overlap
def plot_propensity_overlap(
    hist: pd.DataFrame,
    *,
    group_labels: Mapping,
    simulated: bool = False,
    title: str | None = None,
    colours: Mapping | None = None,
    width_mm: float = SINGLE_COLUMN_MM,
    height_mm: float = 62.0,
) -> plt.Figure:
    """Propensity score distributions of two groups as a mirrored histogram.

    Parameters
    ----------
    hist : DataFrame
        ``group, bin_left, bin_right, n``: patients per propensity-score bin
        and group (aggregated; empty bins may be left out). The propensity
        score is the modelled probability of the second group.
    group_labels : mapping or sequence
        The two group values -> display labels, in order: the first
        group's bars go up, the second's down. A sequence of two labels
        names the groups in their order of first appearance in `hist`.
    simulated : bool, default False
        Stamp the figure "SIMULATED DATA".
    title : str, optional
        Bold title over the plot, wrapped to end before the stamp.
    colours : mapping, optional
        Group value -> colour; default the study colours of the display
        labels (pertuzumab-naive blue, pertuzumab-pretreated vermillion).
    width_mm : float, default 89 (single column)
    height_mm : float, default 62
        Height of the plot area plus axis labels; the header adds to it.

    Returns
    -------
    matplotlib.figure.Figure
        One axes, ``gid`` "overlap"; bars of each group carry the ``gid``
        "bars-<group>" (heights of the second group negative), the legend
        names each group with its number of patients.
    """
    require_columns(hist, HIST_COLUMNS, "hist")
    data = hist.assign(group=hist["group"].astype(str))
    if not isinstance(group_labels, Mapping):  # labels of the groups in table order
        shown_in_order = [str(s) for s in group_labels]
        found = list(dict.fromkeys(data["group"]))
        if len(shown_in_order) != 2 or len(found) != 2:
            raise ValueError(
                f"group_labels must name exactly two groups, not {shown_in_order} "
                f"(hist has groups {found})"
            )
        group_labels = dict(zip(found, shown_in_order, strict=True))
    groups = list(group_labels)
    if len(groups) != 2:
        raise ValueError(f"group_labels must name exactly two groups, not {groups}")
    keys = [str(g) for g in groups]
    for g in keys:
        if not (data["group"] == g).any():
            raise ValueError(f"group {g!r} of group_labels has no rows in hist")
    if (data["bin_right"] <= data["bin_left"]).any():
        raise ValueError("hist: every bin needs bin_right > bin_left")
    if (data["n"] < 0).any():
        raise ValueError("hist: counts n must be >= 0")
    shown = [str(group_labels[g]) for g in groups]
    by_label = group_colours(shown, None)
    colour = {k: by_label[s] for k, s in zip(keys, shown, strict=True)}
    if colours:
        colour.update({str(g): c for g, c in colours.items() if str(g) in colour})

    fig = manual_figure(width_mm, height_mm)
    totals = {k: int(data.loc[data["group"] == k, "n"].sum()) for k in keys}
    handles = [Patch(facecolor=colour[k], edgecolor="none") for k in keys]
    names = [f"{s} (n = {totals[k]})" for k, s in zip(keys, shown, strict=True)]
    header = _Header(fig, width_mm, title, simulated, handles, names)

    tick_w = _width_mm(fig, "000")
    left = MARGIN_MM + LINE_MM + 1.5 + tick_w + 1.5  # y label, tick labels
    bottom = 9.5
    height = height_mm + header.height_mm
    fig.set_size_inches(mm(width_mm), mm(height))
    plot_h = height_mm - bottom - 1.0
    ax = fig.add_axes(
        (left / width_mm, bottom / height, (width_mm - left - 3.0) / width_mm, plot_h / height)
    )
    ax.set_gid("overlap")
    header.place(width_mm, height)

    for sign, k in zip((1.0, -1.0), keys, strict=True):
        sub = data[data["group"] == k].sort_values("bin_left", kind="mergesort")
        lefts = sub["bin_left"].to_numpy(float)
        widths = sub["bin_right"].to_numpy(float) - lefts
        bars = ax.bar(
            lefts,
            sign * sub["n"].to_numpy(float),
            width=widths,
            align="edge",
            color=colour[k],
            edgecolor="white",
            linewidth=0.3,
            zorder=2,
        )
        for bar in bars:
            bar.set_gid(f"bars-{k}")
    peak = max(float(data["n"].max()), 1.0)
    # the axis ends on a tick: counts 0, k, 2k, ... up and down
    steps = MaxNLocator(nbins=3, integer=True).tick_values(0.0, peak)
    steps = steps[steps >= 0]
    lim = float(steps[steps >= peak][0]) if (steps >= peak).any() else peak
    steps = steps[steps <= lim]
    ax.set_ylim(-lim, lim)
    ax.set_yticks(np.concatenate([-steps[::-1][:-1], steps]))
    ax.set_xlim(float(data["bin_left"].min()), float(data["bin_right"].max()))
    ax.axhline(0.0, color="#262626", linewidth=0.6, zorder=3)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{abs(v):g}"))
    ax.set_ylabel("Patients")
    ax.set_xlabel(f"Propensity score (probability of {shown[1]})")
    return fig


# --------------------------------------------------------------------------- subgroups
def _subgroup_rows(table: pd.DataFrame) -> list[dict]:
    """Rows of the subgroup forest plot: overall, then each variable and its levels."""
    rows = []
    variables = list(dict.fromkeys(table["variable"].astype(str)))
    ordered = [v for v in variables if v.lower() == "all"]
    ordered += [v for v in variables if v.lower() != "all"]
    for var in ordered:
        sub = table[table["variable"].astype(str) == var]
        first = sub.iloc[0]
        name = (
            str(first["variable_label"]).strip()
            if not is_blank(first["variable_label"])
            else humanise(var)
        )
        p_values = pd.to_numeric(sub["p_interaction"], errors="coerce").dropna()
        p_int = float(p_values.iloc[0]) if len(p_values) else np.nan
        if var.lower() == "all":
            for _, r in sub.iterrows():
                rows.append({"kind": "overall", "text": name or "Overall", "r": r, "p": np.nan})
            continue
        rows.append({"kind": "variable", "text": name, "r": None, "p": p_int})
        for _, r in sub.iterrows():
            level = "" if is_blank(r["level"]) else str(r["level"])
            rows.append({"kind": "level", "text": level, "r": r, "p": np.nan})
    return rows


def plot_subgroups(
    subgroups: pd.DataFrame,
    *,
    endpoint_label: str,
    simulated: bool = False,
    title: str | None = None,
    endpoint: str | None = None,
    comparison: str | None = None,
    width_mm: float = DOUBLE_COLUMN_MM,
) -> plt.Figure:
    """Subgroup forest plot: the group hazard ratio within each subgroup level.

    Parameters
    ----------
    subgroups : DataFrame
        ``endpoint, variable, variable_label, level, n, events, hr,
        hr_lower, hr_upper, p_interaction`` as in
        ``results/survival/subgroups.csv``: one row per level of each
        subgroup variable (``p_interaction`` of the variable's product-term
        Cox model on any of its rows), and optionally an overall row with
        ``variable == "all"``, drawn first as a diamond. A row with a NaN
        hazard ratio (too few events) prints "NE" and draws no point.
    endpoint_label : str
        Name of the endpoint, printed in bold over the plot, e.g. "Overall
        survival".
    simulated : bool, default False
        Stamp the figure "SIMULATED DATA".
    title : str, optional
        Bold figure title, wrapped to end before the stamp.
    endpoint : str, optional
        Endpoint to draw when the table holds several; required then.
    comparison : str, optional
        What the hazard ratio compares, e.g. "Pertuzumab-pretreated vs
        pertuzumab-naive", printed under `endpoint_label`.
    width_mm : float, default 183 (double column)

    Returns
    -------
    matplotlib.figure.Figure
        One axes, ``gid`` "subgroups": log x axis with a dashed line at 1;
        points are lines with ``gid`` "hr-point" (a diamond for the overall
        row); texts with gids "row-label", "n-text", "events-text",
        "hr-text" and "p-interaction".
    """
    require_columns(subgroups, SUBGROUP_COLUMNS, "subgroups")
    endpoints = list(dict.fromkeys(subgroups["endpoint"].astype(str)))
    if endpoint is None:
        if len(endpoints) != 1:
            raise ValueError(f"subgroups holds endpoints {endpoints}; pass endpoint=")
        endpoint = endpoints[0]
    table = subgroups[subgroups["endpoint"].astype(str) == str(endpoint)]
    if table.empty:
        raise ValueError(f"subgroups has no rows for endpoint {endpoint!r}")
    rows = _subgroup_rows(table)

    # text columns
    for row in rows:
        r = row["r"]
        row["n"] = _plain_number(r["n"]) if r is not None else ""
        row["events"] = _plain_number(r["events"]) if r is not None else ""
        if r is None:
            row["hr_text"] = ""
        elif np.isfinite(float(r["hr"])):
            row["hr_text"] = format_ci(float(r["hr"]), float(r["hr_lower"]), float(r["hr_upper"]))
        else:
            row["hr_text"] = "NE"
        row["p_text"] = format_p(row["p"], prefix="") if np.isfinite(row["p"]) else ""

    fig = manual_figure(width_mm, 50.0)
    indent = 3.0
    label_limit = LABEL_SHARE * 0.75 * width_mm
    for row in rows:
        bold = row["kind"] in ("variable", "overall")
        limit = label_limit - (indent if row["kind"] == "level" else 0.0)
        row["label"] = _wrap(fig, row["text"], limit, FONT_PT, "bold" if bold else "normal")
        row["label_w"] = _width_mm(fig, row["label"], FONT_PT, "bold" if bold else "normal") + (
            indent if row["kind"] == "level" else 0.0
        )
    heads = {
        "label": "Subgroup",
        "n": "n",
        "events": "Events",
        "hr": "HR (95% CI)",
        "p": "p for\ninteraction",
    }
    label_w = max(max(row["label_w"] for row in rows), _width_mm(fig, heads["label"])) + 3.0
    n_w = max(_width_mm(fig, t) for t in [heads["n"], *(row["n"] for row in rows)]) + 3.0
    ev_w = max(_width_mm(fig, t) for t in [heads["events"], *(row["events"] for row in rows)])
    ev_w += 3.0
    hr_w = max(_width_mm(fig, t) for t in [heads["hr"], *(row["hr_text"] for row in rows)]) + 3.0
    p_w = max(_width_mm(fig, t) for t in [heads["p"], *(row["p_text"] for row in rows)]) + 1.0
    left, right, gap = MARGIN_MM, MARGIN_MM, 3.0
    plot_w = width_mm - left - right - label_w - n_w - ev_w - hr_w - p_w - 2 * gap
    if plot_w < 25.0:
        raise ValueError(
            f"subgroup labels too wide for a {width_mm:.0f} mm figure; shorten them or widen it"
        )

    # header: title / stamp, then the endpoint (bold) and the comparison, then column heads
    header = _Header(fig, width_mm, title, simulated)
    endpoint_text = _wrap(fig, endpoint_label, width_mm - left - right, TITLE_PT, "bold")
    comparison_text = (
        _wrap(fig, comparison, width_mm - left - right) if not is_blank(comparison) else ""
    )
    y = header.height_mm + 0.4
    endpoint_y = y
    y += (endpoint_text.count("\n") + 1) * TITLE_PT * 1.2 * _PT_MM + 0.8
    comparison_y = y
    if comparison_text:
        y += (comparison_text.count("\n") + 1) * LINE_MM + 1.0
    head_y = y + 2 * LINE_MM  # column heads sit on this line (two-line heads fit above)
    top = head_y + 1.2
    centres, rows_h = _row_centres([row["label"].count("\n") + 1 for row in rows])
    bottom = 10.0
    height = top + rows_h + bottom
    fig.set_size_inches(mm(width_mm), mm(height))
    header.place(width_mm, height)

    def fx(x_mm):
        return x_mm / width_mm

    def fy(y_mm):  # y measured from the top
        return 1.0 - y_mm / height

    x_plot = left + label_w + n_w + ev_w + gap
    ax = fig.add_axes((fx(x_plot), bottom / height, fx(plot_w), rows_h / height))
    ax.set_gid("subgroups")
    ax.set_ylim(rows_h, 0.0)
    ax.set_yticks([])
    ax.spines["left"].set_visible(False)
    ax.patch.set_visible(False)

    # log axis from the finite confidence limits, always showing 1
    lows = pd.to_numeric(table["hr_lower"], errors="coerce").to_numpy(float)
    highs = pd.to_numeric(table["hr_upper"], errors="coerce").to_numpy(float)
    hrs = pd.to_numeric(table["hr"], errors="coerce").to_numpy(float)
    ok_lo = np.isfinite(lows) & (lows > 0) & np.isfinite(hrs)
    ok_hi = np.isfinite(highs) & np.isfinite(hrs)
    lo = float(np.min(lows[ok_lo])) if ok_lo.any() else 1.0
    hi = float(np.max(highs[ok_hi])) if ok_hi.any() else 1.0
    lo, hi = min(lo, 1.0) / 1.25, max(hi, 1.0) * 1.25
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    ticks = _hr_ticks(lo, hi)
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_locator(plt.NullLocator())
    ax.tick_params(axis="x", labelsize=FONT_PT)
    ax.set_xlabel("Hazard ratio (log scale)", fontsize=FONT_PT)
    ax.axvline(1.0, color=GREY, linewidth=0.6, linestyle=(0, (3, 2)), zorder=1)

    tr = blended_transform_factory(fig.transFigure, ax.transData)
    x_n = left + label_w + n_w - 1.0
    x_ev = left + label_w + n_w + ev_w - 1.0
    x_hr = x_plot + plot_w + gap
    x_p = width_mm - right
    # zebra stripes: alternate variables (the overall row on its own)
    block, stripe = -1, []
    for row in rows:
        if row["kind"] in ("variable", "overall"):
            block += 1
        stripe.append(block % 2 == 1)
    edges = np.concatenate(
        [[0.0], np.cumsum([ROW_MM + LINE_MM * row["label"].count("\n") for row in rows])]
    )
    for i, shaded in enumerate(stripe):
        if shaded:
            ax.add_patch(
                Rectangle(
                    (fx(left - 1.0), edges[i]),
                    fx(width_mm - left - right + 2.0),
                    edges[i + 1] - edges[i],
                    transform=tr,
                    facecolor=LIGHT_GREY,
                    alpha=0.18,
                    linewidth=0,
                    zorder=0,
                    clip_on=False,
                )
            )

    for row, yc in zip(rows, centres, strict=True):
        bold = row["kind"] in ("variable", "overall")
        x_label = left + (indent if row["kind"] == "level" else 0.0)
        # one line spacing for every text of a row: their baselines then line up
        common = {"transform": tr, "va": "center", "fontsize": FONT_PT, "linespacing": 1.15}
        ax.text(
            fx(x_label),
            yc,
            row["label"],
            ha="left",
            fontweight="bold" if bold else "normal",
            gid="row-label",
            **common,
        )
        if row["n"]:
            ax.text(fx(x_n), yc, row["n"], ha="right", gid="n-text", **common)
        if row["events"]:
            ax.text(fx(x_ev), yc, row["events"], ha="right", gid="events-text", **common)
        if row["hr_text"]:
            ax.text(fx(x_hr), yc, row["hr_text"], ha="left", gid="hr-text", **common)
        if row["p_text"]:
            ax.text(fx(x_p), yc, row["p_text"], ha="right", gid="p-interaction", **common)
        r = row["r"]
        if r is None or not np.isfinite(float(r["hr"])) or float(r["hr"]) <= 0:
            continue
        est = float(r["hr"])
        l_, u_ = float(r["hr_lower"]), float(r["hr_upper"])
        l_ = l_ if np.isfinite(l_) and l_ > 0 else lo
        u_ = u_ if np.isfinite(u_) else hi
        ax.plot([max(l_, lo), min(u_, hi)], [yc, yc], color="#262626", linewidth=0.9, zorder=2)
        overall = row["kind"] == "overall"
        ax.plot(
            est,
            yc,
            marker="D" if overall else "s",
            markersize=4.2 if overall else 3.6,
            color="#262626" if overall else POINT_COLOUR,
            linestyle="none",
            zorder=3,
            gid="hr-point",
        )

    # heads and titles
    head = {"va": "bottom", "fontsize": FONT_PT, "fontweight": "bold", "linespacing": 1.1}
    fig.text(fx(left), fy(head_y), heads["label"], ha="left", **head)
    fig.text(fx(x_n), fy(head_y), heads["n"], ha="right", **head)
    fig.text(fx(x_ev), fy(head_y), heads["events"], ha="right", **head)
    fig.text(fx(x_hr), fy(head_y), heads["hr"], ha="left", **head)
    fig.text(fx(x_p), fy(head_y), heads["p"], ha="right", **head)
    fig.text(
        fx(left),
        fy(endpoint_y),
        endpoint_text,
        ha="left",
        va="top",
        fontsize=TITLE_PT,
        fontweight="bold",
        gid="endpoint-label",
    )
    if comparison_text:
        fig.text(
            fx(left),
            fy(comparison_y),
            comparison_text,
            ha="left",
            va="top",
            fontsize=FONT_PT,
            color=GREY,
            gid="comparison",
        )
    return fig
