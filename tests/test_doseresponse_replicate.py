"""Replicate-level inference on ED ratios (sepher.doseresponse.replicate) and its
use by the stage (compare_conditions): the spinach two-stage reference, paired
and mixed designs with known numbers, multiplicity across shards."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sepher.doseresponse import fit_curve
from sepher.doseresponse.replicate import (
    adjust_comparisons,
    compare_log_ed,
    comparison_family,
    ed_column,
    replicate_comparisons,
    replicate_eds,
)
from sepher.doseresponse.stage import COMPARISON_COLUMNS, compare_conditions, fit_curves
from sepher.stats import adjust_pvalues

# R drc 3.2-0, per assay: drm(SLOPE ~ DOSE, data = spinach[spinach$CURVE == k, ],
# fct = LL.3()); coef(...)["e:(Intercept)"] for k = 1..5 (1-3 bentazon, 4-5 diuron)
SPINACH_ED50 = {1: 1.7332303834, 2: 1.4587308551, 3: 2.5849454301, 4: 0.2080846433,
                5: 0.2092585639}  # fmt: skip
# R: t.test(log(ed50[1:3]), log(ed50[4:5])) (Welch): exp(estimate difference), exp(conf.int),
# statistic, parameter, p.value
SPINACH_WELCH = {"ratio": 8.95982056, "lower": 4.32298696, "upper": 18.57011950,
                 "t": 12.93855442, "df": 2.00110206, "p": 0.0059080084}  # fmt: skip
# R medrc: medrm(SLOPE ~ DOSE, curveid = b + d + e ~ HERBICIDE, fct = LL.3(),
# random = b + d + e ~ 1 | CURVE); EDcomp(..., c(50, 50)) ratio bentazon / diuron
MEDRC_RATIO = 8.8601


@pytest.fixture(scope="module")
def spinach(reference_data):
    return pd.read_csv(reference_data("doseresponse/spinach.csv"))


def _spinach_viability(spinach):
    """spinach as a viability table: one plate per assay, dose 0 as vehicle wells."""
    table = spinach.assign(
        plate_id="S" + spinach["CURVE"].astype(str),
        well=[
            f"{chr(65 + i // 24)}{i % 24 + 1:02d}" for i in spinach.groupby("CURVE").cumcount()
        ],  # fmt: skip
        cell_line="spinach",
        condition=spinach["HERBICIDE"],
        drug="herbicide",
        concentration=spinach["DOSE"].astype(float),
        concentration_unit="uM",
        role=np.where(spinach["DOSE"] > 0, "treated", "vehicle"),
        replicate=spinach["CURVE"].astype(str),
        viability=spinach["SLOPE"].astype(float),
    )
    return table.drop(columns=["CURVE", "HERBICIDE", "DOSE", "SLOPE"])


def test_spinach_two_stage_welch_matches_r(spinach):
    """Welch t on log ED50 of R's per-assay LL.3 fits, then of ours (rel 1e-5)."""
    log_ed = pd.Series({str(k): np.log(v) for k, v in SPINACH_ED50.items()})
    result = compare_log_ed(log_ed[["1", "2", "3"]], log_ed[["4", "5"]])
    assert result["test"] == "Welch t" and result["n_pairs"] == 0
    assert (result["n_replicates_numerator"], result["n_replicates_denominator"]) == (3, 2)
    for key, value in SPINACH_WELCH.items():
        assert result[key] == pytest.approx(value, rel=1e-6), key
    # our LL.3 fits: drc stops at its relative tolerance (our RSS is lower in all
    # five assays), so the ED50s agree to ~1e-5 and the test to the same order
    ours = {}
    for k, data in spinach.groupby("CURVE"):
        fit = fit_curve(data["DOSE"].to_numpy(float), data["SLOPE"].to_numpy(float), model="LL.3")
        ours[str(k)] = fit.params["e"]
        assert fit.params["e"] == pytest.approx(SPINACH_ED50[k], rel=1e-5), k
    log_ours = np.log(pd.Series(ours))
    result = compare_log_ed(log_ours[["1", "2", "3"]], log_ours[["4", "5"]])
    for key, value in SPINACH_WELCH.items():
        assert result[key] == pytest.approx(value, rel=1e-5), key


