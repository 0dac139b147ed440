"""Test of proportional hazards, as R ``cox.zph`` (survival >= 3.0).

R >= 3.0 replaced the old regression on scaled Schoenfeld residuals by a
score test: add p covariates x * g(t) to the fitted model, where g is a
transform of time centred over the events, and test their coefficients at
(beta_hat, 0) with the score vector U and the full 2p x 2p information I
(same tie method as the fit). Per term: U_k' I_kk^-1 U_k over the rows and
columns of all p original coefficients plus the term's added ones (df =
number of the term's columns); GLOBAL: all added ones (df = p).

Because g depends on time only, the added covariates share the risk-set
sums of the fit: with I_j the information contributed at event time t_j,
I = [[sum I_j, sum g_j I_j], [sum g_j I_j, sum g_j^2 I_j]], which costs three
weighted passes of :class:`sepher.survival.cox.RiskSets`.

Stratified, delayed-entry and case-weighted fits are handled as R's ``zph1``
/ ``zph2`` do: the risk sets, tied-event blocks and Schoenfeld residuals are
those of the fit (within strata, entry < t <= time, weighted sums), g(t) is
the transform of the exit time pooled over strata (for ``"km"``: the
unweighted Kaplan-Meier of ``Surv(entry, time, event)``), centred on its
unweighted mean over the events. The scaled Schoenfeld residuals are rescaled
within each stratum by the information averaged over the events of the strata
where a covariate varies, as ``cox.zph``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sepher.survival.cox import RiskSets
from sepher.survival.distributions import chi2_sf
from sepher.survival.km import kaplan_meier

TRANSFORMS = ("km", "identity", "rank", "log")


def _left_truncated_km_before(time, event, entry):
    """S(t-) of the Kaplan-Meier of ``Surv(entry, time, event)`` at every exit time."""
    event_time = np.unique(time[event == 1])
    deaths = np.bincount(
        np.searchsorted(event_time, time[event == 1]), minlength=event_time.size
    ).astype(float)
    at_risk = np.searchsorted(np.sort(time), event_time, side="left")
    entered = np.searchsorted(np.sort(entry), event_time, side="left")
    n_risk = (time.size - at_risk) - (entry.size - entered)  # entry < t <= time
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(n_risk > 0, 1.0 - deaths / n_risk, 1.0)
    surv = np.concatenate([[1.0], np.cumprod(factor)])
    return surv[np.searchsorted(event_time, time, side="left")]


def transformed_time(time, event, transform="km", entry=None):
    """g(t) of cox.zph for every observation, before centring.

    Parameters
    ----------
    time : ndarray of float
        Follow-up (exit) times of all observations.
    event : ndarray of {0, 1}
        Event indicators.
    transform : {"km", "identity", "rank", "log"}
        ``"km"``: 1 - KM(t-) of the pooled data (left-continuous);
        ``"rank"``: average rank of t among all observations;
        ``"identity"``: t; ``"log"``: log t.
    entry : ndarray of float, optional
        Entry times; the ``"km"`` curve is then the left-truncated
        Kaplan-Meier (risk set entry < t <= time), as R's ``survfitKM`` on
        ``Surv(entry, time, event)``.

    Returns
    -------
    ndarray of float
    """
    time = np.asarray(time, dtype=float)
    if transform == "km" and entry is not None:
        event = np.asarray(event, dtype=np.int64)
        return 1.0 - _left_truncated_km_before(time, event, np.asarray(entry, dtype=float))
    if transform == "identity":
        return time.copy()
    if transform == "rank":
        from scipy.stats import rankdata  # only for transform="rank"

        return rankdata(time, method="average")
    if transform == "log":
        return np.log(time)
    if transform == "km":
        curve = kaplan_meier(time, event, conf_type="plain")
        curve_time = curve["time"].to_numpy()[1:]
        surv = curve["surv"].to_numpy()[1:]
        # number of curve times strictly below t -> S(t-)
        below = np.searchsorted(curve_time, time, side="left")
        return 1.0 - np.concatenate([[1.0], surv])[below]
    raise ValueError(f"transform must be one of {TRANSFORMS}; got {transform!r}")


def _zph_parts(result, transform):
    """Sorted risk sets, centred design, sums at beta_hat and centred g per event time."""
    if result.design is None or result.design.shape[1] == 0:
        raise ValueError("cox_zph needs a fitted model with at least one coefficient")
    entry = getattr(result, "entry", None)
    risk_sets = RiskSets(
        result.time,
        result.event,
        result.ties,
        entry=entry,
        strata=getattr(result, "strata", None),
        weights=getattr(result, "weights", None),
    )
    xs = (result.design - result.means)[risk_sets.order]
    eta = xs @ result.beta
    sums = risk_sets.sums(xs, eta)
    ttimes = transformed_time(result.time, result.event, transform, entry=entry)
    gtime = ttimes - ttimes[result.event == 1].mean()
    g_sorted = gtime[risk_sets.order]
    # g at each distinct event time (equal for tied events)
    g_event_time = g_sorted[risk_sets.event_rows][risk_sets.event_block_start]
    return risk_sets, xs, sums, g_event_time, ttimes


def cox_zph(result, transform="km"):
    """Proportional-hazards score test per term and globally, as R ``cox.zph``.

    Parameters
    ----------
    result : CoxResult
        Output of :func:`sepher.survival.cox.fit_cox`.
    transform : {"km", "identity", "rank", "log"}
        Time transform g(t) (R default "km").

    Returns
    -------
    DataFrame
        Columns ``term, chisq, df, p``: one row per model term (a factor's df
        is its number of dummy columns) and a final ``GLOBAL`` row (df = p).

    Notes
    -----
    Works for stratified, delayed-entry (``entry_col``) and case-weighted
    fits exactly as R's ``cox.zph`` (``zph1`` / ``zph2``); strata never
    appear as terms.
    """
    risk_sets, xs, s, g, _ = _zph_parts(result, transform)
    p = xs.shape[1]
    # score of the added covariates x * g(t)
    u_added = risk_sets.score(xs, s, time_weight=g)
    i11 = risk_sets.information(xs, s)
    i12 = risk_sets.information(xs, s, time_weight=g)
    i22 = risk_sets.information(xs, s, time_weight=g * g)
    info = np.block([[i11, i12], [i12.T, i22]])
    u = np.concatenate([np.zeros(p), u_added])
    rows = []
    for term in result.terms:
        cols = [k for k, c in enumerate(result.columns) if result.column_term[c] == term]
        keep = np.concatenate([np.arange(p), p + np.asarray(cols)])
        uk = u[keep]
        stat = float(uk @ np.linalg.solve(info[np.ix_(keep, keep)], uk))
        rows.append({"term": term, "chisq": stat, "df": len(cols), "p": chi2_sf(stat, len(cols))})
    stat = float(u @ np.linalg.solve(info, u))
    rows.append({"term": "GLOBAL", "chisq": stat, "df": p, "p": chi2_sf(stat, p)})
    return pd.DataFrame(rows)


def _used_events(result, risk_sets):
    """R's ``used``: per stratum and column, the stratum's events if the column varies there."""
    x = result.design[risk_sets.order]
    n_strata = int(risk_sets.stratum.max()) + 1 if risk_sets.n else 1
    used = np.zeros((n_strata, x.shape[1]))
    bounds = np.searchsorted(risk_sets.stratum, np.arange(n_strata + 1))
    for k in range(n_strata):  # loop over strata only
        rows = slice(bounds[k], bounds[k + 1])
        block = x[rows]
        if block.shape[0] == 0:
            continue
        varies = np.any(block != block[0], axis=0)
        used[k] = varies * risk_sets.event[rows].sum()
    return used


def scaled_schoenfeld(result, transform="km", terms=False, stratum_column=False):
    """Scaled Schoenfeld residuals (R ``cox.zph(fit)$y``) for PH diagnostic plots.

    Parameters
    ----------
    result : CoxResult
        Output of :func:`sepher.survival.cox.fit_cox`.
    transform : {"km", "identity", "rank", "log"}
        Time transform reported in ``transformed_time``.
    terms : bool
        False (default): one column per coefficient, R's
        ``cox.zph(fit, terms = FALSE)$y``. True: one column per term, R's
        default, a factor collapsed onto its linear predictor (centred on 1).
    stratum_column : bool
        Add a ``stratum`` column (the stratum label, R's ``cox.zph()$strata``)
        after ``transformed_time`` for a stratified fit. Off by default so the
        frame keeps ``time, transformed_time`` + coefficient columns.

    Returns
    -------
    DataFrame
        One row per event, in R's order (by stratum, then time; tied events
        of a delayed-entry fit in reverse data order, as R's ``zph2``):
        ``time``, ``transformed_time`` (g(t), uncentred), optionally
        ``stratum``, and one column per coefficient (or term):
        residual * var * n_events + beta, i.e. beta(t) estimates whose trend
        against g(t) shows non-proportional hazards. In a stratified fit the
        residuals are rescaled within each stratum (R's ``used`` weighting);
        a covariate constant within a stratum is NaN there.
    """
    risk_sets, xs, s, _, ttimes = _zph_parts(result, transform)
    p = xs.shape[1]
    # Schoenfeld residual: x minus the mean of the Efron weighted means of its tie block
    block_mean = risk_sets.block_mean(s)
    event_rows = risk_sets.event_rows
    if getattr(result, "entry", None) is not None:
        # R (zph2) lists tied events in reverse data order
        block = risk_sets.event_time_of_event
        start = risk_sets.event_block_start[block]
        end = start + risk_sets.deaths[block]
        event_rows = event_rows[start + end - 1 - np.arange(event_rows.size)]
    resid = xs[event_rows] - block_mean[risk_sets.event_time_of_event]
    info = risk_sets.information(xs, s)
    used = _used_events(result, risk_sets)
    if terms:
        for term in result.terms:
            cols = [k for k, c in enumerate(result.columns) if result.column_term[c] == term]
            if len(cols) > 1 and np.any(used[:, cols] == 0):
                used[:, cols] = used[:, cols].max(axis=1, keepdims=True)
    weight = sum(np.minimum.outer(row, row) for row in used)
    vmean = info / np.where(weight == 0, 1, weight)
    if terms:
        collapse = np.zeros((p, len(result.terms)))
        shift = np.zeros(len(result.terms))
        names = list(result.terms)
        first = []
        for t, term in enumerate(result.terms):
            cols = [k for k, c in enumerate(result.columns) if result.column_term[c] == term]
            first.append(cols[0])
            if len(cols) == 1:
                collapse[cols[0], t] = 1.0
                shift[t] = result.beta[cols[0]]
            else:
                collapse[cols, t] = result.beta[cols]
                shift[t] = 1.0
        resid = resid @ collapse
        vmean = collapse.T @ vmean @ collapse
        used = used[:, first]
    else:
        names = list(result.columns)
        shift = result.beta
    event_stratum = risk_sets.stratum[event_rows]
    scaled = np.full(resid.shape, np.nan)
    for k in range(used.shape[0]):  # loop over strata only
        rows = event_stratum == k
        cols = np.flatnonzero(used[k] > 0)
        if cols.size and rows.any():
            scaled[np.ix_(rows, cols)] = np.linalg.solve(
                vmean[np.ix_(cols, cols)], resid[np.ix_(rows, cols)].T
            ).T
    scaled = scaled + shift
    frame = pd.DataFrame(scaled, columns=names)
    if stratum_column and getattr(result, "strata", None) is not None:
        labels = np.asarray(result.strata_levels, dtype=object)
        frame.insert(0, "stratum", labels[event_stratum])
    frame.insert(0, "transformed_time", ttimes[risk_sets.order][event_rows])
    frame.insert(0, "time", risk_sets.time[event_rows])
    return frame
