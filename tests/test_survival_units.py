"""Unit tests of the survival library against lifelines and hand-checkable cases.

Independent references: lifelines 0.30.3 (KaplanMeierFitter, logrank tests,
CoxPHFitter with Efron ties, concordance_index), explicit loop-over-event-
times implementations of the Breslow/Efron partial likelihood and of the
cox.zph score test written here from their textbook definitions, and
brute-force O(n^2) pair counting for the concordance.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.statistics import logrank_test as ll_logrank
from lifelines.statistics import multivariate_logrank_test
from lifelines.utils import concordance_index
from scipy.optimize import approx_fprime
from scipy.stats import norm

from sepher.survival.cox import concordance_counts, fit_cox
from sepher.survival.km import kaplan_meier, km_median, number_at_risk, survival_at
from sepher.survival.logrank import logrank_test
from sepher.survival.zph import cox_zph, scaled_schoenfeld, transformed_time


def simulated_cohort(n, seed, tied=True):
    """Exponential times with three covariates; months rounded (ties) or not."""
    rng = np.random.default_rng(seed)
    age = rng.normal(60, 8, n)
    arm = rng.integers(0, 2, n)
    sites = rng.poisson(1.5, n)
    lp = 0.03 * (age - 60) - 0.5 * arm + 0.2 * sites
    event_time = rng.exponential(20 * np.exp(-lp))
    censor = rng.uniform(5, 40, n)
    time = np.minimum(event_time, censor)
    if tied:
        time = np.ceil(time)
    return pd.DataFrame(
        {
            "months": time,
            "event": (event_time <= censor).astype(int),
            "age": age,
            "arm": arm,
            "sites": sites.astype(float),
            "group": rng.choice(["A", "B", "C"], n),
        }
    )


# ----------------------------------------------------------------------- KM
@pytest.mark.parametrize("seed", [1, 2])
def test_km_matches_lifelines_curve_and_loglog_ci(seed):
    data = simulated_cohort(300, seed)
    curve = kaplan_meier(data["months"], data["event"], conf_type="log-log")
    kmf = KaplanMeierFitter(alpha=0.05).fit(data["months"], data["event"])
    ll_surv = kmf.survival_function_["KM_estimate"]
    ll_ci = kmf.confidence_interval_
    assert np.allclose(curve["time"], ll_surv.index)
    assert np.allclose(curve["surv"], ll_surv.to_numpy(), rtol=1e-12)
    inner = (curve["surv"] > 0) & (curve["surv"] < 1)
    assert inner.sum() > 10
    assert np.allclose(curve.loc[inner, "lower"], ll_ci.iloc[:, 0].to_numpy()[inner], rtol=1e-9)
    assert np.allclose(curve.loc[inner, "upper"], ll_ci.iloc[:, 1].to_numpy()[inner], rtol=1e-9)
    table = kmf.event_table
    assert np.array_equal(curve["n_risk"].to_numpy()[1:], table["at_risk"].to_numpy()[1:])
    assert np.array_equal(curve["n_event"].to_numpy()[1:], table["observed"].to_numpy()[1:])
    assert np.array_equal(curve["n_censor"].to_numpy()[1:], table["censored"].to_numpy()[1:])


def test_km_confidence_types_by_hand():
    curve = kaplan_meier([1, 2, 3, 4], [1, 1, 1, 1], conf_type="log")
    z = norm.ppf(0.975)
    se = np.sqrt(1 / (4 * 3))  # Greenwood after the first death
    assert curve["surv"].tolist() == [1.0, 0.75, 0.5, 0.25, 0.0]
    assert curve.loc[1, "std_err"] == pytest.approx(se)
    assert curve.loc[1, "lower"] == pytest.approx(0.75 * np.exp(-z * se))
    assert curve.loc[1, "upper"] == pytest.approx(min(0.75 * np.exp(z * se), 1.0))
    plain = kaplan_meier([1, 2, 3, 4], [1, 1, 1, 1], conf_type="plain")
    assert plain.loc[1, "lower"] == pytest.approx(0.75 - z * se * 0.75)
    assert plain.loc[1, "upper"] == 1.0  # clipped
    loglog = kaplan_meier([1, 2, 3, 4], [1, 1, 1, 1], conf_type="log-log")
    assert loglog.loc[1, "lower"] == pytest.approx(0.75 ** np.exp(-z * se / np.log(0.75)))
    for frame in (curve, plain, loglog):  # S = 0: limits undefined, as R
        assert np.isnan(frame.loc[4, "lower"]) and np.isnan(frame.loc[4, "upper"])
        assert frame.loc[0, ["time", "surv", "lower", "upper"]].tolist() == [0, 1, 1, 1]


def test_km_median_midpoint_rules():
    # S hits 0.5 exactly at t = 2 and stays until t = 3: R takes the midpoint
    assert km_median(kaplan_meier([1, 2, 3, 4], [1, 1, 1, 1]))["median"] == 2.5
    # curve ends flat at 0.5 (censored at 3 and 4): midpoint to the last time
    assert km_median(kaplan_meier([1, 2, 3, 4], [1, 1, 0, 0]))["median"] == 3.0
    # plain crossing, and never reached
    assert km_median(kaplan_meier([1, 2, 3, 4, 5], [1, 1, 1, 0, 0]))["median"] == 3.0
    never = km_median(kaplan_meier([1, 2, 3, 4], [1, 0, 0, 0]))
    assert np.isnan(never["median"]) and np.isnan(never["upper"])


def test_survival_at_and_number_at_risk():
    curve = kaplan_meier([1, 2, 2, 3, 5], [1, 1, 0, 1, 0])
    got = survival_at(curve, [-1, 0, 0.5, 1, 1.5, 2, 4.9, 5, 6])
    expected = [1, 1, 1, 0.8, 0.8, 0.6, 0.3, 0.3, np.nan]
    np.testing.assert_allclose(got, expected)
    np.testing.assert_array_equal(
        number_at_risk([1, 2, 2, 3, 5], [0, 1, 2, 2.5, 5, 6]), [5, 5, 4, 2, 1, 0]
    )


def test_km_rejects_bad_input():
    with pytest.raises(ValueError, match="event must be 0"):
        kaplan_meier([1, 2], [1, 2])
    with pytest.raises(ValueError, match=">= 0"):
        kaplan_meier([-1, 2], [1, 1])
    with pytest.raises(ValueError, match="missing"):
        kaplan_meier([np.nan, 2], [1, 1])


# ------------------------------------------------------------------ logrank
def test_logrank_two_groups_matches_lifelines():
    data = simulated_cohort(400, 3)
    a, b = data[data["arm"] == 0], data[data["arm"] == 1]
    ours = logrank_test(data["months"], data["event"], data["arm"])
    theirs = ll_logrank(a["months"], b["months"], a["event"], b["event"])
    assert ours["chisq"] == pytest.approx(theirs.test_statistic, rel=1e-10)
    assert ours["p"] == pytest.approx(theirs.p_value, rel=1e-8)
    assert ours["table"]["observed"].sum() == data["event"].sum()
    assert ours["table"]["expected"].sum() == pytest.approx(data["event"].sum())


def test_logrank_three_groups_matches_lifelines_and_level_order():
    data = simulated_cohort(500, 4)
    ours = logrank_test(data["months"], data["event"], data["group"], levels=["C", "A", "B"])
    theirs = multivariate_logrank_test(data["months"], data["group"], data["event"])
    assert ours["df"] == 2
    assert ours["chisq"] == pytest.approx(theirs.test_statistic, rel=1e-10)
    assert ours["p"] == pytest.approx(theirs.p_value, rel=1e-8)
    assert ours["table"]["group"].tolist() == ["C", "A", "B"]
    default = logrank_test(data["months"], data["event"], data["group"])
    assert default["table"]["group"].tolist() == ["A", "B", "C"]
    assert default["chisq"] == pytest.approx(ours["chisq"], rel=1e-12)
    with pytest.raises(ValueError, match="not among levels"):
        logrank_test(data["months"], data["event"], data["group"], levels=["A", "B"])


# ---------------------------------------------------------------------- Cox
def naive_partial_loglik(beta, x, time, event, ties):
    """Breslow / Efron log partial likelihood, one event time at a time."""
    eta = x @ beta
    risk = np.exp(eta)
    total = 0.0
    for t in np.unique(time[event == 1]):
        dead = (time == t) & (event == 1)
        at_risk = time >= t
        d = dead.sum()
        total += eta[dead].sum()
        for ell in range(d):
            frac = ell / d if ties == "efron" else 0.0
            total -= np.log(risk[at_risk].sum() - frac * risk[dead].sum())
    return total


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_cox_maximises_the_textbook_partial_likelihood(ties):
    data = simulated_cohort(150, 5)
    assert data["months"].duplicated().sum() > 50  # many ties: the methods differ
    fit = fit_cox(data, "months", "event", ["age", "arm", "sites"], ties=ties)
    x, time, event = fit.design, fit.time, fit.event

    def loglik(b):
        return naive_partial_loglik(b, x, time, event, ties)

    assert fit.loglik == pytest.approx(loglik(fit.beta), rel=1e-12)
    assert fit.loglik_null == pytest.approx(loglik(np.zeros(3)), rel=1e-12)
    # stopped by R's rule (relative loglik change <= 1e-9): the Newton step
    # still left is negligible against the standard errors
    gradient = approx_fprime(fit.beta, loglik, 1e-6)
    remaining_step = fit.covariance @ gradient
    assert np.all(np.abs(remaining_step) < 1e-3 * np.sqrt(np.diag(fit.covariance)))
    # the covariance is the inverse of the (finite-difference) Hessian
    h = 0.01 * np.sqrt(np.diag(fit.covariance))
    hessian = np.empty((3, 3))
    for k in range(3):
        for m in range(3):
            ek, em = np.eye(3)[k] * h[k], np.eye(3)[m] * h[m]
            hessian[k, m] = (
                loglik(fit.beta + ek + em)
                - loglik(fit.beta + ek - em)
                - loglik(fit.beta - ek + em)
                + loglik(fit.beta - ek - em)
            ) / (4 * h[k] * h[m])
    np.testing.assert_allclose(np.linalg.inv(-hessian), fit.covariance, rtol=1e-4, atol=1e-9)


def test_cox_breslow_equals_efron_without_ties():
    data = simulated_cohort(200, 6, tied=False)
    efron = fit_cox(data, "months", "event", ["age", "arm"], ties="efron")
    breslow = fit_cox(data, "months", "event", ["age", "arm"], ties="breslow")
    np.testing.assert_allclose(efron.beta, breslow.beta, rtol=1e-12)


def test_cox_matches_lifelines_efron():
    data = simulated_cohort(600, 7)
    terms = ["age", "arm", "sites", "group"]
    levels = {"group": ["A", "B", "C"]}
    fit = fit_cox(data, "months", "event", terms, categorical=levels)
    # both iterated to a tight optimum agree closely; R's stopping rule (the
    # default) stops within a negligible fraction of a standard error
    tight = fit_cox(data, "months", "event", terms, categorical=levels, eps=1e-14)
    design = pd.get_dummies(data["group"], prefix="group", prefix_sep="", dtype=float)
    frame = pd.concat(
        [data[["months", "event", "age", "arm", "sites"]], design[["groupB", "groupC"]]], axis=1
    )
    cph = CoxPHFitter().fit(frame, "months", "event", fit_options={"precision": 1e-12})
    table = fit.table.set_index("column")
    tight_table = tight.table.set_index("column")
    for column in ["age", "arm", "sites", "groupB", "groupC"]:
        coef, se = cph.params_[column], cph.standard_errors_[column]
        assert tight_table.loc[column, "coef"] == pytest.approx(coef, rel=1e-8)
        assert tight_table.loc[column, "se"] == pytest.approx(se, rel=1e-8)
        assert table.loc[column, "coef"] == pytest.approx(coef, abs=1e-4 * se)
        assert table.loc[column, "se"] == pytest.approx(se, rel=1e-5)
    assert fit.loglik == pytest.approx(cph.log_likelihood_, rel=1e-10)
    assert fit.lr_chisq == pytest.approx(cph.log_likelihood_ratio_test().test_statistic, rel=1e-7)
    assert fit.concordance == pytest.approx(cph.concordance_index_, abs=2e-3)
    assert fit.columns == ["age", "arm", "sites", "groupB", "groupC"]
    assert fit.column_term["groupC"] == "group"


def test_cox_score_test_equals_logrank_for_one_binary_term():
    data = simulated_cohort(300, 8, tied=False)
    fit = fit_cox(data, "months", "event", ["arm"])
    lr = logrank_test(data["months"], data["event"], data["arm"])
    # with no tied times the Cox score test is the log-rank test exactly
    assert fit.score_chisq == pytest.approx(lr["chisq"], rel=1e-10)


def test_cox_complete_case_exclusion():
    data = simulated_cohort(300, 9)
    holed = data.copy()
    holed.loc[[3, 10, 11], "age"] = np.nan
    holed.loc[[10, 20], "group"] = None
    holed.loc[[30], "months"] = np.nan
    fit = fit_cox(
        holed, "months", "event", ["age", "group"], categorical={"group": ["A", "B", "C"]}
    )
    assert fit.n_excluded == 5
    assert fit.n == 295
    clean = fit_cox(
        data.drop(index=[3, 10, 11, 20, 30]),
        "months",
        "event",
        ["age", "group"],
        categorical={"group": ["A", "B", "C"]},
    )
    np.testing.assert_allclose(fit.beta, clean.beta, rtol=1e-12)
    assert fit.events == clean.events


def test_cox_rejects_unknown_level_and_text_covariate():
    data = simulated_cohort(100, 10)
    with pytest.raises(ValueError, match="not among the levels"):
        fit_cox(data, "months", "event", ["group"], categorical={"group": ["A", "B"]})
    with pytest.raises(ValueError, match="non-numeric"):
        fit_cox(data, "months", "event", ["group"])


# -------------------------------------------------------------- concordance
def brute_force_pairs(time, event, risk):
    concordant = discordant = tied = 0
    for i in np.flatnonzero(event == 1):
        comparable = (time > time[i]) | ((time == time[i]) & (event == 0))
        concordant += int(np.sum(comparable & (risk < risk[i])))
        discordant += int(np.sum(comparable & (risk > risk[i])))
        tied += int(np.sum(comparable & (risk == risk[i])))
    return concordant, discordant, tied


@pytest.mark.parametrize(("n", "n_values"), [(400, 3), (400, 40), (1000, 10_000), (2, 2)])
def test_concordance_counts_match_brute_force(n, n_values):
    rng = np.random.default_rng(n + n_values)
    time = rng.integers(0, 25, n).astype(float)
    event = rng.integers(0, 2, n)
    risk = rng.integers(0, n_values, n).astype(float)
    got = concordance_counts(time, event, risk)
    assert (got["concordant"], got["discordant"], got["tied_risk"]) == brute_force_pairs(
        time, event, risk
    )


def test_concordance_matches_lifelines_without_ties():
    rng = np.random.default_rng(11)
    time = rng.exponential(size=3000)
    event = rng.integers(0, 2, 3000)
    risk = rng.normal(size=3000)
    ours = concordance_counts(time, event, risk)["concordance"]
    assert ours == pytest.approx(concordance_index(time, -risk, event), rel=1e-12)


# ----------------------------------------------------------------- cox.zph
def naive_zph(fit, g_event):
    """Score test of x*g(t) at (beta_hat, 0) by looping over event times (Efron)."""
    x = fit.design - fit.design.mean(axis=0)
    risk = np.exp(x @ fit.beta)
    p = x.shape[1]
    u = np.zeros(2 * p)
    info = np.zeros((2 * p, 2 * p))
    for t in np.unique(fit.time[fit.event == 1]):
        g = g_event[t]
        z = np.hstack([x, x * g])
        dead = (fit.time == t) & (fit.event == 1)
        at_risk = fit.time >= t
        d = dead.sum()
        u += z[dead].sum(axis=0)
        for ell in range(d):
            w = risk * (at_risk - (ell / d) * dead)
            mean = w @ z / w.sum()
            u -= mean
            info += (z.T * w) @ z / w.sum() - np.outer(mean, mean)
    u[:p] = 0.0
    return u, info


@pytest.mark.parametrize("transform", ["km", "identity", "rank"])
def test_cox_zph_matches_loop_implementation(transform):
    data = simulated_cohort(120, 12)
    fit = fit_cox(data, "months", "event", ["age", "group"], categorical={"group": ["A", "B", "C"]})
    g_all = transformed_time(fit.time, fit.event, transform)
    g_all = g_all - g_all[fit.event == 1].mean()
    g_event = {t: g_all[(fit.time == t)][0] for t in np.unique(fit.time[fit.event == 1])}
    u, info = naive_zph(fit, g_event)
    ours = cox_zph(fit, transform=transform).set_index("term")
    assert ours.loc["GLOBAL", "chisq"] == pytest.approx(u @ np.linalg.solve(info, u), rel=1e-8)
    keep = [0, 1, 2, 4, 5]  # all coefficients + the group term's added pair
    uk = u[keep]
    expected = uk @ np.linalg.solve(info[np.ix_(keep, keep)], uk)
    assert ours.loc["group", "chisq"] == pytest.approx(expected, rel=1e-8)
    assert ours.loc["group", "df"] == 2 and ours.loc["GLOBAL", "df"] == 3


def test_km_transform_is_left_continuous_pooled_km():
    time = np.array([1.0, 2, 2, 3, 4])
    event = np.array([1, 1, 0, 1, 0])
    # pooled KM: S(1)=0.8, S(2)=0.6, S(3)=0.3; g = 1 - S(t-)
    np.testing.assert_allclose(transformed_time(time, event, "km"), [0, 0.2, 0.2, 0.4, 0.7])
    np.testing.assert_allclose(transformed_time(time, event, "rank"), [1, 2.5, 2.5, 4, 5])


def test_scaled_schoenfeld_matches_lifelines_without_ties():
    data = simulated_cohort(300, 13, tied=False)
    fit = fit_cox(data, "months", "event", ["age", "arm", "sites"])
    ours = scaled_schoenfeld(fit, transform="identity")
    cph = CoxPHFitter().fit(data[["months", "event", "age", "arm", "sites"]], "months", "event")
    theirs = cph.compute_residuals(
        data[["months", "event", "age", "arm", "sites"]], kind="scaled_schoenfeld"
    )
    theirs = theirs.loc[data.index[data["event"] == 1]]
    theirs = theirs.assign(months=data["months"]).sort_values("months")
    np.testing.assert_allclose(ours["time"], theirs["months"])
    np.testing.assert_allclose(ours["transformed_time"], theirs["months"])
    for column in ["age", "arm", "sites"]:
        # lifelines leaves out the "+ beta" of R's cox.zph()$y
        np.testing.assert_allclose(
            ours[column] - fit.beta[fit.columns.index(column)],
            theirs[column],
            rtol=1e-5,
            atol=1e-8,
        )


def test_cox_warns_when_a_level_has_no_events():
    data = simulated_cohort(200, 14)
    data.loc[data["group"] == "C", "event"] = 0
    with pytest.warns(RuntimeWarning, match="may be infinite"):
        fit = fit_cox(data, "months", "event", ["group"], categorical={"group": ["A", "B", "C"]})
    assert fit.table.set_index("column").loc["groupC", "coef"] < -10
    assert np.isnan(fit_cox(data, "months", "event", ["age"], concordance=False).concordance)


def test_table1_without_covariates_gives_the_group_sizes():
    """covariates: [] (the schema default) is a valid analysis: Table 1 is the n row."""
    from sepher.survival.table1 import characteristics

    cohort = pd.DataFrame({"arm": ["a", "b", "b", "a", "b"], "age": [50, 60, 55, 40, 70]})
    table = characteristics(
        cohort,
        group="arm",
        group_levels=["a", "b"],
        group_labels=["A", "B"],
        covariates=[],
        categorical={},
    )
    assert table.to_dict("records") == [
        {"variable": "n", "level": "", "statistic": "", "overall": 5, "A": 2, "B": 3,
         "missing": "", "p": "", "test": ""}
    ]  # fmt: skip
    with_age = characteristics(
        cohort, group="arm", group_levels=["a", "b"], group_labels=["A", "B"],
        covariates=["age"], categorical={},
    )  # fmt: skip
    assert with_age.iloc[0][["overall", "A", "B"]].tolist() == [5, 2, 3]


# --------------------------------------------------------------------------- fixed costs (issue 18)
def test_distributions_bit_identical_to_scipy_stats():
    """The scipy.special-based p-values and quantiles equal scipy.stats' bit for bit."""
    from scipy.stats import chi2

    from sepher.survival.distributions import chi2_sf, norm_ppf, norm_sf

    rng = np.random.default_rng(18)
    special = [0.0, -0.0, 1e-300, 5e-324, np.inf, -np.inf, np.nan, 1e3, -1.0, 40.0, -40.0]
    x = np.concatenate([rng.exponential(5, 20_000), rng.normal(0, 3, 2_000), special])
    for df in (-1, 0, 0.5, 1, 2, 3, 5, 8, 13, np.nan):
        assert chi2_sf(x, df).tobytes() == chi2.sf(x, df).tobytes(), df
    assert norm_sf(x).tobytes() == norm.sf(x).tobytes()
    q = np.concatenate([rng.uniform(0, 1, 20_000), [0.0, 1.0, 0.975, 0.995, -0.1, 1.1, np.nan]])
    assert norm_ppf(q).tobytes() == norm.ppf(q).tobytes()
    # scalars stay numpy scalars, as scipy.stats returns them
    assert type(chi2_sf(3.2, 2)) is type(chi2.sf(3.2, 2))
    assert norm_ppf(0.975) == norm.ppf(0.975) and norm_sf(1.96) == norm.sf(1.96)


