"""Per-biopsy HER2 scores (ASCO/CAP 2018 and 2023, standard H-score) and paired changes.

All numbers are over the invasive tumour cells of a biopsy (its tiles
pooled), from the per-cell table of :func:`~sepher.ihc.score_image` and the
per-cell rules of :func:`sepher.ihc.rules.classify_cells`:

* ``pct_faint``, ``pct_weak_moderate``, ``pct_intense``: percent of cells at
  membrane intensity level 1, 2, 3 (``membrane_intensity_level``);
* ``h_score``: the standard H-score, 1 x %faint + 2 x %weak-to-moderate +
  3 x %intense (0-300; McCarty et al., Arch Pathol Lab Med 1985;109:716),
  membrane intensity only, not gated on completeness;
* ``pct_complete``: complete membrane staining (completeness >=
  ``complete_fraction`` at level >= 1), split into
  ``pct_complete_weak_moderate`` and ``pct_complete_intense``;
* ``pct_unusual_pattern``: moderate-to-intense but incomplete staining;
* ``pct_any_staining``: cells of ASCO/CAP class >= 1 (any membrane
  staining over more than ``max_fraction_for_0`` of the circumference);
* ``pct_0`` .. ``pct_3`` (and counts ``n_0`` .. ``n_3``): the per-cell
  ASCO/CAP classes.

ASCO/CAP 2018 category (Wolff et al., J Clin Oncol 2018;36:2105;
:func:`sepher.ihc.rules.asco_cap_2018`), the first rule that holds:

* **3+** (positive): complete, intense membrane staining in > 10 %;
* **2+** (equivocal): complete weak-to-moderate (or stronger) staining in
  > 10 %; or complete intense staining present (>=
  ``intense_minority_min_pct``, 1 %) but in <= 10 %; or the unusual pattern
  (moderate-to-intense incomplete) in > 10 %;
* **1+** (negative): incomplete, faint / barely perceptible staining in
  > 10 %;
* **0** (negative): no staining, or such staining in <= 10 %.

``asco_cap_rule`` names the rule that decided. 2023 reporting (Wolff et
al., Arch Pathol Lab Med 2023;147:993; :func:`sepher.ihc.rules.her2_2023`):
3+ HER2-positive; 2+ HER2-equivocal (reflex ISH, ``reflex_ish`` True); 1+
HER2-low; 0 with faint / incomplete staining in >= ``ultralow_min_pct``
(1 %) and <= 10 % of cells HER2-ultralow (DESTINY-Breast06), else
HER2-null.

Older cells tables without ``membrane_intensity_level`` are scored with the
per-cell class standing in for the intensity level (their H-score is then
1 x %1+ + 2 x %2+ + 3 x %3+ as before).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sepher.errors import InputError
from sepher.ihc.rules import (
    ASCO_CAP_LABELS,
    asco_cap_2018,
    her2_2023,
    standard_h_score,
)

__all__ = [
    "ASCO_CAP_LABELS",
    "asco_cap_category",
    "paired_changes",
    "score_biopsies",
    "score_biopsy",
]


def asco_cap_category(
    pct_1plus_or_more: float, pct_2plus_or_more: float, pct_3plus: float, cutoff_pct: float = 10.0
) -> int:
    """ASCO/CAP 2018 main-rule category (0-3) from cumulative class percentages.

    The three main rules only (no intense minority, no unusual pattern; see
    :func:`sepher.ihc.rules.asco_cap_2018` for the full rule set that
    :func:`score_biopsy` applies).

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


def _percent(mask: np.ndarray, n: int) -> float:
    return float(100.0 * np.count_nonzero(mask) / n) if n else float("nan")


