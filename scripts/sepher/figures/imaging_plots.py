"""Immunofluorescence figures: HER2 localisation (fig 2), sequential exposure
(fig 3) and segmentation / image QC (fig S1).

Pure functions: arrays and tables in, a :class:`matplotlib.figure.Figure`
out. Image panels share one HER2 display range so that brightness compares
across conditions; HER2 is shown in green, the nuclear stain in magenta
(colour-blind safe), segmentation outlines in white (cells) and yellow
(nuclei), with a scale bar in micrometres.

Every statistic drawn is at the level of biological replicates (issue 15):
conditions are compared on replicate means (IF) or replicate log IC50
(dose-response), and each bracket shows the p-value adjusted within the
figure's family of comparisons (``p_adjusted`` of the tables), labelled as
adjusted ("Holm-adj. p"). Conditions whose cells were segmented, in some
field, on HER2 itself (no membrane marker) carry a dagger and a footnote.
Condition colours come from the one study palette
(:func:`sepher.figures.style.group_colours`).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
from matplotlib.patches import Rectangle

from sepher.figures.style import (
    ALERT,
    DOUBLE_COLUMN_MM,
    GREY,
    LIGHT_GREY,
    group_colours,
    manual_figure,
    mm,
    stamp_simulated,
    wrap_to_width,
)
from sepher.formatting import format_p
from sepher.stats import MULTIPLICITY_LABELS

__all__ = [
    "ADJUSTED_PREFIX",
    "NO_MARKER_MARK",
    "adjustment_note",
    "border_counts",
    "choose_representative",
    "choose_section",
    "condition_colours",
    "display_range",
    "family_rows",
    "field_rgb",
    "marker_flags",
    "multiplicity_of",
    "orthogonal_section",
    "p_label",
    "plot_her2_localisation",
    "plot_segmentation_qc",
    "plot_sequential_exposure",
    "replicate_ic50",
    "segmentation_channel_counts",
]

HER2_LABEL = "Membrane HER2\n(ADU above background)"
NUCLEAR_FRACTION_LABEL = "Nuclear fraction of HER2"
COMPLETENESS_LABEL = "Membrane completeness\n(fraction of band stained)"

#: Label of an adjusted p-value, by multiplicity method ("none": plain "p").
ADJUSTED_PREFIX = {"holm": "Holm-adj. p", "bh": "BH-adj. p"}

#: Mark of a condition segmented on HER2 itself (no membrane marker) in some field.
NO_MARKER_MARK = "\u2020"

#: ``segmentation_channel`` spellings (lower case) -> membrane marker or HER2 itself.
SEGMENTATION_CHANNELS = {"membrane marker": "membrane", "membrane": "membrane", "her2": "her2"}


#: Dark text colour of the house style.
TEXT = "#262626"


def condition_colours(conditions) -> dict:
    """Colour of each condition id from the one study palette.

    Parameters
    ----------
    conditions : iterable of str
        Condition ids shown (``parental``, ``T-R``, ``TP-R``, ``T-R>T``, ...).

    Returns
    -------
    dict
        Condition -> hex colour, the same in every figure.
    """
    return group_colours(list(conditions))


def marker_flags(conditions_summary: pd.DataFrame, cells: pd.DataFrame | None = None) -> dict:
    """Conditions segmented without a membrane marker in at least one field.

    Parameters
    ----------
    conditions_summary : DataFrame
        Condition rows of ``if_summary.csv`` with ``cell_line``, ``condition``,
        ``n_images_without_membrane_marker`` and ``n_images``.
    cells : DataFrame, optional
        ``if_cells.csv`` with ``image_id`` and ``segmentation_channel``: used
        when the summary lacks those columns (images counted from the cells).
        Tables with neither flag nothing.

    Returns
    -------
    dict
        (cell_line, condition) -> (images without marker, images), only for
        conditions with at least one such image.
    """
    cols = {"n_images_without_membrane_marker", "n_images"}
    out = {}
    if conditions_summary is not None and cols <= set(conditions_summary.columns):
        for row in conditions_summary.itertuples():
            k = row.n_images_without_membrane_marker
            if pd.notna(k) and int(k) > 0:
                out[(row.cell_line, row.condition)] = (int(k), int(row.n_images))
        return out
    if cells is None or not {"image_id", "segmentation_channel"} <= set(cells.columns):
        return out
    images = cells.drop_duplicates("image_id")
    channel = images["segmentation_channel"].astype(str).str.strip().str.lower()
    no_marker = channel.map(SEGMENTATION_CHANNELS).eq("her2")
    grouped = no_marker.groupby([images["cell_line"], images["condition"]], sort=False)
    for key, k in grouped.sum().items():
        if k > 0:
            out[key] = (int(k), int(grouped.size()[key]))
    return out


def _marker_footnote(flags: dict, lines=None, conditions=None) -> str:
    """Footnote of the dagger: which conditions shown, how many fields without a marker."""
    if not flags:
        return ""
    keys = [
        k
        for k in flags
        if (lines is None or k[0] in lines) and (conditions is None or k[1] in conditions)
    ]
    if not keys:
        return ""
    listed = ", ".join(
        f"{line} {cond} {flags[(line, cond)][0]}/{flags[(line, cond)][1]}" for line, cond in keys
    )
    return (
        f"{NO_MARKER_MARK} cells segmented on HER2 itself (no membrane marker) in some or all "
        f"fields (fields without marker / fields: {listed}); segmentation and measurement then "
        "share one signal."
    )


def _tick_labels(conditions, line, summary, flags, show_n=True):
    """Condition names with the no-marker dagger and the number of replicates."""
    labels = []
    for condition in conditions:
        text = condition + (NO_MARKER_MARK if (line, condition) in flags else "")
        if show_n and summary is not None and "n_replicates" in summary:
            row = summary[summary["condition"] == condition]
            if len(row) and pd.notna(row["n_replicates"].iloc[0]):
                text += f"\nn = {int(row['n_replicates'].iloc[0])}"
        labels.append(text)
    return labels


def choose_representative(per_image: pd.DataFrame, value: str = "her2_net_membrane") -> pd.Series:
    """Representative image of each condition, chosen deterministically.

    The image whose median ``value`` is closest to the condition's median
    over its images (ties: first image id).

    Parameters
    ----------
    per_image : DataFrame
        Image-level summary with ``cell_line``, ``condition``, ``image_id``
        and ``value``.

    Returns
    -------
    Series
        Image id indexed by (cell_line, condition).
    """
    out = {}
    for key, group in per_image.groupby(["cell_line", "condition"], sort=True):
        distance = (group[value] - group[value].median()).abs()
        order = pd.DataFrame({"d": distance.round(9), "id": group["image_id"]})
        out[key] = order.sort_values(["d", "id"])["id"].iloc[0]
    return pd.Series(out, dtype=object)


def display_range(channels, low: float = 0.5, high: float = 99.8) -> tuple[float, float]:
    """Common display range (percentiles ``low``, ``high``) over several images."""
    values = np.concatenate([np.asarray(c, dtype=np.float32).ravel() for c in channels])
    lo, hi = np.percentile(values, [low, high])
    return float(lo), float(max(hi, lo + 1.0))


def _scale(channel, limits):
    lo, hi = limits
    return np.clip((np.asarray(channel, dtype=np.float32) - lo) / (hi - lo), 0.0, 1.0)


def field_rgb(
    her2=None,
    nuclear=None,
    *,
    her2_range=None,
    nuclear_range=None,
    nuclei=None,
    cells=None,
) -> np.ndarray:
    """RGB rendering of a field: HER2 green, nuclear stain magenta, outlines.

    Parameters
    ----------
    her2, nuclear : ndarray, 2-D, optional
        Channel intensities (either may be None).
    her2_range, nuclear_range : (float, float), optional
        Display ranges (intensity units); default each image's percentiles.
    nuclei, cells : ndarray of int, optional
        Label images drawn as yellow (nuclei) and white (cells) outlines.

    Returns
    -------
    ndarray, shape (Y, X, 3), float in [0, 1]
    """
    shape = (her2 if her2 is not None else nuclear).shape
    rgb = np.zeros(shape + (3,), dtype=np.float32)
    if her2 is not None:
        rgb[..., 1] += _scale(her2, her2_range or display_range([her2]))
    if nuclear is not None:
        n = _scale(nuclear, nuclear_range or display_range([nuclear]))
        rgb[..., 0] += n
        rgb[..., 2] += n
    rgb = np.clip(rgb, 0, 1)
    # imported here, as below: scipy.ndimage, scipy.stats and skimage cost a second or
    # more to import in the figure jobs that never call these functions
    from skimage.segmentation import find_boundaries

    if cells is not None:
        rgb[find_boundaries(cells, mode="inner")] = (1.0, 1.0, 1.0)
    if nuclei is not None:
        rgb[find_boundaries(nuclei, mode="inner")] = (1.0, 0.85, 0.0)
    return rgb


def _image_axis(ax, rgb, pixel_size_um, title=None, bar_um=20.0, label_bar=False):
    ax.imshow(rgb, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    h, w = rgb.shape[:2]
    length = bar_um / pixel_size_um
    x0, y0 = w - length - 0.05 * w, h - 0.07 * h
    ax.add_patch(Rectangle((x0, y0), length, 0.025 * h, color="white", lw=0))
    if label_bar:
        ax.text(
            x0 + length / 2,
            y0 - 0.02 * h,
            f"{bar_um:g} µm",
            color="white",
            ha="center",
            va="bottom",
            fontsize=5.5,
        )
    if title:
        ax.set_title(title, fontsize=6.5, fontweight="normal", loc="center", pad=2)


def _condition_axis(
    ax, conditions, replicates, summary, value, colours, conf_level, jitter=0.12, labels=None
):
    """Replicate means (dots) with the condition mean and its t-CI (bar)."""
    for i, condition in enumerate(conditions):
        reps = replicates[replicates["condition"] == condition][value].dropna().to_numpy()
        offsets = np.linspace(-jitter, jitter, max(len(reps), 1))[: len(reps)]
        ax.scatter(i + offsets, reps, s=9, color=colours[condition], alpha=0.75, lw=0, zorder=3)
        row = summary[summary["condition"] == condition]
        if len(row) and f"{value}_mean" in row:
            mean = float(row[f"{value}_mean"].iloc[0])
            lo, hi = float(row[f"{value}_ci_low"].iloc[0]), float(row[f"{value}_ci_high"].iloc[0])
            if np.isfinite(lo) and np.isfinite(hi):
                ax.errorbar(
                    i,
                    mean,
                    yerr=[[mean - lo], [hi - mean]],
                    fmt="none",
                    ecolor=TEXT,
                    elinewidth=0.8,
                    capsize=2.5,
                    zorder=4,
                )
            ax.plot([i - 0.25, i + 0.25], [mean, mean], color=TEXT, lw=1.0, zorder=4)
    ax.set_xticks(range(len(conditions)), labels or conditions)
    ax.set_xlim(-0.6, len(conditions) - 0.4)


def _p_bracket(ax, x1, x2, y, text, log=False):
    """A bracket from x1 to x2 at height y with `text` above it, kept inside the axes."""
    foot = y / 1.04 if log else y - 0.015 * y
    ax.plot([x1, x1, x2, x2], [foot, y, y, foot], color=GREY, lw=0.6)
    label = ax.text((x1 + x2) / 2, y, text, ha="center", va="bottom", fontsize=5.5, color=TEXT)
    _keep_inside(ax, label)
    return label


def _keep_inside(ax, text):
    """Shift a text sideways so that it does not run past the left or right of its axes."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    box = text.get_window_extent(renderer)
    frame = ax.get_window_extent(renderer)
    shift = max(0.0, frame.x0 - box.x0) - max(0.0, box.x1 - frame.x1)
    if shift:
        x, y = text.get_position()
        x_disp, y_disp = ax.transData.transform((x, y))
        text.set_position(ax.transData.inverted().transform((x_disp + shift, y_disp)))


