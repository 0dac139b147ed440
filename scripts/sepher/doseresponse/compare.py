"""Several curves at once: joint fits, ED50 ratios, shared-ED50 F test.

:func:`fit_joint` is drc's ``drm(y ~ x, curveid, fct = LL.4())``: one
least-squares fit with curve-specific parameters (or some shared across
curves, drc's ``pmodels``), one residual variance pooled over all curves
(``s^2 = total RSS / (N - total p)``), and the covariance
``inv(H / (2 s^2))`` from the full Hessian of the total RSS. With nothing
shared the estimates equal the separate fits and the covariance is
block-diagonal, but scaled by the pooled variance instead of each curve's
own; that is what drc's ``EDcomp`` uses.

:func:`ed_ratio` is ``EDcomp(fit, c(50, 50))`` with ``interval = "delta"``:
ratio ED_i / ED_j, delta-method SE, t-based CI on the joint residual df, and
a t test of ratio = 1.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats

from .fit import CONFIDENCE, FitResult, fit_curve
from .models import get_model, model_jacobian, model_response

__all__ = ["JointFit", "compare_ed50", "ed_ratio", "fit_joint"]


@dataclass
class JointFit:
    """Joint fit of several curves (drc ``curveid``).

    Attributes
    ----------
    model : str
    curves : list
        Curve labels, in order.
    params : pandas.DataFrame
        One row per curve, columns the model parameters (drc convention).
    names : list of str
        Labels of the estimated parameters, e.g. ``"e:T-R"`` or ``"e"`` if shared.
    estimate, se : ndarray
    covariance : ndarray
        Covariance of the estimated parameters (pooled variance).
    rss : float
    df_residual : int
    n : int
    index : dict
        ``(curve, parameter) -> position`` in ``estimate`` (None if fixed).
    """

    model: str
    curves: list
    params: pd.DataFrame
    names: list
    estimate: np.ndarray
    se: np.ndarray
    covariance: np.ndarray
    rss: float
    df_residual: int
    n: int
    index: dict
    converged: bool = True


def fit_joint(dose, response, curve, model: str = "LL.4", shared=(), fixed=None) -> JointFit:
    """Fit several dose-response curves jointly (drc ``drm`` with ``curveid``).

    Parameters
    ----------
    dose, response : array_like, shape (n,)
    curve : array_like, shape (n,)
        Curve label of each observation (e.g. the condition).
    model : str
        drc model name.
    shared : sequence of str
        Parameters common to all curves (e.g. ``("e",)`` for a common ED50,
        or ``("c", "d")``); the others are curve-specific.
    fixed : dict, optional
        Parameters fixed for all curves.

    Returns
    -------
    JointFit
    """
    m = get_model(model)
    names = list(m.param_names)
    fixed = {**m.default_fixed, **(fixed or {})}
    x = np.asarray(dose, float)
    y = np.asarray(response, float)
    lab = np.asarray(curve)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y, lab = x[keep], y[keep], lab[keep]
    curves = list(pd.unique(lab))
    # separate fits give the starting values
    separate = {c: fit_curve(x[lab == c], y[lab == c], model=m.name, fixed=fixed) for c in curves}
    index, labels, start = {}, [], []
    for pname in names:
        if pname in fixed:
            for c in curves:
                index[(c, pname)] = None
        elif pname in shared:
            vals = [separate[c].params[pname] for c in curves]
            start.append(np.exp(np.mean(np.log(vals))) if pname == "e" else np.mean(vals))
            labels.append(pname)
            for c in curves:
                index[(c, pname)] = len(labels) - 1
        else:
            for c in curves:
                start.append(separate[c].params[pname])
                labels.append(f"{pname}:{c}")
                index[(c, pname)] = len(labels) - 1
    start = np.array(start, float)
    is_e = np.array([lbl.split(":")[0] == "e" for lbl in labels])
    rows = {c: np.nonzero(lab == c)[0] for c in curves}

    def theta_of(c, v):
        return np.array([fixed[p] if index[(c, p)] is None else v[index[(c, p)]] for p in names])

    def natural(z):
        v = z.copy()
        v[is_e] = np.exp(z[is_e])
        return v

    def residuals_nat(v):
        r = np.empty_like(y)
        for c in curves:
            r[rows[c]] = model_response(m.name, x[rows[c]], theta_of(c, v)) - y[rows[c]]
        return r

    def jac_nat(v):
        jj = np.zeros((y.size, v.size))
        for c in curves:
            _, jc = model_jacobian(m.name, x[rows[c]], theta_of(c, v))
            for k, p in enumerate(names):
                pos = index[(c, p)]
                if pos is not None:
                    jj[rows[c], pos] += jc[:, k]
        return jj

    z0 = start.copy()
    z0[is_e] = np.log(start[is_e])
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        sol = optimize.least_squares(
            lambda z: residuals_nat(natural(z)),
            z0,
            jac=lambda z: jac_nat(natural(z)) * np.where(is_e, np.exp(z), 1.0),
            method="lm", xtol=1e-15, ftol=1e-15, gtol=1e-15, max_nfev=5000,
        )  # fmt: skip
    v = natural(sol.x)
    r = residuals_nat(v)
    rss = float(r @ r)
    p = v.size
    df = int(y.size - p)
    s2 = rss / df
    j = jac_nat(v)
    second = np.zeros((p, p))
    for k in range(p):
        h = 1e-5 * max(abs(v[k]), 1e-3)
        vp, vm = v.copy(), v.copy()
        vp[k] += h
        vm[k] -= h
        second[k] = r @ ((jac_nat(vp) - jac_nat(vm)) / (2 * h))
    curv = j.T @ j + 0.5 * (second + second.T)
    cov = np.linalg.inv(curv) * s2
    with np.errstate(invalid="ignore"):
        se = np.sqrt(np.diag(cov))
    params = pd.DataFrame([theta_of(c, v) for c in curves], index=curves, columns=names)
    return JointFit(
        model=m.name,
        curves=curves,
        params=params,
        names=labels,
        estimate=v,
        se=se,
        covariance=cov,
        rss=rss,
        df_residual=df,
        n=int(y.size),
        index=index,
        converged=bool(sol.status > 0),
    )


def _ed_and_grad(model, theta, level):
    """Relative ED(level) for LL-type models and its gradient (numerical)."""

    def ed_of(t):
        from .ed import ed as _ed

        pnames = get_model(model).param_names
        fake = FitResult(
            model=model, params=dict(zip(pnames, t, strict=True)), se={}, ci={},
            covariance=pd.DataFrame(np.zeros((len(pnames), len(pnames)))), rss=np.nan,
            df_residual=1, n=0, converged=True,
            dose=np.array([1e-300, 1e300]), response=np.array([0.0, 0.0]),
        )  # fmt: skip
        return float(_ed(fake, [level])["estimate"].iloc[0])

    est = ed_of(theta)
    grad = np.zeros(theta.size)
    for k in range(theta.size):
        h = 1e-6 * max(abs(theta[k]), 1e-3)
        tp, tm = theta.copy(), theta.copy()
        tp[k] += h
        tm[k] -= h
        grad[k] = (ed_of(tp) - ed_of(tm)) / (2 * h)
    return est, grad


def ed_ratio(fit_a, fit_b=None, curves=None, level: float = 50.0) -> dict:
    """Ratio of two EDs with delta-method CI and p (drc ``EDcomp``).

    Either a :class:`JointFit` and ``curves=(numerator, denominator)``
    (pooled variance, drc's convention), or two independent
    :class:`~sepher.doseresponse.fit.FitResult` (block-diagonal covariance,
    each with its own variance; df = smaller of the two residual df).

    Parameters
    ----------
    fit_a : JointFit or FitResult
    fit_b : FitResult, optional
    curves : (label, label), optional
    level : float
        Relative ED level (50 = ED50).

    Returns
    -------
    dict
        ``ratio, se, lower, upper, t, p, df`` (p for ratio = 1, two-sided).
    """
    if isinstance(fit_a, JointFit):
        num, den = curves
        grads, ests = [], []
        for c in (num, den):
            theta = fit_a.params.loc[c].to_numpy(float)
            est, g_full = _ed_and_grad(fit_a.model, theta, level)
            g = np.zeros(fit_a.estimate.size)
            for k, pname in enumerate(fit_a.params.columns):
                pos = fit_a.index[(c, pname)]
                if pos is not None:
                    g[pos] += g_full[k]
            ests.append(est)
            grads.append(g)
        cov, df = fit_a.covariance, fit_a.df_residual
        ratio = ests[0] / ests[1]
        grad = grads[0] / ests[1] - ests[0] * grads[1] / ests[1] ** 2
        se = float(np.sqrt(grad @ cov @ grad))
    else:
        parts = []
        for f in (fit_a, fit_b):
            free = [i for i, k in enumerate(f.params) if k not in f.fixed]
            est, g = _ed_and_grad(f.model, f.theta, level)
            parts.append((est, g[free], f.covariance.to_numpy()))
        (ea, ga, ca), (eb, gb, cb) = parts
        ratio = ea / eb
        var = (ga / eb) @ ca @ (ga / eb) + (ea * gb / eb**2) @ cb @ (ea * gb / eb**2)
        se = float(np.sqrt(var))
        df = min(fit_a.df_residual, fit_b.df_residual)
    tq = stats.t.ppf(0.5 + CONFIDENCE / 2, df)
    t = (ratio - 1.0) / se
    return {
        "ratio": float(ratio),
        "se": se,
        "lower": float(ratio - tq * se),
        "upper": float(ratio + tq * se),
        "t": float(t),
        "p": float(2 * stats.t.sf(abs(t), df)),
        "df": int(df),
    }


def compare_ed50(dose, response, curve, model: str = "LL.4", fixed=None) -> dict:
    """Extra-sum-of-squares F test: one shared ED50 (e) vs curve-specific ED50s.

    Parameters
    ----------
    dose, response, curve : array_like
    model : str
    fixed : dict, optional

    Returns
    -------
    dict
        ``rss_shared, df_shared, rss_separate, df_separate, f, p``.
    """
    separate = fit_joint(dose, response, curve, model=model, fixed=fixed)
    shared = fit_joint(dose, response, curve, model=model, shared=("e",), fixed=fixed)
    d_df = shared.df_residual - separate.df_residual
    f = ((shared.rss - separate.rss) / d_df) / (separate.rss / separate.df_residual)
    return {
        "rss_shared": shared.rss,
        "df_shared": shared.df_residual,
        "rss_separate": separate.rss,
        "df_separate": separate.df_residual,
        "f": float(f),
        "p": float(stats.f.sf(f, d_df, separate.df_residual)),
    }
