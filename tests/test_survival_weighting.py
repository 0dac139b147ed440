"""Delayed entry, case weights, RMST, reverse KM and IPTW against R survival 3.5-3.

Reference numbers: R survival 3.5-3 on lifelines' gbsg2 (686 patients), rows
in ``load_gbsg2()`` order; ``row`` is 1-based and the delayed entry (days) is
``entry = floor(0.25 * time * ((row mod 4) / 4))``. Each literal below names
the R call that produced it. Relative tolerance 1e-4; medians exact.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifelines.datasets import load_gbsg2

from sepher.survival.km import (
    kaplan_meier,
    km_median,
    reverse_km_followup,
    rmst,
    rmst_difference,
)
from sepher.survival.logrank import logrank_test
from sepher.survival.weighting import (
    propensity_scores,
    stabilised_weights,
    standardised_differences,
)

REL = 1e-4
PS_TERMS = ["age", "menostat", "tsize", "tgrade", "pnodes", "progrec", "estrec"]
PS_CATEGORICAL = {"menostat": ["Post", "Pre"], "tgrade": ["I", "II", "III"]}


@pytest.fixture(scope="module")
def gbsg2():
    data = load_gbsg2()
    row = np.arange(1, len(data) + 1)
    data["entry"] = np.floor(0.25 * data["time"] * ((row % 4) / 4))
    return data


@pytest.fixture(scope="module")
def iptw(gbsg2):
    ps, table = propensity_scores(gbsg2, "horTh", ["no", "yes"], PS_TERMS, PS_CATEGORICAL)
    weights = stabilised_weights(gbsg2["horTh"] == "yes", ps)
    return ps, table, weights


def group_rows(data, level):
    return (data["horTh"] == level).to_numpy()


# --------------------------------------------------------------------------
# R references
# --------------------------------------------------------------------------
# survfit(Surv(entry, time, cens) ~ horTh, conf.type = "log-log")
R_DELAYED = {"no": (1460, 1225, 1806, 440, 205), "yes": (2018, 1807, np.nan, 246, 94)}


@pytest.mark.parametrize("level", ["no", "yes"])
def test_delayed_entry_km_medians_match_r(gbsg2, level):
    sel = group_rows(gbsg2, level)
    sub = gbsg2[sel]
    curve = kaplan_meier(sub["time"], sub["cens"], conf_type="log-log", entry=sub["entry"])
    med = km_median(curve)
    median, lower, upper, records, events = R_DELAYED[level]
    assert med["median"] == median
    assert med["lower"] == lower
    np.testing.assert_equal(med["upper"], upper)
    assert len(sub) == records
    assert curve["n_event"].sum() == events
    # at risk at t iff entry < t <= time
    t = curve["time"].to_numpy()[1:]
    by_hand = [((sub["entry"] < u) & (u <= sub["time"])).sum() for u in t]
    np.testing.assert_array_equal(curve["n_risk"].to_numpy()[1:], by_hand)


def test_iptw_weights_match_r(iptw):
    # glm(horTh ~ age + menostat + tsize + tgrade + pnodes + progrec + estrec, binomial);
    # w = P(T=1)/ps (treated), P(T=0)/(1-ps) (controls)
    ps, table, weights = iptw
    assert weights.sum() == pytest.approx(685.819174, rel=REL)
    assert weights.min() == pytest.approx(0.448991, rel=REL)
    assert weights.max() == pytest.approx(2.636639, rel=REL)
    assert table["term"].tolist() == [
        "(Intercept)",
        "age",
        "menostatPre",
        "tsize",
        "tgradeII",
        "tgradeIII",
        "pnodes",
        "progrec",
        "estrec",
    ]
    assert table.attrs["n_used"] == 686
    assert ps.notna().all()


@pytest.mark.parametrize(("level", "median"), [("no", 1528), ("yes", 2030)])
def test_weighted_km_medians_match_r(gbsg2, iptw, level, median):
    # survfit(Surv(time, cens) ~ horTh, weights = w)
    sel = group_rows(gbsg2, level)
    curve = kaplan_meier(gbsg2["time"][sel], gbsg2["cens"][sel], weights=iptw[2][sel])
    assert km_median(curve)["median"] == median
    assert curve["n_risk"].iloc[0] == pytest.approx(iptw[2][sel].sum())


def test_smd_match_r(gbsg2, iptw):
    # SMD, pooled variance with weighted moments (sum w (x - m)^2 / sum w), horTh yes - no
    smd = standardised_differences(
        gbsg2, "horTh", ["no", "yes"], PS_TERMS, PS_CATEGORICAL, weights=iptw[2]
    ).set_index("covariate")
    assert smd.loc["age", "smd_unweighted"] == pytest.approx(0.575108, rel=REL)
    assert smd.loc["age", "smd_weighted"] == pytest.approx(-0.005224, rel=REL)
    assert smd.loc["pnodes", "smd_unweighted"] == pytest.approx(0.034366, rel=REL)
    assert smd.loc["pnodes", "smd_weighted"] == pytest.approx(0.013967, rel=REL)
    tgrade = smd.loc["tgrade"]
    assert tgrade["level"].tolist() == ["II", "III"]


def test_rmst_matches_r(gbsg2):
    # print(survfit(Surv(time, cens) ~ horTh), rmean = 1825)
    expected = {"no": (1264.118, 30.67397), "yes": (1413.422, 37.90679)}
    for level, (value, se) in expected.items():
        sel = group_rows(gbsg2, level)
        res = rmst(kaplan_meier(gbsg2["time"][sel], gbsg2["cens"][sel]), 1825)
        assert res["rmst"] == pytest.approx(value, rel=REL)
        assert res["se"] == pytest.approx(se, rel=REL)
    diff = rmst_difference(gbsg2["time"], gbsg2["cens"], gbsg2["horTh"], ["no", "yes"], 1825)
    assert diff["difference"] == pytest.approx(1413.422 - 1264.118, rel=REL)
    assert diff["se"] == pytest.approx(np.hypot(30.67397, 37.90679), rel=REL)
    assert diff["lower"] < diff["difference"] < diff["upper"]
    half = diff["upper"] - diff["difference"]
    assert half == pytest.approx(1.959964 * diff["se"], rel=1e-6)
    assert diff["table"]["group"].tolist() == ["no", "yes"]
    assert diff["table"]["n"].tolist() == [440, 246]


def test_reverse_km_followup_matches_r(gbsg2):
    # survfit(Surv(time, 1 - cens) ~ 1): median follow-up
    res = reverse_km_followup(gbsg2["time"], gbsg2["cens"])
    assert res["median"] == 1645
    assert res["lower"] <= 1645 <= res["upper"]


# --------------------------------------------------------------------------
# log-rank with delayed entry: no R survdiff number exists
# --------------------------------------------------------------------------
def brute_force_logrank(time, event, group, entry):
    """Two-group log-rank by a loop over event times (hypergeometric variance)."""
    o_minus_e, var = 0.0, 0.0
    for t in np.unique(time[event == 1]):
        at_risk = (entry < t) & (t <= time)
        n = at_risk.sum()
        n1 = (at_risk & group).sum()
        d = ((time == t) & (event == 1)).sum()
        d1 = ((time == t) & (event == 1) & group).sum()
        o_minus_e += d1 - d * n1 / n
        if n > 1:
            var += d * (n1 / n) * (1 - n1 / n) * (n - d) / (n - 1)
    return o_minus_e**2 / var


def test_logrank_with_entry(gbsg2):
    time = gbsg2["time"].to_numpy(float)
    event = gbsg2["cens"].to_numpy()
    group = gbsg2["horTh"].to_numpy()
    plain = logrank_test(time, event, group)
    zero = logrank_test(time, event, group, entry=np.zeros_like(time))
    assert zero["chisq"] == plain["chisq"]
    np.testing.assert_array_equal(zero["variance"], plain["variance"])
    pd.testing.assert_frame_equal(zero["table"], plain["table"])

    res = logrank_test(time, event, group, entry=gbsg2["entry"])
    loop = brute_force_logrank(time, event, group == "yes", gbsg2["entry"].to_numpy())
    assert res["chisq"] == pytest.approx(loop, rel=1e-10)
    assert res["chisq"] != pytest.approx(plain["chisq"], rel=1e-3)
    # R: coxph(Surv(entry, time, cens) ~ horTh, ties = "efron") score test 8.012637
    # (survdiff refuses counting-process data). Ours is 8.01149, 1.4e-4 lower: the
    # score U = O - E is the same, but with tied event times Efron's information
    # differs from the hypergeometric variance of the log-rank test (they agree
    # exactly when no two events share a time).
    assert res["chisq"] == pytest.approx(8.012637, rel=1e-2)


def test_logrank_entry_equals_cox_score_without_ties():
    # Untied event times: the counting-process log-rank equals the Cox score test
    # (information sum of p(1 - p) at beta = 0), computed here by a loop.
    rng = np.random.default_rng(3)
    n = 200
    time = rng.exponential(10, n) + 1
    entry = rng.uniform(0, 1, n) * time * 0.5
    event = rng.integers(0, 2, n)
    group = rng.integers(0, 2, n).astype(bool)
    u, info = 0.0, 0.0
    for t in time[event == 1]:
        at_risk = (entry < t) & (t <= time)
        p = (at_risk & group).sum() / at_risk.sum()
        d1 = group[(time == t)].sum()
        u += d1 - p
        info += p * (1 - p)
    res = logrank_test(time, event, group, entry=entry)
    assert res["chisq"] == pytest.approx(u**2 / info, rel=1e-10)


# --------------------------------------------------------------------------
# unit tests
# --------------------------------------------------------------------------
def test_km_weights_one_and_entry_zero_equal_plain_km(gbsg2):
    time, event = gbsg2["time"], gbsg2["cens"]
    plain = kaplan_meier(time, event)
    ones = kaplan_meier(time, event, weights=np.ones(len(time)))
    # weighted counts are floats; the values are identical
    pd.testing.assert_frame_equal(ones, plain, check_dtype=False, check_exact=True)
    assert ones["n_risk"].dtype == float
    zero = kaplan_meier(time, event, entry=np.zeros(len(time)))
    pd.testing.assert_frame_equal(zero, plain, check_exact=True)


def test_weighted_delayed_km_matches_loop():
    rng = np.random.default_rng(7)
    n = 60
    time = rng.integers(2, 30, n).astype(float)  # ties on purpose
    entry = np.floor(rng.uniform(0, 1, n) * time)
    event = rng.integers(0, 2, n)
    w = rng.uniform(0.2, 3, n)
    curve = kaplan_meier(time, event, conf_type="log", entry=entry, weights=w)
    s, var = 1.0, 0.0
    for i, t in enumerate(np.unique(time), start=1):
        n_risk = w[(entry < t) & (t <= time)].sum()
        d = w[(time == t) & (event == 1)].sum()
        if d > 0:
            s *= 1 - d / n_risk
            var += d / (n_risk * (n_risk - d))
        row = curve.iloc[i]
        assert row["n_risk"] == pytest.approx(n_risk, rel=1e-12)
        assert row["n_event"] == pytest.approx(d, rel=1e-12, abs=1e-12)
        assert row["surv"] == pytest.approx(s, rel=1e-12)
        assert row["std_err"] == pytest.approx(np.sqrt(var), rel=1e-12, abs=1e-15)
    # integer weights count as repeated patients
    k = rng.integers(1, 4, n)
    weighted = kaplan_meier(time, event, weights=k)
    repeated = kaplan_meier(np.repeat(time, k), np.repeat(event, k))
    np.testing.assert_allclose(weighted["surv"], repeated["surv"], rtol=1e-12)
    np.testing.assert_allclose(weighted["std_err"], repeated["std_err"], rtol=1e-12)


def test_rmst_by_hand():
    # S = 1 on [0, 1), 0.75 on [1, 2), 0.5 on [2, 3), 0.25 from 3; horizon 2.5
    curve = kaplan_meier([1, 2, 3, 4], [1, 1, 1, 1])
    res = rmst(curve, 2.5)
    assert res["rmst"] == pytest.approx(1 + 0.75 + 0.5 * 0.5)
    # Miller: areas after t=1 (1.0) and t=2 (0.25); hazard terms 1/(4*3), 1/(3*2)
    assert res["se"] == pytest.approx(np.sqrt(1.0**2 / 12 + 0.25**2 / 6))
    assert rmst(curve, 10)["rmst"] == pytest.approx(2.5)  # curve reached 0
    with pytest.raises(ValueError, match="beyond the last follow-up"):
        rmst(kaplan_meier([1, 2, 3], [1, 1, 0]), 5)
    with pytest.raises(ValueError, match="horizon must be a positive"):
        rmst(curve, 0)


def test_truncation_caps_at_percentiles():
    rng = np.random.default_rng(11)
    ps = rng.uniform(0.02, 0.98, 500)
    treated = rng.uniform(size=500) < ps
    raw = stabilised_weights(treated, ps)
    p1 = treated.mean()
    np.testing.assert_allclose(raw, np.where(treated, p1 / ps, (1 - p1) / (1 - ps)))
    capped = stabilised_weights(treated, ps, truncate=(1, 99))
    low, high = np.percentile(raw, [1, 99])
    assert capped.min() == pytest.approx(low)
    assert capped.max() == pytest.approx(high)
    inside = (raw >= low) & (raw <= high)
    np.testing.assert_array_equal(capped[inside], raw[inside])
    assert np.sum(raw > high) == np.sum(capped == high) - np.sum(raw == high)
    # a missing score gives a missing weight
    ps_nan = ps.copy()
    ps_nan[0] = np.nan
    assert np.isnan(stabilised_weights(treated, ps_nan)[0])


def test_propensity_missing_covariate_and_categorical_smd(gbsg2):
    data = gbsg2.copy()
    data.loc[data.index[:10], "tsize"] = np.nan
    ps, table = propensity_scores(data, "horTh", ["no", "yes"], PS_TERMS, PS_CATEGORICAL)
    assert ps.iloc[:10].isna().all()
    assert ps.iloc[10:].notna().all()
    assert table.attrs["n_used"] == len(data) - 10
    smd = standardised_differences(data, "horTh", ["no", "yes"], ["menostat"], PS_CATEGORICAL)
    treated = data["horTh"] == "yes"
    p1 = (data.loc[treated, "menostat"] == "Pre").mean()
    p0 = (data.loc[~treated, "menostat"] == "Pre").mean()
    by_hand = (p1 - p0) / np.sqrt((p1 * (1 - p1) + p0 * (1 - p0)) / 2)
    assert smd["level"].tolist() == ["Pre"]
    assert smd["smd_unweighted"].iloc[0] == pytest.approx(by_hand, rel=1e-12)
    assert np.isnan(smd["smd_weighted"].iloc[0])


def test_invalid_input_raises(gbsg2):
    time, event = [5.0, 6.0, 7.0], [1, 0, 1]
    with pytest.raises(ValueError, match="entry must be before time"):
        kaplan_meier(time, event, entry=[1, 6, 2])
    with pytest.raises(ValueError, match="entry must be >= 0"):
        kaplan_meier(time, event, entry=[-1, 0, 0])
    with pytest.raises(ValueError, match=r"entry \(2\) and time \(3\)"):
        kaplan_meier(time, event, entry=[0, 0])
    with pytest.raises(ValueError, match="weights must be >= 0"):
        kaplan_meier(time, event, weights=[1, -1, 1])
    with pytest.raises(ValueError, match="weights contain missing"):
        kaplan_meier(time, event, weights=[1, np.nan, 1])
    with pytest.raises(ValueError, match="weights are all zero"):
        kaplan_meier(time, event, weights=[0, 0, 0])
    with pytest.raises(ValueError, match="entry must be before time"):
        logrank_test(time, event, ["a", "b", "a"], entry=[0, 7, 0])
    with pytest.raises(ValueError, match="exactly two levels"):
        rmst_difference(time, event, ["a", "b", "c"], ["a", "b", "c"], 5)
    with pytest.raises(ValueError, match="truncate must be"):
        stabilised_weights([1, 0], [0.5, 0.5], truncate=(99, 1))
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        stabilised_weights([1, 0], [1.0, 0.5])
    with pytest.raises(ValueError, match="treated must be 0/1"):
        stabilised_weights([2, 0], [0.5, 0.5])
    with pytest.raises(ValueError, match="not among the levels"):
        propensity_scores(gbsg2, "horTh", ["no", "maybe"], ["age"])
    with pytest.raises(ValueError, match="is not a column"):
        standardised_differences(gbsg2, "arm", ["no", "yes"], ["age"])


def r_survfitkm_robust_loop(time, event, entry, w):
    """se(S)/S by R's survfitkm C recursion (type 1, one cluster per row), in Python."""
    times = np.unique(time)
    inf1 = np.zeros(time.size)
    km, out = 1.0, []
    v1 = 0.0
    for t in times:
        at_risk = (entry < t) & (t <= time)
        n = w[at_risk].sum()
        dying = (time == t) & (event == 1)
        d = w[dying].sum()
        if d > 0:
            haz = d / n
            inf1 = inf1 * (1 - haz) + np.where(at_risk, w, 0.0) * km * haz / n
            inf1 = inf1 - np.where(dying, km * w / n, 0.0)
            km *= 1 - haz
            v1 = np.sum(inf1**2)
        out.append(np.sqrt(v1) / km if km > 0 else np.inf)
    return np.array(out)


def test_robust_km_se_matches_r_recursion():
    rng = np.random.default_rng(5)
    n = 80
    time = rng.integers(2, 40, n).astype(float)  # tied times
    entry = np.floor(rng.uniform(0, 0.8, n) * time)
    event = rng.integers(0, 2, n)
    w = rng.uniform(0.3, 2.5, n)
    for e, wt in [(None, None), (None, w), (entry, None), (entry, w)]:
        curve = kaplan_meier(time, event, entry=e, weights=wt, robust=True)
        loop = r_survfitkm_robust_loop(
            time, event, np.zeros(n) if e is None else e, np.ones(n) if wt is None else wt
        )
        np.testing.assert_allclose(curve["std_err"].to_numpy()[1:], loop, rtol=1e-9)
        plain = kaplan_meier(time, event, entry=e, weights=wt)
        np.testing.assert_array_equal(curve["surv"], plain["surv"])
    # a curve that reaches 0: infinite error there, limits NaN, as the Greenwood one
    curve = kaplan_meier([1, 2, 3], [1, 1, 1], weights=[0.5, 1.5, 1.0], robust=True)
    assert np.isinf(curve["std_err"].iloc[-1])
    assert np.isnan(curve["lower"].iloc[-1])
