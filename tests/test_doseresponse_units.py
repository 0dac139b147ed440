"""Unit tests of sepher.doseresponse on small hand-made inputs."""

import numpy as np
import pandas as pd
import pytest
from scipy import special

from sepher.doseresponse import (
    area_under_curve,
    compare_ed50,
    ed,
    fit_curve,
    fit_joint,
    fit_many,
    lack_of_fit,
    normalise_plate,
    plate_qc,
    select_model,
    z_prime,
)
from sepher.doseresponse.ed import ed_many
from sepher.doseresponse.models import model_response

DOSES = np.array([0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0])
#: the 17 doses (µM) of the CTRP v2 curves in tests/data/doseresponse/ctrp_viability_40.tsv
CTRP_DOSES = np.array([0, 0.0012, 0.0024, 0.0049, 0.0097, 0.019, 0.039, 0.078, 0.16, 0.31,
                       0.62, 1.2, 2.5, 5, 10, 20, 40])  # fmt: skip


def test_ll4_at_dose_zero_is_upper_asymptote():
    assert model_response("LL.4", np.array([0.0]), [2.0, 0.1, 1.0, 0.5])[0] == 1.0
    assert model_response("LL.4", np.array([0.5]), [2.0, 0.1, 1.0, 0.5])[0] == pytest.approx(0.55)


def test_not_reached_ic50_is_flagged_not_extrapolated():
    # a weak drug: 50% viability only beyond the top tested dose (e = 100 > 10)
    y = model_response("LL.4", DOSES, [1.5, 0.0, 1.0, 100.0])
    y = np.repeat(y, 3) + np.tile([-0.01, 0.0, 0.01], DOSES.size)
    fit = fit_curve(np.repeat(DOSES, 3), y)
    table = ed(fit, levels=(50,)).iloc[0]
    assert not table["reached"]
    assert np.isnan(table["estimate"]) and np.isnan(table["lower"])
    assert table["display"].startswith("> 10")
    assert "e (ED50) outside the tested dose range" in fit.flags
    absolute = ed(fit, levels=(0.5,), type="absolute").iloc[0]
    assert not absolute["reached"] and absolute["display"].startswith("> 10")


def test_flat_and_all_nan_curves_give_flags_not_exceptions():
    rng = np.random.default_rng(1)
    flat = 1.0 + 0.02 * rng.standard_normal(DOSES.size * 3)
    fit = fit_curve(np.repeat(DOSES, 3), flat)
    assert any(f.startswith("flat curve") for f in fit.flags)
    nan_fit = fit_curve(DOSES, np.full(DOSES.size, np.nan))
    assert nan_fit.flags[-1] == "all NaN" and not nan_fit.converged
    assert np.isnan(nan_fit.params["e"])
    assert ed(nan_fit)["reached"].eq(False).all()
    constant = fit_curve(DOSES, np.ones(DOSES.size))
    assert any(f.startswith("flat curve") for f in constant.flags)
    # the vectorised fits give the same flags, curve by curve
    curves = np.vstack([np.full(DOSES.size, np.nan), np.ones(DOSES.size), flat[:8]])
    many = fit_many(np.tile(DOSES, (3, 1)), curves)
    for i, y in enumerate(curves):
        assert many.flags[i] == fit_curve(DOSES, y).flags, i
    assert many.flags[0][-1] == "all NaN" and not many.converged[0]
    assert all(any(f.startswith("flat curve") for f in many.flags[i]) for i in (1, 2))


def test_fixed_parameters_and_ll3():
    y = model_response("LL.4", DOSES, [1.2, 0.0, 1.0, 0.4])
    fit = fit_curve(DOSES, y + 1e-3 * np.sin(np.arange(DOSES.size)), model="LL.4", fixed={"d": 1.0})
    assert fit.params["d"] == 1.0 and "d" not in fit.se
    assert fit.params["e"] == pytest.approx(0.4, rel=0.02)
    ll3 = fit_curve(DOSES, y + 1e-3 * np.cos(np.arange(DOSES.size)), model="LL.3")
    assert ll3.params["c"] == 0.0 and ll3.df_residual == DOSES.size - 3


