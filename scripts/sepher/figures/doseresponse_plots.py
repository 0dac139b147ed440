"""Figures of the dose-response stage: fig1 (curves per line), figS2 (plate QC) and
figS10 (per-replicate metrics).

Pure functions on the stage's tables (``results/doseresponse/*.csv``) that
return a matplotlib Figure; call them inside
:func:`sepher.figures.style.house_style`. Colours are the study's condition
colours (:data:`sepher.figures.style.CONDITION_COLOURS`); QC failures use
:data:`sepher.figures.style.ALERT`.

The statistics shown are those of the replicate-level analysis: the unit is
the biological replicate (one fit per replicate, ``fits_by_replicate.csv``),
IC50 ratios come from ``comparisons.csv`` (paired or Welch t test, or a
linear mixed model, on log IC50) with the p-value adjusted for multiplicity
within the figure's family and labelled as adjusted. Wells of plates that
plate QC excluded are never drawn.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from sepher.figures.style import (
    ALERT,
    CONDITION_COLOURS,
    DOUBLE_COLUMN_MM,
    GREY,
    LIGHT_GREY,
    format_ci,
    group_colours,
    manual_figure,
    stamp_simulated,
    stamp_width_px,
    text_width_px,
    wrap_to_width,
)
from sepher.formatting import format_p

__all__ = [
    "ADJUSTED_P_LABELS",
    "adjusted_p_label",
    "comparison_p_text",
    "comparison_text",
    "drop_excluded",
    "dose_response_metrics",
    "excluded_plates",
    "plot_dose_response",
    "plot_dose_response_metrics",
    "plot_dose_response_qc",
    "replicate_means",
    "replicate_summary",
    "summary_text",
]

#: Distance, in decades below the lowest tested dose, at which vehicle (dose 0) is drawn.
VEHICLE_DECADES = 1.0

#: ``stats.multiplicity`` -> how an adjusted p-value is labelled in figures.
ADJUSTED_P_LABELS = {"holm": "Holm-adjusted p", "bh": "BH-adjusted p", "none": "unadjusted p"}

#: Canonical order of the condition ids (legends, axes, tables).
CONDITION_ORDER = tuple(CONDITION_COLOURS)

_PT_MM = 25.4 / 72.0


def _px_per_mm(fig) -> float:
    return fig.dpi / 25.4


def _true(values) -> np.ndarray:
    """Booleans of a column written as True/False, 1/0 or text."""
    s = pd.Series(values)
    if s.dtype == bool:
        return s.to_numpy()
    return s.astype(str).str.strip().str.lower().isin(["true", "1", "yes"]).to_numpy()


def _replicate_ids(values) -> list[str]:
    """Replicate ids as text, ``3`` and ``3.0`` alike (a column with blanks reads as float)."""
    out = []
    for v in values:
        try:
            f = float(v)
            out.append(str(int(f)) if f.is_integer() else str(v))
        except (TypeError, ValueError):
            out.append(str(v))
    return out


def _ordered(conditions) -> list:
    conditions = list(dict.fromkeys(str(c) for c in conditions))
    known = [c for c in CONDITION_ORDER if c in conditions]
    return known + [c for c in conditions if c not in known]


def adjusted_p_label(method) -> str:
    """Label of a p-value adjusted by ``method`` (holm | bh | none): "Holm-adjusted p"."""
    key = str(method).strip().lower() if method is not None else "none"
    return ADJUSTED_P_LABELS.get(key, f"{method}-adjusted p")


def replicate_summary(values, conf_level: float = 0.95, log: bool = False) -> dict:
    """Mean of biological replicates with a t confidence interval.

    Parameters
    ----------
    values : array-like
        One value per replicate; non-finite values are left out.
    conf_level : float
        Level of the interval (t quantile on n - 1 df).
    log : bool
        Summarise on the log scale and back-transform: geometric mean and a
        CI that is symmetric on the log scale (for IC50s, GR50s).

    Returns
    -------
    dict
        ``n, mean, lower, upper`` (NaN limits for n < 2).
    """
    x = np.asarray(values, float)
    x = x[np.isfinite(x)]
    if log:
        x = x[x > 0]
    n = int(x.size)
    if n == 0:
        return {"n": 0, "mean": np.nan, "lower": np.nan, "upper": np.nan}
    y = np.log(x) if log else x
    mean = float(y.mean())
    if n >= 2:
        from scipy import stats  # here: scipy.stats costs ~1 s to import

        half = float(stats.t.ppf(0.5 + conf_level / 2, n - 1) * y.std(ddof=1) / np.sqrt(n))
        lower, upper = mean - half, mean + half
    else:
        lower = upper = np.nan
    if log:
        mean, lower, upper = np.exp(mean), np.exp(lower), np.exp(upper)
    return {"n": n, "mean": float(mean), "lower": float(lower), "upper": float(upper)}


def excluded_plates(plate_qc: pd.DataFrame | None) -> pd.DataFrame:
    """Plates that plate QC left out of every fit, with the reason.

    Parameters
    ----------
    plate_qc : DataFrame or None
        ``plate_qc.csv``; plates with ``qc_action == "excluded"`` are returned
        (a table without ``qc_action`` excludes nothing: the old stage only
        flagged).

    Returns
    -------
    DataFrame
        ``plate_id, cell_line, condition, replicate, reason`` in plate order.
    """
    columns = ["plate_id", "cell_line", "condition", "replicate", "reason"]
    if plate_qc is None or plate_qc.empty or "qc_action" not in plate_qc.columns:
        return pd.DataFrame(columns=columns)
    rows = plate_qc[plate_qc["qc_action"].fillna("").astype(str).str.strip() == "excluded"]
    out = pd.DataFrame(
        {
            "plate_id": rows["plate_id"].astype(str),
            "cell_line": rows.get("cell_line", pd.Series("", index=rows.index)).astype(str),
            "condition": rows.get("condition", pd.Series("", index=rows.index)).astype(str),
            "replicate": _replicate_ids(rows.get("replicate", pd.Series("", index=rows.index))),
            "reason": rows.get("flags", pd.Series("", index=rows.index))
            .fillna("")
            .astype(str)
            .replace("", "failed plate QC"),
        }
    )
    return out.sort_values("plate_id", kind="stable").reset_index(drop=True)[columns]


def drop_excluded(table: pd.DataFrame, plate_qc: pd.DataFrame | None) -> pd.DataFrame:
    """Rows of `table` that no QC-excluded plate produced.

    Wells (a ``plate_id`` column) are dropped when their plate is excluded or
    marked ``plate_excluded``; per-replicate fits (no ``plate_id``) when an
    excluded plate holds their cell line, condition and replicate.
    """
    out = table
    if "plate_excluded" in out.columns:
        out = out[~_true(out["plate_excluded"])]
    gone = excluded_plates(plate_qc)
    if gone.empty:
        return out
    if "plate_id" in out.columns:
        return out[~out["plate_id"].astype(str).isin(set(gone["plate_id"]))]
    keys = ["cell_line", "condition", "replicate"]
    if all(k in out.columns for k in keys):
        bad = set(zip(gone["cell_line"], gone["condition"], gone["replicate"], strict=True))
        mine = zip(
            out["cell_line"].astype(str),
            out["condition"].astype(str),
            _replicate_ids(out["replicate"]),
            strict=True,
        )
        return out[[key not in bad for key in mine]]
    return out


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
        obs = obs[~_true(obs["outlier"])]
    per_rep = obs.groupby(["condition", "concentration", "replicate"], as_index=False)[
        "viability"
    ].mean()
    out = per_rep.groupby(["condition", "concentration"], as_index=False)["viability"].agg(
        mean="mean", sd="std", n_replicates="size"
    )
    return out


def _get(row, key, default=None):
    """Field `key` of a table row (Series, namedtuple or mapping), else `default`."""
    if isinstance(row, pd.Series | dict):
        value = row.get(key, default)
    else:
        value = getattr(row, key, default)
    return default if value is None else value


def _test_words(row) -> str:
    """What test produced a comparison row: "paired t on log IC50, 3 replicate pairs"."""
    test = str(_get(row, "test", "") or "")
    if not test or test == "nan":
        return "drc EDcomp, wells as units"
    if "technical" in test or "EDcomp" in test:
        return test
    n_num = _get(row, "n_replicates_numerator", np.nan)
    n_den = _get(row, "n_replicates_denominator", np.nan)
    n_pairs = _get(row, "n_pairs", np.nan)
    text = f"{test} on log IC50"
    if test.startswith("paired") and pd.notna(n_pairs):
        text += f", {int(n_pairs)} replicate pairs"
    elif pd.notna(n_num) and pd.notna(n_den):
        text += f", {int(n_num)} vs {int(n_den)} replicates"
    return text


def comparison_p_text(row, multiplicity: str = "holm") -> str:
    """The p-value of a comparison row with its label: "Holm-adjusted p = 0.012".

    A replicate-level row (``p_adjusted`` present) prints its adjusted p under
    the label of its ``multiplicity`` (else `multiplicity`); an old table
    without ``p_adjusted`` prints its well-level p as unadjusted.
    """
    if _get(row, "p_adjusted", None) is None:
        return format_p(_get(row, "p", np.nan), prefix=adjusted_p_label("none"))
    method = str(_get(row, "multiplicity", "") or "")
    method = multiplicity if method in ("", "nan") else method
    return format_p(_get(row, "p_adjusted"), prefix=adjusted_p_label(method))


def comparison_text(row, multiplicity: str = "holm") -> str:
    """One IC50 ratio as printed in fig 1: ratio (CI), the test and n, the adjusted p.

    Parameters
    ----------
    row : Series, namedtuple or mapping
        A row of ``comparisons.csv``.
    multiplicity : str
        Adjustment named when the row does not name one (``stats.multiplicity``).

    Returns
    -------
    str
        ``"TP-R/T-R IC50 ratio 4.67 (3.17–6.18); paired t on log IC50, 3
        replicate pairs; Holm-adjusted p = 0.012"``.
    """
    return (
        f"{_get(row, 'numerator')}/{_get(row, 'denominator')} IC50 ratio "
        f"{format_ci(_get(row, 'ratio'), _get(row, 'lower'), _get(row, 'upper'))}; "
        f"{_test_words(row)}; {comparison_p_text(row, multiplicity)}"
    )


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


def _minor_locator(lo, hi):
    from matplotlib.ticker import FixedLocator

    decades = np.arange(np.floor(np.log10(lo)), np.ceil(np.log10(hi)) + 1)
    minors = [m * 10**d for d in decades for m in range(2, 10)]
    return FixedLocator([v for v in minors if lo <= v <= hi])


def _dose_axis(ax, x_vehicle, min_dose, max_dose, labels=True):
    ax.set_xscale("log")
    ax.set_xlim(x_vehicle / 10**0.35, max_dose * 10**0.35)
    ticks = [t for t in 10.0 ** np.arange(-3, 7) if min_dose * 0.99 <= t <= max_dose * 1.01]
    ax.set_xticks([x_vehicle, *ticks])
    ax.set_xticklabels(["0", *[f"{t:g}" for t in ticks]] if labels else [])
    ax.xaxis.set_minor_locator(_minor_locator(min_dose, max_dose))


def summary_text(summary: dict, fmt: str = "{:.2f}") -> str:
    """A replicate summary as printed: "4.67 (3.17–6.18)", "21.3 (n = 1)".

    Limits of opposite or negative sign read "-0.50 to -0.04" (a dash
    between negative numbers is ambiguous); a mean of one replicate has no CI.
    """
    mean, lower, upper = summary["mean"], summary["lower"], summary["upper"]
    if not np.isfinite(mean):
        return "NA"
    if summary["n"] < 2 or not (np.isfinite(lower) and np.isfinite(upper)):
        return f"{fmt.format(mean)} (n = {summary['n']})"
    if lower < 0 or upper < 0:
        return f"{fmt.format(mean)} ({fmt.format(lower)} to {fmt.format(upper)})"
    return format_ci(mean, lower, upper, fmt)


def _digits(value: float) -> str:
    """Format with three significant digits (IC50s in any unit)."""
    if not np.isfinite(value) or value <= 0:
        return "{:.3g}"
    return f"{{:.{int(max(0, 2 - np.floor(np.log10(value))))}f}}"


def _wrap_lines(lines, width_px, renderer, fontsize, indent="   "):
    """Each entry wrapped to `width_px`; continuation lines indented."""
    out = []
    for line in lines:
        wrapped = wrap_to_width(line, width_px, renderer, fontsize).split("\n")
        out.append(wrapped[0])
        out.extend(indent + w for w in wrapped[1:])
    return out


def _replicate_ic50s(by_replicate, line, condition, drug) -> np.ndarray:
    if by_replicate is None or by_replicate.empty:
        return np.array([])
    rows = by_replicate[
        (by_replicate["cell_line"] == line)
        & (by_replicate["condition"] == condition)
        & (by_replicate["drug"] == drug)
    ]
    if "ic50_rel_reached" in rows.columns:
        rows = rows[_true(rows["ic50_rel_reached"])]
    values = pd.to_numeric(rows["ic50_rel"], errors="coerce").to_numpy(float)
    return values[np.isfinite(values) & (values > 0)]


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
    by_replicate: pd.DataFrame | None = None,
    qc: pd.DataFrame | None = None,
    multiplicity: str = "holm",
    inference: str = "replicate",
):
    """Fig. 1: viability vs concentration per cell line, fits, IC50s and replicate-level ratios.

    The relative IC50 (parameter e) of each pooled fit is marked on its own
    curve at the curve's midpoint ``(c + d) / 2``, not at 50 % (a curve with
    a high lower limit crosses 50 % elsewhere, or never). Under each panel:
    per condition the geometric mean of the per-replicate relative IC50s
    with its t confidence interval over replicates; per pair of shown
    conditions the IC50 ratio of ``comparisons.csv`` with its test, the
    number of replicates and the multiplicity-adjusted p, labelled as such.
    A strip under each panel shows the per-replicate relative IC50s.

    Parameters
    ----------
    observations : DataFrame
        Wells used in the fits (``residuals.csv``: ``cell_line, condition,
        drug, replicate, concentration, viability, outlier`` and
        ``plate_id``); wells of QC-excluded plates are dropped.
    fits : DataFrame
        ``fits.csv`` (``c, d, ic50_rel`` with ``ic50_rel_reached``,
        ``concentration_unit``, ``model``).
    curves : DataFrame
        ``curves.csv``: fitted viability and band on a dose grid (pooled).
    comparisons : DataFrame
        ``comparisons.csv``; rows between two shown conditions are printed.
    drug : str
    conditions : sequence of str
        Conditions drawn, legend order.
    conf_level : float
        Level of the bands and CIs (for the labels).
    simulated : bool
        Stamp the figure "SIMULATED DATA".
    by_replicate : DataFrame, optional
        ``fits_by_replicate.csv``: per-replicate relative IC50s (the strip
        and the per-condition IC50s); without it the pooled fit's IC50 and
        its delta-method CI are printed.
    qc : DataFrame, optional
        ``plate_qc.csv``: plates with ``qc_action == "excluded"`` are not drawn.
    multiplicity : {"holm", "bh", "none"}
        ``stats.multiplicity``: names the adjusted p when a comparison row
        does not.
    inference : {"replicate", "mixed", "technical"}
        ``doseresponse.inference``, named in the figure's key.

    Returns
    -------
    matplotlib.figure.Figure
    """
    conditions = list(conditions)
    level = int(round(conf_level * 100))
    obs = observations[(observations["drug"] == drug) & observations["condition"].isin(conditions)]
    obs = drop_excluded(obs, qc)
    if by_replicate is not None:
        by_replicate = drop_excluded(by_replicate, qc)
    if "replicate" in curves.columns:
        curves = curves[curves["replicate"].astype(str) == "pooled"]
    lines = sorted(set(obs["cell_line"]))
    colours = group_colours(conditions)
    width = DOUBLE_COLUMN_MM
    fig = manual_figure(width, 100.0)
    renderer = fig.canvas.get_renderer()
    px = _px_per_mm(fig)
    n = max(len(lines), 1)
    left, right, gap = 16.0, 4.0, 12.0
    panel_w = (width - left - right - gap * (n - 1)) / n
    model = str(fits["model"].iloc[0]) if len(fits) else ""
    unit = str(fits["concentration_unit"].iloc[0]) if len(fits) else ""
    note_pt = 6.0

    # --- the text under each panel (measured first: it sets the figure height)
    notes = {}
    for line in lines:
        text = []
        for condition in conditions:
            f = fits[
                (fits["cell_line"] == line)
                & (fits["condition"] == condition)
                & (fits["drug"] == drug)
            ]
            if f.empty:
                continue
            row = f.iloc[0]
            unit = str(row["concentration_unit"])
            reps = _replicate_ic50s(by_replicate, line, condition, drug)
            if by_replicate is not None:
                total = by_replicate[
                    (by_replicate["cell_line"] == line)
                    & (by_replicate["condition"] == condition)
                    & (by_replicate["drug"] == drug)
                ]
                s = replicate_summary(reps, conf_level, log=True)
                if s["n"] == 0:
                    text.append(f"{condition}: relative IC50 not reached in any replicate")
                    continue
                not_reached = len(total) - s["n"]
                if s["n"] >= 2:
                    est = format_ci(s["mean"], s["lower"], s["upper"], _digits(s["mean"]))
                    est += f" {unit} ({level}% t CI, {s['n']} replicates"
                else:
                    est = _digits(s["mean"]).format(s["mean"]) + f" {unit} (1 replicate, no CI"
                text.append(
                    f"{condition}: relative IC50 {est}"
                    + (f"; not reached in {not_reached}" if not_reached else "")
                    + ")"
                )
            elif _true([row["ic50_rel_reached"]])[0]:
                ic50 = float(row["ic50_rel"])
                est = format_ci(ic50, row["ic50_rel_lower"], row["ic50_rel_upper"], _digits(ic50))
                text.append(f"{condition}: relative IC50 {est} {unit} (pooled fit)")
            else:
                text.append(f"{condition}: relative IC50 {row['ic50_rel_display']}")
        comp = comparisons[
            (comparisons["cell_line"] == line)
            & (comparisons["drug"] == drug)
            & comparisons["numerator"].isin(conditions)
            & comparisons["denominator"].isin(conditions)
        ]
        for _, r in comp.iterrows():
            text.append(comparison_text(r, multiplicity))
        budget = panel_w + (0.7 * gap if line != lines[-1] else right)
        notes[line] = _wrap_lines(text, budget * px, renderer, note_pt)
    n_note = max((len(v) for v in notes.values()), default=0)
    line_mm = note_pt * 1.25 * _PT_MM
    method_name = {
        "replicate": "one fit per biological replicate, replicate-level tests",
        "mixed": "one fit per biological replicate, linear mixed model (random replicate)",
        "technical": "wells as units (drc EDcomp; technical, not replicate-level)",
    }.get(str(inference), str(inference))
    key = (
        f"Points: mean ± SD of the biological replicates (each the mean of its wells); lines: "
        f"{drug} {model} fit of the pooled wells with {level}% confidence band; ◆ relative "
        f"IC50 (parameter e) drawn on its curve at the midpoint (c + d)/2, not at 50%; strip: "
        f"relative IC50 of each replicate's own fit. Text: geometric mean of the replicate "
        f"IC50s ({level}% t CI on the log scale); ratios: {method_name}; "
        f"{adjusted_p_label(multiplicity)}: adjusted over the figure's family of comparisons."
    )
    stamp_px = 0.0
    if simulated:
        stamp = stamp_simulated(fig)
        stamp_px = stamp_width_px(fig, stamp) + 3 * px
    key_lines = wrap_to_width(key, (width - left) * px - stamp_px, renderer, note_pt).split("\n")
    top = 3.0 + len(key_lines) * line_mm + 6.0
    main_h, strip_h, strip_gap = 52.0, 5.5, 1.2
    bottom = 11.0 + n_note * line_mm + 2.0
    height = top + main_h + strip_gap + strip_h + bottom
    fig.set_size_inches(width / 25.4, height / 25.4)
    fig.text(
        left / width, 1 - 3.0 / height, "\n".join(key_lines), ha="left", va="top",
        fontsize=note_pt, color=GREY, linespacing=1.25,
    )  # fmt: skip

    for k, line in enumerate(lines):
        x0 = (left + k * (panel_w + gap)) / width
        ax = fig.add_axes(
            [x0, (bottom + strip_h + strip_gap) / height, panel_w / width, main_h / height]
        )
        strip = fig.add_axes([x0, bottom / height, panel_w / width, strip_h / height], sharex=ax)
        line_obs = obs[obs["cell_line"] == line]
        doses = line_obs.loc[line_obs["concentration"] > 0, "concentration"]
        min_dose, max_dose = float(doses.min()), float(doses.max())
        x_vehicle = _vehicle_x(min_dose)
        means = replicate_means(line_obs)
        shown = []
        for j, condition in enumerate(conditions):
            colour = colours[condition]
            m = means[means["condition"] == condition]
            if m.empty:
                continue
            n_rep = int(line_obs.loc[line_obs["condition"] == condition, "replicate"].nunique())
            x = np.where(m["concentration"] > 0, m["concentration"], x_vehicle)
            ax.errorbar(
                x, 100 * m["mean"], yerr=100 * m["sd"].fillna(0.0), fmt="o", ms=3.2,
                color=colour, mfc=colour, mec="white", mew=0.4, elinewidth=0.7, capsize=1.5,
                zorder=3, label=f"{condition} (n = {n_rep})",
            )  # fmt: skip
            shown.append(condition)
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
            if not f.empty and _true([f.iloc[0]["ic50_rel_reached"]])[0]:
                row = f.iloc[0]
                ic50 = float(row["ic50_rel"])
                if np.isfinite(row.get("c", np.nan)) and np.isfinite(row.get("d", np.nan)):
                    y_mid = 50.0 * (float(row["c"]) + float(row["d"]))
                else:
                    y_mid = 100 * float(np.interp(np.log(ic50), np.log(c["dose"]), c["fitted"]))
                ax.plot([ic50, ic50], [0, y_mid], ls=":", lw=0.7, color=colour, zorder=1)
                ax.plot(
                    ic50, y_mid, marker="D", ms=4.0, color=colour, mec="black", mew=0.5, zorder=5,
                    gid=f"ic50-{line}-{condition}",
                )  # fmt: skip
            reps = _replicate_ic50s(by_replicate, line, condition, drug)
            strip.plot(
                reps, np.full(reps.size, -j), ls="none", marker="|", ms=5.0, mew=1.1,
                color=colour, gid=f"replicate-ic50-{line}-{condition}",
            )  # fmt: skip
        _dose_axis(ax, x_vehicle, min_dose, max_dose, labels=False)
        _dose_axis(strip, x_vehicle, min_dose, max_dose)
        ax.tick_params(labelbottom=False)
        ax.set_ylim(0, 130)
        strip.set_ylim(-len(conditions) + 0.4, 0.6)
        strip.set_yticks([])
        strip.spines["left"].set_visible(False)
        strip.set_ylabel("Replicate\nIC50s", rotation=0, ha="right", va="center", fontsize=5.5)
        _break_marks(strip, np.sqrt(x_vehicle * min_dose))
        ax.axhline(100, color=LIGHT_GREY, lw=0.6, zorder=0)
        ax.axhline(50, color=LIGHT_GREY, lw=0.6, ls="--", zorder=0)
        strip.set_xlabel(f"{drug} concentration ({unit}, log scale)")
        if k == 0:
            ax.set_ylabel("Viability (% of vehicle)")
        ax.set_title(line, loc="left", fontweight="bold")
        handles, labels = ax.get_legend_handles_labels()
        handles.append(
            Line2D([], [], ls="none", marker="D", ms=4.0, mfc="white", mec="black", mew=0.5)
        )
        labels.append("relative IC50 (curve midpoint)")
        ax.legend(
            handles, labels, loc="upper right", frameon=False, handlelength=1.2,
            borderaxespad=0.2, fontsize=6.0,
        )  # fmt: skip
        ax.text(
            0.0, -(strip_h + strip_gap + 9.0) / main_h, "\n".join(notes.get(line, [])),
            transform=ax.transAxes, ha="left", va="top", fontsize=note_pt, color=GREY,
            linespacing=1.25,
        )  # fmt: skip
    return fig


def _plate_shape(wells) -> tuple[int, int]:
    from sepher.io.plates import well_position

    rows, cols = zip(*(well_position(w) for w in wells), strict=True)
    return (8, 12) if max(rows) < 8 and max(cols) < 12 else (16, 24)


#: Marker of the Z' reference of a plate: kill control or blank wells.
REFERENCE_MARKERS = {"kill": "o", "blank": "s"}


def _qc_status(qc: pd.DataFrame) -> np.ndarray:
    """Per plate "excluded", "flagged" or "" (old tables: failing plates were only flagged)."""
    if "qc_action" in qc.columns:
        return qc["qc_action"].fillna("").astype(str).str.strip().to_numpy()
    passed = _true(qc["qc_pass"]) if "qc_pass" in qc.columns else np.ones(len(qc), bool)
    return np.where(passed, "", "flagged")


def plot_dose_response_qc(
    viability: pd.DataFrame,
    plate_qc: pd.DataFrame,
    residuals: pd.DataFrame,
    *,
    drug: str = "T-DM1",
    min_z_prime: float = 0.5,
    n_heatmaps: int = 6,
    simulated: bool = False,
    qc_action: str = "exclude",
):
    """Fig. S2: plate heat maps, Z' and signal window per plate, excluded plates, residuals.

    Parameters
    ----------
    viability : DataFrame
        ``viability.csv`` (``plate_id, well, role, signal``).
    plate_qc : DataFrame
        ``plate_qc.csv`` (``plate_id, cell_line, z_prime`` and, from the
        replicate-level stage, ``z_prime_reference`` (kill | blank),
        ``signal_window``, ``qc_action`` (excluded | flagged | ""),
        ``flags``).
    residuals : DataFrame
        ``residuals.csv`` (``cell_line, condition, drug, concentration,
        residual, outlier, plate_id, well``).
    drug : str
        Drug whose fit residuals are drawn.
    min_z_prime : float
        Z' acceptance line.
    n_heatmaps : int
        Plates shown as heat maps: excluded plates, then those holding
        outlier wells, then the lowest Z'.
    simulated : bool
    qc_action : {"exclude", "flag"}
        ``doseresponse.qc_action``: what failing plates underwent (named in
        the list of failing plates).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from sepher.io.plates import well_position

    width = DOUBLE_COLUMN_MM
    fig = manual_figure(width, 240.0)
    renderer = fig.canvas.get_renderer()
    px = _px_per_mm(fig)
    outliers = residuals[_true(residuals["outlier"])]
    qc = plate_qc.sort_values(["cell_line", "plate_id"], kind="stable").reset_index(drop=True)
    status = _qc_status(qc)
    qc = qc.assign(_status=status)
    z_all = pd.to_numeric(qc["z_prime"], errors="coerce")
    with_z = qc[np.isfinite(z_all)].reset_index(drop=True)
    with_z = with_z.assign(z_prime=pd.to_numeric(with_z["z_prime"], errors="coerce"))
    gone = excluded_plates(qc)
    chosen = list(gone["plate_id"])
    chosen += [p for p in dict.fromkeys(outliers.sort_values("plate_id")["plate_id"])]
    chosen += list(with_z.sort_values(["z_prime", "plate_id"])["plate_id"])
    chosen = list(dict.fromkeys(chosen))[:n_heatmaps]

    # --- list of failing plates (measured first: it sets the figure height)
    failing = qc[qc["_status"] != ""]
    verb = {"excluded": "excluded", "flagged": "flagged, kept"}
    entries = [
        f"{r['plate_id']} ({verb.get(r['_status'], r['_status'])}): "
        + (str(r.get("flags", "")) if str(r.get("flags", "")) not in ("", "nan") else "failed QC")
        for _, r in failing.iterrows()
    ]
    if qc_action == "exclude":
        head = (
            f"Plates failing QC ({len(failing)}; doseresponse.qc_action = exclude: "
            f"{len(gone)} left out of every fit)"
        )
    else:
        head = (
            f"Plates failing QC ({len(failing)}; qc_action = flag: fitted, flagged in the tables)"
        )
    if not entries:
        entries = ["none"]
    list_pt = 6.0
    col_w = (width - 16.0 - 6.0) / 2
    listed = _wrap_lines(entries, col_w * px, renderer, list_pt)
    half = int(np.ceil(len(listed) / 2))
    line_mm = list_pt * 1.25 * _PT_MM
    list_h = 5.0 + half * line_mm

    per_row = 3
    n_rows = int(np.ceil(len(chosen) / per_row)) if chosen else 0
    hm_top, hm_h, hm_gap_y = 8.0, 28.0, 9.0
    hm_left, hm_w, hm_gap_x = 8.0, 43.0, 17.0
    hm_block = n_rows * hm_h + max(n_rows - 1, 0) * hm_gap_y
    has_sw = (
        "signal_window" in qc.columns
        and np.isfinite(pd.to_numeric(qc["signal_window"], errors="coerce")).any()
    )
    z_h, sw_h, ticks_h = 26.0, (20.0 if has_sw else 0.0), 16.0
    r_h, r_legend = 38.0, 22.0
    height = (
        hm_top + hm_block + 14.0 + z_h + (3.0 + sw_h if has_sw else 0.0) + ticks_h
        + 4.0 + list_h + 10.0 + r_h + r_legend
    )  # fmt: skip
    fig.set_size_inches(width / 25.4, height / 25.4)

    def axes_mm(x, y_top, w, h):
        """Axes at x mm from the left, its top y_top mm below the figure's top."""
        return fig.add_axes([x / width, 1 - (y_top + h) / height, w / width, h / height])

    # (a) heat maps, 3 per row
    for i, plate in enumerate(chosen):
        r, c = divmod(i, per_row)
        ax = axes_mm(hm_left + c * (hm_w + hm_gap_x), hm_top + r * (hm_h + hm_gap_y), hm_w, hm_h)
        wells = viability[viability["plate_id"] == plate]
        n_r, n_c = _plate_shape(wells["well"])
        grid = np.full((n_r, n_c), np.nan)
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
        zp = pd.to_numeric(zp, errors="coerce")
        ztext = f"Z' {float(zp.iloc[0]):.2f}" if len(zp) and np.isfinite(zp.iloc[0]) else ""
        is_out = plate in set(gone["plate_id"])
        ax.set_title(
            f"{plate}  {ztext}" + ("  EXCLUDED" if is_out else ""), fontsize=6.0, loc="left",
            pad=2, color=ALERT if is_out else "black",
        )  # fmt: skip
        for well in outliers.loc[outliers["plate_id"] == plate, "well"]:
            rr, cc = well_position(well)
            for ec, lw in (("white", 1.8), (ALERT, 0.9)):
                ax.add_patch(Rectangle((cc - 0.5, rr - 0.5), 1, 1, fill=False, ec=ec, lw=lw))
        bar = fig.colorbar(image, ax=ax, fraction=0.06, pad=0.02)
        bar.ax.tick_params(labelsize=5, length=1.5)
        bar.set_label("Signal (RLU)", fontsize=5.5)

    # (b) Z' per plate, (c) signal window per plate: plates grouped by cell line
    y_b = hm_top + hm_block + 14.0
    x_left, x_w = 16.0, width - 22.0
    ax_z = axes_mm(x_left, y_b, x_w, z_h)
    panels = [(ax_z, "z_prime", "Z'-factor")]
    if has_sw:
        ax_sw = axes_mm(x_left, y_b + z_h + 3.0, x_w, sw_h)
        panels.append((ax_sw, "signal_window", "Signal window"))
    x = np.arange(len(with_z))
    reference = (
        with_z["z_prime_reference"].fillna("blank").astype(str).to_numpy()
        if "z_prime_reference" in with_z.columns
        else np.full(len(with_z), "blank")
    )
    state = with_z["_status"].to_numpy()
    for ax, column, ylabel in panels:
        values = pd.to_numeric(with_z[column], errors="coerce").to_numpy(float)
        for ref, marker in REFERENCE_MARKERS.items():
            for st, face, edge in (
                ("", "#262626", "#262626"),
                ("flagged", "white", "#262626"),
                ("excluded", "white", ALERT),
            ):
                sel = (reference == ref) & (state == st)
                if sel.any():
                    ax.scatter(
                        x[sel], values[sel], s=12, marker=marker, facecolor=face,
                        edgecolor=edge, linewidth=0.8, zorder=3, gid=f"{column}-{ref}-{st or 'ok'}",
                    )  # fmt: skip
        excluded_sel = state == "excluded"
        if excluded_sel.any():
            ax.scatter(x[excluded_sel], values[excluded_sel], s=14, marker="x", color=ALERT,
                       linewidth=0.7, zorder=4)  # fmt: skip
        ax.set_ylabel(ylabel)
        ax.set_xlim(-0.7, len(with_z) - 0.3)
        lines_order = list(dict.fromkeys(with_z["cell_line"]))
        for line in lines_order[1:]:
            first = int(np.flatnonzero((with_z["cell_line"] == line).to_numpy())[0])
            ax.axvline(first - 0.5, color=LIGHT_GREY, lw=0.6)
        ax.set_xticks(x)
        if column == panels[-1][1]:
            ax.set_xticklabels(with_z["plate_id"], rotation=90, fontsize=4.8)
        else:
            ax.set_xticklabels([])
        finite = values[np.isfinite(values)]
        if column == "z_prime":
            lo = min(0.0, float(finite.min()) - 0.05) if finite.size else 0.0
            ax.set_ylim(lo, 1.12)
            ax.axhline(min_z_prime, color=ALERT, lw=0.8, ls="--")
            ax.text(len(with_z) - 0.5, min_z_prime + 0.02, f"Z' = {min_z_prime:g}", ha="right",
                    va="bottom", fontsize=6, color=ALERT)  # fmt: skip
            for line in lines_order:
                idx = np.flatnonzero((with_z["cell_line"] == line).to_numpy())
                ax.text(idx.mean(), 1.1, line, ha="center", va="top", fontsize=6.5,
                        fontweight="bold")  # fmt: skip
        elif finite.size:
            span = float(finite.max() - min(0.0, finite.min()))
            ax.set_ylim(
                min(0.0, float(finite.min())) - 0.05 * span, float(finite.max()) + 0.1 * span
            )
    handles = [
        Line2D([], [], ls="none", marker=REFERENCE_MARKERS["kill"], mfc="#262626", mec="#262626",
               ms=3.5, label="vs kill control"),
        Line2D([], [], ls="none", marker=REFERENCE_MARKERS["blank"], mfc="#262626",
               mec="#262626", ms=3.5, label="vs blank (no kill control)"),
        Line2D([], [], ls="none", marker="o", mfc="white", mec="#262626", ms=3.5,
               label="flagged (kept)"),
        Line2D([], [], ls="none", marker="x", color=ALERT, ms=3.5, label="excluded"),
    ]  # fmt: skip
    # the legend sits above the plot, right of the title: it never hides a plate's marker
    ax_z.legend(handles=handles, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=4,
                frameon=False, fontsize=5.5, handletextpad=0.2, borderaxespad=0.3,
                columnspacing=1.0)  # fmt: skip
    ax_z.set_title("Z'-factor: vehicle vs kill control, else blank", loc="left", fontsize=7)

    # (d) failing plates listed
    y_d = y_b + z_h + (3.0 + sw_h if has_sw else 0.0) + ticks_h + 4.0
    fig.text(x_left / width, 1 - y_d / height, head, ha="left", va="top", fontsize=6.5,
             fontweight="bold")  # fmt: skip
    for j, chunk in enumerate((listed[:half], listed[half:])):
        if not chunk:
            continue
        fig.text(
            (x_left + j * (col_w + 6.0)) / width, 1 - (y_d + 4.0) / height, "\n".join(chunk),
            ha="left", va="top", fontsize=list_pt, linespacing=1.25,
            color=ALERT if gone.shape[0] else GREY, gid="failing-plates",
        )  # fmt: skip

    # (e) residuals of the fits of `drug`, one panel per line
    res = residuals[residuals["drug"] == drug]
    res = drop_excluded(res, qc)
    res_lines = sorted(set(res["cell_line"]))
    order = _ordered(res["condition"])
    ccol = group_colours(order)
    y_e = y_d + list_h + 10.0
    n = max(len(res_lines), 1)
    gap = 12.0
    panel_w = (width - 16.0 - 4.0 - gap * (n - 1)) / n
    for k, line in enumerate(res_lines):
        ax = axes_mm(16.0 + k * (panel_w + gap), y_e, panel_w, r_h)
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
            normal = ~_true(s["outlier"])
            ax.scatter((xv * jitter)[normal], 100 * s["residual"].to_numpy()[normal], s=3,
                       color=ccol[condition], alpha=0.7, lw=0, label=condition)  # fmt: skip
            if (~normal).any():
                ax.scatter((xv * jitter)[~normal], 100 * s["residual"].to_numpy()[~normal],
                           s=18, marker="x", color=ALERT, lw=0.9, label=None)  # fmt: skip
        if len(outliers[(outliers["cell_line"] == line) & (outliers["drug"] == drug)]):
            ax.scatter([], [], s=18, marker="x", color=ALERT, label="outlier (left out)")
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
    for letter, y in (("a", 2.5), ("b", y_b - 6.0), ("c", y_d), ("d", y_e - 6.0)):
        fig.text(0.01, 1 - y / height, letter, fontweight="bold", fontsize=8, va="top")
    if simulated:
        stamp_simulated(fig)
    return fig


