"""Vectorised LL.4 fitting of many curves at once (screen scale).

Starting values come from a profile grid (variable projection): for fixed
slope ``b`` and ED50 ``e`` the LL.4 is linear in ``c`` and ``d``, so the
residual sum of squares minimised over ``c, d`` is available in closed form
for every curve on a (b, log e) grid at once (36 log-spaced slopes from 1e-3
to the slope bound, ED50s every third of a dose step across the tested range
and out to the ``e`` box). The best few local minima of that profile surface
(4 by default: they cover the competing basins of real screen curves, e.g. a
step at the top dose vs. a shallow decline with ``e`` at its bound) are each
polished by a box-constrained Levenberg-Marquardt iteration written in numpy
array operations over the curve axis (no Python loop over curves): each
iteration forms every curve's residuals, Jacobian and 4 x 4 normal
equations at once and solves them in closed form; curves drop out of the
active set as they converge. The best optimum per curve is kept.

Standard errors are drc's (full Hessian of the RSS, see
:mod:`sepher.doseresponse.fit`), computed for all curves at once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special, stats

from .fit import CONFIDENCE

__all__ = ["fit_ll4_batch"]

_LOG_ZERO = -1e3  # log(dose) used for dose 0: exp(b * (-1e3 - log e)) underflows to 0
_T_CLIP = 50.0  # |b (log x - log e)| beyond this: the logistic is 0/1 to double precision


def _ll4_jac(lx, z, with_jac=True):
    """LL.4 response and Jacobian in z = (b, c, d, log e), vectorised over curves.

    lx : (N, D) log doses; z : (N, 4).
    Returns f (N, D) and J (N, D, 4).
    """
    b, c, d, le = z[:, 0:1], z[:, 1:2], z[:, 2:3], z[:, 3:4]
    dl = lx - le
    t = np.clip(b * dl, -_T_CLIP, _T_CLIP)
    g = 1.0 / (1.0 + np.exp(t))
    span = d - c
    f = c + span * g
    if not with_jac:
        return f, None
    k = -span * g * (1.0 - g)  # d f / d t
    jac = np.empty(f.shape + (4,))
    jac[..., 0] = k * dl
    jac[..., 1] = 1.0 - g
    jac[..., 2] = g
    jac[..., 3] = -k * b
    return f, jac


def _self_start(lx, y, w, x_pos_mask):
    """Vectorised log-logistic self-starter. Returns z0 (N, 4)."""
    n_curves, n_doses = y.shape
    big = np.where(w, y, -np.inf).max(axis=1)
    small = np.where(w, y, np.inf).min(axis=1)
    spread = big - small
    pad = np.where(spread > 0, 1e-3 * spread, 1e-2)
    # falling or rising: mean of the lowest vs highest quarter of the doses
    order = np.argsort(np.where(w, lx, np.inf), axis=1)
    n_obs = w.sum(axis=1)
    quarter = np.maximum(1, n_obs // 4)
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(n_doses)[None, :].repeat(n_curves, 0), axis=1)
    low_q = w & (ranks < quarter[:, None])
    high_q = w & (ranks >= (n_obs - quarter)[:, None])
    y0 = np.where(w, y, 0.0)
    mean_low = (y0 * low_q).sum(1) / np.maximum(low_q.sum(1), 1)
    mean_high = (y0 * high_q).sum(1) / np.maximum(high_q.sum(1), 1)
    falling = mean_low >= mean_high
    c = np.where(falling, small - pad, big + pad)
    d = np.where(falling, big + pad, small - pad)
    with np.errstate(divide="ignore", invalid="ignore"):
        zlin = np.log((d[:, None] - y) / (y - c[:, None]))
    ok = w & x_pos_mask & np.isfinite(zlin)
    m = ok.sum(1)
    xs = np.where(ok, lx, 0.0)
    zs = np.where(ok, zlin, 0.0)
    mx = xs.sum(1) / np.maximum(m, 1)
    mz = zs.sum(1) / np.maximum(m, 1)
    sxx = (np.where(ok, xs - mx[:, None], 0.0) ** 2).sum(1)
    sxz = (np.where(ok, (xs - mx[:, None]) * (zs - mz[:, None]), 0.0)).sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = sxz / sxx
        log_e = mx - mz / slope
    lx_pos = np.where(w & x_pos_mask, lx, np.nan)
    lo, hi = np.nanmin(lx_pos, axis=1), np.nanmax(lx_pos, axis=1)
    mid = 0.5 * (lo + hi)
    good = (m >= 2) & np.isfinite(slope) & (np.abs(slope) > 1e-3)
    b = np.where(good, np.clip(slope, -20, 20), 1.0)
    log_e = np.where(good & (log_e > lo - 7) & (log_e < hi + 7), log_e, mid)
    return np.column_stack([b, c, d, log_e]), lo, hi


def _log_e_grid(lx, w, lo, hi, log_factor, per_gap=3, max_points=80):
    """Candidate log ED50s (N, E) for the profile grid, one sorted row per curve.

    Every third of the median log-dose spacing over the tested range extended
    by one spacing each side, then every spacing out to the ``e`` box
    (``log_factor`` beyond the tested range), the box ends included.
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