def test_aic_formula_and_model_selection():
    rng = np.random.default_rng(3)
    x = np.repeat(DOSES, 3)
    y = model_response("LL.4", x, [1.3, 0.1, 1.0, 0.3]) + 0.03 * rng.standard_normal(x.size)
    fit = fit_curve(x, y)
    n, p = x.size, 4
    assert fit.aic == pytest.approx(n * np.log(2 * np.pi * fit.rss / n) + n + 2 * (p + 1))
    table = select_model(x, y)
    assert list(table.columns[:3]) == ["model", "aic", "rss"]
    assert table["aic"].is_monotonic_increasing
    lof = lack_of_fit(fit)
    assert lof["df_anova"] == x.size - DOSES.size
    assert 0 <= lof["p"] <= 1


def test_robust_fit_downweights_outlier():
    x = np.repeat(DOSES, 3)
    y = model_response("LL.4", x, [1.5, 0.05, 1.0, 0.3])
    y = y + 0.01 * np.tile([-1.0, 0.0, 1.0], DOSES.size)
    y_bad = y.copy()
    y_bad[16] = 1.2  # one wild well at 0.3 (true ~0.53)
    plain = fit_curve(x, y_bad)
    robust = fit_curve(x, y_bad, robust="soft_l1")
    assert abs(robust.params["e"] - 0.3) < abs(plain.params["e"] - 0.3)
    assert robust.params["e"] == pytest.approx(0.3, rel=0.03)


def test_shared_ed50_f_test_detects_shift():
    rng = np.random.default_rng(7)
    x = np.repeat(DOSES, 3)
    y_a = model_response("LL.4", x, [1.5, 0.05, 1.0, 0.1]) + 0.02 * rng.standard_normal(x.size)
    y_b = model_response("LL.4", x, [1.5, 0.05, 1.0, 1.0]) + 0.02 * rng.standard_normal(x.size)
    dose = np.concatenate([x, x])
    resp = np.concatenate([y_a, y_b])
    curve = np.repeat(["T-R", "TP-R"], x.size)
    test = compare_ed50(dose, resp, curve)
    assert test["p"] < 1e-6 and test["df_shared"] == test["df_separate"] + 1
    same = compare_ed50(dose, np.concatenate([y_a, y_a]), curve)  # identical curves
    assert same["p"] > 0.5
    joint = fit_joint(dose, resp, curve, shared=("e",))
    assert joint.names.count("e") == 1


def test_area_under_curve_of_inactive_drug_is_one():
    fit = fit_curve(DOSES, np.ones(DOSES.size) + 1e-4 * np.arange(DOSES.size) % 2)
    assert area_under_curve(fit) == pytest.approx(1.0, abs=1e-3)


def _tiny_plate():
    rows = []
    for i, s in enumerate([100.0, 110.0, 90.0]):
        rows.append(("P1", f"A0{i + 1}", "vehicle", 0.0, s))
    for i, s in enumerate([10.0, 12.0, 8.0]):
        rows.append(("P1", f"B0{i + 1}", "blank", 0.0, s))
    rows.append(("P1", "C01", "treated", 1.0, 55.0))
    rows.append(("P1", "C02", "treated", 10.0, 19.0))
    # a second, noisy plate
    for i, s in enumerate([100.0, 150.0, 50.0]):
        rows.append(("P2", f"A0{i + 1}", "vehicle", 0.0, s))
    for i, s in enumerate([10.0, 30.0, 20.0]):
        rows.append(("P2", f"B0{i + 1}", "blank", 0.0, s))
    df = pd.DataFrame(rows, columns=["plate_id", "well", "role", "concentration", "signal"])
    return df.assign(
        cell_line="SKBR3", condition="T-R", drug="T-DM1", concentration_unit="ug/mL", replicate=1
    )


def test_normalise_plate_hand_computed():
    out = normalise_plate(_tiny_plate())
    p1 = out[out["plate_id"] == "P1"].set_index("well")
    # vehicle mean 100, blank mean 10: (55 - 10) / 90 = 0.5, (19 - 10) / 90 = 0.1
    assert p1.loc["C01", "viability"] == pytest.approx(0.5)
    assert p1.loc["C02", "viability"] == pytest.approx(0.1)
    assert p1.loc["A02", "viability"] == pytest.approx(1.0 / 9.0 * 10.0)  # (110-10)/90
    assert np.isnan(p1.loc["B01", "viability"])