#: Metrics of fig S10: column of ``fits_by_replicate.csv`` -> (label, log scale, reached column).
METRICS = {
    "ic50_abs": ("Absolute IC50", True, "ic50_abs_reached"),
    "auc": ("AUC (normalised, log dose)", False, None),
    "gr50": ("GR50", True, None),
    "gr_max": ("GRmax", False, None),
}


def _reached(rows: pd.DataFrame, column: str, reached_column) -> np.ndarray:
    """Replicates with a usable value of `column` (finite, > 0 on a log scale, reached)."""
    values = pd.to_numeric(rows[column], errors="coerce").to_numpy(float)
    ok = np.isfinite(values)
    if reached_column and reached_column in rows.columns:
        ok &= _true(rows[reached_column])
    if METRICS.get(column, ("", False))[1]:
        ok &= values > 0
    return ok


def _not_reached(rows: pd.DataFrame, column: str, reached_column) -> np.ndarray:
    """Replicates whose curve never reaches `column` within the tested doses.

    The absolute IC50 says so in its ``_reached`` column; GR50 is +inf.
    """
    values = pd.to_numeric(rows[column], errors="coerce").to_numpy(float)
    if reached_column and reached_column in rows.columns:
        return ~_true(rows[reached_column])
    return np.isposinf(values)