def _profile_rss(lx, y, w, slopes, log_e, chunk=128):
    """LL.4 RSS profiled over ``c`` and ``d`` on a (b, log e) grid (variable projection).

    For fixed ``b`` and ``e`` the LL.4 ``f = c + (d - c) g`` is linear in
    ``c`` and ``d``, so each grid point's best ``c, d`` and RSS come in closed
    form. Sums are taken on centred ``g`` and ``y`` (the raw normal equations
    lose all precision when ``g`` is nearly constant over the tested doses).

    lx, y, w : (N, D); slopes : (B,); log_e : (N, E) or (1, E) when every
    curve has the doses of ``lx[0]``. Returns rss, c, d, each (N, B, E).
    """
    n_curves, n_doses = y.shape
    wf = w.astype(float)
    y0 = np.where(w, y, 0.0)
    n = wf.sum(1)
    ybar = y0.sum(1) / n
    yc = (y0 - ybar[:, None]) * wf
    syy = (yc * yc).sum(1)
    shape = (n_curves, slopes.size, log_e.shape[1])
    if log_e.shape[0] == 1:
        # shared doses: the grid's g is one (B E, D) matrix; per-curve sums are
        # matrix products (g centred over the doses first, exact for complete rows)
        t = slopes[:, None, None] * (lx[0][None, None, :] - log_e[0][None, :, None])
        g = 1.0 / (1.0 + np.exp(np.clip(t, -_T_CLIP, _T_CLIP))).reshape(-1, n_doses)
        g_mean = g.mean(1)
        gc = g - g_mean[:, None]
        s1 = wf @ gc.T
        s2 = wf @ (gc * gc).T
        sgy = yc @ gc.T
        g_bar = s1 / n[:, None]
        sgg = s2 - s1 * g_bar
        g_bar = g_bar + g_mean[None, :]
    else:
        sgg = np.empty((n_curves, slopes.size * log_e.shape[1]))
        sgy, g_bar, s2 = np.empty_like(sgg), np.empty_like(sgg), np.empty_like(sgg)
        for start in range(0, n_curves, chunk):
            sl = slice(start, start + chunk)
            t = slopes[None, :, None, None] * (
                lx[sl, None, None, :] - log_e[sl, None, :, None]
            )  # (n, B, E, D)
            g = 1.0 / (1.0 + np.exp(np.clip(t, -_T_CLIP, _T_CLIP)))
            g = g.reshape(g.shape[0], -1, n_doses)
            wb = wf[sl, None, :]
            gb = (g * wb).sum(-1) / n[sl, None]
            gc = (g - gb[..., None]) * wb
            sgg[sl] = (gc * gc).sum(-1)
            sgy[sl] = np.einsum("ngd,nd->ng", gc, yc[sl])
            g_bar[sl] = gb
            s2[sl] = sgg[sl]
    ok = sgg > 1e-13 * np.maximum(s2, 1e-300)
    span = np.where(ok, sgy / np.where(ok, sgg, 1.0), 0.0)  # d - c
    rss = np.where(ok, syy[:, None] - span * sgy, syy[:, None])
    c = ybar[:, None] - span * g_bar
    return rss.reshape(shape), c.reshape(shape), (c + span).reshape(shape)


