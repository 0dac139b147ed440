"""Calibration of the membrane intensity thresholds from reference-scored images.

Some IHC images carry a reference score (0 / 1+ / 2+ / 3+: a pathologist's
score of the image, or the known score of a control cell-line tile).
:func:`calibrate_thresholds` fits the three intensity thresholds ``weak`` <
``moderate`` < ``strong`` (OD, on ``membrane_dab_excess_od``) so that the
image categories of the ASCO/CAP 2018 rules
(:func:`sepher.ihc.rules.classify_cells` per cell, then
:func:`sepher.ihc.biopsy.score_biopsy` per image) agree best with the
reference scores. The per-sector completeness was measured at the
configured ``weak`` and is taken as given.

Method, and why
---------------
* **Direct search on the rules, not a surrogate model.** The categories are
  counting rules on cells ("> 10 % of tumour cells with complete intense
  staining"), so an image's category is a step function of the thresholds.
  An ordinal model (e.g. proportional odds on an image summary) would fit
  cut-points on a summary that the rules never use and would then have to
  be translated back into per-cell thresholds. Searching the thresholds
  themselves optimises exactly what the stage later applies.
* **Objective: linearly weighted Cohen's kappa** (Cicchetti-Allison
  weights, 1 - |i - j| / 3), the agreement measure of the published HER2
  image-analysis validations (Ariol 0.835; Visiopharm 0.86-0.87), since 0 /
  1+ / 2+ / 3+ are ordered and a 0 read as 3+ is worse than a 0 read as 1+.
  The objective is flat over a set of threshold triples (between the
  values at which some reference image changes category): the thresholds
  are only set-identified. Within the optimal set each threshold is put as
  centrally as possible, up to ``margin`` (0.02 OD) from the nearest value
  at which a reference image would change category (a maximum-margin
  choice: a new image near a boundary is as likely on either side); among
  those, the triple closest to the literature defaults is taken, so that a
  threshold the references do not pin down (e.g. ``strong`` without any 3+
  reference) stays at its literature value rather than at an arbitrary
  edge. The grid order breaks any remaining tie.
* **Exhaustive grid** of all ``weak < moderate < strong`` on a grid of
  ``grid_step`` (0.005 OD, about the OD resolution of 8-bit JPEG at
  mid-grey) up to the 99.9th percentile of the cells' excess (at least 1.2x
  the largest default; at most ``max_grid`` values, the step growing if
  needed). Coordinate search could stop at a local optimum of a step
  function; the full grid does not and is cheap: the rules separate, the
  3+ test depends on ``strong`` only, the 2+ tests on ``moderate`` and
  ``strong``, the 1+ test on ``weak`` only, so for each ``strong`` the
  confusion counts of every (``weak``, ``moderate``) pair are one matrix
  product (:func:`_search`). Per image the excess of the tumour cells is
  sorted once per completeness group (:class:`SortedExcess`), and the
  percent of cells above any threshold is a ``searchsorted``.
* **Uncertainty: bootstrap over images**, stratified by reference category
  (every resample keeps every category, so kappa stays defined), ``n_boot``
  resamples (200), seeded. Because a threshold is identified only up to
  its optimal interval (the values that keep the optimum with the other
  two thresholds fixed), the 95 % interval reported is the percentile
  interval of that set: from the 2.5th percentile of the resamples' lower
  interval ends to the 97.5th percentile of their upper ends (observed
  order statistics). A percentile interval of the point estimates alone
  would be narrower than the data support (the choice within a flat
  optimum is a convention, and the bootstrap of an argmax is only
  approximately valid: Abrevaya & Huang, Econometrica 2005;73:1175; for
  confidence sets of identified sets see Chernozhukov, Hong & Tamer,
  Econometrica 2007;75:1243). An interval open at the top (no reference
  image bounds the threshold from above) has an infinite upper end; one
  open at the bottom starts at 0.
* **Honest agreement: cross-validation over images.** Leave-one-out with
  <= 30 reference images, else stratified 5-fold (seeded); each held-out
  image is categorised by the rules themselves (``categorise``, by default
  :func:`rules_category`) at the thresholds fitted without it. Reported:
  exact agreement, linearly weighted kappa and the 4 x 4 confusion matrix.
  The in-sample agreement at the final thresholds is kept in ``cv_table``
  (``fitted``) but is optimistic by construction.

Linearly weighted kappa is written here (:func:`linear_weighted_kappa`) since
the search needs it vectorised over millions of threshold triples;
statsmodels' ``cohens_kappa(table, wt="linear")`` gives the same values and
is the reference of the tests. scikit-learn is not a dependency.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sepher.errors import InputError
from sepher.ihc.biopsy import score_biopsy
from sepher.ihc.rules import (
    ASCO_CAP_LABELS,
    DEFAULT_MODERATE,
    DEFAULT_STRONG,
    DEFAULT_WEAK,
    classify_cells,
)

__all__ = [
    "CALIBRATION_COLUMNS",
    "CalibrationResult",
    "SortedExcess",
    "THRESHOLD_NAMES",
    "calibrate_thresholds",
    "calibration_table",
    "confusion_matrix",
    "linear_weighted_kappa",
    "result_from_table",
    "rules_category",
    "threshold_grid",
]

#: The fitted thresholds, in order.
THRESHOLD_NAMES = ("weak", "moderate", "strong")
#: Literature defaults (:mod:`sepher.ihc.rules`).
DEFAULTS = {"weak": DEFAULT_WEAK, "moderate": DEFAULT_MODERATE, "strong": DEFAULT_STRONG}
#: Columns of the per-cell table that the calibration reads (``tumour`` optional).
CELL_INPUTS = ("image_id", "membrane_dab_excess_od", "membrane_completeness")
#: Columns of ``ihc_calibration.csv`` (:func:`calibration_table`).
CALIBRATION_COLUMNS = ("kind", "name", "value", "ci_low", "ci_high", "reference", "predicted")
#: Least reference images and reference categories to calibrate on.
MIN_REFERENCE_IMAGES = 4
MIN_REFERENCE_CATEGORIES = 2
#: Leave-one-out up to this many reference images, else stratified k-fold.
LOO_MAX_IMAGES = 30
N_FOLDS = 5
#: Default threshold grid step (OD) and largest number of grid values.
GRID_STEP = 0.005
MAX_GRID = 200
#: Margin (OD) sought between a fitted threshold and the edge of the optimal set.
MARGIN_OD = 0.02

_N_CAT = len(ASCO_CAP_LABELS)
#: Linear disagreement weights |i - j| / 3 (kappa is invariant to their scale).
_DISAGREE = np.abs(np.subtract.outer(np.arange(_N_CAT), np.arange(_N_CAT))) / (_N_CAT - 1)
#: Decimals to which kappa and exact agreement are compared in the search.
_TIE_DECIMALS = 12


# --------------------------------------------------------------------------- agreement
def _confusion_counts(reference, predicted) -> np.ndarray:
    ref = np.asarray(reference, dtype=np.int64).ravel()
    pred = np.asarray(predicted, dtype=np.int64).ravel()
    if ref.shape != pred.shape:
        raise ValueError(f"reference has {ref.size} scores, predicted {pred.size}")
    for name, values in (("reference", ref), ("predicted", pred)):
        if values.size and (values.min() < 0 or values.max() >= _N_CAT):
            raise ValueError(f"{name} scores must be 0, 1, 2 or 3")
    return np.bincount(ref * _N_CAT + pred, minlength=_N_CAT**2).reshape(_N_CAT, _N_CAT)


def kappa_from_confusion(table) -> float:
    """Linearly weighted Cohen's kappa of a square confusion table.

    kappa = 1 - sum(w * O) / sum(w * E), with disagreement weights
    w_ij = |i - j| / (k - 1), observed counts O and chance counts
    E_ij = row_i * col_j / N (Cohen, Psychol Bull 1968;70:213;
    Cicchetti & Allison 1971).

    Parameters
    ----------
    table : array_like
        k x k counts, reference in rows, prediction in columns.

    Returns
    -------
    float
        Kappa; NaN when chance disagreement is 0 (both raters constant in
        the same category, or no observations).
    """
    observed = np.asarray(table, dtype=np.float64)
    k = observed.shape[0]
    if observed.ndim != 2 or observed.shape[1] != k or k < 2:
        raise ValueError(f"confusion table must be square k x k, k >= 2; got {observed.shape}")
    weights = np.abs(np.subtract.outer(np.arange(k), np.arange(k))) / (k - 1)
    total = observed.sum()
    if total == 0:
        return float("nan")
    expected = np.outer(observed.sum(1), observed.sum(0)) / total
    chance = float((weights * expected).sum())
    if chance == 0:
        return float("nan")
    return float(1.0 - (weights * observed).sum() / chance)


def linear_weighted_kappa(reference, predicted) -> float:
    """Linearly weighted Cohen's kappa of two ratings on the 0-3 scale.

    Parameters
    ----------
    reference, predicted : array_like of int
        Scores 0-3 of the same images.

    Returns
    -------
    float
        Kappa (:func:`kappa_from_confusion` of the 4 x 4 table).
    """
    return kappa_from_confusion(_confusion_counts(reference, predicted))


def confusion_matrix(reference, predicted) -> pd.DataFrame:
    """4 x 4 confusion matrix: reference score in rows, prediction in columns.

    Parameters
    ----------
    reference, predicted : array_like of int
        Scores 0-3.

    Returns
    -------
    DataFrame
        Counts (int64), index ``reference`` and columns ``predicted`` labelled
        by ``ASCO_CAP_LABELS`` ("0", "1+", "2+", "3+").
    """
    counts = _confusion_counts(reference, predicted)
    return pd.DataFrame(
        counts,
        index=pd.Index(ASCO_CAP_LABELS, name="reference"),
        columns=pd.Index(ASCO_CAP_LABELS, name="predicted"),
    )


# --------------------------------------------------------------------------- categories
def rules_category(
    cells: pd.DataFrame,
    thresholds: Mapping[str, float],
    *,
    complete_fraction: float = 0.8,
    max_fraction_for_0: float = 0.10,
    cutoff_pct: float = 10.0,
    intense_minority_min_pct: float = 1.0,
) -> int:
    """ASCO/CAP 2018 category of one image's cells at given thresholds (the rules).

    Parameters
    ----------
    cells : DataFrame
        The image's cells: ``membrane_dab_excess_od``,
        ``membrane_completeness``, optionally ``tumour``.
    thresholds : mapping
        ``weak``, ``moderate``, ``strong`` (OD).
    complete_fraction, max_fraction_for_0 : float
        :func:`sepher.ihc.rules.classify_cells` settings.
    cutoff_pct, intense_minority_min_pct : float
        :func:`sepher.ihc.biopsy.score_biopsy` settings.

    Returns
    -------
    int
        0-3 (``asco_cap`` of :func:`~sepher.ihc.biopsy.score_biopsy`).
    """
    classes = classify_cells(
        cells["membrane_dab_excess_od"].to_numpy(np.float64),
        cells["membrane_completeness"].to_numpy(np.float64),
        weak=float(thresholds["weak"]),
        moderate=float(thresholds["moderate"]),
        strong=float(thresholds["strong"]),
        complete_fraction=complete_fraction,
        max_fraction_for_0=max_fraction_for_0,
    )
    if "tumour" in cells:
        classes["tumour"] = cells["tumour"].to_numpy(bool)
    return int(
        score_biopsy(classes, cutoff_pct, intense_minority_min_pct=intense_minority_min_pct)[
            "asco_cap"
        ]
    )


def _categories_from_counts(n, c_strong, c_moderate, u_moderate, s_weak, cutoff, minimum):
    """Vectorised :func:`sepher.ihc.rules.asco_cap_2018` on cell counts (same float steps)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        intense = 100.0 * c_strong / n
        weak_moderate = 100.0 * (c_moderate - c_strong) / n
        unusual = 100.0 * u_moderate / n
        stained = 100.0 * s_weak / n
    return np.select(
        [
            intense > cutoff,
            weak_moderate + intense > cutoff,
            (intense > 0) & (intense >= minimum),
            unusual > cutoff,
            stained > cutoff,
        ],
        [3, 2, 2, 2, 1],
        0,
    ).astype(np.int64)


