"""Many single-curve fits at once: :func:`~sepher.doseresponse.fit_curve` over a curve axis.

:func:`fit_many` fits one drc model (LL.4, LL.3, LL.5, W1.4, with fixed
parameters) to every row of a (curves x observations) array and returns the
same estimates, drc full-Hessian covariance, AIC, flat-curve F test and flags
as :func:`~sepher.doseresponse.fit_curve` on each curve, without a Python
loop over curves:

1. **Starts.** For fixed slope ``b`` and ED ``e`` every model here is linear
   in ``c`` and ``d``, so the residual sum of squares profiled over the free
   ones is closed-form on a (b, log e) grid for all curves at once (variable
   projection on the per-dose means; curves with the same doses share the
   grid's curve shapes). The best 2 local minima of that surface,
   fit_curve's self-starter, optionally its 9 other starts, and any starts
   the caller passes (e.g. the LL.4 optimum for LL.5 or LL.3) are the
   starting points; W1.4, whose surface has separate basins for ``b > 0``
   and ``b < 0``, starts from fit_curve's 10 starts instead of the grid, to
   reach the basin fit_curve reaches.
2. **Polish.** An unbounded Levenberg-Marquardt iteration in ``(b, c, d,
   log e[, f])``, the parametrisation of ``fit_curve``, written as array
   operations over the curves (MINPACK column scaling, Nielsen damping),
   on the mean response per dose weighted by the number of wells (the same
   RSS up to the within-dose sum of squares), iterated to the precision of
   the data (relative RSS change 1e-14 per step, or step 1e-12); the best
   optimum per curve is kept. A robust loss (``soft_l1``, ``huber``,
   ``cauchy``, ``arctan`` as in scipy) is minimised by the same iteration
   with IRLS weights on the wells, from the least-squares optimum with the
   scale ``1.4826 MAD`` of its residuals, as ``fit_curve(robust=...)`` does.
3. **Fallback.** A curve whose polish did not converge although its
   optimum lies in the box where a finite one exists (``e`` within 1000x
   of the tested doses, ``|b| <= 50``) is refitted by ``fit_curve``'s
   multi-start path. Outside that box (a step between two doses, a fall
   only at the top dose, a flat curve) the least-squares problem has no
   finite optimum: every iteration, fit_curve's too, creeps along a valley
   of constant RSS and stops at an arbitrary point, so the batch result
   stands (an iteration is also stopped when the RSS has changed by less
   than 1e-12 over 20 iterations).
4. **Covariance.** ``inv(H / (2 s^2))`` with ``H`` the full Hessian of the
   RSS (second-derivative term by central differences of the analytic
   Jacobian, relative step 1e-5), for all curves at once, as
   :func:`~sepher.doseresponse.fit.rss_hessian`.

This is the package's only vectorised fitter (the one the stage uses): the
profile-grid helpers it needs (:func:`_log_e_grid`,
``_LOG_ZERO``, ``_T_CLIP``) live here rather than in a module of their own
because nothing else uses them.

Each curve's arithmetic depends only on its own row (element-wise
operations, row reductions and per-curve 4 x 4 or 5 x 5 solves), provided
rows have the same width (callers group curves by number of observations),
with one exception: the iteration's predicted decrease, which steers the
damping, is an ``einsum``, whose order of summation can depend on the number
of rows, and so can its last digit. The profile-grid starts are the same
digits whatever other curves share the batch (shared-grid or per-curve
path); a curve with a finite optimum gets its estimates to the precision of
the iteration, but one without (an optimum at infinity, a valley of
near-constant RSS) can stop at another point of the valley, with an RSS
equal to about 1e-8 relative (tests/test_doseresponse_units.py).
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import special, stats

from .fit import CONFIDENCE, FitResult, fit_curve
from .models import get_model

__all__ = ["ManyFits", "fit_many", "lack_of_fit_many", "model_jacobian_many"]

#: box beyond which an unbounded optimum counts as "no finite optimum" (fallback)
E_RANGE_FACTOR = 1e3
MAX_ABS_SLOPE = 50.0
#: steepest start: fit_curve's self-start clips the slope to 20, drc's local search
#: then finds the basin of a smooth curve, not a step between two doses
MAX_START_SLOPE = 20.0
#: Levenberg-Marquardt tolerances (relative RSS change, relative step, gradient cosine)
FTOL, XTOL, GTOL = 1e-14, 1e-12, 1e-13
#: iterations per start (fit_curve: at most 2000 function evaluations)
MAX_ITER = 1000
#: also done: RSS changed by less than STALL_TOL (relative) over STALL_ITER iterations
STALL_ITER, STALL_TOL = 20, 1e-12
#: log dose standing for dose 0 in the per-dose arrays (no such dose in the ED grid)
_LOG_ZERO = -1e3
#: |b (log x - log e)| beyond this: the logistic is 0 or 1 to double precision
_T_CLIP = 50.0


def _robust_rho(loss: str, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """scipy ``least_squares`` loss rho(z) and rho'(z) of z = (r / scale)^2."""
    if loss == "soft_l1":
        s = np.sqrt(1.0 + z)
        return 2.0 * (s - 1.0), 1.0 / s
    if loss == "huber":
        big = z > 1.0
        sq = np.sqrt(np.where(big, z, 1.0))
        return np.where(big, 2.0 * sq - 1.0, z), np.where(big, 1.0 / sq, 1.0)
    if loss == "cauchy":
        return np.log1p(z), 1.0 / (1.0 + z)
    if loss == "arctan":
        return np.arctan(z), 1.0 / (1.0 + z * z)
    raise ValueError(f"unknown robust loss {loss!r}; expected soft_l1, huber, cauchy or arctan")


def _shape(family: str, general_f: bool, lx, positive, phi, jac: bool = True):
    """Model response and Jacobian in phi = (b, c, d, log e, f), over many curves.

    lx, positive : (A, M) log dose (any finite value where the dose is 0) and dose > 0.
    phi : (A, 5). Returns f (A, M) and, with ``jac``, the five Jacobian columns
    (A, 5, M) in phi (dose-0 observations: only ``c`` and ``d`` columns nonzero).
    """
    b, c, d, le, f = (phi[:, k : k + 1] for k in range(5))
    with np.errstate(all="ignore"):
        # dose 0: log dose -inf, so t = -inf (b > 0) or +inf (b < 0), as drc
        t = np.where(positive, b * (lx - le), b * -np.inf)
        if family == "LL" and not general_f:
            g = special.expit(-t)
            dg_dt = -g * special.expit(t) if jac else None
            dg_df = None
        elif family == "LL":
            log1p_u = np.logaddexp(0.0, t)
            g = np.exp(-f * log1p_u)
            dg_dt = -f * g * np.exp(t - log1p_u) if jac else None
            dg_df = -log1p_u * g if jac else None
        else:
            u = np.exp(t)
            g = np.exp(-u)
            dg_dt = -np.exp(t - u) if jac else None
            dg_df = None
        span = d - c
        response = c + span * g
        if not jac:
            return response, None
        out = np.empty((phi.shape[0], 5, lx.shape[1]))
        k = span * dg_dt
        out[:, 0] = np.where(positive, k * (lx - le), 0.0)
        out[:, 1] = 1.0 - g
        out[:, 2] = g
        out[:, 3] = np.where(positive, -k * b, 0.0)
        out[:, 4] = np.where(positive, span * dg_df, 0.0) if dg_df is not None else 0.0
    return response, out


def _to_phi(theta: np.ndarray) -> np.ndarray:
    """Natural (b, c, d, e[, f]) to phi = (b, c, d, log e, f)."""
    phi = np.ones((theta.shape[0], 5))
    phi[:, : theta.shape[1]] = theta
    with np.errstate(divide="ignore", invalid="ignore"):
        phi[:, 3] = np.log(theta[:, 3])
    return phi


