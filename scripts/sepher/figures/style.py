"""The house figure style: one look, one palette, deterministic files.

Every figure of the study is drawn inside :func:`house_style` (the style file
``resources/sepher.mplstyle`` is passed in, so the workflow can declare it as
an input and a change to it reruns the figures), sized in millimetres with
:func:`mm` for journal column widths, stamped with :func:`stamp_simulated`
when the data are simulated, and written with :func:`save_figure`, which
strips timestamps so that two runs give byte-identical PDF and PNG files.

Colours are the Okabe & Ito (2008) colour-blind-safe palette. Every meaning
of the study has one colour, fixed here in :data:`PALETTE_TABLE` and read by
every figure module (through :func:`group_colours`, :func:`study_colour`,
:func:`study_linestyle`); no colour carries two meanings except the
documented synonyms (:data:`SYNONYMS`): a pertuzumab-naive patient curve and
a trastuzumab-resistant (T-R) cell line share blue ("trastuzumab only"), and
pertuzumab-pretreated patients, TP-R cells and post-T+P biopsies share
vermillion ("pertuzumab-exposed"). Lines of therapy are black and greys told
apart by line style. :func:`simulate_deuteranopia` and
:func:`colour_difference` check that the condition colours stay apart for a
deuteranope (tests/test_figures_units.py).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # annotations only
    import matplotlib.pyplot as plt

# matplotlib is imported where it is drawn with, not here: the colour and
# palette constants are read by jobs that never draw (the IHC overlay files),
# and importing matplotlib.pyplot costs those jobs ~0.4 s each. The module
# names ``mpl`` and ``plt`` (and ``FontProperties``, ``offset_copy``) stay
# attributes of this module through :func:`__getattr__`.
_LAZY = {
    "mpl": ("matplotlib", None),
    "plt": ("matplotlib.pyplot", None),
    "FontProperties": ("matplotlib.font_manager", "FontProperties"),
    "offset_copy": ("matplotlib.transforms", "offset_copy"),
}


def __getattr__(name: str):
    """Import matplotlib (``mpl``, ``plt``, ...) on first use (PEP 562)."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    module, attribute = _LAZY[name]
    value = importlib.import_module(module)
    if attribute is not None:
        value = getattr(value, attribute)
    globals()[name] = value
    return value


#: Default location of the style file in a checkout (``resources/sepher.mplstyle``).
DEFAULT_STYLE = Path(__file__).resolve().parents[3] / "resources" / "sepher.mplstyle"

#: Journal column widths, mm (Nature-family / JECCR-like single and double column).
SINGLE_COLUMN_MM = 89.0
DOUBLE_COLUMN_MM = 183.0

#: Okabe & Ito (2008) colour-blind-safe palette, by colour name.
OKABE_ITO = {
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "bluish_green": "#009E73",
    "orange": "#E69F00",
    "reddish_purple": "#CC79A7",
    "sky_blue": "#56B4E9",
    "yellow": "#F0E442",
    "black": "#000000",
}

#: Palette order used for groups without a study colour (yellow last: low contrast on white).
PALETTE = [
    OKABE_ITO[name]
    for name in (
        "blue",
        "vermillion",
        "bluish_green",
        "orange",
        "reddish_purple",
        "sky_blue",
        "black",
        "yellow",
    )
]

#: Grey of the parental cells (the untreated reference line of every in-vitro figure).
PARENTAL_GREY = "#595959"
#: Colour of QC failures: excluded plates, outlier wells, the simulated-data stamp.
ALERT = "#A0302A"

