"""Single-curve least-squares dose-response fits, matching R drc 3.2-0.

The estimate is the least-squares optimum (drc ``drm`` with a continuous
response); the covariance is drc's: ``inv(H / (2 s^2))`` with ``H`` the full
Hessian of the residual sum of squares at the optimum (not the Gauss-Newton
``J'J``) and ``s^2 = RSS / (n - p)``; confidence intervals are
``estimate +/- t(0.975, n - p) SE``. See Ritz et al. (2015) PLoS ONE
10:e0146021 (R package drc) and docs/methods-reference.md.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, stats

from .models import CurveEvaluator, get_model, model_jacobian, model_response

__all__ = [
    "FitResult",
    "fit_curve",
    "lack_of_fit",
    "rss_hessian",
    "select_model",
    "self_start",
]

#: level of the confidence intervals reported everywhere in this package
CONFIDENCE = 0.95


@dataclass
class FitResult:
    """Result of a dose-response fit (one curve).

    Attributes
    ----------
    model : str
        drc model name (``"LL.4"``, ``"LL.3"``, ``"LL.5"``, ``"W1.4"``).
    params : dict
        All model parameters in drc's b/c/d/e(/f) convention, fixed ones included.
    se, ci : dict
        Standard error and t-based 95% CI ``(lower, upper)`` of each *free*
        parameter (fixed parameters are absent).
    covariance : pandas.DataFrame
        Covariance matrix of the free parameters (drc convention, see module doc).
    rss : float
        Residual sum of squares (unweighted, also for robust fits).
    df_residual : int
        ``n - p`` with ``p`` the number of free parameters.
    n : int
        Number of observations used (NaN pairs dropped).
    converged : bool
        The optimiser reached a stationary point with finite parameters.
    flags : list of str
        Human-readable warnings (not converged, flat curve, all NaN, ...).
    aic : float
        ``n log(2 pi RSS / n) + n + 2 (p + 1)`` as R's ``AIC`` on a ``drm`` fit.
    fixed : dict
        Parameters held fixed and their values.
    dose, response : ndarray
        The data used (dose in the same unit as ``e``).
    robust : str or None
        Loss used for a robust fit, if any.
    flat_pvalue : float
        p-value of the F test of the model against a flat line (mean response).
    """

    model: str
    params: dict
    se: dict
    ci: dict
    covariance: pd.DataFrame
    rss: float
    df_residual: int
    n: int
    converged: bool
    flags: list = field(default_factory=list)
    aic: float = np.nan
    fixed: dict = field(default_factory=dict)
    dose: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    response: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    robust: str | None = None
    flat_pvalue: float = np.nan

    @property
    def free_names(self) -> list[str]:
        """Names of the estimated parameters, drc order."""
        return [k for k in self.params if k not in self.fixed]

    @property
    def theta(self) -> np.ndarray:
        """Full parameter vector in drc order."""
        return np.array(list(self.params.values()), dtype=float)

    @property
    def log_ic50(self) -> float:
        """GraphPad Prism ``LogIC50`` = log10(e) (dose unit of ``e``)."""
        e = self.params.get("e", np.nan)
        return float(np.log10(e)) if e > 0 else np.nan

    @property
    def hill_slope(self) -> float:
        """GraphPad Prism ``HillSlope`` = -b (curve on log10 dose)."""
        return -float(self.params.get("b", np.nan))

    @property
    def sigma(self) -> float:
        """Residual standard error ``sqrt(RSS / (n - p))``."""
        return float(np.sqrt(self.rss / self.df_residual)) if self.df_residual > 0 else np.nan

    def predict(self, dose) -> np.ndarray:
        """Fitted response at ``dose`` (same unit as ``e``)."""
        return model_response(self.model, np.atleast_1d(np.asarray(dose, float)), self.theta)

    def summary(self) -> pd.DataFrame:
        """drc-style coefficient table: estimate, SE, t, p, lower, upper."""
        rows = []
        for name in self.free_names:
            est, se = self.params[name], self.se.get(name, np.nan)
            t = est / se if se and np.isfinite(se) and se > 0 else np.nan
            p = 2 * stats.t.sf(abs(t), self.df_residual) if np.isfinite(t) else np.nan
            lo, hi = self.ci.get(name, (np.nan, np.nan))
            rows.append(
                {
                    "parameter": name,
                    "estimate": est,
                    "se": se,
                    "t": t,
                    "p": p,
                    "lower": lo,
                    "upper": hi,
                }
            )
        return pd.DataFrame(rows)


def _t_quantile(df: int) -> float:
    return float(stats.t.ppf(0.5 + CONFIDENCE / 2, df)) if df > 0 else np.nan


def self_start(dose, response, model="LL.4", fixed=None) -> np.ndarray:
    """Data-driven starting values, in the manner of drc's self-starters.

    ``c`` and ``d`` slightly beyond the observed range, then ``b`` and ``e``
    from the linear regression of ``log((d - y) / (y - c))`` on ``log x``
    over positive doses (the linearised log-logistic).

    Parameters
    ----------
    dose, response : array_like
        Observations (NaN-free).
    model : str
    fixed : dict, optional

    Returns
    -------
    ndarray
        Full parameter vector ``(b, c, d, e[, f])``.
    """
    m = get_model(model)
    fixed = {**m.default_fixed, **(fixed or {})}
    x = np.asarray(dose, float)
    y = np.asarray(response, float)
    positive = x > 0
    xpos = x[positive] if positive.any() else np.array([1.0])
    y_range = np.ptp(y) if y.size else 1.0
    pad = 0.001 * y_range if y_range > 0 else 0.01
    # which end is high: compare the mean response at the lowest and highest doses
    order = np.argsort(x)
    k = max(1, len(x) // 4)
    decreasing = np.mean(y[order[:k]]) >= np.mean(y[order[-k:]])
    lo, hi = np.min(y) - pad, np.max(y) + pad
    c = fixed.get("c", lo if decreasing else hi)
    d = fixed.get("d", hi if decreasing else lo)
    b, e = 1.0, float(np.exp(np.median(np.log(xpos))))
    yp = y[positive]
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.log((d - yp) / (yp - c))
    ok = np.isfinite(z)
    if ok.sum() >= 2 and np.ptp(np.log(x[positive][ok])) > 0:
        slope, intercept = np.polyfit(np.log(x[positive][ok]), z[ok], 1)
        if np.isfinite(slope) and abs(slope) > 1e-3:
            b = float(slope)
            e = float(np.exp(-intercept / slope))
    if not (np.isfinite(e) and xpos.min() / 1e3 < e < xpos.max() * 1e3):
        e = float(np.exp(np.median(np.log(xpos))))
    b = float(np.clip(b, -20, 20))
    theta = [fixed.get("b", b), c, d, fixed.get("e", e)]
    if m.name == "LL.5":
        theta.append(fixed.get("f", 1.0))
    return np.array(theta, dtype=float)


def rss_hessian(model, dose, response, theta, free) -> np.ndarray:
    """Full Hessian of the residual sum of squares in the free parameters.

    ``H = 2 (J'J + sum_i r_i d2f_i)``, the second-derivative term by central
    differences of the analytic Jacobian (relative step 1e-5, truncation
    error ~1e-10).

    Parameters
    ----------
    model : str
    dose, response : ndarray, shape (n,)
    theta : ndarray
        Full parameter vector at the optimum.
    free : sequence of int
        Indices of the free parameters.

    Returns
    -------
    ndarray, shape (p, p)
    """
    free = list(free)
    f0, jac = model_jacobian(model, dose, theta)
    resid = f0 - response
    j = jac[:, free]
    second = np.zeros((len(free), len(free)))
    for a, k in enumerate(free):
        h = 1e-5 * max(abs(theta[k]), 1e-3)
        tp, tm = theta.copy(), theta.copy()
        tp[k] += h
        tm[k] -= h
        dj = (
            model_jacobian(model, dose, tp)[1][:, free]
            - model_jacobian(model, dose, tm)[1][:, free]
        ) / (2 * h)
        second[a] = resid @ dj
    second = 0.5 * (second + second.T)
    return 2.0 * (j.T @ j + second)


def _empty_result(model, fixed, names, x, y, n, flags, robust=None) -> FitResult:
    params = {k: fixed.get(k, np.nan) for k in names}
    free = [k for k in names if k not in fixed]
    nan_cov = pd.DataFrame(np.full((len(free), len(free)), np.nan), index=free, columns=free)
    return FitResult(
        model=model,
        params=params,
        se=dict.fromkeys(free, np.nan),
        ci={k: (np.nan, np.nan) for k in free},
        covariance=nan_cov,
        rss=np.nan,
        df_residual=n - len(free),
        n=n,
        converged=False,
        flags=flags,
        fixed=fixed,
        dose=x,
        response=y,
        robust=robust,
    )


def _start_grid(theta0, free_names, x) -> list[np.ndarray]:
    """A few variations of the self-start values (slope and ED50)."""
    starts = [theta0]
    xpos = x[x > 0]
    if xpos.size == 0:
        return starts
    quantiles = np.exp(np.quantile(np.log(xpos), [0.25, 0.5, 0.75]))
    sign = np.sign(theta0[0]) or 1.0
    for b in (theta0[0], sign * 1.0, sign * 4.0):
        for e in quantiles:
            t = theta0.copy()
            if "b" in free_names:
                t[0] = b
            if "e" in free_names:
                t[3] = e
            starts.append(t)
    return starts


def fit_curve(
    dose,
    response,
    model: str = "LL.4",
    fixed: dict | None = None,
    robust: str | None = None,
    start=None,
    bounds: dict | None = None,
) -> FitResult:
    """Fit a dose-response model by least squares, drc style.

    Parameters
    ----------
    dose : array_like, shape (n,)
        Doses (>= 0; vehicle wells are dose 0), in any unit; ``e`` is
        reported in the same unit.
    response : array_like, shape (n,)
        Responses (e.g. viability as a fraction of vehicle). NaN pairs are
        dropped.
    model : {"LL.4", "LL.3", "LL.5", "W1.4"}
        drc model. ``LL.3`` fixes ``c = 0``.
    fixed : dict, optional
        Parameters held fixed, e.g. ``{"d": 1.0}`` (drc's ``fixed``).
    robust : {None, "soft_l1", "huber", "cauchy"}
        Robust loss (scipy ``least_squares``) to downweight outliers; the
        loss scale is 1.4826 x MAD of the residuals of an ordinary fit.
        SEs of a robust fit use the same Hessian formula (approximate).
    start : array_like, optional
        Full starting parameter vector; default: :func:`self_start` plus a
        small grid of slope / ED50 variations (best RSS kept).
    bounds : dict, optional
        Box constraints ``{name: (lower, upper)}`` on free parameters (natural
        scale, ``e`` in dose units), e.g. ``{"b": (-50, 50), "e": (1e-6, 4e4)}``
        (``|b| <= 50``, ``e`` within 1000x of the tested doses: the box
        outside which :func:`sepher.doseresponse.fit_many` counts an optimum
        as not finite). drc has none (default).

    Returns
    -------
    FitResult
        Never raises on bad data: all-NaN input, too few points,
        non-convergence and flat curves become ``flags``.
    """
    m = get_model(model)
    names = list(m.param_names)
    fixed = {**m.default_fixed, **(fixed or {})}
    unknown = set(fixed) - set(names)
    if unknown:
        raise ValueError(f"fixed parameters {sorted(unknown)} not in model {m.name} {names}")
    x_all = np.asarray(dose, dtype=float).ravel()
    y_all = np.asarray(response, dtype=float).ravel()
    if x_all.shape != y_all.shape:
        raise ValueError(f"dose and response differ in length: {x_all.size} vs {y_all.size}")
    keep = np.isfinite(x_all) & np.isfinite(y_all) & (x_all >= 0)
    x, y = x_all[keep], y_all[keep]
    flags = []
    if (~keep).any():
        flags.append(f"dropped {int((~keep).sum())} NaN/negative-dose observations")
    free_idx = [i for i, k in enumerate(names) if k not in fixed]
    free_names = [names[i] for i in free_idx]
    p = len(free_idx)
    n = x.size
    if n == 0:
        return _empty_result(m.name, fixed, names, x, y, 0, [*flags, "all NaN"], robust)
    if n <= p or np.unique(x).size < min(p, 3):
        return _empty_result(
            m.name, fixed, names, x, y, n, [*flags, "too few observations"], robust
        )

    theta0 = np.asarray(start, float) if start is not None else self_start(x, y, m.name, fixed)
    e_pos = names.index("e")
    e_free = e_pos in free_idx

    def to_full(z):
        t = theta0.copy()
        t[free_idx] = z
        if e_free:
            t[e_pos] = np.exp(z[free_idx.index(e_pos)])
        return t

    def to_z(t):
        z = t[free_idx].copy()
        if e_free:
            z[free_idx.index(e_pos)] = np.log(max(t[e_pos], 1e-300))
        return z

    z_lower = np.full(p, -np.inf)
    z_upper = np.full(p, np.inf)
    for name, (lo_b, hi_b) in (bounds or {}).items():
        if name in free_names:
            k = free_names.index(name)
            z_lower[k], z_upper[k] = (np.log(lo_b), np.log(hi_b)) if name == "e" else (lo_b, hi_b)

    # model_response / model_jacobian, the same bits at a third of the cost
    curve = CurveEvaluator(m, x)

    def residuals(z):
        return curve.response(to_full(z)) - y

    def jac(z):
        t = to_full(z)
        jj = curve.jacobian(t, free_idx)
        if e_free:
            jj[:, free_idx.index(e_pos)] *= t[e_pos]
        return jj

    best = None
    starts = [theta0] if start is not None else _start_grid(theta0, free_names, x)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for t0 in starts:
            try:
                if bounds:
                    z0 = np.clip(to_z(t0), z_lower + 1e-9, z_upper - 1e-9)
                    sol = optimize.least_squares(
                        residuals, z0, jac=jac, method="trf", bounds=(z_lower, z_upper),
                        xtol=1e-15, ftol=1e-15, gtol=1e-15, max_nfev=2000,
                    )  # fmt: skip
                else:
                    sol = optimize.least_squares(
                        residuals, to_z(t0), jac=jac, method="lm", xtol=1e-15, ftol=1e-15,
                        gtol=1e-15, max_nfev=2000,
                    )  # fmt: skip
            except (ValueError, np.linalg.LinAlgError):
                continue
            cost = float(np.sum(sol.fun**2))
            if np.isfinite(cost) and (best is None or cost < best[1]):
                best = (sol, cost)
        if best is not None and robust is not None:
            r0 = best[0].fun
            scale = 1.4826 * np.median(np.abs(r0 - np.median(r0)))
            scale = scale if scale > 0 else max(np.std(r0), 1e-8)
            try:
                sol = optimize.least_squares(
                    residuals, best[0].x, jac=jac, method="trf", loss=robust, f_scale=scale,
                    xtol=1e-14, ftol=1e-14, gtol=1e-14, max_nfev=2000,
                )  # fmt: skip
                best = (sol, float(np.sum(sol.fun**2)))
                flags.append(f"robust fit ({robust} loss, scale {scale:.3g}); SEs approximate")
            except (ValueError, np.linalg.LinAlgError):
                flags.append("robust fit failed; least-squares estimate kept")
    if best is None:
        return _empty_result(m.name, fixed, names, x, y, n, [*flags, "not converged"], robust)
    sol, rss = best
    theta = to_full(sol.x)
    # LL.4 / W-free symmetry (b, c, d) -> (-b, d, c): report drc's c < d form
    if m.family == "LL" and m.name != "LL.5" and not ({"b", "c", "d"} & set(fixed)):
        if theta[1] > theta[2]:
            theta[0], theta[1], theta[2] = -theta[0], theta[2], theta[1]
    converged = bool(sol.status > 0 and np.all(np.isfinite(theta)))
    if not converged:
        flags.append("not converged")
    df_res = n - p
    s2 = rss / df_res if df_res > 0 else np.nan
    cov = np.full((p, p), np.nan)
    with np.errstate(all="ignore"):
        hess = rss_hessian(m.name, x, y, theta, free_idx)
    if np.all(np.isfinite(hess)) and df_res > 0:
        try:
            cov_try = np.linalg.inv(hess / (2.0 * s2)) if s2 > 0 else np.zeros((p, p))
            if np.all(np.diag(cov_try) >= 0):
                cov = cov_try
            else:
                flags.append("Hessian not positive definite: SEs unavailable")
        except np.linalg.LinAlgError:
            flags.append("singular Hessian: SEs unavailable")
    se_vec = np.sqrt(np.diag(cov))
    tq = _t_quantile(df_res)
    params = dict(zip(names, theta.tolist(), strict=True))
    se = dict(zip(free_names, se_vec.tolist(), strict=True))
    ci = {k: (params[k] - tq * se[k], params[k] + tq * se[k]) for k in free_names}
    aic = n * np.log(2 * np.pi * rss / n) + n + 2 * (p + 1) if rss > 0 else -np.inf
    # F test against a flat line (the mean): is there any dose effect?
    rss_flat = float(np.sum((y - y.mean()) ** 2))
    flat_p = np.nan
    if df_res > 0 and p > 1 and rss > 0:
        f_stat = ((rss_flat - rss) / (p - 1)) / (rss / df_res)
        flat_p = float(stats.f.sf(f_stat, p - 1, df_res))
    elif rss == 0 and rss_flat > 0:
        flat_p = 0.0
    if rss_flat == 0 or (np.isfinite(flat_p) and flat_p >= 0.05):
        flags.append("flat curve: no significant dose effect (F test vs flat line, p >= 0.05)")
    xpos = x[x > 0]
    e_val = params["e"]
    if xpos.size and np.isfinite(e_val) and not (xpos.min() <= e_val <= xpos.max()):
        flags.append("e (ED50) outside the tested dose range")
    return FitResult(
        model=m.name,
        params=params,
        se=se,
        ci=ci,
        covariance=pd.DataFrame(cov, index=free_names, columns=free_names),
        rss=float(rss),
        df_residual=int(df_res),
        n=int(n),
        converged=converged,
        flags=flags,
        aic=float(aic),
        fixed=fixed,
        dose=x,
        response=y,
        robust=robust,
        flat_pvalue=flat_p,
    )


def lack_of_fit(fit: FitResult) -> dict:
    """drc's ``modelFit``: F test of the model against a one-way ANOVA on dose.

    Parameters
    ----------
    fit : FitResult

    Returns
    -------
    dict
        ``rss_anova, df_anova, rss_model, df_model, f, p``; ``p`` is NaN when
        there are no replicate doses (the test needs them).
    """
    x, y = fit.dose, fit.response
    groups = pd.Series(y).groupby(x)
    rss_anova = float(groups.apply(lambda s: np.sum((s - s.mean()) ** 2)).sum())
    df_anova = int(x.size - groups.ngroups)
    df_model = fit.df_residual
    out = {
        "rss_anova": rss_anova,
        "df_anova": df_anova,
        "rss_model": fit.rss,
        "df_model": df_model,
        "f": np.nan,
        "p": np.nan,
    }
    if df_anova > 0 and df_model > df_anova and rss_anova > 0:
        f = ((fit.rss - rss_anova) / (df_model - df_anova)) / (rss_anova / df_anova)
        out["f"] = float(f)
        out["p"] = float(stats.f.sf(f, df_model - df_anova, df_anova))
    return out


def select_model(
    dose, response, models=("LL.4", "LL.3", "LL.5", "W1.4"), fixed=None
) -> pd.DataFrame:
    """Fit several models and rank them by AIC (drc's ``mselect`` idea).

    Parameters
    ----------
    dose, response : array_like
    models : sequence of str
    fixed : dict, optional
        Passed to every model (e.g. ``{"d": 1.0}``).

    Returns
    -------
    pandas.DataFrame
        One row per model, sorted by AIC: ``model, aic, rss, df_residual,
        sigma, lack_of_fit_p, converged, fit`` (the :class:`FitResult`).
    """
    rows = []
    for name in models:
        fit = fit_curve(dose, response, model=name, fixed=fixed)
        lof = lack_of_fit(fit) if np.isfinite(fit.rss) else {"p": np.nan}
        rows.append(
            {
                "model": name,
                "aic": fit.aic,
                "rss": fit.rss,
                "df_residual": fit.df_residual,
                "sigma": fit.sigma,
                "lack_of_fit_p": lof["p"],
                "converged": fit.converged,
                "fit": fit,
            }
        )
    return pd.DataFrame(rows).sort_values("aic", kind="stable").reset_index(drop=True)
