"""Plate normalisation: viability relative to vehicle and blank wells.

``viability = (signal - blank mean) / (vehicle mean - blank mean)`` per plate
(docs/data-dictionary.md, ``plates``). Vehicle wells stay in the table with ``concentration = 0``
so that they enter the dose-response fit as dose-0 observations, as in drc.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["normalise_plate"]


def normalise_plate(plates: pd.DataFrame, by=("plate_id",)) -> pd.DataFrame:
    """Add a ``viability`` column, normalised within each plate.

    Parameters
    ----------
    plates : pandas.DataFrame
        ``plates`` table: ``plate_id, well, cell_line, condition, drug,
        concentration, concentration_unit, role`` (treated / vehicle / blank / kill /
        time0), ``replicate, signal``.
    by : sequence of str
        Columns defining one normalisation unit (default: the plate).

    Returns
    -------
    pandas.DataFrame
        A copy with ``blank_mean``, ``vehicle_mean`` and ``viability``
        (fraction of vehicle; NaN for blank, kill and time0 wells, and for plates
        without vehicle wells or with vehicle mean <= blank mean).
    """
    out = plates.copy()
    keys = list(by)
    signal = out["signal"].astype(float)
    blank = signal.where(out["role"] == "blank")
    vehicle = signal.where(out["role"] == "vehicle")
    grouped_blank = blank.groupby([out[k] for k in keys]).transform("mean")
    grouped_vehicle = vehicle.groupby([out[k] for k in keys]).transform("mean")
    out["blank_mean"] = grouped_blank.fillna(0.0)  # no blank wells: background 0
    out["vehicle_mean"] = grouped_vehicle
    window = out["vehicle_mean"] - out["blank_mean"]
    viability = (signal - out["blank_mean"]) / window.where(window > 0)
    use = out["role"].isin(["treated", "vehicle"])
    out["viability"] = np.where(use, viability, np.nan)
    return out