def test_plate_qc_z_prime_and_cv_hand_computed():
    qc = plate_qc(_tiny_plate()).set_index("plate_id")
    # P1: sd_v = 10, sd_b = 2, |100 - 10| = 90 -> Z' = 1 - 36/90 = 0.6; CV_v = 10%, CV_b = 20%
    assert qc.loc["P1", "z_prime"] == pytest.approx(0.6)
    assert qc.loc["P1", "vehicle_cv_percent"] == pytest.approx(10.0)
    assert qc.loc["P1", "blank_cv_percent"] == pytest.approx(20.0)
    assert qc.loc["P1", "flags"] == ""
    # P2: sd_v = 50, sd_b = 10, gap 80 -> Z' = 1 - 180/80 = -1.25; CV_v = 50%, CV_b = 50%
    assert qc.loc["P2", "z_prime"] == pytest.approx(-1.25)
    assert "Z'" in qc.loc["P2", "flags"] and "vehicle CV" in qc.loc["P2", "flags"]
    assert z_prime([1.0], [0.0]) != z_prime([1.0], [0.0])  # NaN with < 2 wells


def _dense_profile_min(doses, responses, e_range_factor=1e3):
    """Smallest LL.4 RSS on a dense (b, log e) grid, c and d by least squares.

    Independent of the fitter's profile grid: every grid point's residuals
    are formed explicitly. An upper bound on each curve's least-squares
    optimum (the grid spans |b| <= 50 and e within 1000x the positive tested
    doses).
    """
    out = []
    for y in responses:
        keep = np.isfinite(y)
        x, yy = doses[keep], y[keep]
        lx = np.log(np.where(x > 0, x, 1.0))
        lo, hi = lx[x > 0].min(), lx[x > 0].max()
        b = np.geomspace(1e-4, 50, 80)[:, None, None]
        log_factor = np.log(e_range_factor)
        le = np.linspace(lo - log_factor, hi + log_factor, 500)[None, :, None]
        t = np.where(x > 0, b * (lx[None, None, :] - le), -np.inf)  # dose 0: f = d
        # centred g = 1 / (1 + exp(t)) from whichever of g, 1 - g is small
        # (1 - g computed as 1 - g loses all digits where g is within 1e-13 of 1)
        g, q = special.expit(-t), special.expit(t)
        q_c, g_c = q - q.mean(-1, keepdims=True), g - g.mean(-1, keepdims=True)
        gc = np.where(q.mean(-1, keepdims=True) < 0.5, -q_c, g_c)
        yc = yy - yy.mean()
        span = (gc * yc).sum(-1) / np.maximum((gc * gc).sum(-1), 1e-300)
        resid = yc - span[..., None] * gc
        out.append((resid * resid).sum(-1).min())
    return np.array(out)


def test_fit_many_reaches_dense_grid_optimum_on_competing_basins(reference_data):
    # real CTRP curves whose least-squares optimum competes between basins: a
    # shallow decline with e far beyond the doses vs a step at the top dose
    # (rows 552 ... 985, 663), a step in mid-range vs a smooth fall (231), a
    # vehicle offset (1121), and 7 curves where a per-curve multi-start fit
    # and a vectorised fitter had been seen to stop in different basins (229 ... 1239)
    rows = [231, 552, 554, 663, 792, 804, 861, 872, 985, 1121,
            229, 445, 461, 622, 896, 1081, 1239]  # fmt: skip
    ctrp = pd.read_csv(reference_data("doseresponse/ctrp_viability_40.tsv"), sep="\t")
    responses = ctrp.iloc[rows, 1:].to_numpy(float)
    doses = np.broadcast_to(CTRP_DOSES, responses.shape).copy()
    many = fit_many(doses, responses)
    assert np.all(many.rss <= _dense_profile_min(CTRP_DOSES, responses) * (1 + 1e-6))
    # the profile-grid starts matter: from the self-starter alone (no grid, no
    # fallback) at least one of these curves stops in a worse basin
    self_start_only = fit_many(doses, responses, n_grid_starts=0, fallback=False)
    assert np.sum(many.rss < self_start_only.rss * (1 - 1e-4)) >= 1


