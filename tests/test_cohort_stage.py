"""The cohort stage's analyses on the demo cohort and on GBSG2 (issue 14).

The demo calibration is checked here with the workflow's own analysis (the
one the figures show: OS with delayed entry at T-DM1 start, PFS2 from T-DM1
start); tests/test_simulate_cohort.py checks the same data with lifelines.
Targets: Bon, Pizzuti et al. 2020 (median OS 52 vs 74 months, p = 0.0006;
median PFS2 6 vs 10 months, p = 0.03).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lifelines.datasets import load_gbsg2

from sepher.errors import InputError
from sepher.io.cohort import check_analysis_set, read_cohort
from sepher.survival import stage
from sepher.survival.cox import fit_cox

PROJECT = Path(__file__).resolve().parents[1]
DEMO_CSV = PROJECT / "resources" / "demo" / "cohort.csv"
GROUP, LEVELS = "first_line_pertuzumab", ["no", "yes"]
COVARIATES = [
    "age_at_advanced_dx",
    "hormone_receptor",
    "visceral_mets",
    "brain_mets",
    "de_novo",
    "n_metastatic_sites",
    "ecog",
    "prior_adjuvant_trastuzumab",
]
CATEGORICAL = {
    "hormone_receptor": ["positive", "negative"],
    "visceral_mets": ["no", "yes"],
    "brain_mets": ["no", "yes"],
    "de_novo": ["no", "yes"],
    "ecog": ["0", "1", "2"],
    "prior_adjuvant_trastuzumab": ["no", "yes"],
}
COMMON = {"group": GROUP, "group_levels": LEVELS, "tdm1_line": 2}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo endpoints as the stage reads them (written and read back as CSV)."""
    cohort = read_cohort(DEMO_CSV, covariates=COVARIATES, categorical_levels=CATEGORICAL)
    path = tmp_path_factory.mktemp("endpoints") / "endpoints.csv"
    cohort.to_csv(path, index=False)
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


@pytest.fixture(scope="module")
def km(demo):
    return stage.km_tables(demo, **COMMON)


def test_demo_reproduces_the_papers_medians_and_evidence(km):
    """Medians within 10 % of 52 / 74 and 6 / 10 months; OS p in [0.0002, 0.002],
    PFS2 p in [0.01, 0.08], with the analysis the figures show."""
    _, medians, logrank = km
    med = medians.set_index(["analysis", "group"])["median"]
    for analysis, targets in (("os", {"no": 74, "yes": 52}), ("pfs2", {"no": 10, "yes": 6})):
        for group, target in targets.items():
            assert abs(med[(analysis, group)] / target - 1) <= 0.10, (analysis, group)
    p = logrank.set_index("analysis")["p"]
    assert 0.0002 <= p["os"] <= 0.002
    assert 0.01 <= p["pfs2"] <= 0.08
    assert set(medians.loc[medians["analysis"] == "os", "entry"]) == {
        "delayed entry at T-DM1 start"
    }


def test_delayed_entry_changes_os_and_the_sensitivity_origin_is_reported(demo, km):
    """Without delayed entry the immortal time inflates OS; os_alt is OS from T-DM1 start."""
    _, with_entry, _ = km
    _, naive, _ = stage.km_tables(demo, **COMMON, delayed_entry=False)
    a = with_entry[with_entry["analysis"] == "os"].set_index("group")["median"]
    b = naive[naive["analysis"] == "os"].set_index("group")["median"]
    assert (b > a).all()
    alt = with_entry[with_entry["analysis"] == "os_alt"]
    assert set(alt["origin"]) == {"tdm1_start"} and set(alt["entry"]) == {"none"}
    # OS from T-DM1 start is OS minus entry: its medians are shorter
    assert (alt.set_index("group")["median"] < a).all()
    curves = km[0]
    first = curves[(curves["analysis"] == "os") & (curves["time"] > 0)].groupby("group").first()
    # with delayed entry few patients are at risk at the first times (entry > t)
    assert (first["n_risk"] < [194, 177]).all()


def test_cox_uses_delayed_entry_and_strata(demo):
    coefficients, models, ph, _ = stage.cox_tables(
        demo, **COMMON, covariates=COVARIATES, categorical=CATEGORICAL, strata=["ecog"]
    )
    multi = models[models["model"] == "multivariate"].set_index("endpoint")
    assert multi.loc["OS", "entry"] == "delayed entry at T-DM1 start"
    assert multi.loc["OS", "strata"] == "ecog"
    assert "ecog" not in multi.loc["OS", "terms"]
    assert not ((coefficients["model"] == "multivariate") & (coefficients["term"] == "ecog")).any()
    # univariable OS of the group equals an R-equivalent direct fit with entry
    cohort = stage.analysis_cohort(demo, GROUP, LEVELS, 2)
    direct = fit_cox(
        cohort, "os_months", "os_event", [GROUP], categorical={GROUP: LEVELS},
        entry_col="entry_months",
    )  # fmt: skip
    row = coefficients[
        (coefficients["endpoint"] == "OS")
        & (coefficients["model"] == "univariate")
        & (coefficients["term"] == GROUP)
    ].iloc[0]
    assert row["coef"] == pytest.approx(direct.table["coef"].iloc[0], rel=1e-12)
    acted = stage.ph_actions(ph, strata=["ecog"])
    flagged = acted[(acted["p"] < 0.05) & (acted["term"] != "GLOBAL")]
    assert len(flagged) and flagged["action"].str.startswith("violation").all()
    assert "stratified" in acted.loc[acted["term"] == "ecog", "action"].iloc[0]