#: Colour of each in-vitro condition id (legend order).
CONDITION_COLOURS = {
    "parental": PARENTAL_GREY,
    "T-R": OKABE_ITO["blue"],
    "TP-R": OKABE_ITO["vermillion"],
    "T-R>T": OKABE_ITO["bluish_green"],
    "T-R>P": OKABE_ITO["reddish_purple"],
    "T-R>T+P": OKABE_ITO["orange"],
}
#: Colour of the patient groups (display labels of ``survival.group_labels``).
PATIENT_GROUP_COLOURS = {
    "Pertuzumab-naive": OKABE_ITO["blue"],
    "Pertuzumab-pretreated": OKABE_ITO["vermillion"],
}
#: Colour of the biopsy time points (pre = before, post = after trastuzumab + pertuzumab).
BIOPSY_COLOURS = {"pre": OKABE_ITO["sky_blue"], "post": OKABE_ITO["vermillion"]}
#: Line of therapy (1, 2, ...) -> (colour, matplotlib line style): black and greys, told
#: apart by line style; the last entry serves every later line.
LINE_OF_THERAPY_STYLES = {
    1: ("#404040", (0, (6.0, 1.5, 1.5, 1.5))),
    2: ("#000000", "-"),
    3: ("#666666", (0, (4.0, 1.5))),
    4: ("#999999", (0, (1.0, 1.2))),
    5: ("#8C8C8C", (0, (4.0, 1.5, 1.0, 1.5, 1.0, 1.5))),
    6: ("#1A1A1A", (0, (8.0, 2.0))),
}
#: HER2 membrane class (per cell and per biopsy, ASCO/CAP 2018) -> outline colour in
#: the IHC tiles (fig 4): a lightness ramp, dark indigo (0) to pale cyan (3+), so that
#: each outline contrasts with the stain under it (unstained tissue -> dark line,
#: dark-brown 3+ membrane -> light line) and the classes stay apart for a
#: deuteranope, who keeps lightness and the blue-yellow axis (smallest pairwise
#: CIEDE2000: 21.6 trichromat, 18.8 simulated deuteranopia, Machado et al. 2009).
HER2_CLASS_COLOURS = {
    "0": "#2A0F7A",
    "1+": "#3A5BD9",
    "2+": "#17A5E6",
    "3+": "#86E6F5",
}
#: Groups of keys of :data:`PALETTE_TABLE` that share a colour on purpose, and why.
SYNONYMS = {
    "trastuzumab only (pertuzumab-naive)": ("T-R", "Pertuzumab-naive"),
    "pertuzumab-exposed": ("TP-R", "Pertuzumab-pretreated", "post"),
}


def _palette_table() -> dict:
    table = {}
    for key, colour in CONDITION_COLOURS.items():
        table[key] = ("condition", colour, "-")
    for key, colour in PATIENT_GROUP_COLOURS.items():
        table[key] = ("patient group", colour, "-")
    for key, colour in BIOPSY_COLOURS.items():
        table[key] = ("biopsy", colour, "-")
    for line, (colour, linestyle) in LINE_OF_THERAPY_STYLES.items():
        table[f"{_ordinal(line)} line"] = ("line of therapy", colour, linestyle)
    for key, colour in HER2_CLASS_COLOURS.items():
        table[f"HER2 {key}"] = ("HER2 class", colour, "-")
    table["excluded"] = ("quality control", ALERT, "-")
    return table


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


#: Every meaning of the study -> (family, colour, line style); the one place colours are set.
PALETTE_TABLE = _palette_table()

#: Fixed colours of the study's groups, keys lower case (compared case-insensitively).
STUDY_COLOURS = {key.lower(): colour for key, (_, colour, _) in PALETTE_TABLE.items()}

_WORD_ORDINALS = {
    "first": 1,
    "second": 2,
    "third": 3,
    "fourth": 4,
    "fifth": 5,
    "sixth": 6,
}
_LINE = re.compile(
    r"^(?:>=|\u2265)?\s*(?:line\s+(\d+)|(\d+)(?:st|nd|rd|th)|("
    + "|".join(_WORD_ORDINALS)
    + r"))\s*\+?(?:\s*(?:line|or later|or more|and later))*\s*$"
)


def line_of_therapy(label) -> int | None:
    """The line of therapy a group label names, or None.

    ``"2nd"``, ``"2nd line"``, ``"4th+"``, ``">=4th"``, ``"Third line"``,
    ``"line 3"`` and ``"Fourth line or later"`` are lines 2, 2, 4, 4, 3, 3 and 4.
    """
    match = _LINE.match(str(label).strip().lower())
    if not match:
        return None
    number = match.group(1) or match.group(2)
    return int(number) if number else _WORD_ORDINALS[match.group(3)]


