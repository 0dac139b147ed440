"""Stage-level orchestration of the dose-response analysis (plates -> tables).

The workflow's entry points call these functions on whole tables:

- :func:`normalise_plates`: viability per well and plate QC (Z', control CVs);
- :func:`fit_curves`: one fit per curve (cell line x condition x drug,
  biological replicates pooled, or per replicate): parameters in drc's
  b/c/d/e convention with SE and CI, relative and absolute IC50 with CI or a
  not-reached flag, GraphPad Prism LogIC50 / HillSlope, AUC and activity
  area, AIC of candidate models, lack-of-fit test, GR metrics when time-zero
  wells exist; with the per-well residuals and the fitted curve with its
  confidence band on a dose grid (for the figures);
- :func:`compare_conditions`: ED50 ratios between conditions of one line
  from a joint fit (drc ``EDcomp``, delta method) and the extra-sum-of-
  squares F test of a shared ED50.

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
from .ed import activity_area, area_under_curve, ed
from .fit import FitResult, fit_curve, lack_of_fit
from .gr import gr_metrics
from .models import get_model, model_jacobian
from .normalise import normalise_plate
from .qc import plate_qc

__all__ = [
    "CURVE_KEYS",
    "compare_conditions",
    "confidence_band",
    "curve_observations",
    "fit_curves",
    "normalise_plates",
    "rout_outliers",
]

#: Columns identifying one dose-response curve.
CURVE_KEYS = ("cell_line", "condition", "drug")

#: Conventional name of the pooled-replicates fit in the ``replicate`` column.
POOLED = "pooled"


def _t(conf_level: float, df: float) -> float:
    return float(stats.t.ppf(0.5 + conf_level / 2, df)) if df > 0 else np.nan


def normalise_plates(
    plates: pd.DataFrame, min_z_prime: float = 0.5, max_cv_percent: float = 20.0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Viability per well and QC per plate.

    Parameters
    ----------
    plates : pandas.DataFrame
        Validated plates table (:func:`sepher.io.plates.read_plates`).
    min_z_prime : float
        Plates with a Z'-factor below this are flagged (Zhang et al. 1999: 0.5).
    max_cv_percent : float
        Plates with a vehicle or blank CV above this (percent) are flagged.

    Returns
    -------
    viability : pandas.DataFrame
        One row per well, sorted by plate and well: the input columns plus
        ``blank_mean``, ``vehicle_mean`` (RLU, the well's plate) and
        ``viability`` (fraction of vehicle, blank subtracted; NaN for blank
        and time0 wells).
    qc : pandas.DataFrame
        One row per plate: ``plate_id, cell_line, condition, replicate,
        time_h, n_wells, n_vehicle, n_blank``, control means / SDs (RLU),
        ``vehicle_cv_percent, blank_cv_percent, z_prime, qc_pass, flags``.
    """
    viability = normalise_plate(plates)
    viability = viability.sort_values(["plate_id", "well"], kind="stable").reset_index(drop=True)
    qc = plate_qc(plates, min_z_prime=min_z_prime, max_cv_percent=max_cv_percent)
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
    # time-zero plates have no vehicle wells by design: no Z', not a failure
    time0_only = qc["n_vehicle"] == 0
    qc.loc[time0_only, "flags"] = "time-zero plate (no vehicle wells): Z' not applicable"
    qc.loc[time0_only, "qc_pass"] = True
    return viability, qc


def curve_observations(viability: pd.DataFrame, cell_line, condition, drug) -> pd.DataFrame:
    """Wells of one curve: its treated wells and the vehicle wells of their plates.

    Vehicle wells enter at dose 0, as in drc (SPEC ``plates``).
    """
    treated = viability[
        (viability["role"] == "treated")
        & (viability["cell_line"] == cell_line)
        & (viability["condition"] == condition)
        & (viability["drug"] == drug)
    ]
    vehicle = viability[
        (viability["role"] == "vehicle") & viability["plate_id"].isin(set(treated["plate_id"]))
    ]
    # vehicle wells belong to every curve of their plate: label them with this curve
    vehicle = vehicle.assign(concentration=0.0, drug=drug, condition=condition)
    out = pd.concat([treated, vehicle])
    out = out[np.isfinite(out["viability"].to_numpy(float))]
    return out.sort_values(["plate_id", "well"], kind="stable")


