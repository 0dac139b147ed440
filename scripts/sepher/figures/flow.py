"""Cohort flow diagram (fig5_cohort_flow), laid out from the tree in the data.

The tree comes from ``results/survival/flow.csv``: the root is every patient
treated with T-DM1, its children the line of T-DM1, and under second line the
pertuzumab-pretreated and pertuzumab-naive groups. Every count printed is the
``n`` of its row; nothing is typed in.
"""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from .style import (
    DOUBLE_COLUMN_MM,
    GREY,
    STUDY_COLOURS,
    is_blank,
    manual_figure,
    require_columns,
    stamp_simulated,
)

FLOW_COLUMNS = ("box_id", "parent_id", "label", "n")
FONT_PT = 6.5
_PT_MM = 25.4 / 72.0
LINE_MM = FONT_PT * 1.3 * _PT_MM  # line pitch
CHAR_MM = FONT_PT * 0.56 * _PT_MM  # mean DejaVu Sans character width
PAD_MM = 1.6
ROW_GAP_MM = 8.0
COL_GAP_MM = 4.0
MAX_BOX_MM = 62.0


def _tree(flow: pd.DataFrame):
    """Validate the flow table; return root id, children lists and rows by id."""
    ids = [str(b) for b in flow["box_id"]]
    if len(set(ids)) != len(ids):
        dup = sorted({b for b in ids if ids.count(b) > 1})
        raise ValueError(f"flow: box_id values are not unique: {dup}")
    rows = {str(r["box_id"]): r for _, r in flow.iterrows()}
    children: dict[str, list[str]] = {b: [] for b in ids}
    roots = []
    for b in ids:
        parent = rows[b]["parent_id"]
        if is_blank(parent):
            roots.append(b)
        elif str(parent) not in rows:
            raise ValueError(f"flow: box {b!r} has parent_id {parent!r}, which is not a box_id")
        else:
            children[str(parent)].append(b)
    if len(roots) != 1:
        raise ValueError(f"flow: expected exactly one root (empty parent_id), found {roots}")
    seen, stack = set(), [roots[0]]
    while stack:
        b = stack.pop()
        if b in seen:
            raise ValueError(f"flow: box {b!r} is reached twice (cycle)")
        seen.add(b)
        stack.extend(children[b])
    if seen != set(ids):
        raise ValueError(f"flow: boxes not connected to the root: {sorted(set(ids) - seen)}")
    return roots[0], children, rows


def _layout(root, children):
    """Leaf slots left to right, parents centred over their children; depth per box."""
    x, depth, next_leaf = {}, {}, [0]

    def visit(b, d):
        depth[b] = d
        if not children[b]:
            x[b] = float(next_leaf[0])
            next_leaf[0] += 1
            return
        for c in children[b]:
            visit(c, d + 1)
        x[b] = (x[children[b][0]] + x[children[b][-1]]) / 2.0

    visit(root, 0)
    return x, depth, next_leaf[0]