class SortedExcess:
    """Per image, the tumour cells' membrane DAB excess, sorted within completeness groups.

    With the completeness fixed, the per-cell rules reduce to three groups
    (``c`` completeness, NaN read as 0, as :func:`~sepher.ihc.rules.classify_cells`):

    * complete-eligible, ``c >= complete_fraction``: complete intense when
      excess >= ``strong``; complete at level >= 2 when excess >= ``moderate``;
    * partial, ``max_fraction_for_0 < c < complete_fraction``: unusual
      pattern when excess >= ``moderate``;
    * stained-eligible, ``c > max_fraction_for_0``: class >= 1 when excess
      >= ``weak``.

    So the percent of cells in each rule is a count of sorted values at or
    above a threshold: one ``searchsorted`` per image and group. NaN excess
    (level 0) sorts below every threshold.

    Parameters
    ----------
    cells : DataFrame
        Per-cell table with :data:`CELL_INPUTS` and optionally ``tumour``.
    image_ids : sequence
        Images to prepare, in order (an id without cells has no tumour cells).
    complete_fraction, max_fraction_for_0 : float
        :func:`sepher.ihc.rules.classify_cells` settings.
    """

    def __init__(self, cells, image_ids, *, complete_fraction=0.8, max_fraction_for_0=0.10):
        self.image_ids = tuple(str(i) for i in image_ids)
        tumour = cells["tumour"].to_numpy(bool) if "tumour" in cells else np.ones(len(cells), bool)
        ids = cells["image_id"].astype(str).to_numpy()[tumour]
        excess = cells["membrane_dab_excess_od"].to_numpy(np.float64)[tumour]
        excess = np.where(np.isnan(excess), -np.inf, excess)
        comp = np.nan_to_num(cells["membrane_completeness"].to_numpy(np.float64)[tumour], nan=0.0)
        order = np.argsort(ids, kind="stable")
        ids, excess, comp = ids[order], excess[order], comp[order]
        starts = np.searchsorted(ids, self.image_ids, side="left")
        ends = np.searchsorted(ids, self.image_ids, side="right")
        self.n_tumour = (ends - starts).astype(np.int64)
        self.groups: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] = ([], [], [])
        for start, end in zip(starts, ends, strict=True):
            x, c = excess[start:end], comp[start:end]
            masks = (
                c >= complete_fraction,
                (c > max_fraction_for_0) & (c < complete_fraction),
                c > max_fraction_for_0,
            )
            for group, mask in zip(self.groups, masks, strict=True):
                group.append(np.sort(x[mask]))
        self.excess = excess

    def counts(self, values) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Cells at or above each value, per image.

        Parameters
        ----------
        values : array_like of float
            Thresholds (OD).

        Returns
        -------
        complete, partial, stained : ndarray of int64
            Shape (n_images, len(values)): counts of complete-eligible,
            partial and stained-eligible cells with excess >= value.
        """
        values = np.atleast_1d(np.asarray(values, dtype=np.float64))
        out = []
        for group in self.groups:
            table = np.empty((len(group), values.size), dtype=np.int64)
            for i, sorted_x in enumerate(group):
                table[i] = sorted_x.size - np.searchsorted(sorted_x, values, side="left")
            out.append(table)
        return out[0], out[1], out[2]

    def categories(
        self,
        thresholds: Mapping[str, float],
        *,
        cutoff_pct: float = 10.0,
        intense_minority_min_pct: float = 1.0,
    ) -> np.ndarray:
        """ASCO/CAP 2018 category (0-3) of every image at one set of thresholds.

        Equal to :func:`rules_category` image by image (tested).
        """
        weak, moderate, strong = (float(thresholds[k]) for k in THRESHOLD_NAMES)
        if not weak <= moderate <= strong:
            raise ValueError(f"thresholds must satisfy weak <= moderate <= strong: {thresholds}")
        complete, partial, stained = self.counts([weak, moderate, strong])
        return _categories_from_counts(
            self.n_tumour,
            complete[:, 2],
            complete[:, 1],
            partial[:, 1],
            stained[:, 0],
            cutoff_pct,
            intense_minority_min_pct,
        )


# --------------------------------------------------------------------------- search
def threshold_grid(
    excess, defaults: Mapping[str, float], grid_step: float = GRID_STEP, max_grid: int = MAX_GRID
) -> np.ndarray:
    """Candidate threshold values: ``grid_step``, 2 ``grid_step``, ... up to the data.

    The grid reaches the 99.9th percentile of the finite excess values, and
    at least 1.2 x the largest default; with more than ``max_grid`` values
    the step is widened (in multiples of ``grid_step``).

    Returns
    -------
    ndarray of float
        Increasing values (OD), rounded to 10 decimals.
    """
    if grid_step <= 0 or max_grid < 3:
        raise ValueError("grid_step must be > 0 and max_grid >= 3")
    x = np.asarray(excess, dtype=np.float64)
    x = x[np.isfinite(x)]
    top = float(np.quantile(x, 0.999)) if x.size else 0.0
    upper = max(top, 1.2 * max(float(v) for v in defaults.values()), 3 * grid_step)
    step = grid_step
    if math.ceil(upper / step - 1e-9) > max_grid:
        step = grid_step * math.ceil(upper / max_grid / grid_step - 1e-9)
    count = math.ceil(upper / step - 1e-9)
    return np.round(step * np.arange(1, count + 1), 10)


@dataclass(frozen=True)
class _Indicators:
    """Per image and grid value, which ASCO/CAP tests hold (see :func:`_search`)."""

    grid: np.ndarray
    a3: np.ndarray  # (n, G) [i, s]: complete intense > cutoff
    a2: np.ndarray  # (n, G, G) [i, m, s]: any 2+ rule (valid for m < s)
    a1: np.ndarray  # (n, G) [i, w]: class >= 1 > cutoff

    @classmethod
    def build(cls, sorted_excess: SortedExcess, grid, cutoff, minimum) -> _Indicators:
        complete, partial, stained = sorted_excess.counts(grid)
        n = sorted_excess.n_tumour[:, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            intense = 100.0 * complete / n
            unusual = 100.0 * partial / n
            any_stain = 100.0 * stained / n
            weak_moderate = 100.0 * (complete[:, :, None] - complete[:, None, :]) / n[:, :, None]
        present = (intense > 0) & (intense >= minimum)
        a2 = (
            (weak_moderate + intense[:, None, :] > cutoff)
            | present[:, None, :]
            | (unusual > cutoff)[:, :, None]
        )
        return cls(np.asarray(grid), intense > cutoff, a2, any_stain > cutoff)


def _search(ind: _Indicators, refs: np.ndarray, weights: np.ndarray, defaults, margin_steps):
    """Best (weak, moderate, strong) grid indices for image weights ``weights``.

    For each ``strong`` index s, with 3+ fixed by s and 2+ by (m, s), the
    images left below 2+ are 1+ or 0 by ``weak`` alone, so the counts of
    the confusion table needed for kappa (weighted disagreement, the
    prediction margins, the diagonal) are, for every (m, w) at once, one
    product low(m)^T @ (A1(w) x per-image coefficients). The triples of
    highest kappa, then exact agreement, form the optimal set; among them
    :func:`_pick` chooses.
    """
    grid = ind.grid
    size = grid.size
    wt = np.asarray(weights, dtype=np.float64)
    total = wt.sum()
    onehot = np.eye(_N_CAT)[refs] * wt[:, None]  # (n, 4)
    n_ref = onehot.sum(0)
    d = _DISAGREE
    chance_weight = d.T @ n_ref  # per predicted category p: sum_r d[r, p] n_r
    base = float(d[:, 0] @ n_ref)  # disagreement if every image were predicted 0
    coefs = np.stack(
        [(d[refs, 1] - d[refs, 0]) * wt, wt, wt * (refs == 1), wt * (refs == 0)], axis=1
    )
    chunks = []
    for s in range(2, size):
        a3 = ind.a3[:, s]
        a2 = ind.a2[:, :s, s] & ~a3[:, None]  # (n, m): 2+ (not 3+)
        low = (~a3[:, None] & ~a2).astype(np.float64)  # (n, m): below 2+
        o3 = onehot[a3].sum(0)  # (4,)
        o2 = onehot.T @ a2.astype(np.float64)  # (4, m)
        rhs = (ind.a1[:, :s, None] * coefs[:, None, :]).reshape(len(refs), -1)
        agg = (low.T @ rhs).reshape(s, s, 4)  # [m, w, k]
        disagree = (
            base + (d[:, 3] - d[:, 0]) @ o3 + ((d[:, 2] - d[:, 0]) @ o2)[:, None] + agg[..., 0]
        )
        c2 = o2.sum(0)[:, None]
        c1 = agg[..., 1]
        c0 = total - c1 - c2 - o3.sum()
        chance = (
            c0 * chance_weight[0]
            + c1 * chance_weight[1]
            + c2 * chance_weight[2]
            + o3.sum() * chance_weight[3]
        ) / total
        agree = (
            o3[3] + o2[2][:, None] + agg[..., 2] + (n_ref[0] - o3[0] - o2[0][:, None] - agg[..., 3])
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            kappa = 1.0 - disagree / chance
        valid = np.tri(s, s, -1, dtype=bool)  # [m, w]: w < m
        k = np.where(valid & (chance > 0), np.round(kappa, _TIE_DECIMALS), -np.inf)
        k = np.where(valid, k, np.nan)  # invalid never ties; undefined kappa ranks last
        e = np.where(valid, np.round(agree / total, _TIE_DECIMALS), np.nan)
        k_best = np.nanmax(k)
        e_best = np.nanmax(np.where(k == k_best, e, np.nan))
        chunks.append((s, k_best, e_best, (k == k_best) & (e == e_best)))
    best = max((k, e) for _, k, e, _ in chunks)
    w_idx, m_idx, s_idx = [], [], []
    for s, k, e, mask in chunks:
        if (k, e) == best:
            m, w = np.nonzero(mask)
            w_idx.append(w)
            m_idx.append(m)
            s_idx.append(np.full(m.size, s))
    optimal = np.stack([np.concatenate(w_idx), np.concatenate(m_idx), np.concatenate(s_idx)])
    return _pick(optimal, grid, defaults, margin_steps)


def _pick(optimal: np.ndarray, grid: np.ndarray, defaults, margin_steps: int):
    """Choose one triple of the optimal set (3 x k grid indices: weak, moderate, strong).

    Each triple's margin is, along each threshold axis, the number of grid
    steps to the nearest triple outside the optimal set (a threshold value at
    which some reference image changes category, or the ordering
    weak < moderate < strong), the grid's ends counting as open. The triples
    with the largest sum over the axes of the margins, each capped at
    ``margin_steps``, are kept (each threshold as central in its optimal
    interval as possible, up to the cap); of these the one closest to the
    defaults (Euclidean, OD), then the first in grid order.
    """
    size = grid.size
    lo = np.maximum(optimal.min(1) - 1, 0)
    hi = np.minimum(optimal.max(1) + 2, size)
    box = np.zeros(tuple(hi - lo), dtype=bool)
    local = optimal - lo[:, None]
    box[tuple(local)] = True
    per_axis = np.empty(optimal.shape, dtype=np.float64)
    below = np.empty(optimal.shape, dtype=np.float64)
    above = np.empty(optimal.shape, dtype=np.float64)
    for axis in range(3):
        idx = np.arange(box.shape[axis]).reshape([-1 if a == axis else 1 for a in range(3)])
        idx = np.broadcast_to(idx, box.shape)
        last_false = np.maximum.accumulate(np.where(box, -1, idx), axis=axis)
        down = np.where(last_false >= 0, idx - last_false, np.inf)
        flipped_box = np.flip(box, axis)
        last_false_up = np.maximum.accumulate(np.where(flipped_box, -1, idx), axis=axis)
        up = np.flip(np.where(last_false_up >= 0, idx - last_false_up, np.inf), axis)
        # the box ends at the grid's ends only where lo == 0 / hi == size; elsewhere a
        # non-optimal row lies inside the box, so reaching the box end means the grid end
        below[axis] = down[tuple(local)]
        above[axis] = up[tuple(local)]
        per_axis[axis] = np.minimum(below[axis], above[axis])
    score = np.minimum(per_axis, float(margin_steps)).sum(0)
    keep = score == score.max()
    chosen = optimal[:, keep]
    values = grid[chosen]
    target = np.array([float(defaults[k]) for k in THRESHOLD_NAMES])[:, None]
    distance = np.round(((values - target) ** 2).sum(0), _TIE_DECIMALS)
    order = np.lexsort((chosen[0], chosen[1], chosen[2], distance))
    j = np.flatnonzero(keep)[order[0]]
    triple = tuple(int(i) for i in optimal[:, j])
    intervals = []
    for axis, i in enumerate(triple):
        low = 0.0 if np.isinf(below[axis, j]) else float(grid[i - int(below[axis, j]) + 1])
        high = np.inf if np.isinf(above[axis, j]) else float(grid[i + int(above[axis, j]) - 1])
        intervals.append((low, high))
    return triple, intervals


def _fit(ind: _Indicators, refs, weights, defaults, margin_steps) -> tuple[dict, dict]:
    """Fitted thresholds and, per threshold, its optimal interval (others fixed)."""
    triple, intervals = _search(ind, refs, weights, defaults, margin_steps)
    thresholds = {n: float(ind.grid[i]) for n, i in zip(THRESHOLD_NAMES, triple, strict=True)}
    return thresholds, dict(zip(THRESHOLD_NAMES, intervals, strict=True))


# --------------------------------------------------------------------------- inputs
def _check_references(references) -> pd.Series:
    if isinstance(references, pd.Series):
        series = references.copy()
    elif isinstance(references, Mapping):
        series = pd.Series(dict(references), dtype=object)
    else:
        raise TypeError("references must map image_id -> reference score (0-3)")
    series.index = series.index.astype(str)
    if series.index.has_duplicates:
        dup = series.index[series.index.duplicated()][0]
        raise InputError(
            "reference scores", "one reference score per image", column="image_id", value=dup
        )
    values = {}
    for image_id, value in series.items():
        score = value
        if isinstance(value, str) and value.strip() in ASCO_CAP_LABELS:
            score = ASCO_CAP_LABELS.index(value.strip())
        try:
            ok = float(score) == int(score) and 0 <= int(score) < _N_CAT
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise InputError(
                "reference scores",
                "a reference score of 0, 1, 2 or 3 (or 0, 1+, 2+, 3+)",
                row=image_id,
                column="reference_score",
                value=value,
            )
        values[image_id] = int(score)
    series = pd.Series(values, dtype=np.int64, name="reference").sort_index(kind="stable")
    present = sorted({ASCO_CAP_LABELS[v] for v in series})
    if len(series) < MIN_REFERENCE_IMAGES:
        raise InputError(
            "reference scores",
            f"at least {MIN_REFERENCE_IMAGES} images with a reference score (found {len(series)})",
            column="reference_score",
            hint="Score more reference images (reference_score in the sample sheet).",
        )
    if len(present) < MIN_REFERENCE_CATEGORIES:
        missing = [label for label in ASCO_CAP_LABELS if label not in present]
        raise InputError(
            "reference scores",
            f"reference scores in at least {MIN_REFERENCE_CATEGORIES} categories "
            f"(found only {', '.join(present)}; none of {', '.join(missing)})",
            column="reference_score",
            hint="Add reference images of another category.",
        )
    return series


def _check_cells(cells) -> pd.DataFrame:
    if not isinstance(cells, pd.DataFrame):
        raise TypeError(f"cells must be a pandas DataFrame, got {type(cells).__name__}")
    missing = [c for c in CELL_INPUTS if c not in cells.columns]
    if missing:
        raise InputError(
            "cells table",
            f"columns {list(CELL_INPUTS)} (missing {missing})",
            column=missing[0],
        )
    return cells


def _check_defaults(defaults) -> dict:
    missing = [k for k in THRESHOLD_NAMES if k not in defaults]
    if missing:
        raise ValueError(f"defaults needs {list(THRESHOLD_NAMES)}; missing {missing}")
    out = {k: float(defaults[k]) for k in THRESHOLD_NAMES}
    if not out["weak"] < out["moderate"] < out["strong"]:
        raise ValueError(f"defaults must satisfy weak < moderate < strong, got {out}")
    return out


def _folds(refs: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    n = refs.size
    if n <= LOO_MAX_IMAGES:
        return np.arange(n), "leave-one-out"
    folds = np.empty(n, dtype=np.int64)
    counter = 0
    for category in range(_N_CAT):
        members = np.flatnonzero(refs == category)
        members = members[rng.permutation(members.size)]
        folds[members] = (counter + np.arange(members.size)) % N_FOLDS
        counter += members.size
    return folds, f"stratified {N_FOLDS}-fold"


def _bootstrap_weights(refs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    weights = np.zeros(refs.size)
    for category in range(_N_CAT):
        members = np.flatnonzero(refs == category)
        if members.size:
            draw = rng.integers(0, members.size, size=members.size)
            weights += np.bincount(members[draw], minlength=refs.size)
    return weights


# --------------------------------------------------------------------------- API
@dataclass
class CalibrationResult:
    """Fitted intensity thresholds and their cross-validated agreement.

    Attributes
    ----------
    thresholds : dict
        ``weak``, ``moderate``, ``strong`` (OD) fitted on all reference images.
    ci : dict
        Name -> (low, high): 95 % bootstrap interval of the threshold's
        optimal interval (module docstring; NaN without bootstrap, high
        infinite when no reference image bounds the threshold from above).
    cv_table : DataFrame
        One row per reference image: ``image_id``, ``reference``,
        ``predicted`` (out of fold), ``fitted`` (in sample, final
        thresholds), ``fold``, ``n_tumour_cells``.
    confusion : DataFrame
        Cross-validated 4 x 4 counts (:func:`confusion_matrix`).
    exact, kappa_linear : float
        Cross-validated exact agreement (0-1) and linearly weighted kappa.
    n_images : int
        Reference images.
    method : str
        One-paragraph description for Methods and the log.
    defaults : dict
        The literature thresholds (starting point and tie-breaker).
    bootstrap : DataFrame
        One row per bootstrap resample: the fitted :data:`THRESHOLD_NAMES`
        and their optimal intervals ``<name>_low``, ``<name>_high``.
    identified : dict
        Name -> (low, high): each threshold's optimal interval on all the
        reference images, the other two fixed at their fitted values.
    cv_scheme : str
        "leave-one-out" or "stratified 5-fold".
    """

    thresholds: dict
    ci: dict
    cv_table: pd.DataFrame
    confusion: pd.DataFrame
    exact: float
    kappa_linear: float
    n_images: int
    method: str
    defaults: dict = field(default_factory=lambda: dict(DEFAULTS))
    bootstrap: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=THRESHOLD_NAMES))
    cv_scheme: str = ""
    identified: dict = field(default_factory=dict)


def calibrate_thresholds(
    cells: pd.DataFrame,
    references,
    *,
    defaults: Mapping[str, float] | None = None,
    complete_fraction: float = 0.8,
    max_fraction_for_0: float = 0.10,
    cutoff_pct: float = 10.0,
    intense_minority_min_pct: float = 1.0,
    n_boot: int = 200,
    seed: int = 0,
    grid_step: float = GRID_STEP,
    max_grid: int = MAX_GRID,
    margin: float = MARGIN_OD,
    categorise: Callable[[pd.DataFrame, Mapping[str, float]], int] | None = None,
) -> CalibrationResult:
    """Fit ``weak`` < ``moderate`` < ``strong`` to reference scores (see module docstring).

    Parameters
    ----------
    cells : DataFrame
        Per-cell table of (at least) the reference images: ``image_id``,
        ``membrane_dab_excess_od``, ``membrane_completeness`` and optionally
        ``tumour`` (bool; default all). Cells of other images are ignored.
    references : mapping or Series
        ``image_id`` -> reference score 0-3 (or "0", "1+", "2+", "3+"). A
        reference image without cells has no tumour cells (category 0).
    defaults : mapping, optional
        Literature thresholds ``weak``, ``moderate``, ``strong``: tie-breaker
        and the value of a threshold the references do not determine.
        Default :data:`DEFAULTS`.
    complete_fraction, max_fraction_for_0 : float
        Per-cell rule settings (:func:`sepher.ihc.rules.classify_cells`).
    cutoff_pct, intense_minority_min_pct : float
        Per-image rule settings (:func:`sepher.ihc.biopsy.score_biopsy`).
    n_boot : int, default 200
        Stratified bootstrap resamples of the images (0: no intervals).
    seed : int, default 0
        Seed of the bootstrap and of the k-fold split.
    grid_step : float, default 0.005
        Threshold grid step (OD); see :func:`threshold_grid`.
    max_grid : int, default 200
        Most grid values.
    margin : float, default 0.02
        Margin (OD) sought between each fitted threshold and the nearest value
        at which a reference image would change category (see module docstring).
    categorise : callable, optional
        ``categorise(image_cells, thresholds) -> int``: the category of a
        held-out image. Default :func:`rules_category` with the settings above.

    Returns
    -------
    CalibrationResult

    Raises
    ------
    InputError
        Fewer than 4 reference images or fewer than 2 reference categories,
        a reference score outside 0-3, or cells without the needed columns.
    """
    defaults = _check_defaults(DEFAULTS if defaults is None else defaults)
    refs_series = _check_references(references)
    cells = _check_cells(cells)
    if n_boot < 0:
        raise ValueError("n_boot must be >= 0")
    if categorise is None:
        categorise = functools.partial(
            rules_category,
            complete_fraction=complete_fraction,
            max_fraction_for_0=max_fraction_for_0,
            cutoff_pct=cutoff_pct,
            intense_minority_min_pct=intense_minority_min_pct,
        )
    image_ids = list(refs_series.index)
    refs = refs_series.to_numpy(np.int64)
    ids = cells["image_id"].astype(str)
    cells = cells[ids.isin(image_ids)]
    sorted_excess = SortedExcess(
        cells, image_ids, complete_fraction=complete_fraction, max_fraction_for_0=max_fraction_for_0
    )
    grid = threshold_grid(sorted_excess.excess, defaults, grid_step, max_grid)
    ind = _Indicators.build(sorted_excess, grid, cutoff_pct, intense_minority_min_pct)
    step = float(grid[1] - grid[0])
    margin_steps = max(1, int(round(margin / step)))

    thresholds, identified = _fit(ind, refs, np.ones(refs.size), defaults, margin_steps)

    boot_seq, cv_seq = np.random.SeedSequence(seed).spawn(2)
    boot_rng = np.random.default_rng(boot_seq)
    rows = []
    for _ in range(n_boot):
        fit, intervals = _fit(ind, refs, _bootstrap_weights(refs, boot_rng), defaults, margin_steps)
        row = dict(fit)
        for name, (low, high) in intervals.items():
            row[f"{name}_low"], row[f"{name}_high"] = low, high
        rows.append(row)
    columns = [
        *THRESHOLD_NAMES,
        *(f"{n}_{end}" for n in THRESHOLD_NAMES for end in ("low", "high")),
    ]
    bootstrap = pd.DataFrame(rows, columns=columns, dtype=np.float64)
    ci = {}
    for name in THRESHOLD_NAMES:
        if n_boot:
            # observed order statistics ("lower" / "higher"): no interpolation with open ends
            low = float(np.percentile(bootstrap[f"{name}_low"], 2.5, method="lower"))
            high = float(np.percentile(bootstrap[f"{name}_high"], 97.5, method="higher"))
            ci[name] = (low, high)
        else:
            ci[name] = (float("nan"), float("nan"))

    by_image = {str(k): g for k, g in cells.groupby(ids[ids.isin(image_ids)], sort=False)}
    empty = cells.iloc[:0]
    folds, scheme = _folds(refs, np.random.default_rng(cv_seq))
    predicted = np.empty(refs.size, dtype=np.int64)
    for fold in np.unique(folds):
        held = folds == fold
        fitted, _ = _fit(ind, refs, (~held).astype(np.float64), defaults, margin_steps)
        for i in np.flatnonzero(held):
            predicted[i] = int(categorise(by_image.get(image_ids[i], empty), fitted))
    fitted_all = np.array(
        [int(categorise(by_image.get(i, empty), thresholds)) for i in image_ids], dtype=np.int64
    )
    cv_table = pd.DataFrame(
        {
            "image_id": image_ids,
            "reference": refs,
            "predicted": predicted,
            "fitted": fitted_all,
            "fold": folds,
            "n_tumour_cells": sorted_excess.n_tumour,
        }
    )
    exact = float(np.mean(predicted == refs))
    kappa = linear_weighted_kappa(refs, predicted)
    method = (
        f"Intensity thresholds weak < moderate < strong fitted on {refs.size} reference "
        f"images by exhaustive search over a {step:g} OD grid ({grid.size} values, "
        f"{grid[0]:g}-{grid[-1]:g} OD) of the membrane DAB excess, maximising linearly "
        "weighted Cohen's kappa between the ASCO/CAP 2018 image categories and the "
        "reference scores (ties: exact agreement; then each threshold central in its "
        f"optimal interval, up to a {margin:g} OD margin; then closeness to the literature "
        f"defaults {defaults['weak']:g} / {defaults['moderate']:g} / {defaults['strong']:g}); "
        f"95 % intervals: percentiles of the optimal intervals over {n_boot} bootstrap "
        f"resamples of the images stratified by reference score (seed {seed}); agreement "
        f"by {scheme} cross-validation over images, each held-out image scored by the "
        "ASCO/CAP rules at the thresholds fitted without it."
    )
    return CalibrationResult(
        thresholds=thresholds,
        ci=ci,
        cv_table=cv_table,
        confusion=confusion_matrix(refs, predicted),
        exact=exact,
        kappa_linear=kappa,
        n_images=int(refs.size),
        method=method,
        defaults=defaults,
        bootstrap=bootstrap,
        cv_scheme=scheme,
        identified=identified,
    )


def calibration_table(result: CalibrationResult) -> pd.DataFrame:
    """Tidy long table of a calibration (``results/imaging/ihc_calibration.csv``).

    Rows, in this order:

    * ``kind`` "threshold": ``name`` weak / moderate / strong, ``value``
      (OD), ``ci_low``, ``ci_high`` (bootstrap 95 % interval; ``inf`` when
      open at the top);
    * ``kind`` "agreement": ``name`` exact (0-1), kappa_linear
      (cross-validated) and n (reference images), in ``value``;
    * ``kind`` "confusion": ``reference`` and ``predicted`` ("0" .. "3+"),
      ``name`` "count", the count in ``value``; all 16 cells, reference-major.

    Empty cells are empty strings (text columns) or NaN (numbers); numbers
    are rounded (thresholds to 6, agreement to 6 decimals) so that the
    written table is byte-identical across runs and platforms.

    Returns
    -------
    DataFrame
        Columns :data:`CALIBRATION_COLUMNS`.
    """
    rows = []
    for name in THRESHOLD_NAMES:
        low, high = result.ci[name]
        rows.append(
            {
                "kind": "threshold",
                "name": name,
                "value": round(float(result.thresholds[name]), 6),
                "ci_low": round(float(low), 6),
                "ci_high": round(float(high), 6),
            }
        )
    for name, value in (
        ("exact", result.exact),
        ("kappa_linear", result.kappa_linear),
        ("n", result.n_images),
    ):
        rows.append({"kind": "agreement", "name": name, "value": round(float(value), 6)})
    confusion = result.confusion.reindex(
        index=list(ASCO_CAP_LABELS), columns=list(ASCO_CAP_LABELS), fill_value=0
    )
    for ref in ASCO_CAP_LABELS:
        for pred in ASCO_CAP_LABELS:
            rows.append(
                {
                    "kind": "confusion",
                    "name": "count",
                    "value": float(confusion.loc[ref, pred]),
                    "reference": ref,
                    "predicted": pred,
                }
            )
    table = pd.DataFrame(rows, columns=list(CALIBRATION_COLUMNS))
    for column in ("reference", "predicted"):
        table[column] = table[column].fillna("").astype(str)
    return table


def _label(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    text = str(value).strip()
    if text in ASCO_CAP_LABELS:
        return text
    try:
        number = float(text)
    except ValueError:
        return text
    return ASCO_CAP_LABELS[int(number)] if number.is_integer() and 0 <= number < 4 else text


def result_from_table(
    table: pd.DataFrame, method: str = "", cv_scheme: str = ""
) -> CalibrationResult:
    """Rebuild a :class:`CalibrationResult` from :func:`calibration_table` (e.g. read back).

    The per-image ``cv_table`` and the bootstrap draws are not in the table:
    they come back empty; ``method`` and ``cv_scheme`` (for the figure's
    title) may be passed from the thresholds JSON. Enough for :func:`plot_calibration
    <sepher.figures.ihc_calibration_plot.plot_calibration>`.
    """
    missing = [c for c in CALIBRATION_COLUMNS if c not in table.columns]
    if missing:
        raise InputError("ihc_calibration table", f"columns {list(CALIBRATION_COLUMNS)}",
                         column=missing[0])  # fmt: skip
    kind = table["kind"].astype(str)
    thr = table[kind == "threshold"].set_index("name")
    agreement = table[kind == "agreement"].set_index("name")["value"]
    conf = table[kind == "confusion"]
    counts = np.zeros((_N_CAT, _N_CAT), dtype=np.int64)
    for row in conf.itertuples():
        r, p = _label(row.reference), _label(row.predicted)
        counts[ASCO_CAP_LABELS.index(r), ASCO_CAP_LABELS.index(p)] = int(round(float(row.value)))
    confusion = pd.DataFrame(
        counts,
        index=pd.Index(ASCO_CAP_LABELS, name="reference"),
        columns=pd.Index(ASCO_CAP_LABELS, name="predicted"),
    )
    return CalibrationResult(
        thresholds={k: float(thr.loc[k, "value"]) for k in THRESHOLD_NAMES},
        ci={
            k: (float(thr.loc[k, "ci_low"]), float(thr.loc[k, "ci_high"])) for k in THRESHOLD_NAMES
        },
        cv_table=pd.DataFrame(
            columns=["image_id", "reference", "predicted", "fitted", "fold", "n_tumour_cells"]
        ),
        confusion=confusion,
        exact=float(agreement["exact"]),
        kappa_linear=float(agreement["kappa_linear"]),
        n_images=int(round(float(agreement["n"]))),
        method=method,
        cv_scheme=cv_scheme,
    )
