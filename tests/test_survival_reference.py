"""Survival estimators against R survival 3.5-3 on the real GBSG2 data.

Reference numbers: tests/data/README.md ("Survival references"), computed
by R on lifelines' gbsg2 (686 patients of the German Breast Cancer Study
Group trial). Tolerances are the printed precision of R unless stated.
"""

from __future__ import annotations

import numpy as np
import pytest
from lifelines.datasets import load_gbsg2

from sepher.survival.cox import fit_cox
from sepher.survival.km import kaplan_meier, km_median
from sepher.survival.logrank import logrank_test
from sepher.survival.zph import cox_zph, scaled_schoenfeld

TERMS = ["horTh", "age", "menostat", "tsize", "tgrade", "pnodes", "progrec", "estrec"]
CATEGORICAL = {"horTh": ["no", "yes"], "menostat": ["Post", "Pre"], "tgrade": ["I", "II", "III"]}

# coxph(Surv(time, cens) ~ horTh + age + menostat + tsize + tgrade + pnodes + progrec + estrec)
R_COX = {
    "horThyes": (-0.3462784, 0.1290747),
    "age": (-0.0094592, 0.0093006),
    "menostatPre": (-0.2584448, 0.1834765),
    "tsize": (0.0077961, 0.0039390),
    "tgradeII": (0.6361117, 0.2492025),
    "tgradeIII": (0.7796542, 0.2684801),
    "pnodes": (0.0487886, 0.0074471),
    "progrec": (-0.0022172, 0.0005735),
    "estrec": (0.0001973, 0.0004504),
}
# cox.zph(fit, transform = "km")
R_ZPH = {
    "horTh": (0.239, 1),
    "age": (10.438, 1),
    "menostat": (5.406, 1),
    "tsize": (0.191, 1),
    "tgrade": (10.712, 2),
    "pnodes": (0.808, 1),
    "progrec": (4.386, 1),
    "estrec": (5.893, 1),
}


@pytest.fixture(scope="module")
def gbsg2():
    return load_gbsg2()


@pytest.fixture(scope="module")
def cox_fit(gbsg2):
    return fit_cox(gbsg2, "time", "cens", TERMS, categorical=CATEGORICAL)


@pytest.mark.parametrize(
    ("conf_type", "group", "expected"),
    [
        ("log", "no", (1528, 1296, 1814)),
        ("log", "yes", (2018, 1918, np.nan)),
        ("log-log", "no", (1528, 1280, 1814)),
        ("log-log", "yes", (2018, 1918, np.nan)),
    ],
)
def test_km_median_and_ci_match_r_to_the_day(gbsg2, conf_type, group, expected):
    rows = gbsg2[gbsg2["horTh"] == group]
    curve = kaplan_meier(rows["time"], rows["cens"], conf_type=conf_type)
    median = km_median(curve)
    got = (median["median"], median["lower"], median["upper"])
    np.testing.assert_array_equal(got, expected)


def test_survdiff_horth_matches_r(gbsg2):
    result = logrank_test(gbsg2["time"], gbsg2["cens"], gbsg2["horTh"], levels=["no", "yes"])
    assert result["chisq"] == pytest.approx(8.5648, rel=1e-4)
    assert result["df"] == 1
    assert result["p"] == pytest.approx(0.00343, abs=5e-6)
    table = result["table"].set_index("group")
    assert table.loc["no", "n"] == 440 and table.loc["no", "observed"] == 205
    assert table.loc["yes", "n"] == 246 and table.loc["yes", "observed"] == 94
    assert table["expected"].sum() == pytest.approx(299)


def test_cox_coefficients_and_se_match_r(cox_fit):
    table = cox_fit.table.set_index("column")
    assert list(table.index) == list(R_COX)
    for column, (coef, se) in R_COX.items():
        # 1e-5 relative, or half a unit of R's 7th printed decimal for tiny values
        assert table.loc[column, "coef"] == pytest.approx(coef, rel=1e-5, abs=5e-8), column
        assert table.loc[column, "se"] == pytest.approx(se, rel=1e-5, abs=5e-8), column
    assert table.loc["tgradeII", "term"] == "tgrade"
    assert table.loc["tgradeII", "reference"] == "I"
    assert table.loc["menostatPre", "reference"] == "Post"
    hr = table.loc["horThyes"]
    assert hr["hr"] == pytest.approx(np.exp(-0.3462784), rel=1e-5)
    assert hr["hr_lower"] == pytest.approx(np.exp(-0.3462784 - 1.959964 * 0.1290747), rel=1e-5)


def test_cox_model_tests_match_r(cox_fit):
    # R prints "Likelihood ratio test=104.75 on 9 df" (format(round(x, 2)));
    # the README's 104.8 is that figure rounded once more.
    assert round(cox_fit.lr_chisq, 2) == pytest.approx(104.75)
    assert cox_fit.lr_df == 9
    assert round(cox_fit.concordance, 3) == pytest.approx(0.692)
    assert cox_fit.n == 686 and cox_fit.events == 299 and cox_fit.n_excluded == 0


def test_cox_zph_km_matches_r(cox_fit):
    zph = cox_zph(cox_fit, transform="km").set_index("term")
    assert list(zph.index) == [*R_ZPH, "GLOBAL"]
    for term, (chisq, df) in R_ZPH.items():
        assert zph.loc[term, "chisq"] == pytest.approx(chisq, rel=0.01), term
        assert zph.loc[term, "chisq"] == pytest.approx(chisq, abs=5e-4), term  # printed digits
        assert zph.loc[term, "df"] == df
    assert zph.loc["GLOBAL", "chisq"] == pytest.approx(24.421, abs=5e-4)
    assert zph.loc["GLOBAL", "df"] == 9
    assert zph.loc["GLOBAL", "p"] == pytest.approx(0.0037, abs=5e-5)


def test_scaled_schoenfeld_shape_and_centre(cox_fit):
    resid = scaled_schoenfeld(cox_fit)
    assert list(resid.columns) == ["time", "transformed_time", *R_COX]
    assert len(resid) == 299
    assert np.all(np.diff(resid["time"]) >= 0)
    # km transform: 1 - KM(t-) runs from 0 at the first event
    assert resid["transformed_time"].iloc[0] == 0
    # Schoenfeld residuals sum to the score (zero at the MLE): column means are beta
    beta = cox_fit.table.set_index("column")["coef"]
    for column in R_COX:
        assert resid[column].mean() == pytest.approx(
            beta[column], abs=1e-6 * (1 + abs(beta[column]))
        )
    by_term = scaled_schoenfeld(cox_fit, terms=True)
    assert list(by_term.columns) == ["time", "transformed_time", *R_ZPH]
    assert by_term["tgrade"].mean() == pytest.approx(1.0, abs=1e-6)