def study_colour(group) -> str | None:
    """The study's colour of a group key or label (:data:`PALETTE_TABLE`), else None."""
    key = str(group).strip().lower()
    if key in STUDY_COLOURS:
        return STUDY_COLOURS[key]
    line = line_of_therapy(key)
    if line is not None and line >= 1:
        return LINE_OF_THERAPY_STYLES[min(line, max(LINE_OF_THERAPY_STYLES))][0]
    return None


def study_linestyle(group):
    """Line style of a group: its own for a line of therapy, solid otherwise."""
    line = line_of_therapy(group)
    if line is not None and line >= 1:
        return LINE_OF_THERAPY_STYLES[min(line, max(LINE_OF_THERAPY_STYLES))][1]
    return "-"


def group_linestyles(groups: Iterable[str]) -> dict:
    """Group -> line style (:func:`study_linestyle`)."""
    return {group: study_linestyle(group) for group in groups}


def palette_table() -> pd.DataFrame:
    """The study palette as a table: ``key, family, colour, linestyle, synonym_of``.

    ``synonym_of`` names the :data:`SYNONYMS` group a key belongs to ("" if none).
    """
    synonym = {key: name for name, keys in SYNONYMS.items() for key in keys}
    return pd.DataFrame(
        [
            {
                "key": key,
                "family": family,
                "colour": colour,
                "linestyle": str(linestyle),
                "synonym_of": synonym.get(key, ""),
            }
            for key, (family, colour, linestyle) in PALETTE_TABLE.items()
        ]
    )


#: Machado, Oliveira & Fernandes (2009, IEEE TVCG 15:1291) deuteranomaly matrix at
#: severity 1.0 (deuteranopia), applied to linear RGB.
MACHADO_DEUTERANOPIA = np.array(
    [
        [0.367322, 0.860646, -0.227968],
        [0.280085, 0.672501, 0.047413],
        [-0.011820, 0.042940, 0.968881],
    ]
)


def simulate_deuteranopia(colour) -> np.ndarray:
    """How a colour looks to a deuteranope: sRGB in [0, 1] after Machado et al. (2009).

    The sRGB colour is linearised (IEC 61966-2-1), multiplied by
    :data:`MACHADO_DEUTERANOPIA` (severity 1), clipped to [0, 1] and
    re-encoded. Written here because no pinned dependency simulates colour
    vision deficiency (colorspacious / colour-science do, at the same matrix).

    Parameters
    ----------
    colour : str or tuple
        Any matplotlib colour.

    Returns
    -------
    numpy.ndarray
        sRGB triple in [0, 1].
    """
    from matplotlib.colors import to_rgb

    srgb = np.asarray(to_rgb(colour), float)
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    seen = np.clip(MACHADO_DEUTERANOPIA @ linear, 0.0, 1.0)
    return np.where(seen <= 0.0031308, 12.92 * seen, 1.055 * seen ** (1 / 2.4) - 0.055)


#: Smallest CIEDE2000 difference kept between two condition colours, with and
#: without simulated deuteranopia (10: clearly distinct side by side).
MIN_DELTA_E = 10.0


def colour_difference(a, b, deuteranopia: bool = False) -> float:
    """CIEDE2000 colour difference of two colours (CIELAB, D65; scikit-image).

    Parameters
    ----------
    a, b : str or tuple
        Matplotlib colours.
    deuteranopia : bool, default False
        Compare the colours as a deuteranope sees them (:func:`simulate_deuteranopia`).

    Returns
    -------
    float
        Delta E 2000 (0 = identical; about 2 = just noticeable).
    """
    from matplotlib.colors import to_rgb
    from skimage.color import deltaE_ciede2000, rgb2lab

    def lab(colour):
        rgb = simulate_deuteranopia(colour) if deuteranopia else np.asarray(to_rgb(colour))
        return rgb2lab(rgb.reshape(1, 1, 3))

    return float(deltaE_ciede2000(lab(a), lab(b))[0, 0])


#: Neutral colours for rules, reference lines and secondary text.
GREY = "#595959"
LIGHT_GREY = "#BFBFBF"

#: Text of the simulated-data stamp.
SIMULATED_TEXT = "SIMULATED DATA"


