"""Plate quality control: Z'-factor and control CVs (Zhang et al. 1999,
J Biomol Screen 4:67).

``Z' = 1 - 3 (sd_vehicle + sd_blank) / |mean_vehicle - mean_blank|``;
``CV = sd / mean`` in percent; sample SDs (ddof = 1). Flags when Z' < 0.5
or a control CV > 20%.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["plate_qc", "z_prime"]


def z_prime(vehicle, blank) -> float:
    """Z'-factor from vehicle (max signal) and blank (min signal) wells."""
    v = np.asarray(vehicle, float)
    b = np.asarray(blank, float)
    if v.size < 2 or b.size < 2:
        return np.nan
    gap = abs(v.mean() - b.mean())
    return float(1 - 3 * (v.std(ddof=1) + b.std(ddof=1)) / gap) if gap > 0 else -np.inf


def plate_qc(
    plates: pd.DataFrame, min_z_prime: float = 0.5, max_cv_percent: float = 20.0
) -> pd.DataFrame:
    """Per-plate control statistics, Z'-factor and flags.

    Parameters
    ----------
    plates : pandas.DataFrame
        ``plates`` table of docs/data-dictionary.md (``plate_id, role, signal``).
    min_z_prime : float
        Z' below this is flagged (0.5: "excellent assay" threshold).
    max_cv_percent : float
        Control CV above this (percent) is flagged.

    Returns
    -------
    pandas.DataFrame
        ``plate_id, n_vehicle, n_blank, vehicle_mean, vehicle_sd, blank_mean,
        blank_sd, vehicle_cv_percent, blank_cv_percent, z_prime, flags``.
    """
    rows = []
    for plate, df in plates.groupby("plate_id", sort=True):
        v = df.loc[df["role"] == "vehicle", "signal"].to_numpy(float)
        b = df.loc[df["role"] == "blank", "signal"].to_numpy(float)

        def cv(a):
            return float(100 * a.std(ddof=1) / a.mean()) if a.size > 1 and a.mean() != 0 else np.nan

        z = z_prime(v, b)
        flags = []
        if v.size == 0:
            flags.append("no vehicle wells")
        if b.size == 0:
            flags.append("no blank wells")
        if np.isfinite(z) and z < min_z_prime or z == -np.inf:
            flags.append(f"Z' {z:.2f} < {min_z_prime}")
        if cv(v) > max_cv_percent:
            flags.append(f"vehicle CV {cv(v):.1f}% > {max_cv_percent:g}%")
        if cv(b) > max_cv_percent:
            flags.append(f"blank CV {cv(b):.1f}% > {max_cv_percent:g}%")
        rows.append(
            {
                "plate_id": plate,
                "n_vehicle": v.size,
                "n_blank": b.size,
                "vehicle_mean": v.mean() if v.size else np.nan,
                "vehicle_sd": v.std(ddof=1) if v.size > 1 else np.nan,
                "blank_mean": b.mean() if b.size else np.nan,
                "blank_sd": b.std(ddof=1) if b.size > 1 else np.nan,
                "vehicle_cv_percent": cv(v),
                "blank_cv_percent": cv(b),
                "z_prime": z,
                "flags": "; ".join(flags),
            }
        )
    return pd.DataFrame(rows)
