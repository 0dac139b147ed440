"""Cox model extensions: delayed entry, case weights + robust SE, strata, interactions.

R references: survival 3.5-3 on lifelines' gbsg2 (rows in file order, row =
1-based data row), copied here as literals with the R call that produced
them. Independent checks: loop-over-event-times implementations of the
weighted, stratified, left-truncated Efron partial likelihood, of R's score
residuals (coxscore2 / agscore2) and of the cox.zph score test (zph1 / zph2),
written from their definitions; brute-force pair counting for the
concordance; and invariances (a row split at an interior time, integer
weights versus replicated rows under Breslow ties).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from lifelines.datasets import load_gbsg2

from sepher.survival.cox import concordance_general, design_matrix, fit_cox
from sepher.survival.zph import cox_zph, scaled_schoenfeld, transformed_time

CAT = {"horTh": ["no", "yes"], "menostat": ["Post", "Pre"], "tgrade": ["I", "II", "III"]}

# coxph(Surv(entry, time, cens) ~ horTh + age + pnodes + tgrade, ties = "efron")
R_ENTRY = {
    "horThyes": (-0.32951986, 0.12897623),
    "age": (-0.000508051, 0.00597094),
    "pnodes": (0.05381163, 0.00684561),
    "tgradeII": (0.76809121, 0.24696339),
    "tgradeIII": (1.0079457, 0.26261254),
}
# coxph(Surv(entry, time, cens) ~ horTh)$score
R_ENTRY_SCORE = 8.012637
# weights from glm(horTh ~ age + menostat + tsize + tgrade + pnodes + progrec + estrec,
# binomial), stabilised ATE: sum(w), min(w), max(w)
R_WEIGHTS = (685.819174, 0.448991, 2.636639)
# coxph(Surv(time, cens) ~ horTh, weights = w, robust = TRUE): coef, robust se
R_IPTW = (-0.37503050, 0.13742022)
# coxph(Surv(time, cens) ~ horTh + age + pnodes + strata(tgrade))
R_STRATA = {
    "horThyes": (-0.33903534, 0.12905383),
    "age": (-0.0000437835, 0.005991601),
    "pnodes": (0.054384578, 0.006861794),
}
# coxph(Surv(time, cens) ~ horTh * menostat)
R_INTERACTION = {
    "horThyes": (-0.38903513, 0.1523331),
    "menostatPre": (-0.14303671, 0.1399396),
    "horThyes:menostatPre": (-0.03842421, 0.2813052),
}
R_INTERACTION_P = 0.89135282


@pytest.fixture(scope="module")
def gbsg2():
    data = load_gbsg2()
    row = np.arange(1, len(data) + 1)
    data["entry"] = np.floor(0.25 * data["time"] * ((row % 4) / 4))
    return data


def assert_table(fit, expected, se="se"):
    table = fit.table.set_index("column")
    for column, (coef, err) in expected.items():
        assert table.loc[column, "coef"] == pytest.approx(coef, rel=1e-5), column
        assert table.loc[column, se] == pytest.approx(err, rel=1e-5), column


# --------------------------------------------------------------- R on GBSG2
def test_delayed_entry_cox_matches_r(gbsg2):
    terms = ["horTh", "age", "pnodes", "tgrade"]
    fit = fit_cox(gbsg2, "time", "cens", terms, categorical=CAT, entry_col="entry")
    assert_table(fit, R_ENTRY)
    single = fit_cox(gbsg2, "time", "cens", ["horTh"], categorical=CAT, entry_col="entry")
    assert single.score_chisq == pytest.approx(R_ENTRY_SCORE, rel=1e-4)


def test_iptw_weighted_cox_robust_matches_r(gbsg2):
    covariates = ["age", "menostat", "tsize", "tgrade", "pnodes", "progrec", "estrec"]
    x, _, complete = design_matrix(gbsg2, covariates, CAT)
    assert complete.all()
    treated = (gbsg2["horTh"] == "yes").to_numpy(dtype=float)
    glm = sm.GLM(treated, sm.add_constant(x), family=sm.families.Binomial()).fit()
    ps = glm.fittedvalues
    share = treated.mean()
    w = np.where(treated == 1, share / ps, (1 - share) / (1 - ps))
    assert (w.sum(), w.min(), w.max()) == pytest.approx(R_WEIGHTS, rel=1e-5)
    data = gbsg2.assign(w=w)
    fit = fit_cox(data, "time", "cens", ["horTh"], categorical=CAT, weights_col="w", robust=True)
    row = fit.table.iloc[0]
    assert row["coef"] == pytest.approx(R_IPTW[0], rel=1e-5)
    assert row["se_robust"] == pytest.approx(R_IPTW[1], rel=1e-5)
    # Wald z, p and limits use the robust SE, as R's summary
    assert row["z"] == pytest.approx(row["coef"] / row["se_robust"], rel=1e-12)
    assert row["hr_upper"] == pytest.approx(np.exp(row["coef"] + 1.959964 * row["se_robust"]))
    assert fit.robust_covariance[0, 0] == pytest.approx(row["se_robust"] ** 2, rel=1e-12)


def test_stratified_cox_matches_r(gbsg2):
    fit = fit_cox(
        gbsg2, "time", "cens", ["horTh", "age", "pnodes"], categorical=CAT, strata=["tgrade"]
    )
    assert_table(fit, R_STRATA)
    assert fit.strata_levels == ["tgrade=I", "tgrade=II", "tgrade=III"]


def test_interaction_cox_matches_r(gbsg2):
    terms = ["horTh", "menostat", "horTh:menostat"]
    fit = fit_cox(gbsg2, "time", "cens", terms, categorical=CAT)
    assert fit.columns == ["horThyes", "menostatPre", "horThyes:menostatPre"]
    assert_table(fit, R_INTERACTION)
    row = fit.table.set_index("column").loc["horThyes:menostatPre"]
    assert row["p"] == pytest.approx(R_INTERACTION_P, rel=1e-4)
    assert (row["term"], row["level"], row["reference"]) == ("horTh:menostat", "yes:Pre", "no:Post")


def test_interaction_column_names_follow_r(gbsg2):
    terms = ["horTh", "age", "tgrade", "pnodes", "horTh:age", "age:pnodes", "tgrade:horTh"]
    x, columns, _ = design_matrix(gbsg2, terms, CAT)
    names = [c["column"] for c in columns]
    assert names[-4:] == ["horThyes:age", "age:pnodes", "tgradeII:horThyes", "tgradeIII:horThyes"]
    yes = (gbsg2["horTh"] == "yes").to_numpy()
    np.testing.assert_array_equal(x[:, names.index("horThyes:age")], yes * gbsg2["age"])
    grade3 = (gbsg2["tgrade"] == "III").to_numpy()
    np.testing.assert_array_equal(x[:, names.index("tgradeIII:horThyes")], grade3 * yes)
    assert columns[names.index("horThyes:age")]["term"] == "horTh:age"


# ------------------------------------------------------------- equivalences
def cohort(n, seed):
    rng = np.random.default_rng(seed)
    age = rng.normal(60, 8, n)
    arm = rng.integers(0, 2, n)
    time = np.ceil(rng.exponential(20 * np.exp(-0.03 * (age - 60) + 0.5 * arm)))
    censor = rng.uniform(5, 40, n)
    return pd.DataFrame(
        {
            "months": np.minimum(time, np.ceil(censor)),
            "event": (time <= censor).astype(int),
            "age": age,
            "arm": arm,
            "site": rng.choice(["a", "b", "c"], n),
            "w": rng.uniform(0.3, 2.5, n),
        }
    )


def test_entry_all_zero_equals_no_entry_exactly():
    data = cohort(200, 1).assign(entry=0.0)
    plain = fit_cox(data, "months", "event", ["age", "arm"])
    entry = fit_cox(data, "months", "event", ["age", "arm"], entry_col="entry")
    np.testing.assert_array_equal(plain.beta, entry.beta)
    np.testing.assert_array_equal(plain.covariance, entry.covariance)
    assert (plain.loglik, plain.score_chisq) == (entry.loglik, entry.score_chisq)
    assert plain.concordance == pytest.approx(entry.concordance, rel=1e-14)
    pd.testing.assert_frame_equal(cox_zph(plain), cox_zph(entry))


def test_unit_weights_and_one_stratum_equal_unweighted():
    data = cohort(200, 2).assign(one=1.0, stratum="x")
    plain = fit_cox(data, "months", "event", ["age", "arm"])
    weighted = fit_cox(data, "months", "event", ["age", "arm"], weights_col="one")
    single = fit_cox(data, "months", "event", ["age", "arm"], strata=["stratum"])
    for other in (weighted, single):
        np.testing.assert_allclose(other.beta, plain.beta, rtol=1e-12)
        np.testing.assert_allclose(other.covariance, plain.covariance, rtol=1e-10)
        assert other.loglik == pytest.approx(plain.loglik, rel=1e-12)
        assert other.concordance == pytest.approx(plain.concordance, rel=1e-12)
        pd.testing.assert_frame_equal(cox_zph(other), cox_zph(plain), rtol=1e-9)
    resid = scaled_schoenfeld(single, stratum_column=True)
    assert set(resid["stratum"]) == {"stratum=x"}
    pd.testing.assert_frame_equal(
        resid.drop(columns="stratum"), scaled_schoenfeld(plain), rtol=1e-9
    )


def split_rows(data, seed):
    """Each row with months > 2 split at an interior integer time: (entry, cut], (cut, months]."""
    rng = np.random.default_rng(seed)
    long = data[data["months"] > 2]
    cut = np.floor(rng.uniform(1, long["months"] - 1))
    first = long.assign(months=cut, event=0, entry=long["entry"])
    second = long.assign(entry=cut)
    rest = data[data["months"] <= 2]
    return pd.concat([rest, first, second], ignore_index=True)


def test_split_rows_give_the_same_fit_zph_and_concordance():
    data = cohort(250, 3).assign(entry=0.0)
    whole = fit_cox(data, "months", "event", ["age", "arm"], entry_col="entry")
    split = fit_cox(split_rows(data, 3), "months", "event", ["age", "arm"], entry_col="entry")
    np.testing.assert_allclose(split.beta, whole.beta, rtol=1e-9)
    np.testing.assert_allclose(split.covariance, whole.covariance, rtol=1e-9)
    assert split.loglik == pytest.approx(whole.loglik, rel=1e-12)
    assert split.concordance == pytest.approx(whole.concordance, rel=1e-12)
    for transform in ("km", "identity"):
        pd.testing.assert_frame_equal(
            cox_zph(split, transform), cox_zph(whole, transform), rtol=1e-8
        )


def test_integer_weights_equal_replicated_rows_with_breslow():
    data = cohort(150, 4)
    data["k"] = np.random.default_rng(4).integers(1, 4, len(data)).astype(float)
    replicated = data.loc[data.index.repeat(data["k"].astype(int))].reset_index(drop=True)
    terms = ["age", "arm"]
    kw = {"ties": "breslow", "strata": ["site"]}
    weighted = fit_cox(data, "months", "event", terms, weights_col="k", **kw)
    copies = fit_cox(replicated, "months", "event", terms, **kw)
    np.testing.assert_allclose(weighted.beta, copies.beta, rtol=1e-9)
    np.testing.assert_allclose(weighted.covariance, copies.covariance, rtol=1e-8)
    assert weighted.score_chisq == pytest.approx(copies.score_chisq, rel=1e-9)
    assert weighted.concordance == pytest.approx(copies.concordance, rel=1e-9)
    # identity transform: g(t) does not depend on how many rows share t
    pd.testing.assert_frame_equal(
        cox_zph(weighted, "identity"), cox_zph(copies, "identity"), rtol=1e-8
    )


# --------------------------------------------------- loop-based references
def general_data(seed, n=120):
    data = cohort(n, seed)
    rng = np.random.default_rng(seed + 100)
    data["entry"] = np.floor(data["months"] * rng.uniform(0, 0.6, n))
    return data


def naive_loglik(beta, x, time, event, entry, stratum, w, efron=True):
    """Weighted, stratified, left-truncated Efron log partial likelihood by loops."""
    eta = x @ beta
    r = w * np.exp(eta)
    total = 0.0
    for s in np.unique(stratum):
        for t in np.unique(time[(event == 1) & (stratum == s)]):
            dead = (time == t) & (event == 1) & (stratum == s)
            risk = (entry < t) & (time >= t) & (stratum == s)
            d = dead.sum()
            total += w[dead] @ eta[dead]
            meanwt = w[dead].sum() / d
            for ell in range(d):
                frac = ell / d if efron else 0.0
                total -= meanwt * np.log(r[risk].sum() - frac * r[dead].sum())
    return total


def naive_score_residuals(beta, x, time, event, entry, stratum, w):
    """R's Efron score residuals (coxscore2 / agscore2) by loops, unweighted."""
    x = x - x.mean(axis=0)
    score = np.exp(x @ beta)
    r = w * score
    resid = np.zeros_like(x)
    for s in np.unique(stratum):
        for t in np.unique(time[(event == 1) & (stratum == s)]):
            dead = (time == t) & (event == 1) & (stratum == s)
            risk = (entry < t) & (time >= t) & (stratum == s)
            d = dead.sum()
            meanwt = w[dead].sum() / d
            for ell in range(d):
                frac = ell / d
                den = r[risk].sum() - frac * r[dead].sum()
                xbar = (r[risk] @ x[risk] - frac * (r[dead] @ x[dead])) / den
                hazard = meanwt / den
                share = np.where(dead, 1 - frac, 1.0)[risk]
                resid[risk] -= (score[risk] * share * hazard)[:, None] * (x[risk] - xbar)
                resid[dead] += (x[dead] - xbar) / d
    return resid


