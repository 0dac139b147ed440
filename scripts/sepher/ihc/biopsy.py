"""Per-biopsy HER2 scores (ASCO/CAP 2018, H-score) and paired pre/post changes.

ASCO/CAP 2018 (Wolff et al., J Clin Oncol 2018;36:2105), on invasive tumour
cells:

* **3+** (positive): complete, intense, circumferential membrane staining
  in > 10 % of tumour cells;
* **2+** (equivocal): weak-to-moderate complete membrane staining in
  > 10 % of tumour cells;
* **1+** (negative): incomplete, faint / barely perceptible membrane
  staining in > 10 % of tumour cells;
* **0** (negative): no staining, or staining in <= 10 % of tumour cells.

The rule is applied cumulatively on the per-cell classes
(:func:`~sepher.ihc.classify_cells`): 3+ when the 3+ cells exceed 10 %; else
2+ when the complete cells (2+ or 3+) exceed 10 %; else 1+ when the stained
cells (1+ or more) exceed 10 %; else 0. H-score = 1 x %1+ + 2 x %2+ +
3 x %3+ (0-300; McCarty et al. 1985).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sepher.errors import InputError

__all__ = [
    "ASCO_CAP_LABELS",
    "asco_cap_category",
    "paired_changes",
    "score_biopsies",
    "score_biopsy",
]

#: Printed ASCO/CAP categories by integer score.
ASCO_CAP_LABELS = ("0", "1+", "2+", "3+")


def asco_cap_category(
    pct_1plus_or_more: float, pct_2plus_or_more: float, pct_3plus: float, cutoff_pct: float = 10.0
) -> int:
    """ASCO/CAP 2018 IHC category (0-3) from cumulative class percentages.

    Parameters
    ----------
    pct_1plus_or_more, pct_2plus_or_more, pct_3plus : float
        Percent of tumour cells with class >= 1+, >= 2+ (complete), 3+.
    cutoff_pct : float, default 10.0
        The guideline's "> 10 % of tumour cells".

    Returns
    -------
    int
        0, 1, 2 or 3.
    """
    if pct_3plus > cutoff_pct:
        return 3
    if pct_2plus_or_more > cutoff_pct:
        return 2
    if pct_1plus_or_more > cutoff_pct:
        return 1
    return 0


def score_biopsy(cells: pd.DataFrame, cutoff_pct: float = 10.0) -> dict:
    """Scores of one biopsy from its cells (all tiles pooled).

    Parameters
    ----------
    cells : DataFrame
        Per-cell table with ``her2_class`` (0-3) and optionally ``tumour``
        (bool; only tumour cells are scored) and ``complete`` (bool; default
        ``her2_class >= 2``).
    cutoff_pct : float, default 10.0
        ASCO/CAP percentage cut-off.

    Returns
    -------
    dict
        ``n_cells`` (all detected), ``n_tumour_cells``, ``n_0`` .. ``n_3``,
        ``pct_0`` .. ``pct_3`` (percent of tumour cells), ``pct_complete``
        (complete membrane staining), ``h_score`` (0-300), ``asco_cap``
        (0-3) and ``asco_cap_label`` ("0", "1+", "2+", "3+"). Percentages
        and H-score are NaN without tumour cells (category 0).
    """
    if "her2_class" not in cells:
        raise ValueError("cells table needs a 'her2_class' column")
    tumour = cells["tumour"].to_numpy(bool) if "tumour" in cells else np.ones(len(cells), bool)
    classes = cells["her2_class"].to_numpy()[tumour].astype(int)
    if np.any((classes < 0) | (classes > 3)):
        raise ValueError("her2_class must be 0, 1, 2 or 3")
    if "complete" in cells:
        complete = cells["complete"].to_numpy(bool)[tumour]
    else:
        complete = classes >= 2
    n = int(tumour.sum())
    counts = np.bincount(classes, minlength=4)
    with np.errstate(invalid="ignore", divide="ignore"):
        pct = 100.0 * counts / n if n else np.full(4, np.nan)
        pct_complete = 100.0 * complete.sum() / n if n else np.nan
    h_score = float(pct[1] + 2 * pct[2] + 3 * pct[3])
    category = asco_cap_category(pct[1:].sum(), pct[2:].sum(), pct[3], cutoff_pct) if n else 0
    out = {"n_cells": int(len(cells)), "n_tumour_cells": n}
    out.update({f"n_{k}": int(counts[k]) for k in range(4)})
    out.update({f"pct_{k}": float(pct[k]) for k in range(4)})
    out.update(
        {
            "pct_complete": float(pct_complete),
            "h_score": h_score,
            "asco_cap": int(category),
            "asco_cap_label": ASCO_CAP_LABELS[category],
        }
    )
    return out


def score_biopsies(
    cells: pd.DataFrame, by=("patient_id", "timepoint"), cutoff_pct: float = 10.0
) -> pd.DataFrame:
    """:func:`score_biopsy` for every biopsy (group of ``by`` columns).

    Parameters
    ----------
    cells : DataFrame
        Per-cell table of all images with the ``by`` columns added (e.g. from
        the sample sheet).
    by : sequence of str, default ("patient_id", "timepoint")
        Columns identifying one biopsy; its tiles are pooled.

    Returns
    -------
    DataFrame
        One row per biopsy: the ``by`` columns, ``n_images`` (when an
        ``image_id`` column is present) and the :func:`score_biopsy` keys.
    """
    by = list(by)
    rows = []
    for key, group in cells.groupby(by, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(by, key, strict=True))
        if "image_id" in group:
            row["n_images"] = int(group["image_id"].nunique())
        row.update(score_biopsy(group, cutoff_pct))
        rows.append(row)
    return pd.DataFrame(rows)


def paired_changes(
    samples: pd.DataFrame,
    scores=("h_score", "pct_complete", "asco_cap"),
    pre: str = "pre",
    post: str = "post",
    file: str = "samples",
) -> pd.DataFrame:
    """Post minus pre change of each biopsy score, per patient.

    Parameters
    ----------
    samples : DataFrame
        One row per biopsy with ``patient_id``, ``timepoint`` and the
        ``scores`` columns (e.g. :func:`score_biopsies`).
    scores : sequence of str
        Columns to compare.
    pre, post : str, default "pre" and "post"
        Timepoint labels.
    file : str
        Name used in error messages.

    Returns
    -------
    DataFrame
        One row per patient (sorted): for each score ``<score>_pre``,
        ``<score>_post`` and ``<score>_change`` (post - pre; NaN when a
        timepoint is missing), plus ``asco_cap_pre_label`` /
        ``asco_cap_post_label`` when ``asco_cap`` is compared.

    Raises
    ------
    InputError
        A patient with two biopsies at the same timepoint, or an unknown
        timepoint.
    """
    scores = list(scores)
    missing = [c for c in ["patient_id", "timepoint", *scores] if c not in samples]
    if missing:
        raise InputError(file, f"columns {missing}", column=missing[0])
    bad = ~samples["timepoint"].isin([pre, post])
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(
            file,
            f"timepoint '{pre}' or '{post}'",
            row=row + 1,
            column="timepoint",
            value=samples["timepoint"].iloc[row],
        )
    dup = samples.duplicated(["patient_id", "timepoint"])
    if dup.any():
        row = int(np.flatnonzero(dup.to_numpy())[0])
        raise InputError(
            file,
            "one biopsy per patient and timepoint",
            row=row + 1,
            column="patient_id",
            value=samples["patient_id"].iloc[row],
            hint="Pool the tiles of a biopsy before comparing (score_biopsies).",
        )
    wide = samples.pivot(index="patient_id", columns="timepoint", values=scores)
    out = pd.DataFrame(index=wide.index.sort_values())
    for score in scores:
        before = wide[(score, pre)] if (score, pre) in wide else np.nan
        after = wide[(score, post)] if (score, post) in wide else np.nan
        out[f"{score}_pre"] = before
        out[f"{score}_post"] = after
        out[f"{score}_change"] = out[f"{score}_post"] - out[f"{score}_pre"]
    if "asco_cap" in scores:
        for when in ("pre", "post"):
            values = out[f"asco_cap_{when}"]
            out[f"asco_cap_{when}_label"] = [
                ASCO_CAP_LABELS[int(v)] if pd.notna(v) else "" for v in values
            ]
    return out.reset_index()
