"""Cox proportional-hazards regression, as R ``coxph`` (survival 3.5-3).

Partial likelihood with Efron (R's default) or Breslow handling of tied event
times, maximised by Newton-Raphson with step halving and R's stopping rule
(relative change in log-likelihood <= 1e-9, at most 20 iterations).
Covariates are centred on their means, as R does. Reported: Wald estimates,
hazard ratios with Wald 95% limits, the likelihood-ratio, Wald and score
tests, and Harrell's concordance exactly as R's ``concordance(fit)``.

Extensions, each as R: delayed entry / left truncation (``Surv(entry, time,
event)``), case weights (``weights =``, weighted Efron), the robust sandwich
variance (``robust = TRUE``), stratification (``+ strata(x)``) and
interaction terms (``"a:b"``, R's column names). Concordance follows R's
``concordancefit`` in all these cases (:func:`concordance_general`).

All risk-set sums come from reverse cumulative sums over the data sorted by
(stratum, time), minus those over the rows sorted by entry time, and the
Efron tie correction is expanded over the events, so one Newton step costs
O(n p^2) numpy work with no loop over event times: a million patients with
ten covariate columns fit in a few seconds. :mod:`sepher.survival.zph` reuses
the same machinery for the proportional-hazards test.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sepher.survival.distributions import chi2_sf, norm_ppf, norm_sf

TIES = ("efron", "breslow")


# --------------------------------------------------------------------------
# risk-set machinery
# --------------------------------------------------------------------------
class RiskSets:
    """Data sorted by (stratum, time) with the index arrays every risk-set sum needs.

    Parameters
    ----------
    time : ndarray of float, shape (n,)
        Follow-up (exit) times.
    event : ndarray of {0, 1}, shape (n,)
        Event indicators.
    ties : {"efron", "breslow"}
        Tie handling.
    entry : ndarray of float, shape (n,), optional
        Entry times (left truncation): a row is at risk at t iff
        entry < t <= time, R's ``Surv(entry, time, event)``.
    strata : ndarray of int, shape (n,), optional
        Stratum codes; risk sets and tied-event blocks are formed within a
        stratum (R's ``strata()``).
    weights : ndarray of float, shape (n,), optional
        Case weights (R's ``weights =``).

    Notes
    -----
    With J distinct (stratum, event time) pairs t_j holding d_j events, the
    Efron correction replaces each risk-set sum by d_j partial sums
    S - (l / d_j) E, l = 0..d_j-1, where E sums over the tied events. These
    m = sum d_j terms are laid out as flat arrays (``slot_time``,
    ``slot_fraction``), so no loop over event times is needed. Breslow uses
    fraction 0 throughout.

    A risk-set sum is a suffix sum over the rows of the stratum sorted by
    time, from the first row with time >= t_j to the end of the stratum; with
    delayed entry the suffix sum over the rows with entry >= t_j (same
    stratum, rows sorted by entry) is subtracted. With case weights every
    row's risk is w exp(eta), the events enter the score and log-likelihood
    with weight w, and each event time's Efron terms are multiplied by the
    mean weight of its tied events, as R's ``coxfit6`` / ``agfit4``.
    """

    def __init__(self, time, event, ties="efron", entry=None, strata=None, weights=None):
        if ties not in TIES:
            raise ValueError(f"ties must be one of {TIES}; got {ties!r}")
        self.ties = ties
        time = np.asarray(time, dtype=float)
        n = time.size
        if strata is None:
            stratum = np.zeros(n, dtype=np.int64)
            self.order = np.argsort(time, kind="stable")
        else:
            stratum = np.asarray(strata, dtype=np.int64)
            self.order = np.lexsort((time, stratum))  # stable: ties in data order
        self.time = time[self.order]
        self.event = np.asarray(event, dtype=np.int64)[self.order]
        self.stratum = stratum[self.order]
        self.entry = None if entry is None else np.asarray(entry, dtype=float)[self.order]
        self.weights = None if weights is None else np.asarray(weights, dtype=float)[self.order]
        self.n = n
        # integer keys (stratum, time) in one rank space shared by exit and entry times
        values = self.time if self.entry is None else np.concatenate([self.time, self.entry])
        unique_values = np.unique(values)
        width = unique_values.size + 1
        time_key = self.stratum * width + 1 + np.searchsorted(unique_values, self.time)
        is_event = self.event == 1
        self.event_rows = np.flatnonzero(is_event)
        event_key = time_key[is_event]  # already sorted
        new_time = np.ones(event_key.size, dtype=bool)
        new_time[1:] = event_key[1:] != event_key[:-1]
        first_event_row = np.flatnonzero(new_time)
        self.event_key = event_key[first_event_row]
        self.event_times = self.time[self.event_rows][first_event_row]
        self.event_stratum = self.stratum[self.event_rows][first_event_row]
        self.deaths = np.diff(np.append(first_event_row, event_key.size))
        # risk set of event time j: sorted rows risk_start[j] .. risk_end[j] - 1
        self.risk_start = np.searchsorted(time_key, self.event_key, side="left")
        stratum_end_key = (self.event_stratum + 1) * width
        self.risk_end = np.searchsorted(time_key, stratum_end_key, side="left")
        self.segment_start = np.unique(
            np.concatenate([self.risk_start, self.risk_end[self.risk_end < n]])
        )
        self.segment_of_start = np.searchsorted(self.segment_start, self.risk_start)
        self.segment_of_end = np.searchsorted(self.segment_start, self.risk_end)
        # offsets into event_rows where each tied-event block starts
        self.event_block_start = first_event_row
        # event-time index of each event row
        self.event_time_of_event = np.repeat(np.arange(self.event_key.size), self.deaths)
        # rows belong to the risk sets of event-time indices lower .. upper - 1
        self.n_risk_sets = np.searchsorted(self.event_key, time_key, side="right")
        if self.entry is None:
            self.entry_order = None
            self.risk_lower = np.searchsorted(self.event_key, self.stratum * width, side="right")
        else:
            entry_key = self.stratum * width + 1 + np.searchsorted(unique_values, self.entry)
            self.entry_order = np.argsort(entry_key, kind="stable")
            sorted_entry_key = entry_key[self.entry_order]
            self.entry_start = np.searchsorted(sorted_entry_key, self.event_key, side="left")
            self.entry_end = np.searchsorted(sorted_entry_key, stratum_end_key, side="left")
            self.risk_lower = np.searchsorted(self.event_key, entry_key, side="right")
        # Efron slots
        m = int(self.deaths.sum())
        self.n_events = m
        self.slot_time = self.event_time_of_event
        block_offset = np.repeat(np.cumsum(self.deaths) - self.deaths, self.deaths)
        slot_l = np.arange(m) - block_offset
        if ties == "efron":
            self.slot_fraction = slot_l / self.deaths[self.slot_time]
        else:
            self.slot_fraction = np.zeros(m)
        if self.weights is None:
            self.mean_weight = None
        else:
            event_weight = self.weights[self.event_rows]
            self.mean_weight = np.add.reduceat(event_weight, first_event_row) / self.deaths

    def risk_sum(self, values):
        """Sum of `values` (sorted order, shape (n,) or (n, p)) over each risk set (J rows)."""
        segment = np.add.reduceat(values, self.segment_start, axis=0)
        suffix = np.cumsum(segment[::-1], axis=0)[::-1]
        suffix = np.concatenate([suffix, np.zeros((1,) + suffix.shape[1:])])
        total = suffix[self.segment_of_start] - suffix[self.segment_of_end]
        if self.entry_order is not None:
            late = values[self.entry_order]
            suffix = np.cumsum(late[::-1], axis=0)[::-1]
            suffix = np.concatenate([suffix, np.zeros((1,) + suffix.shape[1:])])
            total = total - (suffix[self.entry_start] - suffix[self.entry_end])
        return total

    def _time_weight(self, time_weight):
        """Per event time weight: user weight v_j times the mean event weight (or None)."""
        v = None if time_weight is None else np.asarray(time_weight, float)
        if self.mean_weight is None:
            return v
        return self.mean_weight if v is None else v * self.mean_weight

    def sums(self, x, eta):
        """Risk-set sums at the linear predictor `eta` (sorted order).

        Parameters
        ----------
        x : ndarray, shape (n, p)
            Covariates in sorted order (centred).
        eta : ndarray, shape (n,)
            Linear predictor in sorted order.

        Returns
        -------
        dict
            ``loglik``; ``r`` = w exp(eta - shift) (w = case weight, 1 without);
            ``risk`` = exp(eta - shift); per distinct event time ``s1``
            (risk-set sum of r x) and ``e1`` (sum over the tied events), J x p;
            ``inv`` = 1/den per Efron slot; and per event time sums over the
            Efron slots of 1/den (``w1``), f/den (``w2``), 1/den^2 (``q0``),
            f/den^2 (``q1``) and f^2/den^2 (``q2``), where den_l = S0 - f_l E0.
        """
        shift = float(np.max(eta)) if eta.size else 0.0
        risk = np.exp(eta - shift)
        r = risk if self.weights is None else risk * self.weights
        rx = x * r[:, None]
        s0 = self.risk_sum(r)
        s1 = self.risk_sum(rx)
        ev = self.event_rows
        e0 = np.add.reduceat(r[ev], self.event_block_start)
        e1 = np.add.reduceat(rx[ev], self.event_block_start, axis=0)
        j, f = self.slot_time, self.slot_fraction
        den = s0[j] - f * e0[j]
        n_times = self.event_times.size
        inv = 1.0 / den
        inv2 = inv * inv

        def per_time(values):
            return np.bincount(j, weights=values, minlength=n_times)

        if self.weights is None:
            loglik = float(eta[ev].sum() + np.log(inv).sum() - shift * self.n_events)
        else:
            event_weight = self.weights[ev]
            loglik = float(
                event_weight @ eta[ev]
                + self.mean_weight[j] @ np.log(inv)
                - shift * event_weight.sum()
            )
        return {
            "loglik": loglik,
            "r": r,
            "risk": risk,
            "s1": s1,
            "e1": e1,
            "inv": inv,
            "w1": per_time(inv),
            "w2": per_time(f * inv),
            "q0": per_time(inv2),
            "q1": per_time(f * inv2),
            "q2": per_time(f * f * inv2),
        }

    def mean_sum(self, s, time_weight=None):
        """sum_j v_j m_j sum_l a_l, a_l = (S1 - f_l E1) / den_l, m_j = mean event weight."""
        v = self._time_weight(time_weight)
        v = 1.0 if v is None else v
        return (s["w1"] * v) @ s["s1"] - (s["w2"] * v) @ s["e1"]

    def block_mean(self, s):
        """Mean over each event time's Efron slots of a_l (J x p; R's Schoenfeld centre)."""
        return (s["s1"] * s["w1"][:, None] - s["e1"] * s["w2"][:, None]) / self.deaths[:, None]

    def score(self, x, s, time_weight=None):
        """Score sum_j v_j (sum of w x over the events at t_j - m_j sum_l a_l)."""
        ev = self.event_rows
        event_weight = None if self.weights is None else self.weights[ev]
        if time_weight is not None:
            tw = np.asarray(time_weight, float)[self.event_time_of_event]
            event_weight = tw if event_weight is None else tw * event_weight
        x_events = x[ev].sum(axis=0) if event_weight is None else event_weight @ x[ev]
        return x_events - self.mean_sum(s, time_weight)

    def information(self, x, s, time_weight=None):
        """Observed information, optionally weighted per event time.

        Parameters
        ----------
        x : ndarray, shape (n, p)
            Covariates (sorted, centred).
        s : dict
            Output of :meth:`sums`.
        time_weight : ndarray, shape (J,), optional
            Weight v_j of each distinct event time's contribution
            (cox.zph uses g(t) and g(t)^2). Default 1.

        Returns
        -------
        ndarray, shape (p, p)
            sum_j v_j m_j sum_l [ (S2_j - f_l E2_j) / den_l - a_l a_l' ], with
            the S2 and E2 parts gathered into one weighted X'WX and the
            a_l a_l' part expanded into J-level sums (m_j: mean event weight).
        """
        n_times = self.event_times.size
        v = self._time_weight(time_weight)
        v = np.ones(n_times) if v is None else v
        w1, w2 = s["w1"] * v, s["w2"] * v
        cum_w1 = np.concatenate([[0.0], np.cumsum(w1)])
        row_weight = s["r"] * (cum_w1[self.n_risk_sets] - cum_w1[self.risk_lower])
        ev = self.event_rows
        row_weight[ev] -= s["r"][ev] * w2[self.event_time_of_event]
        s1, e1 = s["s1"], s["e1"]
        cross = s1.T @ (e1 * (s["q1"] * v)[:, None])
        outer = (
            s1.T @ (s1 * (s["q0"] * v)[:, None])
            - cross
            - cross.T
            + e1.T @ (e1 * (s["q2"] * v)[:, None])
        )
        info = x.T @ (x * row_weight[:, None]) - outer
        return (info + info.T) / 2

    def score_residuals(self, x, s):
        """Per-row score residuals, sorted order, as R ``residuals(fit, "score")``.

        Parameters
        ----------
        x : ndarray, shape (n, p)
            Covariates (sorted, centred).
        s : dict
            Output of :meth:`sums` at the estimate.

        Returns
        -------
        ndarray, shape (n, p)
            Unweighted residuals (R's ``weighted = FALSE``): for row k,
            delta_k (x_k - mean_l xbar_l(t_k)) - exp(eta_k) sum over its risk
            sets and slots of (1 - delta_kj f_l) dLambda_l (x_k - xbar_l), where
            dLambda_l = m_j / den_l and delta_kj = 1 if k is one of the tied events
            of t_j (R's ``coxscore2`` / ``agscore2``). Multiply by the case
            weights and the model covariance for R's weighted dfbeta.
        """
        j, f = self.slot_time, self.slot_fraction
        hazard = s["inv"] if self.mean_weight is None else s["inv"] * self.mean_weight[j]
        xbar = (s["s1"][j] - f[:, None] * s["e1"][j]) * s["inv"][:, None]
        starts = self.event_block_start
        haz = np.add.reduceat(hazard, starts)
        xhaz = np.add.reduceat(xbar * hazard[:, None], starts, axis=0)
        haz_f = np.add.reduceat(hazard * f, starts)
        xhaz_f = np.add.reduceat(xbar * (hazard * f)[:, None], starts, axis=0)
        cum_haz = np.concatenate([[0.0], np.cumsum(haz)])
        cum_xhaz = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(xhaz, axis=0)])
        upper, lower = self.n_risk_sets, self.risk_lower
        risk = s["risk"]
        resid = -risk[:, None] * (
            x * (cum_haz[upper] - cum_haz[lower])[:, None] - (cum_xhaz[upper] - cum_xhaz[lower])
        )
        ev = self.event_rows
        jj = self.event_time_of_event
        resid[ev] += x[ev] - self.block_mean(s)[jj]
        resid[ev] += risk[ev][:, None] * (x[ev] * haz_f[jj][:, None] - xhaz_f[jj])
        return resid


# --------------------------------------------------------------------------
# design matrix
# --------------------------------------------------------------------------
def _level_text(values):
    """Values as level strings; integer-valued numbers without a decimal point."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numbers = values.to_numpy(dtype=float)
        if np.all(numbers == np.round(numbers)):
            return numbers.astype(np.int64).astype(str)
    return values.astype(str).to_numpy()


def _main_effect_block(data, term, categorical, complete):
    """Columns of one main-effect term among the complete rows: (matrix, column dicts)."""
    values = data[term]
    if term in categorical:
        levels = [str(v) for v in categorical[term]]
        if len(levels) < 2 or len(set(levels)) != len(levels):
            raise ValueError(f"{term}: need >= 2 distinct levels, got {levels}")
        text = _level_text(values[complete])
        bad = ~np.isin(text, levels)
        if bad.any():
            raise ValueError(f"{term}: value {text[bad][0]!r} is not among the levels {levels}")
        block = np.column_stack([(text == level).astype(float) for level in levels[1:]])
        columns = [
            {"term": term, "column": f"{term}{level}", "level": level, "reference": levels[0]}
            for level in levels[1:]
        ]
        return block, columns
    if values.dtype == bool:
        values = values.astype(float)
    if not pd.api.types.is_numeric_dtype(values):
        raise ValueError(f"{term}: non-numeric column; list its levels in `categorical`")
    block = values[complete].to_numpy(dtype=float)[:, None]
    return block, [{"term": term, "column": term, "level": "", "reference": ""}]


def _interaction_block(parts):
    """Products of the component blocks, the first component's columns varying fastest (R)."""
    block, columns = parts[0]
    for next_block, next_columns in parts[1:]:
        block = np.column_stack(
            [
                block[:, a] * next_block[:, b]
                for b in range(next_block.shape[1])
                for a in range(block.shape[1])
            ]
        )
        columns = [
            {
                "column": f"{ca['column']}:{cb['column']}",
                "level": ":".join(v for v in (ca["level"], cb["level"]) if v),
                "reference": ":".join(v for v in (ca["reference"], cb["reference"]) if v),
            }
            for cb in next_columns
            for ca in columns
        ]
    return block, columns


def term_components(term):
    """Columns a model term reads: ``"a:b"`` -> ``["a", "b"]``, ``"age"`` -> ``["age"]``."""
    parts = [p.strip() for p in str(term).split(":")]
    if any(not p for p in parts) or len(set(parts)) != len(parts):
        raise ValueError(f"invalid term {term!r}: use 'a' or an interaction 'a:b'")
    return parts


def design_matrix(data, terms, categorical=None):
    """R-style model matrix (no intercept) and the complete-case mask.

    Parameters
    ----------
    data : DataFrame
        One row per patient.
    terms : list of str
        Model terms, in order: a column name, or an interaction ``"a:b"``
        (``"a:b:c"``, ...) of columns, giving the products of the components'
        columns, named as R does (``horThyes:menostatPre``, ``horThyes:age``,
        ``age:pnodes``), the first component's levels varying fastest.
    categorical : dict, optional
        Column -> list of levels, reference first. Each non-reference level
        becomes a 0/1 column named ``f"{term}{level}"`` (R's naming, e.g.
        ``tgradeII``). Values are matched as strings (integer-valued numbers
        as "1", not "1.0"). Entries for columns not used by `terms` are
        ignored.

    Returns
    -------
    x : ndarray, shape (n_complete, p)
    columns : list of dict
        Per column: ``term`` (the model term, e.g. ``"horTh:menostat"``),
        ``column``, ``level`` and ``reference`` (for an interaction, the
        components' levels and reference levels joined by ":", numeric
        components contributing nothing).
    complete : ndarray of bool, shape (len(data),)
        Rows without a missing value in any column a term reads.

    Notes
    -----
    Factors in an interaction are always coded by their reference-level
    contrasts (treatment coding). R codes them the same way when the
    interaction's main effects are also in the model (``a * b``); for an
    interaction without its main effects R switches to a fuller coding, which
    is not reproduced here.
    """
    categorical = categorical or {}
    used = []
    for term in terms:
        for part in term_components(term):
            if part not in data.columns:
                raise ValueError(f"term {part!r} is not a column of the data")
            if part not in used:
                used.append(part)
    categorical = {k: v for k, v in categorical.items() if k in used}
    complete = np.ones(len(data), dtype=bool)
    for column in used:
        complete &= data[column].notna().to_numpy()
    blocks, columns, cache = [], [], {}
    for term in terms:
        parts = []
        for part in term_components(term):
            if part not in cache:
                cache[part] = _main_effect_block(data, part, categorical, complete)
            parts.append(cache[part])
        block, term_columns = _interaction_block(parts)
        blocks.append(block)
        columns.extend({"term": term, **c} for c in term_columns)
    x = np.column_stack(blocks) if blocks else np.zeros((int(complete.sum()), 0))
    return x, columns, complete


def linear_predictor(x, beta, means):
    """(x - means) beta, summed column by column so equal rows give equal values."""
    eta = np.zeros(x.shape[0])
    for k in range(x.shape[1]):
        eta += (x[:, k] - means[k]) * beta[k]
    return eta


# --------------------------------------------------------------------------
# concordance
# --------------------------------------------------------------------------
def _pair_counts_few_values(a, ev, n_rank):
    """Per-value suffix counts: pairs (event i, later j) by rank order, O(n K)."""
    ev_pos = np.flatnonzero(ev)
    a_ev = a[ev_pos]
    less = equal = total = 0
    for v in range(n_rank):
        later = np.cumsum((a == v)[::-1])[::-1]  # count of value v at positions >= q
        later = np.append(later, 0)[ev_pos + 1]  # strictly after each event
        total += int(later.sum())
        less += int(later[a_ev > v].sum())
        equal += int(later[a_ev == v].sum())
    return less, equal, total - less - equal


def _pair_counts_merge(a, ev, n_rank):
    """Bottom-up merge over positions, O(n log^2 n) numpy, sorted needles."""
    n = a.size
    ev_pos = np.flatnonzero(ev)
    later = int((n - 1 - ev_pos).sum())  # all (event, later position) pairs
    # equal risk: within each rank group (ordered by position), later members
    by_rank = np.argsort(a, kind="stable")
    group_end = np.searchsorted(a[by_rank], a[by_rank], side="right")
    later_same = np.empty(n, dtype=np.int64)
    later_same[by_rank] = group_end - np.arange(n) - 1
    equal = int(later_same[ev_pos].sum())
    bits = max(int(n_rank - 1).bit_length(), 1)
    low_mask = (1 << (bits + 1)) - 1
    # encoded key: segment | rank | is_event; the segment is the position at the first level
    keys = (((np.arange(n, dtype=np.int64) << bits) | a) << 1) | ev.astype(np.int64)
    less = 0
    half = 1
    while half < n:
        seg = keys >> (bits + 1)
        low = keys & low_mask
        query = np.flatnonzero((low & 1).astype(bool) & ((seg & 1) == 0))
        right = seg[query] + 1
        has_partner = right * half < n
        query, right = query[has_partner], right[has_partner]
        target = (right << (bits + 1)) | (low[query] & ~1)  # nondecreasing: fast searchsorted
        less += int((np.searchsorted(keys, target, side="left") - right * half).sum())
        # next level: each segment merges with its neighbour (two sorted runs)
        keys = np.sort(((seg >> 1) << (bits + 1)) | low, kind="stable")
        half *= 2
    return less, equal, later - less - equal


def concordance_counts(time, event, risk):
    """Harrell's concordance pair counts, as R ``concordance()`` for coxph.

    A pair is comparable when the shorter time is an event; a censoring tied
    with an event time counts as the longer time; two events at the same
    time are not comparable. Concordant: the earlier event has the higher
    `risk`; pairs tied in `risk` count 1/2.

    Parameters
    ----------
    time, event : array_like
        Follow-up times and 0/1 event indicators.
    risk : array_like of float
        Predicted risk (e.g. the Cox linear predictor); higher = worse.
        Ties are exact equality.

    Returns
    -------
    dict
        ``concordant``, ``discordant``, ``tied_risk`` (int pair counts) and
        ``concordance`` = (concordant + tied_risk / 2) / all three.

    Notes
    -----
    The data are ordered by time (events before censorings at a tied time),
    so each event's comparable partners are exactly the later positions
    outside its own tied-event block. Counting "later and lower / equal /
    higher risk" is done per distinct risk value when there are few of them
    (O(n K)), else by a bottom-up merge over positions with ``searchsorted``
    (O(n log^2 n)); pairs of tied events are then removed in closed form.
    """
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=np.int64)
    _, rank = np.unique(np.asarray(risk, dtype=float), return_inverse=True)
    rank = rank.astype(np.int64).ravel()
    n_rank = int(rank.max()) + 1 if rank.size else 1
    # time ascending; events before censorings; within tied events, risk descending
    _, time_rank = np.unique(time, return_inverse=True)
    key = (time_rank.ravel().astype(np.int64) * 2 + (1 - event)) * n_rank + (n_rank - 1 - rank)
    order = np.argsort(key, kind="stable")
    a = rank[order]
    ev = event[order] == 1
    if n_rank <= 32:
        less, equal, greater = _pair_counts_few_values(a, ev, n_rank)
    else:
        less, equal, greater = _pair_counts_merge(a, ev, n_rank)
    # pairs of events tied in time were counted as "earlier event, lower or equal risk"
    t_ev = time[order][ev]
    a_ev = a[ev]
    block = np.concatenate([[True], t_ev[1:] != t_ev[:-1]]) if t_ev.size else t_ev.astype(bool)
    d = np.diff(np.append(np.flatnonzero(block), t_ev.size))
    both = block | np.concatenate([[True], a_ev[1:] != a_ev[:-1]]) if t_ev.size else block
    m = np.diff(np.append(np.flatnonzero(both), t_ev.size))
    tied_time = int((d * (d - 1) // 2).sum())
    tied_both = int((m * (m - 1) // 2).sum())
    equal -= tied_both
    less -= tied_time - tied_both
    total = less + greater + equal
    c = (less + equal / 2) / total if total > 0 else np.nan
    return {"concordant": less, "discordant": greater, "tied_risk": equal, "concordance": c}


def _suffix_weight(point_key, point_group, point_weight, query_key, query_group):
    """Sum of point weights with group == query group and key >= query key, per query."""
    span = int(max(point_key.max(initial=0), query_key.max(initial=0))) + 2
    composite = point_group * span + point_key
    order = np.argsort(composite, kind="stable")
    composite = composite[order]
    prefix = np.concatenate([[0.0], np.cumsum(point_weight[order])])
    lo = np.searchsorted(composite, query_group * span + query_key, side="left")
    hi = np.searchsorted(composite, (query_group + 1) * span, side="left")
    return prefix[hi] - prefix[lo]


def _dominance(point_key, point_rank, point_weight, query_key, query_rank):
    """Weighted counts of points with key >= query key and rank <, == the query's, and all.

    The "rank <" sum is split over the bits of the rank: for each bit b set in
    the query's rank, the points whose rank agrees above b and has 0 at b are
    exactly those below it in that prefix, so one grouped suffix sum per bit
    gives the count in O(n log n log K) numpy work.
    """
    zeros = np.zeros(query_key.size, dtype=np.int64)
    total = _suffix_weight(point_key, np.zeros_like(point_key), point_weight, query_key, zeros)
    equal = _suffix_weight(point_key, point_rank, point_weight, query_key, query_rank)
    less = np.zeros(query_key.size)
    n_bits = int(max(point_rank.max(initial=0), query_rank.max(initial=0))).bit_length()
    for bit in range(n_bits):
        has_bit = ((query_rank >> bit) & 1).astype(bool)
        if not has_bit.any():
            continue
        less[has_bit] += _suffix_weight(
            point_key,
            point_rank >> bit,
            point_weight,
            query_key[has_bit],
            (query_rank[has_bit] >> bit) - 1,
        )
    return less, equal, total


def concordance_general(time, event, risk, entry=None, strata=None, weights=None):
    """Harrell's concordance with delayed entry, strata and case weights, as R ``coxph``.

    R's ``concordancefit`` (``timewt = "n"``, as printed by ``coxph``): event
    i is compared with every row j of its stratum at risk at t_i (entry_j < t_i
    and exit_j > t_i, or exit_j = t_i censored); events tied in time are not
    compared. A pair counts with weight w_i w_j; concordant when the earlier
    event has the higher `risk`, risk ties count 1/2.

    Parameters
    ----------
    time, event : array_like
        Exit times and 0/1 event indicators.
    risk : array_like of float
        Predicted risk (the Cox linear predictor); ties are exact equality.
    entry : array_like of float, optional
        Entry times (entry < time).
    strata : array_like of int, optional
        Stratum codes; pairs are formed within a stratum.
    weights : array_like of float, optional
        Case weights (default 1).

    Returns
    -------
    dict
        ``concordant``, ``discordant``, ``tied_risk`` (weighted pair sums,
        float) and ``concordance``.

    Notes
    -----
    Comparable partners of event i = rows of the stratum with exit >= t_i,
    minus rows with entry >= t_i, minus the events tied with i (itself
    included); each set's weighted counts below / equal to / above i's risk
    are suffix sums over (stratum, time) keys, found by :func:`_dominance`.
    With none of `entry`, `strata`, `weights`, :func:`concordance_counts`
    gives the same numbers as integers.
    """
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=np.int64)
    n = time.size
    stratum = np.zeros(n, np.int64) if strata is None else np.asarray(strata, np.int64)
    weight = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    _, rank = np.unique(np.asarray(risk, dtype=float), return_inverse=True)
    rank = rank.astype(np.int64).ravel()
    values = time if entry is None else np.concatenate([time, np.asarray(entry, float)])
    unique_values = np.unique(values)
    width = unique_values.size + 1
    exit_key = stratum * width + 1 + np.searchsorted(unique_values, time)
    ev = np.flatnonzero(event == 1)
    q_key, q_rank, q_weight = exit_key[ev], rank[ev], weight[ev]
    q_end = (stratum[ev] + 1) * width

    both_key = np.concatenate([q_key, q_end])
    both_rank = np.concatenate([q_rank, q_rank])
    m = q_key.size

    def partners(point_key):
        # rows of the stratum with key >= the event's, minus those beyond the stratum's end
        counts = _dominance(point_key, rank, weight, both_key, both_rank)
        return [c[:m] - c[m:] for c in counts]

    less, equal, total = partners(exit_key)
    if entry is not None:
        entry_key = stratum * width + 1 + np.searchsorted(unique_values, np.asarray(entry, float))
        late = partners(entry_key)
        less, equal, total = (a - b for a, b in zip((less, equal, total), late, strict=True))
    # events tied with i in (stratum, time), i included
    block = np.unique(q_key, return_inverse=True)[1].ravel().astype(np.int64)
    tied_all = _suffix_weight(np.zeros_like(block), block, q_weight, np.zeros_like(block), block)
    key_rank = q_rank + 1
    tied_equal = _suffix_weight(key_rank, block, q_weight, key_rank, block) - _suffix_weight(
        key_rank, block, q_weight, key_rank + 1, block
    )
    tied_less = tied_all - _suffix_weight(key_rank, block, q_weight, key_rank, block)
    less = less - tied_less
    equal = equal - tied_equal
    greater = total - tied_all - less - equal
    concordant = float(q_weight @ less)
    discordant = float(q_weight @ greater)
    tied = float(q_weight @ equal)
    pairs = concordant + discordant + tied
    c = (concordant + tied / 2) / pairs if pairs > 0 else np.nan
    return {"concordant": concordant, "discordant": discordant, "tied_risk": tied, "concordance": c}


# --------------------------------------------------------------------------
# the fit
# --------------------------------------------------------------------------
@dataclass
class CoxResult:
    """A fitted Cox model (R ``coxph`` + ``summary``).

    Attributes
    ----------
    table : DataFrame
        One row per coefficient: ``term, column, level, reference, coef, se,
        hr, hr_lower, hr_upper, z, p`` (Wald, 95% limits). A robust fit adds
        ``se_robust`` after ``se``, and z, p and the limits use it (R's
        ``summary``).
    loglik, loglik_null : float
        Log partial likelihood at the estimate and at beta = 0.
    lr_chisq, lr_df, lr_p : float, int, float
        Likelihood-ratio test.
    wald_chisq, wald_p, score_chisq, score_p : float
        Wald and score (log-rank) tests on ``lr_df`` degrees of freedom; the
        Wald test uses the robust covariance in a robust fit (as R).
    concordance : float
        Harrell's C (R ``concordance``; within strata, at-risk pairs under
        delayed entry, pairs weighted w_i w_j).
    n, events, n_excluded : int
        Complete cases used, their events (unweighted count, as R's
        ``nevent``), rows dropped for missing values.
    ties : str
        "efron" or "breslow".
    terms : list of str
        Model terms in order.
    columns : list of str
        Coefficient (design) column names.
    column_term : dict
        Column name -> term.
    design : ndarray, shape (n, p)
        Uncentred design matrix of the complete cases (data order).
    time, event : ndarray, shape (n,)
        Complete-case outcomes (data order).
    beta : ndarray, shape (p,)
    covariance : ndarray, shape (p, p)
        Inverse information at ``beta``.
    means : ndarray, shape (p,)
        Column means used for centring.
    iterations : int
    converged : bool
    entry, weights : ndarray, shape (n,), or None
        Entry times and case weights of the complete cases (data order).
    strata : ndarray of int, shape (n,), or None
        Stratum code of each complete case (index into ``strata_levels``).
    strata_levels : list of str, or None
        Stratum labels, R style (``"tgrade=II"``, ``"a=1, b=x"``).
    strata_columns : list of str, or None
        The strata columns.
    robust_covariance : ndarray, shape (p, p), or None
        Robust sandwich covariance D'D (D = weighted dfbeta residuals), None
        unless ``robust=True``.
    robust_score_chisq, robust_score_p : float
        R's robust score test (``rscore``), NaN unless ``robust=True``.
    """

    table: pd.DataFrame
    loglik: float
    loglik_null: float
    lr_chisq: float
    lr_df: int
    lr_p: float
    wald_chisq: float
    wald_p: float
    score_chisq: float
    score_p: float
    concordance: float
    n: int
    events: int
    n_excluded: int
    ties: str
    terms: list
    columns: list
    column_term: dict
    design: np.ndarray = field(repr=False)
    time: np.ndarray = field(repr=False)
    event: np.ndarray = field(repr=False)
    beta: np.ndarray = field(repr=False)
    covariance: np.ndarray = field(repr=False)
    means: np.ndarray = field(repr=False)
    iterations: int = 0
    converged: bool = True
    entry: np.ndarray | None = field(default=None, repr=False)
    weights: np.ndarray | None = field(default=None, repr=False)
    strata: np.ndarray | None = field(default=None, repr=False)
    strata_levels: list | None = None
    strata_columns: list | None = None
    robust_covariance: np.ndarray | None = field(default=None, repr=False)
    robust_score_chisq: float = np.nan
    robust_score_p: float = np.nan

    @property
    def linear_predictor(self):
        """Centred linear predictor (x - means) beta, data order (R's ``linear.predictors``)."""
        return linear_predictor(self.design, self.beta, self.means)


def _solve_psd(info, vector):
    """Solve info @ x = vector for a positive-definite information matrix."""
    try:
        c = np.linalg.cholesky(info)
    except np.linalg.LinAlgError as err:
        raise ValueError(
            "the Cox information matrix is singular: a covariate is constant or "
            "collinear with others among the complete cases"
        ) from err
    return np.linalg.solve(c.T, np.linalg.solve(c, vector))


def _strata_codes(data, strata):
    """Stratum code per row (NaN-aware), R-style labels; sorted by the columns' order."""
    frame = data[list(strata)]
    missing = frame.isna().any(axis=1).to_numpy()
    codes = np.full(len(data), -1, dtype=np.int64)
    labels = []
    if (~missing).any():
        keys = frame[~missing]
        grouped = keys.groupby(list(strata), sort=True, observed=True)
        codes[~missing] = grouped.ngroup().to_numpy()
        for key in grouped.groups:
            key = key if isinstance(key, tuple) else (key,)
            labels.append(
                ", ".join(
                    f"{c}={_level_text(pd.Series([v]))[0]}"
                    for c, v in zip(strata, key, strict=True)
                )
            )
    return codes, missing, labels


def fit_cox(
    data,
    duration_col,
    event_col,
    terms,
    categorical=None,
    ties="efron",
    max_iter=20,
    eps=1e-9,
    conf_level=0.95,
    concordance=True,
    entry_col=None,
    weights_col=None,
    robust=False,
    strata=None,
):
    """Fit a Cox proportional-hazards model, as R ``coxph``.

    Parameters
    ----------
    data : DataFrame
        One row per patient.
    duration_col : str
        Follow-up (exit) time column (any unit, e.g. months), >= 0.
    event_col : str
        Event indicator column (1 = event, 0 = censored).
    terms : list of str
        Model terms, in order: covariate columns, or interactions ``"a:b"``
        (see :func:`design_matrix`; ``["horTh", "menostat",
        "horTh:menostat"]`` is R's ``horTh * menostat``).
    categorical : dict, optional
        Column -> levels (reference first); dummy columns ``f"{term}{level}"``.
        Other terms must be numeric (bool counts as 0/1).
    ties : {"efron", "breslow"}
        Tie handling; R's default is Efron.
    max_iter : int
        Newton-Raphson iterations (R ``iter.max`` = 20).
    eps : float
        Convergence: relative change in log-likelihood (R ``eps`` = 1e-9).
    conf_level : float
        Level of the Wald limits of the hazard ratios.
    concordance : bool
        Compute Harrell's C (about 1 s per million patients with a
        continuous predictor; about 20 s with entry, strata or weights);
        False leaves ``concordance`` NaN.
    entry_col : str, optional
        Entry-time column (delayed entry / left truncation), R's
        ``Surv(entry, time, event)``: a row is at risk at t iff
        entry < t <= time. Entry must be >= 0 and < time.
    weights_col : str, optional
        Case-weight column (finite, > 0), R's ``weights =``.
    robust : bool
        Add R's robust sandwich variance (``robust = TRUE``, each row its own
        cluster): ``se_robust`` in the table, Wald z, p, limits and test on
        it. R makes this the default for non-integer weights; here it must
        be asked for.
    strata : list of str, optional
        Stratification columns (R's ``+ strata(a, b)``): separate baseline
        hazards, risk sets within each stratum. Not allowed as main-effect
        terms.

    Returns
    -------
    CoxResult

    Notes
    -----
    Complete cases only: rows with a missing duration, event, entry, weight,
    stratum or term value are dropped and counted in ``n_excluded`` (R's
    ``na.omit``).

    Written by hand because no Python library fits R's counting-process,
    weighted Efron and stratified Cox likelihood with R's robust variance to
    1e-6: lifelines' Efron with weights and its robust variance follow other
    conventions. The concordance is R's ``concordancefit`` (``timewt = "n"``),
    see :func:`concordance_general`.
    """
    if not terms:
        raise ValueError("a Cox model needs at least one term")
    if len(set(terms)) != len(terms):
        raise ValueError(f"terms must be distinct; got {terms}")
    for col in (duration_col, event_col, entry_col, weights_col, *(strata or [])):
        if col is not None and col not in data.columns:
            raise ValueError(f"column {col!r} is not in the data")
    strata = list(strata) if strata else None
    if strata is not None:
        clash = [c for c in strata if c in terms]
        if clash:
            raise ValueError(
                f"strata column(s) {clash} are also model terms; a strata variable "
                "leaves the covariate list"
            )
        if len(set(strata)) != len(strata):
            raise ValueError(f"strata must be distinct; got {strata}")
    x_all, columns, complete = design_matrix(data, list(terms), categorical)
    outcome_ok = data[duration_col].notna().to_numpy() & data[event_col].notna().to_numpy()
    for col in (entry_col, weights_col):
        if col is not None:
            outcome_ok &= data[col].notna().to_numpy()
    if strata is not None:
        stratum_all, stratum_missing, strata_levels = _strata_codes(data, strata)
        outcome_ok &= ~stratum_missing
    keep_rows = outcome_ok[complete]
    x = x_all[keep_rows]
    complete &= outcome_ok
    n_excluded = int((~complete).sum())
    time = data.loc[complete, duration_col].to_numpy(dtype=float)
    event_raw = data.loc[complete, event_col].to_numpy(dtype=float)
    if np.any(~np.isfinite(time)) or np.any(time < 0):
        raise ValueError(f"{duration_col}: times must be finite and >= 0")
    if not np.all((event_raw == 0) | (event_raw == 1)):
        raise ValueError(f"{event_col}: events must be 0 or 1")
    entry = None
    if entry_col is not None:
        entry = data.loc[complete, entry_col].to_numpy(dtype=float)
        bad = ~np.isfinite(entry) | (entry < 0)
        if bad.any():
            raise ValueError(
                f"{entry_col}: entry times must be finite and >= 0; {int(bad.sum())} row(s) are not"
            )
        late = entry >= time
        if late.any():
            raise ValueError(
                f"{entry_col}: entry must be < {duration_col} (R's Surv(entry, time, event) "
                f"refuses entry >= time); {int(late.sum())} row(s) have entry >= time"
            )
    weights = None
    if weights_col is not None:
        weights = data.loc[complete, weights_col].to_numpy(dtype=float)
        bad = ~np.isfinite(weights) | (weights <= 0)
        if bad.any():
            raise ValueError(
                f"{weights_col}: case weights must be finite and > 0; {int(bad.sum())} row(s) are not"
            )
    stratum = None
    if strata is not None:
        used_codes, stratum = np.unique(stratum_all[complete], return_inverse=True)
        stratum = stratum.ravel().astype(np.int64)
        strata_levels = [strata_levels[k] for k in used_codes]
    event = event_raw.astype(np.int64)
    n, p = x.shape
    if event.sum() == 0:
        raise ValueError("no events among the complete cases: the Cox model is undefined")

    means = x.mean(axis=0)
    risk_sets = RiskSets(time, event, ties, entry=entry, strata=stratum, weights=weights)
    xs = (x - means)[risk_sets.order]

    def evaluate(beta):
        eta = xs @ beta
        s = risk_sets.sums(xs, eta)
        return s["loglik"], risk_sets.score(xs, s), risk_sets.information(xs, s)

    beta = np.zeros(p)
    loglik, u, info = evaluate(beta)
    loglik_null = loglik
    step = _solve_psd(info, u)
    score_chisq = float(u @ step)
    new_beta = beta + step
    halving = False
    converged = False
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007
        new_loglik, new_u, new_info = evaluate(new_beta)
        if np.isfinite(new_loglik) and abs(1 - loglik / new_loglik) <= eps and not halving:
            beta, loglik, u, info = new_beta, new_loglik, new_u, new_info
            converged = True
            break
        if iterations == max_iter:
            break
        if not np.isfinite(new_loglik) or new_loglik < loglik:
            halving = True
            new_beta = (new_beta + beta) / 2
        else:
            halving = False
            beta, loglik, u, info = new_beta, new_loglik, new_u, new_info
            new_beta = beta + _solve_psd(info, u)
    if not converged:
        warnings.warn(
            f"Cox fit did not converge in {max_iter} iterations; a coefficient may be infinite",
            RuntimeWarning,
            stacklevel=2,
        )
    covariance = _solve_psd(info, np.eye(p))
    covariance = (covariance + covariance.T) / 2
    if converged:
        # R: the step still left is large relative to beta -> beta may be infinite
        remaining = np.abs(covariance @ u)
        infinite = (remaining > eps) & (remaining > np.sqrt(eps) * np.abs(beta))
        if infinite.any():
            names = [columns[k]["column"] for k in np.flatnonzero(infinite)]
            warnings.warn(
                f"Cox loglik converged before {names}; the coefficient may be infinite",
                RuntimeWarning,
                stacklevel=2,
            )
    se = np.sqrt(np.diag(covariance))
    table = pd.DataFrame(columns)
    table["coef"] = beta
    table["se"] = se
    robust_covariance = None
    robust_score = np.nan
    if robust:
        robust_covariance, robust_score = _robust_variance(risk_sets, xs, beta, covariance)
        se_wald = np.sqrt(np.diag(robust_covariance))
        table["se_robust"] = se_wald
    else:
        se_wald = se
    z = beta / se_wald
    zq = norm_ppf(1 - (1 - conf_level) / 2)
    with np.errstate(over="ignore"):
        table["hr"] = np.exp(beta)
        table["hr_lower"] = np.exp(beta - zq * se_wald)
        table["hr_upper"] = np.exp(beta + zq * se_wald)
    table["z"] = z
    table["p"] = 2 * norm_sf(np.abs(z))
    lr_chisq = 2 * (loglik - loglik_null)
    wald_cov = covariance if robust_covariance is None else robust_covariance
    wald_chisq = float(beta @ _solve_psd(wald_cov, beta))
    if concordance:
        eta = linear_predictor(x, beta, means)
        if entry is None and stratum is None and weights is None:
            conc = concordance_counts(time, event, eta)["concordance"]
        else:
            conc = concordance_general(time, event, eta, entry, stratum, weights)["concordance"]
    else:
        conc = np.nan
    return CoxResult(
        table=table,
        loglik=loglik,
        loglik_null=loglik_null,
        lr_chisq=float(lr_chisq),
        lr_df=p,
        lr_p=float(chi2_sf(lr_chisq, p)),
        wald_chisq=wald_chisq,
        wald_p=float(chi2_sf(wald_chisq, p)),
        score_chisq=score_chisq,
        score_p=float(chi2_sf(score_chisq, p)),
        concordance=float(conc),
        n=int(n),
        events=int(event.sum()),
        n_excluded=n_excluded,
        ties=ties,
        terms=list(terms),
        columns=[c["column"] for c in columns],
        column_term={c["column"]: c["term"] for c in columns},
        design=x,
        time=time,
        event=event,
        beta=beta,
        covariance=covariance,
        means=means,
        iterations=iterations,
        converged=converged,
        entry=entry,
        weights=weights,
        strata=stratum,
        strata_levels=strata_levels if strata is not None else None,
        strata_columns=strata,
        robust_covariance=robust_covariance,
        robust_score_chisq=float(robust_score),
        robust_score_p=float(chi2_sf(robust_score, p)) if robust else np.nan,
    )


def _robust_variance(risk_sets, xs, beta, covariance):
    """R's robust variance D'D and robust score test (``robust = TRUE``, no cluster).

    D = weighted dfbeta residuals: score residuals (:meth:`RiskSets.score_residuals`)
    times the case weight, times the model-based covariance. The robust score
    test uses the weighted score residuals at beta = 0: u' (U0'U0)^-1 u.
    """
    w = 1.0 if risk_sets.weights is None else risk_sets.weights[:, None]
    resid = risk_sets.score_residuals(xs, risk_sets.sums(xs, xs @ beta)) * w
    dfbeta = resid @ covariance
    robust_covariance = dfbeta.T @ dfbeta
    robust_covariance = (robust_covariance + robust_covariance.T) / 2
    zero = np.zeros(xs.shape[0])
    resid0 = risk_sets.score_residuals(xs, risk_sets.sums(xs, zero)) * w
    u = resid0.sum(axis=0)
    robust_score = float(u @ _solve_psd(resid0.T @ resid0, u))
    return robust_covariance, robust_score