def rout_outliers(
    dose, response, model: str = "LL.4", q: float = 0.01, fixed: dict | None = None
) -> np.ndarray:
    """Outlying observations by ROUT (Motulsky & Brown 2006).

    Parameters
    ----------
    dose, response : array_like, shape (n,)
    model : str
        drc model name.
    q : float
        False discovery rate (GraphPad Prism's ROUT ``Q``; 0.01 = 1 %).
    fixed : dict, optional

    Returns
    -------
    ndarray of bool, shape (n,)
        True for observations declared outliers.
    """
    x = np.asarray(dose, float)
    y = np.asarray(response, float)
    fit = fit_curve(x, y, model=model, fixed=fixed, robust="cauchy")
    out = np.zeros(x.size, bool)
    p_free = len(fit.free_names)
    df = x.size - p_free
    if not np.all(np.isfinite(fit.theta)) or df <= 0:
        return out
    resid = y - fit.predict(x)
    rsdr = np.percentile(np.abs(resid), 68.27) * x.size / df
    if not rsdr > 0:
        return out
    pvalues = 2 * stats.t.sf(np.abs(resid) / rsdr, df)
    order = np.argsort(pvalues, kind="stable")
    ranked = pvalues[order] <= q * np.arange(1, x.size + 1) / x.size
    if ranked.any():
        last = int(np.nonzero(ranked)[0].max())
        out[order[: last + 1]] = True
    return out


def confidence_band(fit: FitResult, doses, conf_level: float = 0.95) -> pd.DataFrame:
    """Fitted curve with a pointwise delta-method confidence band.

    ``Var f(x) = g(x)' V g(x)`` with ``g`` the gradient of the model in the
    free parameters and ``V`` the fit's covariance; band = fit +/- t(df) SE.

    Parameters
    ----------
    fit : FitResult
    doses : array_like
        Doses (unit of ``e``).
    conf_level : float

    Returns
    -------
    pandas.DataFrame
        ``dose, fitted, se, lower, upper``.
    """
    x = np.asarray(doses, float)
    free = [i for i, k in enumerate(fit.params) if k not in fit.fixed]
    fitted, jac = model_jacobian(fit.model, x, fit.theta)
    g = jac[:, free]
    cov = fit.covariance.to_numpy()
    se = np.sqrt(np.clip(np.einsum("ij,jk,ik->i", g, cov, g), 0, None))
    tq = _t(conf_level, fit.df_residual)
    return pd.DataFrame(
        {
            "dose": x,
            "fitted": fitted,
            "se": se,
            "lower": fitted - tq * se,
            "upper": fitted + tq * se,
        }
    )


def _ed_columns(fit, prefix, levels, kind, conf_level, unit, dose_range):
    table = ed(fit, levels, type=kind, dose_range=dose_range, unit=unit)
    tq = _t(conf_level, fit.df_residual)
    out = {}
    for level, row in zip(levels, table.itertuples(index=False), strict=True):
        name = prefix(level)
        out[name] = row.estimate
        out[f"{name}_se"] = row.se
        out[f"{name}_lower"] = row.estimate - tq * row.se
        out[f"{name}_upper"] = row.estimate + tq * row.se
        out[f"{name}_reached"] = bool(row.reached)
        out[f"{name}_display"] = row.display
    return out


def _fit_one(obs, model, candidates, outliers, outlier_q, robust_loss, fixed, exclude):
    x = obs["concentration"].to_numpy(float)
    y = obs["viability"].to_numpy(float)
    outlier = np.zeros(x.size, bool)
    if exclude is not None:
        pairs = zip(obs["plate_id"], obs["well"], strict=True)
        outlier = np.array([pair in exclude for pair in pairs], bool)
    elif outliers == "rout":
        outlier = rout_outliers(x, y, model=model, q=outlier_q, fixed=fixed)
    robust = robust_loss if outliers == "robust" else None
    fit = fit_curve(x[~outlier], y[~outlier], model=model, fixed=fixed, robust=robust)
    aics = {}
    for name in candidates:
        other = fit if name == model else fit_curve(x[~outlier], y[~outlier], model=name)
        aics[name] = other.aic if other.converged else np.nan
    return fit, outlier, aics