def test_spinach_through_the_stage(spinach):
    """fit_curves per replicate -> compare_conditions: Welch (no shared assay), drc EDcomp
    as technical_*; inference mixed falls back to Welch (one condition per assay) and is
    within 3 % of medrc's nonlinear mixed-model ratio (a loose check, not an exact target)."""
    viability = _spinach_viability(spinach)
    settings = {"model": "LL.3", "candidate_models": ["LL.3"], "outliers": "none"}
    _, residuals, _ = fit_curves(viability, **settings)
    by_replicate, _, _ = fit_curves(viability, **settings, by_replicate=True)
    assert by_replicate["ic50_rel"].to_numpy() == pytest.approx(
        [SPINACH_ED50[k] for k in (1, 2, 3, 4, 5)], rel=1e-5
    )
    pair = [{"numerator": "bentazon", "denominator": "diuron"}]
    table = compare_conditions(residuals, pair, by_replicate=by_replicate, drug="herbicide",
                               model="LL.3")  # fmt: skip
    assert list(table.columns) == list(COMPARISON_COLUMNS) and len(table) == 1
    row = table.iloc[0]
    assert row["test"] == "Welch t" and row["inference"] == "replicate"
    assert row["family"] == "fig3" and row["multiplicity"] == "holm"
    for key, value in SPINACH_WELCH.items():
        assert row[key] == pytest.approx(value, rel=1e-5), key
    assert row["p_adjusted"] == pytest.approx(row["p"])  # a family of one
    assert row["ed_numerator"] / row["ed_denominator"] == pytest.approx(row["ratio"])
    # well-level drc EDcomp: df counts wells (105 - 6), far above the replicate df of 2
    assert row["technical_df"] == 105 - 6 and row["n"] == 105
    assert row["technical_lower"] < row["technical_ratio"] < row["technical_upper"]
    assert np.isfinite(row["technical_p_shared_ed50"]) and row["converged"]
    mixed = compare_conditions(residuals, pair, by_replicate=by_replicate, drug="herbicide",
                               model="LL.3", inference="mixed").iloc[0]  # fmt: skip
    assert mixed["test"] == "Welch t"
    assert mixed["ratio"] == pytest.approx(MEDRC_RATIO, rel=0.03)
    technical = compare_conditions(residuals, pair, by_replicate=by_replicate, drug="herbicide",
                                   model="LL.3", inference="technical").iloc[0]  # fmt: skip
    assert technical["test"].startswith("drc EDcomp")
    assert technical["ratio"] == technical["technical_ratio"]
    assert technical["p"] == technical["technical_p"]


def test_paired_design_matches_scipy_ttest_rel():
    """Shared replicate ids: paired t on the pairs only (unshared id 'd' left out)."""
    num = pd.Series(np.log([4.0, 5.5, 3.1, 9.0]), index=["a", "b", "c", "d"])
    den = pd.Series(np.log([1.2, 2.0, 0.9, 0.7]), index=["c", "a", "b", "e"])
    # den by id: a 2.0, b 0.9, c 1.2
    result = compare_log_ed(num, den, conf_level=0.9)
    x, y = np.log([4.0, 5.5, 3.1]), np.log([2.0, 0.9, 1.2])
    ref = stats.ttest_rel(x, y)
    ci = ref.confidence_interval(0.9)
    assert result["test"] == "paired t" and result["n_pairs"] == 3
    assert (result["n_replicates_numerator"], result["n_replicates_denominator"]) == (4, 4)
    assert result["t"] == pytest.approx(ref.statistic, rel=1e-12)
    assert result["p"] == pytest.approx(ref.pvalue, rel=1e-12)
    assert result["df"] == ref.df == 2
    assert result["ratio"] == pytest.approx(np.exp((x - y).mean()), rel=1e-12)
    assert result["lower"] == pytest.approx(np.exp(ci.low), rel=1e-12)
    assert result["upper"] == pytest.approx(np.exp(ci.high), rel=1e-12)
    # geometric means of the replicate EDs the test used
    assert result["ed_numerator"] == pytest.approx(np.exp(x.mean()))
    assert result["ed_denominator"] == pytest.approx(np.exp(y.mean()))


def test_mixed_model_on_complete_pairs_is_the_paired_test():
    """Balanced pairs with a replicate (day) effect: REML random intercept = paired t
    (estimate, SE and between-within df n - 1)."""
    day = np.array([0.0, 0.8, -0.5, 0.3, 1.1])
    noise = np.array([0.05, -0.12, 0.08, 0.02, -0.04])
    ids = list("abcde")
    num = pd.Series(np.log(2.0) + day + noise, index=ids)
    den = pd.Series(day - noise, index=ids)
    paired = compare_log_ed(num, den)
    mixed = compare_log_ed(num, den, inference="mixed")
    assert mixed["test"] == "linear mixed model" and mixed["n_pairs"] == 5
    assert mixed["df"] == paired["df"] == 4
    for key in ("ratio", "se_log", "t", "p", "lower", "upper"):
        assert mixed[key] == pytest.approx(paired[key], rel=1e-4), key
    # no id carries both conditions: the random intercept is not identifiable -> Welch
    unshared = compare_log_ed(num, den.rename(lambda k: k + "2"), inference="mixed")
    assert unshared["test"] == "Welch t" and unshared["n_pairs"] == 0