def test_stage_imports_leave_out_scipy_stats_and_statsmodels(project_dir):
    """The cohort-stage jobs do not pay for importing scipy.stats or statsmodels
    (a second or more each, per job) unless a function that needs them runs."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import sepher.survival.stage, sepher.survival, sepher.figures.km_plot\n"
        "print(sorted(m for m in ('scipy.stats', 'statsmodels', 'lifelines', 'tableone')"
        " if m in sys.modules))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(project_dir / "scripts"), "PYTHONDONTWRITEBYTECODE": "1"},
        check=True,
    )
    assert run.stdout.strip() == "[]"


def _pandas_csv(table):
    """The reference text: pandas' to_csv as write_table has always called it."""
    return table.to_csv(index=False, float_format="%.10g", lineterminator="\n")


@pytest.mark.parametrize("seed", [0, 1])
def test_write_table_fast_path_byte_identical_to_pandas(tmp_path, seed):
    """Large plain tables (the 1,000,000-patient endpoints) are formatted column by
    column; the bytes are pandas' own, edge values included, and tables the fast
    path does not handle (quotes needed, categories, one column) go to pandas."""
    from sepher.io.tables import FAST_WRITE_ROWS, _csv_text, write_table

    rng = np.random.default_rng(seed)
    n = FAST_WRITE_ROWS + 37
    floats = rng.lognormal(2, 3, n) * rng.choice([-1, 1], n)
    edge = [np.nan, np.inf, -np.inf, -0.0, 0.0, 1e22, 1e-5, 0.1, 123456789012.0, 5e-324, 1e16]
    floats[: len(edge)] = edge
    text = rng.choice(np.array(["yes", "no", "", "SD", "PR", "naïve"], dtype=object), n)
    text[[3, 5, 7]] = [None, np.nan, pd.NA]
    table = pd.DataFrame(
        {
            "patient_id": [f"SIM-{i:07d}" for i in range(n)],
            "tdm1_line": rng.integers(-3, 10**12, n),
            "os_months": floats,
            "os_event": rng.integers(0, 2, n),
            "flag": rng.random(n) < 0.5,
            "group": text,
            "empty": np.full(n, None, dtype=object),
            "round": np.round(rng.normal(0, 100, n), rng.integers(0, 6)),
        }
    )
    path = tmp_path / "t.csv"
    assert _csv_text(table) is not None
    write_table(table, path)
    assert path.read_bytes() == _pandas_csv(table).encode()
    # fall-backs: a string needing quotes, a category column, a single column
    for variant in (
        table.assign(group=table["group"].where(table.index != 11, 'a,"b"')),
        table.assign(group=table["group"].astype("category")),
        table[["os_months"]],
    ):
        assert _csv_text(variant) is None
        write_table(variant, path)
        assert path.read_bytes() == _pandas_csv(variant).encode()
