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
from .models import model_jacobian, model_response

__all__ = ["activity_area", "area_under_curve", "ed", "ed_gradient"]


def _level_and_gradient(fit: FitResult, level: float, kind: str, theta: np.ndarray):
    """Target response and its gradient in the full parameters."""
    grad = np.zeros(theta.size)
    if kind == "absolute":
        return float(level), grad
    # relative: p% of the way from the dose-0 asymptote to the infinite-dose one
    p = level / 100.0
    b = theta[0]
    top, bottom = (2, 1) if b > 0 else (1, 2)  # index of f(0) and f(inf)
    target = theta[top] + p * (theta[bottom] - theta[top])
    grad[top] = 1.0 - p
    grad[bottom] = p
    return float(target), grad


def ed_gradient(fit: FitResult, dose: float, target_grad: np.ndarray) -> np.ndarray:
    """Gradient of the ED in the full parameter vector (implicit function theorem)."""
    theta = fit.theta
    _, jac = model_jacobian(fit.model, np.array([dose]), theta)
    h = 1e-6 * dose
    fp = model_response(fit.model, np.array([dose + h]), theta)[0]
    fm = model_response(fit.model, np.array([dose - h]), theta)[0]
    df_dx = (fp - fm) / (2 * h)
    return -(jac[0] - target_grad) / df_dx


def _display(estimate, lower_limit, upper_limit, below, above, unit):
    u = f" {unit}" if unit else ""
    if above:
        return f"> {upper_limit:.3g}{u} (max dose)"
    if below:
        return f"< {lower_limit:.3g}{u} (min dose)"
    if not np.isfinite(estimate):
        return "not reached"
    return f"{estimate:.4g}{u}"


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
    theta = fit.theta
    xpos = fit.dose[fit.dose > 0]
    if dose_range is None:
        dose_range = (xpos.min(), xpos.max()) if xpos.size else (np.nan, np.nan)
    lo_dose, hi_dose = map(float, dose_range)
    free = [i for i, k in enumerate(fit.params) if k not in fit.fixed]
    cov = fit.covariance.to_numpy()
    tq = (
        float(stats.t.ppf(0.5 + CONFIDENCE / 2, fit.df_residual)) if fit.df_residual > 0 else np.nan
    )
    rows = []
    for level in levels:
        row = {"level": level, "estimate": np.nan, "se": np.nan, "lower": np.nan, "upper": np.nan}
        reached, below, above = False, False, False
        if np.all(np.isfinite(theta)) and np.isfinite(lo_dose):
            target, tgrad = _level_and_gradient(fit, float(level), type, theta)

            def g(log_x, target=target):
                return model_response(fit.model, np.array([np.exp(log_x)]), theta)[0] - target

            # search far beyond the tested range to tell "beyond" from "never"
            grid = np.linspace(np.log(lo_dose) - 12, np.log(hi_dose) + 12, 241)
            with np.errstate(all="ignore"):
                vals = np.array([g(v) for v in grid])
            sign_change = np.nonzero(np.sign(vals[:-1]) * np.sign(vals[1:]) <= 0)[0]
            if sign_change.size and np.isfinite(vals[sign_change[0]]):
                k = sign_change[0]
                if vals[k] == 0:
                    root = grid[k]
                else:
                    root = optimize.brentq(g, grid[k], grid[k + 1], xtol=1e-14, rtol=1e-14)
                x_ed = float(np.exp(root))
                tol = 1e-9
                below = x_ed < lo_dose * (1 - tol)
                above = x_ed > hi_dose * (1 + tol)
                reached = not (below or above)
                if reached:
                    grad = ed_gradient(fit, x_ed, tgrad)[free]
                    se = float(np.sqrt(grad @ cov @ grad))
                    row.update(estimate=x_ed, se=se, lower=x_ed - tq * se, upper=x_ed + tq * se)
            elif np.all(np.isfinite(vals)):
                # never crossed: report on which side of the curve the level lies
                ends_above = vals[-1] > 0  # response stays above target
                falling = model_response(fit.model, np.array([hi_dose]), theta)[0] <= theta[2]
                # level beyond the infinite-dose asymptote: "> max dose";
                # beyond the dose-0 asymptote: plain "not reached"
                above = bool(ends_above == falling)
        row["reached"] = bool(reached)
        row["display"] = _display(row["estimate"], lo_dose, hi_dose, below, above, unit)
        rows.append(row)
    return pd.DataFrame(rows)


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
    lo, hi = np.log10(dose_range[0]), np.log10(dose_range[1])
    if not (np.all(np.isfinite(fit.theta)) and hi > lo):
        return np.nan
    grid = np.linspace(lo, hi, n_grid)
    values = model_response(fit.model, 10.0**grid, fit.theta)
    return float(np.trapezoid(values, grid) / (hi - lo))


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
