"""Supplementary figure: calibration of the IHC membrane intensity thresholds.

Panel a shows, for every reference-scored image (grouped by its reference
score, 0 / 1+ / 2+ / 3+), the distribution of its tumour cells' membrane DAB
excess over the cell interior (``membrane_dab_excess_od``): a line from the
10th to the 90th percentile, a dot at the median and a diamond at the 90th
percentile (the value exceeded by 10 % of the tumour cells, which is what
the ASCO/CAP "> 10 % of cells" rules read). The fitted thresholds ``weak``,
``moderate`` and ``strong`` are horizontal lines (told apart by line style
and named at the right with their 95 % intervals), each interval a
bracket right of the images in the line style of its threshold (an arrow
head when open at the top). Panel b is the cross-validated confusion matrix (reference score in
rows, out-of-fold prediction in columns) with the counts, and exact
agreement and linearly weighted kappa in its title.

Colour carries no meaning here: greys and line styles only, so the figure
reads the same in greyscale and for a colour-blind reader.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from sepher.ihc.calibration import (
    THRESHOLD_NAMES,
    CalibrationResult,
    _check_references,
)
from sepher.ihc.rules import ASCO_CAP_LABELS

from .style import DOUBLE_COLUMN_MM, GREY, mm, stamp_simulated

__all__ = ["THRESHOLD_STYLES", "image_summaries", "plot_calibration"]

#: Line style of each fitted threshold in panel a (black; told apart by dashes).
THRESHOLD_STYLES = {
    "weak": (0, (1.0, 1.2)),
    "moderate": (0, (4.0, 1.5)),
    "strong": "-",
}

#: Percentiles of an image's tumour-cell excess drawn in panel a.
PERCENTILES = (10.0, 50.0, 90.0)


def image_summaries(cells: pd.DataFrame, references: Mapping) -> pd.DataFrame:
    """Per reference image, percentiles of its tumour cells' membrane DAB excess.

    Parameters
    ----------
    cells : DataFrame
        Per-cell table: ``image_id``, ``membrane_dab_excess_od`` and
        optionally ``tumour`` (bool; default all cells).
    references : mapping or Series
        ``image_id`` -> reference score 0-3 (or "0" .. "3+").

    Returns
    -------
    DataFrame
        One row per reference image, by reference score then 90th
        percentile: ``image_id``, ``reference`` (0-3), ``n_tumour_cells``,
        ``p10``, ``p50``, ``p90`` (OD; NaN without measured cells).
    """
    refs = _check_references(references)
    missing = [c for c in ("image_id", "membrane_dab_excess_od") if c not in cells]
    if missing:
        raise ValueError(f"cells lacks column(s) {missing}")
    tumour = cells["tumour"].to_numpy(bool) if "tumour" in cells else np.ones(len(cells), bool)
    table = pd.DataFrame(
        {
            "image_id": cells["image_id"].astype(str).to_numpy()[tumour],
            "x": cells["membrane_dab_excess_od"].to_numpy(np.float64)[tumour],
        }
    )
    groups = {k: g["x"].to_numpy() for k, g in table.groupby("image_id", sort=False)}
    rows = []
    for image_id, reference in refs.items():
        x = groups.get(image_id, np.empty(0))
        finite = x[np.isfinite(x)]
        values = (
            np.percentile(finite, PERCENTILES) if finite.size else np.full(len(PERCENTILES), np.nan)
        )
        rows.append(
            {
                "image_id": image_id,
                "reference": int(reference),
                "n_tumour_cells": int(x.size),
                **{f"p{p:g}": float(v) for p, v in zip(PERCENTILES, values, strict=True)},
            }
        )
    out = pd.DataFrame(rows)
    return out.sort_values(["reference", "p90", "image_id"], kind="stable").reset_index(drop=True)


def _interval_text(value: float, low: float, high: float) -> str:
    """``"0.175 (0.140-0.200)"``; an interval open at the top reads ``"(>= 0.265)"``."""
    if not np.isfinite(low):
        return f"{value:.3f}"
    if not np.isfinite(high):
        return f"{value:.3f} (\u2265 {low:.3f})"
    return f"{value:.3f} ({low:.3f}\u2013{high:.3f})"


def _agreement_title(result: CalibrationResult) -> str:
    scheme = result.cv_scheme or "cross-validated"
    scheme = scheme[:1].upper() + scheme[1:]
    kappa = "NA" if not np.isfinite(result.kappa_linear) else f"{result.kappa_linear:.2f}"
    return (
        f"{scheme}\n(n = {result.n_images} images):\n"
        f"exact {100 * result.exact:.0f} %,\nlinearly weighted \u03ba {kappa}"
    )


def plot_calibration(
    result: CalibrationResult,
    cells: pd.DataFrame,
    references: Mapping,
    *,
    simulated: bool = False,
    width_mm: float = DOUBLE_COLUMN_MM,
    height_mm: float = 80.0,
) -> plt.Figure:
    """Supplementary calibration figure (see module docstring).

    Parameters
    ----------
    result : CalibrationResult
        From :func:`sepher.ihc.calibration.calibrate_thresholds`, or read
        back with :func:`sepher.ihc.calibration.result_from_table`.
    cells : DataFrame
        Per-cell table of (at least) the reference images.
    references : mapping or Series
        ``image_id`` -> reference score.
    simulated : bool, default False
        Stamp the figure "SIMULATED DATA".
    width_mm, height_mm : float
        Figure size (default journal double column x 80 mm).

    Returns
    -------
    matplotlib.figure.Figure
    """
    summary = image_summaries(cells, references)
    fig, (ax_a, ax_b) = plt.subplots(
        1,
        2,
        figsize=(mm(width_mm), mm(height_mm)),
        width_ratios=[2.2, 1.0],
        layout="constrained",
    )

    # --- a: per image excess by reference score, thresholds with intervals -------------
    x_positions, centres, counts = [], {}, {}
    x = 0.0
    for score in range(len(ASCO_CAP_LABELS)):
        rows = summary.index[summary["reference"] == score]
        if len(rows):
            xs = x + np.arange(len(rows))
            x_positions.extend(zip(rows, xs, strict=True))
            centres[score] = float(xs.mean())
            counts[score] = len(rows)
            x = xs[-1] + 2.0
    xpos = pd.Series(dict(x_positions), dtype=np.float64)
    summary = summary.assign(x=xpos.reindex(summary.index).to_numpy())
    finite = summary[["p10", "p90"]].to_numpy()
    finite = finite[np.isfinite(finite)]
    values = [*finite, *(v for v in result.thresholds.values())]
    values += [v for lo_hi in result.ci.values() for v in lo_hi if np.isfinite(v)]
    y_low = min(0.0, float(np.min(values))) - 0.02
    y_high = float(np.max(values)) + 0.05
    x_right = max(x - 2.0, 0.0)
    for k, name in enumerate(THRESHOLD_NAMES):
        low, high = result.ci.get(name, (np.nan, np.nan))
        value = float(result.thresholds[name])
        style = THRESHOLD_STYLES[name]
        ax_a.axhline(value, color="black", lw=0.8, ls=style, zorder=1)
        if np.isfinite(low):
            # the interval as a bracket right of the images (bands of adjacent
            # thresholds would merge); an open top ends in an arrow head
            xk = x_right + 1.6 + 0.9 * k
            top = min(high, y_high)
            ax_a.plot([xk, xk], [low, top], color="black", lw=1.0, ls=style,
                      solid_capstyle="butt", zorder=2)  # fmt: skip
            ax_a.plot([xk - 0.3, xk + 0.3], [low, low], color="black", lw=0.8, zorder=2)
            if np.isfinite(high):
                ax_a.plot([xk - 0.3, xk + 0.3], [high, high], color="black", lw=0.8, zorder=2)
            else:
                ax_a.plot(xk, top, "^", ms=3.0, color="black", zorder=2, clip_on=False)
        ax_a.annotate(
            f"{name} {_interval_text(value, low, high)}",
            xy=(1.0, value),
            xycoords=("axes fraction", "data"),
            xytext=(3, 0),
            textcoords="offset points",
            ha="left",
            va="center",
            fontsize=6,
            annotation_clip=False,
        )
    ax_a.vlines(summary["x"], summary["p10"], summary["p90"], color=GREY, lw=0.8, zorder=2)
    ax_a.plot(summary["x"], summary["p50"], "o", ms=2.5, color=GREY, zorder=3, label="median")
    ax_a.plot(
        summary["x"],
        summary["p90"],
        "D",
        ms=3.0,
        mfc="white",
        mec="black",
        mew=0.7,
        zorder=4,
        label="90th percentile (exceeded by 10 % of cells)",
    )
    ax_a.plot([], [], "-", color=GREY, lw=0.8, label="10th\u201390th percentile")
    ax_a.set_xlim(-1.0, x_right + 4.0)
    ax_a.set_ylim(y_low, y_high)
    ax_a.set_xticks(
        [centres[s] for s in centres],
        [f"{ASCO_CAP_LABELS[s]}\n(n = {counts[s]})" for s in centres],
    )
    ax_a.set_xlabel("Reference score (images, by their 90th percentile)")
    ax_a.set_ylabel("Membrane DAB excess over cell interior (OD)\ntumour cells, per image")
    ax_a.set_title("Reference images and fitted intensity thresholds (bars: 95 % intervals)")
    ax_a.legend(loc="upper left", fontsize=6, handlelength=1.4)
    ax_a.text(-0.1, 1.02, "a", transform=ax_a.transAxes, fontsize=9, fontweight="bold",
              va="bottom", ha="right")  # fmt: skip

    # --- b: cross-validated confusion matrix -------------------------------------------
    confusion = result.confusion.reindex(
        index=list(ASCO_CAP_LABELS), columns=list(ASCO_CAP_LABELS), fill_value=0
    )
    counts_b = confusion.to_numpy(np.int64)
    top = max(int(counts_b.max()), 1)
    ax_b.imshow(counts_b, cmap="Greys", vmin=0, vmax=top * 1.25, aspect="equal")
    for r in range(counts_b.shape[0]):
        for c in range(counts_b.shape[1]):
            value = counts_b[r, c]
            dark = value > 0.6 * top * 1.25
            ax_b.text(c, r, str(value), ha="center", va="center", fontsize=7,
                      fontweight="bold" if r == c else "normal",
                      color="white" if dark else ("black" if value else GREY))  # fmt: skip
    ax_b.set_xticks(range(len(ASCO_CAP_LABELS)), ASCO_CAP_LABELS)
    ax_b.set_yticks(range(len(ASCO_CAP_LABELS)), ASCO_CAP_LABELS)
    ax_b.set_xlabel("Predicted (held out)")
    ax_b.set_ylabel("Reference score")
    ax_b.tick_params(length=0)
    for spine in ax_b.spines.values():
        spine.set_visible(False)
    ax_b.set_title(_agreement_title(result), loc="center")
    ax_b.text(-0.3, 1.02, "b", transform=ax_b.transAxes, fontsize=9, fontweight="bold",
              va="bottom", ha="right")  # fmt: skip
    if simulated:
        stamp_simulated(fig)
    return fig
