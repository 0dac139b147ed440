"""Stage-level orchestration of the dose-response analysis (plates -> tables).

The workflow's entry points call these functions on whole tables:

- :func:`normalise_plates`: viability per well and plate QC (Z' against the
  kill control or blank, vehicle CV, signal window); plates that fail are
  excluded from every fit (``qc_action="exclude"``) or only flagged;
- :func:`fit_curves`: one fit per curve (cell line x condition x drug,
  biological replicates pooled, or per replicate): parameters in drc's
  b/c/d/e convention with SE and CI, relative and absolute IC50 with CI or a
  not-reached flag, GraphPad Prism LogIC50 / HillSlope, AUC and activity
  area, AIC of candidate models, lack-of-fit test, GR metrics when time-zero
  wells exist; with the per-well residuals and the fitted curve with its
  confidence band on a dose grid (for the figures);
- :func:`compare_conditions`: ED50 ratios between conditions of one line at
  the level of biological replicates (:mod:`.replicate`: paired or Welch t,
  or a linear mixed model, on log ED of the per-replicate fits), with drc's
  well-level ``EDcomp`` (joint fit, delta method) and the extra-sum-of-
  squares F test of a shared ED50 as secondary ``technical_*`` columns.

Speed: :func:`fit_curves` fits all curves at once
(:func:`sepher.doseresponse.manyfit.fit_many`, a vectorised least-squares
polish from profile-grid starts, with ``fit_curve``'s multi-start as the
fallback), and every later step (ROUT, EDs, AUC, lack of fit, bands) is
vectorised over the curves too: two orders of magnitude faster than the
per-curve ``fit_curve`` loop (``method="multistart"``, kept as the
reference path); ``bench/bench_doseresponse_stage.py`` measures both.

Outliers: with ``outliers="rout"`` (default) wells are screened per curve by
the ROUT method (Motulsky & Brown 2006, BMC Bioinformatics 7:123): a robust
(Cauchy-loss) fit, residuals scaled by the robust SD of the residuals
(68.27th percentile of ``|r|`` times ``n / (n - p)``), two-sided t p-values
and a Benjamini-Hochberg false discovery rate ``Q``; the flagged wells are
left out and the curve is refitted by ordinary least squares, so that SEs
and CIs keep drc's exact form. ``"robust"`` keeps every well and fits with a
robust loss (SEs approximate); ``"none"`` is plain drc least squares.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .compare import compare_ed50, ed_ratio, fit_joint
from .ed import area_under_curve_many, ed_many
from .gr import gr_metrics
from .manyfit import ManyFits, dose_range, fit_many, lack_of_fit_many, model_jacobian_many
from .models import get_model
from .normalise import normalise_plate
from .qc import plate_qc
from .replicate import (
    INFERENCE,
    TESTS,
    adjust_comparisons,
    comparison_family,
    replicate_comparisons,
)

__all__ = [
    "CURVE_KEYS",
    "COMPARISON_COLUMNS",
    "compare_conditions",
    "curve_part",
    "fit_curves",
    "normalise_plates",
]

#: Columns identifying one dose-response curve.
CURVE_KEYS = ("cell_line", "condition", "drug")

#: Conventional name of the pooled-replicates fit in the ``replicate`` column.
POOLED = "pooled"

#: Curves fitted together (memory per job bounded whatever the number of curves).
CHUNK = 4096

#: AIC differences below this are rounding, not evidence: ``aic_best_model`` takes
#: the first candidate within it of the lowest AIC.
AIC_TIE = 1e-6


def _as_bool(values) -> np.ndarray:
    """A boolean column, also when read back from CSV as text (``True`` / ``False``)."""
    series = pd.Series(values)
    if series.dtype == bool:
        return series.to_numpy()
    return series.astype(str).str.strip().str.lower().isin(["true", "1"]).to_numpy()


def _t(conf_level: float, df: float) -> float:
    return float(stats.t.ppf(0.5 + conf_level / 2, df)) if df > 0 else np.nan


def normalise_plates(
    plates: pd.DataFrame,
    min_z_prime: float = 0.5,
    max_cv_percent: float = 20.0,
    min_signal_window: float = 2.0,
    qc_action: str = "exclude",
    source: str = "plates",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Viability per well and QC per plate (:mod:`sepher.doseresponse.qc`).

    Parameters
    ----------
    plates : pandas.DataFrame
        Validated plates table (:func:`sepher.io.plates.read_plates`).
    min_z_prime : float
        Plates with a Z'-factor below this fail QC (Zhang et al. 1999: 0.5).
    max_cv_percent : float
        Plates with a vehicle CV above this (percent) fail QC.
    min_signal_window : float
        Plates with a signal window below this fail QC (Iversen et al. 2006: 2).
    qc_action : {"exclude", "flag"}
        What happens to a failing plate: ``exclude`` marks its wells
        ``plate_excluded`` (left out of every fit, GR metric and comparison
        by :func:`fit_curves`); ``flag`` only reports it. Time-zero plates
        (no vehicle wells) are not judged.
    source : str
        The plates file, named in the error below.

    Returns
    -------
    viability : pandas.DataFrame
        One row per well (every well, excluded plates included), sorted by
        plate and well: the input columns plus ``blank_mean``,
        ``vehicle_mean`` (RLU, the well's plate), ``viability`` (fraction of
        vehicle, blank subtracted; NaN for blank, kill and time0 wells) and
        ``plate_excluded`` (bool).
    qc : pandas.DataFrame
        One row per plate: ``plate_id, cell_line, condition, replicate,
        time_h, n_wells``, then :func:`~sepher.doseresponse.qc.plate_qc`'s
        columns (``n_vehicle, n_blank, n_kill``, control means / SDs in RLU,
        ``vehicle_cv_percent, blank_cv_percent, z_prime, z_prime_reference,
        signal_window, flags``) and ``qc_pass`` (bool), ``qc_action``
        (``excluded``, ``flagged`` or empty).

    Raises
    ------
    InputError
        When ``qc_action="exclude"`` leaves no treated well to fit (every
        plate with treated wells failed QC): names the plates.
    """
    if qc_action not in ("exclude", "flag"):
        raise ValueError(f"qc_action {qc_action!r}: expected 'exclude' or 'flag'")
    viability = normalise_plate(plates)
    viability = viability.sort_values(["plate_id", "well"], kind="stable").reset_index(drop=True)
    qc = plate_qc(
        plates,
        min_z_prime=min_z_prime,
        max_cv_percent=max_cv_percent,
        min_signal_window=min_signal_window,
    )
    info = plates.groupby("plate_id", sort=True).agg(
        cell_line=("cell_line", lambda s: "/".join(sorted(set(s)))),
        condition=(
            "condition",
            lambda s: "/".join(sorted(set(s) - {"none"})) or "none",
        ),
        replicate=("replicate", lambda s: "/".join(sorted(set(map(str, s))))),
        time_h=("time_h", "max"),
        n_wells=("well", "size"),
    )
    qc = info.reset_index().merge(qc, on="plate_id", how="left")
    has_controls = (qc["n_vehicle"] > 0) & (qc["n_blank"] > 0)
    qc["qc_pass"] = (qc["flags"] == "") & has_controls
    # time-zero plates have no vehicle wells by design: no Z', not judged
    time0_only = qc["n_vehicle"] == 0
    qc.loc[time0_only, "flags"] = "time-zero plate (no vehicle wells): Z' not applicable"
    qc.loc[time0_only, "qc_pass"] = True
    failed = ~qc["qc_pass"].astype(bool)
    qc["qc_action"] = np.where(failed, "excluded" if qc_action == "exclude" else "flagged", "")
    excluded = set(qc.loc[qc["qc_action"] == "excluded", "plate_id"])
    viability["plate_excluded"] = viability["plate_id"].isin(excluded).to_numpy()
    treated = viability["role"].astype(str) == "treated"
    if excluded and treated.any() and not (treated & ~viability["plate_excluded"]).any():
        from sepher.errors import InputError

        names = sorted(excluded)
        raise InputError(
            source,
            "at least one plate with treated wells that passes plate QC (Z' >= "
            f"{min_z_prime:g}, vehicle CV <= {max_cv_percent:g}%, signal window >= "
            f"{min_signal_window:g}): every such plate failed and was excluded, no curve is "
            "left to fit",
            column="plate_id",
            value=", ".join(names[:20])
            + (f" (+{len(names) - 20} more)" if len(names) > 20 else ""),
            hint="Failed: "
            + "; ".join(
                f"{row.plate_id}: {row.flags}"
                for row in qc[qc["qc_action"] == "excluded"].head(5).itertuples()
            )
            + ". doseresponse.qc_action: flag fits them anyway.",
        )
    return viability, qc