def _grid_starts(
    lx,
    y,
    w,
    lo,
    hi,
    log_factor,
    max_abs_slope,
    n_starts=4,
    shared=False,
    min_slope=1e-3,
    n_slopes=36,
):
    """Starting values at the best ``n_starts`` local minima of the profile RSS.

    The (b, log e) grid: ``n_slopes`` slopes from ``min_slope`` to
    ``max_abs_slope`` (log spaced) by the candidate ED50s of
    :func:`_log_e_grid`; ``c, d`` exact at each point (:func:`_profile_rss`).
    Local minima (no smaller value in their 3 x 3 neighbourhood) are ranked by
    RSS, near-ties counted once; curves with fewer minima repeat their best.
    Returns a list of ``n_starts`` arrays (N, 4) of (b, c, d, log e), b > 0.
    """
    slopes = np.geomspace(min_slope, max_abs_slope, n_slopes)
    if shared:  # one grid over the union of the curves' tested ranges
        log_e = _log_e_grid(
            lx[:1], w.any(0, keepdims=True), lo.min(keepdims=True), hi.max(keepdims=True),
            log_factor,
        )  # fmt: skip
    else:
        log_e = _log_e_grid(lx, w, lo, hi, log_factor)
    rss, c, d = _profile_rss(lx, y, w, slopes, log_e)
    n_curves, n_b, n_e = rss.shape
    # near-ties (within 1e-10) go to the shallower slope: on a plateau of
    # saturated steps the iteration can only move from a smooth start
    rss = rss * (1.0 + 1e-11 * np.arange(n_b))[None, :, None]
    # local minima: no smaller value in the 3 x 3 window (separable running min)
    pad = np.pad(rss, ((0, 0), (1, 1), (1, 1)), constant_values=np.inf)
    rows_min = np.minimum(np.minimum(pad[:, :-2], pad[:, 1:-1]), pad[:, 2:])
    window = np.minimum(np.minimum(rows_min[:, :, :-2], rows_min[:, :, 1:-1]), rows_min[:, :, 2:])
    is_min = (rss <= window) & np.isfinite(rss)
    flat = np.where(is_min, rss, np.inf).reshape(n_curves, -1)
    # rank the minima; ties (a plateau such as a step anywhere between two
    # doses) count once, so that they cannot crowd out a distinct basin
    m = min(4 * n_starts, flat.shape[1])
    top = np.argpartition(flat, m - 1, axis=1)[:, :m]
    val = np.take_along_axis(flat, top, 1)
    order = np.argsort(val, 1)
    top, val = np.take_along_axis(top, order, 1), np.take_along_axis(val, order, 1)
    tie = np.zeros_like(val, bool)
    tie[:, 1:] = val[:, 1:] <= val[:, :-1] * (1 + 1e-9) + 1e-300
    val = np.where(tie, np.inf, val)
    order = np.argsort(val, 1, kind="stable")[:, :n_starts]
    top, val = np.take_along_axis(top, order, 1), np.take_along_axis(val, order, 1)
    k = top.shape[1]
    top = np.where(np.isfinite(val), top, top[:, :1])  # fewer minima: repeat the best
    curves = np.arange(n_curves)[:, None]
    ib, ie = np.unravel_index(top, (n_b, n_e))
    le = log_e[np.zeros_like(curves) if shared else curves, ie]
    z = np.stack([slopes[ib], c[curves, ib, ie], d[curves, ib, ie], le], axis=-1)
    return [z[:, j] for j in range(k)]