def model_jacobian_many(model, dose, theta, jac: bool = True):
    """Response and natural-parameter Jacobian of many curves.

    Parameters
    ----------
    model : str
    dose : ndarray, shape (A, M)
        Doses (>= 0) per curve.
    theta : ndarray, shape (A, n_params)
        Full parameter vectors (drc order).
    jac : bool

    Returns
    -------
    response : ndarray (A, M)
    jacobian : ndarray (A, M, n_params) or None
        d response / d theta (``e`` on its natural scale).
    """
    m = get_model(model)
    dose = np.asarray(dose, float)
    positive = dose > 0
    with np.errstate(divide="ignore"):
        lx = np.where(positive, np.log(np.where(positive, dose, 1.0)), 0.0)
    phi = _to_phi(np.asarray(theta, float))
    response, cols = _shape(m.family, m.name == "LL.5", lx, positive, phi, jac)
    if not jac:
        return response, None
    p = len(m.param_names)
    out = np.moveaxis(cols[:, :p], 1, 2).copy()
    with np.errstate(all="ignore"):
        out[..., 3] /= theta[:, 3:4]
    return response, out


class _Problem:
    """Data and parametrisation of one batch of least-squares problems.

    ``weight`` (default: ``used``) weighs each squared residual and
    ``offset`` (default 0) is added to every row's RSS: least-squares fits run
    on the mean response per dose with the number of wells as weight and the
    within-dose sum of squares as offset (the same RSS, in a quarter of the work).
    """

    def __init__(self, model, lx, positive, y, used, base_phi, free, weight=None, offset=None):
        m = get_model(model)
        self.family = m.family
        self.general_f = m.name == "LL.5"
        self.lx, self.positive = lx, positive
        self.y = np.where(used, y, 0.0)
        self.w = used.astype(float)
        self.weight = self.w if weight is None else np.where(used, weight, 0.0)
        self.offset = np.zeros(lx.shape[0]) if offset is None else np.asarray(offset, float)
        self.base_phi = base_phi
        self.free = list(free)

    def evaluate(self, z, lx, positive, base_phi, jac=True):
        """Response (A, M) and Jacobian (A, p, M) in z of the rows whose data are given."""
        phi = base_phi.copy()
        phi[:, self.free] = z
        f, cols = _shape(self.family, self.general_f, lx, positive, phi, jac)
        return f, (cols[:, self.free] if jac else None)


def _solve_spd(a, rhs):
    """Solve the symmetric positive definite systems ``a x = rhs`` (A, p, p) at once.

    Jacobi-scaled Cholesky unrolled over the p <= 5 unknowns, each step an
    operation on the whole curve axis (per-curve arithmetic, no LAPACK call
    per matrix). Returns x (A, p) and ok (A,) (False where a pivot is not
    positive or a value not finite).
    """
    p = a.shape[1]
    with np.errstate(all="ignore"):
        sc = 1.0 / np.sqrt(np.einsum("aii->ai", a))
        m = a * sc[:, :, None] * sc[:, None, :]
        low = np.zeros_like(m)
        ok = np.ones(a.shape[0], bool)
        for j in range(p):
            piv = m[:, j, j] - (low[:, j, :j] ** 2).sum(1)
            ok &= piv > 1e-14
            low[:, j, j] = np.sqrt(np.where(piv > 1e-14, piv, 1.0))
            for i in range(j + 1, p):
                low[:, i, j] = (m[:, i, j] - (low[:, i, :j] * low[:, j, :j]).sum(1)) / low[:, j, j]
        u = np.zeros((a.shape[0], p))
        b = rhs * sc
        for i in range(p):
            u[:, i] = (b[:, i] - (low[:, i, :i] * u[:, :i]).sum(1)) / low[:, i, i]
        x = np.zeros((a.shape[0], p))
        for i in range(p - 1, -1, -1):
            x[:, i] = (u[:, i] - (low[:, i + 1 :, i] * x[:, i + 1 :]).sum(1)) / low[:, i, i]
        x *= sc
    return x, ok & np.isfinite(x).all(1)


def _cost(r, weight, loss, scale, offset):
    """0.5 (weighted sum of squares + offset) or 0.5 sum rho, and the IRLS weights (A, M)."""
    if loss is None:
        return 0.5 * (np.einsum("am,am->a", weight * r, r) + offset), weight
    z = (r / scale[:, None]) ** 2
    rho, drho = _robust_rho(loss, z)
    return 0.5 * scale**2 * (rho * weight).sum(1), drho * weight


def _lm(problem: _Problem, z0, rows, loss=None, scale=None, max_iter=MAX_ITER):
    """Unbounded batched Levenberg-Marquardt from z0 (A, p) for problem rows ``rows``.

    Returns z (A, p), rss (A,) (sum of squared residuals, weighted, plus the offset) and the
    status (A,): 1 converged (stationary, or no further decrease at the
    precision of the data), 2 stalled (the RSS no longer changes but the
    parameters still move: an optimum at infinity or a flat valley), 0 not
    converged (iterations exhausted or non-finite values).
    """
    n_rows, p = z0.shape
    z_out = z0.copy()
    rss_out = np.full(n_rows, np.nan)
    conv_out = np.zeros(n_rows, int)
    if n_rows == 0:
        return z_out, rss_out, conv_out
    pos = np.arange(n_rows)  # positions of the active rows in the output
    act_rows = np.asarray(rows)
    z = z0.copy()
    y, w = problem.y[act_rows], problem.w[act_rows]
    base, off = problem.weight[act_rows], problem.offset[act_rows]
    lx, positive, base_phi = (
        problem.lx[act_rows],
        problem.positive[act_rows],
        problem.base_phi[act_rows],
    )
    sc = None if scale is None else np.asarray(scale, float)
    with np.errstate(all="ignore"):
        f, jac = problem.evaluate(z, lx, positive, base_phi)
        r = (f - y) * w
        cost, wt = _cost(r, base, loss, sc, off)
    lam = np.full(n_rows, 1e-3)
    nu = np.full(n_rows, 2.0)
    dmax = np.zeros((n_rows, p))
    eye = np.eye(p)
    history = np.full((STALL_ITER, n_rows), np.inf)  # cost of the last iterations
    for it in range(max_iter):
        with np.errstate(all="ignore"):
            jw = jac * wt[:, None, :]
            hess = jw @ np.swapaxes(jac, 1, 2)
            grad = np.einsum("apm,am->ap", jw, r)
            diag = np.einsum("aii->ai", hess)
            dmax = np.maximum(dmax, diag)
            scale_d = np.maximum(dmax, 1e-12 * dmax.max(1, keepdims=True) + 1e-300)
            col = np.sqrt(diag)
            wr2 = np.einsum("am,am->a", wt * r, r)
            cosine = np.where(col > 0, np.abs(grad) / (col * np.sqrt(wr2)[:, None]), 0.0).max(1)
            broken = ~(np.isfinite(grad).all(1) & np.isfinite(hess).all((1, 2)) & np.isfinite(cost))
            stationary = (cosine <= GTOL) | (wr2 <= 0.0)
            lhs = hess + lam[:, None, None] * scale_d[:, :, None] * eye
            lhs = np.where(broken[:, None, None], eye, lhs)
            rhs = np.where(broken[:, None], 0.0, -grad)
            step, solved = _solve_spd(lhs, rhs)
            step = np.where(solved[:, None], step, 0.0)
            z_new = z + step
            f_new, jac_new = problem.evaluate(z_new, lx, positive, base_phi)
            r_new = (f_new - y) * w
            cost_new, wt_new = _cost(r_new, base, loss, sc, off)
            # (einsum: the last digit can depend on the number of rows, module docstring)
            predicted = -(
                np.einsum("ap,ap->a", grad, step)
                + 0.5 * np.einsum("ap,apq,aq->a", step, hess, step)
            )
            actual = cost - cost_new
            better = np.isfinite(cost_new) & (cost_new < cost) & ~stationary & ~broken & solved
            small_f = better & (actual <= FTOL * cost) & (predicted <= FTOL * cost)
            step_norm = np.sqrt(np.einsum("ap,ap->a", step * scale_d, step))
            z_norm = np.sqrt(np.einsum("ap,ap->a", z * scale_d, z))
            small_x = solved & np.isfinite(step_norm) & (step_norm <= XTOL * (z_norm + XTOL))
            exhausted = lam > 1e16
            # creeping along a valley towards an optimum at infinity: the RSS no
            # longer changes at the precision of the data
            stalled = history[it % STALL_ITER] - cost <= STALL_TOL * cost
            history[it % STALL_ITER] = cost
            done = stationary | small_f | small_x | exhausted | stalled | broken
            proper = stationary | small_f | small_x | (exhausted & (cosine <= 1e-6))
            status = np.where(broken, 0, np.where(proper, 1, np.where(stalled, 2, 0)))
            rho = actual / np.where(predicted > 0, predicted, np.inf)
            shrink = np.maximum(1.0 / 3.0, 1.0 - (2.0 * np.clip(rho, 0.0, 1.0) - 1.0) ** 3)
        if better.any():
            z[better] = z_new[better]
            r[better] = r_new[better]
            jac[better] = jac_new[better]
            cost[better] = cost_new[better]
            wt[better] = wt_new[better]
        lam = np.where(better, np.maximum(lam * shrink, 1e-15), lam * nu)
        nu = np.where(better, 2.0, nu * 2.0)
        last = it == max_iter - 1
        if done.any() or last:
            finish = done | last
            z_out[pos[finish]] = z[finish]
            rb = r[finish]
            rss_out[pos[finish]] = np.einsum("am,am->a", base[finish] * rb, rb) + off[finish]
            conv_out[pos[finish]] = status[finish]
            keep = ~finish
            if not keep.any():
                break
            pos, act_rows, z, y, w = pos[keep], act_rows[keep], z[keep], y[keep], w[keep]
            base, off = base[keep], off[keep]
            lx, positive, base_phi = lx[keep], positive[keep], base_phi[keep]
            r, jac, cost, wt = r[keep], jac[keep], cost[keep], wt[keep]
            lam, nu, dmax, history = lam[keep], nu[keep], dmax[keep], history[:, keep]
            sc = None if sc is None else sc[keep]
    return z_out, rss_out, conv_out