def p_label(row) -> str:
    """Text of one comparison's p-value: the adjusted p, labelled as adjusted.

    Parameters
    ----------
    row : mapping
        A comparison row with ``p`` and, from issue 15 on, ``p_adjusted`` and
        ``multiplicity`` (holm | bh | none).

    Returns
    -------
    str
        ``"Holm-adj. p = 0.0012"`` / ``"BH-adj. p = 0.0012"``; ``"p = 0.0012"``
        when the family is not adjusted or the table predates adjustment.
    """
    method = str(row.get("multiplicity", "none")).strip().lower()
    if "p_adjusted" in row and method in ADJUSTED_PREFIX:
        return format_p(row["p_adjusted"], prefix=ADJUSTED_PREFIX[method])
    return format_p(row["p"])


def family_rows(comparisons: pd.DataFrame, family: str) -> pd.DataFrame:
    """The comparisons of one figure's family (all rows if the table has no ``family``)."""
    if comparisons is None:
        return pd.DataFrame()
    if "family" in comparisons.columns:
        return comparisons[comparisons["family"].astype(str) == family]
    return comparisons


def multiplicity_of(*tables) -> str:
    """The multiplicity method (holm | bh | none) of the rows shown; "none" if unadjusted.

    Raises ``ValueError`` when the tables mix methods: one figure, one adjustment.
    """
    methods = set()
    for table in tables:
        if table is not None and len(table) and "p_adjusted" in table and "multiplicity" in table:
            methods |= {str(m).strip().lower() for m in table["multiplicity"].dropna()}
    if len(methods) > 1:
        raise ValueError(f"one figure mixes multiplicity methods {sorted(methods)}")
    return methods.pop() if methods else "none"


def adjustment_note(method: str) -> str:
    """Footnote words on the multiplicity adjustment of a figure's p-values."""
    if method not in ADJUSTED_PREFIX:
        return "p not adjusted for multiplicity"
    return (
        f"{ADJUSTED_PREFIX[method]}: {MULTIPLICITY_LABELS[method]} within the figure's "
        "family of comparisons"
    )


def _add_p_values(ax, conditions, comparisons, value, top, bottom=0.0, log=False):
    """Brackets with the (adjusted) replicate-level p of each comparison shown."""
    level = 0
    if log:
        lo, hi = np.log10(bottom), np.log10(top)
        span = max(hi - lo, 0.3)

        def height(k):
            return 10 ** (hi + span * (0.10 + 0.14 * k))
    else:

        def height(k):
            return top * (1.08 + 0.13 * k)

    rows = comparisons[comparisons["value"] == value] if "value" in comparisons else comparisons
    for _, row in rows.iterrows():
        test, reference = row["test"], row["reference"]
        if test in conditions and reference in conditions:
            i, j = conditions.index(reference), conditions.index(test)
            _p_bracket(ax, min(i, j), max(i, j), height(level), p_label(row), log=log)
            level += 1
    if log:
        ax.set_ylim(10 ** (lo - 0.08 * span), 10 ** (hi + span * (0.16 + 0.14 * max(level, 1))))
    else:
        ax.set_ylim(0, top * (1.12 + 0.13 * max(level, 1)))
    return level