def _rout_many(robust_fit: ManyFits, q: float) -> np.ndarray:
    """ROUT outliers (C, M) from robust fits of complete rows (module docstring)."""
    x, y = robust_fit.dose, robust_fit.response
    n_curves, n = x.shape
    out = np.zeros(x.shape, bool)
    df = n - len(robust_fit.free)
    if df <= 0 or n_curves == 0:
        return out
    resid = y - robust_fit.predict(x)
    valid = np.all(np.isfinite(robust_fit.theta), 1)
    with np.errstate(invalid="ignore"):
        rsdr = np.percentile(np.abs(resid), 68.27, axis=1) * n / df
    valid &= rsdr > 0
    if not valid.any():
        return out
    with np.errstate(all="ignore"):
        pvalues = 2 * stats.t.sf(np.abs(resid[valid]) / rsdr[valid, None], df)
    order = np.argsort(pvalues, axis=1, kind="stable")
    ranked = np.take_along_axis(pvalues, order, 1) <= q * np.arange(1, n + 1) / n
    last = np.where(ranked.any(1), n - 1 - np.argmax(ranked[:, ::-1], 1), -1)
    flagged = np.zeros_like(ranked)
    np.put_along_axis(flagged, order, np.arange(n)[None, :] <= last[:, None], axis=1)
    out[valid] = flagged
    return out


def _band_many(fit: ManyFits, doses, conf_level: float):
    """Fitted curves (C, K) with delta-method SE and t bands at doses (C, K)."""
    fitted, jac = model_jacobian_many(fit.model, doses, fit.theta)
    g = jac[..., fit.free]
    with np.errstate(invalid="ignore"):
        var = np.einsum("akp,apq,akq->ak", g, fit.covariance, g)
    se = np.sqrt(np.clip(var, 0, None))
    with np.errstate(invalid="ignore"):
        tq = np.where(
            fit.df_residual > 0,
            stats.t.ppf(0.5 + conf_level / 2, np.maximum(fit.df_residual, 1)),
            np.nan,
        )
    return fitted, se, fitted - tq[:, None] * se, fitted + tq[:, None] * se


