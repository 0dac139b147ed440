"""Dose-response model functions in R drc's b/c/d/e(/f) convention.

Every model is written on the natural dose scale ``x`` (any concentration
unit, e.g. µM) with parameters

- ``b``: slope (drc sign: ``b > 0`` gives a curve that falls with dose),
- ``c``: lower asymptote (response at infinite dose when ``b > 0``),
- ``d``: upper asymptote (response at dose 0 when ``b > 0``),
- ``e``: inflection dose (ED50 for the log-logistic models), same unit as ``x``,
- ``f``: asymmetry (LL.5 only).

Models (Ritz et al. 2015, PLoS ONE 10:e0146021; drc 3.2-0):

- ``LL.4``: ``c + (d - c) / (1 + exp(b (log x - log e)))``
- ``LL.3``: ``LL.4`` with ``c = 0`` (drc's default ``LL.3``); use
  ``fixed={"d": 1}`` on ``LL.4`` for an upper-limit-fixed three-parameter model.
- ``LL.5``: ``c + (d - c) / (1 + exp(b (log x - log e)))^f``
- ``W1.4``: ``c + (d - c) exp(-exp(b (log x - log e)))``

Dose 0 is allowed: ``log 0 = -inf`` so ``f(0) = d`` for ``b > 0`` (and ``c``
for ``b < 0``), exactly as drc evaluates its vehicle observations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "MODELS",
    "CurveEvaluator",
    "Model",
    "get_model",
    "model_jacobian",
    "model_response",
]


@dataclass(frozen=True)
class Model:
    """A dose-response model family.

    Attributes
    ----------
    name : str
        drc name, e.g. ``"LL.4"``.
    family : str
        ``"LL"`` (log-logistic) or ``"W1"`` (Weibull type 1).
    param_names : tuple of str
        Parameters of the full model, in drc order.
    default_fixed : dict
        Parameters the model fixes (e.g. ``c = 0`` for ``LL.3``).
    """

    name: str
    family: str
    param_names: tuple[str, ...]
    default_fixed: dict = field(default_factory=dict)


MODELS = {
    "LL.4": Model("LL.4", "LL", ("b", "c", "d", "e")),
    "LL.3": Model("LL.3", "LL", ("b", "c", "d", "e"), {"c": 0.0}),
    "LL.5": Model("LL.5", "LL", ("b", "c", "d", "e", "f")),
    "W1.4": Model("W1.4", "W1", ("b", "c", "d", "e")),
}


def get_model(model: str | Model) -> Model:
    """Look up a model by its drc name (``"LL.4"``, ``"LL.3"``, ``"LL.5"``, ``"W1.4"``)."""
    if isinstance(model, Model):
        return model
    try:
        return MODELS[model]
    except KeyError:
        raise ValueError(f"unknown model {model!r}; expected one of {sorted(MODELS)}") from None


def _unpack(model: Model, theta):
    theta = np.asarray(theta, dtype=float)
    b, c, d, e = theta[..., 0], theta[..., 1], theta[..., 2], theta[..., 3]
    f = theta[..., 4] if model.name == "LL.5" else np.ones_like(b)
    return b, c, d, e, f


def _core(model: Model, x, theta):
    """Shape function g in f = c + (d - c) g, with dg/dt, t and a dose>0 mask."""
    x = np.asarray(x, dtype=float)
    b, c, d, e, f = _unpack(model, theta)
    b, c, d, e, f = (v[..., None] for v in (b, c, d, e, f))
    positive = x > 0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_x = np.where(positive, np.log(np.where(positive, x, 1.0)), -np.inf)
        log_ratio = log_x - np.log(e)
        t = b * log_ratio
        if model.family == "LL":
            log1p_u = np.logaddexp(0.0, t)
            g = np.exp(-f * log1p_u)
            dg_dt = -f * g * np.exp(t - log1p_u)
            dg_df = -log1p_u * g
        else:
            u = np.exp(t)
            g = np.exp(-u)
            dg_dt = -np.exp(t - u)
            dg_df = np.zeros_like(g)
    return b, c, d, e, f, g, dg_dt, dg_df, log_ratio, positive


def model_response(model: str | Model, x, theta) -> np.ndarray:
    """Evaluate a model at doses ``x``.

    Parameters
    ----------
    model : str or Model
        drc model name.
    x : array_like, shape (n_doses,) or broadcastable
        Doses (>= 0), in the unit used for ``e``.
    theta : array_like, shape (..., n_params)
        Full parameter vector(s) in drc order ``(b, c, d, e[, f])``.

    Returns
    -------
    ndarray, shape (..., n_doses)
        Predicted response.
    """
    model = get_model(model)
    b, c, d, e, f, g, *_ = _core(model, x, theta)
    return c + (d - c) * g


def model_jacobian(model: str | Model, x, theta) -> tuple[np.ndarray, np.ndarray]:
    """Model response and its analytic Jacobian with respect to the parameters.

    Parameters
    ----------
    model : str or Model
    x : array_like, shape (n_doses,)
    theta : array_like, shape (..., n_params)

    Returns
    -------
    response : ndarray, shape (..., n_doses)
    jacobian : ndarray, shape (..., n_doses, n_params)
        d response / d theta, natural parameter scale (``e`` in dose units).
    """
    model = get_model(model)
    b, c, d, e, f, g, dg_dt, dg_df, log_ratio, positive = _core(model, x, theta)
    span = d - c
    with np.errstate(invalid="ignore"):
        d_b = np.where(positive, span * dg_dt * log_ratio, 0.0)
        d_e = np.where(positive, span * dg_dt * (-b / e), 0.0)
        d_f = np.where(positive, span * dg_df, 0.0)
    d_c = 1.0 - g
    d_d = g
    cols = [d_b, np.broadcast_to(d_c, d_b.shape), np.broadcast_to(d_d, d_b.shape), d_e]
    if model.name == "LL.5":
        cols.append(d_f)
    return c + span * g, np.stack(cols, axis=-1)


class CurveEvaluator:
    """:func:`model_response` and :func:`model_jacobian` of one curve, with less overhead.

    For one dose vector and one full parameter vector at a time (the inner
    loop of :func:`sepher.doseresponse.fit_curve`'s least-squares solver,
    tens of thousands of calls on a curve whose optimum lies far out): the
    log doses are computed once, and each call runs the same floating-point
    operations on arrays of the same shapes as :func:`model_response` /
    :func:`model_jacobian`, so the results are the same bits
    (tests/test_doseresponse_units.py), at about a third of the cost.
    Floating-point warnings are not silenced here: call it inside
    ``np.errstate(all="ignore")``.

    Parameters
    ----------
    model : str or Model
    x : array_like, shape (n_doses,)
        Doses (>= 0).
    """

    _ONE = np.ones(1)

    def __init__(self, model: str | Model, x):
        self.model = get_model(model)
        x = np.asarray(x, dtype=float)
        self.positive = x > 0
        with np.errstate(divide="ignore"):
            self.log_x = np.where(self.positive, np.log(np.where(self.positive, x, 1.0)), -np.inf)
        self._ll = self.model.family == "LL"
        self._ll5 = self.model.name == "LL.5"

    def _core(self, theta, jac: bool):
        b, c, d, e = theta[0:1], theta[1:2], theta[2:3], theta[3:4]
        f = theta[4:5] if self._ll5 else self._ONE
        log_ratio = self.log_x - np.log(e)
        t = b * log_ratio
        dg_dt = dg_df = None
        if self._ll:
            log1p_u = np.logaddexp(0.0, t)
            g = np.exp(-f * log1p_u)
            if jac:
                dg_dt = -f * g * np.exp(t - log1p_u)
                dg_df = -log1p_u * g
        else:
            u = np.exp(t)
            g = np.exp(-u)
            if jac:
                dg_dt = -np.exp(t - u)
        return b, c, d, e, g, dg_dt, dg_df, log_ratio

    def response(self, theta) -> np.ndarray:
        """Predicted response at the doses (:func:`model_response`)."""
        theta = np.asarray(theta, dtype=float)
        _, c, d, _, g, *_ = self._core(theta, False)
        return c + (d - c) * g

    def jacobian(self, theta, columns=None) -> np.ndarray:
        """d response / d theta, shape (n_doses, len(columns)) (:func:`model_jacobian`).

        ``columns``: parameter indices to return, in that order (default all).
        """
        theta = np.asarray(theta, dtype=float)
        b, c, d, e, g, dg_dt, dg_df, log_ratio = self._core(theta, True)
        span = d - c
        positive = self.positive
        n_params = len(self.model.param_names)
        columns = range(n_params) if columns is None else columns
        out = np.empty((positive.size, len(columns)))
        for j, k in enumerate(columns):
            if k == 0:
                out[:, j] = np.where(positive, span * dg_dt * log_ratio, 0.0)
            elif k == 1:
                out[:, j] = 1.0 - g
            elif k == 2:
                out[:, j] = g
            elif k == 3:
                out[:, j] = np.where(positive, span * dg_dt * (-b / e), 0.0)
            else:
                out[:, j] = np.where(positive, span * dg_df, 0.0)
        return out