# --------------------------------------------------------------------------- orthogonal view
def choose_section(nuclear_zyx, pixel_size_um: float, width_um: float = 30.0) -> dict:
    """Where to cut the XZ section of a representative cell of a z-stack.

    The nuclei of the maximum projection of the nuclear stain (Gaussian
    smoothing of 0.5 µm, Otsu threshold, objects of at least 10 µm² not touching
    the field border); the nucleus whose area is closest to the median area
    (ties: lowest label) is the representative cell. The section runs along
    the row through its centroid, ``width_um`` wide and centred on it, and its
    XY view shows the plane where that nucleus is brightest (mid-nuclear plane).

    Parameters
    ----------
    nuclear_zyx : ndarray, shape (Z, Y, X)
        Nuclear-stain stack.
    pixel_size_um : float
        Lateral pixel size.
    width_um : float, default 30
        Width of the section (about two cell diameters).

    Returns
    -------
    dict
        ``row``, ``x0``, ``x1`` (pixel indices, x1 exclusive) and ``z`` (plane
        index); the centre of the field when no nucleus is found.
    """
    from scipy import ndimage
    from skimage.filters import threshold_otsu
    from skimage.measure import regionprops
    from skimage.segmentation import clear_border

    stack = np.asarray(nuclear_zyx, dtype=np.float32)
    nz, ny, nx = stack.shape
    projection = ndimage.gaussian_filter(stack.max(axis=0), 0.5 / pixel_size_um)
    half = int(round(width_um / 2 / pixel_size_um))
    row, centre = ny // 2, nx // 2
    mask = None
    if np.ptp(projection) > 0:
        labels, _ = ndimage.label(projection > threshold_otsu(projection))
        labels = clear_border(labels)
        regions = [r for r in regionprops(labels) if r.area * pixel_size_um**2 >= 10.0]
        if regions:
            areas = np.array([r.area for r in regions], dtype=float)
            distance = np.abs(areas - np.median(areas))
            pick = regions[int(np.lexsort(([r.label for r in regions], distance))[0])]
            row, centre = (int(round(c)) for c in pick.centroid)
            mask = labels == pick.label
    profile = stack[:, mask].mean(axis=1) if mask is not None else stack.mean(axis=(1, 2))
    return {
        "row": row,
        "x0": max(0, centre - half),
        "x1": min(nx, centre + half),
        "z": int(np.argmax(profile)),
    }


