"""sepher.doseresponse against R drc 3.2-0 and R GRmetrics reference numbers.

Reference values: tests/data/README.md (ryegrass, drc) and
gr_toy_input1_R_GRmetrics.tsv (datarail/gr_metrics R output).
"""

import numpy as np
import pandas as pd
import pytest

from sepher.doseresponse import ed, ed_ratio, fit_curve, fit_joint, fit_many, gr_metrics

CTRP_DOSES = np.array(
    [
        0,
        0.0012,
        0.0024,
        0.0049,
        0.0097,
        0.019,
        0.039,
        0.078,
        0.16,
        0.31,
        0.62,
        1.2,
        2.5,
        5,
        10,
        20,
        40,
    ]
)

# drc::drm(rootl ~ conc, data = ryegrass, fct = LL.4())  (data README)
RYEGRASS = {
    "b": (2.98222, 0.46506),
    "c": (0.48141, 0.21219),
    "d": (7.79296, 0.18857),
    "e": (3.05795, 0.18573),
}
RYEGRASS_ED = {  # level: estimate, se, lower, upper
    10: (1.46371, 0.18677, 1.07411, 1.85330),
    50: (3.05795, 0.18573, 2.67053, 3.44538),
    90: (6.38864, 0.84510, 4.62580, 8.15148),
}


@pytest.fixture(scope="module")
def ryegrass(reference_data):
    return pd.read_csv(reference_data("doseresponse/ryegrass.csv"))


@pytest.fixture(scope="module")
def ryegrass_fit(ryegrass):
    return fit_curve(ryegrass["conc"], ryegrass["rootl"], model="LL.4")


def test_ryegrass_ll4_matches_drc(ryegrass_fit):
    fit = ryegrass_fit
    assert fit.converged and fit.flags == []
    for name, (estimate, se) in RYEGRASS.items():
        # drc prints 5 decimals: 1e-5 relative on estimates, 1e-4 on SEs
        assert fit.params[name] == pytest.approx(estimate, rel=1e-5, abs=5e-6)
        assert fit.se[name] == pytest.approx(se, rel=1e-4, abs=5e-6)
    assert fit.df_residual == 20


def test_ryegrass_ed_matches_drc(ryegrass_fit):
    table = ed(ryegrass_fit, levels=(10, 50, 90)).set_index("level")
    for level, (estimate, se, lower, upper) in RYEGRASS_ED.items():
        row = table.loc[level]
        assert row["reached"]
        assert row["estimate"] == pytest.approx(estimate, rel=1e-5, abs=5e-6)
        assert row["se"] == pytest.approx(se, rel=1e-4, abs=5e-6)
        assert row["lower"] == pytest.approx(lower, rel=1e-4)
        assert row["upper"] == pytest.approx(upper, rel=1e-4)


def test_ryegrass_prism_convention(ryegrass_fit):
    assert ryegrass_fit.log_ic50 == pytest.approx(np.log10(3.05795), rel=1e-5)
    assert ryegrass_fit.hill_slope == pytest.approx(-2.98222, rel=1e-5)


def test_fit_many_matches_drc_on_ryegrass(ryegrass, ryegrass_fit):
    """The workflow's vectorised fit gives drc's LL.4 numbers on ryegrass."""
    many = fit_many(ryegrass["conc"].to_numpy()[None, :], ryegrass["rootl"].to_numpy()[None, :])
    fit = many.result(0)
    assert fit.converged and fit.flags == [] and not many.fallback[0]
    assert fit.rss == pytest.approx(ryegrass_fit.rss, rel=1e-8)
    for name, (estimate, se) in RYEGRASS.items():
        assert fit.params[name] == pytest.approx(estimate, rel=1e-5, abs=5e-6)
        assert fit.se[name] == pytest.approx(se, rel=1e-4, abs=5e-6)
    # drc's ED50 CI (delta method, t on 20 df) is e's CI for LL.4
    _, _, lower, upper = RYEGRASS_ED[50]
    assert fit.ci["e"][0] == pytest.approx(lower, rel=1e-4)
    assert fit.ci["e"][1] == pytest.approx(upper, rel=1e-4)