def _by_dose(x, y, used):
    """Per-curve unique doses (C, G): log dose, dose > 0, counts, mean responses.

    Also the number of distinct doses and the within-dose sum of squares (C,).
    """
    n_curves, width = x.shape
    key = np.where(used, x, np.inf)
    order = np.argsort(key, axis=1, kind="stable")
    xs = np.take_along_axis(key, order, 1)
    ys = np.take_along_axis(np.where(used, y, 0.0), order, 1)
    us = np.take_along_axis(used, order, 1)
    new = us.copy()
    new[:, 1:] &= xs[:, 1:] != xs[:, :-1]
    n_groups = max(int(new.sum(1).max()), 1) if n_curves else 1
    gid = np.maximum(np.cumsum(new, 1) - 1, 0)
    flat = (np.arange(n_curves)[:, None] * n_groups + gid).ravel()
    size = n_curves * n_groups
    count = np.bincount(flat, weights=us.ravel().astype(float), minlength=size)
    total = np.bincount(flat, weights=ys.ravel(), minlength=size)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_flat = np.where(count > 0, total / np.where(count > 0, count, 1.0), 0.0)
    dev = np.where(us, ys - mean_flat[flat].reshape(n_curves, width), 0.0)
    within = (dev * dev).sum(1)
    count, mean = count.reshape(n_curves, n_groups), mean_flat.reshape(n_curves, n_groups)
    dose = np.zeros((n_curves, n_groups))
    rows, cols = np.nonzero(new)
    dose[rows, gid[rows, cols]] = xs[rows, cols]
    positive = (count > 0) & (dose > 0)
    with np.errstate(divide="ignore"):
        lx = np.where(positive, np.log(np.where(positive, dose, 1.0)), _LOG_ZERO)
    return {
        "lx": lx,
        "positive": positive,
        "count": count,
        "mean": mean,
        "n_unique": new.sum(1),
        "within": within,
    }


