"""Kaplan-Meier estimator, medians and numbers at risk, as R survival 3.5-3.

The curve is R's ``survfit(Surv(time, event) ~ 1)`` with a time-0 row added
(as ``survfit0`` does): one row per distinct event or censoring time, the
Greenwood standard error of log S (R's ``std.err``) and pointwise confidence
limits of type ``"log-log"``, ``"log"`` (R's default) or ``"plain"``.
Medians follow ``quantile.survfit``: the first time S <= 0.5, the midpoint of
a flat stretch where S equals 0.5 exactly, and the same rule applied to the
lower and upper confidence curves for the median's confidence limits.

Everything is vectorised (sorting plus cumulative sums): a million patients
take well under a second.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

#: R's tolerance for "S equals 0.5 exactly" in quantile.survfit.
MEDIAN_TOLERANCE = float(np.sqrt(np.finfo(float).eps))

CONF_TYPES = ("log-log", "log", "plain")


def _check_time_event(time, event):
    """Validated float times (>= 0) and 0/1 integer events as arrays."""
    time = np.asarray(time, dtype=float).ravel()
    event = np.asarray(event).ravel()
    if time.shape != event.shape:
        raise ValueError(f"time ({time.size}) and event ({event.size}) differ in length")
    if not np.all(np.isfinite(time)):
        raise ValueError("time contains missing or infinite values; drop incomplete rows first")
    if np.any(time < 0):
        raise ValueError(f"time must be >= 0; smallest value is {time.min()}")
    event_num = np.asarray(event, dtype=float)
    if not np.all((event_num == 0) | (event_num == 1)):
        bad = event[~((event_num == 0) | (event_num == 1))][0]
        raise ValueError(f"event must be 0 (censored) or 1 (event); found {bad!r}")
    return time, event_num.astype(np.int64)


def confidence_limits(surv, std_err, conf_type="log-log", conf_level=0.95):
    """Pointwise confidence limits of a survival curve, as R ``survfit``.

    Parameters
    ----------
    surv : array_like
        Survival probabilities S(t).
    std_err : array_like
        Standard error of log S(t) (Greenwood; R's ``std.err``).
    conf_type : {"log-log", "log", "plain"}
        ``"log"``: exp(log S -/+ z se); ``"log-log"``: S^exp(-/+ z se / log S);
        ``"plain"``: S -/+ z se S.
    conf_level : float
        Two-sided confidence level, e.g. 0.95.

    Returns
    -------
    lower, upper : ndarray
        Limits clipped to [0, 1]; NaN where S = 0 (as R). Where S = 1 both
        limits are 1 (R 3.5-3 leaves the log-log limits NA there; 1 is the
        limit of its formula and draws a sensible band).
    """
    if conf_type not in CONF_TYPES:
        raise ValueError(f"conf_type must be one of {CONF_TYPES}; got {conf_type!r}")
    if not 0 < conf_level < 1:
        raise ValueError(f"conf_level must be between 0 and 1; got {conf_level!r}")
    surv = np.asarray(surv, dtype=float)
    se = np.asarray(std_err, dtype=float)
    z = norm.ppf(1 - (1 - conf_level) / 2)
    zero = surv <= 0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if conf_type == "plain":
            half = z * se * surv
            lower = np.maximum(surv - half, 0.0)
            upper = np.minimum(surv + half, 1.0)
        elif conf_type == "log":
            log_s = np.log(np.where(zero, np.nan, surv))
            lower = np.exp(log_s - z * se)
            upper = np.minimum(np.exp(log_s + z * se), 1.0)
        else:
            inner = (surv > 0) & (surv < 1)
            s = np.where(inner, surv, 0.5)
            log_s = np.log(s)
            shift = z * se / log_s
            lower = np.exp(-np.exp(np.log(-log_s) - shift))
            upper = np.exp(-np.exp(np.log(-log_s) + shift))
            lower = np.where(inner, lower, 1.0)
            upper = np.where(inner, upper, 1.0)
    lower = np.where(zero, np.nan, lower)
    upper = np.where(zero, np.nan, upper)
    one = surv >= 1
    lower = np.where(one, 1.0, lower)
    upper = np.where(one, 1.0, upper)
    return lower, upper


def kaplan_meier(time, event, conf_type="log-log", conf_level=0.95):
    """Kaplan-Meier survival curve with Greenwood confidence limits.

    Parameters
    ----------
    time : array_like of float
        Follow-up times (any unit, e.g. months), >= 0.
    event : array_like of {0, 1}
        1 = event observed at `time`, 0 = censored at `time`.
    conf_type : {"log-log", "log", "plain"}
        Confidence-interval transform, as R ``survfit(conf.type=)``. The
        default log-log is also lifelines' only kind; R's default is "log".
    conf_level : float
        Two-sided confidence level.

    Returns
    -------
    DataFrame
        Columns ``time, n_risk, n_event, n_censor, surv, std_err, lower,
        upper``: a first row at time 0 (S = 1, limits 1) and then one row per
        distinct observed time, in increasing order. ``std_err`` is the
        Greenwood standard error of log S (R's ``std.err``; infinite once
        S = 0, where the limits are NaN).

    Notes
    -----
    Greenwood: var(log S(t)) = sum over event times u <= t of
    d_u / (n_u (n_u - d_u)).

    Examples
    --------
    >>> curve = kaplan_meier([1, 2, 3, 4], [1, 1, 1, 1])
    >>> curve["surv"].tolist()
    [1.0, 0.75, 0.5, 0.25, 0.0]
    """
    time, event = _check_time_event(time, event)
    if time.size == 0:
        raise ValueError("no observations")
    unique_time, index = np.unique(time, return_inverse=True)
    n_at_time = np.bincount(index, minlength=unique_time.size)
    n_event = np.bincount(index, weights=event, minlength=unique_time.size).astype(np.int64)
    n_censor = n_at_time - n_event
    n_risk = np.cumsum(n_at_time[::-1])[::-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        surv = np.cumprod(1.0 - n_event / n_risk)
        greenwood = np.where(
            n_event > 0, n_event / (n_risk * (n_risk - n_event).astype(float)), 0.0
        )
    std_err = np.sqrt(np.cumsum(greenwood))
    lower, upper = confidence_limits(surv, std_err, conf_type, conf_level)
    curve = pd.DataFrame(
        {
            "time": np.concatenate([[0.0], unique_time]),
            "n_risk": np.concatenate([[time.size], n_risk]).astype(np.int64),
            "n_event": np.concatenate([[0], n_event]).astype(np.int64),
            "n_censor": np.concatenate([[0], n_censor]).astype(np.int64),
            "surv": np.concatenate([[1.0], surv]),
            "std_err": np.concatenate([[0.0], std_err]),
            "lower": np.concatenate([[1.0], lower]),
            "upper": np.concatenate([[1.0], upper]),
        }
    )
    return curve


def _findq(x, surv, p=0.5, tol=MEDIAN_TOLERANCE):
    """R's ``findq``: time where the curve `surv` first reaches 1 - p.

    `x` starts with the curve's origin (time 0, S = 1). NaN values of `surv`
    are skipped as R's ``approx`` does; NaN if the curve never gets there.
    """
    x = np.asarray(x, dtype=float)
    cdf = 1.0 - np.asarray(surv, dtype=float)
    if x.size == 0 or np.all(np.isnan(cdf)) or np.nanmax(cdf) < p:
        return np.nan
    xmax = x[-1]
    # drop repeated values (censorings; all NaN count as one value, as R's duplicated)
    keep = ~pd.Series(cdf).duplicated().to_numpy()
    x, cdf = x[keep], cdf[keep]
    n = cdf.size
    valid = ~np.isnan(cdf)
    positions = np.flatnonzero(valid)
    knots = cdf[valid]
    order = np.argsort(knots, kind="stable")
    knots, positions = knots[order], positions[order]

    def constant_right(shift):
        # approx(knots + shift, positions, p, method="constant", f=1)
        xs = knots + shift
        if p < xs[0] or p > xs[-1]:
            return None
        return positions[np.searchsorted(xs, p, side="left")]

    i1 = constant_right(tol)
    i2 = constant_right(-tol)
    if not np.isnan(cdf[n - 1]) and abs(p - cdf[n - 1]) < tol:
        return (x[i1] + xmax) / 2 if i1 is not None else np.nan
    if i1 is None or i2 is None:
        return np.nan
    return (x[i1] + x[i2]) / 2


def km_median(curve, tolerance=MEDIAN_TOLERANCE):
    """Median survival time and its confidence interval, as R ``survfit``.

    Parameters
    ----------
    curve : DataFrame
        Output of :func:`kaplan_meier` (columns ``time, surv, lower, upper``).
    tolerance : float
        Values of S within this of 0.5 count as exactly 0.5 (R:
        ``sqrt(.Machine$double.eps)``).

    Returns
    -------
    dict
        ``median``, ``lower``, ``upper`` in the unit of ``time``. The median
        is the first time S <= 0.5, or the midpoint of the stretch where S is
        exactly 0.5 (to the last time if the curve ends there). ``lower``
        applies the same rule to the lower confidence curve, ``upper`` to the
        upper one. NaN where the curve never reaches 0.5.

    Examples
    --------
    >>> km_median(kaplan_meier([1, 2, 3, 4], [1, 1, 1, 1]))["median"]
    2.5
    """
    x = curve["time"].to_numpy(float)
    return {
        "median": float(_findq(x, curve["surv"].to_numpy(float), 0.5, tolerance)),
        "lower": float(_findq(x, curve["lower"].to_numpy(float), 0.5, tolerance)),
        "upper": float(_findq(x, curve["upper"].to_numpy(float), 0.5, tolerance)),
    }


def survival_at(curve, times, column="surv"):
    """Evaluate a Kaplan-Meier step function at given times.

    Parameters
    ----------
    curve : DataFrame
        Output of :func:`kaplan_meier`.
    times : array_like of float
        Times at which to read the curve (same unit as ``curve["time"]``).
    column : str
        Column to read: ``"surv"`` (default), ``"lower"`` or ``"upper"``.

    Returns
    -------
    ndarray
        Right-continuous value at each time: the row with the largest
        ``time <= t``. 1 before time 0; NaN after the last observed time
        (the curve is unknown there, as R ``summary(fit, times)``).
    """
    t = np.asarray(curve["time"], dtype=float)
    values = np.asarray(curve[column], dtype=float)
    times = np.asarray(times, dtype=float)
    row = np.searchsorted(t, times, side="right") - 1
    out = values[np.clip(row, 0, None)]
    out = np.where(row < 0, 1.0, out)
    return np.where(times > t[-1], np.nan, out)


def number_at_risk(time, times_grid):
    """Number of patients still at risk (time >= t) at each grid time.

    Parameters
    ----------
    time : array_like of float
        Follow-up times of the patients (event or censoring).
    times_grid : array_like of float
        Times of the at-risk table (same unit).

    Returns
    -------
    ndarray of int
        Count of ``time >= t`` for each ``t`` in `times_grid` (R's
        ``n.risk`` convention: a patient with an event or censoring at t is
        still at risk at t).
    """
    sorted_time = np.sort(np.asarray(time, dtype=float))
    grid = np.asarray(times_grid, dtype=float)
    return (sorted_time.size - np.searchsorted(sorted_time, grid, side="left")).astype(np.int64)
