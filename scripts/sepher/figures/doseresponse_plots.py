"""Figures of the dose-response stage: fig1 (curves per line) and figS2 (plate QC).

Pure functions on the stage's tables (``results/doseresponse/*.csv``) that
return a matplotlib Figure; call them inside
:func:`sepher.figures.style.house_style`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.patches import Rectangle

from sepher.figures.style import (
    DOUBLE_COLUMN_MM,
    GREY,
    LIGHT_GREY,
    format_ci,
    group_colours,
    manual_figure,
    stamp_simulated,
)
from sepher.formatting import format_p

__all__ = ["plot_dose_response", "plot_dose_response_qc", "replicate_means"]

#: Distance, in decades below the lowest tested dose, at which vehicle (dose 0) is drawn.
VEHICLE_DECADES = 1.0


def replicate_means(observations: pd.DataFrame) -> pd.DataFrame:
    """Mean and SD over biological replicates of the per-replicate mean viability.

    Parameters
    ----------
    observations : DataFrame
        Wells used in a fit (``condition, replicate, concentration,
        viability`` and optionally ``outlier``); outlier wells are left out.

    Returns
    -------
    DataFrame
        ``condition, concentration, mean, sd, n_replicates`` (viability fractions).
    """
    obs = observations
    if "outlier" in obs.columns:
        obs = obs[~obs["outlier"].astype(bool)]
    per_rep = obs.groupby(["condition", "concentration", "replicate"], as_index=False)[
        "viability"
    ].mean()
    out = per_rep.groupby(["condition", "concentration"], as_index=False)["viability"].agg(
        mean="mean", sd="std", n_replicates="size"
    )
    return out


def _vehicle_x(min_dose: float) -> float:
    return min_dose / 10**VEHICLE_DECADES


def _break_marks(ax, x_break):
    """Two short slanted strokes on the x axis between vehicle and the first dose."""
    trans = ax.get_xaxis_transform()
    for dx in (0.93, 1.07):
        ax.plot(
            [x_break * dx / 1.06, x_break * dx * 1.06],
            [-0.025, 0.025],
            transform=trans,
            color="black",
            lw=0.6,
            clip_on=False,
        )


def plot_dose_response(
    observations: pd.DataFrame,
    fits: pd.DataFrame,
    curves: pd.DataFrame,
    comparisons: pd.DataFrame,
    *,
    drug: str = "T-DM1",
    conditions=("parental", "T-R", "TP-R"),
    conf_level: float = 0.95,
    simulated: bool = False,
):
    """Fig. 1: viability vs concentration per cell line, fits with confidence bands.

    Parameters
    ----------
    observations : DataFrame
        Wells used in the fits (``residuals.csv``: ``cell_line, condition,
        drug, replicate, concentration, viability, outlier``).
    fits : DataFrame
        ``fits.csv`` (``ic50_rel`` with CI and ``ic50_rel_reached``,
        ``concentration_unit``).
    curves : DataFrame
        ``curves.csv``: fitted viability and band on a dose grid.
    comparisons : DataFrame
        ``comparisons.csv``: ED50 ratios; those between two shown conditions
        are written in the panel.
    drug : str
    conditions : sequence of str
        Conditions drawn, legend order.
    conf_level : float
        Level of the bands and CIs (for the labels).
    simulated : bool
        Stamp the figure "SIMULATED DATA".

    Returns
    -------
    matplotlib.figure.Figure
    """
    conditions = list(conditions)
    obs = observations[(observations["drug"] == drug) & observations["condition"].isin(conditions)]
    lines = sorted(set(obs["cell_line"]))
    colours = group_colours(conditions)
    width, height = DOUBLE_COLUMN_MM, 88.0
    fig = manual_figure(width, height)
    n = max(len(lines), 1)
    left, right, bottom, top, gap = 16.0, 4.0, 27.0, 10.0, 14.0
    panel_w = (width - left - right - gap * (n - 1)) / n
    unit = ""
    level = int(round(conf_level * 100))
    model = str(fits["model"].iloc[0]) if len(fits) else ""
    for k, line in enumerate(lines):
        ax = fig.add_axes(
            [
                (left + k * (panel_w + gap)) / width,
                bottom / height,
                panel_w / width,
                (height - bottom - top) / height,
            ]
        )
        line_obs = obs[obs["cell_line"] == line]
        doses = line_obs.loc[line_obs["concentration"] > 0, "concentration"]
        min_dose, max_dose = float(doses.min()), float(doses.max())
        x_vehicle = _vehicle_x(min_dose)
        means = replicate_means(line_obs)
        text_lines = []
        for condition in conditions:
            colour = colours[condition]
            m = means[means["condition"] == condition]
            if m.empty:
                continue
            x = np.where(m["concentration"] > 0, m["concentration"], x_vehicle)
            ax.errorbar(
                x,
                100 * m["mean"],
                yerr=100 * m["sd"].fillna(0.0),
                fmt="o",
                ms=3.2,
                color=colour,
                mfc=colour,
                mec="white",
                mew=0.4,
                elinewidth=0.7,
                capsize=1.5,
                zorder=3,
                label=condition,
            )
            c = curves[
                (curves["cell_line"] == line)
                & (curves["condition"] == condition)
                & (curves["drug"] == drug)
            ]
            if not c.empty:
                ax.fill_between(
                    c["dose"], 100 * c["lower"], 100 * c["upper"], color=colour, alpha=0.18, lw=0
                )
                ax.plot(c["dose"], 100 * c["fitted"], color=colour, lw=1.2, zorder=2)
            f = fits[
                (fits["cell_line"] == line)
                & (fits["condition"] == condition)
                & (fits["drug"] == drug)
            ]
            if f.empty:
                continue
            row = f.iloc[0]
            unit = row["concentration_unit"]
            if bool(row["ic50_rel_reached"]) and not c.empty:
                ic50 = float(row["ic50_rel"])
                y50 = 100 * float(np.interp(np.log(ic50), np.log(c["dose"]), c["fitted"]))
                ax.plot([ic50, ic50], [0, y50], ls=":", lw=0.8, color=colour, zorder=1)
                ax.plot(ic50, 0, marker="^", ms=4.5, color=colour, clip_on=False, zorder=4)
                digits = int(max(0, 2 - np.floor(np.log10(ic50))))
                est = format_ci(
                    ic50, row["ic50_rel_lower"], row["ic50_rel_upper"], f"{{:.{digits}f}}"
                )
                text_lines.append(f"{condition}: IC50 {est} {unit}")
            else:
                text_lines.append(f"{condition}: IC50 {row['ic50_rel_display']}")
        ratio_lines = []
        comp = comparisons[
            (comparisons["cell_line"] == line)
            & (comparisons["drug"] == drug)
            & comparisons["numerator"].isin(conditions)
            & comparisons["denominator"].isin(conditions)
        ]
        for r in comp.itertuples(index=False):
            ratio_lines.append(
                f"{r.numerator}/{r.denominator} IC50 ratio "
                f"{format_ci(r.ratio, r.lower, r.upper)}, {format_p(r.p)}"
            )
        ax.set_xscale("log")
        ax.set_xlim(x_vehicle / 10**0.35, max_dose * 10**0.35)
        ax.set_ylim(0, 130)
        ticks = [t for t in 10.0 ** np.arange(-3, 7) if min_dose * 0.99 <= t <= max_dose * 1.01]
        ax.set_xticks([x_vehicle, *ticks])
        ax.set_xticklabels(["0", *[f"{t:g}" for t in ticks]])
        ax.xaxis.set_minor_locator(_minor_locator(min_dose, max_dose))
        _break_marks(ax, np.sqrt(x_vehicle * min_dose))
        ax.axhline(100, color=LIGHT_GREY, lw=0.6, zorder=0)
        ax.axhline(50, color=LIGHT_GREY, lw=0.6, ls="--", zorder=0)
        ax.set_xlabel(f"{drug} concentration ({unit}, log scale)")
        if k == 0:
            ax.set_ylabel("Viability (% of vehicle)")
        ax.set_title(line, loc="left", fontweight="bold")
        ax.legend(loc="upper right", frameon=False, handlelength=1.2, borderaxespad=0.2)
        note = "\n".join(text_lines + ratio_lines)
        ax.text(
            0.0,
            -0.2,
            note,
            transform=ax.transAxes,
            ha="left",
            va="top",
            fontsize=6.0,
            color=GREY,
        )
    fig.text(
        left / width,
        1 - 3.0 / height,
        f"Points: mean ± SD of biological replicates; lines: {drug} {model} fit with {level}% "
        f"confidence band; ▲ relative IC50 ({level}% CI, {unit})",
        ha="left",
        va="top",
        fontsize=6.0,
        color=GREY,
    )
    if simulated:
        stamp_simulated(fig)
    return fig


def _minor_locator(lo, hi):
    from matplotlib.ticker import FixedLocator

    decades = np.arange(np.floor(np.log10(lo)), np.ceil(np.log10(hi)) + 1)
    minors = [m * 10**d for d in decades for m in range(2, 10)]
    return FixedLocator([v for v in minors if lo <= v <= hi])


def _plate_shape(wells) -> tuple[int, int]:
    from sepher.io.plates import well_position

    rows, cols = zip(*(well_position(w) for w in wells), strict=True)
    return (8, 12) if max(rows) < 8 and max(cols) < 12 else (16, 24)


def plot_dose_response_qc(
    viability: pd.DataFrame,
    plate_qc: pd.DataFrame,
    residuals: pd.DataFrame,
    *,
    drug: str = "T-DM1",
    min_z_prime: float = 0.5,
    n_heatmaps: int = 6,
    simulated: bool = False,
):
    """Fig. S2: raw-signal plate heat maps, Z' per plate, residuals of the fits.

    Parameters
    ----------
    viability : DataFrame
        ``viability.csv`` (``plate_id, well, role, signal``).
    plate_qc : DataFrame
        ``plate_qc.csv`` (``plate_id, cell_line, z_prime, qc_pass``).
    residuals : DataFrame
        ``residuals.csv`` (``cell_line, condition, drug, concentration,
        residual, outlier, plate_id, well``).
    drug : str
        Drug whose fit residuals are drawn.
    min_z_prime : float
        Z' acceptance line.
    n_heatmaps : int
        Plates shown as heat maps: those holding outlier wells, then lowest Z'.
    simulated : bool

    Returns
    -------
    matplotlib.figure.Figure
    """
    width, height = DOUBLE_COLUMN_MM, 216.0
    fig = manual_figure(width, height)
    outliers = residuals[residuals["outlier"].astype(bool)]
    qc = plate_qc.sort_values("plate_id").reset_index(drop=True)
    with_z = qc[np.isfinite(qc["z_prime"].astype(float))]
    chosen = list(dict.fromkeys(outliers.sort_values("plate_id")["plate_id"]))
    chosen += [
        p for p in with_z.sort_values(["z_prime", "plate_id"])["plate_id"] if p not in chosen
    ]
    chosen = chosen[:n_heatmaps]
    # (a) heat maps, 3 per row
    per_row = 3
    n_rows = int(np.ceil(len(chosen) / per_row))
    hm_top, hm_h, hm_gap_y = 8.0, 30.0, 9.0
    hm_left, hm_w, hm_gap_x = 8.0, 43.0, 17.0
    for i, plate in enumerate(chosen):
        r, c = divmod(i, per_row)
        y0 = height - hm_top - (r + 1) * hm_h - r * hm_gap_y
        ax = fig.add_axes(
            [
                (hm_left + c * (hm_w + hm_gap_x)) / width,
                y0 / height,
                hm_w / width,
                hm_h / height,
            ]
        )
        wells = viability[viability["plate_id"] == plate]
        n_r, n_c = _plate_shape(wells["well"])
        grid = np.full((n_r, n_c), np.nan)
        from sepher.io.plates import well_position

        for well, signal in zip(wells["well"], wells["signal"], strict=True):
            rr, cc = well_position(well)
            grid[rr, cc] = signal
        image = ax.imshow(grid, cmap="viridis", aspect="auto", interpolation="nearest")
        ax.set_xticks([0, n_c - 1])
        ax.set_xticklabels(["1", str(n_c)], fontsize=5.5)
        ax.set_yticks([0, n_r - 1])
        ax.set_yticklabels(["A", chr(64 + n_r)], fontsize=5.5)
        ax.tick_params(length=1.5, pad=1)
        zp = qc.loc[qc["plate_id"] == plate, "z_prime"]
        ztext = f"Z' {float(zp.iloc[0]):.2f}" if len(zp) and np.isfinite(zp.iloc[0]) else ""
        ax.set_title(f"{plate}  {ztext}", fontsize=6.0, loc="left", pad=2)
        for well in outliers.loc[outliers["plate_id"] == plate, "well"]:
            rr, cc = well_position(well)
            ax.add_patch(Rectangle((cc - 0.5, rr - 0.5), 1, 1, fill=False, ec="#D55E00", lw=1.0))
        bar = fig.colorbar(image, ax=ax, fraction=0.06, pad=0.02)
        bar.ax.tick_params(labelsize=5, length=1.5)
        bar.set_label("Signal (RLU)", fontsize=5.5)
    # (b) Z' per plate
    z_top = height - hm_top - n_rows * hm_h - (n_rows - 1) * hm_gap_y - 16.0
    z_h = 34.0
    ax = fig.add_axes([16.0 / width, (z_top - z_h) / height, (width - 22.0) / width, z_h / height])
    lines = sorted(set(with_z["cell_line"]))
    colours = group_colours(lines)
    x = np.arange(len(with_z))
    for line in lines:
        sel = (with_z["cell_line"] == line).to_numpy()
        ok = with_z["qc_pass"].astype(bool).to_numpy()
        ax.scatter(x[sel & ok], with_z["z_prime"][sel & ok], s=10, color=colours[line], label=line)
        ax.scatter(
            x[sel & ~ok],
            with_z["z_prime"][sel & ~ok],
            s=12,
            facecolor="white",
            edgecolor=colours[line],
            label=f"{line}, control CV flagged",
        )
    ax.axhline(min_z_prime, color="#A0302A", lw=0.8, ls="--")
    ax.text(len(with_z) - 0.5, min_z_prime + 0.02, f"Z' = {min_z_prime:g}", ha="right",
            va="bottom", fontsize=6, color="#A0302A")  # fmt: skip
    ax.set_xticks(x)
    ax.set_xticklabels(with_z["plate_id"], rotation=90, fontsize=4.8)
    ax.set_xlim(-0.7, len(with_z) - 0.3)
    ax.set_ylim(min(0.0, float(with_z["z_prime"].min()) - 0.05), 1.0)
    ax.set_ylabel("Z'-factor")
    ax.set_title("Plate Z'-factor (vehicle vs blank wells)", loc="left", fontsize=7)
    ax.legend(loc="lower left", ncol=4, frameon=False, fontsize=5.5, handletextpad=0.2)
    # (c) residuals of the fits of `drug`, one panel per line
    res = residuals[residuals["drug"] == drug]
    res_lines = sorted(set(res["cell_line"]))
    conds = list(dict.fromkeys(res.sort_values("condition")["condition"]))
    order = [c for c in ("parental", "T-R", "TP-R") if c in conds] + [
        c for c in conds if c not in ("parental", "T-R", "TP-R")
    ]
    ccol = group_colours(order)
    r_h, r_bottom = 40.0, 22.0
    n = max(len(res_lines), 1)
    gap = 12.0
    panel_w = (width - 16.0 - 4.0 - gap * (n - 1)) / n
    for k, line in enumerate(res_lines):
        ax = fig.add_axes(
            [
                (16.0 + k * (panel_w + gap)) / width,
                r_bottom / height,
                panel_w / width,
                r_h / height,
            ]
        )
        d = res[res["cell_line"] == line]
        positive = d.loc[d["concentration"] > 0, "concentration"]
        x_vehicle = _vehicle_x(float(positive.min()))
        rng = np.random.default_rng(0)
        for condition in order:
            s = d[d["condition"] == condition]
            if s.empty:
                continue
            xv = np.where(s["concentration"] > 0, s["concentration"], x_vehicle)
            jitter = 10 ** rng.uniform(-0.06, 0.06, len(s))
            normal = ~s["outlier"].astype(bool).to_numpy()
            ax.scatter(
                (xv * jitter)[normal],
                100 * s["residual"].to_numpy()[normal],
                s=3,
                color=ccol[condition],
                alpha=0.7,
                lw=0,
                label=condition,
            )
            if (~normal).any():
                ax.scatter(
                    (xv * jitter)[~normal],
                    100 * s["residual"].to_numpy()[~normal],
                    s=18,
                    marker="x",
                    color="#A0302A",
                    lw=0.9,
                    label=None,
                )
        if len(outliers[(outliers["cell_line"] == line) & (outliers["drug"] == drug)]):
            ax.scatter([], [], s=18, marker="x", color="#A0302A", label="outlier (left out)")
        ax.axhline(0, color=GREY, lw=0.6)
        ax.set_xscale("log")
        ticks = [
            t for t in 10.0 ** np.arange(-3, 7) if positive.min() * 0.99 <= t <= positive.max()
        ]
        ax.set_xticks([x_vehicle, *ticks])
        ax.set_xticklabels(["0", *[f"{t:g}" for t in ticks]])
        ax.xaxis.set_minor_locator(_minor_locator(float(positive.min()), float(positive.max())))
        unit = d.get("concentration_unit")
        ax.set_xlabel(f"{drug} concentration" + (f" ({unit.iloc[0]})" if unit is not None else ""))
        if k == 0:
            ax.set_ylabel("Residual (viability, % points)")
        ax.set_title(f"{line}: residuals of the {drug} fits", loc="left", fontsize=7)
        ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.2), ncol=4, frameon=False,
                  fontsize=5.5, markerscale=1.5, handletextpad=0.1, columnspacing=0.8)  # fmt: skip
        _break_marks(ax, np.sqrt(x_vehicle * float(positive.min())))
    fig.text(0.01, 1 - 2.5 / height, "a", fontweight="bold", fontsize=8, va="top")
    fig.text(0.01, z_top / height + 0.01, "b", fontweight="bold", fontsize=8, va="bottom")
    fig.text(0.01, (r_bottom + r_h + 4.0) / height, "c", fontweight="bold", fontsize=8)
    if simulated:
        stamp_simulated(fig)
    return fig