def test_too_few_replicates_give_nan_not_an_error():
    one = compare_log_ed(pd.Series([0.1], index=["a"]), pd.Series([0.0, 0.2], index=["b", "c"]))
    assert one["test"] == "Welch t" and np.isnan(one["p"]) and np.isnan(one["lower"])
    assert one["ratio"] == pytest.approx(np.exp(0.1 - 0.1))


def _by_replicate_table():
    rows = []
    for line, shift in (("L1", 1.0), ("L2", 0.0)):
        for rep, day in (("1", 0.0), ("2", 0.3), ("3", -0.2)):
            for cond, e in (("T-R", 1.0), ("TP-R", 5.0), ("T-R>T", 1.5)):
                rows.append((line, cond, "T-DM1", rep, np.exp(np.log(e) + day + shift * 0.01 *
                             int(rep)), True, True, 2.0 * e))  # fmt: skip
    table = pd.DataFrame(rows, columns=["cell_line", "condition", "drug", "replicate",
                                        "ic50_rel", "converged", "ic50_rel_reached", "ed90"])  # fmt: skip
    table["ed90_reached"] = True
    return table


def test_replicate_eds_keeps_converged_reached_fits():
    table = _by_replicate_table()
    table.loc[0, "converged"] = False
    table["ic50_rel_reached"] = table["ic50_rel_reached"].astype(object)
    table.loc[1, "ic50_rel_reached"] = "False"  # as read back from CSV
    table.loc[2, "ic50_rel"] = np.nan
    eds = replicate_eds(table, drug="T-DM1")
    assert len(eds) == len(table) - 3
    assert ed_column(50) == "ic50_rel" and ed_column(90.0) == "ed90"
    assert len(replicate_eds(table, level=90)) == len(table) - 1  # not converged
    with pytest.raises(ValueError, match="ed10"):
        replicate_eds(table, level=10)
    pairs = [{"numerator": "TP-R", "denominator": "T-R"}, {"numerator": "X", "denominator": "T-R"}]
    got = replicate_comparisons(table, pairs, drug="T-DM1")
    assert got["cell_line"].tolist() == ["L1", "L2"]  # X has no curve: left out
    assert got["test"].tolist() == ["paired t", "paired t"]
    assert got["n_pairs"].tolist() == [2, 3]  # L1: replicate 1 of both conditions unusable


def test_families_and_adjustment_do_not_depend_on_shards():
    figure = ["parental", "T-R", "TP-R"]
    assert comparison_family({"numerator": "TP-R", "denominator": "T-R"}, figure) == "fig1"
    assert comparison_family({"numerator": "T-R>T", "denominator": "T-R"}, figure) == "fig3"
    assert comparison_family({"numerator": "T-R>T", "denominator": "T-R", "family": "x"}) == "x"
    p = [0.01, 0.04, 0.03, 0.2, np.nan, 0.002]
    table = pd.DataFrame(
        {
            "cell_line": ["A", "A", "B", "B", "C", "C"],
            "family": ["fig1", "fig3", "fig1", "fig3", "fig1", "fig3"],
            "p": p,
        }
    )
    joined = adjust_comparisons(table, "holm")
    for family in ("fig1", "fig3"):
        rows = table["family"] == family
        expected = adjust_pvalues(np.asarray(p)[rows], "holm")
        np.testing.assert_array_equal(joined.loc[rows, "p_adjusted"].to_numpy(), expected)
    # shard by line, adjust each shard, join, adjust again (the join rule): same as one shard
    shards = [adjust_comparisons(table[table["cell_line"] == c], "holm") for c in "ABC"]
    rejoined = adjust_comparisons(pd.concat(shards, ignore_index=True), "holm")
    pd.testing.assert_frame_equal(rejoined, joined)
    # per-shard adjustment alone is not the family's (why the join adjusts)
    assert not np.allclose(
        pd.concat(shards)["p_adjusted"].fillna(-1), joined["p_adjusted"].fillna(-1)
    )
    assert joined["multiplicity"].eq("holm").all()
    assert np.isnan(joined.loc[4, "p_adjusted"])
    bh = adjust_comparisons(table, "bh")
    assert bh.loc[0, "p_adjusted"] == pytest.approx(min(1, 0.01 * 2 / 1))  # fig1: 0.01, 0.03