def test_iptw_balances_the_demo_covariates_and_era(demo):
    tables = stage.weighting_tables(demo, **COMMON, covariates=COVARIATES, categorical=CATEGORICAL)
    balance = tables["balance"]
    assert "tdm1_start_year" in set(balance["covariate"])
    # era and de novo are imbalanced before weighting; weighting balances them (brain
    # metastases, 0.15 before, stays at the 0.1 threshold: the Love plot shows it)
    before, after = balance["smd_unweighted"].abs(), balance["smd_weighted"].abs()
    assert before.max() > 0.3
    assert after.max() < 0.11 and (after <= 0.1).sum() >= len(balance) - 1
    assert after.mean() < 0.3 * before.mean()
    iptw = tables["iptw"]
    weights = iptw[iptw["row"] == "weights"]
    # stabilised weights sum to about the group sizes
    assert weights["weight_sum"].to_numpy() == pytest.approx(weights["n"].to_numpy(), rel=0.1)
    cox = iptw[iptw["row"] == "cox"].set_index("endpoint")
    assert cox["se_robust"].notna().all() and (cox["hr"] > 0).all()
    hist = tables["propensity"]
    assert hist.groupby("group")["n"].sum().tolist() == weights["n"].tolist()


def test_truncation_caps_the_weights(demo):
    full = stage.weighting_tables(demo, **COMMON, covariates=COVARIATES, categorical=CATEGORICAL)
    capped = stage.weighting_tables(
        demo, **COMMON, covariates=COVARIATES, categorical=CATEGORICAL, truncation=[5, 95]
    )
    w_full = full["iptw"].query("row == 'weights'")["weight_max"].max()
    w_cap = capped["iptw"].query("row == 'weights'")["weight_max"].max()
    assert w_cap < w_full
    assert set(capped["iptw"]["truncation"]) == {"5-95 pct"}


def test_rmst_difference_is_group_two_minus_group_one(demo):
    table = stage.rmst_table(demo, **COMMON, horizons={"OS": 60, "PFS2": 24})
    for _, rows in table.groupby("endpoint"):
        groups = rows[rows["row"] == "group"].set_index("group")["rmst"]
        diff = rows[rows["row"] == "difference"].iloc[0]
        assert diff["rmst"] == pytest.approx(groups["yes"] - groups["no"], rel=1e-12)
        assert diff["lower"] < diff["rmst"] < diff["upper"]


def test_subgroups_and_interaction_on_gbsg2():
    """The overall row is the univariable HR; the interaction LR test is close to
    R's Wald p of horThyes:menostatPre (0.89135282) on one df."""
    data = load_gbsg2().rename(columns={"horTh": "grp"})
    data["tdm1_line"] = 2
    data["os_months"], data["os_event"] = data["time"] / 30.4375, data["cens"]
    data["pfs2_months"], data["pfs2_event"] = data["os_months"], data["os_event"]
    table = stage.subgroup_table(
        data,
        group="grp",
        group_levels=["no", "yes"],
        tdm1_line=2,
        subgroups=["menostat"],
        categorical={"menostat": ["Post", "Pre"]},
        delayed_entry=False,
    )
    os_rows = table[table["endpoint"] == "OS"]
    direct = fit_cox(data, "time", "cens", ["grp"], categorical={"grp": ["no", "yes"]})
    assert os_rows.iloc[0]["hr"] == pytest.approx(direct.table["hr"].iloc[0], rel=1e-9)
    p = os_rows.loc[os_rows["variable"] == "menostat", "p_interaction"].iloc[0]
    assert p == pytest.approx(0.89135282, abs=0.01)
    assert os_rows.loc[os_rows["variable"] == "menostat", "n"].sum() == 686


def test_imputation_table_has_complete_cases_and_mice(demo):
    table = stage.imputation_table(
        demo, **COMMON, covariates=COVARIATES, categorical=CATEGORICAL, m=5, seed=1
    )
    assert set(table["analysis"]) == {"complete cases", "MICE, m = 5"}
    cc = table[(table["analysis"] == "complete cases") & (table["endpoint"] == "OS")]
    mi = table[(table["analysis"] != "complete cases") & (table["endpoint"] == "OS")]
    assert cc["n"].iloc[0] < mi["n"].iloc[0] == 371
    assert table["n_missing"].iloc[0] == 371 - cc["n"].iloc[0]
    np.testing.assert_array_equal(cc["column"].to_numpy(), mi["column"].to_numpy())


def test_flow_counts_the_exclusions(demo):
    flow = stage.cohort_flow(
        demo,
        **COMMON,
        group_labels=["Naive", "Pretreated"],
        by_line_max=4,
        covariates=COVARIATES,
    )
    excluded = flow[flow["kind"] == "excluded"]
    cohort = stage.analysis_cohort(demo, GROUP, LEVELS, 2)
    assert excluded["n"].sum() == int(cohort[COVARIATES].isna().any(axis=1).sum())


def test_delayed_entry_needs_an_entry_time(tmp_path):
    path = tmp_path / "cohort.csv"
    path.write_text(
        "patient_id,tdm1_line,first_line_pertuzumab,os_months,os_event,pfs2_months,pfs2_event\n"
        "P1,2,yes,20,1,5,1\nP2,2,no,30,0,8,1\n"
    )
    cohort = read_cohort(path)
    check_analysis_set(cohort, path, group=GROUP, group_levels=LEVELS, tdm1_line=2)
    with pytest.raises(InputError) as err:
        check_analysis_set(
            cohort, path, group=GROUP, group_levels=LEVELS, tdm1_line=2, delayed_entry=True
        )
    assert "survival.delayed_entry" in str(err.value) and "entry_months" in str(err.value)
