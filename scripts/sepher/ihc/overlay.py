"""Cell outlines coloured by HER2 class, drawn on the brightfield tile (fig 4, QC).

The tile is shown as scanned (RGB), as a pathologist reads it; each tumour
cell gets a thin (1 px) outline in the colour of its HER2 membrane class.
The class colours are the colour-blind-safe ramp
:data:`sepher.figures.style.HER2_CLASS_COLOURS` (one place for the
figure and the overlay files). :func:`dab_greyscale` stays for QC views of
the DAB channel alone.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from sepher.ihc.segmentation import cell_edges

__all__ = ["DAB_DISPLAY_MAX_OD", "NON_TUMOUR_COLOUR", "class_overlay", "dab_greyscale"]

#: Outline colour of non-tumour cells when they are drawn (``show_stroma=True``):
#: a neutral light grey, no class meaning.
NON_TUMOUR_COLOUR = "#BFBFBF"

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


def outline_pixels(cell_labels: np.ndarray, width: int = 1) -> np.ndarray:
    """Pixels of each cell within ``width`` px (4-connected steps) of its edge.

    ``width=1`` is :func:`~sepher.ihc.cell_edges`: the cell's own pixels
    with a 4-neighbour of another label, so every cell keeps a 1-px outline
    of its own inside its boundary. Each further step adds the cell's
    pixels 4-adjacent to the outline so far. The image border is not an edge.

    Parameters
    ----------
    cell_labels : ndarray of int, 2-D
        Cell labels (0 = no cell).
    width : int, default 1
        Outline width (px), >= 1.

    Returns
    -------
    ndarray of bool
    """
    if int(width) != width or width < 1:
        raise ValueError(f"width must be an integer >= 1 (px), got {width!r}")
    cell_labels = np.asarray(cell_labels)
    ring = cell_edges(cell_labels)
    for _ in range(int(width) - 1):
        grow = ring.copy()
        same = cell_labels[1:, :] == cell_labels[:-1, :]
        grow[1:, :] |= ring[:-1, :] & same
        grow[:-1, :] |= ring[1:, :] & same
        same = cell_labels[:, 1:] == cell_labels[:, :-1]
        grow[:, 1:] |= ring[:, :-1] & same
        grow[:, :-1] |= ring[:, 1:] & same
        ring = grow & (cell_labels > 0)
    return ring


def _rgb255(colour) -> np.ndarray:
    """0-255 RGB of a matplotlib colour; ``#RRGGBB`` parsed without importing matplotlib."""
    if isinstance(colour, str) and len(colour) == 7 and colour[0] == "#":
        try:
            # = round(255 * to_rgb(colour)): to_rgb gives int(hex) / 255 per channel
            return np.array([int(colour[k : k + 2], 16) for k in (1, 3, 5)], dtype=np.float64)
        except ValueError:
            pass
    from matplotlib.colors import to_rgb

    return np.round(255.0 * np.asarray(to_rgb(colour))).astype(np.float64)


def class_overlay(
    rgb: np.ndarray,
    cell_labels: np.ndarray,
    cells: pd.DataFrame,
    *,
    width: int = 1,
    alpha: float = 1.0,
    show_stroma: bool = False,
    colours: Mapping | None = None,
) -> np.ndarray:
    """Outline each tumour cell in its HER2 class colour on the brightfield tile.

    Parameters
    ----------
    rgb : ndarray of uint8, shape (H, W, 3) or (H, W, 4)
        The tile as scanned (alpha channel dropped).
    cell_labels : ndarray of int, shape (H, W)
        Cell labels (``labels["cells"]`` of :func:`~sepher.ihc.score_image`).
    cells : DataFrame
        Per-cell table with ``cell_id``, ``her2_class`` (0-3) and
        ``tumour`` (bool; all cells are tumour cells without it).
    width : int, default 1
        Outline width in pixels, inside each cell (:func:`outline_pixels`).
    alpha : float, default 1
        Opacity of the outlines (0-1); below 1 the stain under the outline
        shows through.
    show_stroma : bool, default False
        Also outline the non-tumour cells (not scored) in a neutral grey
        (:data:`NON_TUMOUR_COLOUR`) at half the opacity.
    colours : mapping, optional
        Class label ("0", "1+", "2+", "3+") -> matplotlib colour; default
        :data:`sepher.figures.style.HER2_CLASS_COLOURS`.

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)
        A copy of the tile with the outlines drawn; the tile is unchanged
        off the outlines.
    """
    from sepher.ihc.rules import ASCO_CAP_LABELS

    if colours is None:  # imported here: matplotlib is not needed otherwise
        from sepher.figures.style import HER2_CLASS_COLOURS as colours
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    rgb = np.asarray(rgb)
    cell_labels = np.asarray(cell_labels)
    if rgb.ndim != 3 or rgb.shape[2] < 3 or rgb.shape[:2] != cell_labels.shape:
        raise ValueError(
            f"rgb {rgb.shape} must be (H, W, 3) over cell labels of the same (H, W), "
            f"got labels {cell_labels.shape}"
        )
    out = np.array(rgb[..., :3], dtype=np.uint8, copy=True)
    n_labels = int(cell_labels.max(initial=0)) + 1
    colour_of = np.zeros((n_labels, 3))
    opacity = np.zeros(n_labels)
    ids = cells["cell_id"].to_numpy(int)
    keep = ids < n_labels
    tumour = cells["tumour"].to_numpy(bool) if "tumour" in cells else np.ones(len(cells), bool)
    classes = cells["her2_class"].to_numpy()
    for cls, label in enumerate(ASCO_CAP_LABELS):
        chosen = ids[keep & tumour & (classes == cls)]
        colour_of[chosen] = _rgb255(colours[label])
        opacity[chosen] = alpha
    if show_stroma:
        chosen = ids[keep & ~tumour]
        colour_of[chosen] = _rgb255(NON_TUMOUR_COLOUR)
        opacity[chosen] = 0.5 * alpha
    edges = outline_pixels(cell_labels, width)
    owner = cell_labels[edges]
    a = opacity[owner][:, None]
    drawn = (1.0 - a) * out[edges] + a * colour_of[owner]
    out[edges] = np.clip(np.round(drawn), 0, 255).astype(np.uint8)
    return out