def test_fit_many_shared_and_per_curve_grids_agree():
    # 40 curves on one dose layout take the shared-grid path of the profile
    # starts (one grid of curve shapes, sums as matrix products); fitted one
    # at a time they take the per-curve path; shuffling each curve's columns
    # must not matter either. Curves with a finite optimum agree closely;
    # curves without one (no lower plateau: e, c run off along a valley of
    # near-constant RSS) stop at points whose RSS agree to 1e-7.
    rng = np.random.default_rng(11)
    doses = np.concatenate([[0.0], 10.0 ** np.arange(-3, 1.01, 0.5)])
    n = 40
    theta = np.column_stack([rng.uniform(0.5, 4, n), rng.uniform(0, 0.5, n),
                             rng.uniform(0.9, 1.1, n), 10 ** rng.uniform(-3, 1.5, n)])  # fmt: skip
    y = np.array([model_response("LL.4", doses, t) for t in theta])
    y = y + 0.03 * rng.standard_normal(y.shape)
    y[3, 4] = np.nan
    x = np.broadcast_to(doses, y.shape).copy()
    shared = fit_many(x, y)
    singles = [fit_many(x[i : i + 1], y[i : i + 1]) for i in range(n)]
    one_by_one = np.concatenate([s.rss for s in singles])
    perm = np.argsort(rng.random(y.shape), axis=1)
    shuffled = fit_many(np.take_along_axis(x, perm, 1), np.take_along_axis(y, perm, 1))
    np.testing.assert_allclose(one_by_one, shared.rss, rtol=1e-7)
    np.testing.assert_allclose(shuffled.rss, shared.rss, rtol=1e-7)
    assert np.all(shared.rss <= _dense_profile_min(doses, y) * (1 + 1e-6))
    finite = (shared.theta[:, 3] < doses.max()) & (np.abs(shared.theta[:, 0]) < 50)
    assert finite.sum() >= 30
    theta_one = np.vstack([s.theta for s in singles])
    np.testing.assert_allclose(theta_one[finite], shared.theta[finite], rtol=1e-6)
    assert np.array_equal(np.concatenate([s.converged for s in singles]), shared.converged)


def _simulated_curves(model, theta, rng, sd=0.03):
    doses = np.concatenate([np.zeros(4), np.repeat(10.0 ** np.arange(-3, 1.01, 0.5), 3)])
    y = np.array([model_response(model, doses, t) for t in theta])
    return np.broadcast_to(doses, y.shape).copy(), y + sd * rng.standard_normal(y.shape)


@pytest.mark.parametrize(
    ("model", "fixed", "robust"),
    [("LL.4", None, None), ("LL.4", {"d": 1.0}, None), ("LL.3", None, None),
     ("LL.5", None, None), ("W1.4", None, None), ("LL.4", None, "cauchy")],
)  # fmt: skip
def test_fit_many_matches_fit_curve(model, fixed, robust):
    """The vectorised fits give fit_curve's estimates, drc SEs, AIC and flags per curve."""
    rng = np.random.default_rng(21)
    k = 5
    theta = np.column_stack(
        [
            rng.uniform(0.8, 2.5, k),
            rng.uniform(0.05, 0.3, k),
            np.ones(k),
            10 ** rng.uniform(-1.5, -0.5, k),
        ]
    )
    if model == "LL.5":
        theta = np.column_stack([theta, rng.uniform(0.5, 2.0, k)])
    x, y = _simulated_curves(model, theta, rng, sd=0.01 if model == "LL.5" else 0.03)
    y[1, 7] = 1.4  # an outlying well for the robust fit
    many = fit_many(x, y, model=model, fixed=fixed, robust=robust)
    assert not many.fallback.any()
    for i in range(k):
        single = fit_curve(x[i], y[i], model=model, fixed=fixed, robust=robust)
        got = many.result(i)
        assert got.converged and single.converged
        # robust: the RSS is not the minimised loss, it moves to first order
        assert got.rss == pytest.approx(single.rss, rel=1e-6 if robust else 1e-9)
        for name, value in single.params.items():
            assert got.params[name] == pytest.approx(value, rel=1e-6, abs=1e-9), (i, name)
        for name, value in single.se.items():
            assert got.se[name] == pytest.approx(value, rel=1e-4), (i, name)
        assert got.aic == pytest.approx(single.aic, rel=1e-6)
        assert got.flat_pvalue == pytest.approx(single.flat_pvalue, rel=1e-6, abs=1e-300)
        assert [f.split("scale")[0] for f in got.flags] == [
            f.split("scale")[0] for f in single.flags
        ]