def _gr_columns(viability, keys, group_rows):
    """GR metrics of one curve from blank-subtracted counts (Hafner et al. 2016)."""
    time0 = viability[viability["role"] == "time0"]
    if time0.empty:
        return {}
    t0 = time0.assign(count=time0["signal"] - time0["blank_mean"])
    t0 = t0.groupby(["cell_line", "condition", "replicate"])["count"].mean()
    treated = group_rows[group_rows["role"] == "treated"]
    index = list(zip(treated["cell_line"], treated["condition"], treated["replicate"], strict=True))
    count0 = t0.reindex(index).to_numpy(float)
    if not np.isfinite(count0).any():
        return {}
    data = pd.DataFrame(
        {
            "curve": "curve",
            "concentration": treated["concentration"].to_numpy(float),
            "cell_count": (treated["signal"] - treated["blank_mean"]).to_numpy(float),
            "cell_count__ctrl": (treated["vehicle_mean"] - treated["blank_mean"]).to_numpy(float),
            "cell_count__time0": count0,
        }
    ).dropna()
    if data.empty:
        return {}
    gr = gr_metrics(data, keys=("curve",)).iloc[0]
    return {
        "gr50": gr["GR50"],
        "gr_max": gr["GRmax"],
        "gr_inf": gr["GRinf"],
        "gr_aoc": gr["GR_AOC"],
        "gec50": gr["GEC50"],
        "gr_hill": gr["Hill"],
        "gr_fit": gr["fit"],
        "gr_p": gr["pval"],
    }


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
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Fit every dose-response curve of a viability table.

    Parameters
    ----------
    viability : pandas.DataFrame
        Output of :func:`normalise_plates`.
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
    treated = viability[viability["role"] == "treated"]
    keys = list(CURVE_KEYS)
    groups = treated[keys].drop_duplicates().sort_values(keys).itertuples(index=False)
    fit_rows, resid_rows, curve_rows = [], [], []
    for cell_line, condition, drug in groups:
        all_obs = curve_observations(viability, cell_line, condition, drug)
        replicates = sorted(set(all_obs["replicate"])) if by_replicate else [POOLED]
        for replicate in replicates:
            obs = all_obs if replicate == POOLED else all_obs[all_obs["replicate"] == replicate]
            fit, outlier, aics = _fit_one(
                obs, model, candidate_models, outliers, outlier_q, robust_loss, fixed, exclude
            )
            ident = {"cell_line": cell_line, "condition": condition, "drug": drug}
            if by_replicate:
                ident["replicate"] = replicate
            unit = obs.loc[obs["role"] == "treated", "concentration_unit"].iloc[0]
            row = {**ident, **_fit_summary(fit, unit, ed_levels, conf_level)}
            for name in candidate_models:
                row[f"aic_{name.replace('.', '')}"] = aics[name]
            finite = {k: v for k, v in aics.items() if np.isfinite(v)}
            row["aic_best_model"] = min(finite, key=finite.get) if finite else ""
            flagged = obs[outlier]
            row["n_outliers"] = int(outlier.sum())
            row["outlier_wells"] = "; ".join(
                f"{p}:{w}" for p, w in zip(flagged["plate_id"], flagged["well"], strict=True)
            )
            row["n_replicates"] = obs["replicate"].nunique()
            flags = list(fit.flags)
            if outlier.any():
                how = f"ROUT Q={outlier_q:g}" if exclude is None else "outliers of the pooled fit"
                flags.append(f"{int(outlier.sum())} outlier well(s) left out ({how})")
            row["flags"] = "; ".join(flags)
            row.update(_gr_columns(viability, keys, obs))
            fit_rows.append(row)
            predicted = fit.predict(obs["concentration"].to_numpy(float))
            resid = obs["viability"].to_numpy(float) - predicted
            resid_rows.append(
                obs[
                    [
                        "plate_id",
                        "well",
                        "role",
                        *keys,
                        "replicate",
                        "concentration",
                        "concentration_unit",
                    ]
                ]
                .assign(concentration_unit=unit, viability=obs["viability"])
                .assign(
                    fit_replicate=replicate,
                    fitted=predicted,
                    residual=resid,
                    std_residual=resid / fit.sigma if fit.sigma > 0 else np.nan,
                    outlier=outlier,
                )
            )
            xpos = fit.dose[fit.dose > 0]
            if xpos.size and fit.converged:
                grid = np.geomspace(xpos.min(), xpos.max(), band_points)
                band = confidence_band(fit, grid, conf_level)
                curve_rows.append(band.assign(**{**ident, "replicate": replicate}))
    fits = pd.DataFrame(fit_rows)
    residuals = pd.concat(resid_rows, ignore_index=True)
    curves = pd.concat(curve_rows, ignore_index=True)
    order = keys + (["replicate"] if by_replicate else [])
    fits = fits.sort_values(order, kind="stable").reset_index(drop=True)
    residuals = residuals.sort_values(
        [*keys, "fit_replicate", "plate_id", "well"], kind="stable"
    ).reset_index(drop=True)
    if not by_replicate:
        residuals = residuals.drop(columns="fit_replicate")
    curves = curves[[*keys, "replicate", "dose", "fitted", "se", "lower", "upper"]]
    return fits, residuals, curves