def _ref_model(lx, lx_ref, z):
    """LL.4 in the LM parametrisation z = (b, h, d, log e), h = f(x_ref).

    ``f = d (1 - q) + h q`` with ``q = s(x) / s(x_ref)``, ``s = 1 - g`` the
    logistic of ``t = b (log x - log e)``, i.e. ``c = d - (d - h) / s(x_ref)``.
    Anchoring the curve at the top tested dose turns drc's curved valley
    ``c -> -inf, e -> inf`` (curves that fall only at the top dose) into a
    flat direction in ``log e``, so the iteration stops near the infimum
    instead of creeping along it.
    lx : (N, D); lx_ref : (N,); z : (N, 4). Returns f (N, D) and the four
    Jacobian columns, each (N, D).
    """
    b, h, d, le = z[:, 0:1], z[:, 1:2], z[:, 2:3], z[:, 3:4]
    ref = lx_ref[:, None]
    dl = lx - le
    dl_ref = ref - le
    s = special.expit(b * dl)
    s_ref = np.maximum(special.expit(b * dl_ref), 1e-300)
    q = s / s_ref
    k = (h - d) * q
    f = d + k
    jac_b = k * ((dl - dl_ref) + s_ref * dl_ref - s * dl)
    jac_le = k * b * (s - s_ref)
    return f, (jac_b, q, 1.0 - q, jac_le)


def _solve4(a, rhs):
    """Solve the 4 x 4 symmetric positive definite systems ``a x = rhs`` at once.

    a : dict {(i, j): (N,)} for i >= j; rhs : list of 4 (N,) arrays.
    Jacobi-scaled Cholesky, unrolled over the curve axis. Returns x (N, 4)
    and ok (N,) (False where a pivot is not positive or not finite).
    """
    sc = [1.0 / np.sqrt(a[i, i]) for i in range(4)]
    m = {(i, j): a[i, j] * sc[i] * sc[j] for (i, j) in a}
    low = {}
    ok = np.ones(rhs[0].shape, bool)
    for j in range(4):
        piv = m[j, j] - sum(low[j, k] ** 2 for k in range(j))
        ok &= piv > 1e-14
        low[j, j] = np.sqrt(np.where(piv > 1e-14, piv, 1.0))
        for i in range(j + 1, 4):
            low[i, j] = (m[i, j] - sum(low[i, k] * low[j, k] for k in range(j))) / low[j, j]
    u = []
    for i in range(4):
        u.append((rhs[i] * sc[i] - sum(low[i, k] * u[k] for k in range(i))) / low[i, i])
    x = [None] * 4
    for i in range(3, -1, -1):
        x[i] = (u[i] - sum(low[k, i] * x[k] for k in range(i + 1, 4))) / low[i, i]
    out = np.column_stack([x[i] * sc[i] for i in range(4)])
    return out, ok & np.isfinite(out).all(1)


_PAIRS = [(i, j) for i in range(4) for j in range(i + 1)]


