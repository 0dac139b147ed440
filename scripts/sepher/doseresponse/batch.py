"""Vectorised LL.4 fitting of many curves at once (screen scale).

All curves are fitted together by a Levenberg-Marquardt iteration written
in numpy array operations over the curve axis (no Python loop over curves):
each iteration builds every curve's residuals, Jacobian and 4 x 4 normal
equations at once and solves them as one batched linear system; curves drop
out of the active set as they converge. Starting values come from a
vectorised version of drc's log-logistic self-starter (c, d just beyond the
observed range; b, e from the regression of ``log((d - y) / (y - c))`` on
``log x``), plus a few vectorised restarts (ED50 at the quartiles of the
tested log-dose range, slopes 1 and 4); the best optimum per curve is kept.

Standard errors are drc's (full Hessian of the RSS, see
:mod:`sepher.doseresponse.fit`), computed for all curves at once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

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


def _ll4_ref_jac(lx, lx_ref, z):
    """LL.4 in the LM parametrisation z = (b, h, d, log e), h = f(x_ref).

    ``f = d (1 - q) + h q`` with ``q = (1 - g(x)) / (1 - g(x_ref))``, i.e.
    ``c = d - (d - h) / (1 - g(x_ref))``. Anchoring the curve at the top
    tested dose turns drc's curved valley ``c -> -inf, e -> inf`` (curves
    that fall only at the top dose) into a flat direction in ``log e``, so
    the iteration stops near the infimum instead of creeping along it.
    lx : (N, D); lx_ref : (N,); z : (N, 4). Returns f (N, D), J (N, D, 4).
    """
    b, h, d, le = z[:, 0:1], z[:, 1:2], z[:, 2:3], z[:, 3:4]
    ref = lx_ref[:, None]
    t = b * (lx - le)
    t_ref = b * (ref - le)
    l1 = np.logaddexp(0.0, t)
    l1_ref = np.logaddexp(0.0, t_ref)
    log_q = b * (lx - ref) + l1_ref - l1
    q = np.exp(np.minimum(log_q, 700.0))
    s = np.exp(t - l1)  # 1 - g
    s_ref = np.exp(t_ref - l1_ref)
    f = d + (h - d) * q
    k = (h - d) * q
    jac = np.empty(f.shape + (4,))
    jac[..., 0] = k * ((lx - ref) + s_ref * (ref - le) - s * (lx - le))
    jac[..., 1] = q
    jac[..., 2] = 1.0 - q
    jac[..., 3] = k * b * (s - s_ref)
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


def _grid_start(lx, y, w, lo, hi, slopes=(1.0, 3.0, 10.0, 50.0), log_factor=6.907755278982137):
    """Best (b, c, d, log e) on a grid of slopes and ED50s, c and d exact.

    For fixed ``b`` and ``e`` the LL.4 is linear in ``c`` and ``d``
    (``f = c (1 - g) + d g``), so each grid point's best ``c, d`` and RSS
    come in closed form (variable projection). ED50 candidates: every
    tested log dose, the midpoints between them and one step beyond each
    end; slopes ``+/- slopes`` (50 ~ a step between two doses).
    Returns two start arrays (N, 4): the best grid point, and the best with
    a slope below the steepest.
    """
    n_curves = y.shape[0]
    y0 = np.where(w, y, 0.0)
    wf = w.astype(float)
    # ED50 candidates: each curve's tested log doses, the midpoints between
    # neighbours (where a step fits best) and half a spacing beyond each end
    lx_obs = np.sort(np.where(w & (lx > _LOG_ZERO), lx, np.inf), axis=1)
    mids = 0.5 * (lx_obs[:, 1:] + lx_obs[:, :-1])
    gap = np.nanmedian(
        np.where(np.isfinite(np.diff(lx_obs, axis=1)), np.diff(lx_obs, axis=1), np.nan), 1
    )
    gap = np.where(np.isfinite(gap), gap, 1.0)
    log_e = np.concatenate(
        [lx_obs, mids, (lo - gap / 2)[:, None], (hi + gap / 2)[:, None],
         (lo - log_factor)[:, None], (hi + log_factor)[:, None]], axis=1
    )  # fmt: skip
    log_e = np.where(np.isfinite(log_e), log_e, lo[:, None])  # (N, E)
    b = np.array(
        slopes, dtype=float
    )  # (B,), b > 0: LL.4 is symmetric under (b, c, d) -> (-b, d, c)
    t = np.clip(
        b[None, :, None, None] * (lx[:, None, None, :] - log_e[:, None, :, None]), -_T_CLIP, _T_CLIP
    )  # (N, B, E, D)
    g = 1.0 / (1.0 + np.exp(t))
    wb = wf[:, None, None, :]
    yb = y0[:, None, None, :]
    n = wf.sum(1)[:, None, None]
    s_g = (g * wb).sum(-1)
    s_gg = (g * g * wb).sum(-1)
    s_y = y0.sum(1)[:, None, None]
    s_gy = (g * yb).sum(-1)
    s_yy = (y0 * y0).sum(1)[:, None, None]
    a11, a12, a22 = n - 2 * s_g + s_gg, s_g - s_gg, s_gg
    r1, r2 = s_y - s_gy, s_gy
    det = a11 * a22 - a12 * a12
    good = det > 1e-12 * np.maximum(a11 * a22, 1e-300)
    det_safe = np.where(good, det, 1.0)
    c = np.where(good, (a22 * r1 - a12 * r2) / det_safe, s_y / n)
    d = np.where(good, (a11 * r2 - a12 * r1) / det_safe, s_y / n)
    rss = np.where(good, s_yy - (c * r1 + d * r2), s_yy - s_y * s_y / n)
    rows = np.arange(n_curves)
    out = []
    # best overall, and best among the non-step slopes (a second basin)
    for n_b in (len(b), max(len(b) - 1, 1)):
        flat = rss[:, :n_b].reshape(n_curves, -1)
        best = np.argmin(flat, axis=1)
        ib, ie = np.unravel_index(best, (n_b, rss.shape[2]))
        out.append(np.column_stack([b[ib], c[rows, ib, ie], d[rows, ib, ie], log_e[rows, ie]]))
    return out


def _lm(lx, lx_ref, y, w, z, lower, upper, max_iter=200, ftol=1e-10, gtol=1e-8):
    """Batched, box-constrained Levenberg-Marquardt on z = (b, h, d, log e).

    Coordinates at a bound with the descent direction pointing outwards are
    held fixed for that iteration (active set); other steps are clipped to
    the box. Returns z, rss, converged (N,), iterations used (N,).
    """
    n = z.shape[0]
    z = np.clip(z, lower, upper)
    y0 = np.where(w, y, 0.0)
    wf = w.astype(float)
    f, jac = _ll4_ref_jac(lx, lx_ref, z)
    r = (f - y0) * wf
    jac *= wf[..., None]
    rss = (r * r).sum(1)
    converged = np.zeros(n, bool)
    iters = np.zeros(n, int)
    active = np.arange(n)
    eye = np.eye(4)
    a_lx, a_ref, a_y, a_w, a_z, a_r, a_j, a_rss = lx, lx_ref, y0, wf, z, r, jac, rss
    a_lo, a_hi, a_lam, a_nu = lower, upper, np.full(n, 1e-3), np.full(n, 2.0)
    a_dmax = np.zeros((n, 4))
    for it in range(max_iter):
        jtj = np.matmul(a_j.transpose(0, 2, 1), a_j)
        grad = np.matmul(a_r[:, None, :], a_j)[:, 0, :]
        tol_box = 1e-9 * (np.abs(a_z) + 1.0)
        blocked = ((a_z <= a_lo + tol_box) & (grad > 0)) | ((a_z >= a_hi - tol_box) & (grad < 0))
        grad = np.where(blocked, 0.0, grad)
        free2 = ~(blocked[:, :, None] | blocked[:, None, :])
        jtj = np.where(free2, jtj, 0.0) + blocked[:, :, None] * eye
        # MINPACK scaling: running maximum of the column norms, so that a
        # column vanishing in a saturated region cannot invite a huge step
        a_dmax = np.maximum(a_dmax, np.einsum("nii->ni", jtj))
        diag = np.where(
            blocked, 1.0, np.maximum(a_dmax, 1e-12 * a_dmax.max(1, keepdims=True) + 1e-300)
        )
        # convergence (MINPACK-style): the projected gradient is orthogonal to
        # every Jacobian column to within gtol
        # (columns vanishing in a saturated region carry no information: skipped)
        col = np.sqrt(np.einsum("nii->ni", jtj))
        col = np.where(col > 1e-7 * col.max(1, keepdims=True), col, np.inf)
        cosine = np.abs(grad) / (col * np.sqrt(a_rss)[:, None] + 1e-300)
        stationary = (cosine.max(1) <= gtol) | (a_rss <= 1e-30)
        lhs = jtj + (a_lam[:, None] * diag)[:, :, None] * eye
        broken = ~(np.isfinite(lhs).all((1, 2)) & np.isfinite(grad).all(1))
        if broken.any():
            lhs[broken] = eye
            grad[broken] = 0.0
        try:
            step = -np.linalg.solve(lhs, grad[..., None])[..., 0]
        except np.linalg.LinAlgError:
            step = -np.matmul(np.linalg.pinv(lhs), grad[..., None])[..., 0]
        z_new = np.clip(a_z + step, a_lo, a_hi)
        f_new, j_new = _ll4_ref_jac(a_lx, a_ref, z_new)
        r_new = (f_new - a_y) * a_w
        rss_new = (r_new * r_new).sum(1)
        better = np.isfinite(rss_new) & (rss_new < a_rss) & ~stationary
        # also done: an accepted step with negligible RSS change, or damping
        # exhausted (no descent left at this precision)
        small_f = better & ((a_rss - rss_new) <= ftol * rss_new)
        exhausted = a_lam > 1e10
        done = stationary | small_f | exhausted | broken
        ok = (stationary | small_f | (exhausted & (cosine.max(1) <= 1e-6))) & ~broken
        # Nielsen (1999) damping update from the gain ratio
        taken = z_new - a_z
        predicted = -(2.0 * np.einsum("ni,ni->n", taken, grad)
                      + np.einsum("ni,nij,nj->n", taken, jtj, taken))  # fmt: skip
        rho = (a_rss - rss_new) / np.where(predicted > 0, predicted, np.inf)
        shrink = np.maximum(1.0 / 3.0, 1.0 - (2.0 * np.clip(rho, 0, 1) - 1.0) ** 3)
        a_z = np.where(better[:, None], z_new, a_z)
        a_r = np.where(better[:, None], r_new, a_r)
        a_j = np.where(better[:, None, None], j_new * a_w[..., None], a_j)
        a_rss = np.where(better, rss_new, a_rss)
        a_lam = np.where(better, np.maximum(a_lam * shrink, 1e-12), a_lam * a_nu)
        a_nu = np.where(better, 2.0, a_nu * 2.0)
        z[active] = a_z
        rss[active] = a_rss
        iters[active] = it + 1
        if done.any():
            converged[active[done]] = ok[done]
            keep = ~done
            active = active[keep]
            if active.size == 0:
                break
            a_lx, a_ref, a_y, a_w = a_lx[keep], a_ref[keep], a_y[keep], a_w[keep]
            a_z, a_r = a_z[keep], a_r[keep]
            a_j, a_rss, a_lam, a_nu = a_j[keep], a_rss[keep], a_lam[keep], a_nu[keep]
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
) -> pd.DataFrame:
    """Fit LL.4 (drc convention) to many dose-response curves at once.

    Parameters
    ----------
    doses : array_like, shape (n_doses,) or (n_curves, n_doses)
        Doses (>= 0; 0 = vehicle, entering the fit as ``f(0) = d``), any unit.
    responses : array_like, shape (n_curves, n_doses)
        Responses; NaN marks a missing observation.
    restarts : bool
        Also start from ED50 at the quartiles of the log-dose range with
        slopes 1 and 4 and keep each curve's best optimum (default True).
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
        starts = [z0]
        if restarts:
            starts += _grid_start(lx_f, y_f, w_f, lo, hi, log_factor=np.log(e_range_factor))
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
