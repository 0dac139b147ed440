"""Table 1 (SMDs, missing rows, era, reverse-KM follow-up) and the tumour-response table.

Independent references: SMDs computed here by hand from their definitions
(continuous: difference of means over sqrt of the mean of the two sample
variances; categorical: Yang & Dalton 2012 with numpy's matrix inverse), R
survival 3.5-3 for the reverse Kaplan-Meier follow-up and the IPTW SMD
reference on GBSG2, R ``binom.test`` for Clopper-Pearson limits, scipy for
Fisher's exact test and Newcombe (1998) for the difference interval.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter
from lifelines.datasets import load_gbsg2
from scipy.stats import beta, fisher_exact

from sepher.survival.response import response_table
from sepher.survival.table1 import (
    FOLLOWUP_LABEL,
    characteristics,
    reverse_km_followup_by_group,
    standardized_differences,
)

LEVELS, LABELS = ["no", "yes"], ["No", "Yes"]


def hand_continuous_smd(x, groups, levels, ddof=1):
    """(mean2 - mean1) / sqrt((s1^2 + s2^2) / 2) on the observed values."""
    a = pd.Series(x[groups == levels[0]]).dropna()
    b = pd.Series(x[groups == levels[1]]).dropna()
    return (b.mean() - a.mean()) / math.sqrt((a.var(ddof=ddof) + b.var(ddof=ddof)) / 2)


def hand_categorical_smd(x, groups, levels, categories):
    """Yang & Dalton (2012): sqrt(d' S^-1 d), first category dropped, observed values."""
    proportions, covariances = [], []
    for level in levels:
        values = pd.Series(x[groups == level]).dropna()
        p = np.array([(values == c).mean() for c in categories])[1:]
        proportions.append(p)
        covariances.append(np.diag(p) - np.outer(p, p))
    d = proportions[1] - proportions[0]
    s = (covariances[0] + covariances[1]) / 2
    return float(np.sqrt(d @ np.linalg.inv(s) @ d))


@pytest.fixture
def small():
    """40 patients, two groups, a continuous, a 3-level and a binary covariate, missing values."""
    rng = np.random.default_rng(7)
    n = 40
    frame = pd.DataFrame(
        {
            "arm": np.repeat(LEVELS, [22, 18]),
            "age": rng.normal(60, 10, n).round(),
            "grade": rng.choice(["I", "II", "III"], n),
            "visceral": rng.choice(["no", "yes"], n),
            "year": rng.integers(2013, 2020, n),
        }
    )
    frame.loc[[1, 25, 30], "age"] = np.nan
    frame.loc[[2, 27], "grade"] = np.nan
    return frame


def small_table(frame, **kwargs):
    return characteristics(
        frame,
        group="arm",
        group_levels=LEVELS,
        group_labels=LABELS,
        covariates=["age", "grade", "visceral"],
        categorical={"grade": ["I", "II", "III"]},
        **kwargs,
    )


def first_row(table, variable):
    return table[table["variable"] == variable].iloc[0]


def test_smd_matches_hand_computation_on_observed_values(small):
    groups = small["arm"].to_numpy()
    smd = standardized_differences(
        small,
        group="arm",
        group_levels=LEVELS,
        covariates=["age", "grade", "visceral"],
        categorical={"grade": ["I", "II", "III"]},
    )
    assert smd["age"] == pytest.approx(hand_continuous_smd(small["age"], groups, LEVELS), 1e-12)
    grade = hand_categorical_smd(small["grade"], groups, LEVELS, ["I", "II", "III"])
    assert smd["grade"] == pytest.approx(grade, 1e-12)
    visceral = hand_categorical_smd(small["visceral"], groups, LEVELS, ["no", "yes"])
    assert smd["visceral"] == pytest.approx(visceral, 1e-12)
    # binary: the Yang-Dalton SMD reduces to |p2 - p1| / sqrt((p1 q1 + p2 q2) / 2)
    p1, p2 = (np.mean(small.loc[groups == g, "visceral"] == "yes") for g in LEVELS)
    binary = abs(p2 - p1) / math.sqrt((p1 * (1 - p1) + p2 * (1 - p2)) / 2)
    assert smd["visceral"] == pytest.approx(binary, 1e-12)
    # the table prints the same values, three decimals, on each variable's first row
    table = small_table(small)
    for variable in ("age", "grade", "visceral"):
        assert first_row(table, variable)["smd"] == f"{smd[variable]:.3f}"
    assert (table.loc[table["variable"] == "grade", "smd"] != "").sum() == 1


def test_missing_rows_and_observed_percentages(small):
    table = small_table(small)
    age_missing = table[(table["variable"] == "age") & (table["level"] == "missing")].iloc[0]
    # rows 1 (no), 25 and 30 (yes) of 22 / 18 patients
    assert age_missing[["statistic", "overall", "No", "Yes"]].tolist() == [
        "n (%)",
        "3 (7.5)",
        "1 (4.5)",
        "2 (11.1)",
    ]
    grade = table[table["variable"] == "grade"]
    assert grade["level"].tolist() == ["I", "II", "III", "missing"]
    assert grade.iloc[-1][["No", "Yes"]].tolist() == ["1 (4.5)", "1 (5.6)"]
    # level percentages are of the observed values: 21 and 17 patients with a grade
    observed = small.dropna(subset=["grade"])
    count = int(((observed["arm"] == "no") & (observed["grade"] == "I")).sum())
    assert grade.iloc[0]["No"] == f"{count} ({100 * count / 21:.1f})"
    assert first_row(table, "grade")["missing"] == 2
    # no missing row for a complete covariate, no "None" level
    assert not ((table["variable"] == "visceral") & (table["level"] == "missing")).any()
    assert "None" not in table["level"].tolist()


def test_table1_is_backward_compatible_and_deterministic(small):
    old = small_table(small, smd=False)
    assert old.columns.tolist() == [
        "variable", "level", "statistic", "overall", "No", "Yes", "missing", "p", "test",
    ]  # fmt: skip
    new = small_table(small)
    assert new.columns.tolist() == [*old.columns, "smd"]
    pd.testing.assert_frame_equal(new.drop(columns="smd"), old)
    pd.testing.assert_frame_equal(small_table(small), new)
    assert new.iloc[0][["variable", "overall", "No", "Yes"]].tolist() == ["n", 40, 22, 18]


def test_year_row_and_followup_row(small):
    followup = {"no": (30.25, 24.0, math.nan), "yes": (20.0, 15.5, 28.0), "overall": (25, 20, 31)}
    table = small_table(small, year_col="year", followup=followup)
    assert table.iloc[1]["variable"] == FOLLOWUP_LABEL
    assert table.iloc[1][["overall", "No", "Yes"]].tolist() == [
        "25.0 (20.0-31.0)",
        "30.2 (24.0-NA)",
        "20.0 (15.5-28.0)",
    ]
    year = first_row(table, "year")
    assert table["variable"].tolist()[-1] == "year"
    assert year["statistic"] == "median [Q1,Q3]"
    q = small.loc[small["arm"] == "no", "year"].quantile([0.5, 0.25, 0.75]).tolist()
    # integer-valued columns print without decimals
    assert year["No"] == f"{q[0]:.0f} [{q[1]:.0f},{q[2]:.0f}]"
    hand = hand_continuous_smd(small["year"], small["arm"].to_numpy(), LEVELS)
    assert year["smd"] == f"{hand:.3f}"
    # year already a covariate: described once
    twice = characteristics(
        small, group="arm", group_levels=LEVELS, group_labels=LABELS,
        covariates=["year"], categorical={}, year_col="year",
    )  # fmt: skip
    assert (twice["variable"] == "year").sum() == 1
    with pytest.raises(ValueError, match="year_col"):
        small_table(small.assign(year=small["year"].astype(str)), year_col="year")
    # follow-up alone (no covariates): the n row then the follow-up row
    sizes = characteristics(
        small, group="arm", group_levels=LEVELS, group_labels=LABELS,
        covariates=[], categorical={}, followup=followup,
    )  # fmt: skip
    assert sizes["variable"].tolist() == ["n", FOLLOWUP_LABEL]
    # the row names its time origin when asked; an all-missing year (no dates) gives no row
    label = "Median follow-up from T-DM1 start, months (95% CI), reverse Kaplan-Meier"
    no_dates = small_table(
        small.assign(year=np.nan), year_col="year", followup=followup, followup_label=label
    )
    assert no_dates.iloc[1]["variable"] == label
    assert "year" not in no_dates["variable"].tolist()


def test_gbsg2_smds_against_hand_and_r_reference():
    data = load_gbsg2()
    groups = data["horTh"].to_numpy()
    categorical = {"tgrade": ["I", "II", "III"], "menostat": ["Post", "Pre"]}
    smd = standardized_differences(
        data,
        group="horTh",
        group_levels=LEVELS,
        covariates=["age", "pnodes", "tgrade", "menostat"],
        categorical=categorical,
    )
    for column in ("age", "pnodes"):
        assert smd[column] == pytest.approx(hand_continuous_smd(data[column], groups, LEVELS))
    for column, categories in categorical.items():
        hand = hand_categorical_smd(data[column], groups, LEVELS, categories)
        assert smd[column] == pytest.approx(hand, 1e-12)
    # R survival 3.5-3 reference (tests/data/README.md "Cohort references, round 2", IPTW
    # balance): SMD (pooled variance, weighted moments) unweighted: age 0.575108,
    # pnodes 0.034366. Weighted moments with unit weights use the divisor n; Table 1
    # uses the sample variances (divisor n - 1) as R tableone's ExtractSmd, so its
    # values are those times sqrt(mean of population variances / mean of sample ones).
    for column, r_value in (("age", 0.575108), ("pnodes", 0.034366)):
        a, b = data.loc[groups == "no", column], data.loc[groups == "yes", column]
        ratio = math.sqrt((a.var(ddof=1) + b.var(ddof=1)) / (a.var(ddof=0) + b.var(ddof=0)))
        assert smd[column] * ratio == pytest.approx(r_value, abs=1e-6)
    assert smd["age"] == pytest.approx(0.574211, abs=1e-6)  # sample-variance (tableone) SMD


def test_reverse_km_followup_on_gbsg2():
    data = load_gbsg2()
    everyone = reverse_km_followup_by_group(
        data["time"], data["cens"], np.repeat("all", len(data)), ["all"]
    )
    # R: survfit(Surv(time, 1 - cens) ~ 1) median 1645 days
    assert everyone["all"][0] == 1645
    by_arm = reverse_km_followup_by_group(
        data["time"], data["cens"], data["horTh"], LEVELS, overall=True
    )
    assert by_arm["overall"] == everyone["all"]
    for level in LEVELS:
        subset = data[data["horTh"] == level]
        fitter = KaplanMeierFitter().fit(subset["time"], 1 - subset["cens"])
        assert by_arm[level][0] == fitter.median_survival_time_
        assert by_arm[level][1] <= by_arm[level][0] <= by_arm[level][2]
    empty = reverse_km_followup_by_group([1.0, 2.0], [1, 0], ["a", "a"], ["a", "b"])
    assert all(math.isnan(v) for v in empty["b"])


def response_cohort(responses):
    """Cohort with the given best responses per group: {level: [category, ...]}."""
    return pd.DataFrame(
        [(level, r) for level, values in responses.items() for r in values],
        columns=["arm", "best_response"],
    )


def test_response_table_counts_ci_and_fisher():
    cohort = response_cohort(
        {
            "no": ["CR"] * 1 + ["PR"] * 2 + ["SD"] * 3 + ["PD"] * 3 + ["NE"] * 1,
            "yes": ["CR"] * 3 + ["PR"] * 5 + ["SD"] * 1 + ["PD"] * 1 + ["NE"] * 2,
            "other": ["CR"] * 4,
        }
    )
    table = response_table(cohort, group="arm", group_levels=LEVELS, group_labels=LABELS)
    assert table["measure"].tolist() == [
        m for m in ["CR", "PR", "SD", "PD", "NE", "ORR", "DCR"] for _ in LEVELS
    ]
    rows = table.set_index(["measure", "group_level"])
    # NE stays in the denominator: 10 and 12 patients; the "other" group is left out
    assert rows["n"].xs("no", level=1).unique().tolist() == [10]
    assert rows["n"].xs("yes", level=1).unique().tolist() == [12]
    orr_no = rows.loc[("ORR", "no")]
    assert (orr_no["count"], orr_no["proportion"]) == (3, 0.3)
    # R: binom.test(3, 10)$conf.int = 0.06673951 0.65245285
    assert orr_no["lower"] == pytest.approx(0.06673951, abs=1e-8)
    assert orr_no["upper"] == pytest.approx(0.65245285, abs=1e-8)
    assert rows.loc[("DCR", "yes"), "count"] == 9
    assert rows.loc[("NE", "no"), "count"] == 1
    for measure, (c1, c2) in {"ORR": (3, 8), "DCR": (6, 9)}.items():
        expected = fisher_exact([[c1, 10 - c1], [c2, 12 - c2]]).pvalue
        for level in LEVELS:
            row = rows.loc[(measure, level)]
            assert row["p"] == pytest.approx(expected, 1e-12)
            assert row["difference"] == pytest.approx(c2 / 12 - c1 / 10)
            assert row["test"] == "Fisher's exact"
    assert rows.loc[("CR", "no"), "test"] == ""
    assert math.isnan(rows.loc[("CR", "no"), "p"])
    # every row: the Clopper-Pearson limits from the beta quantiles (0 / 1 at x = 0 / n)
    for _, row in rows.iterrows():
        x, n = row["count"], row["n"]
        lower = beta.ppf(0.025, x, n - x + 1) if x > 0 else 0.0
        upper = beta.ppf(0.975, x + 1, n - x) if x < n else 1.0
        assert (row["lower"], row["upper"]) == pytest.approx((lower, upper), abs=1e-10)


def test_response_difference_interval_newcombe():
    # Newcombe (1998), Stat Med 17:873, example (a): 56/70 vs 48/80, method 10
    # (hybrid score) 0.0524 to 0.3339
    cohort = response_cohort({"no": ["PR"] * 48 + ["PD"] * 32, "yes": ["CR"] * 56 + ["PD"] * 14})
    table = response_table(cohort, group="arm", group_levels=LEVELS, group_labels=LABELS)
    orr = table[table["measure"] == "ORR"].iloc[0]
    assert orr["difference"] == pytest.approx(0.2)
    assert orr["difference_lower"] == pytest.approx(0.0524, abs=5e-5)
    assert orr["difference_upper"] == pytest.approx(0.3339, abs=5e-5)


def test_response_table_rejects_invalid_values():
    kwargs = {"group": "arm", "group_levels": LEVELS, "group_labels": LABELS}
    with pytest.raises(ValueError, match="'uPR'"):
        response_table(response_cohort({"no": ["CR", "uPR"], "yes": ["PD"]}), **kwargs)
    with pytest.raises(ValueError, match="missing value"):
        response_table(response_cohort({"no": ["CR", None], "yes": ["PD"]}), **kwargs)
    with pytest.raises(ValueError, match="no column"):
        response_table(response_cohort({"no": ["CR"]}), response_col="recist", **kwargs)
    with pytest.raises(ValueError, match="two groups"):
        response_table(
            response_cohort({"no": ["CR"]}),
            group="arm",
            group_levels=["no", "yes", "maybe"],
            group_labels=["a", "b", "c"],
        )
    # a group without patients: proportions and the comparison are NaN, not an error
    table = response_table(response_cohort({"no": ["CR", "PD"]}), **kwargs)
    orr = table.set_index(["measure", "group_level"]).loc[("ORR", "yes")]
    assert orr["n"] == 0 and math.isnan(orr["proportion"]) and math.isnan(orr["p"])