def _lm(lx, lx_ref, y, w, z, lower, upper, max_iter=200, ftol=1e-10, gtol=1e-8):
    """Batched, box-constrained Levenberg-Marquardt on z = (b, h, d, log e).

    Coordinates at a bound with the descent direction pointing outwards are
    held fixed for that iteration (active set); other steps are clipped to
    the box. Each iteration forms every active curve's 4 x 4 normal equations
    from the Jacobian columns and solves them in closed form (:func:`_solve4`);
    curves drop out of the active set as they finish.
    Returns z, rss, converged (N,), iterations used (N,).
    """
    n = z.shape[0]
    z = np.clip(z, lower, upper)
    y0 = np.where(w, y, 0.0)
    wf = w.astype(float)
    f, cols = _ref_model(lx, lx_ref, z)
    a_r = (f - y0) * wf
    a_j = [c * wf for c in cols]
    rss = (a_r * a_r).sum(1)
    converged = np.zeros(n, bool)
    iters = np.zeros(n, int)
    active = np.arange(n)
    a_lx, a_ref, a_y, a_w, a_z, a_rss = lx, lx_ref, y0, wf, z.copy(), rss.copy()
    a_lo, a_hi, a_lam, a_nu = lower, upper, np.full(n, 1e-3), np.full(n, 2.0)
    a_dmax = np.zeros((n, 4))
    for it in range(max_iter):
        jtj = {(i, j): np.einsum("nd,nd->n", a_j[i], a_j[j]) for (i, j) in _PAIRS}
        grad = np.column_stack([np.einsum("nd,nd->n", a_r, a_j[i]) for i in range(4)])
        tol_box = 1e-9 * (np.abs(a_z) + 1.0)
        blocked = ((a_z <= a_lo + tol_box) & (grad > 0)) | ((a_z >= a_hi - tol_box) & (grad < 0))
        grad = np.where(blocked, 0.0, grad)
        for i, j in _PAIRS:
            if i == j:
                jtj[i, i] = np.where(blocked[:, i], 1.0, jtj[i, i])
            else:
                jtj[i, j] = np.where(blocked[:, i] | blocked[:, j], 0.0, jtj[i, j])
        diag_jtj = np.column_stack([jtj[i, i] for i in range(4)])
        # MINPACK scaling: running maximum of the column norms, so that a
        # column vanishing in a saturated region cannot invite a huge step
        a_dmax = np.maximum(a_dmax, diag_jtj)
        diag = np.where(
            blocked, 1.0, np.maximum(a_dmax, 1e-12 * a_dmax.max(1, keepdims=True) + 1e-300)
        )
        # convergence (MINPACK-style): the projected gradient is orthogonal to
        # every Jacobian column to within gtol
        # (columns vanishing in a saturated region carry no information: skipped)
        col = np.sqrt(diag_jtj)
        col = np.where(col > 1e-7 * col.max(1, keepdims=True), col, np.inf)
        cosine = (np.abs(grad) / (col * np.sqrt(a_rss)[:, None] + 1e-300)).max(1)
        stationary = (cosine <= gtol) | (a_rss <= 1e-30)
        lhs = dict(jtj)
        for i in range(4):
            lhs[i, i] = jtj[i, i] + a_lam * diag[:, i]
        step, solved = _solve4(lhs, [-grad[:, i] for i in range(4)])
        broken = ~(np.isfinite(grad).all(1) & np.isfinite(diag_jtj).all(1))
        step = np.where(solved[:, None], step, 0.0)
        z_new = np.clip(a_z + step, a_lo, a_hi)
        f_new, cols_new = _ref_model(a_lx, a_ref, z_new)
        r_new = (f_new - a_y) * a_w
        rss_new = (r_new * r_new).sum(1)
        better = solved & np.isfinite(rss_new) & (rss_new < a_rss) & ~stationary
        # also done: an accepted step with negligible RSS change, or damping
        # exhausted (no descent left at this precision)
        small_f = better & ((a_rss - rss_new) <= ftol * rss_new)
        exhausted = a_lam > 1e10
        done = stationary | small_f | exhausted | broken
        ok = (stationary | small_f | (exhausted & (cosine <= 1e-6))) & ~broken
        # Nielsen (1999) damping update from the gain ratio
        taken = z_new - a_z
        quad = sum(
            (1.0 if i == j else 2.0) * taken[:, i] * jtj[i, j] * taken[:, j] for (i, j) in _PAIRS
        )
        predicted = -(2.0 * (taken * grad).sum(1) + quad)
        rho = (a_rss - rss_new) / np.where(predicted > 0, predicted, np.inf)
        shrink = np.maximum(1.0 / 3.0, 1.0 - (2.0 * np.clip(rho, 0, 1) - 1.0) ** 3)
        if better.any():
            a_z[better] = z_new[better]
            a_r[better] = r_new[better]
            for i in range(4):
                a_j[i][better] = cols_new[i][better] * a_w[better]
            a_rss[better] = rss_new[better]
        a_lam = np.where(better, np.maximum(a_lam * shrink, 1e-12), a_lam * a_nu)
        a_nu = np.where(better, 2.0, a_nu * 2.0)
        if done.any() or it == max_iter - 1:
            z[active] = a_z
            rss[active] = a_rss
            iters[active] = it + 1
            converged[active[done]] = ok[done]
            keep = ~done
            active = active[keep]
            if active.size == 0:
                break
            a_lx, a_ref, a_y, a_w = a_lx[keep], a_ref[keep], a_y[keep], a_w[keep]
            a_z, a_r, a_rss, a_lam, a_nu = (
                a_z[keep],
                a_r[keep],
                a_rss[keep],
                a_lam[keep],
                a_nu[keep],
            )
            a_j = [c[keep] for c in a_j]
            a_dmax = a_dmax[keep]
            a_lo, a_hi = a_lo[keep], a_hi[keep]
    return z, rss, converged, iters