def naive_zph(fit, g_of_time):
    """u and 2p x 2p information of the cox.zph score test by loops (R's zph2)."""
    x = fit.design - fit.design.mean(axis=0)
    w = np.ones(fit.n) if fit.weights is None else fit.weights
    entry = np.full(fit.n, -np.inf) if fit.entry is None else fit.entry
    stratum = np.zeros(fit.n) if fit.strata is None else fit.strata
    r = w * np.exp(x @ fit.beta)
    p = x.shape[1]
    u = np.zeros(2 * p)
    info = np.zeros((2 * p, 2 * p))
    for s in np.unique(stratum):
        for t in np.unique(fit.time[(fit.event == 1) & (stratum == s)]):
            z = np.hstack([x, x * g_of_time[t]])
            dead = (fit.time == t) & (fit.event == 1) & (stratum == s)
            risk = (entry < t) & (fit.time >= t) & (stratum == s)
            d = dead.sum()
            meanwt = w[dead].sum() / d
            u += w[dead] @ z[dead]
            for ell in range(d):
                ww = r * (risk - (ell / d) * dead)
                mean = ww @ z / ww.sum()
                u -= meanwt * mean
                info += meanwt * ((z.T * ww) @ z / ww.sum() - np.outer(mean, mean))
    u[:p] = 0.0
    return u, info


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_general_fit_matches_loop_likelihood(ties):
    data = general_data(5)
    cat = {"site": ["a", "b", "c"]}
    kw = {"entry_col": "entry", "weights_col": "w", "strata": ["arm"]}
    fit = fit_cox(data, "months", "event", ["age", "site"], categorical=cat, ties=ties, **kw)
    x = fit.design
    stratum = data["arm"].to_numpy()
    args = (x, fit.time, fit.event, fit.entry, stratum, fit.weights, ties == "efron")
    beta = fit.beta
    assert fit.loglik == pytest.approx(naive_loglik(beta, *args), rel=1e-10)
    assert fit.loglik_null == pytest.approx(naive_loglik(0 * beta, *args), rel=1e-10)
    # central differences with steps on the scale of each coefficient's SE
    step = 1e-3 * np.sqrt(np.diag(fit.covariance))
    eye = np.diag(step)
    grad = [
        (naive_loglik(beta + e, *args) - naive_loglik(beta - e, *args)) / (2 * h)
        for e, h in zip(eye, step, strict=True)
    ]
    np.testing.assert_allclose(np.asarray(grad) * step, 0, atol=1e-9)
    hess = np.array(
        [
            [
                (
                    naive_loglik(beta + a + b, *args)
                    - naive_loglik(beta + a - b, *args)
                    - naive_loglik(beta - a + b, *args)
                    + naive_loglik(beta - a - b, *args)
                )
                / (4 * ha * hb)
                for b, hb in zip(eye, step, strict=True)
            ]
            for a, ha in zip(eye, step, strict=True)
        ]
    )
    np.testing.assert_allclose(np.linalg.inv(-hess), fit.covariance, rtol=1e-5)