def plot_flow(
    flow: pd.DataFrame,
    simulated: bool = False,
    *,
    width_mm: float = DOUBLE_COLUMN_MM,
    box_colours: dict | None = None,
) -> plt.Figure:
    """CONSORT-like flow diagram of the cohort, drawn from a tree of boxes.

    Parameters
    ----------
    flow : DataFrame
        ``box_id, parent_id, label, n`` (optional ``kind``: ``excluded`` boxes are
        drawn dashed); exactly one row (the root, all
        T-DM1-treated patients) has an empty ``parent_id``. Children are
        drawn left to right in row order.
    simulated : bool, default False
        Stamp the figure "SIMULATED DATA".
    width_mm : float, default 183 (double column)
    box_colours : dict, optional
        ``box_id`` -> edge colour; default: study colours for boxes whose
        label names a study group (pertuzumab-pretreated / -naive), grey else.

    Returns
    -------
    matplotlib.figure.Figure
        Boxes are ``FancyBboxPatch`` artists with ``gid`` = ``box_id``; box
        texts read ``"<label>\\nn = <n>"``.
    """
    require_columns(flow, FLOW_COLUMNS, "flow")
    root, children, rows = _tree(flow)
    slot_x, depth, n_leaves = _layout(root, children)
    margin = 2.0
    slot_w = (width_mm - 2 * margin) / max(n_leaves, 1)

    def x_mm(b):
        return margin + (slot_x[b] + 0.5) * slot_w

    # box widths: as wide as the free space to the neighbours on the same row allows
    by_depth: dict[int, list[str]] = {}
    for b in sorted(slot_x, key=lambda b: slot_x[b]):
        by_depth.setdefault(depth[b], []).append(b)
    width = {}
    for boxes in by_depth.values():
        for i, b in enumerate(boxes):
            room = width_mm - 2 * margin
            left_n = x_mm(boxes[i - 1]) if i > 0 else margin - (x_mm(b) - margin)
            right_n = (
                x_mm(boxes[i + 1]) if i + 1 < len(boxes) else 2 * (width_mm - margin) - x_mm(b)
            )
            room = min(room, 2 * min(x_mm(b) - left_n, right_n - x_mm(b)) / 2 - COL_GAP_MM)
            room = min(room, 2 * min(x_mm(b) - margin, width_mm - margin - x_mm(b)))
            width[b] = min(MAX_BOX_MM, room)

    text, height = {}, {}
    for b, r in rows.items():
        chars = max(8, int((width[b] - 2 * PAD_MM) / CHAR_MM))
        lines = textwrap.wrap(str(r["label"]), chars) or [""]
        lines.append(f"n = {int(r['n'])}")
        text[b] = "\n".join(lines)
        height[b] = len(lines) * LINE_MM + 2 * PAD_MM
    # shrink boxes to their text (keeps narrow labels compact)
    for b in rows:
        longest = max(len(line) for line in text[b].split("\n"))
        width[b] = min(width[b], longest * CHAR_MM + 2 * PAD_MM + 2.0)

    n_depth = max(depth.values()) + 1
    row_h = [max(height[b] for b in by_depth[d]) for d in range(n_depth)]
    top = 2.0 + (4.0 if simulated else 0.0)
    y_top = []
    y = top
    for d in range(n_depth):
        y_top.append(y)
        y += row_h[d] + ROW_GAP_MM
    fig_h = y - ROW_GAP_MM + 2.0

    fig = manual_figure(width_mm, fig_h)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width_mm)
    ax.set_ylim(fig_h, 0)
    ax.set_axis_off()
    ax.set_gid("flow")

    edge = {b: (box_colours or {}).get(b, _study_edge(str(rows[b]["label"]))) for b in rows}

    def excluded(b):
        return str(rows[b].get("kind", "cohort")) == "excluded"

    for b in rows:
        cx, d = x_mm(b), depth[b]
        y0 = y_top[d] + (row_h[d] - height[b]) / 2.0
        ax.add_patch(
            FancyBboxPatch(
                (cx - width[b] / 2.0, y0),
                width[b],
                height[b],
                boxstyle="round,pad=0,rounding_size=0.8",
                facecolor="white",
                edgecolor=edge[b],
                linewidth=0.8,
                # exclusions (STROBE): dashed, so they never read as a cohort box
                linestyle=(0, (3, 2)) if excluded(b) else "solid",
                gid=b,
            )
        )
        ax.text(
            cx,
            y0 + height[b] / 2.0,
            text[b],
            ha="center",
            va="center",
            fontsize=FONT_PT,
            linespacing=1.3,
            gid=f"text-{b}",
        )
        kids = children[b]
        if not kids:
            continue
        bottom = y0 + height[b]
        bus_y = y_top[d] + row_h[d] + ROW_GAP_MM / 2.0
        xs = [x_mm(c) for c in kids]
        line_kw = {"color": GREY, "linewidth": 0.7, "solid_capstyle": "butt"}
        ax.plot([cx, cx], [bottom, bus_y], **line_kw)
        if len(kids) > 1:
            ax.plot([min(xs), max(xs)], [bus_y, bus_y], **line_kw)
        for c, xc in zip(kids, xs, strict=True):
            child_top = y_top[d + 1] + (row_h[d + 1] - height[c]) / 2.0
            ax.add_patch(
                FancyArrowPatch(
                    (xc, bus_y),
                    (xc, child_top),
                    arrowstyle="-|>,head_length=2.2,head_width=1.2",
                    mutation_scale=1.0,
                    color=GREY,
                    linewidth=0.7,
                    shrinkA=0,
                    shrinkB=0,
                )
            )
    if simulated:
        stamp_simulated(fig)
    return fig


def _study_edge(label: str) -> str:
    """Study colour for a box naming a pertuzumab group, grey otherwise."""
    lowered = label.strip().lower()
    for key in ("pertuzumab-pretreated", "pertuzumab-naive"):
        if lowered.startswith(key):
            return STUDY_COLOURS[key]
    return GREY