def dose_response_metrics(
    by_replicate: pd.DataFrame,
    *,
    drug: str = "T-DM1",
    conf_level: float = 0.95,
    qc: pd.DataFrame | None = None,
    comparisons: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per line and condition: replicate means and t CIs of the dose-response metrics.

    Absolute IC50 (dose where the fitted viability is 50 % of vehicle) and
    GR50 are summarised as geometric means with a t CI on the log scale,
    only when every replicate reached them (otherwise the count not
    reached is given and no mean); normalised AUC on log dose (mean fitted
    viability over the tested range, 1 = inactive) and GRmax as arithmetic
    means with a t CI. GR metrics exist only with time-zero plates.

    Parameters
    ----------
    by_replicate : DataFrame
        ``fits_by_replicate.csv`` (``cell_line, condition, drug, replicate,
        concentration_unit, max_dose, ic50_abs, ic50_abs_reached, auc`` and
        ``gr50, gr_max`` when time-zero plates exist).
    drug : str
    conf_level : float
    qc : DataFrame, optional
        ``plate_qc.csv``: replicates of QC-excluded plates are left out.
    comparisons : DataFrame, optional
        ``comparisons.csv``: the relative IC50 ratio of each condition
        (numerator) against its reference, with test and adjusted p.

    Returns
    -------
    DataFrame
        One row per line and condition: ``cell_line, condition, unit,
        max_dose, n_replicates``, and for each metric ``<m>, <m>_lower,
        <m>_upper, <m>_n`` (replicates with a value) and ``<m>_not_reached``;
        ``ratio_reference, ratio, ratio_lower, ratio_upper, test, p_adjusted,
        multiplicity`` when `comparisons` has the condition.
    """
    data = by_replicate[by_replicate["drug"] == drug]
    data = drop_excluded(data, qc)
    rows = []
    for line in sorted(set(data["cell_line"].astype(str))):
        here = data[data["cell_line"].astype(str) == line]
        for condition in _ordered(here["condition"]):
            reps = here[here["condition"].astype(str) == condition]
            row = {
                "cell_line": line,
                "condition": condition,
                "unit": str(reps["concentration_unit"].iloc[0])
                if "concentration_unit" in reps
                else "",
                "max_dose": float(pd.to_numeric(reps.get("max_dose"), errors="coerce").max())
                if "max_dose" in reps
                else np.nan,
                "n_replicates": int(reps["replicate"].nunique()),
            }
            for metric, (_, log, reached_column) in METRICS.items():
                if metric not in reps.columns:
                    values, ok, not_reached = np.array([]), np.array([], bool), 0
                else:
                    values = pd.to_numeric(reps[metric], errors="coerce").to_numpy(float)
                    ok = _reached(reps, metric, reached_column)
                    not_reached = int(_not_reached(reps, metric, reached_column).sum())
                s = replicate_summary(values[ok], conf_level, log=log)
                if log and not_reached:
                    s = {"n": s["n"], "mean": np.nan, "lower": np.nan, "upper": np.nan}
                row[metric] = s["mean"]
                row[f"{metric}_lower"] = s["lower"]
                row[f"{metric}_upper"] = s["upper"]
                row[f"{metric}_n"] = s["n"]
                row[f"{metric}_not_reached"] = not_reached
            if comparisons is not None and not comparisons.empty:
                comp = comparisons[
                    (comparisons["cell_line"].astype(str) == line)
                    & (comparisons["numerator"].astype(str) == condition)
                    & (comparisons["drug"].astype(str) == drug)
                ]
                if not comp.empty:
                    c = comp.iloc[0]
                    row.update(
                        {
                            "ratio_reference": str(c["denominator"]),
                            "ratio": float(c["ratio"]),
                            "ratio_lower": float(c["lower"]),
                            "ratio_upper": float(c["upper"]),
                            "test": str(c.get("test", "")),
                            "p_adjusted": float(c.get("p_adjusted", c.get("p", np.nan))),
                            "multiplicity": str(c.get("multiplicity", "none")),
                        }
                    )
            rows.append(row)
    return pd.DataFrame(rows)


def _has_gr(table: pd.DataFrame) -> bool:
    return bool("gr_max" in table.columns and (table["gr_max_n"].fillna(0).astype(int) > 0).any())


def _metric_cell(row, metric, unit="") -> str:
    label, log, _ = METRICS[metric]
    n, nr = int(row[f"{metric}_n"]), int(row[f"{metric}_not_reached"])
    if n == 0 and nr == 0:
        return "NA"
    if log and nr:
        return f"NR in {nr} of {n + nr}"
    mean = float(row[metric])
    summary = {"n": n, "mean": mean, "lower": row[f"{metric}_lower"],
               "upper": row[f"{metric}_upper"]}  # fmt: skip
    return summary_text(summary, _digits(mean) if log else "{:.2f}")


def plot_dose_response_metrics(
    fits: pd.DataFrame,
    by_replicate: pd.DataFrame,
    *,
    qc: pd.DataFrame | None = None,
    comparisons: pd.DataFrame | None = None,
    drug: str = "T-DM1",
    conf_level: float = 0.95,
    simulated: bool = False,
):
    """Fig. S10: absolute IC50, normalised AUC and GR metrics per replicate, with a table.

    One row of panels per cell line, one panel per metric (absolute IC50,
    AUC on log dose, and GR50 / GRmax when time-zero plates exist); in each
    panel every biological replicate is a point (colour of its condition),
    with the replicate mean (geometric for IC50 and GR50) and its t CI. A
    replicate whose curve never reaches the metric (absolute IC50 or GR50
    above the top dose) is drawn as an open triangle above the "> max dose"
    line. The table under the panels gives the same numbers
    (:func:`dose_response_metrics`) and the replicate-level relative IC50
    ratio of each condition against its reference, with its adjusted p.

    Parameters
    ----------
    fits : DataFrame
        ``fits.csv`` (pooled fits): the drug's concentration unit and top dose
        when `by_replicate` lacks them.
    by_replicate : DataFrame
        ``fits_by_replicate.csv``.
    qc : DataFrame, optional
        ``plate_qc.csv``: replicates of QC-excluded plates are left out.
    comparisons : DataFrame, optional
        ``comparisons.csv`` (ratio column of the table).
    drug : str
    conf_level : float
    simulated : bool

    Returns
    -------
    matplotlib.figure.Figure
    """
    level = int(round(conf_level * 100))
    table = dose_response_metrics(
        by_replicate, drug=drug, conf_level=conf_level, qc=qc, comparisons=comparisons
    )
    data = drop_excluded(by_replicate[by_replicate["drug"] == drug], qc)
    lines = sorted(set(table["cell_line"])) if not table.empty else []
    metrics = ["ic50_abs", "auc"] + (["gr50", "gr_max"] if _has_gr(table) else [])
    unit = ""
    if not table.empty:
        unit = str(table["unit"].iloc[0])
    elif len(fits):
        unit = str(fits["concentration_unit"].iloc[0])
    width = DOUBLE_COLUMN_MM
    fig = manual_figure(width, 200.0)
    renderer = fig.canvas.get_renderer()
    px = _px_per_mm(fig)

    # --- the table (measured first)
    header = ["Line", "Condition", "n", f"Absolute IC50, {unit}", "AUC"]
    if "gr50" in metrics:
        header += [f"GR50, {unit}", "GRmax"]
    has_ratio = "ratio" in table.columns
    if has_ratio:
        header += ["Relative IC50 ratio (test; adjusted p)"]
    cells = []
    for _, row in table.iterrows():
        cell = [row["cell_line"], row["condition"], str(int(row["n_replicates"]))]
        cell += [_metric_cell(row, m) for m in metrics]
        if has_ratio:
            if pd.notna(row.get("ratio")):
                cell.append(
                    f"{format_ci(row['ratio'], row['ratio_lower'], row['ratio_upper'])} vs "
                    f"{row['ratio_reference']}\n{row['test']}; "
                    + format_p(row["p_adjusted"], prefix=adjusted_p_label(row["multiplicity"]))
                )
            else:
                cell.append("")
        cells.append(cell)
    table_pt = 5.8
    pad = 2.2 * px

    def cell_px(text, bold=False):
        return max(
            text_width_px(part, renderer, table_pt, "bold" if bold else "normal")
            for part in str(text).split("\n")
        )

    col_px = [
        max([cell_px(h, bold=True), *[cell_px(c[j]) for c in cells]]) + pad
        for j, h in enumerate(header)
    ]
    avail = (width - 10.0) * px
    if sum(col_px) > avail:  # the last (ratio) column wraps
        rest = sum(col_px[:-1])
        last = max(avail - rest, 30 * px)
        col_px[-1] = last
        for c in cells:
            c[-1] = wrap_to_width(c[-1], last - pad, renderer, table_pt)
    row_lines = [max(str(t).count("\n") + 1 for t in c) for c in cells]
    line_mm = table_pt * 1.25 * _PT_MM
    table_h = (1 + sum(row_lines)) * line_mm + 2.0 * len(lines) + 4.0

    key = (
        f"Points: biological replicates (one fit each); bar and whiskers: mean ({level}% t CI "
        f"over replicates; geometric for IC50 and GR50); △ above the dashed line: not reached "
        f"within the tested doses. Absolute IC50: dose at 50% of vehicle; AUC: mean fitted "
        f"viability over the tested log-dose range (1 = inactive)."
        + (
            " GR metrics from time-zero plates (Hafner et al. 2016)."
            if "gr50" in metrics
            else " No time-zero plates: GR metrics not available."
        )
    )
    note_pt = 6.0
    stamp_px = 0.0
    if simulated:
        stamp = stamp_simulated(fig)
        stamp_px = stamp_width_px(fig, stamp) + 3 * px
    key_lines = wrap_to_width(key, (width - 16.0) * px - stamp_px, renderer, note_pt).split("\n")
    top = 3.0 + len(key_lines) * note_pt * 1.25 * _PT_MM + 5.0
    panel_h, row_gap, xlab_h = 34.0, 19.0, 11.0
    plots_h = len(lines) * panel_h + max(len(lines) - 1, 0) * row_gap + xlab_h
    height = top + plots_h + 6.0 + table_h + 4.0
    fig.set_size_inches(width / 25.4, height / 25.4)
    fig.text(16.0 / width, 1 - 3.0 / height, "\n".join(key_lines), ha="left", va="top",
             fontsize=note_pt, color=GREY, linespacing=1.25)  # fmt: skip

    n_m = len(metrics)
    left, right, gap = 16.0, 4.0, 14.0
    panel_w = (width - left - right - gap * (n_m - 1)) / n_m
    rng = np.random.default_rng(0)
    for r, line in enumerate(lines):
        here = data[data["cell_line"].astype(str) == line]
        conds = _ordered(here["condition"])
        colours = group_colours(conds)
        y_top = top + r * (panel_h + row_gap)
        for k, metric in enumerate(metrics):
            label, log, reached_column = METRICS[metric]
            ax = fig.add_axes(
                [
                    (left + k * (panel_w + gap)) / width,
                    1 - (y_top + panel_h) / height,
                    panel_w / width,
                    panel_h / height,
                ]
            )
            ax.set_gid(f"{line}-{metric}")
            summary = table[table["cell_line"] == line].set_index("condition")
            values_all = []
            max_dose = float(summary["max_dose"].max()) if "max_dose" in summary else np.nan
            for i, condition in enumerate(conds):
                reps = here[here["condition"].astype(str) == condition]
                if metric not in reps.columns:
                    continue
                values = pd.to_numeric(reps[metric], errors="coerce").to_numpy(float)
                ok = _reached(reps, metric, reached_column)
                jitter = rng.uniform(-0.18, 0.18, values.size)
                ax.scatter(
                    i + jitter[ok], values[ok], s=9, color=colours[condition], edgecolor="white",
                    linewidth=0.3, zorder=3, gid=f"replicates-{condition}",
                )  # fmt: skip
                values_all.extend(values[ok])
                nr = _not_reached(reps, metric, reached_column)
                if log and nr.any() and np.isfinite(max_dose):
                    ax.scatter(
                        i + jitter[nr], np.full(nr.sum(), max_dose * 2.2), s=12, marker="^",
                        facecolor="white", edgecolor=colours[condition], linewidth=0.8,
                        zorder=3, gid=f"not-reached-{condition}",
                    )  # fmt: skip
                if condition in summary.index and np.isfinite(summary.loc[condition, metric]):
                    s = summary.loc[condition]
                    mean, lo, hi = s[metric], s[f"{metric}_lower"], s[f"{metric}_upper"]
                    ax.plot([i - 0.28, i + 0.28], [mean, mean], color="#262626", lw=1.0, zorder=4)
                    if np.isfinite(lo) and np.isfinite(hi):
                        ax.plot([i, i], [lo, hi], color="#262626", lw=0.8, zorder=4)
            if log:
                ax.set_yscale("log")
                finite = np.asarray([v for v in values_all if np.isfinite(v) and v > 0])
                lo = finite.min() / 2 if finite.size else 0.1
                hi = max_dose * 4 if np.isfinite(max_dose) else (finite.max() * 4)
                ax.set_ylim(lo, hi)
                if np.isfinite(max_dose):
                    ax.axhline(max_dose, color=LIGHT_GREY, lw=0.6, ls="--", zorder=0)
                ax.set_ylabel(f"{label} ({unit})")
            else:
                ax.set_ylabel(label)
                if metric == "auc":
                    ax.set_ylim(0, 1.1)
                if metric == "gr_max":
                    ax.axhline(0, color=LIGHT_GREY, lw=0.6, zorder=0)
            ax.set_xlim(-0.6, len(conds) - 0.4)
            ax.set_xticks(range(len(conds)))
            ax.set_xticklabels(conds, rotation=40, ha="right", fontsize=6.0)
            ax.yaxis.label.set_size(6.5)
            if k == 0:
                ax.set_title(line, loc="left", fontweight="bold", pad=3)

    # --- table
    y = top + plots_h + 6.0
    x_cols = np.concatenate([[5.0 * px], 5.0 * px + np.cumsum(col_px[:-1])])
    fig_w_px = width * px
    fig_h_mm = height

    def put(text, j, y_mm, bold=False):
        fig.text(
            x_cols[j] / fig_w_px, 1 - y_mm / fig_h_mm, text, ha="left", va="top",
            fontsize=table_pt, fontweight="bold" if bold else "normal", linespacing=1.2,
        )  # fmt: skip

    for j, h in enumerate(header):
        put(h, j, y, bold=True)
    y += line_mm + 0.8
    fig.add_artist(
        Line2D([5.0 / width, 1 - 5.0 / width], [1 - (y - 0.4) / height] * 2, color="black",
               lw=0.5)
    )  # fmt: skip
    previous = None
    for c, n_lines in zip(cells, row_lines, strict=True):
        if previous is not None and c[0] != previous:
            y += 2.0
        shown = ["" if c[0] == previous else c[0], *c[1:]]
        for j, text in enumerate(shown):
            put(text, j, y)
        previous = c[0]
        y += n_lines * line_mm
    return fig