def test_robust_variance_matches_loop_score_residuals():
    data = general_data(6)
    fit = fit_cox(
        data,
        "months",
        "event",
        ["age", "arm"],
        entry_col="entry",
        weights_col="w",
        strata=["site"],
        robust=True,
    )
    stratum = pd.Categorical(data["site"]).codes
    resid = naive_score_residuals(
        fit.beta, fit.design, fit.time, fit.event, fit.entry, stratum, fit.weights
    )
    dfbeta = (resid * fit.weights[:, None]) @ fit.covariance
    np.testing.assert_allclose(fit.robust_covariance, dfbeta.T @ dfbeta, rtol=1e-9)
    se = fit.table["se_robust"].to_numpy()
    assert np.all(np.isfinite(se))


def test_robust_se_unweighted_is_close_to_model_se():
    data = cohort(600, 7)
    fit = fit_cox(data, "months", "event", ["age", "arm"], robust=True)
    ratio = fit.table["se_robust"] / fit.table["se"]
    assert np.all(np.isfinite(fit.table["se_robust"]))
    assert np.all((ratio > 0.85) & (ratio < 1.15))
    assert np.isfinite(fit.robust_score_chisq) and fit.robust_score_chisq > 0
    plain = fit_cox(data, "months", "event", ["age", "arm"])
    assert "se_robust" not in plain.table and plain.robust_covariance is None


