"""Replicate-level inference on effective doses (two-stage analysis).

Each biological replicate (experiment, ``replicate`` column) of a curve is
fitted separately (``fits_by_replicate.csv``, drc-exact fits); the
comparison of two conditions of one cell line is then made on the log of
the replicates' relative EDs, so that the unit of inference is the
replicate, not the well. The well-level joint fit (drc ``EDcomp``) treats
every well as independent and its df counts wells (pseudo-replication);
it is kept as secondary ``technical_*`` columns by
:func:`sepher.doseresponse.stage.compare_conditions`.

Tests (:func:`compare_log_ed`), on log ED, ratio = exp(mean difference):

- ``paired t``: the two conditions share replicate ids (same day, same cell
  passage): t test of the per-replicate differences on the shared ids
  (as :func:`scipy.stats.ttest_rel`); unshared ids are left out (``n_pairs``);
- ``Welch t``: no shared id (or fewer than two): Welch's unequal-variance t
  test with Welch-Satterthwaite df (:func:`scipy.stats.ttest_ind`,
  ``equal_var=False``);
- ``linear mixed model`` (``inference="mixed"``): log ED on condition with a
  random replicate intercept (:class:`statsmodels.regression.mixed_linear_model.MixedLM`,
  REML), the two-stage approximation of a nonlinear mixed model such as R
  medrc's ``medrm``. The t reference uses the between-within df ``N - G - 1``
  (N EDs, G replicates; SAS ``DDFM=BW``), which gives the paired t test's
  ``n - 1`` in a complete paired design. When no replicate id carries both
  conditions the random intercept is confounded with the residual and not
  identifiable: Welch's test is run instead and ``test`` says so (likewise
  with a single shared id, where the within-replicate df is 0).

  In a complete paired design with a positive REML replicate variance the
  model reproduces the paired t test; when that variance is estimated at 0
  (its boundary) the SE is the pooled residual one instead.

Every CI is t-based on the log scale (``conf_level``) and back-transformed.

References (tests/test_doseresponse_replicate.py): on R drc's ``spinach``
(3 bentazon vs 2 diuron assays, unpaired) the per-assay LL.3 ED50s and the
Welch test on their logs match R (drc 3.2-0, ``t.test``); R medrc's
nonlinear mixed model (``medrm``, ED50 ratio 8.8601) is a loose cross-check
only (the two-stage ratio is within 3 % of it), not an exact target: the
models differ (random b, d, e per assay vs one ED per assay).
Multiplicity (:func:`adjust_comparisons`): ``p_adjusted`` within each family
of comparisons across all cell lines (:func:`sepher.stats.adjust_pvalues`).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from sepher.stats import adjust_pvalues

__all__ = [
    "INFERENCE",
    "TESTS",
    "adjust_comparisons",
    "comparison_family",
    "compare_log_ed",
    "ed_column",
    "replicate_comparisons",
    "replicate_eds",
]

#: Values of ``doseresponse.inference``.
INFERENCE = ("replicate", "mixed", "technical")

#: What ran -> the ``test`` column.
TESTS = {
    "paired": "paired t",
    "welch": "Welch t",
    "mixed": "linear mixed model",
    "technical": "drc EDcomp, wells as units (technical)",
}

#: statsmodels MixedLM optimisers tried in turn (the first that converges is used).
MIXED_OPTIMISERS = ("bfgs", "powell", "nm", "lbfgs")

#: Columns of :func:`compare_log_ed`'s result, in table order.
RESULT_COLUMNS = (
    "test",
    "n_replicates_numerator",
    "n_replicates_denominator",
    "n_pairs",
    "ed_numerator",
    "ed_denominator",
    "ratio",
    "lower",
    "upper",
    "se_log",
    "t",
    "df",
    "p",
)


def ed_column(level: float) -> str:
    """Column of the relative ED at `level` percent in the fits tables (``ic50_rel`` for 50)."""
    return "ic50_rel" if float(level) == 50.0 else f"ed{float(level):g}"


def _bool(values) -> np.ndarray:
    """Booleans of a column read back from CSV (``True``/``False`` text or bool)."""
    series = pd.Series(values)
    if series.dtype == bool:
        return series.to_numpy()
    return series.astype(str).str.strip().str.lower().isin(["true", "1"]).to_numpy()


def replicate_eds(by_replicate: pd.DataFrame, *, drug=None, level: float = 50.0) -> pd.DataFrame:
    """Usable per-replicate relative EDs.

    Parameters
    ----------
    by_replicate : pandas.DataFrame
        ``fits_by_replicate.csv`` (:func:`sepher.doseresponse.stage.fit_curves`
        with ``by_replicate=True``): ``cell_line, condition, drug, replicate,
        converged`` and the ED column (``ic50_rel`` for 50, ``ed<level>``
        otherwise) with its ``_reached`` column.
    drug : str, optional
        Keep this drug's curves only.
    level : float
        Relative ED level, percent.

    Returns
    -------
    pandas.DataFrame
        ``cell_line, condition, replicate, ed, log_ed``: converged fits whose
        relative ED was reached (inside the tested doses), ED finite and > 0.

    Raises
    ------
    ValueError
        If the table has no column for `level`.
    """
    column = ed_column(level)
    columns = ["cell_line", "condition", "replicate", "ed", "log_ed"]
    if by_replicate.empty:
        return pd.DataFrame(columns=columns)
    if column not in by_replicate.columns:
        raise ValueError(
            f"fits_by_replicate has no column {column!r} for ED level {level:g} "
            "(doseresponse.ed_levels)"
        )
    table = by_replicate
    if drug is not None and "drug" in table.columns:
        table = table[table["drug"].astype(str) == str(drug)]
    ed = pd.to_numeric(table[column], errors="coerce").to_numpy(float)
    ok = np.isfinite(ed) & (ed > 0)
    if "converged" in table.columns:
        ok &= _bool(table["converged"])
    if f"{column}_reached" in table.columns:
        ok &= _bool(table[f"{column}_reached"])
    out = pd.DataFrame(
        {
            "cell_line": table["cell_line"].astype(str).to_numpy(),
            "condition": table["condition"].astype(str).to_numpy(),
            "replicate": table["replicate"].astype(str).to_numpy(),
            "ed": ed,
        }
    )[ok]
    out["log_ed"] = np.log(out["ed"].to_numpy(float))
    return out.reset_index(drop=True)[columns]


def _tq(conf_level: float, df: float) -> float:
    return float(stats.t.ppf(0.5 + conf_level / 2, df)) if np.isfinite(df) and df > 0 else np.nan


def _finish(out: dict, diff: float, se: float, df: float, conf_level: float) -> dict:
    """ratio, CI, t, p from a log difference, its SE and df."""
    tq = _tq(conf_level, df)
    valid = np.isfinite(diff) and np.isfinite(se) and se > 0 and np.isfinite(tq)
    t = diff / se if valid else np.nan
    out.update(
        ratio=float(np.exp(diff)) if np.isfinite(diff) else np.nan,
        lower=float(np.exp(diff - tq * se)) if valid else np.nan,
        upper=float(np.exp(diff + tq * se)) if valid else np.nan,
        se_log=float(se) if np.isfinite(se) else np.nan,
        t=float(t),
        df=float(df) if valid else np.nan,
        p=float(2 * stats.t.sf(abs(t), df)) if valid else np.nan,
    )
    return out


def _welch(a: np.ndarray, b: np.ndarray, conf_level: float, out: dict) -> dict:
    out.update(
        test=TESTS["welch"],
        n_pairs=0,
        ed_numerator=float(np.exp(a.mean())) if a.size else np.nan,
        ed_denominator=float(np.exp(b.mean())) if b.size else np.nan,
    )
    if a.size < 2 or b.size < 2:
        return _finish(out, a.mean() - b.mean() if a.size and b.size else np.nan, np.nan,
                       np.nan, conf_level)  # fmt: skip
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = np.sqrt(va + vb)
    with np.errstate(all="ignore"):
        df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    return _finish(out, a.mean() - b.mean(), se, df, conf_level)


def _paired(a: np.ndarray, b: np.ndarray, conf_level: float, out: dict) -> dict:
    d = a - b
    out.update(
        test=TESTS["paired"],
        n_pairs=int(d.size),
        ed_numerator=float(np.exp(a.mean())),
        ed_denominator=float(np.exp(b.mean())),
    )
    se = d.std(ddof=1) / np.sqrt(d.size)
    return _finish(out, d.mean(), se, d.size - 1, conf_level)


def _mixed(num: pd.Series, den: pd.Series, conf_level: float, out: dict) -> dict:
    """REML random-intercept model of log ED on condition (module docstring)."""
    import statsmodels.formula.api as smf

    data = pd.DataFrame(
        {
            "log_ed": np.concatenate([num.to_numpy(float), den.to_numpy(float)]),
            "numerator": np.r_[np.ones(num.size), np.zeros(den.size)],
            "replicate": np.concatenate([num.index.astype(str), den.index.astype(str)]),
        }
    )
    shared = num.index.intersection(den.index)
    n_groups = data["replicate"].nunique()
    out.update(
        test=TESTS["mixed"],
        n_pairs=int(shared.size),
        ed_numerator=float(np.exp(num.mean())),
        ed_denominator=float(np.exp(den.mean())),
    )
    df = len(data) - n_groups - 1
    diff, se = float(num.mean() - den.mean()), np.nan
    model = smf.mixedlm("log_ed ~ numerator", data, groups=data["replicate"])
    # tiny REML problems (2 EDs per replicate) can make one optimiser fail (a
    # singular matrix at a variance on its boundary): the first that converges wins
    for method in MIXED_OPTIMISERS:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit = model.fit(reml=True, method=[method])
        except (np.linalg.LinAlgError, ValueError):
            continue
        if fit.converged and np.isfinite(fit.bse_fe["numerator"]):
            diff, se = float(fit.fe_params["numerator"]), float(fit.bse_fe["numerator"])
            break
    return _finish(out, diff, se, df, conf_level)


def compare_log_ed(
    numerator: pd.Series,
    denominator: pd.Series,
    *,
    inference: str = "replicate",
    conf_level: float = 0.95,
) -> dict:
    """Ratio of two conditions' EDs from their replicates' log EDs.

    Parameters
    ----------
    numerator, denominator : pandas.Series
        Log EDs (natural log) indexed by replicate id, one value per id.
    inference : {"replicate", "mixed"}
        ``replicate``: paired t on the shared ids; ``mixed``: linear mixed
        model with a random replicate intercept. Either needs at least two
        replicate ids carrying both conditions (the within-replicate df is
        ``n_pairs - 1``); otherwise Welch t is run (module docstring).
    conf_level : float
        Level of the t-based CI of the ratio (log scale, back-transformed).

    Returns
    -------
    dict
        ``test`` (what ran: "paired t", "Welch t", "linear mixed model"),
        ``n_replicates_numerator, n_replicates_denominator`` (usable
        replicate EDs), ``n_pairs`` (shared ids used; 0 for Welch),
        ``ed_numerator, ed_denominator`` (geometric means of the replicate
        EDs the test used), ``ratio`` (exp of the mean log difference or of
        the model coefficient), ``lower, upper, se_log`` (SE of the log
        ratio), ``t, df, p`` (two-sided, ratio = 1). NaN where the test
        cannot be run (fewer than two replicates in a condition).
    """
    if inference not in ("replicate", "mixed"):
        raise ValueError(f"inference {inference!r}: expected 'replicate' or 'mixed'")
    num = numerator.groupby(numerator.index.astype(str)).mean()
    den = denominator.groupby(denominator.index.astype(str)).mean()
    out = {"n_replicates_numerator": int(num.size), "n_replicates_denominator": int(den.size)}
    shared = num.index.intersection(den.index).sort_values()
    if inference == "mixed" and shared.size >= 2:
        result = _mixed(num, den, conf_level, out)
    elif shared.size >= 2:
        result = _paired(num[shared].to_numpy(float), den[shared].to_numpy(float), conf_level, out)
    else:
        result = _welch(num.to_numpy(float), den.to_numpy(float), conf_level, out)
    return {key: result[key] for key in RESULT_COLUMNS}


def comparison_family(pair: dict, figure_conditions=()) -> str:
    """Family of a comparison for the multiplicity adjustment.

    The entry's own ``family`` if given; else ``"fig1"`` when both
    conditions are drawn in fig 1 (``doseresponse.figure_conditions``),
    ``"fig3"`` otherwise (the sequences of fig 3).
    """
    if pair.get("family"):
        return str(pair["family"])
    both = {pair["numerator"], pair["denominator"]} <= set(map(str, figure_conditions))
    return "fig1" if both else "fig3"


def replicate_comparisons(
    by_replicate: pd.DataFrame,
    comparisons,
    *,
    drug: str = "T-DM1",
    level: float = 50.0,
    inference: str = "replicate",
    conf_level: float = 0.95,
) -> pd.DataFrame:
    """Replicate-level ED ratios for each cell line and comparison.

    Parameters
    ----------
    by_replicate : pandas.DataFrame
        ``fits_by_replicate.csv`` (see :func:`replicate_eds`).
    comparisons : sequence of dict
        ``{"numerator": condition, "denominator": condition}``.
    drug : str
    level : float
        Relative ED level, percent.
    inference : {"replicate", "mixed"}
    conf_level : float

    Returns
    -------
    pandas.DataFrame
        ``cell_line, numerator, denominator`` and :func:`compare_log_ed`'s
        columns; one row per line where both conditions have a fit.
    """
    eds = replicate_eds(by_replicate, drug=drug, level=level)
    fitted = by_replicate
    if "drug" in fitted.columns:
        fitted = fitted[fitted["drug"].astype(str) == str(drug)]
    # curves with a per-replicate fit (usable or not): a pair is reported if both exist
    curves = set(
        zip(fitted["cell_line"].astype(str), fitted["condition"].astype(str), strict=True)
    ) if len(fitted) else set()  # fmt: skip
    rows = []
    for line in sorted({c[0] for c in curves}):
        of_line = eds[eds["cell_line"] == line]
        for pair in comparisons:
            num, den = str(pair["numerator"]), str(pair["denominator"])
            if (line, num) not in curves or (line, den) not in curves:
                continue
            a = of_line[of_line["condition"] == num].set_index("replicate")["log_ed"]
            b = of_line[of_line["condition"] == den].set_index("replicate")["log_ed"]
            result = compare_log_ed(a, b, inference=inference, conf_level=conf_level)
            rows.append({"cell_line": line, "numerator": num, "denominator": den, **result})
    return pd.DataFrame(rows, columns=["cell_line", "numerator", "denominator",
                                       *RESULT_COLUMNS])  # fmt: skip


def adjust_comparisons(comparisons: pd.DataFrame, method: str = "holm") -> pd.DataFrame:
    """``p_adjusted`` within each ``family`` across all cell lines.

    Lines are split across shards, so the workflow adjusts the joined
    table (rule doseresponse_join); the result does not depend on the
    sharding.

    Parameters
    ----------
    comparisons : pandas.DataFrame
        ``comparisons.csv`` rows (``family``, ``p``).
    method : {"holm", "bh", "none"}
        :func:`sepher.stats.adjust_pvalues`.

    Returns
    -------
    pandas.DataFrame
        A copy with ``p_adjusted`` and ``multiplicity`` (the method) set.
    """
    out = comparisons.copy()
    adjusted = np.full(len(out), np.nan)
    if len(out):
        p = pd.to_numeric(out["p"], errors="coerce").to_numpy(float)
        family = out["family"].astype(str).to_numpy()
        for name in pd.unique(family):
            rows = family == name
            adjusted[rows] = adjust_pvalues(p[rows], method)
    out["p_adjusted"] = adjusted
    out["multiplicity"] = method
    return out
