"""Inverse-probability-of-treatment weighting: propensity scores, weights, balance.

- :func:`propensity_scores`: logistic model of the group on covariates, as R
  ``glm(group ~ covariates, family = binomial)`` (statsmodels GLM, complete
  cases).
- :func:`stabilised_weights`: stabilised ATE weights P(T=t) / P(T=t | x),
  optionally truncated at percentiles.
- :func:`standardised_differences`: standardised mean differences (SMD) of
  every covariate before and after weighting, the balance table of a Love
  plot.

Checked against R on GBSG2 (tests/test_survival_weighting.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sepher.survival.cox import design_matrix


def _treatment(data, group_col, levels):
    """Two-level check; 1.0 for levels[1], 0.0 for levels[0], NaN if missing."""
    if group_col not in data.columns:
        raise ValueError(f"group column {group_col!r} is not a column of the data")
    levels = list(levels)
    if len(levels) != 2 or levels[0] == levels[1]:
        raise ValueError(f"levels must be two distinct group labels; got {levels}")
    group = data[group_col]
    present = group.notna().to_numpy()
    numeric = pd.api.types.is_numeric_dtype(group) and all(
        isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in levels
    )
    if numeric:
        # 0/1 or 1.0/2.0 codes: compare as numbers, not as "1" vs "1.0"
        values = group.to_numpy(dtype=float)
        text = np.array([str(float(v)) for v in values])
        names = [str(float(v)) for v in levels]
    else:
        text = group.astype(str).to_numpy()
        names = [str(v) for v in levels]
    unknown = present & ~np.isin(text, names)
    if unknown.any():
        raise ValueError(
            f"{group_col}: value {text[unknown][0]!r} is not among the levels {levels}"
        )
    treated = np.where(present, (text == names[1]).astype(float), np.nan)
    for name, value in zip(names, (0.0, 1.0), strict=True):
        if not np.any(treated == value):
            raise ValueError(f"{group_col}: no patient in group {name!r}")
    return treated


def propensity_scores(data, group_col, levels, covariates, categorical=None):
    """Propensity of being in ``levels[1]``, from a logistic model on covariates.

    Parameters
    ----------
    data : DataFrame
        One row per patient.
    group_col : str
        Column with the group (treatment) labels.
    levels : sequence of two labels
        Control (reference) first; the modelled probability is that of
        ``levels[1]``.
    covariates : list of str
        Model terms, as :func:`sepher.survival.cox.design_matrix`.
    categorical : dict, optional
        Column -> levels (reference first), as ``design_matrix``.

    Returns
    -------
    ps : Series
        Fitted probabilities, indexed like `data`; NaN for rows with a missing
        group or covariate (complete cases, as R's ``na.omit``).
    table : DataFrame
        Columns ``term, coef, se, p``: the intercept (``"(Intercept)"``) and
        one row per design column (R's names, e.g. ``tgradeII``), with Wald
        p-values. ``table.attrs["n_used"]`` is the number of complete cases.

    Notes
    -----
    statsmodels' GLM (binomial, logit link, IRLS) is R's ``glm`` algorithm;
    the coefficients agree with R to its convergence tolerance.
    """
    treated = _treatment(data, group_col, levels)
    has_group = ~np.isnan(treated)
    sub = data.loc[has_group]
    x, columns, complete = design_matrix(sub, list(covariates), categorical)
    y = treated[has_group][complete]
    if np.unique(y).size < 2:
        raise ValueError("the complete cases contain only one group; cannot fit a propensity model")
    if x.shape[0] <= x.shape[1] + 1:
        raise ValueError(
            f"{x.shape[0]} complete cases for {x.shape[1] + 1} coefficients: "
            "too few to fit a propensity model"
        )
    import statsmodels.api as sm  # imported here: ~1-2 s, only the propensity model needs it

    fit = sm.GLM(y, sm.add_constant(x, has_constant="add"), family=sm.families.Binomial()).fit()
    fitted = np.full(len(data), np.nan)
    rows = np.flatnonzero(has_group)[complete]
    fitted[rows] = fit.fittedvalues
    ps = pd.Series(fitted, index=data.index, name="ps")
    table = pd.DataFrame(
        {
            "term": ["(Intercept)"] + [c["column"] for c in columns],
            "coef": np.asarray(fit.params, dtype=float),
            "se": np.asarray(fit.bse, dtype=float),
            "p": np.asarray(fit.pvalues, dtype=float),
        }
    )
    table.attrs["n_used"] = int(rows.size)
    return ps, table


def stabilised_weights(treated, ps, truncate=None):
    """Stabilised inverse-probability-of-treatment (ATE) weights.

    Parameters
    ----------
    treated : array_like of {0, 1} or bool
        1 / True for the group whose probability `ps` is.
    ps : array_like of float
        Propensity scores in (0, 1); NaN (no score, e.g. a missing covariate)
        gives a NaN weight.
    truncate : (float, float), optional
        Lower and upper percentiles (0-100), e.g. ``(1, 99)``: weights below
        / above these percentiles of the weights are set to them (numpy's
        linear interpolation, R's ``quantile`` type 7). Default: none.

    Returns
    -------
    ndarray
        w = P(T=1) / ps for treated and P(T=0) / (1 - ps) for controls, where
        P(T=1) is the proportion treated among patients with a score.
    """
    ps = np.asarray(ps, dtype=float).ravel()
    treated = np.asarray(treated).ravel()
    if treated.shape != ps.shape:
        raise ValueError(f"treated ({treated.size}) and ps ({ps.size}) differ in length")
    t = np.asarray(treated, dtype=float)
    if not np.all((t == 0) | (t == 1)):
        raise ValueError("treated must be 0/1 or boolean with no missing values")
    scored = ~np.isnan(ps)
    if not scored.any():
        raise ValueError("ps has no non-missing value")
    if np.any((ps[scored] <= 0) | (ps[scored] >= 1)):
        raise ValueError("ps must lie strictly between 0 and 1")
    p1 = t[scored].mean()
    if p1 in (0.0, 1.0):
        raise ValueError("all patients with a propensity score are in one group")
    with np.errstate(invalid="ignore"):
        weights = np.where(t == 1, p1 / ps, (1 - p1) / (1 - ps))
    if truncate is not None:
        lower_pct, upper_pct = (float(v) for v in truncate)
        if not 0 <= lower_pct < upper_pct <= 100:
            raise ValueError(
                f"truncate must be (lower, upper) percentiles with 0 <= lower < upper <= 100; "
                f"got {tuple(truncate)}"
            )
        low, high = np.percentile(weights[scored], [lower_pct, upper_pct])
        weights = np.where(scored, np.clip(weights, low, high), np.nan)
    return weights


def _weighted_moments(x, w):
    """Weighted mean and variance sum w (x - m)^2 / sum w."""
    mean = np.sum(w * x) / np.sum(w)
    return mean, np.sum(w * (x - mean) ** 2) / np.sum(w)


def _smd(x, treated, w):
    """Standardised difference, treated minus control, pooled weighted variance."""
    with np.errstate(divide="ignore", invalid="ignore"):
        m1, v1 = _weighted_moments(x[treated], w[treated])
        m0, v0 = _weighted_moments(x[~treated], w[~treated])
        return float((m1 - m0) / np.sqrt((v1 + v0) / 2))


def standardised_differences(data, group_col, levels, covariates, categorical=None, weights=None):
    """Standardised mean differences of covariates between two groups.

    Parameters
    ----------
    data : DataFrame
        One row per patient.
    group_col : str
        Column with the group labels.
    levels : sequence of two labels
        Control first; differences are ``levels[1]`` minus ``levels[0]``.
    covariates : list of str
        Columns to compare; numeric unless listed in `categorical`.
    categorical : dict, optional
        Column -> levels (reference first): each non-reference level is
        compared as a 0/1 indicator (a difference of proportions).
    weights : array_like of float, optional
        Weights per row of `data` (e.g. :func:`stabilised_weights`); rows with
        a NaN weight are left out of the weighted SMD.

    Returns
    -------
    DataFrame
        One row per numeric covariate (``level`` = "") and per non-reference
        level of each categorical one; columns ``covariate, level,
        smd_unweighted, smd_weighted`` (NaN without `weights`).

    Notes
    -----
    SMD = (m1 - m0) / sqrt((v1 + v0) / 2), with per-group weighted means
    m = sum w x / sum w and weighted variances v = sum w (x - m)^2 / sum w
    (no small-sample correction; w = 1 for the unweighted SMD). For a 0/1
    indicator v = p (1 - p), the usual SMD of proportions. Each covariate
    uses the rows where it and the group are observed. This is the
    pooled-variance, weighted-moment SMD of the R reference numbers.
    """
    treated_all = _treatment(data, group_col, levels)
    if weights is not None:
        weights = np.asarray(weights, dtype=float).ravel()
        if weights.size != len(data):
            raise ValueError(f"weights ({weights.size}) and data ({len(data)}) differ in length")
        finite = weights[~np.isnan(weights)]
        if np.any(~np.isfinite(finite)) or np.any(finite < 0):
            raise ValueError("weights must be finite and >= 0 (NaN marks a row left out)")
    has_group = ~np.isnan(treated_all)
    sub = data.loc[has_group]
    rows = []
    for covariate in covariates:
        x, columns, complete = design_matrix(sub, [covariate], categorical)
        treated = treated_all[has_group][complete] == 1
        w = None if weights is None else weights[has_group][complete]
        for j, column in enumerate(columns):
            values = x[:, j]
            unweighted = _smd(values, treated, np.ones_like(values))
            weighted = np.nan
            if w is not None:
                ok = ~np.isnan(w)
                weighted = _smd(values[ok], treated[ok], w[ok])
            rows.append(
                {
                    "covariate": covariate,
                    "level": column["level"],
                    "smd_unweighted": unweighted,
                    "smd_weighted": weighted,
                }
            )
    return pd.DataFrame(rows, columns=["covariate", "level", "smd_unweighted", "smd_weighted"])
