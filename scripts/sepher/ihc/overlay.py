"""Overlay of cell outlines coloured by HER2 class (QC figure, fig4 tiles)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sepher.ihc.segmentation import cell_edges

__all__ = ["CLASS_COLOURS", "DAB_DISPLAY_MAX_OD", "class_overlay", "dab_greyscale"]

#: RGB outline colour per HER2 class (0, 1+, 2+, 3+) and for non-tumour cells
#: (QuPath's blue / yellow / orange / red convention; grey for stroma).
CLASS_COLOURS = {
    0: (60, 110, 255),
    1: (255, 230, 0),
    2: (255, 140, 0),
    3: (230, 0, 0),
    "stroma": (150, 150, 150),
}


#: DAB optical density shown black by :func:`dab_greyscale` (log10 units): above
#: the 3+ membranes of the demo (0.7-1.1 band mean), so their grading stays visible.
DAB_DISPLAY_MAX_OD = 1.5


def dab_greyscale(dab: np.ndarray, max_od: float = DAB_DISPLAY_MAX_OD) -> np.ndarray:
    """The DAB deconvolution channel as an RGB greyscale image (white = no DAB).

    Parameters
    ----------
    dab : ndarray of float, 2-D
        DAB amount (OD, log10 units) from :func:`~sepher.ihc.unmix_h_dab`.
    max_od : float, default 1.5
        OD shown black; the grey level is linear in OD from 0 (white) to
        ``max_od``, negative values (crosstalk) white.

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)
    """
    if not max_od > 0:
        raise ValueError("max_od must be > 0")
    level = 1.0 - np.clip(np.asarray(dab, dtype=np.float64) / max_od, 0.0, 1.0)
    grey = np.round(255.0 * level).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)


def class_overlay(
    rgb: np.ndarray, cells: np.ndarray, table: pd.DataFrame, *, show_stroma: bool = True
) -> np.ndarray:
    """Draw each cell's outline in its class colour over the image.

    Parameters
    ----------
    rgb : ndarray of uint8, shape (H, W, 3)
        The scored image.
    cells : ndarray of int
        Cell labels (``labels["cells"]`` of :func:`~sepher.ihc.score_image`).
    table : DataFrame
        Per-cell table with ``cell_id``, ``her2_class``, ``tumour``.
    show_stroma : bool, default True
        Outline non-tumour cells in grey.

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)
    """
    out = np.array(rgb[..., :3], dtype=np.uint8, copy=True)
    lookup = np.full((int(cells.max(initial=0)) + 1, 3), -1, dtype=np.int16)
    tumour = table["tumour"].to_numpy(bool) if "tumour" in table else np.ones(len(table), bool)
    ids = table["cell_id"].to_numpy()
    classes = table["her2_class"].to_numpy()
    for cls in range(4):
        lookup[ids[tumour & (classes == cls)]] = CLASS_COLOURS[cls]
    if show_stroma:
        lookup[ids[~tumour]] = CLASS_COLOURS["stroma"]
    edges = cell_edges(cells)
    colours = lookup[cells[edges]]
    drawn = colours[:, 0] >= 0
    target = out[edges]
    target[drawn] = colours[drawn].astype(np.uint8)
    out[edges] = target
    return out