def _fit_summary(fit: FitResult, unit: str, ed_levels, conf_level) -> dict:
    xpos = fit.dose[fit.dose > 0]
    dose_range = (xpos.min(), xpos.max()) if xpos.size else None
    tq = _t(conf_level, fit.df_residual)
    row = {
        "concentration_unit": unit,
        "model": fit.model,
        "n": fit.n,
        "n_doses": int(np.unique(xpos).size),
        "min_dose": float(xpos.min()) if xpos.size else np.nan,
        "max_dose": float(xpos.max()) if xpos.size else np.nan,
        "converged": fit.converged,
    }
    for name in get_model(fit.model).param_names:
        est = fit.params[name]
        se = fit.se.get(name, np.nan)
        row[name] = est
        row[f"{name}_se"] = se
        row[f"{name}_lower"] = est - tq * se if name not in fit.fixed else np.nan
        row[f"{name}_upper"] = est + tq * se if name not in fit.fixed else np.nan
        row[f"{name}_fixed"] = name in fit.fixed
    row.update(
        _ed_columns(fit, lambda _: "ic50_rel", [50], "relative", conf_level, unit, dose_range)
    )
    row.update(
        _ed_columns(fit, lambda _: "ic50_abs", [0.5], "absolute", conf_level, unit, dose_range)
    )
    others = [level for level in ed_levels if level != 50]
    if others:
        row.update(
            _ed_columns(
                fit, lambda lv: f"ed{lv:g}", others, "relative", conf_level, unit, dose_range
            )
        )
    e, e_se = fit.params.get("e", np.nan), fit.se.get("e", np.nan)
    row["log_ic50"] = fit.log_ic50
    row["log_ic50_se"] = e_se / (e * np.log(10)) if e > 0 else np.nan
    row["hill_slope"] = fit.hill_slope
    row["auc"] = area_under_curve(fit, dose_range) if dose_range else np.nan
    row["activity_area"] = activity_area(fit, 1.0, dose_range) if dose_range else np.nan
    row["rss"] = fit.rss
    row["df_residual"] = fit.df_residual
    row["sigma"] = fit.sigma
    row["aic"] = fit.aic
    if not np.isfinite(fit.covariance.to_numpy()).any() and fit.n > 0:
        # no covariance (Hessian not positive definite): the optimum lies in a flat
        # valley, so the parameters are not identified and their digits depend on
        # floating-point details; they are not reported (byte-stable tables)
        for name in [*get_model(fit.model).param_names, "log_ic50", "hill_slope"]:
            if name not in fit.fixed:
                row[name] = np.nan
        row["auc"] = row["activity_area"] = np.nan
    lof = lack_of_fit(fit) if np.isfinite(fit.rss) else {"f": np.nan, "p": np.nan}
    row["lack_of_fit_f"] = lof["f"]
    row["lack_of_fit_p"] = lof["p"]
    row["flat_p"] = fit.flat_pvalue
    row["conf_level"] = conf_level
    return row