def test_fit_many_flags_empty_and_short_curves():
    x = np.tile(DOSES, (3, 1))
    y = np.vstack([np.full(DOSES.size, np.nan), np.ones(DOSES.size), np.ones(DOSES.size)])
    y[1, 3:] = np.nan  # 3 observations, 4 parameters
    y[2] = model_response("LL.4", DOSES, [1.0, 0.1, 1.0, 0.1]) + 0.01 * np.sin(np.arange(8))
    many = fit_many(x, y)
    assert many.flags[0][-1] == "all NaN" and many.flags[1][-1] == "too few observations"
    assert many.flags[1][0] == "dropped 5 NaN/negative-dose observations"
    assert not many.converged[:2].any() and many.converged[2]
    assert np.isnan(many.theta[:2]).all()


def test_ed_many_closed_forms_and_not_reached():
    """ED50 of LL.4 is e, of W1.4 e log(2)^(1/b); relative ED10 of LL.4 e (1/9)^(1/b)."""
    theta = np.array([[1.5, 0.1, 1.0, 0.3], [0.8, 0.0, 1.0, 2.0], [2.0, 0.6, 1.0, 50.0]])
    cov = np.tile(np.eye(4) * 1e-4, (3, 1, 1))
    lo, hi = np.full(3, 1e-3), np.full(3, 10.0)
    ed50 = ed_many("LL.4", theta, cov, [0, 1, 2, 3], 20, 50.0, "relative", (lo, hi), "uM")
    np.testing.assert_allclose(ed50["estimate"][:2], theta[:2, 3], rtol=1e-12)
    assert list(ed50["reached"]) == [True, True, False]
    assert ed50["display"][2] == "> 10 uM (max dose)"
    ed10 = ed_many("LL.4", theta, cov, [0, 1, 2, 3], 20, 10.0, "relative", (lo, hi))
    np.testing.assert_allclose(ed10["estimate"][:2], theta[:2, 3] / 9 ** (1 / theta[:2, 0]))
    w14 = ed_many("W1.4", theta[:2], cov[:2], [0, 1, 2, 3], 20, 50.0, "relative", (1e-3, 10.0))
    np.testing.assert_allclose(w14["estimate"], theta[:2, 3] * np.log(2) ** (1 / theta[:2, 0]))
    # absolute 50 % viability never reached by a curve bottoming out at 0.6: "> max dose"
    absolute = ed_many("LL.4", theta, cov, [0, 1, 2, 3], 20, 0.5, "absolute", (lo, hi))
    assert not absolute["reached"][2] and absolute["display"][2].startswith("> 10")
    assert np.isfinite(absolute["se"][:2]).all() and np.isnan(absolute["se"][2])


@pytest.fixture(scope="module")
def screen():
    from sepher.doseresponse.stage import normalise_plates
    from sepher.simulate.plates import simulate_plates_large

    plates, _ = simulate_plates_large(20, seed=5)
    text = ["plate_id", "well", "cell_line", "condition", "drug", "concentration_unit", "role"]
    viability, _ = normalise_plates(plates.astype(dict.fromkeys(text, str)))
    return viability


def test_fit_curves_batch_matches_single_curve_path(screen):
    """The vectorised stage gives the per-curve multi-start stage's tables (one plate)."""
    from sepher.doseresponse.stage import fit_curves

    plate = screen[screen["plate_id"] == sorted(screen["plate_id"].unique())[0]]
    fits, residuals, curves = fit_curves(plate)
    ref, ref_residuals, ref_curves = fit_curves(plate, method="multistart")
    assert list(fits.columns) == list(ref.columns) and len(fits) == len(ref) == 10
    for name in ("cell_line", "drug", "model", "n", "n_doses", "n_outliers", "outlier_wells",
                 "ic50_rel_reached", "ic50_abs_reached", "aic_best_model", "converged"):  # fmt: skip
        assert fits[name].tolist() == ref[name].tolist(), name
    identified = (ref["e_se"] / ref["e"] < 1).to_numpy()
    assert identified.sum() >= 8
    for name in ("b", "c", "d", "e", "ic50_rel", "ic50_abs", "ed10", "ed90", "auc", "rss",
                 "aic", "aic_LL4", "aic_LL3", "lack_of_fit_p", "flat_p"):  # fmt: skip
        np.testing.assert_allclose(
            fits.loc[identified, name], ref.loc[identified, name], rtol=1e-5, err_msg=name
        )
    for name in ("b_se", "e_se", "e_lower", "e_upper", "ic50_rel_se", "ic50_abs_upper"):
        np.testing.assert_allclose(
            fits.loc[identified, name], ref.loc[identified, name], rtol=1e-4, err_msg=name
        )
    assert residuals["outlier"].tolist() == ref_residuals["outlier"].tolist()
    assert len(curves) == len(ref_curves)


