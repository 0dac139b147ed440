"""Instance-segmentation accuracy: matching predicted to ground-truth objects.

The matching follows the convention of the 2018 Data Science Bowl and of
StarDist's ``matching``: a predicted object and a true object match when
their intersection over union (IoU) reaches a threshold; each object matches
at most once (optimal one-to-one assignment). For thresholds >= 0.5 a match
is necessarily unique, so the assignment is exact without a solver.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["compare_segmentations", "iou_pairs", "match_instances"]


def iou_pairs(pred: np.ndarray, truth: np.ndarray):
    """Intersection over union of every overlapping pair of labels.

    Computed sparsely from the label overlaps (one pass with
    :func:`numpy.unique` over the pixels where both images are labelled), so
    memory scales with the number of overlapping pairs, not with
    ``n_pred * n_truth``.

    Parameters
    ----------
    pred, truth : ndarray of int, same shape
        Label images; 0 is background.

    Returns
    -------
    pred_ids, truth_ids : ndarray of int
        Labels of each overlapping pair.
    iou : ndarray of float
        Intersection over union of each pair (0-1].
    """
    pred = np.asarray(pred)
    truth = np.asarray(truth)
    if pred.shape != truth.shape:
        raise ValueError(f"shape mismatch: pred {pred.shape} vs truth {truth.shape}")
    p = pred.ravel().astype(np.int64)
    t = truth.ravel().astype(np.int64)
    area_p = np.bincount(p)
    area_t = np.bincount(t)
    both = (p > 0) & (t > 0)
    key = p[both] * (int(t.max()) + 1) + t[both]
    keys, inter = np.unique(key, return_counts=True)
    pred_ids = keys // (int(t.max()) + 1)
    truth_ids = keys % (int(t.max()) + 1)
    union = area_p[pred_ids] + area_t[truth_ids] - inter
    return pred_ids, truth_ids, inter / union


def match_instances(pred: np.ndarray, truth: np.ndarray, iou: float = 0.5) -> dict:
    """Match predicted to true objects at an IoU threshold and score them.

    Parameters
    ----------
    pred, truth : ndarray of int, same shape
        Label images (0 = background); labels need not be consecutive.
    iou : float, default 0.5
        Minimum intersection over union for a match (the DSB 2018 / StarDist
        convention is 0.5).

    Returns
    -------
    dict
        ``tp``, ``fp``, ``fn`` (counts), ``precision`` = tp / n_pred,
        ``recall`` = tp / n_truth, ``f1`` = 2 tp / (n_pred + n_truth), and
        ``mean_iou``: mean IoU of the matched pairs (NaN when none match).
    """
    pred_ids, truth_ids, pair_iou = iou_pairs(pred, truth)
    n_pred = int(np.unique(np.asarray(pred)[np.asarray(pred) > 0]).size)
    n_truth = int(np.unique(np.asarray(truth)[np.asarray(truth) > 0]).size)
    keep = pair_iou >= iou
    pred_ids, truth_ids, pair_iou = pred_ids[keep], truth_ids[keep], pair_iou[keep]
    if iou < 0.5 and pair_iou.size:
        # Several candidates per object are possible: optimal assignment on the
        # (small) sub-matrix of objects that have any candidate.
        up, ip = np.unique(pred_ids, return_inverse=True)
        ut, it = np.unique(truth_ids, return_inverse=True)
        cost = np.zeros((up.size, ut.size))
        cost[ip, it] = -pair_iou
        rows, cols = linear_sum_assignment(cost)
        matched = cost[rows, cols] < 0
        pair_iou = -cost[rows, cols][matched]
    tp = int(pair_iou.size)
    fp = n_pred - tp
    fn = n_truth - tp
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_truth if n_truth else 0.0
    f1 = 2 * tp / (n_pred + n_truth) if (n_pred + n_truth) else 0.0
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "mean_iou": float(pair_iou.mean()) if tp else float("nan"),
    }


def compare_segmentations(labels_a: np.ndarray, labels_b: np.ndarray, iou: float = 0.5) -> dict:
    """Agreement of two segmentations of one field (e.g. cells outlined on a
    membrane marker, ``labels_a``, and on HER2 itself, ``labels_b``).

    Neither is ground truth: ``labels_a`` plays the reference in
    :func:`match_instances` (so ``recall`` is the share of its objects
    found again in ``labels_b``), and F1 and the matched IoUs are symmetric.

    Returns
    -------
    dict
        :func:`match_instances` (``tp``, ``fp``, ``fn``, ``precision``,
        ``recall``, ``f1``, ``mean_iou``) plus ``n_a``, ``n_b`` (objects),
        ``median_iou`` of the matched pairs and ``iou_threshold``.
    """
    a = np.asarray(labels_a)
    b = np.asarray(labels_b)
    score = match_instances(b, a, iou=iou)
    pred_ids, truth_ids, pair_iou = iou_pairs(b, a)
    matched = pair_iou[pair_iou >= iou] if iou >= 0.5 else np.zeros(0)
    return {
        **score,
        "n_a": int(np.unique(a[a > 0]).size),
        "n_b": int(np.unique(b[b > 0]).size),
        "median_iou": float(np.median(matched)) if matched.size else float("nan"),
        "iou_threshold": iou,
    }