def mm(x: float) -> float:
    """Convert millimetres to inches (matplotlib's figure-size unit).

    Parameters
    ----------
    x : float
        Length in mm.

    Returns
    -------
    float
        Length in inches.
    """
    return float(x) / 25.4


@contextlib.contextmanager
def house_style(style_path: str | Path | None = None) -> Iterator[None]:
    """Context manager applying the house matplotlib style.

    Parameters
    ----------
    style_path : str or Path, optional
        Path of ``sepher.mplstyle``. The workflow passes the declared input
        file; ``None`` uses :data:`DEFAULT_STYLE` of this checkout.

    Yields
    ------
    None
        Figures created inside the block use the style.
    """
    path = Path(style_path) if style_path is not None else DEFAULT_STYLE
    if not path.is_file():
        raise FileNotFoundError(f"house style file not found: {path}")
    import matplotlib as mpl
    import matplotlib.pyplot as plt

    with mpl.rc_context(), plt.style.context(str(path)):
        yield


def manual_figure(width_mm: float, height_mm: float) -> plt.Figure:
    """A figure laid out by hand (no automatic layout), sized in mm.

    Matplotlib's constrained layout (on in the house style) is replaced by a
    do-nothing placeholder engine, which survives ``savefig`` (an engine of
    ``None`` would be restored as constrained layout from the rc settings).
    """
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(mm(width_mm), mm(height_mm)), layout="constrained")
    fig.set_layout_engine("none")
    return fig


def group_colours(groups: Iterable[str], colours: Mapping[str, str] | None = None) -> dict:
    """Colour for each group: explicit, else the study colour, else the palette.

    Study colours (:data:`PALETTE_TABLE`) cover the condition ids, patient
    groups, biopsy time points and lines of therapy; only other groups take
    the free colours of :data:`PALETTE`, in order.

    Parameters
    ----------
    groups : iterable of str
        Group keys or display labels, in display order.
    colours : mapping, optional
        Explicit colours that take precedence.

    Returns
    -------
    dict
        Group -> hex colour; no two groups share a colour unless the study
        colours say so (e.g. "T-R" and "pertuzumab-naive").
    """
    groups = list(groups)
    colours = dict(colours or {})
    out: dict = {}
    for group in groups:
        if group in colours:
            out[group] = colours[group]
        elif study_colour(group) is not None:
            out[group] = study_colour(group)
    free = [c for c in PALETTE if c not in out.values()]
    for group in groups:
        if group not in out:
            out[group] = free.pop(0) if free else PALETTE[len(out) % len(PALETTE)]
    return out


def format_ci(estimate: float, lower: float, upper: float, fmt: str = "{:.2f}") -> str:
    """Format an estimate with its confidence interval: ``"1.62 (1.23–2.13)"``.

    Non-finite limits print as ``NR`` (not reached).
    """

    def one(x):
        return fmt.format(x) if x is not None and np.isfinite(x) else "NR"

    return f"{one(estimate)} ({one(lower)}\u2013{one(upper)})"


def text_width_px(text: str, renderer, fontsize: float, fontweight="normal") -> float:
    """Rendered width of a (one-line) string, in display pixels of ``renderer``."""
    if not text:
        return 0.0
    from matplotlib.font_manager import FontProperties

    prop = FontProperties(size=fontsize, weight=fontweight)
    width, _, _ = renderer.get_text_width_height_descent(text, prop, ismath=False)
    return float(width)


