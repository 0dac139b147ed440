"""Statistics shared by every stage: multiplicity correction.

:func:`adjust_pvalues` wraps :func:`statsmodels.stats.multitest.multipletests`
(Holm 1979 step-down family-wise error control; Benjamini & Hochberg 1995
false discovery rate) so that every figure family is adjusted the same way,
with NaN p-values (tests that could not be run) left out of the family and
left NaN in the output.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MULTIPLICITY_METHODS", "MULTIPLICITY_LABELS", "adjust_pvalues"]

#: config value -> statsmodels ``multipletests`` method.
MULTIPLICITY_METHODS = {"holm": "holm", "bh": "fdr_bh", "none": None}

#: config value -> words for captions and Methods.
MULTIPLICITY_LABELS = {
    "holm": "Holm step-down adjustment (family-wise error rate)",
    "bh": "Benjamini-Hochberg adjustment (false discovery rate)",
    "none": "no multiplicity adjustment",
}


def adjust_pvalues(p, method: str = "holm") -> np.ndarray:
    """Adjusted p-values of one family of tests.

    Parameters
    ----------
    p : array_like
        Unadjusted p-values of the family; NaN for tests not run.
    method : {"holm", "bh", "none"}
        ``holm``: Holm step-down; ``bh``: Benjamini-Hochberg; ``none``: the
        input unchanged.

    Returns
    -------
    numpy.ndarray
        Adjusted p-values in input order (NaN where the input is NaN), capped at 1.
    """
    if method not in MULTIPLICITY_METHODS:
        raise ValueError(
            f"multiplicity method {method!r}: expected one of {sorted(MULTIPLICITY_METHODS)}"
        )
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if not ok.any():
        return out
    if MULTIPLICITY_METHODS[method] is None:
        out[ok] = p[ok]
        return out
    from statsmodels.stats.multitest import multipletests

    out[ok] = multipletests(p[ok], method=MULTIPLICITY_METHODS[method])[1]
    return np.minimum(out, 1.0)
