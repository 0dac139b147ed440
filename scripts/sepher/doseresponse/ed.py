"""Effective doses (ED / IC values) with delta-method CIs, and curve areas.

ED(p), relative (drc ``ED(type = "relative")``): the dose at which the fitted
response has moved p% of the way from the dose-0 asymptote to the
infinite-dose asymptote (for a falling LL.4, ``e (p / (100 - p))^(1 / b)``;
ED10 < ED50 < ED90). Absolute (``type = "absolute"``): the dose at which the
fitted response equals ``level`` (e.g. 0.5 = 50% viability).

Every ED is found by root finding on log dose, so the same code serves all
models; its gradient in the parameters comes from the implicit function
theorem, ``dx/dtheta = -(df/dtheta - dL/dtheta) / (df/dx)``, and the SE from
the delta method on the fit's covariance; CI = estimate +/- t(0.975, n - p) SE
(drc's ``interval = "delta"``).

An ED outside the tested dose range, or not reachable at all, is reported as
``reached = False`` with NaN estimate and a display string (``"> max dose"``)
and is never extrapolated.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import optimize, stats

from .fit import CONFIDENCE, FitResult
from .models import get_model, model_response

__all__ = [
    "activity_area",
    "area_under_curve",
    "ed",
    "area_under_curve_many",
    "ed_many",
]


def _display(estimate, lower_limit, upper_limit, below, above, unit):
    u = f" {unit}" if unit else ""
    if above:
        return f"> {upper_limit:.3g}{u} (max dose)"
    if below:
        return f"< {lower_limit:.3g}{u} (min dose)"
    if not np.isfinite(estimate):
        return "not reached"
    return f"{estimate:.4g}{u}"


def _brent_root(model, theta, target, a, b):
    def g(log_x):
        return model_response(model, np.array([np.exp(log_x)]), theta)[0] - target

    return optimize.brentq(g, a, b, xtol=1e-14, rtol=1e-14)


def ed_many(
    model,
    theta,
    covariance,
    free,
    df_residual,
    level: float,
    type: str = "relative",  # noqa: A002 - drc's argument name
    dose_range=None,
    unit: str = "",
    conf_level: float = CONFIDENCE,
) -> dict:
    """One effective dose of many fits of one model, with delta-method SE and CI.

    The vectorised core of :func:`ed` (which calls it for one fit): the level
    is bracketed on a grid of 241 log doses from 12 log units below to 12
    above the tested range (first sign change; none: "beyond" or "never"
    reached), then solved in closed form (every model here is an invertible
    function of ``t = b (log x - log e)``; ``brentq`` if the closed form falls
    outside the bracket).

    Parameters
    ----------
    model : str
    theta : ndarray, shape (C, n_params)
        Full parameter vectors (drc order).
    covariance : ndarray, shape (C, p, p)
        Covariance of the free parameters.
    free : sequence of int
        Indices of the free parameters in ``theta``.
    df_residual : array_like, shape (C,)
    level : float
        Percent (relative) or response level (absolute).
    type : {"relative", "absolute"}
    dose_range : tuple of array_like (C,)
        Smallest and largest positive tested dose per fit.
    unit : str or array_like of str (C,)
        Dose unit(s) for the display strings.
    conf_level : float

    Returns
    -------
    dict of ndarray (C,)
        ``estimate, se, lower, upper, reached, display`` (display: object array).
    """
    from .manyfit import model_jacobian_many

    if type not in ("relative", "absolute"):
        raise ValueError(f"type must be 'relative' or 'absolute', not {type!r}")
    m = get_model(model)
    theta = np.atleast_2d(np.asarray(theta, float))
    n_fits = theta.shape[0]
    lo = np.broadcast_to(np.asarray(dose_range[0], float), (n_fits,))
    hi = np.broadcast_to(np.asarray(dose_range[1], float), (n_fits,))
    df = np.broadcast_to(np.asarray(df_residual, float), (n_fits,))
    free = list(free)
    out = {k: np.full(n_fits, np.nan) for k in ("estimate", "se", "lower", "upper")}
    reached = np.zeros(n_fits, bool)
    below = np.zeros(n_fits, bool)
    above = np.zeros(n_fits, bool)
    ok = np.all(np.isfinite(theta), 1) & np.isfinite(lo)
    rows = np.nonzero(ok)[0]
    if rows.size:
        th = theta[rows]
        b, c, d, e = th[:, 0], th[:, 1], th[:, 2], th[:, 3]
        tgrad = np.zeros_like(th)
        if type == "absolute":
            target = np.full(rows.size, float(level))
        else:  # p% of the way from the dose-0 asymptote to the infinite-dose one
            p = float(level) / 100.0
            top_is_d = b > 0
            top = np.where(top_is_d, d, c)
            bottom = np.where(top_is_d, c, d)
            target = top + p * (bottom - top)
            tgrad[:, 2] = np.where(top_is_d, 1.0 - p, p)
            tgrad[:, 1] = np.where(top_is_d, p, 1.0 - p)
        with np.errstate(all="ignore"):
            grid = np.linspace(np.log(lo[rows]) - 12, np.log(hi[rows]) + 12, 241, axis=1)
            vals = model_jacobian_many(m.name, np.exp(grid), th, jac=False)[0] - target[:, None]
            change = np.sign(vals[:, :-1]) * np.sign(vals[:, 1:]) <= 0
        has = change.any(1)
        k = np.argmax(change, 1)
        at_k = vals[np.arange(rows.size), k]
        found = has & np.isfinite(at_k)
        left, right = grid[np.arange(rows.size), k], grid[np.arange(rows.size), k + 1]
        with np.errstate(all="ignore"):
            g_star = (target - c) / (d - c)
            if m.family == "LL":
                f = th[:, 4] if m.name == "LL.5" else 1.0
                t_star = np.log(g_star ** (-1.0 / f) - 1.0)
            else:
                t_star = np.log(-np.log(g_star))
            root = np.log(e) + t_star / b
        root = np.where(at_k == 0, left, root)
        inside = (root >= left - 1e-12 * (1 + abs(left))) & (
            root <= right + 1e-12 * (1 + abs(right))
        )
        for j in np.nonzero(found & ~inside)[0]:
            root[j] = _brent_root(m.name, th[j], target[j], left[j], right[j])
        x_ed = np.exp(root)
        tol = 1e-9
        r_below = found & (x_ed < lo[rows] * (1 - tol))
        r_above = found & (x_ed > hi[rows] * (1 + tol))
        r_reached = found & ~r_below & ~r_above
        # never crossed: on which side of the curve the level lies
        never = ~has & np.all(np.isfinite(vals), 1)
        with np.errstate(all="ignore"):
            f_hi = model_jacobian_many(m.name, hi[rows, None], th, jac=False)[0][:, 0]
        ends_above = vals[:, -1] > 0
        r_above |= never & (ends_above == (f_hi <= d))
        below[rows], above[rows], reached[rows] = r_below, r_above, r_reached
        sel = np.nonzero(r_reached)[0]
        if sel.size:
            # implicit function theorem: dx/dtheta = -(df/dtheta - dL/dtheta) / (df/dx)
            xs = x_ed[sel]
            f_val, jac = model_jacobian_many(m.name, xs[:, None], th[sel])
            jac = jac[:, 0]
            ths = th[sel]
            with np.errstate(all="ignore"):
                # df/dx = -(df/dlog e) / x (f depends on x and e only through log x - log e)
                df_dx = -jac[:, 3] * ths[:, 3] / xs
                grad = (-(jac - tgrad[sel]) / df_dx[:, None])[:, free]
                cov = np.asarray(covariance, float)[rows[sel]]
                se = np.sqrt(np.einsum("ai,aij,aj->a", grad, cov, grad))
            idx = rows[sel]
            out["estimate"][idx] = xs
            out["se"][idx] = se
    with np.errstate(all="ignore"):
        tq = np.where(df > 0, stats.t.ppf(0.5 + conf_level / 2, np.maximum(df, 1)), np.nan)
    out["lower"] = out["estimate"] - tq * out["se"]
    out["upper"] = out["estimate"] + tq * out["se"]
    out["reached"] = reached
    units = np.broadcast_to(np.asarray(unit, dtype=object), (n_fits,))
    out["display"] = np.array(
        [
            _display(out["estimate"][i], lo[i], hi[i], below[i], above[i], units[i])
            for i in range(n_fits)
        ],
        dtype=object,
    )
    return out


def ed(
    fit: FitResult,
    levels=(10, 50, 90),
    type: str = "relative",  # noqa: A002 - drc's argument name
    dose_range=None,
    unit: str = "",
) -> pd.DataFrame:
    """Effective doses with delta-method SE and t-based 95% CI.

    Parameters
    ----------
    fit : FitResult
    levels : sequence of float
        Percentages (``type="relative"``, 0-100) or response levels
        (``type="absolute"``, in the response unit, e.g. 0.5 for 50% viability).
    type : {"relative", "absolute"}
    dose_range : (float, float), optional
        Tested dose range; default: smallest and largest positive dose of the fit.
    unit : str
        Dose unit for the display string.

    Returns
    -------
    pandas.DataFrame
        ``level, estimate, se, lower, upper, reached, display``. Not reached
        (outside the tested range or never crossed): ``reached=False``,
        estimate/SE/CI NaN, ``display`` e.g. ``"> 40 (max dose)"``.
    """
    if type not in ("relative", "absolute"):
        raise ValueError(f"type must be 'relative' or 'absolute', not {type!r}")
    xpos = fit.dose[fit.dose > 0]
    if dose_range is None:
        dose_range = (xpos.min(), xpos.max()) if xpos.size else (np.nan, np.nan)
    free = [i for i, k in enumerate(fit.params) if k not in fit.fixed]
    cov = fit.covariance.to_numpy()[None]
    rows = []
    for level in levels:
        one = ed_many(
            fit.model, fit.theta[None], cov, free, fit.df_residual, float(level), type,
            (float(dose_range[0]), float(dose_range[1])), unit,
        )  # fmt: skip
        rows.append({"level": level, **{k: v[0] for k, v in one.items()}})
    table = pd.DataFrame(rows, columns=["level", "estimate", "se", "lower", "upper", "reached",
                                        "display"])  # fmt: skip
    table["reached"] = table["reached"].astype(bool)
    return table


def area_under_curve(fit: FitResult, dose_range=None, n_grid: int = 513) -> float:
    """Normalised area under the fitted curve on log10 dose.

    ``AUC = (1 / (log10 x_max - log10 x_min)) * integral f(x) d log10 x`` over
    the tested range (trapezoid rule on ``n_grid`` points), i.e. the mean
    fitted response over the range; 1 for an inactive drug on a viability
    scale normalised to vehicle = 1.

    Parameters
    ----------
    fit : FitResult
    dose_range : (float, float), optional
        Default: smallest and largest positive tested dose.
    n_grid : int

    Returns
    -------
    float
    """
    xpos = fit.dose[fit.dose > 0]
    if dose_range is None:
        if xpos.size == 0:
            return np.nan
        dose_range = (xpos.min(), xpos.max())
    return float(area_under_curve_many(fit.model, fit.theta[None], *dose_range, n_grid)[0])


def area_under_curve_many(model, theta, lower, upper, n_grid: int = 513) -> np.ndarray:
    """:func:`area_under_curve` of many fits of one model (theta (C, n_params)).

    ``lower``, ``upper``: tested dose range per fit (C,) or scalars.
    """
    from .manyfit import model_jacobian_many

    theta = np.atleast_2d(np.asarray(theta, float))
    n_fits = theta.shape[0]
    with np.errstate(all="ignore"):
        lo = np.broadcast_to(np.log10(np.asarray(lower, float)), (n_fits,))
        hi = np.broadcast_to(np.log10(np.asarray(upper, float)), (n_fits,))
    ok = np.all(np.isfinite(theta), 1) & (hi > lo)
    out = np.full(n_fits, np.nan)
    if ok.any():
        grid = np.linspace(lo[ok], hi[ok], n_grid, axis=1)
        values = model_jacobian_many(model, 10.0**grid, theta[ok], jac=False)[0]
        out[ok] = np.trapezoid(values, grid, axis=1) / (hi[ok] - lo[ok])
    return out


def activity_area(fit: FitResult, reference: float = 1.0, dose_range=None) -> float:
    """Normalised activity area, ``reference - AUC`` (0 = inactive; CCLE-style).

    Parameters
    ----------
    fit : FitResult
    reference : float
        Response of an untreated sample (1.0 for viability relative to vehicle).
    dose_range : (float, float), optional
    """
    return float(reference - area_under_curve(fit, dose_range))