def _self_start_many(x, y, used, c_fixed, d_fixed):
    """:func:`sepher.doseresponse.fit.self_start` for many curves: (b, c, d, e) (C, 4).

    Falling or rising from the mean response at the lowest vs the highest
    quarter of the doses, ``c``/``d`` just beyond the observed range (or
    fixed), then ``b`` and ``e`` from the regression of
    ``log((d - y) / (y - c))`` on log dose (``b = 1`` and ``e`` = the median
    positive dose when that regression is unavailable).
    """
    n_curves, width = x.shape
    n = used.sum(1)
    order = np.argsort(np.where(used, x, np.inf), axis=1, kind="stable")
    ys = np.take_along_axis(np.where(used, y, 0.0), order, 1)
    rank = np.arange(width)[None, :]
    k = np.maximum(1, n // 4)[:, None]
    low = (rank < k).astype(float)
    high = ((rank >= n[:, None] - k) & (rank < n[:, None])).astype(float)
    falling = (ys * low).sum(1) >= (ys * high).sum(1)
    big = np.where(used, y, -np.inf).max(1)
    small = np.where(used, y, np.inf).min(1)
    spread = big - small
    pad = np.where(spread > 0, 0.001 * spread, 0.01)
    lo, hi = small - pad, big + pad
    c = np.where(falling, lo, hi) if not np.isfinite(c_fixed) else np.full(n_curves, c_fixed)
    d = np.where(falling, hi, lo) if not np.isfinite(d_fixed) else np.full(n_curves, d_fixed)
    positive = used & (x > 0)
    with np.errstate(all="ignore"):
        z = np.log((d[:, None] - y) / (y - c[:, None]))
        lx = np.log(np.where(positive, x, 1.0))
    lx_pos = np.where(positive, lx, np.nan)
    with np.errstate(all="ignore"):
        median_e = np.exp(np.nanmedian(lx_pos, 1))
        xmin, xmax = dose_range(x, used)
    ok = positive & np.isfinite(z)
    m = ok.sum(1)
    mx = np.where(ok, lx, 0.0).sum(1) / np.maximum(m, 1)
    mz = np.where(ok, z, 0.0).sum(1) / np.maximum(m, 1)
    dx = np.where(ok, lx - mx[:, None], 0.0)
    sxx = (dx * dx).sum(1)
    with np.errstate(all="ignore"):
        slope = (dx * np.where(ok, z - mz[:, None], 0.0)).sum(1) / sxx
        e = np.exp(mx - mz / slope)
    good = (m >= 2) & (sxx > 0) & np.isfinite(slope) & (np.abs(slope) > 1e-3)
    b = np.where(good, slope, 1.0)
    e = np.where(good, e, median_e)
    e = np.where(np.isfinite(e) & (e > xmin / 1e3) & (e < xmax * 1e3), e, median_e)
    return np.column_stack([np.clip(b, -20, 20), c, d, e])


def _profile_sums(g, n, y, c_fixed, d_fixed, shared):
    """RSS profiled over the free ones of c, d, and their values, at every grid shape g.

    g : (K, G) shared by all curves or (C, K, G); n, y : (C, G) wells and mean
    response per dose. Returns rss, c, d, each (C, K). A curve gets the same
    digits either way (row reductions of the same products).
    """

    def sums(h):  # sum_g n h, sum_g n h^2, sum_g n y h (same arithmetic shared or not)
        h = h[None] if shared else h
        w, wy = n[:, None, :], (n * y)[:, None, :]
        return (h * w).sum(-1), (h * h * w).sum(-1), (h * wy).sum(-1)

    total = n.sum(1)[:, None]
    if not (np.isfinite(c_fixed) or np.isfinite(d_fixed)):
        # g centred over the doses first: the weighted sums keep their digits
        # when g is nearly constant (e far beyond the tested doses)
        g_mean = g.mean(-1, keepdims=True)
        s1, s2, sy = sums(g - g_mean)
        g_mean = g_mean[..., 0]
        ybar = (n * y).sum(1, keepdims=True) / total
        gb = s1 / total
        sgg = s2 - s1 * gb
        sgy = sy - s1 * ybar
        syy = (n * (y - ybar) ** 2).sum(1, keepdims=True)
        ok = sgg > 1e-13 * np.maximum(s2, 1e-300)
        span = np.where(ok, sgy / np.where(ok, sgg, 1.0), 0.0)
        c = ybar - span * (gb + g_mean)
        return syy - span * sgy, c, c + span
    if np.isfinite(c_fixed) and np.isfinite(d_fixed):
        yy = y - c_fixed
        s1, s2, sy = sums(g)
        sgy = sy - c_fixed * s1
        k = d_fixed - c_fixed
        rss = (n * yy * yy).sum(1, keepdims=True) - 2 * k * sgy + k * k * s2
        return rss, np.full_like(rss, c_fixed), np.full_like(rss, d_fixed)
    base = c_fixed if np.isfinite(c_fixed) else d_fixed
    s1, s2, sy = sums(g if np.isfinite(c_fixed) else 1.0 - g)
    shy = sy - base * s1
    ok = s2 > 1e-300
    k = np.where(ok, shy / np.where(ok, s2, 1.0), 0.0)
    rss = (n * (y - base) ** 2).sum(1, keepdims=True) - k * shy
    if np.isfinite(c_fixed):
        return rss, np.full_like(rss, c_fixed), c_fixed + k
    return rss, d_fixed + k, np.full_like(rss, d_fixed)


def _log_e_grid(lx, w, lo, hi, log_factor, per_gap, max_points=80):
    """Candidate log EDs (C, E) for the profile grid, one sorted row per curve.

    Every ``1 / per_gap`` of the median log-dose spacing over the tested
    range extended by one spacing each side, then every spacing out to
    ``log_factor`` beyond the tested range, both ends included.

    lx, w : (C, G) log doses (``_LOG_ZERO`` for dose 0) and which are used;
    lo, hi : (C,) log of the smallest and largest positive used dose.
    """
    lx_obs = np.sort(np.where(w & (lx > _LOG_ZERO), lx, np.nan), axis=1)
    steps = np.diff(lx_obs, axis=1)
    steps = np.where(steps > 1e-9, steps, np.nan)  # replicate doses: no step
    with np.errstate(all="ignore"):
        gap = np.nanmedian(np.where(np.isfinite(steps), steps, np.nan), axis=1)
    gap = np.where(np.isfinite(gap) & (gap > 0), gap, 1.0)
    span = hi - lo + 2 * gap
    n_inner = int(min(max_points, np.ceil(np.max(span / gap) * per_gap) + 1))
    inner = (lo - gap)[:, None] + span[:, None] * np.linspace(0.0, 1.0, n_inner)[None, :]
    outer = max(log_factor - gap.min(), 0.0)
    n_out = int(min(max_points // 2, max(1, np.ceil(outer / gap.min()))))
    u = np.linspace(0.0, 1.0, n_out + 1)[None, :-1]
    below = (lo - log_factor)[:, None] + (log_factor - gap)[:, None] * u
    above = (hi + log_factor)[:, None] - (log_factor - gap)[:, None] * u
    grid = np.concatenate([below, inner, above], 1)
    return np.sort(np.clip(grid, (lo - log_factor)[:, None], (hi + log_factor)[:, None]), 1)


def _profile_starts(family, lx_u, count, mean, lo, hi, c_fixed, d_fixed, n_starts, chunk=256):
    """Starts (b, c, d, log e) at the best local minima of the RSS profiled over c, d.

    The grid: slopes 1e-2 ... 20 (log spaced), positive (drc's convention:
    with ``c`` and ``d`` free, ``b > 0`` and either order of ``c``, ``d``
    gives every falling and rising curve; a log-logistic is symmetric under
    ``(b, c, d) -> (-b, d, c)``, a Weibull W1.4 with ``b < 0`` is the other
    Weibull family, drc's W2.4, and fit_curve's self-starter starts LL.5 and
    W1.4 with ``b > 0`` on falling data) or of both signs when ``c`` or
    ``d`` is fixed, by the candidate ED values of
    :func:`_log_e_grid` (1000x beyond the tested
    doses); ``c``/``d`` fixed to the given values where not NaN. Curves with
    the same doses share one grid of curve shapes (sums as matrix products).
    Returns a list of ``n_starts`` arrays (C, 4).
    """
    slopes = np.geomspace(1e-2, MAX_START_SLOPE, 20)
    if np.isfinite(c_fixed) or np.isfinite(d_fixed):
        slopes = np.concatenate([-slopes[::-1], slopes])
    log_e = _log_e_grid(lx_u, count > 0, lo, hi, np.log(E_RANGE_FACTOR), per_gap=2)
    n_curves, n_b, n_e = lx_u.shape[0], slopes.size, log_e.shape[1]
    starts = np.empty((n_curves, n_starts, 4))

    def shapes(lx_rows, log_e_rows):
        t = slopes[None, :, None, None] * (lx_rows[:, None, None, :] - log_e_rows[:, None, :, None])
        t = np.clip(t, -_T_CLIP, _T_CLIP)
        g = 1.0 / (1.0 + np.exp(t)) if family == "LL" else np.exp(-np.exp(t))
        return g.reshape(lx_rows.shape[0], n_b * n_e, lx_rows.shape[1])

    def select(rows, rss, c, d):
        starts[rows] = _grid_minima(
            rss.reshape(-1, n_b, n_e), c.reshape(-1, n_b, n_e), d.reshape(-1, n_b, n_e), slopes,
            log_e[rows], n_starts,
        )  # fmt: skip

    layout = np.where(count > 0, lx_u, np.inf)
    _, group, sizes = np.unique(layout, axis=0, return_inverse=True, return_counts=True)
    group = group.ravel()
    shared_groups = np.nonzero(sizes >= 16)[0]
    for k in shared_groups:
        rows_all = np.nonzero(group == k)[0]
        g = shapes(lx_u[rows_all[:1]], log_e[rows_all[:1]])[0]
        for start in range(0, rows_all.size, 4 * chunk):
            rows = rows_all[start : start + 4 * chunk]
            select(rows, *_profile_sums(g, count[rows], mean[rows], c_fixed, d_fixed, True))
    rest = np.nonzero(~np.isin(group, shared_groups))[0]
    for start in range(0, rest.size, chunk):
        rows = rest[start : start + chunk]
        g = shapes(lx_u[rows], log_e[rows])
        select(rows, *_profile_sums(g, count[rows], mean[rows], c_fixed, d_fixed, False))
    return [starts[:, j] for j in range(n_starts)]


def _grid_minima(rss, c_all, d_all, slopes, log_e, n_starts):
    """The best ``n_starts`` local minima of profile RSS surfaces (C, B, E) as (C, n, 4).

    Local minima: no smaller value in the 3 x 3 neighbourhood; near-ties
    (within 1e-9, e.g. a step anywhere between two doses) count once;
    curves with fewer minima repeat their best.
    """
    n_curves, n_b, n_e = rss.shape
    # near-ties go to the shallower slope (the iteration cannot leave a saturated step)
    rank = np.argsort(np.argsort(np.abs(slopes), kind="stable"), kind="stable")
    rss = rss * (1.0 + 1e-11 * rank)[None, :, None]
    pad = np.pad(rss, ((0, 0), (1, 1), (1, 1)), constant_values=np.inf)
    rows_min = np.minimum(np.minimum(pad[:, :-2], pad[:, 1:-1]), pad[:, 2:])
    window = np.minimum(np.minimum(rows_min[:, :, :-2], rows_min[:, :, 1:-1]), rows_min[:, :, 2:])
    is_min = (rss <= window) & np.isfinite(rss)
    flat = np.where(is_min, rss, np.inf).reshape(n_curves, -1)
    m = min(4 * n_starts, flat.shape[1])
    top = np.argpartition(flat, m - 1, axis=1)[:, :m]
    val = np.take_along_axis(flat, top, 1)
    order = np.argsort(val, 1, kind="stable")
    top, val = np.take_along_axis(top, order, 1), np.take_along_axis(val, order, 1)
    tie = np.zeros_like(val, bool)
    tie[:, 1:] = val[:, 1:] <= val[:, :-1] * (1 + 1e-9) + 1e-300
    val = np.where(tie, np.inf, val)
    order = np.argsort(val, 1, kind="stable")[:, :n_starts]
    top, val = np.take_along_axis(top, order, 1), np.take_along_axis(val, order, 1)
    top = np.where(np.isfinite(val), top, top[:, :1])
    curves = np.arange(n_curves)[:, None]
    ib, ie = np.unravel_index(top, (n_b, n_e))
    return np.stack(
        [slopes[ib], c_all[curves, ib, ie], d_all[curves, ib, ie], log_e[curves, ie]], axis=-1
    )


@dataclass
class ManyFits:
    """Fits of one model to many curves (arrays over the curve axis).

    Attributes mirror :class:`~sepher.doseresponse.FitResult`: ``theta``
    (C, n_params) full parameters in drc order (fixed included), ``covariance``
    (C, p, p) over the free parameters, ``rss``, ``n``, ``df_residual``,
    ``converged``, ``aic``, ``flat_pvalue`` (C,), ``flags`` (a list per
    curve); ``dose``, ``response``, ``used`` (C, M) the data and the
    observations used; ``fallback`` (C,) True where the multi-start
    single-curve fit was used.
    """

    model: str
    names: list
    fixed: dict
    theta: np.ndarray
    covariance: np.ndarray
    rss: np.ndarray
    n: np.ndarray
    df_residual: np.ndarray
    converged: np.ndarray
    aic: np.ndarray
    flat_pvalue: np.ndarray
    flags: list
    dose: np.ndarray
    response: np.ndarray
    used: np.ndarray
    robust: str | None = None
    fallback: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))

    @property
    def free(self) -> list[int]:
        """Indices of the estimated parameters in ``theta``."""
        return [i for i, k in enumerate(self.names) if k not in self.fixed]

    @property
    def se(self) -> np.ndarray:
        """Standard errors (C, p) of the free parameters."""
        var = np.einsum("aii->ai", self.covariance)
        with np.errstate(invalid="ignore"):
            return np.sqrt(var)

    @property
    def sigma(self) -> np.ndarray:
        """Residual standard error per curve."""
        with np.errstate(all="ignore"):
            return np.where(self.df_residual > 0, np.sqrt(self.rss / self.df_residual), np.nan)

    def predict(self, dose) -> np.ndarray:
        """Fitted responses at ``dose`` (C, K) (one row of doses per curve)."""
        return model_jacobian_many(self.model, dose, self.theta, jac=False)[0]

    def replace_rows(self, rows, other: ManyFits) -> ManyFits:
        """A copy with the curves ``rows`` (bool mask) taken from ``other`` (fits of those rows)."""
        rows = np.asarray(rows, bool)
        out = {}
        for name in ("theta", "covariance", "rss", "n", "df_residual", "converged", "aic",
                     "flat_pvalue", "dose", "response", "used", "fallback"):  # fmt: skip
            value = getattr(self, name).copy()
            value[rows] = getattr(other, name)
            out[name] = value
        flags = list(self.flags)
        for i, f in zip(np.nonzero(rows)[0], other.flags, strict=True):
            flags[i] = f
        return ManyFits(
            model=self.model, names=self.names, fixed=self.fixed, robust=self.robust,
            flags=flags, **out,
        )  # fmt: skip

    def result(self, i: int) -> FitResult:
        """Curve ``i`` as a :class:`~sepher.doseresponse.FitResult`."""
        free_names = [self.names[k] for k in self.free]
        params = dict(zip(self.names, self.theta[i].tolist(), strict=True))
        se = dict(zip(free_names, self.se[i].tolist(), strict=True))
        df = int(self.df_residual[i])
        tq = float(stats.t.ppf(0.5 + CONFIDENCE / 2, df)) if df > 0 else np.nan
        ci = {k: (params[k] - tq * se[k], params[k] + tq * se[k]) for k in free_names}
        keep = self.used[i]
        return FitResult(
            model=self.model,
            params=params,
            se=se,
            ci=ci,
            covariance=pd.DataFrame(self.covariance[i], index=free_names, columns=free_names),
            rss=float(self.rss[i]),
            df_residual=df,
            n=int(self.n[i]),
            converged=bool(self.converged[i]),
            flags=list(self.flags[i]),
            aic=float(self.aic[i]),
            fixed=dict(self.fixed),
            dose=self.dose[i][keep],
            response=self.response[i][keep],
            robust=self.robust,
            flat_pvalue=float(self.flat_pvalue[i]),
        )


def _hessian_many(model, dose, y, used, theta, free):
    """Full RSS Hessian (A, p, p) in the free natural parameters (cf. ``rss_hessian``)."""
    f0, jac = model_jacobian_many(model, dose, theta)
    resid = (f0 - y) * used
    j = jac[..., free] * used[..., None]
    second = np.zeros((theta.shape[0], len(free), len(free)))
    for a, k in enumerate(free):
        h = 1e-5 * np.maximum(np.abs(theta[:, k]), 1e-3)
        tp, tm = theta.copy(), theta.copy()
        tp[:, k] += h
        tm[:, k] -= h
        jp = model_jacobian_many(model, dose, tp)[1][..., free]
        jm = model_jacobian_many(model, dose, tm)[1][..., free]
        dj = (jp - jm) / (2 * h[:, None, None])
        second[:, a] = np.einsum("am,amq->aq", resid, dj)
    second = 0.5 * (second + np.swapaxes(second, 1, 2))
    return 2.0 * (np.swapaxes(j, 1, 2) @ j + second)


def fit_many(
    dose,
    response,
    used=None,
    model: str = "LL.4",
    fixed: dict | None = None,
    robust: str | None = None,
    starts=(),
    least_squares: ManyFits | None = None,
    n_grid_starts: int | None = None,
    fit_curve_starts: bool | None = None,
    fallback: bool = True,
    method: str = "batch",
    max_iter: int = MAX_ITER,
) -> ManyFits:
    """Fit one dose-response model to many curves, as ``fit_curve`` on each.

    The last few batch fits without extra starts are remembered: the same
    call again (the same bytes of data, used mask and arguments; e.g. the fit
    rule's per-replicate fits of curves with one replicate and no outliers,
    the same problem as the pooled fits) returns a copy of the stored result,
    which is what the deterministic fit would compute again.

    Parameters
    ----------
    dose, response : array_like, shape (C, M)
        One curve per row (dose >= 0, vehicle = 0); NaN pairs are dropped.
    used : array_like of bool, shape (C, M), optional
        Observations to use (default: all); e.g. False for padding or outliers.
    model : {"LL.4", "LL.3", "LL.5", "W1.4"}
    fixed : dict, optional
        Parameters held fixed (scalars), as in ``fit_curve``.
    robust : {None, "soft_l1", "huber", "cauchy", "arctan"}
        Robust loss, minimised from the least-squares optimum with scale
        ``1.4826 MAD`` of its residuals (``fit_curve(robust=...)``).
    starts : sequence of ndarray (C, n_params)
        Extra starting parameter vectors (natural scale, drc order); rows with
        non-finite values are skipped. Tried with the profile-grid starts.
    least_squares : ManyFits, optional
        The least-squares fit of this model to the same data (used as the
        robust fit's start instead of fitting again).
    n_grid_starts : int, optional
        Local minima of the profile grid polished per curve (default 2; 0
        for W1.4, see ``fit_curve_starts``).
    fit_curve_starts : bool, optional
        Also polish from ``fit_curve``'s 9 variations of its self-starter
        (slopes b0, +/-1, +/-4 by ED at the dose quartiles; the self-starter
        itself is always tried), so that the best optimum is never one the
        single-curve fit would improve on. Default: True for W1.4, whose
        surface has one basin for ``b > 0`` and one for ``b < 0`` (the
        Weibull-1 and -2 shapes): it starts from fit_curve's 10 starts only,
        to reach the basin fit_curve reaches.
    fallback : bool
        Refit with ``fit_curve`` (multi-start) where the polish did not
        converge although the curve has a finite optimum (module docstring).
    method : {"batch", "multistart"}
        ``"multistart"``: ``fit_curve`` on each curve in a Python loop (the
        single-curve reference path, for comparisons and benchmarks).
    max_iter : int
        Levenberg-Marquardt iterations per start.

    Returns
    -------
    ManyFits
    """
    key = None
    if method == "batch" and not len(starts) and least_squares is None:
        x = np.atleast_2d(np.asarray(dose, float))
        y = np.atleast_2d(np.asarray(response, float))
        given = np.ones(x.shape, bool) if used is None else np.asarray(used, bool)
        if x.shape == y.shape == given.shape:
            digest = hashlib.sha256()
            for array in (x, y, given):
                digest.update(np.ascontiguousarray(array).tobytes())
            key = (
                model, tuple(sorted((fixed or {}).items())), robust, n_grid_starts,
                fit_curve_starts, fallback, max_iter, x.shape, digest.hexdigest(),
            )  # fmt: skip
            for k, fits, _ in _FIT_CACHE:
                if k == key:
                    return copy.deepcopy(fits)
    fits = _fit_many(
        dose, response, used, model=model, fixed=fixed, robust=robust, starts=starts,
        least_squares=least_squares, n_grid_starts=n_grid_starts,
        fit_curve_starts=fit_curve_starts, fallback=fallback, method=method, max_iter=max_iter,
    )  # fmt: skip
    if key is not None:
        size = sum(v.nbytes for v in vars(fits).values() if isinstance(v, np.ndarray))
        _FIT_CACHE.insert(0, (key, copy.deepcopy(fits), size))
        while len(_FIT_CACHE) > 1 and sum(entry[2] for entry in _FIT_CACHE) > FIT_CACHE_BYTES:
            _FIT_CACHE.pop()
    return fits


#: the last batch fits of this process (:func:`fit_many`): (key, fits, bytes), newest
#: first, holding at most FIT_CACHE_BYTES of result arrays
_FIT_CACHE: list = []
FIT_CACHE_BYTES = 256e6


def _fit_many(
    dose, response, used, *, model, fixed, robust, starts, least_squares, n_grid_starts,
    fit_curve_starts, fallback, method, max_iter,
) -> ManyFits:  # fmt: skip
    """:func:`fit_many` without its memory of the last fits."""
    m = get_model(model)
    names = list(m.param_names)
    fixed = {**m.default_fixed, **(fixed or {})}
    unknown = set(fixed) - set(names)
    if unknown:
        raise ValueError(f"fixed parameters {sorted(unknown)} not in model {m.name} {names}")
    x = np.atleast_2d(np.asarray(dose, float))
    y = np.atleast_2d(np.asarray(response, float))
    if x.shape != y.shape:
        raise ValueError(f"dose {x.shape} and response {y.shape} differ in shape")
    given = np.ones(x.shape, bool) if used is None else np.asarray(used, bool)
    if method == "multistart":
        return _multistart(x, y, given, m.name, fixed, robust)
    if method != "batch":
        raise ValueError(f"method must be 'batch' or 'multistart', not {method!r}")
    ok_obs = given & np.isfinite(x) & np.isfinite(y) & (x >= 0)
    n_curves = x.shape[0]
    free = [i for i, k in enumerate(names) if k not in fixed]
    p = len(free)
    n = ok_obs.sum(1)
    flags = [[] for _ in range(n_curves)]
    dropped = (given & ~ok_obs).sum(1)
    for i in np.nonzero(dropped)[0]:
        flags[i].append(f"dropped {int(dropped[i])} NaN/negative-dose observations")
    per_dose = _by_dose(x, y, ok_obs)
    lx_u, count, mean, n_unique = (per_dose[k] for k in ("lx", "count", "mean", "n_unique"))
    empty = n == 0
    too_few = ~empty & ((n <= p) | (n_unique < min(p, 3)))
    fit_rows = np.nonzero(~empty & ~too_few)[0]

    theta = np.full((n_curves, len(names)), np.nan)
    for k, v in fixed.items():
        theta[:, names.index(k)] = v
    rss = np.full(n_curves, np.nan)
    converged = np.zeros(n_curves, bool)
    use_fallback = np.zeros(n_curves, bool)
    robust_failed = np.zeros(n_curves, bool)
    scales = np.full(n_curves, np.nan)

    positive = x > 0
    with np.errstate(divide="ignore"):
        lx = np.where(positive, np.log(np.where(positive, x, 1.0)), 0.0)
    base_phi = _to_phi(np.where(np.isfinite(theta), theta, 1.0))
    problem = _Problem(m.name, lx, positive, y, ok_obs, base_phi, free)
    # least squares on the mean per dose (weights: wells per dose)
    problem_ls = _Problem(
        m.name, np.where(per_dose["positive"], lx_u, 0.0), per_dose["positive"], mean, count > 0,
        base_phi, free, weight=count, offset=per_dose["within"],
    )  # fmt: skip

    def with_fixed(phi):
        for k, v in fixed.items():
            phi[:, names.index(k)] = np.log(v) if k == "e" else v
        return phi

    if fit_rows.size and least_squares is not None:
        theta[fit_rows] = least_squares.theta[fit_rows]
        rss[fit_rows] = least_squares.rss[fit_rows]
        converged[fit_rows] = least_squares.converged[fit_rows]
        use_fallback[fit_rows] = least_squares.fallback[fit_rows]
    elif fit_rows.size:
        lo, hi = np.log(dose_range(x[fit_rows], ok_obs[fit_rows]))
        z_starts = []
        c_fix, d_fix = fixed.get("c", np.nan), fixed.get("d", np.nan)
        if fit_curve_starts is None:
            fit_curve_starts = m.family == "W1"
        if n_grid_starts is None:
            n_grid_starts = 0 if m.family == "W1" else 2
        if n_grid_starts > 0:
            with np.errstate(all="ignore"):
                grid = _profile_starts(
                    m.family, lx_u[fit_rows], count[fit_rows], mean[fit_rows], lo, hi,
                    c_fix, d_fix, n_grid_starts,
                )  # fmt: skip
            for g in grid:
                phi = np.ones((fit_rows.size, 5))
                phi[:, :4] = g
                z_starts.append((np.arange(fit_rows.size), with_fixed(phi)))
        # fit_curve's own starts: the self-starter and (fit_curve_starts) its 9
        # variations, slopes b0, +/-1, +/-4 by ED at the dose quartiles
        with np.errstate(all="ignore"):
            self_start = _self_start_many(x[fit_rows], y[fit_rows], ok_obs[fit_rows], c_fix, d_fix)
        good = np.isfinite(self_start).all(1)
        variants = [self_start]
        if fit_curve_starts:
            lx_pos = np.where(ok_obs & positive, lx, np.nan)[fit_rows]
            with np.errstate(all="ignore"):
                quartiles = np.exp(np.nanquantile(lx_pos, [0.25, 0.5, 0.75], axis=1))
            sign = np.where(self_start[:, 0] < 0, -1.0, 1.0)
            for b in (self_start[:, 0], sign, 4.0 * sign):
                for e in quartiles:
                    v = self_start.copy()
                    if "b" not in fixed:
                        v[:, 0] = b
                    if "e" not in fixed:
                        v[:, 3] = e
                    variants.append(v)
        for v in variants:
            phi = with_fixed(_to_phi(np.where(good[:, None], v, 1.0)))
            z_starts.append((np.nonzero(good)[0], phi))
        # a log-logistic start with c and d free is put in the b > 0 form
        # (the same curve mirrored, (b, c, d) -> (-b, d, c), exact for f = 1)
        mirror = m.family == "LL" and not ({"c", "d"} & set(fixed))
        for s in starts:
            s = np.array(s, float)[fit_rows]
            good = np.all(np.isfinite(s), 1) & (s[:, 3] > 0)
            if mirror:
                neg = s[:, 0] < 0
                s[neg, 0] *= -1.0
                s[neg, 1], s[neg, 2] = s[neg, 2], s[neg, 1].copy()
            z_starts.append(
                (np.nonzero(good)[0], with_fixed(_to_phi(np.where(good[:, None], s, 1.0))))
            )
        which = np.concatenate([w for w, _ in z_starts])
        z0 = np.concatenate([phi[w][:, free] for w, phi in z_starts])
        z_fit, rss_fit, conv_fit = _lm(problem_ls, z0, fit_rows[which], max_iter=max_iter)
        rss_fit = np.where(np.isfinite(rss_fit) & np.isfinite(z_fit).all(1), rss_fit, np.inf)
        # best optimum per curve: lowest RSS (the earlier start on ties)
        order = np.lexsort((np.arange(which.size), rss_fit, which))
        first = np.ones(order.size, bool)
        first[1:] = which[order[1:]] != which[order[:-1]]
        best = order[first]
        rows = fit_rows[which[best]]
        phi = base_phi[rows].copy()
        phi[:, free] = z_fit[best]
        theta[rows] = _from_phi(phi, len(names))
        rss[rows] = rss_fit[best]
        converged[rows] = (conv_fit[best] > 0) & np.isfinite(rss_fit[best])
        if fallback:
            # the polish failed where a finite optimum exists (inside the box):
            # multi-start fit_curve. Outside the box (no finite optimum: a step
            # between two doses, no lower plateau) every iteration only creeps
            # along the valley, fit_curve's too: the batch result stands.
            inside = _in_box(theta, x, ok_obs, "b" in fixed)
            need = np.zeros(n_curves, bool)
            need[fit_rows] = (~converged & inside)[fit_rows]
            for i in np.nonzero(need)[0]:
                single = _fit_curve_cached(x[i][ok_obs[i]], y[i][ok_obs[i]], m.name, fixed)
                theta[i] = [single.params[k] for k in names]
                rss[i] = single.rss
                converged[i] = single.converged
                use_fallback[i] = True
    if robust is not None and fit_rows.size:
        # from the least-squares optimum, loss scale 1.4826 MAD of its residuals
        rows = fit_rows[np.isfinite(rss[fit_rows])]
        f0 = model_jacobian_many(m.name, x[rows], theta[rows], jac=False)[0]
        r0 = np.where(ok_obs[rows], f0 - y[rows], np.nan)
        with np.errstate(all="ignore"):
            med = np.nanmedian(r0, 1)
            scale = 1.4826 * np.nanmedian(np.abs(r0 - med[:, None]), 1)
            scale = np.where(scale > 0, scale, np.maximum(np.nanstd(r0, 1), 1e-8))
        scales[rows] = scale
        theta_ls = theta[rows].copy()
        z_fit, rss_fit, conv_fit = _lm(
            problem, _to_phi(theta_ls)[:, free], rows, loss=robust, scale=scale, max_iter=max_iter
        )
        phi = base_phi[rows].copy()
        phi[:, free] = z_fit
        theta[rows] = _from_phi(phi, len(names))
        rss[rows] = rss_fit
        converged[rows] = (conv_fit > 0) & np.isfinite(rss_fit)
        inside = _in_box(theta_ls, x[rows], ok_obs[rows], "b" in fixed) & _in_box(
            theta[rows], x[rows], ok_obs[rows], "b" in fixed
        )
        for j in np.nonzero(~converged[rows] & fallback & inside)[0]:
            i = rows[j]
            single = _fit_curve_cached(
                x[i][ok_obs[i]], y[i][ok_obs[i]], m.name, fixed, robust=robust, start=theta_ls[j]
            )
            theta[i] = [single.params[k] for k in names]
            rss[i] = single.rss
            converged[i] = single.converged
            use_fallback[i] = True
            robust_failed[i] = any(f.startswith("robust fit failed") for f in single.flags)
    # RSS over the wells (the per-dose form differs in the last digits)
    rows = fit_rows[~use_fallback[fit_rows] & np.isfinite(theta[fit_rows]).all(1)]
    if rows.size:
        with np.errstate(all="ignore"):
            f_obs = model_jacobian_many(m.name, x[rows], theta[rows], jac=False)[0]
        resid = np.where(ok_obs[rows], f_obs - y[rows], 0.0)
        rss[rows] = np.einsum("am,am->a", resid, resid)
    # LL.4 symmetry (b, c, d) -> (-b, d, c): drc's c < d form
    if m.family == "LL" and m.name != "LL.5" and not ({"b", "c", "d"} & set(fixed)):
        flip = theta[:, 1] > theta[:, 2]
        theta[flip, 0] *= -1.0
        theta[flip, 1], theta[flip, 2] = theta[flip, 2], theta[flip, 1].copy()
    if robust is not None:
        for i in fit_rows[np.isfinite(scales[fit_rows])]:
            if robust_failed[i]:
                flags[i].append("robust fit failed; least-squares estimate kept")
            else:
                flags[i].append(
                    f"robust fit ({robust} loss, scale {scales[i]:.3g}); SEs approximate"
                )
    for i in np.nonzero(empty)[0]:
        flags[i].append("all NaN")
    for i in np.nonzero(too_few)[0]:
        flags[i].append("too few observations")
    converged &= np.all(np.isfinite(theta), 1)
    for i in fit_rows[~converged[fit_rows]]:
        flags[i].append("not converged")

    # covariance: inv(H / (2 s^2)), H the full Hessian of the RSS
    df_res = n - p
    cov = np.full((n_curves, p, p), np.nan)
    rows = fit_rows[np.isfinite(rss[fit_rows])]
    if rows.size and p:
        with np.errstate(all="ignore"):
            hess = _hessian_many(m.name, x[rows], y[rows], ok_obs[rows], theta[rows], free)
            s2 = rss[rows] / df_res[rows]
            valid = np.isfinite(hess).all((1, 2)) & (df_res[rows] > 0)
            scaled = hess / (2.0 * s2[:, None, None])
            cov_try = np.full_like(hess, np.nan)
            pos_s2 = valid & (s2 > 0)
            cov_try[valid & ~(s2 > 0)] = 0.0
            singular = np.zeros(rows.size, bool)
            if pos_s2.any():
                try:
                    cov_try[pos_s2] = np.linalg.inv(scaled[pos_s2])
                except np.linalg.LinAlgError:
                    for j in np.nonzero(pos_s2)[0]:
                        try:
                            cov_try[j] = np.linalg.inv(scaled[j])
                        except np.linalg.LinAlgError:
                            singular[j] = True
            diag_ok = np.all(np.einsum("aii->ai", cov_try) >= 0, 1)
        accept = valid & ~singular & diag_ok
        cov[rows[accept]] = cov_try[accept]
        for j in np.nonzero(valid & ~singular & ~diag_ok)[0]:
            flags[rows[j]].append("Hessian not positive definite: SEs unavailable")
        for j in np.nonzero(singular)[0]:
            flags[rows[j]].append("singular Hessian: SEs unavailable")
    aic = np.full(n_curves, np.nan)
    flat_p = np.full(n_curves, np.nan)
    with np.errstate(all="ignore"):
        fr = fit_rows
        aic[fr] = np.where(
            rss[fr] > 0, n[fr] * np.log(2 * np.pi * rss[fr] / n[fr]) + n[fr] + 2 * (p + 1), -np.inf
        )
        ymean = np.where(ok_obs, y, 0.0).sum(1) / np.maximum(n, 1)
        rss_flat = (np.where(ok_obs, y - ymean[:, None], 0.0) ** 2).sum(1)
        f_stat = ((rss_flat - rss) / max(p - 1, 1)) / (rss / df_res)
        test = (df_res > 0) & (p > 1) & (rss > 0)
        flat_p = np.where(test, stats.f.sf(f_stat, max(p - 1, 1), np.maximum(df_res, 1)), np.nan)
        flat_p = np.where(~test & (rss == 0) & (rss_flat > 0), 0.0, flat_p)
        flat_p[~np.isin(np.arange(n_curves), fr)] = np.nan
        lo, hi = dose_range(x, ok_obs)
        e_val = theta[:, 3]
        outside = np.isfinite(lo) & np.isfinite(e_val) & ~((lo <= e_val) & (e_val <= hi))
    for i in fit_rows:
        if rss_flat[i] == 0 or (np.isfinite(flat_p[i]) and flat_p[i] >= 0.05):
            flags[i].append(
                "flat curve: no significant dose effect (F test vs flat line, p >= 0.05)"
            )
        if outside[i]:
            flags[i].append("e (ED50) outside the tested dose range")
    return ManyFits(
        model=m.name,
        names=names,
        fixed=fixed,
        theta=theta,
        covariance=cov,
        rss=rss,
        n=n,
        df_residual=df_res,
        converged=converged,
        aic=aic,
        flat_pvalue=flat_p,
        flags=flags,
        dose=x,
        response=y,
        used=ok_obs,
        robust=robust,
        fallback=use_fallback,
    )


#: fallback fits already made in this process (:func:`_fit_curve_cached`), at most
#: FALLBACK_CACHE_SIZE of them
_FALLBACK_CACHE: dict = {}
FALLBACK_CACHE_SIZE = 4096


def _fit_curve_cached(x, y, model, fixed, robust=None, start=None) -> FitResult:
    """``fit_curve(x, y, ...)``, reused when this process made the same call before.

    The fallback refits a curve by the multi-start path, seconds per curve
    whose optimum lies far out; the workflow's fit rule fits the same wells
    twice (pooled, then per replicate: the same fit when a curve has one
    replicate and the same wells). ``fit_curve`` is deterministic, so a
    stored result (keyed by the exact bytes of the data and the arguments)
    is the result a new call would return.
    """
    key = (
        model,
        tuple(sorted((k, float(v)) for k, v in fixed.items())),
        robust,
        None if start is None else np.asarray(start, float).tobytes(),
        np.asarray(x, float).tobytes(),
        np.asarray(y, float).tobytes(),
    )
    hit = _FALLBACK_CACHE.get(key)
    if hit is None:
        hit = fit_curve(x, y, model=model, fixed=fixed, robust=robust, start=start)
        if len(_FALLBACK_CACHE) >= FALLBACK_CACHE_SIZE:
            _FALLBACK_CACHE.pop(next(iter(_FALLBACK_CACHE)))
        _FALLBACK_CACHE[key] = hit
    return copy.deepcopy(hit)


def dose_range(x, used) -> tuple[np.ndarray, np.ndarray]:
    """Smallest and largest positive used dose per row (NaN for none), (C,) each."""
    positive = used & (x > 0)
    lo = np.where(positive, x, np.inf).min(1) if x.shape[1] else np.full(x.shape[0], np.inf)
    hi = np.where(positive, x, -np.inf).max(1) if x.shape[1] else np.full(x.shape[0], -np.inf)
    return np.where(np.isfinite(lo), lo, np.nan), np.where(np.isfinite(hi), hi, np.nan)


def _in_box(theta, x, used, b_fixed) -> np.ndarray:
    """Finite parameters with ``e`` within 1000x of the tested doses and ``|b| <= 50``."""
    lo, hi = dose_range(x, used)
    with np.errstate(all="ignore"):
        inside = (theta[:, 3] >= lo / E_RANGE_FACTOR) & (theta[:, 3] <= hi * E_RANGE_FACTOR)
    inside &= (np.abs(theta[:, 0]) <= MAX_ABS_SLOPE) | b_fixed
    return inside & np.isfinite(theta).all(1)


def _from_phi(phi: np.ndarray, n_params: int) -> np.ndarray:
    theta = phi[:, :n_params].copy()
    with np.errstate(over="ignore"):
        theta[:, 3] = np.exp(phi[:, 3])
    return theta


def _multistart(x, y, given, model, fixed, robust) -> ManyFits:
    """``fit_curve`` (multi-start) on each curve, collected as :class:`ManyFits`."""
    m = get_model(model)
    names = list(m.param_names)
    fixed = {**m.default_fixed, **(fixed or {})}
    p = len([k for k in names if k not in fixed])
    n_curves = x.shape[0]
    singles = [
        fit_curve(x[i][given[i]], y[i][given[i]], model=model, fixed=fixed, robust=robust)
        for i in range(n_curves)
    ]
    cov = np.full((n_curves, p, p), np.nan)
    for i, fit in enumerate(singles):
        cov[i] = fit.covariance.to_numpy()
    return ManyFits(
        model=m.name,
        names=names,
        fixed=fixed,
        theta=np.array([[fit.params[k] for k in names] for fit in singles]).reshape(n_curves, -1),
        covariance=cov,
        rss=np.array([fit.rss for fit in singles], float),
        n=np.array([fit.n for fit in singles], int),
        df_residual=np.array([fit.df_residual for fit in singles], int),
        converged=np.array([fit.converged for fit in singles], bool),
        aic=np.array([fit.aic for fit in singles], float),
        flat_pvalue=np.array([fit.flat_pvalue for fit in singles], float),
        flags=[list(fit.flags) for fit in singles],
        dose=x,
        response=y,
        used=given & np.isfinite(x) & np.isfinite(y) & (x >= 0),
        robust=robust,
        fallback=np.ones(n_curves, bool),
    )


def lack_of_fit_many(fit: ManyFits) -> dict:
    """drc's ``modelFit`` lack-of-fit F test (:func:`~sepher.doseresponse.lack_of_fit`) per curve.

    Returns
    -------
    dict of ndarray (C,)
        ``rss_anova, df_anova, f, p`` (``f``, ``p`` NaN without replicate
        doses or without a fit).
    """
    per_dose = _by_dose(fit.dose, fit.response, fit.used)
    n_curves = fit.dose.shape[0]
    rss_anova = per_dose["within"]
    df_anova = fit.n - per_dose["n_unique"]
    df_model = fit.df_residual
    f = np.full(n_curves, np.nan)
    p = np.full(n_curves, np.nan)
    test = np.isfinite(fit.rss) & (df_anova > 0) & (df_model > df_anova) & (rss_anova > 0)
    if test.any():
        dfm, dfa = df_model[test], df_anova[test]
        f[test] = ((fit.rss[test] - rss_anova[test]) / (dfm - dfa)) / (rss_anova[test] / dfa)
        p[test] = stats.f.sf(f[test], dfm - dfa, dfa)
    return {"rss_anova": rss_anova, "df_anova": df_anova, "f": f, "p": p}
