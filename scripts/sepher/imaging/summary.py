"""From cells to conditions: hierarchical summaries and comparisons.

Cells of one image are not independent replicates; neither are images of
one well. Values are summarised cell -> image (median of cells) -> biological
replicate (mean of images) -> condition (mean of replicates, t-based 95 % CI
over replicates), and conditions are compared on replicate means (Lord et
al. 2020, "SuperPlots", J Cell Biol 219:e202001064).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from sepher.imaging.qc import CELL_FLAGS

__all__ = ["aggregate", "compare_conditions"]

DEFAULT_VALUES = (
    "her2_mean_membrane",
    "her2_mean_nucleus",
    "her2_mean_cytoplasm",
    "membrane_completeness",
    "nuclear_fraction",
)


def aggregate(
    cells_df: pd.DataFrame,
    *,
    values=DEFAULT_VALUES,
    image_col: str = "image_id",
    replicate_col: str = "replicate",
    condition_cols=("cell_line", "condition"),
    exclude_flags=CELL_FLAGS,
    confidence: float = 0.95,
) -> dict[str, pd.DataFrame]:
    """Summarise per-cell values per image, replicate and condition.

    Parameters
    ----------
    cells_df : DataFrame
        One row per cell with ``image_col``, ``replicate_col``,
        ``condition_cols`` and the ``values`` columns.
    values : sequence of str
        Columns to summarise (those absent are skipped).
    image_col, replicate_col : str
        Identify images and biological replicates.
    condition_cols : sequence of str
        Columns that together define a condition.
    exclude_flags : sequence of str
        Boolean flag columns; flagged cells are left out (count reported).
    confidence : float, default 0.95
        Level of the t-interval over replicates.

    Returns
    -------
    dict of str to DataFrame
        ``"image"``: median of cells per image, with ``n_cells`` (kept),
        ``n_cells_excluded`` and ``n_cells_<flag>`` per exclusion flag (a
        cell may carry several flags); ``"replicate"``: mean of image
        medians, with ``n_images`` and the cell counts summed;
        ``"condition"``: per value ``{v}_mean``, ``{v}_sd``, ``{v}_ci_low``,
        ``{v}_ci_high`` over replicates, ``n_replicates`` (CI NaN with fewer
        than two replicates), ``n_images`` and the cell counts summed, and
        ``fraction_<flag>`` = ``n_cells_<flag>`` over all detected cells
        (kept + excluded).
    """
    per_image = aggregate_images(
        cells_df,
        values=values,
        image_col=image_col,
        replicate_col=replicate_col,
        condition_cols=condition_cols,
        exclude_flags=exclude_flags,
    )
    values = [v for v in values if v in cells_df.columns]
    levels = aggregate_replicates(
        per_image,
        values=values,
        replicate_col=replicate_col,
        condition_cols=condition_cols,
        confidence=confidence,
    )
    return {"image": per_image, **levels}


def aggregate_images(
    cells_df: pd.DataFrame,
    *,
    values=DEFAULT_VALUES,
    image_col: str = "image_id",
    replicate_col: str = "replicate",
    condition_cols=("cell_line", "condition"),
    exclude_flags=CELL_FLAGS,
) -> pd.DataFrame:
    """Per-image level of :func:`aggregate` (median of kept cells, counts).

    Images are independent, so cells may come a batch of images at a time.
    """
    cond = list(condition_cols)
    values = [v for v in values if v in cells_df.columns]
    flags = [f for f in exclude_flags if f in cells_df.columns]
    excluded = (
        cells_df[flags].astype(bool).any(axis=1)
        if flags
        else pd.Series(False, index=cells_df.index)
    )
    keys = cond + [replicate_col, image_col]
    kept = cells_df[~excluded]
    per_image = kept.groupby(keys, sort=True)[values].median()
    per_image["n_cells"] = kept.groupby(keys).size()
    n_excl = excluded.groupby([cells_df[k] for k in keys]).sum()
    per_image = per_image.reindex(n_excl.index)
    per_image["n_cells"] = per_image["n_cells"].fillna(0).astype(int)
    per_image["n_cells_excluded"] = n_excl.astype(int)
    for flag in flags:
        hits = cells_df[flag].astype(bool).groupby([cells_df[k] for k in keys]).sum()
        per_image[f"n_cells_{flag}"] = hits.reindex(per_image.index).fillna(0).astype(int)
    return per_image.reset_index()


def aggregate_replicates(
    per_image: pd.DataFrame,
    *,
    values=DEFAULT_VALUES,
    replicate_col: str = "replicate",
    condition_cols=("cell_line", "condition"),
    confidence: float = 0.95,
) -> dict[str, pd.DataFrame]:
    """Replicate and condition levels of :func:`aggregate` from its image level."""
    cond = list(condition_cols)
    values = [v for v in values if v in per_image.columns]
    rep_keys = cond + [replicate_col]
    counts = [c for c in per_image.columns if c.startswith("n_cells")]
    per_rep = per_image.groupby(rep_keys, sort=True)[values].mean()
    per_rep["n_images"] = per_image.groupby(rep_keys).size()
    for column in counts:
        per_rep[column] = per_image.groupby(rep_keys)[column].sum()
    per_rep = per_rep.reset_index()

    grouped = per_rep.groupby(cond, sort=True)
    per_cond = pd.DataFrame({"n_replicates": grouped.size()})
    per_cond["n_images"] = grouped["n_images"].sum()
    for column in counts:
        per_cond[column] = grouped[column].sum()
    if {"n_cells", "n_cells_excluded"} <= set(counts):
        detected = per_cond["n_cells"] + per_cond["n_cells_excluded"]
        for column in counts:
            if column not in ("n_cells", "n_cells_excluded"):
                with np.errstate(invalid="ignore", divide="ignore"):
                    per_cond["fraction_" + column[len("n_cells_") :]] = per_cond[
                        column
                    ] / detected.where(detected > 0)
    for v in values:
        g = grouped[v]
        mean, sd, n = g.mean(), g.std(ddof=1), g.count()
        tq = stats.t.ppf(0.5 + confidence / 2, np.maximum(n - 1, 1))
        half = np.where(n >= 2, tq * sd / np.sqrt(n), np.nan)
        per_cond[f"{v}_mean"] = mean
        per_cond[f"{v}_sd"] = sd
        per_cond[f"{v}_ci_low"] = mean - half
        per_cond[f"{v}_ci_high"] = mean + half
    return {"replicate": per_rep, "condition": per_cond.reset_index()}


def compare_conditions(
    replicate_df: pd.DataFrame,
    a,
    b,
    *,
    value: str = "her2_mean_membrane",
    condition_col: str = "condition",
    confidence: float = 0.95,
) -> dict:
    """Compare two conditions on their replicate means (Welch t-test).

    Parameters
    ----------
    replicate_df : DataFrame
        One row per biological replicate (``aggregate(...)["replicate"]``).
    a, b : object
        Reference and test levels of ``condition_col``.
    value : str
        Column compared.
    condition_col : str, default "condition"
    confidence : float, default 0.95

    Returns
    -------
    dict
        ``n_a``, ``n_b``, ``mean_a``, ``mean_b``; ``difference`` = mean_b -
        mean_a with Welch ``difference_ci_low/high``; ``ratio`` = mean_b /
        mean_a with a delta-method CI on the log scale (NaN unless both means
        are positive); ``hedges_g`` (bias-corrected standardised difference,
        pooled SD) with a normal-approximation CI (Hedges & Olkin 1985);
        Welch ``t``, ``df``, ``p`` (two-sided).
    """
    xa = replicate_df.loc[replicate_df[condition_col] == a, value].dropna().to_numpy(float)
    xb = replicate_df.loc[replicate_df[condition_col] == b, value].dropna().to_numpy(float)
    na, nb = xa.size, xb.size
    if na < 2 or nb < 2:
        raise ValueError(f"need >= 2 replicates per condition, got {a}: {na}, {b}: {nb}")
    ma, mb = xa.mean(), xb.mean()
    va, vb = xa.var(ddof=1), xb.var(ddof=1)
    se = np.sqrt(va / na + vb / nb)
    df = se**4 / ((va / na) ** 2 / (na - 1) + (vb / nb) ** 2 / (nb - 1))
    tq = stats.t.ppf(0.5 + confidence / 2, df)
    t_stat = (mb - ma) / se
    p = 2 * stats.t.sf(abs(t_stat), df)
    # ratio on the log scale (delta method), Welch-Satterthwaite df
    ratio = lo_r = hi_r = np.nan
    if ma > 0 and mb > 0:
        wa, wb = va / (na * ma**2), vb / (nb * mb**2)
        se_log = np.sqrt(wa + wb)
        df_log = se_log**4 / (wa**2 / (na - 1) + wb**2 / (nb - 1))
        tq_log = stats.t.ppf(0.5 + confidence / 2, df_log)
        ratio = mb / ma
        lo_r, hi_r = ratio * np.exp(-tq_log * se_log), ratio * np.exp(tq_log * se_log)
    sp = np.sqrt(((na - 1) * va + (nb - 1) * vb) / (na + nb - 2))
    j = 1 - 3 / (4 * (na + nb) - 9)
    g = j * (mb - ma) / sp
    se_g = np.sqrt((na + nb) / (na * nb) + g**2 / (2 * (na + nb)))
    z = stats.norm.ppf(0.5 + confidence / 2)
    return {
        "value": value,
        "a": a,
        "b": b,
        "n_a": na,
        "n_b": nb,
        "mean_a": ma,
        "mean_b": mb,
        "difference": mb - ma,
        "difference_ci_low": mb - ma - tq * se,
        "difference_ci_high": mb - ma + tq * se,
        "ratio": ratio,
        "ratio_ci_low": lo_r,
        "ratio_ci_high": hi_r,
        "hedges_g": g,
        "hedges_g_ci_low": g - z * se_g,
        "hedges_g_ci_high": g + z * se_g,
        "t": t_stat,
        "df": df,
        "p": p,
    }
