"""Growth-rate inhibition (GR) metrics (Hafner, Niepel, Chung & Sorger 2016,
Nat Methods 13:521), following the conventions of the reference R
implementation (datarail/gr_metrics ``GRfit``):

- ``GR = 2^(log2(x / x0) / log2(x_ctrl / x0)) - 1`` from treated, vehicle
  and time-zero counts;
- per experiment, the sigmoid ``GR(c) = GRinf + (1 - GRinf) / (1 + (c / GEC50)^h)``
  fitted by bounded least squares (``h`` in [0.1, 5], ``GRinf`` in [-1, 1],
  ``GEC50`` in [min(c) / 100, max(c) * 100]);
- F test of the sigmoid against a flat line at the mean GR (df1 = 2,
  df2 = n - 2); p >= 0.05 gives a "flat" fit: ``GEC50 = 0``, ``h = 0.01``,
  ``GRinf`` = mean GR, ``GR50 = +/-inf`` (``+inf`` if the mean GR > 0.5);
- ``GR50 = GEC50 ((1 - GRinf) / (0.5 - GRinf) - 1)^(1 / h)`` (``+/-inf`` when
  the curve never crosses 0.5), ``GRmax`` = lowest GR at the two highest
  concentrations, ``GR_AOC`` = trapezoid area over the mean GR per
  concentration on log10 concentration, normalised by the log10 range.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import optimize, stats

__all__ = ["gr_fit", "gr_metrics", "gr_values"]


def gr_values(cell_count, cell_count_ctrl, cell_count_time0) -> np.ndarray:
    """GR values from treated, vehicle-control and time-zero cell counts.

    Parameters
    ----------
    cell_count, cell_count_ctrl, cell_count_time0 : array_like
        Cell counts (or a proportional readout) after treatment, in
        vehicle wells at the same time, and at the time of treatment.

    Returns
    -------
    ndarray
        GR values (1 = no effect, 0 = cytostatic, < 0 = cytotoxic).
    """
    x = np.asarray(cell_count, float)
    xc = np.asarray(cell_count_ctrl, float)
    x0 = np.asarray(cell_count_time0, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 2.0 ** (np.log2(x / x0) / np.log2(xc / x0)) - 1.0


def _sigmoid(c, gr_inf, log_gec50, hill):
    return gr_inf + (1.0 - gr_inf) / (1.0 + (c / np.exp(log_gec50)) ** hill)


def gr_fit(concentration, gr, p_cutoff: float = 0.05) -> dict:
    """GR curve fit and metrics for one experiment.

    Parameters
    ----------
    concentration : array_like
        Concentrations (> 0), e.g. µM.
    gr : array_like
        GR values at those concentrations (NaN dropped from the fit).
    p_cutoff : float
        F-test threshold for accepting the sigmoid over a flat line.

    Returns
    -------
    dict
        ``GR50, GRmax, GR_AOC, GEC50, GRinf, Hill, r2, pval, fit``
        ("sigmoid" / "flat"), ``flat_fit`` (mean GR for a flat fit, NaN otherwise).
    """
    conc = np.asarray(concentration, float)
    gr = np.asarray(gr, float)
    ok = np.isfinite(gr) & np.isfinite(conc)
    c_ok, g_ok = conc[ok], gr[ok]
    concs = np.unique(conc)
    out = {k: np.nan for k in ("GR50", "GRmax", "GR_AOC", "GEC50", "GRinf", "Hill", "r2", "pval")}
    gr_mean = float(np.mean(g_ok)) if g_ok.size else np.nan
    top = np.isin(conc, concs[-2:])
    out["GRmax"] = float(np.nanmin(gr[top])) if np.isfinite(gr[top]).any() else np.nan
    gr_avg = np.array(
        [np.nanmean(gr[conc == v]) if np.isfinite(gr[conc == v]).any() else np.nan for v in concs]
    )
    if concs.size > 1:
        seg = (1 - (gr_avg[:-1] + gr_avg[1:]) / 2) * np.diff(np.log10(concs))
        out["GR_AOC"] = float(np.nansum(seg) / (np.log10(concs[-1]) - np.log10(concs[0])))
    fitted = False
    if c_ok.size > 3:
        # the reference's bounded local fit from its priors (h = 2, GRinf = 0.1,
        # GEC50 = median concentration); GEC50 on its natural scale as in drc
        lower = np.array([-1.0, c_ok.min() * 1e-2, 0.1])
        upper = np.array([1.0, c_ok.max() * 1e2, 5.0])
        start = np.array([0.1, np.median(np.unique(c_ok)), 2.0])
        best = None
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            try:
                sol = optimize.least_squares(
                    lambda p: _sigmoid(c_ok, p[0], np.log(p[1]), p[2]) - g_ok, start,
                    bounds=(lower, upper), xtol=1e-15, ftol=1e-15, gtol=1e-15, x_scale="jac",
                )  # fmt: skip
                best = (np.array([sol.x[0], np.log(sol.x[1]), sol.x[2]]), float(np.sum(sol.fun**2)))
            except ValueError:
                best = None
        if best is not None:
            fitted = True
            (gr_inf, log_gec50, hill), rss2 = best
            rss1 = float(np.sum((g_ok - gr_mean) ** 2))
            df1, df2 = 2, c_ok.size - 3 + 1
            f_value = ((rss1 - rss2) / df1) / (rss2 / df2) if rss2 > 0 else np.inf
            out.update(GRinf=gr_inf, GEC50=float(np.exp(log_gec50)), Hill=hill)
            out["pval"] = float(stats.f.sf(f_value, df1, df2)) if f_value > 0 else 1.0
            out["r2"] = 1 - rss2 / rss1 if rss1 > 0 else np.nan
    flat = not fitted or not (out["pval"] < p_cutoff)
    with np.errstate(all="ignore"):
        base = (1 - out["GRinf"]) / (0.5 - out["GRinf"]) - 1
        out["GR50"] = float(out["GEC50"] * base ** (1 / out["Hill"])) if base > 0 else np.nan
    if flat:
        out.update(GEC50=0.0, Hill=0.01, GRinf=gr_mean, GR50=np.inf if gr_mean > 0.5 else -np.inf)
    if not np.isfinite(out["GR50"]):
        out["GR50"] = np.inf if gr_mean > 0.5 else -np.inf
    out["fit"] = "flat" if flat else "sigmoid"
    out["flat_fit"] = gr_mean if flat else np.nan
    return out


def gr_metrics(
    data: pd.DataFrame,
    keys=("cell_line", "agent", "perturbation", "replicate", "time"),
    p_cutoff: float = 0.05,
) -> pd.DataFrame:
    """GR metrics per experiment from a GR "case A" table.

    Parameters
    ----------
    data : pandas.DataFrame
        Columns ``concentration, cell_count, cell_count__ctrl,
        cell_count__time0`` plus the grouping ``keys``.
    keys : sequence of str
        Columns defining one experiment (one dose-response curve).
    p_cutoff : float

    Returns
    -------
    pandas.DataFrame
        One row per experiment: the keys, ``GR50, GRmax, GR_AOC, GEC50,
        GRinf, Hill, r2, pval, fit, flat_fit``.
    """
    keys = [k for k in keys if k in data.columns]
    gr = gr_values(data["cell_count"], data["cell_count__ctrl"], data["cell_count__time0"])
    frame = data.assign(GR=gr)
    rows = []
    for key, group in frame.groupby(keys, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        rows.append(
            {
                **dict(zip(keys, key, strict=True)),
                **gr_fit(group["concentration"], group["GR"], p_cutoff),
            }
        )
    return pd.DataFrame(rows)
