"""Normal and chi-squared tail probabilities and quantiles, without importing scipy.stats.

Importing :mod:`scipy.stats` costs about a second (more on a loaded machine)
in every job that needs only a p-value; :mod:`scipy.special` holds the same
functions scipy.stats calls for these distributions (``ndtr``, ``ndtri``,
``chdtrc``: scipy 1.17 ``norm._sf``, ``norm._ppf``, ``chi2._sf``), for a
fraction of the import time. The results are bit-identical to
``scipy.stats.norm.sf / .ppf`` and ``scipy.stats.chi2.sf`` on every argument
(tests/test_survival_units.py), including the out-of-support conventions
scipy.stats adds (``chi2.sf`` of a negative value is 1; a non-positive
``df`` gives NaN).
"""

from __future__ import annotations

import numpy as np
from scipy import special


def _scalar_or_array(values):
    values = np.asarray(values, dtype=float)
    return values[()] if values.ndim == 0 else values


def norm_sf(x):
    """Standard normal upper tail, P(Z > x) (``scipy.stats.norm.sf``)."""
    return _scalar_or_array(special.ndtr(-np.asarray(x, dtype=float)))


def norm_ppf(q):
    """Standard normal quantile (``scipy.stats.norm.ppf``; NaN outside [0, 1])."""
    q = np.asarray(q, dtype=float)
    inside = (q >= 0) & (q <= 1)
    return _scalar_or_array(np.where(inside, special.ndtri(np.where(inside, q, 0.5)), np.nan))


def chi2_sf(x, df):
    """Chi-squared upper tail, P(X > x) with `df` degrees of freedom (``scipy.stats.chi2.sf``).

    1 for ``x <= 0`` (below the support), NaN for ``df <= 0`` or NaN arguments.
    """
    x = np.asarray(x, dtype=float)
    df = np.asarray(df, dtype=float)
    tail = special.chdtrc(df, np.where(x < 0, 0.0, x))
    tail = np.where(x < 0, 1.0, tail)
    tail = np.where((df > 0) & ~np.isnan(x), tail, np.nan)
    return _scalar_or_array(tail)