def compare_conditions(
    observations: pd.DataFrame,
    comparisons,
    *,
    drug: str = "T-DM1",
    model: str = "LL.4",
    level: float = 50.0,
    conf_level: float = 0.95,
    fixed: dict | None = None,
) -> pd.DataFrame:
    """ED ratios between conditions of each cell line (drc ``EDcomp``).

    For each line and each ``{numerator, denominator}`` pair, both curves are
    fitted jointly (curve-specific parameters, pooled residual variance, drc
    ``drm(..., curveid)``); the ratio ED_num / ED_den has a delta-method SE,
    a t-based CI on the joint residual df and a t test of ratio = 1. The
    extra-sum-of-squares F test compares one shared ED50 against two.

    Parameters
    ----------
    observations : pandas.DataFrame
        Wells used in the fits (the ``residuals`` table of
        :func:`fit_curves`, outliers flagged in ``outlier`` are left out):
        ``cell_line, condition, drug, concentration, viability``.
    comparisons : sequence of dict
        ``{"numerator": condition, "denominator": condition}``.
    drug : str
    model : str
    level : float
        Relative ED level, percent (50 = IC50).
    conf_level : float
    fixed : dict, optional

    Returns
    -------
    pandas.DataFrame
        One row per line and comparison: ``cell_line, drug, numerator,
        denominator, level, ed_numerator, ed_denominator, ratio, se, lower,
        upper, t, df, p, f_shared_ed50, p_shared_ed50, n, model,
        conf_level``. Pairs without data on a line are left out.
    """
    obs = observations[observations["drug"] == drug]
    if "outlier" in obs.columns:
        obs = obs[~obs["outlier"].astype(bool)]
    rows = []
    for cell_line in sorted(set(obs["cell_line"])):
        line = obs[obs["cell_line"] == cell_line]
        for pair in comparisons:
            num, den = pair["numerator"], pair["denominator"]
            data = line[line["condition"].isin([num, den])]
            if set(data["condition"]) != {num, den}:
                continue
            x = data["concentration"].to_numpy(float)
            y = data["viability"].to_numpy(float)
            lab = data["condition"].to_numpy(str)
            joint = fit_joint(x, y, lab, model=model, fixed=fixed)
            ratio = ed_ratio(joint, curves=(num, den), level=level)
            tq = _t(conf_level, ratio["df"])
            shared = compare_ed50(x, y, lab, model=model, fixed=fixed)
            e = joint.params["e"]
            by_e = level == 50 and model in ("LL.4", "LL.3")  # ED50 = e for log-logistic
            rows.append(
                {
                    "cell_line": cell_line,
                    "drug": drug,
                    "numerator": num,
                    "denominator": den,
                    "level": level,
                    "ed_numerator": float(e[num]) if by_e else np.nan,
                    "ed_denominator": float(e[den]) if by_e else np.nan,
                    "ratio": ratio["ratio"],
                    "se": ratio["se"],
                    "lower": ratio["ratio"] - tq * ratio["se"],
                    "upper": ratio["ratio"] + tq * ratio["se"],
                    "t": ratio["t"],
                    "df": ratio["df"],
                    "p": ratio["p"],
                    "f_shared_ed50": shared["f"],
                    "p_shared_ed50": shared["p"],
                    "n": joint.n,
                    "model": model,
                    "conf_level": conf_level,
                    "converged": joint.converged,
                }
            )
    return pd.DataFrame(rows)