def _layout(viability: pd.DataFrame, by_replicate: bool):
    """Every fit's observations in one long table.

    A curve's observations are its treated wells and the vehicle wells of
    their plates, which enter at dose 0 as in drc (docs/methods-reference.md).

    Returns ``obs`` (one row per well and fit, sorted by fit, plate, well; column
    ``_fit`` the fit number), ``fits`` (one row per fit: curve keys, ``replicate``,
    ``concentration_unit``), curves in key order, replicates sorted within a curve.
    """
    keys = list(CURVE_KEYS)
    role = viability["role"].astype(str).to_numpy()
    finite = np.isfinite(viability["viability"].to_numpy(float))
    treated_all = viability[role == "treated"]
    curves = treated_all[keys].drop_duplicates().sort_values(keys).reset_index(drop=True)
    curve_index = pd.MultiIndex.from_frame(curves)
    curve_of = curve_index.get_indexer(pd.MultiIndex.from_frame(treated_all[keys]))
    treated = treated_all[finite[role == "treated"]].assign(
        _curve=curve_of[finite[role == "treated"]]
    )
    # vehicle wells belong to every curve with treated wells on their plate (dose 0)
    pairs = pd.DataFrame(
        {"_curve": curve_of, "plate_id": treated_all["plate_id"].to_numpy()}
    ).drop_duplicates()
    vehicle = viability[(role == "vehicle") & finite]
    vehicle = vehicle.merge(pairs, on="plate_id", how="inner", sort=False)
    vehicle_curves = curves.iloc[vehicle["_curve"].to_numpy()]
    vehicle = vehicle.assign(
        concentration=0.0,
        drug=vehicle_curves["drug"].to_numpy(),
        condition=vehicle_curves["condition"].to_numpy(),
    )
    columns = list(treated.columns)
    obs = pd.concat(
        [treated.astype({"drug": object, "condition": object}), vehicle[columns]],
        ignore_index=True,
    )
    order = ["_curve", "replicate", "plate_id", "well"] if by_replicate else [
        "_curve", "plate_id", "well"]  # fmt: skip
    obs = obs.sort_values(order, kind="stable").reset_index(drop=True)
    fit_keys = ["_curve", "replicate"] if by_replicate else ["_curve"]
    obs["_fit"] = obs.groupby(fit_keys, sort=True, observed=True).ngroup().to_numpy()
    first = obs.drop_duplicates("_fit")
    fits = curves.iloc[first["_curve"].to_numpy()].reset_index(drop=True)
    fits["replicate"] = first["replicate"].to_numpy() if by_replicate else POOLED
    # unit: the fit's first treated well (any treated well of the curve if none has data)
    is_treated = obs["role"].astype(str).to_numpy() == "treated"
    unit = obs[is_treated].groupby("_fit", sort=True)["concentration_unit"].first()
    curve_unit = treated_all.assign(_curve=curve_of).groupby("_curve")["concentration_unit"].first()
    default_unit = curve_unit.reindex(first["_curve"].to_numpy()).to_numpy(object)
    fits["concentration_unit"] = np.where(
        np.isin(np.arange(len(fits)), unit.index),
        unit.reindex(np.arange(len(fits))).to_numpy(object),
        default_unit,
    )
    return obs, fits


