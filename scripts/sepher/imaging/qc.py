"""Quality control: per-image focus and saturation; the per-cell flags' names."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

__all__ = ["CELL_FLAGS", "focus_score", "image_qc", "flag_focus_outliers"]

#: Per-cell QC flags, boolean columns of :func:`sepher.imaging.measure.measure_cells`:
#: the cell touches the field border, holds saturated pixels, or has an
#: implausible nucleus or cell area. A flagged cell is left out of every summary.
CELL_FLAGS = ("border", "saturated", "implausible_size")


def focus_score(channel: np.ndarray) -> float:
    """Normalised variance of the Laplacian (scale-free sharpness).

    ``var(laplace(I)) / mean(I)^2``: blur removes high spatial frequencies
    and lowers it; dividing by the squared mean makes it independent of
    exposure (operator "LAPV" in Pertuz, Puig & Garcia 2013, Pattern Recognit 46:1415).

    Parameters
    ----------
    channel : ndarray, 2-D

    Returns
    -------
    float
        Focus score (dimensionless); NaN for an all-zero image.
    """
    img = np.asarray(channel)
    if img.dtype in (np.uint8, np.uint16) and img.ndim == 2 and min(img.shape) >= 2:
        # exact integer 4-neighbour Laplacian with ndi.laplace's "reflect" edges
        mean = float(img.mean(dtype=np.float64))
        if mean <= 0:
            return float("nan")
        a = img.astype(np.int32)
        lap = -4 * a
        lap[1:] += a[:-1]
        lap[:-1] += a[1:]
        lap[0] += a[0]
        lap[-1] += a[-1]
        lap[:, 1:] += a[:, :-1]
        lap[:, :-1] += a[:, 1:]
        lap[:, 0] += a[:, 0]
        lap[:, -1] += a[:, -1]
        return float(lap.var(dtype=np.float64) / mean**2)
    img = np.asarray(channel, dtype=np.float32)
    mean = float(img.mean())
    if mean <= 0:
        return float("nan")
    return float(ndi.laplace(img).var() / mean**2)


def image_qc(
    channels,
    *,
    saturation_value: float | None = None,
    max_saturated_fraction: float = 0.005,
    min_focus_score: float | None = None,
) -> dict:
    """Quality metrics of one multi-channel image.

    Parameters
    ----------
    channels : dict of str to ndarray, or ndarray (C, Y, X)
        The image's channels (dict keys name them; arrays are numbered).
    saturation_value : float, optional
        Saturated intensity; default the integer dtype maximum (float images:
        not judged).
    max_saturated_fraction : float, default 0.005
        A channel with more saturated pixels than this is flagged
        ``"saturated:<channel>"``.
    min_focus_score : float, optional
        Flag ``"out_of_focus:<channel>"`` below this score. Focus scores are
        comparable only within one acquisition setup; see
        :func:`flag_focus_outliers` for a run-relative rule.

    Returns
    -------
    dict
        ``focus_score`` and ``saturated_fraction`` (dicts per channel),
        ``flags`` (list of str, empty when the image passes).
    """
    if not isinstance(channels, dict):
        channels = {str(i): c for i, c in enumerate(np.asarray(channels))}
    focus, sat_frac, flags = {}, {}, []
    for name, ch in channels.items():
        ch = np.asarray(ch)
        focus[name] = focus_score(ch)
        sat = saturation_value
        if sat is None and np.issubdtype(ch.dtype, np.integer):
            sat = np.iinfo(ch.dtype).max
        sat_frac[name] = float(np.mean(ch >= sat)) if sat is not None else 0.0
        if sat_frac[name] > max_saturated_fraction:
            flags.append(f"saturated:{name}")
        if min_focus_score is not None and not focus[name] >= min_focus_score:
            flags.append(f"out_of_focus:{name}")
        if float(ch.max()) == float(ch.min()):
            flags.append(f"blank:{name}")
    return {"focus_score": focus, "saturated_fraction": sat_frac, "flags": flags}


def flag_focus_outliers(scores, k: float = 5.0) -> np.ndarray:
    """Images whose log focus score lies more than ``k`` robust SDs below the
    run median (SD = 1.4826 x MAD of the log scores).

    Returns
    -------
    ndarray of bool
        True for images to flag.
    """
    log_s = np.log(np.asarray(scores, dtype=float))
    med = np.nanmedian(log_s)
    mad = 1.4826 * np.nanmedian(np.abs(log_s - med))
    if not mad > 0:
        return np.zeros(log_s.shape, dtype=bool)
    return log_s < med - k * mad