def _natural_hessian_term(lx, y, w, theta):
    """J'J + sum_i r_i d2f_i in natural (b, c, d, e), batched. Returns (N, 4, 4)."""

    def jac_nat(th):
        z = th.copy()
        z[:, 3] = np.log(th[:, 3])
        f, jj = _ll4_jac(lx, z)
        jj[..., 3] /= th[:, 3:4]
        return f, jj

    wf = w.astype(float)
    f, jac = jac_nat(theta)
    r = (f - np.where(w, y, 0.0)) * wf
    jac = jac * wf[..., None]
    out = np.einsum("ndi,ndj->nij", jac, jac)
    for k in range(4):
        h = 1e-5 * np.maximum(np.abs(theta[:, k]), 1e-3)
        tp, tm = theta.copy(), theta.copy()
        tp[:, k] += h
        tm[:, k] -= h
        dj = (jac_nat(tp)[1] - jac_nat(tm)[1]) / (2 * h[:, None, None])
        out[:, k, :] += np.einsum("nd,ndj->nj", r, dj)
    return 0.5 * (out + np.swapaxes(out, 1, 2))


def fit_ll4_batch(
    doses,
    responses,
    restarts: bool = True,
    max_iter: int = 200,
    e_range_factor: float = 1e3,
    max_abs_slope: float = 50.0,
    n_starts: int = 4,
) -> pd.DataFrame:
    """Fit LL.4 (drc convention) to many dose-response curves at once.

    Parameters
    ----------
    doses : array_like, shape (n_doses,) or (n_curves, n_doses)
        Doses (>= 0; 0 = vehicle, entering the fit as ``f(0) = d``), any unit.
    responses : array_like, shape (n_curves, n_doses)
        Responses; NaN marks a missing observation.
    restarts : bool
        Start from the ``n_starts`` best local minima of the profile RSS grid
        and keep each curve's best optimum (default True); False: one start,
        drc's log-logistic self-starter (vectorised).
    max_iter : int
        Levenberg-Marquardt iterations per start.
    e_range_factor : float
        ``e`` is kept within ``[min dose / factor, max dose * factor]`` (positive
        doses). Without a box, curves that fall only at the top dose or
        not at all have no finite least-squares optimum (``e`` and ``c`` run off
        to infinity); the box gives them a well-defined one, flagged.
    max_abs_slope : float
        ``|b|`` bound; at ``|b| = 50`` the 10-90% transition spans a dose factor
        of 1.09, i.e. a step between two tested doses.
    n_starts : int
        Local minima of the profile grid polished per curve (with ``restarts``).

    Returns
    -------
    pandas.DataFrame
        One row per curve: ``b, c, d, e`` and their SEs ``se_b ... se_e``
        (drc full-Hessian covariance), ``ed50`` (= e), ``ed50_se``,
        ``ed50_lower``, ``ed50_upper`` (delta method, t-based 95%),
        ``rss, n, df_residual, converged, iterations, flags``.
    """
    y = np.atleast_2d(np.asarray(responses, dtype=float))
    x = np.asarray(doses, dtype=float)
    x = np.broadcast_to(x, y.shape) if x.ndim == 1 else x
    if x.shape != y.shape:
        raise ValueError(f"doses {x.shape} and responses {y.shape} do not match")
    n_curves = y.shape[0]
    w = np.isfinite(y) & np.isfinite(x) & (x >= 0)
    positive = x > 0
    with np.errstate(divide="ignore"):
        lx = np.where(positive, np.log(np.where(positive, x, 1.0)), _LOG_ZERO)
    n_obs = w.sum(1)
    fittable = (n_obs > 4) & ((w & positive).sum(1) >= 3)
    idx = np.nonzero(fittable)[0]
    lx_f, y_f, w_f = lx[idx], y[idx], w[idx]
    with np.errstate(all="ignore"):
        z0, lo, hi = _self_start(lx_f, y_f, w_f, positive[idx])
        starts = [] if restarts else [z0]
        if restarts:
            shared = bool(np.all(lx_f == lx_f[:1]))
            starts += _grid_starts(
                lx_f, y_f, w_f, lo, hi, np.log(e_range_factor), max_abs_slope,
                n_starts=n_starts, shared=shared,
            )  # fmt: skip
        k = len(starts)
        z_all = np.concatenate(starts)
        # canonical form b > 0 (c: high-dose asymptote, d: dose-0 asymptote)
        flip = z_all[:, 0] < 0
        z_all[flip, 0] *= -1.0
        z_all[flip, 1], z_all[flip, 2] = z_all[flip, 2], z_all[flip, 1].copy()
        rep = np.tile(np.arange(idx.size), k)
        log_factor = np.log(e_range_factor)
        lower = np.column_stack(
            [np.full(idx.size, 1e-6), np.full(idx.size, -np.inf),
             np.full(idx.size, -np.inf), lo - log_factor]
        )[rep]  # fmt: skip
        upper = np.column_stack(
            [np.full(idx.size, max_abs_slope), np.full(idx.size, np.inf),
             np.full(idx.size, np.inf), hi + log_factor]
        )[rep]  # fmt: skip
        # LM parametrisation: h = f(top tested dose) instead of c
        lx_ref = hi[rep]
        g_ref = 1.0 / (1.0 + np.exp(np.clip(z_all[:, 0] * (lx_ref - z_all[:, 3]), -700, 700)))
        z_ref = z_all.copy()
        z_ref[:, 1] = z_all[:, 1] + (z_all[:, 2] - z_all[:, 1]) * g_ref
        z_fit, rss_fit, conv_fit, it_fit = _lm(
            lx_f[rep], lx_ref, y_f[rep], w_f[rep], z_ref, lower, upper, max_iter=max_iter
        )
        # back to drc's c: c = d - (d - h) / (1 - g(x_ref))
        t_ref = z_fit[:, 0] * (lx_ref - z_fit[:, 3])
        s_ref = np.exp(t_ref - np.logaddexp(0.0, t_ref))
        z_fit[:, 1] = z_fit[:, 2] - (z_fit[:, 2] - z_fit[:, 1]) / s_ref
    rss_fit = np.where(np.isfinite(rss_fit) & np.all(np.isfinite(z_fit), 1), rss_fit, np.inf)
    rss_fit = rss_fit.reshape(k, idx.size)
    best = np.argmin(rss_fit, axis=0)
    pick = best * idx.size + np.arange(idx.size)
    z_best = z_fit[pick]
    rss_best = rss_fit[best, np.arange(idx.size)]
    conv_best = conv_fit[pick] & np.isfinite(rss_best)
    iters = it_fit.reshape(k, idx.size).sum(0)

    # drc's convention: c below d (an increasing curve has b < 0)
    flip = z_best[:, 1] > z_best[:, 2]
    z_best[flip, 0] *= -1.0
    z_best[flip, 1], z_best[flip, 2] = z_best[flip, 2], z_best[flip, 1].copy()
    theta = z_best.copy()
    with np.errstate(over="ignore"):
        theta[:, 3] = np.exp(z_best[:, 3])
    df_res = n_obs[idx] - 4
    s2 = rss_best / df_res
    with np.errstate(all="ignore"):
        curv = _natural_hessian_term(lx_f, y_f, w_f, theta)
        finite = np.all(np.isfinite(curv), axis=(1, 2))
        cov = np.full_like(curv, np.nan)
        det_ok = finite & (
            np.abs(np.linalg.det(np.where(finite[:, None, None], curv, np.eye(4)))) > 0
        )
        if det_ok.any():
            cov[det_ok] = np.linalg.inv(curv[det_ok]) * s2[det_ok, None, None]
        var = np.einsum("nii->ni", cov)
        se = np.sqrt(np.where(var >= 0, var, np.nan))
    tq = stats.t.ppf(0.5 + CONFIDENCE / 2, np.maximum(df_res, 1))

    out = pd.DataFrame(
        np.nan,
        index=pd.RangeIndex(n_curves),
        columns=["b", "c", "d", "e", "se_b", "se_c", "se_d", "se_e", "ed50", "ed50_se",
                 "ed50_lower", "ed50_upper", "rss"],
    )  # fmt: skip
    out.loc[idx, ["b", "c", "d", "e"]] = theta
    out.loc[idx, ["se_b", "se_c", "se_d", "se_e"]] = se
    out.loc[idx, "ed50"] = theta[:, 3]
    out.loc[idx, "ed50_se"] = se[:, 3]
    out.loc[idx, "ed50_lower"] = theta[:, 3] - tq * se[:, 3]
    out.loc[idx, "ed50_upper"] = theta[:, 3] + tq * se[:, 3]
    out.loc[idx, "rss"] = rss_best
    out["n"] = n_obs
    out["df_residual"] = n_obs - 4
    converged = np.zeros(n_curves, bool)
    converged[idx] = conv_best
    out["converged"] = converged
    iterations = np.zeros(n_curves, int)
    iterations[idx] = iters
    out["iterations"] = iterations
    flag_lists = [[] for _ in range(n_curves)]

    def add(mask_rows, text):
        for i in np.nonzero(mask_rows)[0]:
            flag_lists[i].append(text)

    full = np.zeros(n_curves, bool)

    def on_fitted(mask):
        m = full.copy()
        m[idx[mask]] = True
        return m

    add(n_obs == 0, "all NaN")
    add((n_obs > 0) & ~fittable, "too few observations")
    add(on_fitted(~conv_best), "not converged")
    xpos_lo, xpos_hi = np.exp(lo), np.exp(hi)
    outside = (theta[:, 3] < xpos_lo) | (theta[:, 3] > xpos_hi)
    add(on_fitted(outside), "e (ED50) outside the tested dose range")
    log_factor = np.log(e_range_factor)
    at_e_bound = np.isclose(z_best[:, 3], lo - log_factor) | np.isclose(
        z_best[:, 3], hi + log_factor
    )
    add(on_fitted(at_e_bound), "e at its bound (no finite least-squares optimum)")
    add(
        on_fitted(np.isclose(np.abs(z_best[:, 0]), max_abs_slope)),
        "b at its bound (step-like curve)",
    )
    add(on_fitted(~np.isfinite(se).all(1)), "SEs unavailable")
    flags = np.array(["; ".join(f) for f in flag_lists], dtype=object)
    out["flags"] = flags
    return out