def curve_part(
    viability: pd.DataFrame, part: int, n_parts: int, context: bool = False
) -> pd.DataFrame:
    """The wells of one of `n_parts` parts of the curves, for fitting in separate jobs.

    The curves that :func:`fit_curves` would fit (cell line x condition x drug,
    plates excluded by QC left out), in its order (sorted by those keys), are
    cut into `n_parts` contiguous runs of nearly equal length; part `part`
    (0-based) keeps the treated wells of its run and every other well (vehicle,
    blank, kill, time-zero), so each of its curves has exactly the wells it has
    in the whole table. :func:`fit_curves` on the parts, tables concatenated in
    part order, gives the whole table's rows in the whole table's order, so
    one cell line's curves can be fitted on several cores. With curves that
    share one dose series (a screen) the tables are the same bytes for any
    number of parts (tests/test_doseresponse_speed.py). Otherwise a poorly
    identified fit can differ in its 7th-8th digit: the profile grid that
    starts the fits takes its resolution from the widest dose range of the
    curves fitted together (:func:`sepher.doseresponse.manyfit._log_e_grid`),
    as with the shards by cell line; a fit with an optimum in a flat valley
    then stops at another point of the valley (same RSS).

    Parameters
    ----------
    viability : pandas.DataFrame
        Output of :func:`normalise_plates`.
    part, n_parts : int
        ``0 <= part < n_parts``.
    context : bool
        Also keep the treated wells of every other curve with a treated well
        on a plate of the part's curves. A vehicle well belongs to every curve
        of its plate, and the fit rule leaves a vehicle well that the pooled
        ROUT screen flags in any curve out of the per-replicate fits of all of
        them (``exclude``): the part's per-replicate fits need the pooled fits
        of these neighbours too (the fit rule then keeps only the part's own
        curves in its tables).

    Returns
    -------
    pandas.DataFrame
        Rows of `viability` (index kept), in their order; no treated well when
        the part is empty (more parts than curves).
    """
    if not 0 <= part < n_parts:
        raise ValueError(f"part {part} of {n_parts}: expected 0 <= part < n_parts")
    keys = list(CURVE_KEYS)
    kept = viability
    if "plate_excluded" in viability.columns:
        kept = viability[~_as_bool(viability["plate_excluded"])]
    treated = kept["role"].astype(str).to_numpy() == "treated"
    curves = kept.loc[treated, keys].drop_duplicates().sort_values(keys).reset_index(drop=True)
    n = len(curves)
    run = curves.iloc[part * n // n_parts : (part + 1) * n // n_parts]
    index = pd.MultiIndex.from_frame(viability[keys])
    mine = index.isin(pd.MultiIndex.from_frame(run)) if len(run) else np.zeros(len(index), bool)
    is_treated = viability["role"].astype(str).to_numpy() == "treated"
    if context and mine.any():
        plates = viability.loc[mine & is_treated, "plate_id"].unique()
        on_plates = is_treated & viability["plate_id"].isin(plates).to_numpy()
        neighbours = viability.loc[on_plates, keys].drop_duplicates()
        mine = index.isin(pd.MultiIndex.from_frame(neighbours))
    return viability[~is_treated | mine]


def _fit_block(x, y, excluded, *, model, candidates, outliers, outlier_q, robust_loss, fixed,
               method):  # fmt: skip
    """Fits of curves with the same number of wells: the reported fit, outliers, AICs."""
    outlier = np.zeros(x.shape, bool)
    least_squares = None
    # the reported fit also starts from all of fit_curve's starts
    reported = {"model": model, "fixed": fixed, "method": method, "fit_curve_starts": True}
    if excluded is not None:
        outlier = excluded
    elif outliers == "rout":
        least_squares = fit_many(x, y, **reported)
        robust = fit_many(x, y, **reported, robust="cauchy", least_squares=least_squares)
        outlier = _rout_many(robust, outlier_q)
    used = ~outlier
    if outliers == "robust":
        fit = fit_many(x, y, used, **reported, robust=robust_loss)
    elif least_squares is not None:
        # curves without outliers: the least-squares fit of all wells is the fit
        refit = outlier.any(1)
        fit = least_squares
        if refit.any():
            starts = [robust.theta[refit], least_squares.theta[refit]]
            sub = fit_many(x[refit], y[refit], used[refit], **reported, starts=starts)
            fit = least_squares.replace_rows(refit, sub)
    else:
        fit = fit_many(x, y, used, **reported)
    aics = {}
    for name in candidates:
        if name == model:
            other = fit
        else:
            # the reported fit starts the other log-logistics (a W1.4 fit starts
            # from fit_curve's starts, see fit_many)
            log_logistic = get_model(fit.model).family == get_model(name).family == "LL"
            starts = [fit.theta[:, :4]] if log_logistic else []
            # only the converged RSS matters here: no multi-start refit of curves
            # whose optimum lies at infinity (flat curves, LL.5's f -> 0 or infinity)
            other = fit_many(x, y, used, model=name, starts=starts, method=method, fallback=False)
        aics[name] = np.where(other.converged, other.aic, np.nan)
    return fit, outlier, aics


def _summary_columns(fit: ManyFits, units, ed_levels, conf_level) -> dict:
    """The fits-table columns of ``fit`` (one value per curve), in table order."""
    m = get_model(fit.model)
    n_curves = fit.theta.shape[0]
    positive = fit.used & (fit.dose > 0)
    has_pos = positive.any(1)
    lo, hi = dose_range(fit.dose, fit.used)
    with np.errstate(all="ignore"):
        tq = np.where(
            fit.df_residual > 0,
            stats.t.ppf(0.5 + conf_level / 2, np.maximum(fit.df_residual, 1)),
            np.nan,
        )
    sorted_pos = np.sort(np.where(positive, fit.dose, np.inf), 1)
    distinct = np.isfinite(sorted_pos)
    distinct[:, 1:] &= sorted_pos[:, 1:] != sorted_pos[:, :-1]
    col = {
        "concentration_unit": np.asarray(units, dtype=object),
        "model": np.full(n_curves, fit.model, dtype=object),
        "n": fit.n.astype(int),
        "n_doses": distinct.sum(1).astype(int),
        "min_dose": lo,
        "max_dose": hi,
        "converged": fit.converged.astype(bool),
    }
    se_free = fit.se
    free_names = [fit.names[k] for k in fit.free]
    for k, name in enumerate(m.param_names):
        est = fit.theta[:, k]
        is_fixed = name in fit.fixed
        se = np.full(n_curves, np.nan) if is_fixed else se_free[:, free_names.index(name)]
        col[name] = est.copy()
        col[f"{name}_se"] = se
        col[f"{name}_lower"] = np.full(n_curves, np.nan) if is_fixed else est - tq * se
        col[f"{name}_upper"] = np.full(n_curves, np.nan) if is_fixed else est + tq * se
        col[f"{name}_fixed"] = np.full(n_curves, is_fixed)
    tested = (lo, hi)

    def ed_block(prefix, level, kind):
        got = ed_many(
            fit.model, fit.theta, fit.covariance, fit.free, fit.df_residual, level, kind,
            tested, units, conf_level,
        )  # fmt: skip
        col[prefix] = got["estimate"]
        col[f"{prefix}_se"] = got["se"]
        col[f"{prefix}_lower"] = got["lower"]
        col[f"{prefix}_upper"] = got["upper"]
        col[f"{prefix}_reached"] = got["reached"].astype(bool)
        col[f"{prefix}_display"] = got["display"]

    ed_block("ic50_rel", 50.0, "relative")
    ed_block("ic50_abs", 0.5, "absolute")
    for level in ed_levels:
        if level != 50:
            ed_block(f"ed{level:g}", float(level), "relative")
    e = fit.theta[:, 3]
    e_se = col["e_se"]
    with np.errstate(all="ignore"):
        col["log_ic50"] = np.where(e > 0, np.log10(e), np.nan)
        col["log_ic50_se"] = np.where(e > 0, e_se / (e * np.log(10)), np.nan)
    col["hill_slope"] = -fit.theta[:, 0]
    auc = np.where(has_pos, area_under_curve_many(fit.model, fit.theta, lo, hi), np.nan)
    col["auc"] = auc
    col["activity_area"] = 1.0 - auc
    col["rss"] = fit.rss
    col["df_residual"] = fit.df_residual.astype(int)
    col["sigma"] = fit.sigma
    col["aic"] = fit.aic
    # no covariance (Hessian not positive definite): the optimum lies in a flat
    # valley, so the parameters are not identified and their digits depend on
    # floating-point details; they are not reported (byte-stable tables)
    blank = ~np.isfinite(fit.covariance).reshape(n_curves, -1).any(1) & (fit.n > 0)
    for name in [*m.param_names, "log_ic50", "hill_slope"]:
        if name not in fit.fixed:
            col[name] = np.where(blank, np.nan, col[name])
    col["auc"] = np.where(blank, np.nan, col["auc"])
    col["activity_area"] = np.where(blank, np.nan, col["activity_area"])
    lof = lack_of_fit_many(fit)
    col["lack_of_fit_f"] = lof["f"]
    col["lack_of_fit_p"] = lof["p"]
    col["flat_p"] = fit.flat_pvalue
    col["conf_level"] = np.full(n_curves, conf_level)
    return col


def _gr_table(viability: pd.DataFrame, obs: pd.DataFrame) -> pd.DataFrame:
    """GR metrics of every fit from blank-subtracted counts (Hafner et al. 2016).

    Returns one row per fit with time-zero data (index ``_fit``), or an empty frame.
    """
    role = viability["role"].astype(str)
    time0 = viability[role == "time0"]
    if time0.empty:
        return pd.DataFrame()
    t0 = time0.assign(count=time0["signal"] - time0["blank_mean"])
    t0 = t0.groupby(["cell_line", "condition", "replicate"], observed=True)["count"].mean()
    treated = obs[obs["role"].astype(str) == "treated"]
    index = pd.MultiIndex.from_frame(treated[["cell_line", "condition", "replicate"]])
    count0 = t0.reindex(index).to_numpy(float)
    has_t0 = pd.Series(np.isfinite(count0)).groupby(treated["_fit"].to_numpy()).any()
    data = pd.DataFrame(
        {
            "_fit": treated["_fit"].to_numpy(),
            "concentration": treated["concentration"].to_numpy(float),
            "cell_count": (treated["signal"] - treated["blank_mean"]).to_numpy(float),
            "cell_count__ctrl": (treated["vehicle_mean"] - treated["blank_mean"]).to_numpy(float),
            "cell_count__time0": count0,
        }
    )
    data = data[data["_fit"].isin(has_t0.index[has_t0])].dropna()
    if data.empty:
        return pd.DataFrame()
    gr = gr_metrics(data, keys=("_fit",)).set_index("_fit")
    return pd.DataFrame(
        {
            "gr50": gr["GR50"],
            "gr_max": gr["GRmax"],
            "gr_inf": gr["GRinf"],
            "gr_aoc": gr["GR_AOC"],
            "gec50": gr["GEC50"],
            "gr_hill": gr["Hill"],
            "gr_fit": gr["fit"],
            "gr_p": gr["pval"],
        }
    )


def fit_curves(
    viability: pd.DataFrame,
    *,
    model: str = "LL.4",
    candidate_models=("LL.4", "LL.3", "LL.5", "W1.4"),
    outliers: str = "rout",
    outlier_q: float = 0.01,
    robust_loss: str = "soft_l1",
    ed_levels=(10, 50, 90),
    conf_level: float = 0.95,
    fixed: dict | None = None,
    by_replicate: bool = False,
    exclude=None,
    band_points: int = 121,
    method: str = "batch",
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Fit every dose-response curve of a viability table.

    All curves are fitted at once (:func:`sepher.doseresponse.manyfit.fit_many`,
    curves grouped by their number of wells so that each curve's digits do not
    depend on the others); every step after the fits (outliers, EDs, AUC,
    lack of fit, bands) is vectorised over the curves too.

    Parameters
    ----------
    viability : pandas.DataFrame
        Output of :func:`normalise_plates`; wells with ``plate_excluded``
        True (plates that failed QC) are left out, so a curve whose plates
        all failed is absent from the tables.
    model : {"LL.4", "LL.3", "LL.5", "W1.4"}
        drc model reported (default LL.4, the four-parameter log-logistic).
    candidate_models : sequence of str
        Models whose AIC is reported; ``aic_best_model`` names the lowest.
    outliers : {"rout", "robust", "none"}
        Outlier handling (module docstring).
    outlier_q : float
        ROUT false discovery rate Q.
    robust_loss : {"soft_l1", "huber", "cauchy"}
        Loss of ``outliers="robust"``.
    ed_levels : sequence of float
        Relative effective-dose levels, percent, reported as ``ed<level>``
        (ED50 is ``ic50_rel``).
    conf_level : float
        Level of every confidence interval (t-based, residual df).
    fixed : dict, optional
        Parameters held fixed (e.g. ``{"d": 1.0}``).
    by_replicate : bool
        Fit each biological replicate separately (adds a ``replicate`` column).
    exclude : set of (plate_id, well), optional
        Wells to leave out instead of screening for outliers (e.g. the ROUT
        outliers of the pooled fits, so that per-replicate fits use the same wells).
    band_points : int
        Number of doses of the fitted-curve grid (log-spaced over the tested range).
    method : {"batch", "multistart"}
        ``"multistart"``: each curve by :func:`~sepher.doseresponse.fit_curve`
        (10 starts per model, a Python loop; the reference path, ~100x slower).

    Returns
    -------
    fits : pandas.DataFrame
        One row per curve (columns: see ``docs`` / the module docstring).
    residuals : pandas.DataFrame
        One row per well of a curve: ``plate_id, well, role, cell_line, condition,
        drug, replicate, concentration, concentration_unit, viability,
        fitted, residual,
        std_residual, outlier``.
    curves : pandas.DataFrame
        Fitted curve and confidence band: ``cell_line, condition, drug,
        replicate, dose, fitted, se, lower, upper``.
    """
    fixed = dict(fixed or {})
    keys = list(CURVE_KEYS)
    if "plate_excluded" in viability.columns:
        # plates that failed QC with qc_action "exclude": out of every fit and GR metric
        dropped = _as_bool(viability["plate_excluded"])
        viability = viability[~dropped].reset_index(drop=True) if dropped.any() else viability
    obs, fits_id = _layout(viability, by_replicate)
    n_fits = len(fits_id)
    fit_of = obs["_fit"].to_numpy()
    sizes = np.bincount(fit_of, minlength=n_fits)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    conc = obs["concentration"].to_numpy(float)
    resp = obs["viability"].to_numpy(float)
    excluded_obs = None
    if exclude is not None:
        pairs = pd.MultiIndex.from_arrays([obs["plate_id"], obs["well"]])
        excluded_obs = pairs.isin(list(exclude)) if exclude else np.zeros(len(obs), bool)
    n_obs = len(obs)
    outlier_obs = np.zeros(n_obs, bool)
    fitted_obs = np.full(n_obs, np.nan)
    sigma_obs = np.full(n_obs, np.nan)
    columns, flags, aic_cols = {}, [None] * n_fits, {}
    band_parts = []
    units = fits_id["concentration_unit"].to_numpy(object)
    blocks = []  # curves with the same number of wells, at most CHUNK at a time
    for size in np.unique(sizes):
        same = np.nonzero(sizes == size)[0]
        blocks += [same[k : k + CHUNK] for k in range(0, same.size, CHUNK)]
    for block in blocks:
        size = sizes[block[0]]
        rows = offsets[block][:, None] + np.arange(size)[None, :]
        x, y = conc[rows], resp[rows]
        excluded = None if excluded_obs is None else excluded_obs[rows]
        fit, outlier, aics = _fit_block(
            x, y, excluded, model=model, candidates=candidate_models, outliers=outliers,
            outlier_q=outlier_q, robust_loss=robust_loss, fixed=fixed, method=method,
        )  # fmt: skip
        part = _summary_columns(fit, units[block], ed_levels, conf_level)
        for name, value in part.items():
            if name not in columns:
                columns[name] = np.empty(n_fits, dtype=np.asarray(value).dtype)
            columns[name][block] = value
        for name in candidate_models:
            aic_cols.setdefault(name, np.full(n_fits, np.nan))[block] = aics[name]
        for j, f in zip(block, fit.flags, strict=True):
            flags[j] = list(f)
        outlier_obs[rows] = outlier
        fitted_obs[rows] = fit.predict(x)
        sigma_obs[rows] = fit.sigma[:, None]
        # fitted curve and band on a log grid over the tested (used) doses
        drawn = np.nonzero(fit.converged & (fit.used & (x > 0)).any(1))[0]
        if drawn.size:
            lo, hi = dose_range(x[drawn], fit.used[drawn])
            grid = np.geomspace(lo, hi, band_points, axis=1)
            sub = ManyFits(
                model=fit.model, names=fit.names, fixed=fit.fixed, theta=fit.theta[drawn],
                covariance=fit.covariance[drawn], rss=fit.rss[drawn], n=fit.n[drawn],
                df_residual=fit.df_residual[drawn], converged=fit.converged[drawn],
                aic=fit.aic[drawn], flat_pvalue=fit.flat_pvalue[drawn], flags=[],
                dose=grid, response=grid, used=np.zeros(grid.shape, bool),
            )  # fmt: skip
            band_parts.append((block[drawn], grid, *_band_many(sub, grid, conf_level)))

    fits = fits_id[keys + (["replicate"] if by_replicate else [])].copy()
    for name, value in columns.items():
        fits[name] = value
    for name in candidate_models:
        fits[f"aic_{name.replace('.', '')}"] = aic_cols[name]
    aic_table = np.column_stack([aic_cols[name] for name in candidate_models])
    finite = np.isfinite(aic_table)
    # lowest AIC; ties within AIC_TIE (e.g. LL.4 and W1.4 both fitting a step
    # between two doses, equal up to rounding) go to the first candidate
    lowest = np.where(finite, aic_table, np.inf).min(1, keepdims=True)
    best = np.argmax(finite & (aic_table <= lowest + AIC_TIE), 1)
    fits["aic_best_model"] = np.where(
        finite.any(1), np.asarray(candidate_models, dtype=object)[best], ""
    )
    n_outliers = np.bincount(fit_of, weights=outlier_obs, minlength=n_fits).astype(int)
    fits["n_outliers"] = n_outliers
    flagged = obs.loc[outlier_obs, ["_fit", "plate_id", "well"]]
    wells = (
        (flagged["plate_id"].astype(str) + ":" + flagged["well"].astype(str))
        .groupby(flagged["_fit"].to_numpy())
        .agg("; ".join)
    )
    fits["outlier_wells"] = wells.reindex(np.arange(n_fits), fill_value="").to_numpy(object)
    fits["n_replicates"] = (
        obs.groupby("_fit", sort=True)["replicate"].nunique().reindex(np.arange(n_fits)).to_numpy()
    )
    how = f"ROUT Q={outlier_q:g}" if exclude is None else "outliers of the pooled fit"
    for j in np.nonzero(n_outliers)[0]:
        flags[j].append(f"{n_outliers[j]} outlier well(s) left out ({how})")
    fits["flags"] = ["; ".join(f) for f in flags]
    gr = _gr_table(viability, obs)
    for name in gr.columns:
        fits[name] = gr[name].reindex(np.arange(n_fits)).to_numpy()

    unit_obs = units[fit_of]
    residual = resp - fitted_obs
    residuals = obs[
        ["plate_id", "well", "role", *keys, "replicate", "concentration", "concentration_unit"]
    ].assign(
        concentration_unit=unit_obs,
        viability=resp,
        fit_replicate=fits_id["replicate"].to_numpy(object)[fit_of],
        fitted=fitted_obs,
        residual=residual,
        std_residual=np.where(
            sigma_obs > 0, residual / np.where(sigma_obs > 0, sigma_obs, 1.0), np.nan
        ),  # fmt: skip
        outlier=outlier_obs,
    )
    order = keys + (["replicate"] if by_replicate else [])
    fits = fits.sort_values(order, kind="stable").reset_index(drop=True)
    residuals = residuals.sort_values(
        [*keys, "fit_replicate", "plate_id", "well"], kind="stable"
    ).reset_index(drop=True)
    if not by_replicate:
        residuals = residuals.drop(columns="fit_replicate")
    curves = _curves_table(fits_id, band_parts, band_points)
    return fits, residuals, curves


def _curves_table(fits_id, band_parts, band_points) -> pd.DataFrame:
    """Long table of the fitted curves and bands, fits in order."""
    keys = list(CURVE_KEYS)
    columns = [*keys, "replicate", "dose", "fitted", "se", "lower", "upper"]
    if not band_parts:
        return pd.DataFrame(columns=columns)
    which = np.concatenate([p[0] for p in band_parts])
    order = np.argsort(which, kind="stable")
    stacked = [np.concatenate([p[k] for p in band_parts])[order] for k in range(1, 6)]
    which = which[order]
    ident = fits_id.iloc[np.repeat(which, band_points)].reset_index(drop=True)
    table = ident[[*keys, "replicate"]].copy()
    for name, value in zip(["dose", "fitted", "se", "lower", "upper"], stacked, strict=True):
        table[name] = value.ravel()
    return table[columns]


#: Columns of comparisons.csv, in order (docs: :func:`compare_conditions`).
COMPARISON_COLUMNS = (
    "cell_line", "drug", "family", "numerator", "denominator", "level", "inference", "test",
    "n_replicates_numerator", "n_replicates_denominator", "n_pairs",
    "ed_numerator", "ed_denominator", "ratio", "lower", "upper", "se_log", "t", "df", "p",
    "p_adjusted", "multiplicity",
    "technical_ratio", "technical_se", "technical_lower", "technical_upper", "technical_t",
    "technical_df", "technical_p", "technical_f_shared_ed50", "technical_p_shared_ed50",
    "n", "model", "conf_level", "converged",
)  # fmt: skip


#: Identifying columns of a replicate-level comparison row.
_PAIR_KEYS = ("cell_line", "numerator", "denominator")


def _technical(data, num, den, *, model, level, conf_level, fixed) -> dict:
    """drc EDcomp of one pair from the wells (joint fit, pooled variance, delta method)."""
    x = data["concentration"].to_numpy(float)
    y = data["viability"].to_numpy(float)
    lab = data["condition"].astype(str).to_numpy()
    joint = fit_joint(x, y, lab, model=model, fixed=fixed)
    ratio = ed_ratio(joint, curves=(num, den), level=level)
    tq = _t(conf_level, ratio["df"])
    shared = compare_ed50(x, y, lab, model=model, fixed=fixed)
    e = joint.params["e"]
    by_e = level == 50 and model in ("LL.4", "LL.3")  # ED50 = e for log-logistic
    return {
        "ed_numerator": float(e[num]) if by_e else np.nan,
        "ed_denominator": float(e[den]) if by_e else np.nan,
        "technical_ratio": ratio["ratio"],
        "technical_se": ratio["se"],
        "technical_lower": ratio["ratio"] - tq * ratio["se"],
        "technical_upper": ratio["ratio"] + tq * ratio["se"],
        "technical_t": ratio["t"],
        "technical_df": ratio["df"],
        "technical_p": ratio["p"],
        "technical_f_shared_ed50": shared["f"],
        "technical_p_shared_ed50": shared["p"],
        "n": joint.n,
        "converged": joint.converged,
    }


def compare_conditions(
    observations: pd.DataFrame,
    comparisons,
    *,
    by_replicate: pd.DataFrame | None = None,
    drug: str = "T-DM1",
    model: str = "LL.4",
    level: float = 50.0,
    conf_level: float = 0.95,
    fixed: dict | None = None,
    inference: str = "replicate",
    multiplicity: str = "holm",
    figure_conditions=("parental", "T-R", "TP-R"),
) -> pd.DataFrame:
    """ED ratios between conditions of each cell line, at replicate level.

    Main columns (``ratio ... p``): with ``inference="replicate"`` (default)
    or ``"mixed"``, the replicate-level test of
    :mod:`sepher.doseresponse.replicate` on the log EDs of the per-replicate
    fits (paired t on shared replicate ids, Welch t otherwise, or a linear
    mixed model with a random replicate intercept), ratio = exp(mean log
    difference) with a t-based CI on the log scale. With
    ``inference="technical"`` they are the well-level result below.

    Secondary ``technical_*`` columns, always: drc ``EDcomp`` from the wells
    of both curves fitted jointly (curve-specific parameters, pooled
    residual variance, drc ``drm(..., curveid)``), delta-method SE and CI
    on the ratio scale, t test of ratio = 1 on the joint residual df, and
    the extra-sum-of-squares F test of one shared ED50. These count wells
    as independent (df in the hundreds), so they describe the technical
    precision of one pooled experiment, not the evidence across experiments.

    Parameters
    ----------
    observations : pandas.DataFrame
        Wells used in the pooled fits (the ``residuals`` table of
        :func:`fit_curves`; outliers flagged in ``outlier`` are left out):
        ``cell_line, condition, drug, replicate, concentration, viability``.
    comparisons : sequence of dict
        ``{"numerator": condition, "denominator": condition}``, optionally
        ``"family"`` (multiplicity family).
    by_replicate : pandas.DataFrame, optional
        Per-replicate fits (``fits_by_replicate.csv``); required unless
        ``inference="technical"``.
    drug : str
    model : str
    level : float
        Relative ED level, percent (50 = IC50): the ``ic50_rel`` / ``ed<level>``
        columns of `by_replicate`.
    conf_level : float
    fixed : dict, optional
    inference : {"replicate", "mixed", "technical"}
    multiplicity : {"holm", "bh", "none"}
        Adjustment of ``p`` within each family of the rows returned
        (:func:`sepher.doseresponse.replicate.adjust_comparisons`); the
        workflow adjusts again across all shards in its join step.
    figure_conditions : sequence of str
        Conditions of fig 1: a comparison between two of them is in family
        ``fig1``, the others in ``fig3``, unless the entry names its family.

    Returns
    -------
    pandas.DataFrame
        One row per line and comparison, columns :data:`COMPARISON_COLUMNS`:
        ``cell_line, drug, family, numerator, denominator, level, inference,
        test, n_replicates_numerator, n_replicates_denominator, n_pairs,
        ed_numerator, ed_denominator`` (geometric means of the replicate EDs
        used; drc's joint-fit EDs with technical inference), ``ratio, lower,
        upper, se_log, t, df, p, p_adjusted, multiplicity``, ``technical_*``,
        ``n`` (wells of the joint fit), ``model, conf_level, converged``
        (joint fit). Pairs without data on a line are left out.
    """
    if inference not in INFERENCE:
        raise ValueError(f"inference {inference!r}: expected one of {', '.join(INFERENCE)}")
    if by_replicate is None and inference != "technical":
        raise ValueError(
            f"inference {inference!r} needs the per-replicate fits (by_replicate); "
            "use inference='technical' for the well-level comparison alone"
        )
    pairs = [dict(pair) for pair in comparisons]
    obs = observations[observations["drug"].astype(str) == str(drug)]
    if "outlier" in obs.columns:
        obs = obs[~_as_bool(obs["outlier"])]
    if "plate_excluded" in obs.columns:
        obs = obs[~_as_bool(obs["plate_excluded"])]
    replicate_rows = {}
    n_reps = {}
    if by_replicate is not None and len(by_replicate):
        mode = "replicate" if inference == "technical" else inference
        table = replicate_comparisons(by_replicate, pairs, drug=drug, level=level, inference=mode,
                           conf_level=conf_level)  # fmt: skip
        for row in table.to_dict("records"):
            key = (row["cell_line"], row["numerator"], row["denominator"])
            replicate_rows[key] = row
            n_reps[(key[0], key[1])] = row["n_replicates_numerator"]
            n_reps[(key[0], key[2])] = row["n_replicates_denominator"]
    lines = set(obs["cell_line"].astype(str)) | {key[0] for key in replicate_rows}
    rows = []
    for cell_line in sorted(lines):
        line = obs[obs["cell_line"].astype(str) == cell_line]
        for pair in pairs:
            num, den = str(pair["numerator"]), str(pair["denominator"])
            key = (cell_line, num, den)
            data = line[line["condition"].astype(str).isin([num, den])]
            has_wells = set(data["condition"].astype(str)) == {num, den}
            if not has_wells and key not in replicate_rows:
                continue
            row = {
                "cell_line": cell_line,
                "drug": drug,
                "family": comparison_family(pair, figure_conditions),
                "numerator": num,
                "denominator": den,
                "level": level,
                "inference": inference,
            }
            tech = (
                _technical(
                    data, num, den, model=model, level=level, conf_level=conf_level, fixed=fixed
                )  # fmt: skip
                if has_wells
                else {}
            )
            if inference == "technical":
                ratio, se = tech.get("technical_ratio", np.nan), tech.get("technical_se", np.nan)
                reps = data.groupby(data["condition"].astype(str))["replicate"].nunique()
                row.update(
                    test=TESTS["technical"],
                    n_replicates_numerator=n_reps.get((cell_line, num), reps.get(num, 0)),
                    n_replicates_denominator=n_reps.get((cell_line, den), reps.get(den, 0)),
                    n_pairs=np.nan,
                    ed_numerator=tech.get("ed_numerator", np.nan),
                    ed_denominator=tech.get("ed_denominator", np.nan),
                    ratio=ratio,
                    lower=tech.get("technical_lower", np.nan),
                    upper=tech.get("technical_upper", np.nan),
                    se_log=se / ratio if ratio and np.isfinite(ratio) else np.nan,
                    t=tech.get("technical_t", np.nan),
                    df=tech.get("technical_df", np.nan),
                    p=tech.get("technical_p", np.nan),
                )
            else:
                found = replicate_rows.get(key)
                if found is None:  # no per-replicate fit of one condition
                    found = {"test": "", "n_replicates_numerator": 0,
                             "n_replicates_denominator": 0}  # fmt: skip
                row.update({k: v for k, v in found.items() if k not in _PAIR_KEYS})
            row.update({k: v for k, v in tech.items() if k.startswith("technical_")})
            row.update(
                n=tech.get("n", 0), model=model, conf_level=conf_level,
                converged=tech.get("converged", False),
            )  # fmt: skip
            rows.append(row)
    table = pd.DataFrame(rows, columns=[c for c in COMPARISON_COLUMNS if c not in
                                        ("p_adjusted", "multiplicity")])  # fmt: skip
    table = adjust_comparisons(table, multiplicity)
    return table[list(COMPARISON_COLUMNS)]
