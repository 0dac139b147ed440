"""Proportional-hazards diagnostics (figS3_ph_diagnostics), as R's plot(cox.zph).

One panel per Cox coefficient: scaled Schoenfeld residuals against time on
the Kaplan-Meier-transformed scale (tick labels in real time), a natural
cubic spline smooth (4 df, as R's ``plot.cox.zph``) with a +/- 2 SE band, a
horizontal line at the coefficient, and the term's PH test p in the title.
A flat smooth along the line supports proportional hazards.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from sepher.formatting import format_p

from .style import (
    DOUBLE_COLUMN_MM,
    GREY,
    OKABE_ITO,
    fit_suptitle,
    mm,
    require_columns,
    stamp_simulated,
    wrap_to_width,
)


def natural_spline_basis(x: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """Natural cubic spline basis with an intercept (Hastie et al. 2009, eq. 5.4-5.5).

    Parameters
    ----------
    x : ndarray, shape (n,)
    knots : ndarray, shape (K,)
        Sorted knots including the two boundary knots; K >= 2.

    Returns
    -------
    ndarray, shape (n, K)
        Columns 1, x, and K - 2 truncated-cubic terms, linear beyond the
        boundary knots. Spans the same space as R's ``cbind(1, ns(x, df = K - 1))``.
    """
    x = np.asarray(x, float)
    k = np.asarray(knots, float)
    K = len(k)

    def d(j):
        return (np.clip(x - k[j], 0, None) ** 3 - np.clip(x - k[-1], 0, None) ** 3) / (k[-1] - k[j])

    cols = [np.ones_like(x), x]
    for j in range(K - 2):
        cols.append(d(j) - d(K - 2))
    return np.column_stack(cols)


def spline_smooth(x, y, df: int = 4, grid=None):
    """Least-squares natural spline fit of ``y`` on ``x`` with pointwise SE.

    Interior knots at quantiles of ``x`` as R's ``ns(x, df)``: ``df - 1``
    interior knots plus the range as boundary knots (``df + 1`` parameters
    with the intercept).

    Parameters
    ----------
    x, y : array_like, shape (n,)
    df : int, default 4
        Degrees of freedom of the spline (R ``plot.cox.zph(df = 4)``).
    grid : array_like, optional
        Where to evaluate; default 100 points over the range of ``x``.

    Returns
    -------
    grid, fit, se : ndarray
        The fitted mean and its standard error at ``grid``.
    """
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    grid = np.linspace(x.min(), x.max(), 100) if grid is None else np.asarray(grid, float)
    n_unique = np.unique(x).size
    df = int(max(1, min(df, n_unique - 2)))
    inner = np.quantile(x, np.linspace(0, 1, df + 1)[1:-1]) if df > 1 else np.array([])
    knots = np.unique(np.concatenate([[x.min()], inner, [x.max()]]))
    if knots.size < 2:
        raise ValueError("spline_smooth needs at least two distinct x values")
    X = natural_spline_basis(x, knots)
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ coef
    dof = max(len(y) - X.shape[1], 1)
    sigma2 = float(resid @ resid) / dof
    xtx_inv = np.linalg.pinv(X.T @ X)
    G = natural_spline_basis(grid, knots)
    fit = G @ coef
    se = np.sqrt(np.einsum("ij,jk,ik->i", G, xtx_inv, G) * sigma2)
    return grid, fit, se


def _term_for(coef: str, ph_table: pd.DataFrame):
    """PH test row of a coefficient: same name, else the longest term it starts with."""
    terms = [str(t) for t in ph_table["term"]]
    if coef in terms:
        return ph_table.iloc[terms.index(coef)]
    prefixes = [t for t in terms if coef.startswith(t)]
    if prefixes:
        return ph_table.iloc[terms.index(max(prefixes, key=len))]
    return None


def _nice(value: float) -> float:
    """Round to one significant digit of 1, 2, 2.5, 5 (or two digits above 10)."""
    if value <= 0:
        return 0.0
    exp = np.floor(np.log10(value))
    base = 10.0**exp
    steps = np.array([1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) * base
    return float(steps[np.argmin(np.abs(steps - value))])


def _time_ticks(times, transformed, n: int = 6):
    """Real-time tick values spread evenly over the transformed axis, and their positions."""
    order = np.argsort(times, kind="mergesort")
    t, u = np.asarray(times, float)[order], np.asarray(transformed, float)[order]
    targets = np.linspace(u.min(), u.max(), n)
    values = sorted({_nice(v) for v in np.interp(targets, u, t)})
    values = np.array([v for v in values if t.min() <= v <= t.max()])
    pos = np.interp(values, t, u)
    keep = np.concatenate([[True], np.diff(pos) > 0.08 * (u.max() - u.min())])
    return values[keep], pos[keep]


def plot_schoenfeld(
    residuals: pd.DataFrame,
    ph_table: pd.DataFrame,
    *,
    simulated: bool = False,
    coefficients: Mapping | None = None,
    coefficient_labels: Mapping | None = None,
    time_unit: str = "months",
    df: int = 4,
    n_cols: int = 3,
    width_mm: float = DOUBLE_COLUMN_MM,
    title: str | None = None,
) -> plt.Figure:
    """Scaled Schoenfeld residual plots, one panel per coefficient.

    Parameters
    ----------
    residuals : DataFrame
        ``time, transformed_time`` and one column of scaled Schoenfeld
        residuals per coefficient, one row per event (R convention:
        ``cox.zph(fit)$y``, residuals with the coefficient added).
    ph_table : DataFrame
        ``term, chisq, df, p`` (``cox.zph`` table; a GLOBAL row is ignored).
        A coefficient takes the p of the term of the same name, or of the
        longest term its name starts with (``tgradeII`` -> ``tgrade``).
    simulated : bool, default False
        Stamp the figure "SIMULATED DATA".
    coefficients : mapping, optional
        Coefficient -> estimate for the horizontal reference line; default
        the mean of its residuals (equal to the estimate under the R
        convention, 0 for unshifted residuals).
    coefficient_labels : mapping, optional
        Coefficient -> panel title text (e.g. from
        :func:`sepher.figures.labels.coefficient_label`); default the name.
    time_unit : str, default "months"
    df : int, default 4
        Spline degrees of freedom of the smooth.
    n_cols : int, default 3
    width_mm : float, default 183
    title : str, optional
        Figure title, e.g. "Overall survival, multivariate model". The
        global test of a ``GLOBAL`` row of ``ph_table`` is added to it
        (": GLOBAL test p = 0.069").

    Returns
    -------
    matplotlib.figure.Figure
        Axes ``gid`` = coefficient name.
    """
    require_columns(residuals, ("time", "transformed_time"), "residuals")
    require_columns(ph_table, ("term", "chisq", "df", "p"), "ph_table")
    coefs = [c for c in residuals.columns if c not in ("time", "transformed_time")]
    if not coefs:
        raise ValueError("residuals has no coefficient columns besides time, transformed_time")
    coefficient_labels = dict(coefficient_labels or {})
    n_cols = max(1, min(n_cols, len(coefs)))
    n_rows = int(np.ceil(len(coefs) / n_cols))
    panel_h = 44.0
    global_rows = ph_table[ph_table["term"].astype(str).str.upper() == "GLOBAL"]
    if len(global_rows):
        test = f"GLOBAL test {format_p(float(global_rows['p'].iloc[0]))}"
        title = f"{title}: {test}" if title else test
    fig, axes = plt.subplots(
        n_rows,
        n_cols,
        figsize=(mm(width_mm), mm(panel_h * n_rows + (4 if simulated else 0))),
        squeeze=False,
    )
    if title:
        fig.suptitle(title, x=0.01, ha="left", fontsize=7.5, fontweight="bold")
        if not simulated:
            fit_suptitle(fig)
        fig.set_size_inches(mm(width_mm), mm(panel_h * n_rows + 6.0))
    times = residuals["time"].to_numpy(float)
    u = residuals["transformed_time"].to_numpy(float)
    tick_vals, tick_pos = _time_ticks(times, u)
    for ax, coef in zip(axes.flat, coefs, strict=False):
        y = residuals[coef].to_numpy(float)
        ax.set_gid(coef)
        ax.plot(
            u,
            y,
            linestyle="none",
            marker="o",
            markersize=1.6,
            markeredgewidth=0,
            color=GREY,
            alpha=0.55,
        )
        grid, fit, se = spline_smooth(u, y, df=df)
        ax.fill_between(
            grid, fit - 2 * se, fit + 2 * se, color=OKABE_ITO["blue"], alpha=0.18, linewidth=0
        )
        ax.plot(grid, fit, color=OKABE_ITO["blue"], linewidth=1.0, gid="smooth")
        level = (
            float(coefficients[coef])
            if coefficients and coef in coefficients
            else float(np.nanmean(y))
        )
        ax.axhline(
            level,
            color=OKABE_ITO["vermillion"],
            linewidth=0.7,
            linestyle=(0, (3, 2)),
            gid="coefficient",
        )
        # residuals scatter widely: zoom on the smooth and its band, as R does with ylim
        band_lo, band_hi = np.min(fit - 2 * se), np.max(fit + 2 * se)
        spread = np.nanpercentile(y, [2.5, 97.5])
        lo, hi = min(band_lo, spread[0], level), max(band_hi, spread[1], level)
        pad = 0.08 * (hi - lo if hi > lo else 1.0)
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_xticks(tick_pos)
        ax.set_xticklabels([f"{v:g}" for v in tick_vals])
        row = _term_for(coef, ph_table)
        name = coefficient_labels.get(coef, coef)
        panel_title = name if row is None else f"{name}  ({format_p(float(row['p']))})"
        ax.set_title(panel_title, fontsize=7, fontweight="normal", loc="left")
        ax.set_ylabel("\u03b2(t)", fontsize=6.5)
        ax.set_xlabel(f"Time ({time_unit}, KM scale)", fontsize=6.5)
    for ax in list(axes.flat)[len(coefs) :]:
        ax.set_visible(False)
    if simulated:
        stamp_simulated(fig)
    # panel titles wider than their panel wrap (after a first layout gives the widths)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in list(axes.flat)[: len(coefs)]:
        text = ax.get_title(loc="left")
        room = ax.get_window_extent(renderer).width
        p_text = text[text.rfind("(") :] if text.endswith(")") else ""
        wrapped = wrap_to_width(text, room, renderer, 7, keep_together=[p_text] if p_text else [])
        ax.set_title(wrapped, fontsize=7, fontweight="normal", loc="left")
    return fig