def wrap_to_width(
    text: str,
    max_width_px: float,
    renderer,
    fontsize: float,
    fontweight="normal",
    keep_together: Iterable[str] = (),
) -> str:
    """Wrap text so that every line renders narrower than ``max_width_px``.

    Lines break at spaces; a single word still too wide breaks after one of
    its hyphens ("Pertuzumab-" / "pretreated"). A word is never cut inside.
    Existing line breaks are kept.

    Parameters
    ----------
    text : str
    max_width_px : float
        Width available, display pixels (as ``Text.get_window_extent``).
    renderer : matplotlib renderer
        ``fig.canvas.get_renderer()``.
    fontsize : float
        Font size, pt.
    fontweight : str, default "normal"
    keep_together : iterable of str, optional
        Phrases never broken across lines, e.g. ``"p = 0.034"``.

    Returns
    -------
    str
        The text with line breaks inserted. A line may stay wider than the
        limit only if it is one word (or kept phrase) without hyphens.
    """
    glue = "\x00"  # stands for a space inside a phrase kept together
    text = str(text)
    for phrase in keep_together:
        text = text.replace(phrase, phrase.replace(" ", glue))

    def width(s):
        return text_width_px(s.replace(glue, " "), renderer, fontsize, fontweight)

    out = []
    for paragraph in text.split("\n"):
        # tokens: (text, separator placed before it when it follows on the same line)
        tokens: list[tuple[str, str]] = []
        for word in paragraph.split(" "):
            if not word:
                continue
            if width(word) <= max_width_px or "-" not in word.strip("-"):
                tokens.append((word, " "))
                continue
            parts = re.findall(r"[^-]+-*|-+", word)
            tokens.append((parts[0], " "))
            tokens.extend((part, "") for part in parts[1:])
        line = ""
        for token, sep in tokens:
            candidate = f"{line}{sep}{token}" if line else token
            if line and width(candidate) > max_width_px:
                out.append(line)
                line = token
            else:
                line = candidate
        out.append(line)
    return "\n".join(out).replace(glue, " ")


#: Font size of the simulated-data stamp, pt; its box padding is a quarter of it.
STAMP_FONT_PT = 6.0
_STAMP_PAD = 0.25
_STAMP_EDGE_PT = 0.5


def stamp_box_pt() -> tuple[float, float]:
    """Height of the stamp box and its inset from the top-right corner, pt.

    Returns
    -------
    height, inset : float
        The box (text, padding and edge) is about ``height`` points tall; its
        outer edge sits ``inset`` points inside the top and right canvas edges.
    """
    pad = _STAMP_PAD * STAMP_FONT_PT
    return STAMP_FONT_PT * 1.2 + 2 * pad + _STAMP_EDGE_PT, 0.5


def stamp_simulated(fig: plt.Figure, text: str = SIMULATED_TEXT) -> plt.Text:
    """Stamp a figure as showing simulated data.

    A small boxed label in the top-right corner of the figure, in a muted red,
    its box wholly inside the canvas. When the figure uses constrained layout
    the top strip is reserved for the stamp; a figure suptitle, if any, shares
    that strip on the left and is wrapped (at spaces, by rendered width) so
    that it ends before the stamp, never under it.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    text : str, default "SIMULATED DATA"

    Returns
    -------
    matplotlib.text.Text
        The stamp artist (its ``gid`` is ``"simulated-stamp"``).
    """
    pad_pt = _STAMP_PAD * STAMP_FONT_PT
    _, inset = stamp_box_pt()
    # anchor the text so that the box (text + pad + edge) ends `inset` pt inside the corner
    shift = pad_pt + _STAMP_EDGE_PT + inset
    from matplotlib.transforms import offset_copy

    anchor = offset_copy(fig.transFigure, fig=fig, x=-shift, y=-shift, units="points")
    stamp = fig.text(
        1.0,
        1.0,
        text,
        transform=anchor,
        ha="right",
        va="top",
        fontsize=STAMP_FONT_PT,
        fontweight="bold",
        color=ALERT,
        alpha=0.9,
        bbox={
            "boxstyle": f"square,pad={_STAMP_PAD}",
            "facecolor": "white",
            "edgecolor": ALERT,
            "linewidth": _STAMP_EDGE_PT,
            "alpha": 0.9,
        },
        zorder=10,
        gid="simulated-stamp",
    )
    stamp.set_in_layout(False)
    engine = fig.get_layout_engine()
    suptitle = getattr(fig, "_suptitle", None)
    if suptitle is not None and suptitle.get_text():
        fit_suptitle(fig, reserve_right_px=stamp_width_px(fig, stamp))
    elif engine is not None and "rect" in getattr(engine, "get", dict)():
        height_in = fig.get_size_inches()[1]
        strip = (stamp_box_pt()[0] + 2.0) / 72.0 / height_in  # stamp box, figure fraction
        engine.set(rect=(0.0, 0.0, 1.0, 1.0 - strip))
    return stamp