@pytest.mark.parametrize("transform", ["km", "identity", "rank"])
def test_cox_zph_with_entry_strata_weights_matches_loop(transform):
    data = general_data(8)
    fit = fit_cox(
        data,
        "months",
        "event",
        ["age", "site"],
        categorical={"site": ["a", "b", "c"]},
        entry_col="entry",
        weights_col="w",
        strata=["arm"],
    )
    g_all = transformed_time(fit.time, fit.event, transform, entry=fit.entry)
    g_all = g_all - g_all[fit.event == 1].mean()
    g_of_time = {t: g_all[fit.time == t][0] for t in np.unique(fit.time)}
    u, info = naive_zph(fit, g_of_time)
    ours = cox_zph(fit, transform=transform).set_index("term")
    assert ours.loc["GLOBAL", "chisq"] == pytest.approx(u @ np.linalg.solve(info, u), rel=1e-8)
    keep = [0, 1, 2, 4, 5]
    uk = u[keep]
    expected = uk @ np.linalg.solve(info[np.ix_(keep, keep)], uk)
    assert ours.loc["site", "chisq"] == pytest.approx(expected, rel=1e-8)


def test_left_truncated_km_transform():
    time = np.array([2.0, 3, 3, 5, 6])
    event = np.array([1, 1, 0, 1, 0])
    entry = np.array([0.0, 0, 2, 4, 1])
    # at risk: t=2 -> rows 0,1,4 (row 2 enters at 2) = 3, S=2/3; t=3 -> rows 1,2,4 = 3,
    # S=4/9; t=5 -> rows 3,4 = 2, S=2/9
    expected = 1 - np.array([1, 2 / 3, 2 / 3, 4 / 9, 2 / 9])
    np.testing.assert_allclose(transformed_time(time, event, "km", entry=entry), expected)