def test_fit_many_never_worse_than_multistart_single_fits_on_ctrp(reference_data):
    """On 50 real CTRP curves the vectorised fit reaches fit_curve's optimum or a better one."""
    ctrp = pd.read_csv(reference_data("doseresponse/ctrp_viability_40.tsv"), sep="\t")
    responses = ctrp.iloc[::25, 1:].to_numpy(float)  # 50 real curves
    many = fit_many(np.broadcast_to(CTRP_DOSES, responses.shape), responses)
    for i, y in enumerate(responses):
        single = fit_curve(CTRP_DOSES, y)  # drc's unbounded problem, 10 starts
        assert many.rss[i] <= single.rss * (1 + 1e-6), i
        assert many.converged[i] or not single.converged, i


def test_gr_metrics_match_r_grmetrics(reference_data):
    data = pd.read_csv(reference_data("doseresponse/gr_toy_input1.tsv"), sep="\t")
    ref = pd.read_csv(reference_data("doseresponse/gr_toy_input1_R_GRmetrics.tsv"), sep="\t")
    keys = ["cell_line", "agent", "perturbation", "replicate", "time"]
    got = gr_metrics(data, keys=keys)
    both = ref.merge(got, on=keys, suffixes=("_R", ""))
    assert len(both) == len(ref) == 112
    assert (both["fit"] == both["fit_R"]).all()
    for col in ("GR50", "GEC50", "GRinf", "Hill", "GR_AOC", "GRmax"):
        got_v, ref_v = both[col].to_numpy(float), both[f"{col}_R"].to_numpy(float)
        assert np.array_equal(np.isinf(got_v), np.isinf(ref_v)), col
        fin = np.isfinite(ref_v)
        np.testing.assert_allclose(got_v[fin], ref_v[fin], rtol=1e-3, atol=1e-9, err_msg=col)
    sigmoid = both["fit"] == "sigmoid"
    np.testing.assert_allclose(both.loc[sigmoid, "r2"], both.loc[sigmoid, "r2_R"], rtol=1e-3)
    np.testing.assert_allclose(both.loc[sigmoid, "pval"], both.loc[sigmoid, "pval_R"], rtol=1e-2)


def test_s_alba_joint_fit_and_ed50_ratio(reference_data):
    s_alba = pd.read_csv(reference_data("doseresponse/S.alba.csv"))
    joint = fit_joint(s_alba["Dose"], s_alba["DryMatter"], s_alba["Herbicide"])
    assert joint.converged and joint.df_residual == 68 - 8
    separate = {}
    for herbicide in ("Glyphosate", "Bentazone"):
        rows = s_alba["Herbicide"] == herbicide
        separate[herbicide] = fit_curve(s_alba.loc[rows, "Dose"], s_alba.loc[rows, "DryMatter"])
        # curve-specific parameters: the joint optimum is the separate optima
        for name in "bcde":
            assert joint.params.loc[herbicide, name] == pytest.approx(
                separate[herbicide].params[name], rel=1e-6
            )
    # pooled variance: the joint SEs are the separate SEs rescaled by s_pooled / s_curve
    s_pooled = np.sqrt(joint.rss / joint.df_residual)
    for herbicide, fit in separate.items():
        pos = joint.names.index(f"e:{herbicide}")
        assert joint.se[pos] == pytest.approx(fit.se["e"] * s_pooled / fit.sigma, rel=1e-4)
    two_fit_ratio = separate["Glyphosate"].params["e"] / separate["Bentazone"].params["e"]
    ratio = ed_ratio(joint, curves=("Glyphosate", "Bentazone"))
    assert ratio["ratio"] == pytest.approx(two_fit_ratio, rel=1e-6)
    assert ratio["lower"] < two_fit_ratio < ratio["upper"]
    independent = ed_ratio(separate["Glyphosate"], separate["Bentazone"])
    assert independent["lower"] < two_fit_ratio < independent["upper"]
    assert ratio["p"] < 0.05  # glyphosate clearly less potent than bentazone


def test_spinach_five_curves_joint_fit_runs(reference_data):
    spinach = pd.read_csv(reference_data("doseresponse/spinach.csv"))
    joint = fit_joint(spinach["DOSE"], spinach["SLOPE"], spinach["CURVE"])
    assert joint.params.shape == (5, 4)
    assert joint.df_residual == 105 - 20
    ratio = ed_ratio(joint, curves=(1, 4))
    single = [
        fit_curve(*spinach.loc[spinach["CURVE"] == k, ["DOSE", "SLOPE"]].T.to_numpy())
        for k in (1, 4)
    ]
    two_fit_ratio = single[0].params["e"] / single[1].params["e"]
    assert ratio["ratio"] == pytest.approx(two_fit_ratio, rel=1e-5)
    assert ratio["lower"] < two_fit_ratio < ratio["upper"]