def stamp_width_px(fig: plt.Figure, stamp: plt.Text) -> float:
    """Width of the stamp box plus its inset from the right edge, display pixels."""
    renderer = fig.canvas.get_renderer()
    text_w = text_width_px(stamp.get_text(), renderer, stamp.get_fontsize(), "bold")
    pad_pt = _STAMP_PAD * STAMP_FONT_PT
    extra_pt = 2 * pad_pt + 2 * _STAMP_EDGE_PT + stamp_box_pt()[1]
    return text_w + extra_pt * fig.dpi / 72.0


def fit_suptitle(fig: plt.Figure, reserve_right_px: float = 0.0, gap_pt: float = 4.0) -> int:
    """Wrap the figure's suptitle to the width left free on its line.

    The suptitle (one paragraph: line breaks already in it are re-flowed),
    left-, centre- or right-aligned at its x position, is wrapped at spaces
    so that it stays inside the canvas and ends ``gap_pt`` before a strip of
    ``reserve_right_px`` pixels kept free at the right edge (the
    simulated-data stamp).

    Returns
    -------
    int
        Number of lines of the suptitle (0 if the figure has none).
    """
    suptitle = getattr(fig, "_suptitle", None)
    if suptitle is None or not suptitle.get_text():
        return 0
    renderer = fig.canvas.get_renderer()
    fig_w = fig.get_size_inches()[0] * fig.dpi
    x = suptitle.get_position()[0] * fig_w
    right = fig_w - reserve_right_px - gap_pt * fig.dpi / 72.0
    ha = suptitle.get_horizontalalignment()
    if ha == "left":
        avail = right - x
    elif ha == "right":
        avail = min(x, right) - 2.0
    else:
        avail = 2.0 * max(min(x, right - x), 0.0)
    avail = max(avail, 0.25 * fig_w)
    text = " ".join(suptitle.get_text().split())
    wrapped = wrap_to_width(
        text, avail, renderer, suptitle.get_fontsize(), suptitle.get_fontweight()
    )
    suptitle.set_text(wrapped)
    return wrapped.count("\n") + 1


def is_stamped(fig: plt.Figure) -> bool:
    """True if :func:`stamp_simulated` was applied to ``fig``."""
    return any(t.get_gid() == "simulated-stamp" for t in fig.texts)


def save_figure(fig: plt.Figure, pdf_path, png_path, dpi: int = 300) -> None:
    """Write a figure as PDF and PNG, byte-identical across runs.

    Timestamps and software versions are left out of the metadata
    (PDF ``CreationDate``/``ModDate``, PNG ``Software``), so rerunning the
    workflow on the same inputs reproduces the same bytes.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    pdf_path, png_path : str or Path or None
        Output files; parent directories are created. ``None`` skips one.
    dpi : int, default 300
        Resolution of the PNG, dots per inch.
    """
    for path, fmt, metadata, kwargs in (
        (
            pdf_path,
            "pdf",
            {
                "CreationDate": None,
                "ModDate": None,
                "Producer": "sepher",
                "Creator": "sepher",
            },
            {},
        ),
        (png_path, "png", {"Software": None}, {"dpi": dpi}),
    ):
        if path is None:
            continue
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format=fmt, metadata=metadata, **kwargs)


# --- small helpers shared by the figure modules -------------------------------


def require_columns(df: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    """Raise ``ValueError`` naming the missing columns of a figure input."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{what} must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(
            f"{what} lacks column(s) {missing}; it has {list(df.columns)}. "
            "It is produced by sepher.survival in that format."
        )


def is_blank(value) -> bool:
    """True for None, NaN and empty / whitespace-only strings."""
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip() == ""
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def humanise(name: str) -> str:
    """``"hormone_receptor"`` -> ``"Hormone receptor"`` (display text of a column name)."""
    text = str(name).replace("_", " ").strip()
    return text[:1].upper() + text[1:] if text else text


def format_time(value: float) -> str:
    """A survival time for print: one decimal below 100, none above; NaN -> ``NR``."""
    if value is None or not np.isfinite(value):
        return "NR"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.1f}"
