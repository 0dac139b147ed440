"""Simulated SePHER cohort: 555 HER2+ ABC patients treated with T-DM1.

The original patient data are not public. This module simulates a cohort with
the study's design (Bon, Pizzuti et al. 2020: 555 patients, 371 treated with
T-DM1 in second line, 177 after first-line trastuzumab + pertuzumab and 194
pertuzumab-naive, 184 in later lines) and calibrated to its published
results: median OS from diagnosis of advanced disease 52 vs 74 months,
median PFS on second-line T-DM1 (PFS2) 6 vs 10 months.

Model (times in months):

* Covariates (age, hormone receptor, visceral / brain metastases, de novo
  stage IV, number of metastatic sites, ECOG, prior adjuvant trastuzumab)
  are drawn from the distributions in :func:`default_cohort_model`.
* The disease course has three phases: first-line (for later-line patients:
  all prior lines) from advanced diagnosis to T-DM1 start; T-DM1 until
  progression or death (PFS2); post-progression survival. Each phase is
  Weibull with a stratum-specific median (stratum = second line
  pretreated / naive, later line pretreated / naive).
* Covariates act as an accelerated failure time on every phase: a patient's
  phases are all multiplied by ``exp(-lp / k_pfs2)``, where ``lp`` is the sum
  of the covariates' log hazard ratios. Hence PFS2 follows an exact
  proportional-hazards Weibull model with those hazard ratios (stratified by
  stratum), and OS (the sum of the phases) has the exact time ratio
  ``exp(-lp / k_pfs2)``; OS hazard ratios are close to, not exactly, the
  PFS2 ones (OS is not exactly proportional-hazards).
* A fixed fraction of PFS2 events are deaths without progression.
* Calendar: T-DM1 start is uniform in the stratum's calendar window (later
  than the earliest plausible advanced diagnosis plus the first-line
  duration, so pertuzumab-pretreated patients are diagnosed from 2013);
  advanced diagnosis = T-DM1 start - first-line duration. Durations are
  rounded to whole days (at least one day per phase).
* Censoring: administrative at the data cut-off, plus loss to follow-up at a
  constant rate from T-DM1 start. PFS2 censoring is independent of PFS2
  given the stratum. OS censoring is not independent of OS: follow-up from
  advanced diagnosis includes the first-line duration, which is also part of
  OS (as in the real retrospective cohort), so Kaplan-Meier medians of OS
  lie 2-4 months above the uncensored medians. The calibration therefore
  targets the large-sample Kaplan-Meier medians, i.e. what an analysis of
  the simulated data estimates (:func:`model_medians` gives both).

:func:`simulate_cohort` writes the input's date form; :func:`simulate_cohort_large`
returns the duration form, vectorised for benchmarks (10^6 patients in
seconds). Endpoints are derived by :func:`sepher.io.cohort.endpoints_from_days`,
the one definition the reader also uses.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import brentq

from sepher.io.cohort import DAYS_PER_MONTH, endpoints_from_days

#: Strata of the design, in the order patients are generated.
STRATA = (
    "second_line_pretreated",
    "second_line_naive",
    "later_line_pretreated",
    "later_line_naive",
)

#: Column order of the date form (``cohort`` in docs/data-dictionary.md).
DATE_FORM_COLUMNS = (
    "patient_id",
    "tdm1_line",
    "first_line_pertuzumab",
    "advanced_dx_date",
    "tdm1_start_date",
    "tdm1_progression_date",
    "last_contact_date",
    "vital_status",
)

#: Covariate columns, in output order.
COVARIATE_COLUMNS = (
    "age_at_advanced_dx",
    "hormone_receptor",
    "visceral_mets",
    "brain_mets",
    "de_novo",
    "n_metastatic_sites",
    "ecog",
    "prior_adjuvant_trastuzumab",
)

_EPOCH = np.datetime64("1970-01-01", "D")


def default_cohort_model() -> dict:
    """The true parameters of the simulated SePHER cohort (a fresh copy).

    Returns
    -------
    dict
        JSON-serialisable parameters. Times are in months, dates ISO 8601,
        rates per year. ``log_hazard_ratios`` are per unit of the covariate
        (age per year, centred at ``age_reference_years``; sites per site
        above one) and are exact hazard ratios for PFS2. Baseline medians
        are for a patient at the reference of every covariate; they were
        tuned with :func:`calibrate_cohort_model` so that the marginal
        medians of the second-line strata equal ``targets_months``.
    """
    return {
        "design": {
            "n_patients": 555,
            "counts": {
                "second_line_pretreated": 177,
                "second_line_naive": 194,
                "later_line_pretreated": 56,
                "later_line_naive": 128,
            },
            # Later lines (3..6) share of the 184 later-line patients.
            "later_line_counts": {"3": 90, "4": 50, "5": 28, "6": 16},
        },
        "targets_months": {
            "second_line_pretreated": {"os": 52.0, "pfs2": 6.0},
            "second_line_naive": {"os": 74.0, "pfs2": 10.0},
            # Not reported by the study: plausible values (TH3RESA-like PFS).
            "later_line_pretreated": {"os": 60.0, "pfs2": 4.5},
            "later_line_naive": {"os": 72.0, "pfs2": 6.0},
        },
        "weibull_shapes": {"first_line": 1.5, "pfs2": 1.5, "post_progression": 1.5},
        "strata": {
            "second_line_pretreated": {
                "first_line_baseline_median_months": 21.0,
                "pfs2_baseline_median_months": 8.7264,
                "post_progression_baseline_median_months": 41.19,
                "tdm1_start_window": ["2014-01-01", "2019-06-30"],
                "earliest_advanced_dx": "2013-03-01",
            },
            "second_line_naive": {
                "first_line_baseline_median_months": 19.0,
                "pfs2_baseline_median_months": 14.319,
                "post_progression_baseline_median_months": 69.237,
                "tdm1_start_window": ["2012-06-01", "2018-12-31"],
                "earliest_advanced_dx": "2009-01-01",
            },
            "later_line_pretreated": {
                "first_line_baseline_median_months": 14.0,
                "pfs2_baseline_median_months": 6.5612,
                "post_progression_baseline_median_months": 31.366,
                "tdm1_start_window": ["2014-06-01", "2019-06-30"],
                "earliest_advanced_dx": "2013-03-01",
            },
            "later_line_naive": {
                "first_line_baseline_median_months": 13.0,
                "pfs2_baseline_median_months": 8.6082,
                "post_progression_baseline_median_months": 49.117,
                "tdm1_start_window": ["2012-06-01", "2019-06-30"],
                "earliest_advanced_dx": "2007-01-01",
            },
        },
        "death_without_progression_fraction": 0.08,
        "censoring": {
            "data_cutoff": "2020-06-30",
            "loss_to_follow_up_per_year": 0.03,
        },
        "covariates": {
            "age_mean_years": 54.0,
            "age_sd_years": 12.0,
            "age_range_years": [24, 88],
            "age_reference_years": 55.0,
            "hormone_receptor_negative_fraction": 0.45,
            "visceral_mets_fraction": 0.62,
            "brain_mets_fraction": 0.14,
            "de_novo_fraction": 0.35,
            # Among recurrent (not de novo) patients; de novo patients had none.
            "prior_adjuvant_trastuzumab_fraction_pretreated": 0.65,
            "prior_adjuvant_trastuzumab_fraction_naive": 0.50,
            "ecog_fractions": [0.58, 0.34, 0.08],
            # n_metastatic_sites = 1 + Poisson(base + visceral + brain), at most max.
            "extra_sites_poisson_base": 0.5,
            "extra_sites_poisson_visceral": 0.6,
            "extra_sites_poisson_brain": 0.4,
            "n_metastatic_sites_max": 6,
        },
        "log_hazard_ratios": {
            "age_per_year": float(np.log(1.05) / 10.0),
            "hormone_receptor_negative": float(np.log(1.20)),
            "visceral_mets_yes": float(np.log(1.35)),
            "brain_mets_yes": float(np.log(1.45)),
            "de_novo_yes": float(np.log(0.85)),
            "n_metastatic_sites_per_site": float(np.log(1.08)),
            "ecog_1": float(np.log(1.30)),
            "ecog_2": float(np.log(1.90)),
            "prior_adjuvant_trastuzumab_yes": float(np.log(1.20)),
        },
    }


def _days(iso: str) -> int:
    return int((np.datetime64(iso, "D") - _EPOCH).astype(np.int64))


def _scaled_counts(counts: dict, n_patients: int) -> dict:
    """Integer counts proportional to `counts` summing to `n_patients` (largest remainder)."""
    keys = list(counts)
    weights = np.array([counts[k] for k in keys], dtype=float)
    exact = weights / weights.sum() * n_patients
    whole = np.floor(exact).astype(int)
    order = np.argsort(-(exact - whole), kind="stable")
    whole[order[: n_patients - whole.sum()]] += 1
    return {k: int(v) for k, v in zip(keys, whole, strict=True)}


def _design_arrays(model: dict, n_patients: int):
    """Stratum code (index in STRATA) and T-DM1 line per patient, in generation order."""
    counts = _scaled_counts(model["design"]["counts"], n_patients)
    stratum = np.repeat(np.arange(len(STRATA)), [counts[s] for s in STRATA])
    line = np.full(stratum.size, 2, dtype=np.int64)
    later = np.flatnonzero(stratum >= 2)
    line_counts = _scaled_counts(model["design"]["later_line_counts"], later.size)
    # Lines are dealt to later-line patients in proportion within each stratum.
    for code in (2, 3):
        idx = np.flatnonzero(stratum == code)
        per_line = _scaled_counts(line_counts, idx.size) if idx.size else {}
        line[idx] = np.repeat([int(k) for k in per_line], list(per_line.values()))
    return stratum, line, counts


def _draw_covariates(rng: np.random.Generator, stratum: np.ndarray, model: dict) -> dict:
    """Covariates as numeric codes (0/1 indicators, integers)."""
    c = model["covariates"]
    n = stratum.size
    lo, hi = c["age_range_years"]
    age = np.clip(np.rint(rng.normal(c["age_mean_years"], c["age_sd_years"], n)), lo, hi)
    hr_negative = rng.random(n) < c["hormone_receptor_negative_fraction"]
    visceral = rng.random(n) < c["visceral_mets_fraction"]
    brain = rng.random(n) < c["brain_mets_fraction"]
    de_novo = rng.random(n) < c["de_novo_fraction"]
    pretreated = (stratum == 0) | (stratum == 2)
    adjuvant_p = np.where(
        pretreated,
        c["prior_adjuvant_trastuzumab_fraction_pretreated"],
        c["prior_adjuvant_trastuzumab_fraction_naive"],
    )
    adjuvant = (rng.random(n) < adjuvant_p) & ~de_novo
    ecog = rng.choice(3, size=n, p=c["ecog_fractions"])
    rate = (
        c["extra_sites_poisson_base"]
        + c["extra_sites_poisson_visceral"] * visceral
        + c["extra_sites_poisson_brain"] * brain
    )
    sites = np.minimum(1 + rng.poisson(rate), c["n_metastatic_sites_max"])
    return {
        "age_at_advanced_dx": age.astype(np.int64),
        "hormone_receptor_negative": hr_negative,
        "visceral_mets": visceral,
        "brain_mets": brain,
        "de_novo": de_novo,
        "n_metastatic_sites": sites.astype(np.int64),
        "ecog": ecog.astype(np.int64),
        "prior_adjuvant_trastuzumab": adjuvant,
        "first_line_pertuzumab": pretreated,
    }


def linear_predictor(covariates: dict, model: dict) -> np.ndarray:
    """Sum of log hazard ratios per patient (0 at the reference of every covariate).

    Parameters
    ----------
    covariates : dict of arrays
        As drawn by the simulator (indicators and integer codes).
    model : dict
        Parameters, see :func:`default_cohort_model`.

    Returns
    -------
    ndarray
        Log relative hazard of PFS2.
    """
    b = model["log_hazard_ratios"]
    age_ref = model["covariates"]["age_reference_years"]
    return (
        b["age_per_year"] * (covariates["age_at_advanced_dx"] - age_ref)
        + b["hormone_receptor_negative"] * covariates["hormone_receptor_negative"]
        + b["visceral_mets_yes"] * covariates["visceral_mets"]
        + b["brain_mets_yes"] * covariates["brain_mets"]
        + b["de_novo_yes"] * covariates["de_novo"]
        + b["n_metastatic_sites_per_site"] * (covariates["n_metastatic_sites"] - 1)
        + b["ecog_1"] * (covariates["ecog"] == 1)
        + b["ecog_2"] * (covariates["ecog"] == 2)
        + b["prior_adjuvant_trastuzumab_yes"] * covariates["prior_adjuvant_trastuzumab"]
    )


def _weibull(rng, median, shape, size):
    """Weibull draws with the given median (months) and shape."""
    return median * (rng.standard_exponential(size) / np.log(2.0)) ** (1.0 / shape)


def _stratum_param(model, stratum, key):
    values = np.array([model["strata"][s][key] for s in STRATA], dtype=float)
    return values[stratum]


def _phases(rng, stratum, line, covariates, model):
    """Phase durations in months (uncensored) and the death-first indicator."""
    n = stratum.size
    k = model["weibull_shapes"]
    time_ratio = np.exp(-linear_predictor(covariates, model) / k["pfs2"])
    prior_lines = line - 1
    max_prior = int(prior_lines.max()) if n else 1
    line_draws = _weibull(rng, 1.0, k["first_line"], (n, max(max_prior, 1)))
    line_draws[np.arange(line_draws.shape[1])[None, :] >= prior_lines[:, None]] = 0.0
    first_line = (
        _stratum_param(model, stratum, "first_line_baseline_median_months")
        * time_ratio
        * line_draws.sum(axis=1)
    )
    pfs2 = (
        _stratum_param(model, stratum, "pfs2_baseline_median_months")
        * time_ratio
        * _weibull(rng, 1.0, k["pfs2"], n)
    )
    death_first = rng.random(n) < model["death_without_progression_fraction"]
    post_progression = (
        _stratum_param(model, stratum, "post_progression_baseline_median_months")
        * time_ratio
        * _weibull(rng, 1.0, k["post_progression"], n)
    )
    post_progression[death_first] = 0.0
    return first_line, pfs2, post_progression, death_first


def _to_days(months, minimum):
    return np.maximum(np.rint(months * DAYS_PER_MONTH).astype(np.int64), minimum)


def _simulate_days(rng, stratum, line, model):
    """The whole model on day numbers (days since 1970-01-01)."""
    covariates = _draw_covariates(rng, stratum, model)
    first_line, pfs2, post_progression, death_first = _phases(rng, stratum, line, covariates, model)
    first_line_d = _to_days(first_line, 1)
    pfs2_d = _to_days(pfs2, 1)
    post_d = np.where(death_first, 0, _to_days(post_progression, 1))
    start, end_of_follow_up = _calendar(rng, stratum, first_line_d, model)
    advanced_dx = start - first_line_d
    progression = start + pfs2_d
    death = progression + post_d
    dead = death <= end_of_follow_up
    last_contact = np.minimum(death, end_of_follow_up)
    progressed = ~death_first & (progression <= last_contact)
    return {
        "covariates": covariates,
        "advanced_dx": advanced_dx,
        "tdm1_start": start,
        "progression": np.where(progressed, progression, -1),
        "progressed": progressed,
        "last_contact": last_contact,
        "dead": dead,
        "true_os_months": (first_line_d + pfs2_d + post_d) / DAYS_PER_MONTH,
        "true_pfs2_months": pfs2_d / DAYS_PER_MONTH,
    }


def _calendar(rng, stratum, first_line_d, model):
    """T-DM1 start day and end of follow-up day (cut-off or loss to follow-up).

    Start is uniform in the stratum's window, no earlier than the earliest
    advanced diagnosis plus the first-line duration; it does not depend on
    PFS2 or post-progression survival.
    """
    window_lo = np.array([_days(model["strata"][s]["tdm1_start_window"][0]) for s in STRATA])
    window_hi = np.array([_days(model["strata"][s]["tdm1_start_window"][1]) for s in STRATA])
    dx_min = np.array([_days(model["strata"][s]["earliest_advanced_dx"]) for s in STRATA])
    hi = window_hi[stratum]
    lo = np.minimum(np.maximum(window_lo[stratum], dx_min[stratum] + first_line_d), hi)
    start = lo + np.floor(rng.random(stratum.size) * (hi - lo + 1)).astype(np.int64)
    cens = model["censoring"]
    loss = start + np.ceil(
        rng.standard_exponential(stratum.size) * 365.25 / cens["loss_to_follow_up_per_year"]
    ).astype(np.int64)
    return start, np.minimum(_days(cens["data_cutoff"]), loss)


def _yes_no(flag):
    return np.where(flag, "yes", "no")


def _covariate_columns(cov) -> dict:
    return {
        "age_at_advanced_dx": cov["age_at_advanced_dx"],
        "hormone_receptor": np.where(cov["hormone_receptor_negative"], "negative", "positive"),
        "visceral_mets": _yes_no(cov["visceral_mets"]),
        "brain_mets": _yes_no(cov["brain_mets"]),
        "de_novo": _yes_no(cov["de_novo"]),
        "n_metastatic_sites": cov["n_metastatic_sites"],
        "ecog": cov["ecog"],
        "prior_adjuvant_trastuzumab": _yes_no(cov["prior_adjuvant_trastuzumab"]),
    }


def _iso(days: np.ndarray) -> np.ndarray:
    return np.datetime_as_string(_EPOCH + days.astype("timedelta64[D]"), unit="D")


def simulate_cohort(n_patients: int = 555, seed: int = 20201, model: dict | None = None):
    """Simulate the SePHER cohort in the date form of docs/data-dictionary.md.

    Parameters
    ----------
    n_patients : int, default 555
        Cohort size; the design's counts (177 / 194 second-line, 184
        later-line) are exact at 555 and scaled proportionally otherwise.
    seed : int, default 20201
        Seed of :func:`numpy.random.default_rng`; same seed, same cohort.
    model : dict, optional
        Parameters; default :func:`default_cohort_model`.

    Returns
    -------
    cohort : DataFrame
        One row per patient (rows in random order, ``patient_id`` SPH-0001,
        ...): ``patient_id, tdm1_line, first_line_pertuzumab (yes/no),
        advanced_dx_date, tdm1_start_date, tdm1_progression_date`` (ISO 8601;
        empty string when no progression was observed), ``last_contact_date,
        vital_status (alive/dead)`` and the covariates
        ``age_at_advanced_dx`` (years), ``hormone_receptor``
        (positive/negative), ``visceral_mets``, ``brain_mets``, ``de_novo``,
        ``prior_adjuvant_trastuzumab`` (yes/no), ``n_metastatic_sites``
        (1..6), ``ecog`` (0/1/2).
    truth : dict
        Every true parameter (see :func:`cohort_truth`), ``"simulated": True``.
    """
    if n_patients < len(STRATA):
        raise ValueError(f"n_patients must be at least {len(STRATA)}, got {n_patients}")
    model = copy.deepcopy(model or default_cohort_model())
    rng = np.random.default_rng(seed)
    stratum, line, counts = _design_arrays(model, n_patients)
    order = rng.permutation(stratum.size)
    stratum, line = stratum[order], line[order]
    sim = _simulate_days(rng, stratum, line, model)
    width = max(4, len(str(n_patients)))
    progression = np.where(sim["progressed"], _iso(np.maximum(sim["progression"], 0)), "")
    cohort = pd.DataFrame(
        {
            "patient_id": [f"SPH-{i:0{width}d}" for i in range(1, stratum.size + 1)],
            "tdm1_line": line,
            "first_line_pertuzumab": _yes_no(sim["covariates"]["first_line_pertuzumab"]),
            "advanced_dx_date": _iso(sim["advanced_dx"]),
            "tdm1_start_date": _iso(sim["tdm1_start"]),
            "tdm1_progression_date": progression,
            "last_contact_date": _iso(sim["last_contact"]),
            "vital_status": np.where(sim["dead"], "dead", "alive"),
            **_covariate_columns(sim["covariates"]),
        }
    )
    truth = cohort_truth(model, seed=seed, n_patients=n_patients, counts=counts, line=line)
    return cohort, truth


def simulate_cohort_large(n_patients: int, seed: int = 20201, model: dict | None = None):
    """Vectorised simulation of a large cohort, in the duration form.

    Same model and proportions as :func:`simulate_cohort` (10^6 patients in a
    few seconds), but patients are in stratum order (not shuffled), ids are
    integers and dates are not formatted.

    Parameters
    ----------
    n_patients : int
        Cohort size (at least 4).
    seed : int, default 20201
        Seed of :func:`numpy.random.default_rng`.
    model : dict, optional
        Parameters; default :func:`default_cohort_model`.

    Returns
    -------
    DataFrame
        ``patient_id`` (int), ``tdm1_line``, ``first_line_pertuzumab``
        (categorical no/yes), ``os_months, os_event, pfs2_months,
        pfs2_event`` (months = days / 30.4375, events 0/1), the covariates
        (categoricals for yes/no and hormone receptor), plus ``stratum``
        (categorical, one of :data:`STRATA`), and the uncensored
        ``true_os_months`` and ``true_pfs2_months``.
    """
    if n_patients < len(STRATA):
        raise ValueError(f"n_patients must be at least {len(STRATA)}, got {n_patients}")
    model = model or default_cohort_model()
    rng = np.random.default_rng(seed)
    stratum, line, _ = _design_arrays(model, n_patients)
    sim = _simulate_days(rng, stratum, line, model)
    progression = np.where(sim["progressed"], sim["progression"], np.nan)
    endpoints = endpoints_from_days(
        sim["advanced_dx"], sim["tdm1_start"], progression, sim["last_contact"], sim["dead"]
    )
    cov = sim["covariates"]

    def yes_no(flag):
        return pd.Categorical.from_codes(flag.astype(np.int8), ["no", "yes"])

    return pd.DataFrame(
        {
            "patient_id": np.arange(1, n_patients + 1),
            "tdm1_line": line,
            "first_line_pertuzumab": yes_no(cov["first_line_pertuzumab"]),
            **endpoints,
            "age_at_advanced_dx": cov["age_at_advanced_dx"],
            "hormone_receptor": pd.Categorical.from_codes(
                cov["hormone_receptor_negative"].astype(np.int8), ["positive", "negative"]
            ),
            "visceral_mets": yes_no(cov["visceral_mets"]),
            "brain_mets": yes_no(cov["brain_mets"]),
            "de_novo": yes_no(cov["de_novo"]),
            "n_metastatic_sites": cov["n_metastatic_sites"],
            "ecog": cov["ecog"],
            "prior_adjuvant_trastuzumab": yes_no(cov["prior_adjuvant_trastuzumab"]),
            "stratum": pd.Categorical.from_codes(stratum, list(STRATA)),
            "true_os_months": sim["true_os_months"],
            "true_pfs2_months": sim["true_pfs2_months"],
        }
    )


def km_median(time, event) -> float:
    """Kaplan-Meier median (first time the curve is <= 0.5; NaN if never), vectorised."""
    order = np.lexsort((1 - np.asarray(event), np.asarray(time)))
    t = np.asarray(time, dtype=float)[order]
    e = np.asarray(event, dtype=float)[order]
    at_risk = t.size - np.arange(t.size)
    # events at tied times: the product over single steps equals the grouped step
    surv = np.cumprod(1.0 - e / at_risk)
    below = np.flatnonzero(surv <= 0.5)
    return float(t[below[0]]) if below.size else float("nan")


def _stratum_sample(model, code, n, seed):
    """Phases (months, unit baseline medians for PFS2 and post-progression) and follow-up.

    PFS2 and post-progression are drawn with baseline median 1 so that any
    baseline median is a multiplication (common random numbers).
    """
    rng = np.random.default_rng([seed, code])
    stratum = np.full(n, code)
    if code >= 2:
        lines = _scaled_counts(model["design"]["later_line_counts"], n)
        line = np.repeat([int(k) for k in lines], list(lines.values()))
    else:
        line = np.full(n, 2)
    unit = copy.deepcopy(model)
    unit["strata"][STRATA[code]]["pfs2_baseline_median_months"] = 1.0
    unit["strata"][STRATA[code]]["post_progression_baseline_median_months"] = 1.0
    cov = _draw_covariates(rng, stratum, unit)
    first_line, pfs2, post, _ = _phases(rng, stratum, line, cov, unit)
    start, end = _calendar(rng, stratum, _to_days(first_line, 1), unit)
    return {
        "first_line": first_line,
        "unit_pfs2": pfs2,
        "unit_post": post,
        "follow_up": (end - start) / DAYS_PER_MONTH,
    }


def _stratum_medians(sample, pfs2_median, post_median):
    pfs2 = pfs2_median * sample["unit_pfs2"]
    death = pfs2 + post_median * sample["unit_post"]
    follow_up = sample["follow_up"]
    os_true = sample["first_line"] + death
    return {
        "os": float(np.median(os_true)),
        "pfs2": float(np.median(pfs2)),
        "os_km": km_median(sample["first_line"] + np.minimum(death, follow_up), death <= follow_up),
        "pfs2_km": km_median(np.minimum(pfs2, follow_up), pfs2 <= follow_up),
    }


def model_medians(model: dict | None = None, n_per_stratum: int = 200_000, seed: int = 0):
    """True and expected Kaplan-Meier median OS and PFS2 per stratum, months.

    ``os`` and ``pfs2`` are the medians of the uncensored times; ``os_km``
    and ``pfs2_km`` the Kaplan-Meier medians under the model's censoring
    (large-sample limit of what an analysis of the simulated cohort
    estimates). They differ for OS because follow-up from advanced diagnosis
    includes the first-line duration, which also makes up part of OS
    (censoring not independent of OS, as in the real retrospective cohort).
    Monte Carlo with `n_per_stratum` patients, deterministic given `seed`.

    Returns
    -------
    dict
        stratum -> {"os", "pfs2", "os_km", "pfs2_km"}, rounded to 0.01 month.
    """
    model = model or default_cohort_model()
    medians = {}
    for code, name in enumerate(STRATA):
        params = model["strata"][name]
        sample = _stratum_sample(model, code, n_per_stratum, seed)
        values = _stratum_medians(
            sample,
            params["pfs2_baseline_median_months"],
            params["post_progression_baseline_median_months"],
        )
        medians[name] = {k: round(v, 2) for k, v in values.items()}
    return medians


def calibrate_cohort_model(model: dict | None = None, n_per_stratum: int = 200_000, seed: int = 0):
    """Tune baseline medians so the expected Kaplan-Meier medians hit the targets.

    For each stratum in ``model["targets_months"]`` the PFS2 baseline median
    is solved so that the large-sample Kaplan-Meier median of PFS2 equals
    the target, then the post-progression baseline median so that the
    Kaplan-Meier median of OS does (root finding with common random
    numbers, see :func:`model_medians`). First-line medians, shapes, hazard
    ratios and censoring are kept.

    Returns
    -------
    dict
        A calibrated copy of `model`; baseline medians rounded to 5
        significant digits.
    """
    model = copy.deepcopy(model or default_cohort_model())
    for name, target in model["targets_months"].items():
        params = model["strata"][name]
        sample = _stratum_sample(model, STRATA.index(name), n_per_stratum, seed)
        post = params["post_progression_baseline_median_months"]

        def pfs2_gap(m, sample=sample, post=post, t=target["pfs2"]):
            # a curve that never reaches 0.5 has its median beyond any target
            return np.nan_to_num(_stratum_medians(sample, m, post)["pfs2_km"], nan=1e6) - t

        pfs2 = float(f"{brentq(pfs2_gap, 0.05, 500.0, xtol=1e-5):.5g}")

        def os_gap(m, sample=sample, pfs2=pfs2, t=target["os"]):
            return np.nan_to_num(_stratum_medians(sample, pfs2, m)["os_km"], nan=1e6) - t

        params["pfs2_baseline_median_months"] = pfs2
        params["post_progression_baseline_median_months"] = float(
            f"{brentq(os_gap, 0.05, 2000.0, xtol=1e-5):.5g}"
        )
    return model


def cohort_truth(model: dict, *, seed: int, n_patients: int, counts: dict, line) -> dict:
    """The truth record written next to the simulated cohort.

    Returns
    -------
    dict
        ``simulated`` (True), the generator, seed, counts, the full model,
        PFS2 hazard ratios and OS/PFS2 time ratios per covariate, and the
        model's true and expected Kaplan-Meier medians per stratum
        (:func:`model_medians`).
    """
    k = model["weibull_shapes"]["pfs2"]
    log_hr = model["log_hazard_ratios"]
    lines, line_n = np.unique(np.asarray(line), return_counts=True)
    return {
        "simulated": True,
        "generator": "sepher.simulate.cohort.simulate_cohort",
        "seed": int(seed),
        "n_patients": int(n_patients),
        "counts": {
            "by_stratum": {s: int(counts[s]) for s in STRATA},
            "by_tdm1_line": {str(int(a)): int(b) for a, b in zip(lines, line_n, strict=True)},
        },
        "model": model,
        "pfs2_hazard_ratios": {term: round(float(np.exp(b)), 6) for term, b in log_hr.items()},
        "time_ratios": {term: round(float(np.exp(-b / k)), 6) for term, b in log_hr.items()},
        "medians_months": model_medians(model),
        "endpoints": {
            "os": "advanced_dx_date to last_contact_date; event: vital_status dead",
            "pfs2": (
                "tdm1_start_date to tdm1_progression_date (event), else to "
                "last_contact_date (event if dead)"
            ),
            "months": f"days / {DAYS_PER_MONTH}",
        },
        "notes": (
            "Covariates act as an accelerated failure time on every phase (time ratio "
            "exp(-log_hr / k_pfs2)): PFS2 is exactly proportional-hazards with "
            "pfs2_hazard_ratios within each stratum; OS has exactly the time ratios and "
            "approximately the same hazard ratios. Strata differ in baseline medians "
            "(first_line_pertuzumab and line). medians_months: os / pfs2 are medians of the "
            "uncensored times, os_km / pfs2_km the large-sample Kaplan-Meier medians under "
            "the censoring of the design (the calibration targets are on the latter)."
        ),
    }


def write_demo_cohort(out_csv, truth_json, seed: int = 20201) -> None:
    """Write the demo cohort CSV and its truth JSON (byte-identical on every call).

    Parameters
    ----------
    out_csv, truth_json : path
        Output files (parent folders created). CSV: LF line endings, no
        index, integers and ISO dates only. JSON: sorted keys, indent 2,
        trailing newline.
    seed : int, default 20201
        Seed of the simulation.
    """
    cohort, truth = simulate_cohort(seed=seed)
    out_csv, truth_json = Path(out_csv), Path(truth_json)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    truth_json.parent.mkdir(parents=True, exist_ok=True)
    text = cohort.to_csv(index=False, lineterminator="\n", float_format="%.10g")
    out_csv.write_bytes(text.encode("utf-8"))
    truth_json.write_bytes((json.dumps(truth, indent=2, sort_keys=True) + "\n").encode("utf-8"))