def test_stratified_scaled_schoenfeld_rescales_within_strata():
    data = cohort(300, 9)
    # arm constant within stratum "c": its residuals there are NaN (R's used = 0)
    data.loc[data["site"] == "c", "arm"] = 1
    fit = fit_cox(data, "months", "event", ["age", "arm"], strata=["site"])
    resid = scaled_schoenfeld(fit, transform="identity", stratum_column=True)
    assert list(resid["stratum"].unique()) == ["site=a", "site=b", "site=c"]
    in_c = resid["stratum"] == "site=c"
    assert resid.loc[in_c, "arm"].isna().all() and resid.loc[~in_c, "arm"].notna().all()
    assert resid["age"].notna().all()
    n_events = fit.event.sum()
    assert len(resid) == n_events
    # age varies in every stratum: its residuals are scaled by info / n_events
    assert resid["age"].mean() == pytest.approx(fit.beta[0], abs=0.05)
    assert "stratum" not in scaled_schoenfeld(fit)


def test_general_concordance_matches_brute_force():
    data = general_data(10, n=80)
    fit = fit_cox(
        data,
        "months",
        "event",
        ["age", "arm"],
        entry_col="entry",
        weights_col="w",
        strata=["site"],
    )
    lp = fit.linear_predictor
    stratum = fit.strata
    conc = disc = 0.0
    for i in np.flatnonzero(fit.event == 1):
        t = fit.time[i]
        partner = (
            (stratum == stratum[i])
            & (fit.entry < t)
            & ((fit.time > t) | ((fit.time == t) & (fit.event == 0)))
        )
        ww = fit.weights[i] * fit.weights[partner]
        conc += ww[lp[partner] < lp[i]].sum() + ww[lp[partner] == lp[i]].sum() / 2
        disc += ww[lp[partner] > lp[i]].sum() + ww[lp[partner] == lp[i]].sum() / 2
    assert fit.concordance == pytest.approx(conc / (conc + disc), rel=1e-12)
    counts = concordance_general(fit.time, fit.event, lp, fit.entry, stratum, fit.weights)
    assert counts["concordance"] == fit.concordance


