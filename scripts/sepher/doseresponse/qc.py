"""Plate quality control: Z'-factor, vehicle CV and signal window.

Definitions (sample SDs, ddof = 1; "reference" = the plate's 0 % signal):

- ``Z' = 1 - 3 (sd_vehicle + sd_ref) / |mean_vehicle - mean_ref|`` (Zhang et
  al. 1999, J Biomol Screen 4:67), with the reference the plate's kill
  control wells (a fully lethal treatment, role ``kill``) when it has at
  least two, else its blank wells (medium without cells);
  ``z_prime_reference`` says which;
- vehicle ``CV = 100 sd_vehicle / mean_vehicle`` (percent);
- signal window ``SW = (|mean_vehicle - mean_ref| - 3 (sd_vehicle + sd_ref))
  / sd_vehicle`` (Iversen et al. 2006, Assay Guidance Manual, "HTS assay
  validation"; acceptable >= 2).

A plate fails when Z' < ``min_z_prime`` (0.5), the vehicle CV >
``max_cv_percent`` (20 %) or SW < ``min_signal_window`` (2). The blank CV is
reported for information only: it is the CV of a near-zero mean and says
nothing about the assay.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["plate_qc", "signal_window", "z_prime"]


def z_prime(vehicle, blank) -> float:
    """Z'-factor from vehicle (max signal) and reference (min signal: kill or blank) wells.

    NaN with fewer than two wells of either; -inf when the means are equal.
    """
    v = np.asarray(vehicle, float)
    b = np.asarray(blank, float)
    if v.size < 2 or b.size < 2:
        return np.nan
    gap = abs(v.mean() - b.mean())
    return float(1 - 3 * (v.std(ddof=1) + b.std(ddof=1)) / gap) if gap > 0 else -np.inf


def signal_window(vehicle, reference) -> float:
    """Signal window (Iversen et al. 2006) of vehicle vs reference wells.

    ``(|mean_v - mean_ref| - 3 (sd_v + sd_ref)) / sd_v``; NaN with fewer than
    two wells of either or a vehicle SD of 0.
    """
    v = np.asarray(vehicle, float)
    r = np.asarray(reference, float)
    if v.size < 2 or r.size < 2:
        return np.nan
    sd_v = v.std(ddof=1)
    if not sd_v > 0:
        return np.nan
    return float((abs(v.mean() - r.mean()) - 3 * (sd_v + r.std(ddof=1))) / sd_v)


def _cv(a: np.ndarray) -> float:
    return float(100 * a.std(ddof=1) / a.mean()) if a.size > 1 and a.mean() != 0 else np.nan


def plate_qc(
    plates: pd.DataFrame,
    min_z_prime: float = 0.5,
    max_cv_percent: float = 20.0,
    min_signal_window: float = 2.0,
) -> pd.DataFrame:
    """Per-plate control statistics, Z'-factor, signal window and flags.

    Parameters
    ----------
    plates : pandas.DataFrame
        ``plates`` table of docs/data-dictionary.md (``plate_id, role, signal``).
    min_z_prime : float
        Z' below this is flagged (0.5: "excellent assay" threshold).
    max_cv_percent : float
        Vehicle CV above this (percent) is flagged.
    min_signal_window : float
        Signal window below this is flagged (2: Iversen et al. 2006).

    Returns
    -------
    pandas.DataFrame
        ``plate_id, n_vehicle, n_blank, n_kill, vehicle_mean, vehicle_sd,
        blank_mean, blank_sd, kill_mean, kill_sd, vehicle_cv_percent,
        blank_cv_percent, z_prime, z_prime_reference`` (``kill``, ``blank``
        or empty), ``signal_window, flags`` (empty: no criterion failed).
    """
    rows = []
    for plate, df in plates.groupby("plate_id", sort=True):
        role = df["role"].astype(str)
        v = df.loc[role == "vehicle", "signal"].to_numpy(float)
        b = df.loc[role == "blank", "signal"].to_numpy(float)
        k = df.loc[role == "kill", "signal"].to_numpy(float)
        reference, ref = ("kill", k) if k.size >= 2 else ("blank", b)
        if ref.size < 2 or v.size < 2:
            reference = ""
        z = z_prime(v, ref)
        sw = signal_window(v, ref)
        flags = []
        if v.size == 0:
            flags.append("no vehicle wells")
        if b.size == 0:
            flags.append("no blank wells")
        if np.isfinite(z) and z < min_z_prime or z == -np.inf:
            flags.append(f"Z' {z:.2f} < {min_z_prime:g} (vehicle vs {reference})")
        if _cv(v) > max_cv_percent:
            flags.append(f"vehicle CV {_cv(v):.1f}% > {max_cv_percent:g}%")
        if np.isfinite(sw) and sw < min_signal_window:
            flags.append(f"signal window {sw:.2f} < {min_signal_window:g}")
        rows.append(
            {
                "plate_id": plate,
                "n_vehicle": v.size,
                "n_blank": b.size,
                "n_kill": k.size,
                "vehicle_mean": v.mean() if v.size else np.nan,
                "vehicle_sd": v.std(ddof=1) if v.size > 1 else np.nan,
                "blank_mean": b.mean() if b.size else np.nan,
                "blank_sd": b.std(ddof=1) if b.size > 1 else np.nan,
                "kill_mean": k.mean() if k.size else np.nan,
                "kill_sd": k.std(ddof=1) if k.size > 1 else np.nan,
                "vehicle_cv_percent": _cv(v),
                "blank_cv_percent": _cv(b),
                "z_prime": z,
                "z_prime_reference": reference,
                "signal_window": sw,
                "flags": "; ".join(flags),
            }
        )
    return pd.DataFrame(rows)