def orthogonal_section(
    stack_czyx,
    pixel_size_um: float,
    z_step_um: float,
    *,
    her2_channel: int,
    nuclear_channel: int,
    row: int | None = None,
    x0: int | None = None,
    x1: int | None = None,
    width_um: float = 30.0,
    label: str = "",
    basal_first: bool = True,
) -> dict:
    """The data of fig 2's orthogonal (XZ) view panel, from a CZYX stack.

    Parameters
    ----------
    stack_czyx : ndarray, shape (C, Z, Y, X)
        The z-stack (:func:`sepher.imaging.io.read_stack`).
    pixel_size_um, z_step_um : float
        Lateral pixel size and z step, µm.
    her2_channel, nuclear_channel : int
        Channel indices.
    row, x0, x1 : int, optional
        The section (row index, x range, x1 exclusive); by default the
        representative cell of :func:`choose_section`.
    width_um : float, default 30
        Width of the automatic section.
    label : str
        Panel title (cell line, condition, image id).
    basal_first : bool, default True
        Plane 0 is the basal side (next to the coverslip, as on an inverted
        microscope); False when the stack runs apical to basal.

    Returns
    -------
    dict
        ``xz_her2``, ``xz_nuclear`` (Z, X) sections from
        :func:`sepher.imaging.zstack.orthogonal_view`; ``xy_her2``,
        ``xy_nuclear`` (square crop of the mid-nuclear plane around the
        section), ``row_in_crop``; ``pixel_size_um``, ``z_step_um``,
        ``label``, ``basal_first``, ``row``, ``x0``, ``x1``, ``z``.
    """
    stack = np.asarray(stack_czyx)
    if stack.ndim != 4:
        raise ValueError(f"expected a CZYX stack, got shape {stack.shape}")
    chosen = choose_section(stack[nuclear_channel], pixel_size_um, width_um)
    row = chosen["row"] if row is None else int(row)
    x0 = chosen["x0"] if x0 is None else int(x0)
    x1 = chosen["x1"] if x1 is None else int(x1)
    from sepher.imaging.zstack import orthogonal_view  # here: sepher.imaging is heavy

    czx = np.asarray(orthogonal_view(stack, row, x0, x1))
    width = x1 - x0
    y0 = int(np.clip(row - width // 2, 0, max(stack.shape[2] - width, 0)))
    plane = stack[:, chosen["z"], y0 : y0 + width, x0:x1]
    return {
        "xz_her2": czx[her2_channel],
        "xz_nuclear": czx[nuclear_channel],
        "xy_her2": plane[her2_channel],
        "xy_nuclear": plane[nuclear_channel],
        "row_in_crop": row - y0,
        "pixel_size_um": float(pixel_size_um),
        "z_step_um": float(z_step_um),
        "label": label,
        "basal_first": bool(basal_first),
        "row": row,
        "x0": x0,
        "x1": x1,
        "z": chosen["z"],
    }


def _scale_bar(ax, x_right, y, length, label, colour="white"):
    """A horizontal scale bar ending at x_right (data units = µm), labelled above."""
    ax.plot([x_right - length, x_right], [y, y], color=colour, lw=1.5, solid_capstyle="butt")
    ax.text(x_right - length / 2, y, label, color=colour, ha="center", va="bottom", fontsize=5.5)


def _section_width_um(data: dict) -> float:
    return np.asarray(data["xz_her2"]).shape[1] * data["pixel_size_um"]


def _section_bar_um(width_um: float) -> float:
    """Scale bar of the orthogonal view: 5 µm, or 2 µm on a section narrower than 15 µm."""
    return 5.0 if width_um >= 15 else 2.0


def _orthogonal_panel(fig, axes_mm, x, y, w, h, data):
    """XY mid-nuclear plane (with the section line) and the XZ section, both in µm."""
    pix, dz = data["pixel_size_um"], data["z_step_um"]
    xy_rgb = field_rgb(data["xy_her2"], data["xy_nuclear"])
    xz_h, xz_n = np.asarray(data["xz_her2"]), np.asarray(data["xz_nuclear"])
    xz_rgb = field_rgb(
        xz_h,
        xz_n,
        her2_range=display_range([xz_h, data["xy_her2"]]),
        nuclear_range=display_range([xz_n, data["xy_nuclear"]]),
    )
    width_um = xz_rgb.shape[1] * pix
    depth_um = xz_rgb.shape[0] * dz
    side = min(h, w * 0.3)
    ax_xy = axes_mm(x, y, side, side)
    ax_xy.imshow(
        xy_rgb, extent=(0, xy_rgb.shape[1] * pix, xy_rgb.shape[0] * pix, 0), interpolation="nearest"
    )
    row_um = (data["row_in_crop"] + 0.5) * pix
    ax_xy.axhline(row_um, color="white", lw=0.6, ls=(0, (2, 1.5)))
    ax_xy.set_title("XY, mid-nuclear plane", fontsize=6, fontweight="normal", loc="left", pad=2)
    gap = 13
    w_xz = w - side - gap
    h_xz = min(h, w_xz * depth_um / max(width_um, 1e-9))
    ax_xz = axes_mm(x + side + gap, y + (side - h_xz) / 2 if h_xz < side else y, w_xz, h_xz)
    if not data["basal_first"]:
        xz_rgb = xz_rgb[::-1]  # basal plane at the bottom
    from sepher.imaging.zstack import orthogonal_extent

    extent = orthogonal_extent(xz_rgb.shape[0], 0, xz_rgb.shape[1], pix, dz)
    ax_xz.imshow(xz_rgb, extent=extent, origin="lower", aspect="equal", interpolation="nearest")
    ax_xz.set_title("XZ section (dashed line)", fontsize=6, fontweight="normal", loc="left", pad=2)
    for ax in (ax_xy, ax_xz):
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
    bar = _section_bar_um(width_um)
    _scale_bar(ax_xy, xy_rgb.shape[1] * pix * 0.95, xy_rgb.shape[0] * pix * 0.9, bar, "")
    _scale_bar(ax_xz, width_um * 0.97, extent[2] + depth_um * 0.08, bar, f"{bar:g} µm")
    ax_xz.text(-0.02, 1.0, "apical", transform=ax_xz.transAxes, ha="right", va="top", fontsize=5.5)
    ax_xz.text(
        -0.02, 0.0, "basal", transform=ax_xz.transAxes, ha="right", va="bottom", fontsize=5.5
    )
    return ax_xy, ax_xz


def _fig2_notes(conditions, lines, conf_level, method, flags, has_completeness, orthogonal):
    """Fig 2's footnote: panels, replicate level, test, adjustment, the no-marker dagger."""
    notes = [
        "a: HER2 green (one display range for all fields), nuclear stain magenta; outlines: "
        "cells white, nuclei yellow; scale bars 20 µm. b: violins and small dots, cells "
        "(flagged cells and fields left out); diamonds, biological replicates.",
        f"c-{'e' if has_completeness else 'd'}: dots, biological replicates (mean of image "
        f"medians); bar, mean with {conf_level:.0%} t-CI over replicates; n, biological "
        "replicates per condition; brackets, Welch t-test on replicate means. "
        + adjustment_note(method)
        + ".",
    ]
    if orthogonal is not None:
        notes.append(
            "f: one z-stack field, HER2 green and nuclear stain magenta (own display range); "
            "XZ section along the dashed line, drawn to scale in Z "
            f"({orthogonal['z_step_um']:g} µm steps); apical up, basal (coverslip) down; "
            f"scale bars {_section_bar_um(_section_width_um(orthogonal)):g} µm."
        )
    footnote = _marker_footnote(flags, lines, conditions)
    if footnote:
        notes.append(footnote)
    return "\n".join(notes)


# --------------------------------------------------------------------------- figure 2
def plot_her2_localisation(
    fields: list[dict],
    cells: pd.DataFrame,
    replicates: pd.DataFrame,
    conditions_summary: pd.DataFrame,
    comparisons: pd.DataFrame,
    *,
    conditions: list[str],
    lines: list[str] | None = None,
    conf_level: float = 0.95,
    simulated: bool = False,
    orthogonal: dict | None = None,
) -> plt.Figure:
    """Figure 2: HER2 localisation by immunofluorescence.

    Parameters
    ----------
    fields : list of dict
        One representative field per condition (display order), each with
        ``condition``, ``cell_line``, ``image_id``, ``her2``, ``nuclear``
        (2-D arrays), ``nuclei``, ``cells`` (labels), ``pixel_size_um``.
    cells : DataFrame
        Per-cell table (``if_cells.csv``); excluded cells are not drawn.
    replicates, conditions_summary, comparisons : DataFrame
        ``if_replicates.csv``, condition rows of ``if_summary.csv`` and
        ``if_comparisons.csv``. Comparisons of the ``fig2`` family are drawn
        (all rows when the table has no ``family``), with ``p_adjusted``
        labelled as adjusted; conditions with
        ``n_images_without_membrane_marker`` > 0 get a dagger and a footnote.
    conditions : list of str
        Conditions shown, in order.
    conf_level : float
        Level of the plotted CIs (for the axis note).
    simulated : bool
        Stamp "SIMULATED DATA".
    orthogonal : dict, optional
        :func:`orthogonal_section` of one z-stack field: adds panel f (XY
        mid-nuclear plane and XZ section of a representative cell). None (no
        z-stack field): no panel and no placeholder.

    Returns
    -------
    matplotlib.figure.Figure
    """
    lines = list(lines or dict.fromkeys(conditions_summary["cell_line"]))
    comparisons = family_rows(comparisons, "fig2")
    method = multiplicity_of(comparisons)
    flags = marker_flags(conditions_summary, cells)
    n_rows = len(fields)
    img_w = 31.0
    y_c = 12 + n_rows * (img_w + 3) + 8
    h_c = 40
    has_completeness = "membrane_completeness_mean" in conditions_summary
    y_e = y_c + h_c + 17
    h_e = 36
    y_note = (y_e + h_e if has_completeness or orthogonal else y_c + h_c) + 11
    W = DOUBLE_COLUMN_MM
    fig = manual_figure(W, y_note + 20)
    notes = _fig2_notes(conditions, lines, conf_level, method, flags, has_completeness, orthogonal)
    H = y_note + _wrap_mm(fig, notes, W - 22)[1] + 3
    fig.set_size_inches(mm(W), mm(H))

    def axes_mm(x, y, w, h):
        return fig.add_axes([x / W, 1 - (y + h) / H, w / W, h / H])

    def letter(text, x, y):
        fig.text(x / W, 1 - y / H, text, fontsize=9, fontweight="bold", va="top")

    her2_range = display_range([f["her2"] for f in fields])
    nuc_range = display_range([f["nuclear"] for f in fields])
    line_name = fields[0]["cell_line"] if fields else ""
    letter("a", 4, 4)
    fig.text(10 / W, 1 - 4.6 / H, f"{line_name}: representative fields", fontsize=6.5, va="top")
    for r, field in enumerate(fields):
        y = 12 + r * (img_w + 3)
        panels = [
            ("HER2", field_rgb(her2=field["her2"], her2_range=her2_range)),
            ("Nuclear stain", field_rgb(nuclear=field["nuclear"], nuclear_range=nuc_range)),
            (
                "Merge + segmentation",
                field_rgb(
                    field["her2"],
                    field["nuclear"],
                    her2_range=her2_range,
                    nuclear_range=nuc_range,
                    nuclei=field["nuclei"],
                    cells=field["cells"],
                ),
            ),
        ]
        for c, (title, rgb) in enumerate(panels):
            ax = axes_mm(18 + c * (img_w + 2), y, img_w, img_w)
            _image_axis(
                ax, rgb, field["pixel_size_um"], title if r == 0 else None, label_bar=(c == 2)
            )
        mark = NO_MARKER_MARK if (field["cell_line"], field["condition"]) in flags else ""
        fig.text(
            15 / W,
            1 - (y + img_w / 2) / H,
            field["condition"] + mark,
            rotation=90,
            ha="right",
            va="center",
            fontsize=7,
            fontweight="bold",
        )

    # b: per-cell distributions with replicate means (SuperPlot), both lines
    colours = condition_colours(conditions)
    x_b = 18 + 3 * (img_w + 2) + 19
    w_b = W - x_b - 4
    h_b = (n_rows * (img_w + 3) - 3 - 14 - 4) / 2
    kept = cells[~cells["excluded"].astype(bool)]
    letter("b", x_b - 10, 4)
    for k, line in enumerate(lines[:2]):
        ax = axes_mm(x_b, 14 + k * (h_b + 14), w_b, h_b)
        per_line = kept[kept["cell_line"] == line]
        for i, condition in enumerate(conditions):
            values = per_line.loc[per_line["condition"] == condition, "her2_net_membrane"]
            values = values.dropna().to_numpy()
            if len(values) > 1:
                parts = ax.violinplot(values, positions=[i], widths=0.75, showextrema=False)
                for body in parts["bodies"]:
                    body.set_facecolor(colours[condition])
                    body.set_alpha(0.25)
                    body.set_edgecolor("none")
            rng = np.random.default_rng(i)
            ax.scatter(
                i + rng.uniform(-0.22, 0.22, len(values)),
                values,
                s=1.2,
                color=colours[condition],
                alpha=0.45,
                lw=0,
                rasterized=True,
            )
            reps = replicates[
                (replicates["cell_line"] == line) & (replicates["condition"] == condition)
            ]
            ax.scatter(
                np.full(len(reps), i),
                reps["her2_net_membrane"],
                s=16,
                marker="D",
                color="white",
                edgecolor=TEXT,
                lw=0.7,
                zorder=4,
            )
        ax.set_xticks(range(len(conditions)), _tick_labels(conditions, line, None, flags))
        ax.set_xlim(-0.6, len(conditions) - 0.4)
        ax.set_ylabel("Membrane HER2 per cell\n(ADU above background)")
        ax.set_title(line, loc="left")
        ax.set_ylim(bottom=min(0, ax.get_ylim()[0]))

    # c, d (and e): condition means with CI and adjusted replicate-level p, both lines
    n_lines = max(len(lines), 1)
    w_c = (W - 22 - 12 * (2 * n_lines - 1)) / (2 * n_lines)
    panels = [
        ("c", "her2_net_membrane", HER2_LABEL, 0, y_c, h_c),
        ("d", "nuclear_fraction", NUCLEAR_FRACTION_LABEL, 1, y_c, h_c),
    ]
    if has_completeness:
        panels.append(("e", "membrane_completeness", COMPLETENESS_LABEL, 0, y_e, h_e))
    for name, value, label, p_i, y_p, h_p in panels:
        for k, line in enumerate(lines):
            x = 18 + (p_i * n_lines + k) * (w_c + 12)
            ax = axes_mm(x, y_p, w_c, h_p)
            if k == 0:
                letter(name, x - 14, y_p - 5)
            reps = replicates[replicates["cell_line"] == line]
            summ = conditions_summary[conditions_summary["cell_line"] == line]
            comp = comparisons[comparisons["cell_line"] == line]
            ticks = _tick_labels(conditions, line, summ, flags)
            _condition_axis(ax, conditions, reps, summ, value, colours, conf_level, labels=ticks)
            values = reps[reps["condition"].isin(conditions)][value].to_numpy(float)
            if f"{value}_ci_high" in summ:
                values = np.r_[values, summ[summ["condition"].isin(conditions)][f"{value}_ci_high"]]
            top = np.nanmax(values) if np.isfinite(values).any() else 1.0
            _add_p_values(ax, conditions, comp, value, top if top > 0 else 1.0)
            if value == "membrane_completeness":  # a fraction: no tick above 1
                ax.yaxis.set_major_locator(mticker.FixedLocator(np.linspace(0, 1, 5)))
            ax.set_title(line, loc="left")
            if k == 0:
                ax.set_ylabel(label)
    if orthogonal is not None:
        x_f = 18 + n_lines * (w_c + 12)
        letter("f", x_f - 4, y_e - 5)
        ax_xy, _ = _orthogonal_panel(fig, axes_mm, x_f + 4, y_e, W - x_f - 8, h_e, orthogonal)
        fig.text(
            (x_f + 4) / W,
            1 - (y_e - 5.2) / H,
            orthogonal.get("label", ""),
            fontsize=6.5,
            fontweight="bold",
            va="top",
        )
    _footnote(fig, 18, y_note, W - 22, notes)
    if simulated:
        stamp_simulated(fig)
    return fig


#: Footnote font size (pt) and line spacing.
NOTE_PT = 5.5
_NOTE_SPACING = 1.25


def _wrap_mm(fig, text, width_mm):
    """`text` wrapped (by rendered width) to `width_mm`, and its height in mm."""
    renderer = fig.canvas.get_renderer()
    width_px = width_mm / 25.4 * fig.dpi
    wrapped = wrap_to_width(text, width_px, renderer, NOTE_PT, keep_together=("adj. p",))
    n_lines = wrapped.count("\n") + 1
    return wrapped, n_lines * NOTE_PT * _NOTE_SPACING * 1.1 / 72 * 25.4


def _footnote(fig, x_mm, y_mm, width_mm, text):
    """Grey footnote wrapped to `width_mm` at (x_mm, y_mm from the top)."""
    W = fig.get_size_inches()[0] * 25.4
    H = fig.get_size_inches()[1] * 25.4
    wrapped, _ = _wrap_mm(fig, text, width_mm)
    return fig.text(
        x_mm / W,
        1 - y_mm / H,
        wrapped,
        fontsize=NOTE_PT,
        color=GREY,
        va="top",
        linespacing=_NOTE_SPACING,
    )


# --------------------------------------------------------------------------- figure 3
def replicate_ic50(
    fits_by_replicate: pd.DataFrame,
    *,
    line: str,
    drug: str,
    conditions,
    conf_level: float = 0.95,
    column: str = "ic50_rel",
) -> pd.DataFrame:
    """Per condition: geometric mean IC50 over biological replicates with its t-CI.

    The mean and t-interval are those of log IC50 over replicates (one fit per
    replicate), back-transformed: the level at which the comparisons of
    ``comparisons.csv`` are made.

    Parameters
    ----------
    fits_by_replicate : DataFrame
        ``fits_by_replicate.csv`` (``cell_line``, ``condition``, ``drug``,
        ``replicate``, ``column``).
    line, drug : str
    conditions : sequence of str
    conf_level : float, default 0.95
    column : str, default "ic50_rel"

    Returns
    -------
    DataFrame
        ``condition``, ``n`` (replicates with a finite positive IC50),
        ``geomean``, ``lower``, ``upper`` (NaN CI with fewer than two).
    """
    sel = fits_by_replicate[
        (fits_by_replicate["cell_line"] == line) & (fits_by_replicate["drug"] == drug)
    ]
    from scipy import stats

    rows = []
    for condition in conditions:
        x = sel.loc[sel["condition"] == condition, column].to_numpy(float)
        x = np.log(x[np.isfinite(x) & (x > 0)])
        n = x.size
        mean = x.mean() if n else np.nan
        half = (
            stats.t.ppf(0.5 + conf_level / 2, n - 1) * x.std(ddof=1) / np.sqrt(n)
            if n >= 2
            else np.nan
        )
        rows.append(
            {
                "condition": condition,
                "n": n,
                "geomean": np.exp(mean),
                "lower": np.exp(mean - half),
                "upper": np.exp(mean + half),
            }
        )
    return pd.DataFrame(rows)


def _ic50_comparisons(ic50_comparisons, *, line, drug, reference, conditions):
    """IC50 comparisons vs `reference` shown in fig 3, as (test, reference) rows.

    Only a replicate-level table (with ``n_replicates_numerator``) is drawn: a
    well-level one (from before issue 15) next to replicate dots would mislead.
    """
    if (
        ic50_comparisons is None
        or not len(ic50_comparisons)
        or "n_replicates_numerator" not in ic50_comparisons
    ):
        return pd.DataFrame(columns=["test", "reference", "p", "test_name"])
    comp = ic50_comparisons
    keep = (comp["denominator"] == reference) & comp["numerator"].isin(conditions)
    if "cell_line" in comp:
        keep &= comp["cell_line"] == line
    if "drug" in comp:
        keep &= comp["drug"] == drug
    if "level" in comp:
        keep &= pd.to_numeric(comp["level"], errors="coerce").fillna(50) == 50
    comp = comp[keep]
    if "family" in comp and (comp["family"].astype(str) == "fig3").any():
        comp = comp[comp["family"].astype(str) == "fig3"]
    comp = comp.drop_duplicates("numerator")
    out = comp.rename(columns={"test": "test_name"}).assign(
        test=comp["numerator"], reference=comp["denominator"]
    )
    return out


def _test_words(tests) -> str:
    """'paired t-test on log IC50 (n = 3 pairs)' style words for the IC50 comparisons shown."""
    words = []
    for name, group in tests.groupby("test_name", sort=True):
        paired = str(name).startswith("paired")
        cols = ("n_pairs",) if paired else ("n_replicates_numerator", "n_replicates_denominator")
        ns = [int(v) for col in cols if col in group for v in group[col].dropna()]
        n_text = ""
        if ns:
            lo, hi = min(ns), max(ns)
            unit = "pairs" if paired else "replicates per condition"
            n_text = f" (n = {lo}{'' if lo == hi else f'-{hi}'} {unit})"
        test = f"{name}-test" if str(name).endswith(" t") else str(name)
        words.append(f"{test} on log IC50{n_text}")
    return "; ".join(words)


def plot_sequential_exposure(
    replicates: pd.DataFrame,
    conditions_summary: pd.DataFrame,
    comparisons: pd.DataFrame,
    fits: pd.DataFrame | None,
    *,
    conditions: list[str],
    lines: list[str] | None = None,
    drug: str = "T-DM1",
    conf_level: float = 0.95,
    simulated: bool = False,
    fits_by_replicate: pd.DataFrame | None = None,
    ic50_comparisons: pd.DataFrame | None = None,
):
    """Figure 3: membrane HER2 and T-DM1 IC50 after sequential exposure.

    Parameters
    ----------
    replicates, conditions_summary, comparisons : DataFrame
        IF replicate table, condition rows of the IF summary, comparisons
        (the ``fig3`` family when the table has ``family``; adjusted p shown).
    fits : DataFrame or None
        Pooled dose-response fits (``cell_line, condition, drug, ic50_rel,
        ic50_rel_lower, ic50_rel_upper, ic50_rel_reached,
        concentration_unit``), drawn only when ``fits_by_replicate`` is not
        given; None (and no replicate fits) draws the HER2 panels only.
    conditions : list of str
        Sequences shown, reference (T-R) first.
    fits_by_replicate : DataFrame, optional
        ``fits_by_replicate.csv``: panel b shows each replicate's IC50 and the
        geometric mean with its t-CI over replicates (:func:`replicate_ic50`).
    ic50_comparisons : DataFrame, optional
        Dose-response ``comparisons.csv`` (replicate-level ratios vs
        ``conditions[0]``: ``numerator``, ``denominator``, ``test``, ``p``,
        ``p_adjusted``, ``multiplicity``, ``n_pairs``,
        ``n_replicates_numerator``): brackets with the adjusted p.

    Returns
    -------
    matplotlib.figure.Figure
    """
    lines = list(lines or dict.fromkeys(conditions_summary["cell_line"]))
    comparisons = family_rows(comparisons, "fig3")
    comparisons = comparisons[comparisons["reference"] == conditions[0]]
    flags = marker_flags(conditions_summary)
    by_rep = fits_by_replicate is not None and len(fits_by_replicate) > 0
    has_fits = by_rep or (fits is not None and len(fits) > 0)
    ic50_shown = {
        line: _ic50_comparisons(
            ic50_comparisons, line=line, drug=drug, reference=conditions[0], conditions=conditions
        )
        for line in lines
    }
    method = multiplicity_of(comparisons, *(ic50_shown.values() if by_rep else ()))
    note_a = (
        "a: dots, biological replicates (mean of image medians); bar, mean with "
        f"{conf_level:.0%} t-CI over replicates; n, biological replicates; brackets, Welch "
        f"t-test on replicate means vs {conditions[0]}. " + adjustment_note(method) + "."
    )
    footnote = _marker_footnote(flags, lines, conditions)
    if footnote:
        note_a += "\n" + footnote
    if not has_fits:
        note_a += "\nIC50 panel omitted: no plate data configured."
    if by_rep:
        tests = pd.concat(list(ic50_shown.values()))
        words = _test_words(tests) if len(tests) and "test_name" in tests else ""
        note_b = (
            "b: dots, IC50 of each biological replicate (one fit per replicate; open: not "
            f"reached in the dose range); bar, geometric mean with {conf_level:.0%} t-CI of "
            "log IC50 over replicates; n, replicates. "
            + (f"Brackets vs {conditions[0]}: {words}. " if words else "")
            + adjustment_note(method)
            + "."
        )
    else:
        note_b = (
            "b: pooled fit of all wells with its 95% CI (open: IC50 not reached); no "
            "replicate-level fits given, so no test is drawn."
        )
    W = DOUBLE_COLUMN_MM
    fig = manual_figure(W, 150)
    y_note_a = 14 + 40 + 12
    y_b = y_note_a + _wrap_mm(fig, note_a, W - 24)[1] + 9
    y_note_b = y_b + 40 + 12
    H = (y_note_b + _wrap_mm(fig, note_b, W - 24)[1] if has_fits else y_b - 6) + 3
    fig.set_size_inches(mm(W), mm(H))
    colours = condition_colours(conditions)
    n_cols = len(lines)
    w = (W - 24 - 14 * (n_cols - 1)) / n_cols

    def axes_mm(x, y, w_, h_):
        return fig.add_axes([x / W, 1 - (y + h_) / H, w_ / W, h_ / H])

    for k, line in enumerate(lines):
        x = 20 + k * (w + 14)
        ax = axes_mm(x, 14, w, 40)
        reps = replicates[replicates["cell_line"] == line]
        summ = conditions_summary[conditions_summary["cell_line"] == line]
        ticks = _tick_labels(conditions, line, summ, flags)
        _condition_axis(
            ax, conditions, reps, summ, "her2_net_membrane", colours, conf_level, labels=ticks
        )
        top = np.nanmax(
            np.r_[
                reps[reps["condition"].isin(conditions)]["her2_net_membrane"],
                summ[summ["condition"].isin(conditions)]["her2_net_membrane_ci_high"],
            ]
        )
        comp = comparisons[comparisons["cell_line"] == line]
        _add_p_values(ax, conditions, comp, "her2_net_membrane", top)
        ax.set_title(f"{line}: membrane HER2 (IF)", loc="left")
        if k == 0:
            ax.set_ylabel(HER2_LABEL)
            fig.text(4 / W, 1 - 8 / H, "a", fontsize=9, fontweight="bold", va="top")
        if not has_fits:
            continue
        ax2 = axes_mm(x, y_b, w, 40)
        if by_rep:
            unit = _ic50_replicate_axis(
                ax2,
                fits_by_replicate,
                line=line,
                drug=drug,
                conditions=conditions,
                colours=colours,
                conf_level=conf_level,
            )
            low, high = ax2.get_ylim()
            _add_p_values(ax2, conditions, ic50_shown[line], None, high, bottom=low, log=True)
            n_reps = replicate_ic50(
                fits_by_replicate, line=line, drug=drug, conditions=conditions
            ).set_index("condition")["n"]
            ax2.set_xticks(
                range(len(conditions)), [f"{c}\nn = {int(n_reps[c])}" for c in conditions]
            )
            ylabel = f"{drug} IC50 ({unit})\nper replicate"
        else:
            unit = _ic50_pooled_axis(
                ax2, fits, line=line, drug=drug, conditions=conditions, colours=colours
            )
            ylabel = f"{drug} IC50 ({unit})\n{conf_level:.0%} CI"
        ax2.set_title(f"{line}: {drug} IC50 (dose-response)", loc="left")
        if k == 0:
            ax2.set_ylabel(ylabel)
            fig.text(4 / W, 1 - (y_b - 6) / H, "b", fontsize=9, fontweight="bold", va="top")
    _footnote(fig, 20, y_note_a, W - 24, note_a)
    if has_fits:
        _footnote(fig, 20, y_note_b, W - 24, note_b)
    if simulated:
        stamp_simulated(fig)
    return fig


def _ic50_replicate_axis(ax, fits_by_replicate, *, line, drug, conditions, colours, conf_level):
    """Replicate IC50 dots and the geometric mean with its t-CI, log axis; returns the unit."""
    sel = fits_by_replicate[
        (fits_by_replicate["cell_line"] == line) & (fits_by_replicate["drug"] == drug)
    ]
    unit = (
        str(sel["concentration_unit"].iloc[0]) if len(sel) and "concentration_unit" in sel else ""
    )
    summary = replicate_ic50(
        fits_by_replicate, line=line, drug=drug, conditions=conditions, conf_level=conf_level
    ).set_index("condition")
    values = []
    for i, condition in enumerate(conditions):
        rows = sel[sel["condition"] == condition].sort_values("replicate")
        est = rows["ic50_rel"].to_numpy(float)
        reached = (
            rows["ic50_rel_reached"].astype(str).str.lower().isin(["true", "1", "yes"]).to_numpy()
            if "ic50_rel_reached" in rows
            else np.ones(len(rows), bool)
        )
        ok = np.isfinite(est) & (est > 0)
        offsets = np.linspace(-0.12, 0.12, max(len(est), 1))[: len(est)]
        for off, e, r in zip(offsets[ok], est[ok], reached[ok], strict=True):
            ax.scatter(
                i + off,
                e,
                s=12,
                color=colours[condition] if r else "white",
                edgecolor=colours[condition],
                lw=0.7,
                zorder=3,
            )
        values += list(est[ok])
        row = summary.loc[condition]
        if np.isfinite(row["geomean"]):
            ax.plot([i - 0.25, i + 0.25], [row["geomean"]] * 2, color=TEXT, lw=1.0, zorder=4)
            values.append(row["geomean"])
        if np.isfinite(row["lower"]) and np.isfinite(row["upper"]):
            ax.errorbar(
                i,
                row["geomean"],
                yerr=[[row["geomean"] - row["lower"]], [row["upper"] - row["geomean"]]],
                fmt="none",
                ecolor=TEXT,
                elinewidth=0.8,
                capsize=2.5,
                zorder=4,
            )
            values += [row["lower"], row["upper"]]
    ax.set_yscale("log")
    if values:
        ax.set_ylim(min(values) / 1.15, max(values) * 1.15)
    _plain_log_ticks(ax)
    ax.set_xlim(-0.6, len(conditions) - 0.4)
    return unit


def _plain_log_ticks(ax):
    """Plain numbers (10, 20, 50) rather than 2x10^1 on a log axis, never crowded.

    Labelled ticks at 1, 2, 5 x 10^k, or at every integer multiple when the
    axis spans too little for three of those; minor ticks unlabelled.
    """
    lo, hi = ax.get_ylim()
    decades = range(int(np.floor(np.log10(lo))) - 1, int(np.ceil(np.log10(hi))) + 1)
    for mantissas in ((1, 2, 5), range(1, 10)):
        ticks = [m * 10.0**k for k in decades for m in mantissas if lo <= m * 10.0**k <= hi]
        if len(ticks) >= 3:
            break
    ax.yaxis.set_major_locator(mticker.FixedLocator(ticks))
    ax.yaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(mticker.NullFormatter())


def _ic50_pooled_axis(ax, fits, *, line, drug, conditions, colours):
    """Pooled-fit IC50 with its CI per condition (tables without replicate fits)."""
    sel = fits[(fits["cell_line"] == line) & (fits["drug"] == drug)]
    unit = str(sel["concentration_unit"].iloc[0]) if len(sel) else ""
    for i, condition in enumerate(conditions):
        row = sel[sel["condition"] == condition]
        if not len(row):
            continue
        row = row.iloc[0]
        est, lo, hi = row["ic50_rel"], row["ic50_rel_lower"], row["ic50_rel_upper"]
        reached = str(row["ic50_rel_reached"]).lower() in ("true", "1", "yes")
        if np.isfinite(est):
            ax.errorbar(
                i,
                est,
                yerr=[[est - lo], [hi - est]] if np.isfinite(lo) and np.isfinite(hi) else None,
                fmt="o",
                color=colours[condition],
                mfc=colours[condition] if reached else "white",
                ms=4,
                capsize=2.5,
                elinewidth=0.8,
            )
    ax.set_yscale("log")
    ax.autoscale_view()
    _plain_log_ticks(ax)
    ax.set_xticks(range(len(conditions)), conditions)
    ax.set_xlim(-0.6, len(conditions) - 0.4)
    return unit


# --------------------------------------------------------------------------- figure S1
def _label_index(df: pd.DataFrame) -> pd.Index:
    return pd.Index(df["cell_line"].astype(str) + " " + df["condition"].astype(str))


def border_counts(
    *, cells: pd.DataFrame | None = None, conditions_summary: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Border-cell exclusion per condition: count and fraction of segmented cells.

    Parameters
    ----------
    cells : DataFrame, optional
        ``if_cells.csv`` with the boolean ``border`` flag (used when the
        summary lacks the columns).
    conditions_summary : DataFrame, optional
        Condition rows of ``if_summary.csv`` with ``n_cells_border`` and
        ``fraction_border`` (preferred: the table's own numbers).

    Returns
    -------
    DataFrame
        Indexed ``"<cell_line> <condition>"``: ``n_cells_border``,
        ``fraction_border`` (0-1).
    """
    cols = ["n_cells_border", "fraction_border"]
    if conditions_summary is not None and set(cols) <= set(conditions_summary.columns):
        out = conditions_summary[cols].astype(float).copy()
        out.index = _label_index(conditions_summary)
        return out
    if cells is None or "border" not in cells:
        raise ValueError("border counts need if_summary.csv's n_cells_border or if_cells.csv")
    flag = cells["border"].astype(str).str.lower().isin(["true", "1"])
    grouped = flag.groupby([cells["cell_line"], cells["condition"]], sort=False)
    out = pd.DataFrame({"n_cells_border": grouped.sum(), "fraction_border": grouped.mean()})
    out = out.reset_index()
    out.index = _label_index(out)
    return out[cols].astype(float)


def segmentation_channel_counts(image_qc: pd.DataFrame) -> pd.DataFrame:
    """Images per condition by the channel their cells were segmented on.

    Parameters
    ----------
    image_qc : DataFrame
        ``if_image_qc.csv`` with ``cell_line``, ``condition`` and
        ``segmentation_channel`` per image: "membrane marker" (or "membrane")
        or "HER2" (any case).

    Returns
    -------
    DataFrame
        Indexed ``"<cell_line> <condition>"``: ``membrane``, ``her2`` (image
        counts) and ``n_images``.
    """
    spelled = image_qc["segmentation_channel"].astype(str).str.strip().str.lower()
    channel = spelled.map(SEGMENTATION_CHANNELS)
    if channel.isna().any():
        unknown = sorted(set(spelled[channel.isna()]))
        raise ValueError(
            f"segmentation_channel must be one of {sorted(SEGMENTATION_CHANNELS)}, got {unknown}"
        )
    keys = [image_qc["cell_line"], image_qc["condition"]]
    out = pd.DataFrame(
        {
            "membrane": (channel == "membrane").groupby(keys, sort=False).sum(),
            "her2": (channel == "her2").groupby(keys, sort=False).sum(),
        }
    ).astype(int)
    out["n_images"] = out["membrane"] + out["her2"]
    out = out.reset_index()
    out.index = _label_index(out)
    return out[["membrane", "her2", "n_images"]]


#: Fills of the cell-flag bars: light grey and hatches, none a colour of the study palette
#: (condition, line of therapy), so that no colour means two things.
FLAG_STYLE = {
    "border": {"color": LIGHT_GREY, "edgecolor": TEXT},
    "saturated": {"color": "white", "edgecolor": TEXT, "hatch": "xxxx"},
    "implausible_size": {"color": "white", "edgecolor": TEXT, "hatch": "////"},
}


def plot_segmentation_qc(
    overlays: list[dict],
    flagged: list[dict],
    flag_counts: pd.DataFrame,
    *,
    n_flagged: int | None = None,
    simulated: bool = False,
    border: pd.DataFrame | None = None,
    segmentation: pd.DataFrame | None = None,
):
    """Figure S1: segmentation overlays, flagged fields, cell flags, segmentation channel.

    Parameters
    ----------
    overlays : list of dict
        Fields to show (``label``, ``rgb``, ``pixel_size_um``), one per condition.
    flagged : list of dict
        Flagged fields (``label``, ``rgb``, ``pixel_size_um``).
    flag_counts : DataFrame
        Index ``cell_line / condition``; columns: percentage of cells carrying
        each flag (``border``, ``saturated``, ``implausible_size``) and
        ``images_flagged``.
    n_flagged : int, optional
        Number of flagged fields in all (when ``flagged`` shows only the first).
    border : DataFrame, optional
        :func:`border_counts` (same index): the border bars show the table's
        fraction and are labelled with the count of cells excluded.
    segmentation : DataFrame, optional
        :func:`segmentation_channel_counts` (same index): a panel of images
        per condition segmented on the membrane marker or on HER2 itself;
        conditions with HER2-segmented images get a dagger.

    Returns
    -------
    matplotlib.figure.Figure
    """
    n_cols = 6
    size = (DOUBLE_COLUMN_MM - 10 - 2 * (n_cols - 1)) / n_cols
    n_over_rows = int(np.ceil(len(overlays) / n_cols))
    n_flag_rows = int(np.ceil(len(flagged) / n_cols)) if flagged else 0
    rows_h = (n_over_rows + n_flag_rows) * (size + 6) + (12 if flagged else 0)
    has_seg = segmentation is not None and len(segmentation) > 0
    y_flags = 12 + rows_h + (0 if flagged else 6)  # top of the cell-flag panel's letter
    H = y_flags + 59 + (34 if has_seg else 0) + (12 if has_seg or border is not None else 0)
    W = DOUBLE_COLUMN_MM
    fig = manual_figure(W, H)

    def axes_mm(x, y, w_, h_):
        return fig.add_axes([x / W, 1 - (y + h_) / H, w_ / W, h_ / H])

    fig.text(3 / W, 1 - 4 / H, "a", fontsize=9, fontweight="bold", va="top")
    fig.text(
        9 / W,
        1 - 4.6 / H,
        "Segmentation: cells (white) and nuclei (yellow) outlines on "
        "HER2 (green) and nuclear stain (magenta), one field per condition",
        fontsize=6.5,
        va="top",
    )
    y = 12
    for i, field in enumerate(overlays):
        r, c = divmod(i, n_cols)
        ax = axes_mm(5 + c * (size + 2), y + r * (size + 6), size, size)
        _image_axis(ax, field["rgb"], field["pixel_size_um"], field["label"], label_bar=(i == 0))
    y += n_over_rows * (size + 6)
    if flagged:
        fig.text(3 / W, 1 - (y + 1) / H, "b", fontsize=9, fontweight="bold", va="top")
        fig.text(
            9 / W,
            1 - (y + 1.6) / H,
            "Fields flagged by image QC (left out of every summary)"
            + (
                f": first {len(flagged)} of {n_flagged}"
                if n_flagged and n_flagged > len(flagged)
                else ""
            ),
            fontsize=6.5,
            va="top",
        )
        y += 12
        for i, field in enumerate(flagged):
            r, c = divmod(i, n_cols)
            ax = axes_mm(5 + c * (size + 2), y + r * (size + 6), size, size)
            _image_axis(ax, field["rgb"], field["pixel_size_um"], field["label"])
            ax.title.set_color(ALERT)
        y += n_flag_rows * (size + 6) - 6
    letters = iter("cde" if flagged else "bcd")
    y = y_flags
    labels = list(flag_counts.index)
    her2_only = set()
    if has_seg:
        her2_only = {k for k in labels if k in segmentation.index and segmentation.loc[k, "her2"]}
    tick_text = [k + (NO_MARKER_MARK if k in her2_only else "") for k in labels]
    fig.text(3 / W, 1 - y / H, next(letters), fontsize=9, fontweight="bold", va="top")
    ax = axes_mm(18, y + 4, W - 60, 40)
    cell_flags = [c for c in ("border", "saturated", "implausible_size") if c in flag_counts]
    x = np.arange(len(flag_counts))
    width = 0.8 / max(len(cell_flags), 1)
    heights = {flag: flag_counts[flag].to_numpy(float) for flag in cell_flags}
    if border is not None and "border" in heights:
        heights["border"] = 100 * border.reindex(labels)["fraction_border"].to_numpy(float)
    top = max([np.nanmax(h) for h in heights.values() if len(h)] + [1.0])
    ax.set_ylim(0, top * 1.5)
    for j, flag in enumerate(cell_flags):
        xs = x + (j - (len(cell_flags) - 1) / 2) * width
        ax.bar(xs, heights[flag], width, label=flag.replace("_", " "), lw=0.5, **FLAG_STYLE[flag])
        if flag == "border" and border is not None:
            counts = border.reindex(labels)["n_cells_border"].to_numpy(float)
            for xi, h, n in zip(xs, heights[flag], counts, strict=True):
                if np.isfinite(n):
                    ax.text(
                        xi,
                        (h if np.isfinite(h) else 0) + top * 0.03,
                        f"{int(n)}",
                        ha="center",
                        va="bottom",
                        fontsize=4.5,
                        color=TEXT,
                        rotation=90,
                    )
    for xi, n_img in zip(x, flag_counts.get("images_flagged", []), strict=False):
        if n_img:
            ax.text(
                xi,
                top * 1.5 * 0.98,
                f"{int(n_img)} image{'s' if n_img > 1 else ''}\nflagged",
                ha="center",
                va="top",
                fontsize=5,
                color=ALERT,
            )
    ax.set_xlim(-0.6, len(labels) - 0.4)
    ax.set_ylabel("Cells flagged (%)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, title="Cell flag")
    note = "Cells touching the field border are excluded"
    if border is not None:
        note += "; numbers above the border bars, cells excluded"
    bottom = ax
    if has_seg:
        ax.set_xticks(x, [""] * len(labels))  # the panel below names the conditions
        y_s = y + 4 + 40 + 6
        fig.text(3 / W, 1 - (y_s - 2) / H, next(letters), fontsize=9, fontweight="bold", va="top")
        ax_s = axes_mm(18, y_s, W - 60, 28)
        seg = segmentation.reindex(labels).fillna(0)
        ax_s.bar(
            x,
            seg["membrane"],
            0.6,
            color=LIGHT_GREY,
            edgecolor=TEXT,
            label="membrane marker",
            lw=0.5,
        )
        ax_s.bar(
            x,
            seg["her2"],
            0.6,
            bottom=seg["membrane"],
            color="white",
            edgecolor=TEXT,
            hatch="////",
            label="HER2 itself (no marker)",
            lw=0.5,
        )
        ax_s.set_xlim(-0.6, len(labels) - 0.4)
        ax_s.set_ylim(0, max(float(seg["n_images"].max()), 1.0) * 1.1)
        ax_s.yaxis.set_major_locator(mticker.MaxNLocator(integer=True))
        ax_s.set_ylabel("Fields")
        ax_s.legend(
            loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, title="Segmented on"
        )
        note += (
            f". {NO_MARKER_MARK} conditions with fields whose cells were segmented on HER2 itself "
            "(no membrane marker)"
        )
        bottom = ax_s
    bottom.set_xticks(x, tick_text, rotation=40, ha="right")
    if border is not None or has_seg:
        renderer = fig.canvas.get_renderer()
        low = min(t.get_window_extent(renderer).y0 for t in bottom.get_xticklabels())
        y_note = (1 - low / fig.bbox.height) * H + 2.5  # mm from the top, below the labels
        _footnote(fig, 18, y_note, W - 22, note + ".")
    if simulated:
        stamp_simulated(fig)
    return fig