def test_fit_curves_rows_do_not_depend_on_other_curves(screen):
    """A curve's row is identical (to the last digit) fitted alone or with others."""
    from sepher.doseresponse.stage import fit_curves

    plate = sorted(screen["plate_id"].unique())[1]
    part, _, _ = fit_curves(screen[screen["plate_id"] == plate])
    full, _, _ = fit_curves(screen)
    full = full[full["cell_line"].isin(part["cell_line"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(part, full, check_exact=True)


# ------------------------------------------------------------- plate QC that acts
def _qc_plate(plate, condition="T-R", replicate="1", *, vehicle_sd=3.0, kill=None, e=0.3,
              line="SKBR3"):  # fmt: skip
    """One plate: 6 vehicle (mean 100), 4 blank (mean 5), optional kill wells, and an LL.4
    curve in duplicate over DOSES[1:]; deterministic +-sd patterns."""
    pattern = np.array([-1.5, -0.5, 0.5, 1.5, -1.0, 1.0])
    pattern = pattern / pattern.std(ddof=1)
    rows = [("vehicle", 0.0, 100.0 + vehicle_sd * z) for z in pattern]
    four = np.array([-1.5, -0.5, 0.5, 1.5]) / np.std([-1.5, -0.5, 0.5, 1.5], ddof=1)
    rows += [("blank", 0.0, 5.0 + 1.0 * z) for z in four]
    rows += [("kill", 0.0, s) for s in (kill or [])]
    curve = model_response("LL.4", DOSES[1:], [1.5, 0.05, 1.0, e])
    rows += [("treated", d, 5.0 + 95.0 * v + k) for d, v in zip(DOSES[1:], curve, strict=True)
             for k in (-1.0, 1.0)]  # fmt: skip
    table = pd.DataFrame(rows, columns=["role", "concentration", "signal"])
    table["well"] = [f"{chr(65 + i // 24)}{i % 24 + 1:02d}" for i in range(len(table))]
    return table.assign(
        plate_id=plate, cell_line=line, condition=condition, replicate=replicate,
        drug=np.where(table["role"] == "treated", "T-DM1", "none"), time_h=72.0,
        concentration_unit=np.where(table["role"] == "treated", "ug/mL", "none"),
    )  # fmt: skip


def test_z_prime_reference_is_kill_control_when_a_plate_has_two():
    from sepher.doseresponse.qc import signal_window

    kill = [20.0, 24.0, 22.0]  # mean 22, sd 2
    plates = pd.concat(
        [_qc_plate("K", kill=kill), _qc_plate("B"), _qc_plate("K1", kill=[20.0])],
        ignore_index=True,
    )
    qc = plate_qc(plates).set_index("plate_id")
    # vehicle mean 100, sd 3; kill mean 22, sd 2: Z' = 1 - 3 (3 + 2) / 78
    assert qc.loc["K", "z_prime_reference"] == "kill"
    assert qc.loc["K", "z_prime"] == pytest.approx(1 - 15 / 78)
    assert qc.loc["K", "n_kill"] == 3 and qc.loc["K", "kill_mean"] == pytest.approx(22.0)
    # SW = (|100 - 22| - 3 (3 + 2)) / 3 = 21 (Iversen et al. 2006)
    assert qc.loc["K", "signal_window"] == pytest.approx(21.0)
    assert signal_window([97.0, 100.0, 103.0], kill) == pytest.approx(21.0)
    # blank reference (mean 5, sd 1): Z' = 1 - 3 (3 + 1) / 95, SW = (95 - 12) / 3
    for plate in ("B", "K1"):  # one kill well is not enough: blank
        assert qc.loc[plate, "z_prime_reference"] == "blank"
        assert qc.loc[plate, "z_prime"] == pytest.approx(1 - 12 / 95)
        assert qc.loc[plate, "signal_window"] == pytest.approx(83 / 3)
    assert (qc["flags"] == "").all()


def test_qc_criteria_vehicle_cv_and_signal_window_not_blank_cv():
    good = _qc_plate("G")
    noisy_blank = good.assign(plate_id="NB")
    blank = noisy_blank["role"] == "blank"
    noisy_blank.loc[blank, "signal"] = [2.0, 8.0, 3.0, 7.0]  # CV ~ 60 %, sd ~ 2.9
    cv = _qc_plate("CV", vehicle_sd=21.0)  # vehicle CV 21 %
    low_sw = _qc_plate("SW", vehicle_sd=9.0)  # Z' 1 - 30/95 = 0.68 but SW (95 - 30)/9 = 7.2
    kill_close = _qc_plate("KC", kill=[60.0, 64.0])  # SW (38 - 3 (3 + 2.83)) / 3 = 6.8
    qc = plate_qc(pd.concat([good, noisy_blank, cv, low_sw, kill_close]),
                  min_signal_window=7.0).set_index("plate_id")  # fmt: skip
    assert qc.loc["NB", "blank_cv_percent"] > 50 and qc.loc["NB", "flags"] == ""
    assert "vehicle CV 21.0% > 20%" in qc.loc["CV", "flags"]
    assert qc.loc["SW", "flags"] == ""  # 7.22 >= 7
    assert qc.loc["KC", "z_prime"] > 0.5 and qc.loc["KC", "flags"].startswith("signal window")


def test_failing_plates_are_excluded_from_every_fit_or_only_flagged():
    from sepher.doseresponse.stage import fit_curves, normalise_plates

    plates = pd.concat(
        [
            _qc_plate("P1", replicate="1"),
            _qc_plate("P2", replicate="2", vehicle_sd=40.0),  # Z' < 0, vehicle CV 40 %
            _qc_plate("P3", replicate="3"),
            _qc_plate("Q1", condition="TP-R", vehicle_sd=40.0),  # the curve's only plate
        ],
        ignore_index=True,
    )
    viability, qc = normalise_plates(plates)
    qc = qc.set_index("plate_id")
    assert qc["qc_action"].to_dict() == {"P1": "", "P2": "excluded", "P3": "", "Q1": "excluded"}
    assert not qc.loc["P2", "qc_pass"] and "Z'" in qc.loc["P2", "flags"]
    assert len(viability) == len(plates)  # every well kept, marked
    assert set(viability.loc[viability["plate_excluded"], "plate_id"]) == {"P2", "Q1"}
    fits, residuals, _ = fit_curves(viability, candidate_models=["LL.4"])
    by_replicate, _, _ = fit_curves(viability, candidate_models=["LL.4"], by_replicate=True)
    assert set(residuals["plate_id"]) == {"P1", "P3"}
    assert fits["condition"].tolist() == ["T-R"]  # TP-R: no plate left, curve absent
    assert by_replicate["replicate"].tolist() == ["1", "3"]
    assert fits.loc[0, "e"] == pytest.approx(0.3, rel=0.05)
    # flag: reported, nothing left out
    viability, qc = normalise_plates(plates, qc_action="flag")
    assert set(qc.loc[qc["qc_action"] == "flagged", "plate_id"]) == {"P2", "Q1"}
    assert not viability["plate_excluded"].any()
    fits, residuals, _ = fit_curves(viability, candidate_models=["LL.4"])
    assert set(residuals["plate_id"]) == {"P1", "P2", "P3", "Q1"} and len(fits) == 2


def test_no_curve_left_stops_naming_the_plates_and_time_zero_is_not_judged():
    from sepher.doseresponse.stage import normalise_plates
    from sepher.errors import InputError

    time0 = pd.DataFrame(
        {"plate_id": "T0", "well": ["A01", "A02"], "role": "time0", "concentration": 0.0,
         "signal": [40.0, 90.0], "cell_line": "SKBR3", "condition": "T-R", "replicate": "1",
         "drug": "none", "concentration_unit": "none", "time_h": 0.0}
    )  # fmt: skip
    bad = pd.concat([_qc_plate("P2", vehicle_sd=40.0), _qc_plate("P5", vehicle_sd=30.0), time0])
    with pytest.raises(InputError) as err:
        normalise_plates(bad, source="my_plates.csv")
    message = str(err.value)
    assert "my_plates.csv" in message and "P2, P5" in message and "qc_action: flag" in message
    viability, qc = normalise_plates(pd.concat([_qc_plate("P1"), time0]))
    row = qc.set_index("plate_id").loc["T0"]
    assert row["qc_pass"] and row["qc_action"] == "" and row["flags"].startswith("time-zero")
    assert not viability["plate_excluded"].any()
