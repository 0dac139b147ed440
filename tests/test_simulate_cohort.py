"""The simulated demo cohort: design, calibration to SePHER, truth, determinism.

Calibration targets come from the study (Bon, Pizzuti et al. 2020): median OS
52 (pretreated) vs 74 months (naive), log-rank p = 0.0006; median PFS2 6 vs
10 months, p = 0.03. The check runs lifelines (an independent implementation)
on the cohort as read back by the reader.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.statistics import logrank_test

from sepher.io.cohort import read_cohort
from sepher.simulate.cohort import (
    STRATA,
    calibrate_cohort_model,
    default_cohort_model,
    simulate_cohort,
    simulate_cohort_large,
    write_demo_cohort,
)

PROJECT = Path(__file__).resolve().parents[1]
DEMO_CSV = PROJECT / "resources" / "demo" / "cohort.csv"
DEMO_TRUTH = PROJECT / "resources" / "demo" / "truth" / "cohort_truth.json"

# The study's published medians (months): group -> endpoint -> median.
PUBLISHED = {"yes": {"os": 52.0, "pfs2": 6.0}, "no": {"os": 74.0, "pfs2": 10.0}}


@pytest.fixture(scope="module")
def demo():
    return read_cohort(DEMO_CSV)


def test_demo_files_regenerate_byte_identical(tmp_path):
    out_csv, out_json = tmp_path / "cohort.csv", tmp_path / "truth" / "cohort_truth.json"
    write_demo_cohort(out_csv, out_json)
    assert out_csv.read_bytes() == DEMO_CSV.read_bytes()
    assert out_json.read_bytes() == DEMO_TRUTH.read_bytes()
    assert b"\r\n" not in out_csv.read_bytes()


def test_truth_records_every_parameter():
    import json

    truth = json.loads(DEMO_TRUTH.read_text())
    assert truth["simulated"] is True
    assert truth["seed"] == 20201
    model = truth["model"]
    assert set(model["log_hazard_ratios"]) == set(truth["pfs2_hazard_ratios"])
    assert truth["pfs2_hazard_ratios"]["visceral_mets_yes"] == pytest.approx(1.35)
    assert truth["pfs2_hazard_ratios"]["ecog_2"] == pytest.approx(1.90)
    for key in ("weibull_shapes", "strata", "censoring", "covariates", "targets_months"):
        assert key in model
    medians = truth["medians_months"]
    assert medians["second_line_pretreated"]["os_km"] == pytest.approx(52.0, abs=0.05)
    assert medians["second_line_naive"]["pfs2_km"] == pytest.approx(10.0, abs=0.05)


def test_design_counts_are_exact(demo):
    assert len(demo) == 555
    second = demo[demo["tdm1_line"] == 2]
    assert len(second) == 371
    assert (second["first_line_pertuzumab"] == "yes").sum() == 177
    assert (second["first_line_pertuzumab"] == "no").sum() == 194
    later = demo[demo["tdm1_line"] > 2]
    assert len(later) == 184
    assert set(later["tdm1_line"]) == {3, 4, 5, 6}
    assert 0 < (later["first_line_pertuzumab"] == "yes").sum() < 184
    assert demo["patient_id"].str.fullmatch(r"SPH-\d{4}").all()


def test_calibration_second_line_matches_published(demo):
    second = demo[demo["tdm1_line"] == 2]
    for endpoint, p_max in (("os", 0.01), ("pfs2", 0.05)):
        time, event = f"{endpoint}_months", f"{endpoint}_event"
        for group, targets in PUBLISHED.items():
            arm = second[second["first_line_pertuzumab"] == group]
            km = KaplanMeierFitter().fit(arm[time], arm[event])
            assert km.median_survival_time_ == pytest.approx(targets[endpoint], rel=0.15), (
                endpoint,
                group,
            )
        yes = second[second["first_line_pertuzumab"] == "yes"]
        no = second[second["first_line_pertuzumab"] == "no"]
        test = logrank_test(yes[time], no[time], yes[event], no[event])
        assert test.p_value < p_max, endpoint


def test_expected_medians_land_on_target():
    # Large cohort: the Kaplan-Meier medians converge to the calibration targets.
    large = simulate_cohort_large(300_000, seed=7)
    targets = default_cohort_model()["targets_months"]
    for stratum, target in targets.items():
        part = large[large["stratum"] == stratum]
        for endpoint in ("os", "pfs2"):
            km = KaplanMeierFitter().fit(part[f"{endpoint}_months"], part[f"{endpoint}_event"])
            assert km.median_survival_time_ == pytest.approx(target[endpoint], rel=0.02)


def test_calibration_reproduces_default_parameters():
    model = default_cohort_model()
    tuned = calibrate_cohort_model(model)
    for stratum in STRATA:
        for key in ("pfs2_baseline_median_months", "post_progression_baseline_median_months"):
            assert tuned["strata"][stratum][key] == pytest.approx(
                model["strata"][stratum][key], rel=0.005
            )


def _cox_design(frame):
    return pd.DataFrame(
        {
            "age_per_year": frame["age_at_advanced_dx"] - 55.0,
            "hormone_receptor_negative": (frame["hormone_receptor"] == "negative").astype(float),
            "visceral_mets_yes": (frame["visceral_mets"] == "yes").astype(float),
            "brain_mets_yes": (frame["brain_mets"] == "yes").astype(float),
            "de_novo_yes": (frame["de_novo"] == "yes").astype(float),
            "n_metastatic_sites_per_site": frame["n_metastatic_sites"] - 1.0,
            "ecog_1": (frame["ecog"] == 1).astype(float),
            "ecog_2": (frame["ecog"] == 2).astype(float),
            "prior_adjuvant_trastuzumab_yes": (frame["prior_adjuvant_trastuzumab"] == "yes").astype(
                float
            ),
            "stratum": frame["stratum"].cat.codes,
        }
    )


def test_true_hazard_ratios_recovered_by_cox():
    large = simulate_cohort_large(20_000, seed=11)
    truth = default_cohort_model()["log_hazard_ratios"]
    design = _cox_design(large)
    pfs2 = design.assign(time=large["pfs2_months"], event=large["pfs2_event"])
    fit = CoxPHFitter().fit(pfs2, "time", "event", strata=["stratum"])
    for term, log_hr in truth.items():
        # PFS2 is exactly proportional hazards: estimate within ~4 standard errors.
        tolerance = max(4 * fit.standard_errors_[term], 0.002)
        assert fit.params_[term] == pytest.approx(log_hr, abs=tolerance), term
    os_ = design.assign(time=large["os_months"], event=large["os_event"])
    fit_os = CoxPHFitter().fit(os_, "time", "event", strata=["stratum"])
    for term in ("visceral_mets_yes", "brain_mets_yes", "ecog_2", "hormone_receptor_negative"):
        # OS is a sum of phases, not exactly PH: same direction, similar size.
        assert 0.5 * truth[term] < fit_os.params_[term] < 2.0 * truth[term], term


def test_dates_are_consistent_and_realistic():
    cohort, truth = simulate_cohort(seed=3)
    dates = {
        c: pd.to_datetime(cohort[c].replace("", None))
        for c in (
            "advanced_dx_date",
            "tdm1_start_date",
            "tdm1_progression_date",
            "last_contact_date",
        )
    }
    assert (dates["tdm1_start_date"] > dates["advanced_dx_date"]).all()
    progressed = dates["tdm1_progression_date"].notna()
    assert (dates["tdm1_progression_date"][progressed] > dates["tdm1_start_date"][progressed]).all()
    assert (
        dates["last_contact_date"][progressed] >= dates["tdm1_progression_date"][progressed]
    ).all()
    cutoff = pd.Timestamp(truth["model"]["censoring"]["data_cutoff"])
    assert (dates["last_contact_date"] <= cutoff).all()
    alive = cohort["vital_status"] == "alive"
    # Administrative censoring at the cut-off plus some loss to follow-up.
    assert (dates["last_contact_date"][alive] == cutoff).mean() > 0.5
    assert (dates["last_contact_date"][alive] < cutoff).any()
    second = cohort["tdm1_line"] == 2
    years = dates["advanced_dx_date"][second].dt.year
    assert years.between(2008, 2019).all()
    assert 2010 <= years.median() <= 2018
    pretreated = second & (cohort["first_line_pertuzumab"] == "yes")
    assert (dates["advanced_dx_date"][pretreated] >= pd.Timestamp("2013-01-01")).all()
    assert (
        dates["advanced_dx_date"][pretreated].median()
        > dates["advanced_dx_date"][second & ~pretreated].median()
    )


def test_simulation_is_deterministic_given_seed():
    a, truth_a = simulate_cohort(seed=5)
    b, truth_b = simulate_cohort(seed=5)
    c, _ = simulate_cohort(seed=6)
    pd.testing.assert_frame_equal(a, b)
    assert truth_a == truth_b
    assert not a.equals(c)
    large_a = simulate_cohort_large(1000, seed=5)
    large_b = simulate_cohort_large(1000, seed=5)
    pd.testing.assert_frame_equal(large_a, large_b)


def test_other_sizes_scale_the_design():
    cohort, truth = simulate_cohort(n_patients=1110, seed=1)
    assert len(cohort) == 1110
    assert truth["counts"]["by_stratum"]["second_line_pretreated"] == 354
    assert truth["counts"]["by_tdm1_line"]["2"] == 742
    assert cohort["patient_id"].is_unique
    large = simulate_cohort_large(1000, seed=1)
    assert len(large) == 1000
    # largest-remainder rounding: within one patient of the exact proportion
    assert abs(large["stratum"].value_counts()["second_line_naive"] - 1000 * 194 / 555) < 1
    assert np.all(large["pfs2_months"] <= large["os_months"] + 1e-9)
    assert np.all(large["pfs2_months"] > 0)
