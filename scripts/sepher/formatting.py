"""Numbers as printed in figures, tables and captions: one rule for p-values.

Pure Python (no matplotlib), so the figure modules (:mod:`sepher.figures`)
and the report (:mod:`sepher.report`) share it without importing each other.
"""

from __future__ import annotations

import math

__all__ = ["format_p"]


def format_p(p, *, prefix: str = "p") -> str:
    """Format a p-value as printed in the paper.

    The rule: two significant digits with trailing zeros kept (0.034 ->
    ``0.034``, 0.0504 -> ``0.050``, 0.5 -> ``0.50``, 0.00061 -> ``0.00061``),
    so a printed value is never rounded past its second digit; below 0.0001
    ``< 0.0001``; above 0.99 ``> 0.99``; a missing or non-finite value
    ``NA``.

    Parameters
    ----------
    p : float or None
        The p-value.
    prefix : str, default "p"
        Text before the relation: ``"p = 0.034"``, ``"p < 0.0001"``; ``""``
        gives the bare value (``"0.034"``, ``"< 0.0001"``), as in a table's
        p column.

    Returns
    -------
    str
    """
    try:
        value = float(p)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value):
        return f"{prefix} = NA" if prefix else "NA"
    if value < 1e-4:
        rel, num = "<", "0.0001"
    elif value > 0.99:
        rel, num = ">", "0.99"
    else:
        rel, num = "=", f"{value:#.2g}"
    if not prefix:
        return num if rel == "=" else f"{rel} {num}"
    return f"{prefix} {rel} {num}"