def score_biopsy(
    cells: pd.DataFrame,
    cutoff_pct: float = 10.0,
    *,
    intense_minority_min_pct: float = 1.0,
    ultralow_min_pct: float = 1.0,
) -> dict:
    """Scores of one biopsy from its cells (all tiles pooled).

    Parameters
    ----------
    cells : DataFrame
        Per-cell table with ``her2_class`` (0-3) and optionally ``tumour``
        (bool; only tumour cells are scored), ``membrane_intensity_level``
        (0-3; default, and for NaN rows, ``her2_class``), ``complete``
        (bool; default ``her2_class >= 2``) and ``unusual_pattern`` (bool;
        default class 1 at level >= 2).
    cutoff_pct : float, default 10.0
        ASCO/CAP percentage cut-off.
    intense_minority_min_pct : float, default 1.0
        Least percent of complete intense cells that makes a biopsy 2+
        below the cut-off (:func:`sepher.ihc.rules.asco_cap_2018`).
    ultralow_min_pct : float, default 1.0
        Least percent of stained cells that makes an IHC 0 biopsy
        HER2-ultralow (:func:`sepher.ihc.rules.her2_2023`).

    Returns
    -------
    dict
        ``n_cells`` (all detected), ``n_tumour_cells``, ``n_0`` .. ``n_3``,
        ``pct_0`` .. ``pct_3`` (per-cell classes, percent of tumour cells),
        ``pct_complete``, ``h_score`` (standard, 0-300), ``asco_cap`` (0-3),
        ``asco_cap_label`` ("0", "1+", "2+", "3+"), ``pct_faint``,
        ``pct_weak_moderate``, ``pct_intense``, ``pct_complete_intense``,
        ``pct_complete_weak_moderate``, ``pct_unusual_pattern``,
        ``pct_any_staining``, ``asco_cap_rule``, ``her2_2023`` and
        ``reflex_ish`` (2+). Percentages and H-score are NaN without tumour
        cells (category 0, HER2-null).
    """
    if "her2_class" not in cells:
        raise ValueError("cells table needs a 'her2_class' column")
    tumour = cells["tumour"].to_numpy(bool) if "tumour" in cells else np.ones(len(cells), bool)
    classes = cells["her2_class"].to_numpy()[tumour].astype(int)
    if np.any((classes < 0) | (classes > 3)):
        raise ValueError("her2_class must be 0, 1, 2 or 3")
    if "membrane_intensity_level" in cells:
        levels = cells["membrane_intensity_level"].to_numpy(np.float64)[tumour]
        levels = np.where(np.isnan(levels), classes, levels).astype(int)
        if np.any((levels < 0) | (levels > 3)):
            raise ValueError("membrane_intensity_level must be 0, 1, 2 or 3")
    else:
        levels = classes
    if "complete" in cells:
        complete = cells["complete"].to_numpy(bool)[tumour]
    else:
        complete = classes >= 2
    if "unusual_pattern" in cells:
        unusual = cells["unusual_pattern"].to_numpy(bool)[tumour]
    else:
        unusual = (classes == 1) & (levels >= 2)
    n = int(tumour.sum())
    counts = np.bincount(classes, minlength=4)
    pct = {
        "pct_faint": _percent(levels == 1, n),
        "pct_weak_moderate": _percent(levels == 2, n),
        "pct_intense": _percent(levels == 3, n),
        "pct_complete_intense": _percent(complete & (levels == 3), n),
        "pct_complete_weak_moderate": _percent(complete & (levels == 2), n),
        "pct_unusual_pattern": _percent(unusual, n),
        "pct_any_staining": _percent(classes >= 1, n),
    }
    category, rule = asco_cap_2018(pct, cutoff_pct, intense_minority_min_pct)
    out = {"n_cells": int(len(cells)), "n_tumour_cells": n}
    out.update({f"n_{k}": int(counts[k]) for k in range(4)})
    out.update({f"pct_{k}": _percent(classes == k, n) for k in range(4)})
    out.update(
        {
            "pct_complete": _percent(complete, n),
            "h_score": standard_h_score(levels),
            "asco_cap": int(category),
            "asco_cap_label": ASCO_CAP_LABELS[category],
            **pct,
            "asco_cap_rule": rule,
            "her2_2023": her2_2023(category, pct["pct_any_staining"], ultralow_min_pct),
            "reflex_ish": category == 2,
        }
    )
    return out


def score_biopsies(
    cells: pd.DataFrame,
    by=("patient_id", "timepoint"),
    cutoff_pct: float = 10.0,
    *,
    intense_minority_min_pct: float = 1.0,
    ultralow_min_pct: float = 1.0,
) -> pd.DataFrame:
    """:func:`score_biopsy` for every biopsy (group of ``by`` columns).

    Parameters
    ----------
    cells : DataFrame
        Per-cell table of all images with the ``by`` columns added (e.g. from
        the sample sheet).
    by : sequence of str, default ("patient_id", "timepoint")
        Columns identifying one biopsy; its tiles are pooled.
    cutoff_pct, intense_minority_min_pct, ultralow_min_pct : float
        :func:`score_biopsy` settings.

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
        row.update(
            score_biopsy(
                group,
                cutoff_pct,
                intense_minority_min_pct=intense_minority_min_pct,
                ultralow_min_pct=ultralow_min_pct,
            )
        )
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
