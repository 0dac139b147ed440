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
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import chi2, rankdata

from sepher.survival.cox import RiskSets
from sepher.survival.km import kaplan_meier

TRANSFORMS = ("km", "identity", "rank", "log")


def transformed_time(time, event, transform="km"):
    """g(t) of cox.zph for every observation, before centring.

    Parameters
    ----------
    time : ndarray of float
        Follow-up times of all observations.
    event : ndarray of {0, 1}
        Event indicators.
    transform : {"km", "identity", "rank", "log"}
        ``"km"``: 1 - KM(t-) of the pooled data (left-continuous);
        ``"rank"``: average rank of t among all observations;
        ``"identity"``: t; ``"log"``: log t.

    Returns
    -------
    ndarray of float
    """
    time = np.asarray(time, dtype=float)
    if transform == "identity":
        return time.copy()
    if transform == "rank":
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
    risk_sets = RiskSets(result.time, result.event, result.ties)
    xs = (result.design - result.means)[risk_sets.order]
    eta = xs @ result.beta
    sums = risk_sets.sums(xs, eta)
    ttimes = transformed_time(result.time, result.event, transform)
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
        rows.append({"term": term, "chisq": stat, "df": len(cols), "p": chi2.sf(stat, len(cols))})
    stat = float(u @ np.linalg.solve(info, u))
    rows.append({"term": "GLOBAL", "chisq": stat, "df": p, "p": chi2.sf(stat, p)})
    return pd.DataFrame(rows)


def scaled_schoenfeld(result, transform="km", terms=False):
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

    Returns
    -------
    DataFrame
        One row per event, in time order: ``time``, ``transformed_time``
        (g(t), uncentred) and one column per coefficient (or term):
        residual * var * n_events + beta, i.e. beta(t) estimates whose trend
        against g(t) shows non-proportional hazards.
    """
    risk_sets, xs, s, _, ttimes = _zph_parts(result, transform)
    p = xs.shape[1]
    # Schoenfeld residual: x minus the mean of the Efron weighted means of its tie block
    block_mean = risk_sets.block_mean(s)
    resid = xs[risk_sets.event_rows] - block_mean[risk_sets.event_time_of_event]
    info = risk_sets.information(xs, s)
    n_events = risk_sets.n_events
    vmean = info / n_events
    if terms:
        collapse = np.zeros((p, len(result.terms)))
        shift = np.zeros(len(result.terms))
        names = list(result.terms)
        for t, term in enumerate(result.terms):
            cols = [k for k, c in enumerate(result.columns) if result.column_term[c] == term]
            if len(cols) == 1:
                collapse[cols[0], t] = 1.0
                shift[t] = result.beta[cols[0]]
            else:
                collapse[cols, t] = result.beta[cols]
                shift[t] = 1.0
        resid = resid @ collapse
        vmean = collapse.T @ vmean @ collapse
    else:
        names = list(result.columns)
        shift = result.beta
    scaled = np.linalg.solve(vmean, resid.T).T + shift
    frame = pd.DataFrame(scaled, columns=names)
    frame.insert(0, "transformed_time", ttimes[risk_sets.order][risk_sets.event_rows])
    frame.insert(0, "time", risk_sets.time[risk_sets.event_rows])
    return frame