# -------------------------------------------------------------- validation
def test_invalid_entry_weights_strata_raise_naming_the_column():
    data = cohort(50, 11).assign(entry=0.0)
    bad = data.assign(entry=data["months"])
    bad.loc[:2, "entry"] = 0.0
    with pytest.raises(ValueError, match=r"entry.*47 row"):
        fit_cox(bad, "months", "event", ["age"], entry_col="entry")
    with pytest.raises(ValueError, match="entry"):
        fit_cox(data.assign(entry=-1.0), "months", "event", ["age"], entry_col="entry")
    for value in (0.0, -1.0, np.inf):
        bad_w = data.assign(w=data["w"].where(data.index > 0, value))
        with pytest.raises(ValueError, match=r"w: case weights.*1 row"):
            fit_cox(bad_w, "months", "event", ["age"], weights_col="w")
    with pytest.raises(ValueError, match="'arm'.*also model terms"):
        fit_cox(data, "months", "event", ["age", "arm"], strata=["arm"])
    with pytest.raises(ValueError, match="'nothere'"):
        fit_cox(data, "months", "event", ["age"], strata=["nothere"])
    with pytest.raises(ValueError, match="'nothere'"):
        fit_cox(data, "months", "event", ["age"], entry_col="nothere")


def test_missing_entry_weight_stratum_rows_are_excluded():
    data = cohort(80, 12).assign(entry=0.0)
    data.loc[0, "entry"] = np.nan
    data.loc[1, "w"] = np.nan
    data.loc[2, "site"] = None
    fit = fit_cox(
        data, "months", "event", ["age"], entry_col="entry", weights_col="w", strata=["site"]
    )
    assert fit.n_excluded == 3 and fit.n == 77
