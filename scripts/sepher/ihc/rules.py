"""ASCO/CAP 2018 HER2 IHC rules, the 2023 HER2-low / ultralow reporting and the H-score.

Per cell (:func:`classify_cells`), from the membrane's DAB excess over the
cell's own interior (``membrane_dab_excess_od``) and the stained fraction of
its circumference (``membrane_completeness``):

* **intensity level** (:func:`intensity_levels`, ``INTENSITY_LABELS``):
  excess < ``weak`` -> 0 none; < ``moderate`` -> 1 faint / barely
  perceptible; < ``strong`` -> 2 weak-to-moderate; else 3 intense;
* **complete**: completeness >= ``complete_fraction`` (0.8) and level >= 1;
* **class 0**: no staining (level 0) or staining over at most
  ``max_fraction_for_0`` (10 %) of the circumference;
* **class 3+**: complete and intense; **2+**: complete and
  weak-to-moderate; **1+**: any other stained cell (faint, whether complete
  or not, or incomplete at any intensity);
* **unusual pattern**: moderate-to-intense (level >= 2) but incomplete
  staining (basolateral / lateral, U-shaped), over more than
  ``max_fraction_for_0`` of the circumference; such a cell is a 1+ cell.

Per biopsy (:func:`asco_cap_2018`; Wolff et al., J Clin Oncol
2018;36:2105, Fig 1 and its note), on the percentages of invasive tumour
cells, in this order:

* **3+** (positive): complete, intense circumferential membrane staining in
  > 10 %;
* **2+** (equivocal, reflex ISH): weak-to-moderate complete staining in
  > 10 % (complete cells of level >= 2, the intense ones counted too since
  they alone are <= 10 % here); or intense complete staining present but in
  <= 10 % (the note's "heterogeneous but very limited in extent"; "present"
  is read as >= ``intense_minority_min_pct``, 1 %, of the cells: among the
  thousands of cells image analysis counts one stray cell is not staining);
  or an unusual pattern (moderate-to-intense but incomplete) in > 10 % (the
  note: "should be considered IHC 2+ equivocal");
* **1+** (negative): incomplete and faint / barely perceptible staining in
  > 10 % (cells of class >= 1);
* **0** (negative): no staining, or such staining in <= 10 %.

2023 reporting (:func:`her2_2023`; Wolff et al., Arch Pathol Lab Med
2023;147:993; HER2-low from DESTINY-Breast04, Modi et al., N Engl J Med
2022;387:9; HER2-ultralow from DESTINY-Breast06, Bardia et al., N Engl J Med
2024;391:2110): 3+
HER2-positive; 2+ HER2-equivocal (reflex ISH); 1+ HER2-low; 0 with faint /
incomplete membrane staining in > 0 and <= 10 % of the cells (read as >=
``ultralow_min_pct``, 1 %) HER2-ultralow; 0 without it HER2-null.

Standard H-score (:func:`standard_h_score`; McCarty et al., Arch Pathol
Lab Med 1985;109:716): 1 x %faint + 2 x %weak-to-moderate + 3 x %intense
(0-300), from the membrane intensity level alone, not gated on
completeness (completeness is reported separately as ``pct_complete``).

These are counting rules that no library implements; they are written here
in full so that each rule is unit-tested case by case.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

__all__ = [
    "ASCO_CAP_LABELS",
    "DEFAULT_MODERATE",
    "DEFAULT_STRONG",
    "DEFAULT_WEAK",
    "HER2_2023_LABELS",
    "INTENSITY_LABELS",
    "asco_cap_2018",
    "classify_cells",
    "reclassify",
    "her2_2023",
    "intensity_levels",
    "standard_h_score",
]

#: Printed ASCO/CAP 2018 categories by integer score.
ASCO_CAP_LABELS = ("0", "1+", "2+", "3+")

#: Per-cell membrane intensity levels (index = level).
INTENSITY_LABELS = ("none", "faint", "weak-to-moderate", "intense")

#: 2023 reporting categories (ASCO/CAP 2023 update; DESTINY-Breast04/06), in order.
HER2_2023_LABELS = (
    "HER2-null",
    "HER2-ultralow",
    "HER2-low",
    "HER2-equivocal (reflex ISH)",
    "HER2-positive",
)

#: Default thresholds (OD) on the membrane DAB excess over the cell interior:
#: faint from ``DEFAULT_WEAK``, weak-to-moderate from ``DEFAULT_MODERATE``,
#: intense from ``DEFAULT_STRONG``. The only place they are named.
DEFAULT_WEAK = 0.10
DEFAULT_MODERATE = 0.20
DEFAULT_STRONG = 0.35

#: Rule texts of :func:`asco_cap_2018` (the ``asco_cap_rule`` column).
RULE_3 = "3+: complete intense membrane staining in > {cutoff:g} % of tumour cells"
RULE_2_COMPLETE = (
    "2+: complete weak-to-moderate membrane staining in > {cutoff:g} % of tumour cells"
)
RULE_2_INTENSE_MINORITY = (
    "2+: complete intense membrane staining present (>= {minimum:g} %) "
    "but in <= {cutoff:g} % of tumour cells"
)
RULE_2_UNUSUAL = (
    "2+: unusual pattern, moderate-to-intense incomplete membrane staining "
    "in > {cutoff:g} % of tumour cells"
)
RULE_1 = "1+: faint or incomplete membrane staining in > {cutoff:g} % of tumour cells"
RULE_0 = (
    "0: no membrane staining, or faint or incomplete staining in <= {cutoff:g} % of tumour cells"
)
RULE_0_EMPTY = "0: no tumour cells scored"

#: Percentages :func:`asco_cap_2018` reads.
ASCO_CAP_INPUTS = (
    "pct_complete_intense",
    "pct_complete_weak_moderate",
    "pct_unusual_pattern",
    "pct_any_staining",
)


def _check_thresholds(weak: float, moderate: float, strong: float) -> None:
    if not weak <= moderate <= strong:
        raise ValueError(
            f"thresholds must satisfy weak <= moderate <= strong, got {weak}, {moderate}, {strong}"
        )


def intensity_levels(
    excess_od,
    *,
    weak: float = DEFAULT_WEAK,
    moderate: float = DEFAULT_MODERATE,
    strong: float = DEFAULT_STRONG,
) -> np.ndarray:
    """Membrane intensity level 0-3 of each cell (``INTENSITY_LABELS``).

    Parameters
    ----------
    excess_od : array_like of float
        Membrane-band mean DAB OD minus the cell's interior reference
        (``membrane_dab_excess_od``). NaN (no band measured) is level 0.
    weak, moderate, strong : float
        OD thresholds: excess < ``weak`` -> 0 (none), < ``moderate`` -> 1
        (faint), < ``strong`` -> 2 (weak-to-moderate), else 3 (intense).

    Returns
    -------
    ndarray of int8
        Levels, same shape as ``excess_od``.
    """
    _check_thresholds(weak, moderate, strong)
    excess = np.asarray(excess_od, dtype=np.float64)
    levels = np.searchsorted(np.array([weak, moderate, strong]), excess, side="right")
    levels = np.where(np.isnan(excess), 0, levels)
    return levels.astype(np.int8)


def classify_cells(
    membrane_dab_excess_od,
    membrane_completeness,
    *,
    weak: float = DEFAULT_WEAK,
    moderate: float = DEFAULT_MODERATE,
    strong: float = DEFAULT_STRONG,
    complete_fraction: float = 0.8,
    max_fraction_for_0: float = 0.10,
) -> pd.DataFrame:
    """Per-cell intensity level, completeness, ASCO/CAP class and unusual pattern.

    Parameters
    ----------
    membrane_dab_excess_od : array_like of float
        Membrane DAB excess over the cell interior (OD; NaN -> level 0).
    membrane_completeness : array_like of float
        Stained fraction (0-1) of the membrane's circumference (NaN -> 0).
    weak, moderate, strong : float
        Intensity thresholds (:func:`intensity_levels`).
    complete_fraction : float, default 0.8
        Completeness from which a stained membrane is complete.
    max_fraction_for_0 : float, default 0.10
        Completeness up to which a cell counts as unstained (class 0).

    Returns
    -------
    DataFrame
        One row per cell (default index), columns
        ``membrane_intensity_level`` (int8 0-3), ``complete`` (bool:
        completeness >= ``complete_fraction`` and level >= 1), ``her2_class``
        (int8: 0 when level 0 or completeness <= ``max_fraction_for_0``;
        3 complete intense; 2 complete weak-to-moderate; else 1) and
        ``unusual_pattern`` (bool: level >= 2, not complete, completeness >
        ``max_fraction_for_0``; such cells are class 1).
    """
    levels = intensity_levels(membrane_dab_excess_od, weak=weak, moderate=moderate, strong=strong)
    completeness = np.nan_to_num(np.asarray(membrane_completeness, dtype=np.float64), nan=0.0)
    if completeness.shape != levels.shape:
        raise ValueError(
            f"membrane_completeness has shape {completeness.shape}, "
            f"membrane_dab_excess_od {levels.shape}"
        )
    complete = (completeness >= complete_fraction) & (levels >= 1)
    unstained = (levels == 0) | (completeness <= max_fraction_for_0)
    her2_class = np.select(
        [unstained, complete & (levels == 3), complete & (levels == 2)], [0, 3, 2], default=1
    ).astype(np.int8)
    unusual = ~unstained & ~complete & (levels >= 2)
    return pd.DataFrame(
        {
            "membrane_intensity_level": levels,
            "complete": complete,
            "her2_class": her2_class,
            "unusual_pattern": unusual,
        }
    )


def asco_cap_2018(
    pct: Mapping, cutoff_pct: float = 10.0, intense_minority_min_pct: float = 1.0
) -> tuple[int, str]:
    """ASCO/CAP 2018 IHC category of a biopsy and the rule that decided it.

    The rules are tried in order (Wolff et al., J Clin Oncol 2018;36:2105,
    Fig 1 and its note on unusual patterns):

    1. 3+ when complete intense staining exceeds ``cutoff_pct``;
    2. 2+ when complete staining of level >= 2 (weak-to-moderate, plus the
       intense cells, which alone are <= ``cutoff_pct`` here) exceeds
       ``cutoff_pct``;
    3. 2+ when complete intense staining is present but <= ``cutoff_pct``.
       "Present" is operationalised as >= ``intense_minority_min_pct``
       (and > 0): image analysis counts thousands of cells, and one stray
       intense cell among them (a segmentation or edge artefact as often as
       not) is not the guideline's heterogeneous intense staining. 0 makes
       any single intense complete cell count;
    4. 2+ when the unusual pattern (moderate-to-intense but incomplete,
       e.g. basolateral or U-shaped) exceeds ``cutoff_pct``;
    5. 1+ when faint or incomplete staining (cells of class >= 1) exceeds
       ``cutoff_pct``;
    6. else 0.

    Parameters
    ----------
    pct : mapping
        Percent of tumour cells: ``pct_complete_intense``,
        ``pct_complete_weak_moderate``, ``pct_unusual_pattern`` and
        ``pct_any_staining`` (class >= 1), e.g. a :func:`score_biopsy`
        result. All NaN (no tumour cells) gives category 0.
    cutoff_pct : float, default 10.0
        The guideline's "> 10 % of tumour cells".
    intense_minority_min_pct : float, default 1.0
        Least percent of complete intense cells that counts as present.

    Returns
    -------
    category : int
        0, 1, 2 or 3.
    rule : str
        Short text of the deciding rule.
    """
    missing = [key for key in ASCO_CAP_INPUTS if key not in pct]
    if missing:
        raise KeyError(f"asco_cap_2018 needs the percentages {missing}")
    intense, weak_moderate, unusual, stained = (float(pct[key]) for key in ASCO_CAP_INPUTS)
    if all(np.isnan(v) for v in (intense, weak_moderate, unusual, stained)):
        return 0, RULE_0_EMPTY
    if intense > cutoff_pct:
        return 3, RULE_3.format(cutoff=cutoff_pct)
    if weak_moderate + intense > cutoff_pct:
        return 2, RULE_2_COMPLETE.format(cutoff=cutoff_pct)
    if intense > 0 and intense >= intense_minority_min_pct:
        return 2, RULE_2_INTENSE_MINORITY.format(
            minimum=intense_minority_min_pct, cutoff=cutoff_pct
        )
    if unusual > cutoff_pct:
        return 2, RULE_2_UNUSUAL.format(cutoff=cutoff_pct)
    if stained > cutoff_pct:
        return 1, RULE_1.format(cutoff=cutoff_pct)
    return 0, RULE_0.format(cutoff=cutoff_pct)


def her2_2023(asco_cap: int, pct_any_staining: float, ultralow_min_pct: float = 1.0) -> str:
    """2023 reporting category (``HER2_2023_LABELS``) of a biopsy.

    ASCO/CAP 2023 update (Wolff et al., Arch Pathol Lab Med 2023;147:993):
    IHC 3+ HER2-positive; 2+ HER2-equivocal, reflex ISH; 1+ HER2-low (and
    2+ ISH-negative, which needs the ISH result); IHC 0 split as in
    DESTINY-Breast06 (Bardia et al., N Engl J Med 2024;391:2110) into HER2-ultralow (faint /
    incomplete membrane staining in > 0 and <= 10 % of tumour cells) and
    HER2-null (no membrane staining).

    Parameters
    ----------
    asco_cap : int
        ASCO/CAP 2018 category 0-3 (:func:`asco_cap_2018`).
    pct_any_staining : float
        Percent of tumour cells with any membrane staining (class >= 1).
        An IHC 0 biopsy has at most the cut-off (10 %) by definition. NaN
        (no tumour cells) gives HER2-null.
    ultralow_min_pct : float, default 1.0
        Least percent that counts as "> 0": one stray faint cell among
        thousands is read as no staining. 0 makes any stained cell count.

    Returns
    -------
    str
        One of ``HER2_2023_LABELS``.
    """
    category = int(asco_cap)
    if category not in (0, 1, 2, 3):
        raise ValueError(f"asco_cap must be 0, 1, 2 or 3, got {asco_cap!r}")
    if category == 3:
        return "HER2-positive"
    if category == 2:
        return "HER2-equivocal (reflex ISH)"
    if category == 1:
        return "HER2-low"
    stained = float(pct_any_staining)
    if stained > 0 and stained >= ultralow_min_pct:
        return "HER2-ultralow"
    return "HER2-null"


def standard_h_score(levels) -> float:
    """Standard H-score (0-300) from per-cell membrane intensity levels.

    H-score = 1 x %faint + 2 x %weak-to-moderate + 3 x %intense over the
    cells given (McCarty et al., Arch Pathol Lab Med 1985;109:716), intensity alone:
    completeness does not enter.

    Parameters
    ----------
    levels : array_like of int
        Levels 0-3 (:func:`intensity_levels`) of the tumour cells.

    Returns
    -------
    float
        The H-score; NaN without cells.
    """
    levels = np.asarray(levels).ravel()
    if levels.size == 0:
        return float("nan")
    if not np.all(np.isin(levels, (0, 1, 2, 3))):
        raise ValueError("intensity levels must be 0, 1, 2 or 3")
    counts = np.bincount(levels.astype(np.int64), minlength=4)
    return float(100.0 * (counts[1] + 2 * counts[2] + 3 * counts[3]) / levels.size)


def reclassify(
    cells: pd.DataFrame,
    thresholds,
    *,
    complete_fraction: float = 0.8,
    max_fraction_for_0: float = 0.10,
) -> pd.DataFrame:
    """A per-cell table re-classified with other intensity thresholds.

    The columns of :func:`classify_cells` are replaced from the table's own
    ``membrane_dab_excess_od`` and ``membrane_completeness`` (the latter as
    measured: it is not re-measured at the new ``weak``).

    Parameters
    ----------
    cells : DataFrame
        Per-cell table with those two columns.
    thresholds : mapping
        ``weak``, ``moderate`` and ``strong`` (e.g. calibrated).
    complete_fraction, max_fraction_for_0 : float
        See :func:`classify_cells`.

    Returns
    -------
    DataFrame
        A copy of ``cells`` with the new classes.
    """
    classes = classify_cells(
        cells["membrane_dab_excess_od"],
        cells["membrane_completeness"],
        weak=thresholds["weak"],
        moderate=thresholds["moderate"],
        strong=thresholds["strong"],
        complete_fraction=complete_fraction,
        max_fraction_for_0=max_fraction_for_0,
    )
    return cells.assign(**{c: classes[c].to_numpy() for c in classes.columns})
