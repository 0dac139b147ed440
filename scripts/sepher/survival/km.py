"""Kaplan-Meier estimator, medians and numbers at risk, as R survival 3.5-3.

The curve is R's ``survfit(Surv(time, event) ~ 1)`` with a time-0 row added
(as ``survfit0`` does): one row per distinct event or censoring time, the
Greenwood standard error of log S (R's ``std.err``) and pointwise confidence
limits of type ``"log-log"``, ``"log"`` (R's default) or ``"plain"``.
Medians follow ``quantile.survfit``: the first time S <= 0.5, the midpoint of
a flat stretch where S equals 0.5 exactly, and the same rule applied to the
lower and upper confidence curves for the median's confidence limits.

Delayed entry (``Surv(entry, time, event)``) and case weights (``weights =``,
with Greenwood or R's robust infinitesimal-jackknife error) change only the
risk sets and counts. :func:`rmst` and :func:`rmst_difference` give R's
restricted mean (``print(fit, rmean = h)``), :func:`reverse_km_followup` the
reverse-KM median follow-up.

Everything is vectorised (sorting plus cumulative sums): a million patients
take well under a second.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sepher.survival.distributions import norm_ppf, norm_sf

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
    z = norm_ppf(1 - (1 - conf_level) / 2)
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


def _group_codes(group, levels):
    """Integer codes 0..k-1 and the level list (given order, else sorted)."""
    group = pd.Series(np.asarray(group, dtype=object).ravel())
    if group.isna().any():
        raise ValueError("group contains missing values; drop incomplete rows first")
    if levels is None:
        levels = sorted(group.unique().tolist(), key=lambda v: (str(type(v)), v))
    levels = list(levels)
    if len(set(levels)) != len(levels):
        raise ValueError(f"levels must be distinct; got {levels}")
    codes = pd.Categorical(group, categories=levels).codes.astype(np.int64)
    if np.any(codes < 0):
        unknown = sorted({str(v) for v in group[codes < 0]})
        raise ValueError(f"group values {unknown} are not among levels {levels}")
    return codes, levels


def _check_entry(entry, time):
    """Validated float entry times: finite, >= 0 and strictly before `time`."""
    entry = np.asarray(entry, dtype=float).ravel()
    if entry.shape != time.shape:
        raise ValueError(f"entry ({entry.size}) and time ({time.size}) differ in length")
    if not np.all(np.isfinite(entry)):
        raise ValueError("entry contains missing or infinite values; drop incomplete rows first")
    if np.any(entry < 0):
        raise ValueError(f"entry must be >= 0; smallest value is {entry.min()}")
    late = entry >= time
    if np.any(late):
        i = int(np.flatnonzero(late)[0])
        raise ValueError(
            f"entry must be before time (R's Surv(entry, time) needs entry < time); "
            f"{int(late.sum())} rows are not, e.g. row {i}: entry {entry[i]} >= time {time[i]}"
        )
    return entry


def _check_weights(weights, time):
    """Validated float case weights: finite, >= 0, not all zero."""
    weights = np.asarray(weights, dtype=float).ravel()
    if weights.shape != time.shape:
        raise ValueError(f"weights ({weights.size}) and time ({time.size}) differ in length")
    if not np.all(np.isfinite(weights)):
        raise ValueError("weights contain missing or infinite values")
    if np.any(weights < 0):
        raise ValueError(f"weights must be >= 0; smallest value is {weights.min()}")
    if not np.any(weights > 0):
        raise ValueError("weights are all zero")
    return weights


def _risk_counts(time, event, entry=None, weights=None):
    """Distinct times and the (weighted) numbers at risk, with events, censored.

    At risk at t: ``entry < t <= time`` (everyone with ``time >= t`` when
    `entry` is None). Integer counts without `weights`, float sums with them.
    """
    unique_time, index = np.unique(time, return_inverse=True)
    m = unique_time.size
    if weights is None:
        n_at_time = np.bincount(index, minlength=m)
        n_event = np.bincount(index, weights=event, minlength=m).astype(np.int64)
    else:
        n_at_time = np.bincount(index, weights=weights, minlength=m)
        n_event = np.bincount(index, weights=weights * event, minlength=m)
    n_censor = n_at_time - n_event
    n_risk = np.cumsum(n_at_time[::-1])[::-1]
    if entry is not None:
        order = np.argsort(entry, kind="stable")
        sorted_entry = entry[order]
        if weights is None:
            entered_late = entry.size - np.searchsorted(sorted_entry, unique_time, side="left")
        else:
            sorted_weights = weights[order]
            # total weight of entries >= t: a reversed cumulative sum
            tail = np.concatenate([np.cumsum(sorted_weights[::-1])[::-1], [0.0]])
            entered_late = tail[np.searchsorted(sorted_entry, unique_time, side="left")]
        n_risk = n_risk - entered_late
    return unique_time, n_risk, n_event, n_censor


def _jackknife_se_log_surv(time, event, entry, weights, unique_time, n_risk, n_event, surv):
    """Infinitesimal-jackknife se(S)/S at each distinct time, as R ``robust = TRUE``.

    R's survfitkm C code updates every patient's influence on S at each event
    time (O(patients x times)). Written as sums instead: the influence of
    patient k on S(t) is -S(t) A_k(t) with A_k(t) = w_k sum over event times
    u <= t with entry_k < u <= time_k of (dN_k(u) - d_u / n_u) / (n_u - d_u),
    so se(S)/S = sqrt(sum_k A_k(t)^2). With C the cumulative Greenwood sum,
    A_k(t) = -w_k (C(t) - C(entry_k)) while k is at risk past t and the
    constant w_k (event_k / (n - d)(time_k) - C(time_k) + C(entry_k)) after
    its exit, which gives the sum over k by sorting and cumulative sums.
    """
    w = np.ones(time.size) if weights is None else weights
    e = np.zeros(time.size) if entry is None else entry
    with np.errstate(divide="ignore", invalid="ignore"):
        has_event = n_event > 0
        c = np.where(has_event, n_event / (n_risk * (n_risk - n_event)), 0.0)
        g = np.where(has_event, 1.0 / (n_risk - n_event), 0.0)
    cum = np.cumsum(c)
    cum0 = np.concatenate([[0.0], cum])
    # C at each patient's entry (event times <= entry) and exit
    c_entry = cum0[np.searchsorted(unique_time, e, side="right")]
    exit_index = np.searchsorted(unique_time, time, side="left")
    with np.errstate(invalid="ignore"):
        dn_term = np.where(event == 1, g[exit_index], 0.0)
        a = w * (dn_term - cum[exit_index] + c_entry)
    # infinite terms belong to patients who enter or leave once S = 0; they only
    # reach times where S = 0, whose error is set to infinity below
    c_entry = np.where(np.isfinite(c_entry), c_entry, 0.0)
    a = np.where(np.isfinite(a), a, 0.0)
    w2 = w * w
    # patients who have exited by t (time_k <= t)
    order = np.argsort(time, kind="stable")
    exited = np.concatenate([[0.0], np.cumsum((a * a)[order])])
    done = exited[np.searchsorted(time[order], unique_time, side="right")]

    def strictly_at_risk(values):
        # sum of values over entry_k < t < time_k: (time_k > t) minus (entry_k >= t)
        by_time = np.concatenate([np.cumsum(values[order][::-1])[::-1], [0.0]])
        later = by_time[np.searchsorted(time[order], unique_time, side="right")]
        order_e = np.argsort(e, kind="stable")
        by_entry = np.concatenate([np.cumsum(values[order_e][::-1])[::-1], [0.0]])
        return later - by_entry[np.searchsorted(e[order_e], unique_time, side="left")]

    s0 = strictly_at_risk(w2)
    s1 = strictly_at_risk(w2 * c_entry)
    s2 = strictly_at_risk(w2 * c_entry**2)
    with np.errstate(invalid="ignore"):
        total = done + cum**2 * s0 - 2 * cum * s1 + s2
        se = np.sqrt(np.maximum(total, 0.0))
    return np.where(surv > 0, se, np.inf)


def kaplan_meier(
    time,
    event,
    conf_type="log-log",
    conf_level=0.95,
    entry=None,
    weights=None,
    robust=False,
):
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
    entry : array_like of float, optional
        Delayed-entry (left-truncation) times, >= 0 and < `time`: a patient is
        at risk at t iff ``entry < t <= time``, as R
        ``survfit(Surv(entry, time, event) ~ 1)``. Default: everyone at risk
        from time 0.
    weights : array_like of float, optional
        Case weights (>= 0, e.g. inverse-probability weights), as R
        ``survfit(..., weights = w)``: ``n_risk``, ``n_event`` and
        ``n_censor`` become weighted sums (floats) and S(t) is the product of
        1 - (weighted deaths / weighted number at risk).
    robust : bool
        False (default): Greenwood standard error. True: the
        infinitesimal-jackknife (robust) standard error, as R
        ``survfit(..., robust = TRUE)``, which is R 3.5-3's default when the
        weights are not all integers (e.g. inverse-probability weights).

    Returns
    -------
    DataFrame
        Columns ``time, n_risk, n_event, n_censor, surv, std_err, lower,
        upper``: a first row at time 0 (S = 1, limits 1, ``n_risk`` that of
        the first observed time, as R ``survfit0``) and then one row per
        distinct observed (exit) time, in increasing order. ``std_err`` is the
        Greenwood standard error of log S (R's ``std.err``; infinite once
        S = 0, where the limits are NaN).

    Notes
    -----
    Greenwood: var(log S(t)) = sum over event times u <= t of
    d_u / (n_u (n_u - d_u)), with the weighted d and n when `weights` are
    given: R's formula for case weights (``survfit(..., robust = FALSE)``).
    For non-integer weights R 3.5-3 defaults to ``robust = TRUE`` (pass
    ``robust=True`` to match it); S(t) and the median do not depend on the
    choice, the confidence limits do. R stores the robust error as se(S);
    here ``std_err`` is always se(log S) = se(S) / S, which gives R's limits.

    Examples
    --------
    >>> curve = kaplan_meier([1, 2, 3, 4], [1, 1, 1, 1])
    >>> curve["surv"].tolist()
    [1.0, 0.75, 0.5, 0.25, 0.0]
    >>> kaplan_meier([2, 3, 4], [1, 1, 1], entry=[0, 2.5, 0])["n_risk"].tolist()
    [2, 2, 2, 1]
    """
    time, event = _check_time_event(time, event)
    if time.size == 0:
        raise ValueError("no observations")
    if entry is not None:
        entry = _check_entry(entry, time)
    if weights is not None:
        weights = _check_weights(weights, time)
    unique_time, n_risk, n_event, n_censor = _risk_counts(time, event, entry, weights)
    with np.errstate(divide="ignore", invalid="ignore"):
        hazard = np.where(n_event > 0, n_event / n_risk, 0.0)
        surv = np.cumprod(1.0 - hazard)
        greenwood = np.where(
            n_event > 0, n_event / (n_risk * (n_risk - n_event).astype(float)), 0.0
        )
    if robust:
        std_err = _jackknife_se_log_surv(
            time, event, entry, weights, unique_time, n_risk, n_event, surv
        )
    else:
        std_err = np.sqrt(np.cumsum(greenwood))
    lower, upper = confidence_limits(surv, std_err, conf_type, conf_level)
    count_type = np.int64 if weights is None else float
    curve = pd.DataFrame(
        {
            "time": np.concatenate([[0.0], unique_time]),
            "n_risk": np.concatenate([[n_risk[0]], n_risk]).astype(count_type),
            "n_event": np.concatenate([[0], n_event]).astype(count_type),
            "n_censor": np.concatenate([[0], n_censor]).astype(count_type),
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


def rmst(curve, horizon):
    """Restricted mean survival time and its standard error, as R ``rmean``.

    Written out because R's ``print(survfit(...), rmean = horizon)`` (the
    ``survmean`` routine) is the reference; lifelines'
    ``restricted_mean_survival_time`` uses another variance.

    Parameters
    ----------
    curve : DataFrame
        Output of :func:`kaplan_meier` (columns ``time, n_risk, n_event,
        surv``), with or without delayed entry or weights.
    horizon : float
        Upper limit of the integral, in the unit of ``time``, > 0 and not
        beyond the last time of the curve (unless the curve has reached 0).

    Returns
    -------
    dict
        ``rmst`` (area under S from 0 to `horizon`), ``se`` and ``horizon``.

    Notes
    -----
    RMST = sum of the rectangles under the step function. Its variance
    (Miller 1981, as R) is sum over event times t_j <= horizon of
    A_j^2 d_j / (n_j (n_j - d_j)), where A_j is the area under S between t_j
    and `horizon` (terms with n_j = d_j count 0); d and n are the weighted
    counts of a weighted curve.

    Examples
    --------
    >>> rmst(kaplan_meier([1, 2, 3, 4], [1, 1, 1, 1]), 4)["rmst"]
    2.5
    """
    horizon = float(horizon)
    if not np.isfinite(horizon) or horizon <= 0:
        raise ValueError(f"horizon must be a positive number; got {horizon}")
    t = curve["time"].to_numpy(float)
    surv = curve["surv"].to_numpy(float)
    n = curve["n_risk"].to_numpy(float)
    d = curve["n_event"].to_numpy(float)
    if horizon > t[-1] and surv[-1] > 0:
        raise ValueError(
            f"horizon {horizon} is beyond the last follow-up time {t[-1]} of the curve "
            "(S > 0 there): the restricted mean is not estimable; choose a smaller horizon"
        )
    keep = t <= horizon
    tt = np.concatenate([t[keep], [horizon]])
    ss = np.concatenate([surv[keep], [surv[keep][-1]]])
    with np.errstate(divide="ignore", invalid="ignore"):
        hh = np.where(n - d == 0, 0.0, d / (n * (n - d)))
    hh = np.concatenate([hh[keep], [0.0]])
    delta = np.diff(np.concatenate([[0.0], tt]))
    rectangles = delta * np.concatenate([[1.0], ss[:-1]])
    # area after time j: rectangles j+1 .. end
    after = np.concatenate([np.cumsum(rectangles[::-1])[::-1][1:], [0.0]])
    return {
        "rmst": float(rectangles.sum()),
        "se": float(np.sqrt(np.sum(hh * after**2))),
        "horizon": horizon,
    }


def rmst_difference(time, event, group, levels, horizon, conf_level=0.95, entry=None, weights=None):
    """Difference in restricted mean survival time between two groups.

    Parameters
    ----------
    time, event : array_like
        Follow-up times and 0/1 events, as :func:`kaplan_meier`.
    group : array_like
        Group label of each patient.
    levels : sequence of two labels
        Reference group first; the difference is ``levels[1] - levels[0]``.
    horizon : float
        RMST horizon, in the unit of `time` (see :func:`rmst`).
    conf_level : float
        Two-sided level of the Wald confidence interval.
    entry, weights : array_like, optional
        Delayed-entry times and case weights, as :func:`kaplan_meier`.

    Returns
    -------
    dict
        ``table`` (DataFrame: ``group, n, events, rmst, se`` per level, in
        `levels` order; ``n`` and ``events`` are unweighted record counts),
        ``difference``, ``se`` (sqrt of the sum of the two variances; the
        groups are independent), ``lower``, ``upper``, ``z``, ``p``
        (two-sided Wald test of no difference), ``horizon``, ``conf_level``.
    """
    time, event = _check_time_event(time, event)
    levels = list(levels)
    if len(levels) != 2:
        raise ValueError(f"rmst_difference needs exactly two levels; got {levels}")
    if not 0 < conf_level < 1:
        raise ValueError(f"conf_level must be between 0 and 1; got {conf_level!r}")
    codes, levels = _group_codes(group, levels)
    if codes.size != time.size:
        raise ValueError(f"group ({codes.size}) and time ({time.size}) differ in length")
    if entry is not None:
        entry = _check_entry(entry, time)
    if weights is not None:
        weights = _check_weights(weights, time)
    rows = []
    for code, level in enumerate(levels):
        sel = codes == code
        if not sel.any():
            raise ValueError(f"group {level!r} has no patients")
        curve = kaplan_meier(
            time[sel],
            event[sel],
            entry=None if entry is None else entry[sel],
            weights=None if weights is None else weights[sel],
        )
        res = rmst(curve, horizon)
        rows.append(
            {
                "group": level,
                "n": int(sel.sum()),
                "events": int(event[sel].sum()),
                "rmst": res["rmst"],
                "se": res["se"],
            }
        )
    table = pd.DataFrame(rows)
    difference = float(table["rmst"].iloc[1] - table["rmst"].iloc[0])
    se = float(np.sqrt(np.sum(table["se"].to_numpy() ** 2)))
    z_crit = norm_ppf(1 - (1 - conf_level) / 2)
    z = difference / se if se > 0 else np.nan
    return {
        "table": table,
        "difference": difference,
        "se": se,
        "lower": float(difference - z_crit * se),
        "upper": float(difference + z_crit * se),
        "z": float(z),
        "p": float(2 * norm_sf(abs(z))) if se > 0 else np.nan,
        "horizon": float(horizon),
        "conf_level": float(conf_level),
    }


def reverse_km_followup(time, event, conf_type="log-log", conf_level=0.95):
    """Median follow-up by the reverse Kaplan-Meier method.

    Censoring is treated as the event and events as censorings (R:
    ``survfit(Surv(time, 1 - event) ~ 1)``), so patients with an event stop
    contributing follow-up at their event instead of counting as short
    follow-up.

    Parameters
    ----------
    time, event : array_like
        Follow-up times and 0/1 events, as :func:`kaplan_meier`.
    conf_type, conf_level
        Confidence limits of the median, as :func:`kaplan_meier`.

    Returns
    -------
    dict
        ``median``, ``lower``, ``upper`` (NaN when not reached) and ``n``.
    """
    time, event = _check_time_event(time, event)
    curve = kaplan_meier(time, 1 - event, conf_type=conf_type, conf_level=conf_level)
    return {**km_median(curve), "n": int(time.size)}
