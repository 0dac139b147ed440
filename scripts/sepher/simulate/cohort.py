"""Simulated SePHER cohort: 555 HER2+ ABC patients treated with T-DM1.

The original patient data are not public. This module simulates a cohort with
the study's design (Bon, Pizzuti et al. 2020: 555 patients, 371 treated with
T-DM1 in second line, 177 after first-line trastuzumab + pertuzumab and 194
pertuzumab-naive, 184 in later lines) and calibrated to its published
evidence, not only its medians: median OS from diagnosis of advanced disease
52 vs 74 months (log-rank p = 0.0006), median PFS on second-line T-DM1
(PFS2) 6 vs 10 months (p = 0.03). With ~340 progressions among 371
patients, PFS2 medians of 6 vs 10 months under proportional hazards would
give p ~ 1e-6, and the OS p-value is likewise not the one the OS medians
imply under proportional hazards; so the group effect is deliberately *not*
proportional: the model is a different one from the Kaplan-Meier /
log-rank / Cox PH analysis the workflow runs on it.

Model (times in months, months = days / 30.4375):

* **Covariates, correlated and group-dependent** (:func:`default_cohort_model`,
  ``covariates``): age ~ normal (pretreated patients younger); ECOG 0/1/2
  ordinal-logistic in age (older, worse); hormone receptor negative more
  often in the naive group; de novo stage IV more often in the pretreated
  group; prior adjuvant trastuzumab only if not de novo (more often in the
  pretreated group); visceral metastases logistic in hormone receptor and de
  novo; brain metastases more often if hormone receptor negative; number of
  metastatic sites = 1 + Poisson(base + visceral + brain), at most 6.
* **First line (delayed entry).** T-DM1 starts after the first line (for
  later-line patients: after all prior lines, one draw per line). Each line
  is Weibull (shape ``first_line.weibull_shape``, stratum-specific baseline
  median), proportional hazards in the covariates. Advanced diagnosis =
  T-DM1 start - this duration, so OS from advanced diagnosis is
  left-truncated at T-DM1 start: a patient is only in the cohort because she
  reached T-DM1. The analysis must treat her as at risk from T-DM1 start
  (delayed entry, R ``Surv(entry, time, event)``).
* **Era.** T-DM1 start is uniform in the stratum's calendar window
  (pertuzumab-pretreated patients start from 2014, after its 2013 approval;
  naive ones from mid 2012), and calendar year acts on prognosis: the PFS2
  and post-progression hazards are multiplied by ``exp(b * (year - 2015))``
  (``era``; later years, better survival). The group is thus confounded by
  era; the follow-up to the 2020-06-30 cut-off is also shorter in later
  years.
* **PFS2** (from T-DM1 start): Weibull baseline per line (second / later),
  proportional hazards in the covariates and era, and a *time-varying*
  pretreated-vs-naive hazard ratio, piecewise constant: ``early`` before
  ``change_months`` and ``late`` after. As calibrated, 2.24 in the first 6
  months and 1.03 after (converging hazards: cross-resistance after
  pertuzumab makes early progression on T-DM1 more likely; patients who
  get past the first months progress at the naive rate). The curves
  separate early, which moves the medians a lot, and then run nearly
  parallel, which the log-rank test weighs little. A fixed fraction of
  PFS2 events are deaths without progression.
* **Post-progression survival** (from progression to death): the same
  form, with its own baseline medians and pretreated hazard ratio; as
  calibrated 1.76 in the first 12 months after progression and 2.83 after
  (diverging hazards: fewer HER2-directed options are left after
  pertuzumab and T-DM1). OS = first line + PFS2 + post-progression.
* **Best response** (RECIST 1.1) on T-DM1: NE if death or loss to
  follow-up before the first assessment (``first_assessment_months``) or, at
  random, not evaluable; PD if progression before it; otherwise objective
  response (CR or PR) with a logistic probability in log PFS2 and the group
  (responders have longer PFS2), else SD.
* **Missing values** in ``ecog`` and ``hormone_receptor`` (blank cells),
  missing at random: the probability of a blank is logistic in fully
  observed data only (age and year of T-DM1 start for ECOG, de novo status
  and year for hormone receptor), not in the hidden value or the outcome.
* **Censoring**: administrative at the data cut-off, plus loss to follow-up
  at a constant rate from T-DM1 start. Durations are rounded to whole days
  (at least one day per phase).

Covariate effects are proportional hazards for every phase (within a
stratum, and given year, PFS2 follows an exact stratified PH model with the
``log_hazard_ratios``); the group effect is not, and OS (a sum of phases)
is not proportional in anything. Entry and OS are dependent (OS = entry +
the rest, and both depend on the covariates), so the delayed-entry
Kaplan-Meier median of OS, which the workflow estimates by default, is
some months below the median OS of the simulated patients; the truth file
gives both (``medians_months``: ``os`` vs ``os_km``).

Calibration (:func:`calibrate_cohort_model`) tunes the baseline medians and
the early pretreated hazard ratios so that the large-sample Kaplan-Meier
medians of the second-line groups equal the targets (OS with delayed
entry), and the late hazard ratios so that the expected log-rank z at the
design size gives the published p-values (OS: delayed-entry log-rank, i.e.
the Cox score test with entry). Over 1000 seeds the realised z has mean
3.42 (OS) and 2.18 (PFS2), sd about 1, and the median of the realised
medians is within 1 % of each target; each single check lands inside issue
14's range in 27-80 % of seeds, all six together in about 4 %. The demo
(seed :data:`DEMO_SEED`) is the first seed from 20201 that meets the
tighter :data:`DEMO_SEED_CRITERIA` (:func:`find_demo_seed`).

:func:`simulate_cohort` writes the input's date form; :func:`simulate_cohort_large`
returns the duration form, vectorised for benchmarks (10^6 patients in
seconds). Endpoints are derived by :func:`sepher.io.cohort.endpoints_from_days`,
the one definition the reader also uses. The small Kaplan-Meier and log-rank
functions here (with delayed entry) serve the calibration on large samples;
the tests check them against lifelines.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit
from scipy.stats import norm

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

#: Best response to T-DM1 (RECIST 1.1), the column after the covariates.
RESPONSE_COLUMN = "best_response"
RESPONSE_LEVELS = ("CR", "PR", "SD", "PD", "NE")

#: Seed of the demo cohort (resources/demo/cohort.csv), see :func:`write_demo_cohort`.
DEMO_SEED = 20619

_EPOCH = np.datetime64("1970-01-01", "D")
_LN2 = float(np.log(2.0))
_DAYS_PER_YEAR = 365.25


def default_cohort_model() -> dict:
    """The true parameters of the simulated SePHER cohort (a fresh copy).

    Returns
    -------
    dict
        JSON-serialisable parameters. Times are in months, dates ISO 8601,
        rates per year. ``log_hazard_ratios`` are per unit of the covariate
        (age per year, centred at ``age_reference_years``; sites per site
        above one) and are exact hazard ratios for every phase. Baseline
        medians are for a patient at the reference of every covariate, T-DM1
        starting in ``era.reference_year``. Baseline medians and pretreated
        hazard ratios were tuned with :func:`calibrate_cohort_model` (targets
        in ``targets``).
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
        "targets": {
            # Large-sample Kaplan-Meier medians, months (OS with delayed entry).
            "median_months": {
                "second_line_pretreated": {"os": 52.0, "pfs2": 6.0},
                "second_line_naive": {"os": 74.0, "pfs2": 10.0},
                # Not reported by the study: plausible values (TH3RESA-like PFS).
                "later_line_naive": {"os": 72.0, "pfs2": 6.0},
            },
            # Second line, pretreated vs naive: the expected log-rank z at the design
            # size is the normal quantile of these p-values (OS with delayed entry).
            "logrank_p": {"os": 0.0006, "pfs2": 0.03},
        },
        "strata": {
            "second_line_pretreated": {
                "first_line_baseline_median_months": 18.0,
                "tdm1_start_window": ["2014-01-01", "2019-06-30"],
                "earliest_advanced_dx": "2013-03-01",
            },
            "second_line_naive": {
                "first_line_baseline_median_months": 15.0,
                "tdm1_start_window": ["2012-06-01", "2018-12-31"],
                "earliest_advanced_dx": "2009-01-01",
            },
            "later_line_pretreated": {
                "first_line_baseline_median_months": 13.0,
                "tdm1_start_window": ["2014-06-01", "2019-06-30"],
                "earliest_advanced_dx": "2013-03-01",
            },
            "later_line_naive": {
                "first_line_baseline_median_months": 11.0,
                "tdm1_start_window": ["2012-06-01", "2019-06-30"],
                "earliest_advanced_dx": "2007-01-01",
            },
        },
        "first_line": {"weibull_shape": 1.5},
        "pfs2": {
            "weibull_shape": 1.4,
            "baseline_median_months": {"second_line": 14.97, "later_line": 8.9793},
            # Pretreated vs naive hazard ratio: `early` before change_months, `late` after.
            "pretreated_hazard_ratio": {"early": 2.2431, "late": 1.0285, "change_months": 6.0},
        },
        "post_progression": {
            "weibull_shape": 1.5,
            "baseline_median_months": {"second_line": 86.358, "later_line": 84.231},
            "pretreated_hazard_ratio": {"early": 1.7588, "late": 2.8266, "change_months": 12.0},
        },
        "death_without_progression_fraction": 0.08,
        "era": {
            # Hazard multiplier exp(b * (calendar year of T-DM1 start - reference_year)).
            "reference_year": 2015.0,
            "log_hazard_ratio_per_year": {
                "pfs2": float(np.log(0.97)),
                "post_progression": float(np.log(0.92)),
            },
        },
        "censoring": {
            "data_cutoff": "2020-06-30",
            "loss_to_follow_up_per_year": 0.03,
        },
        "covariates": {
            "age_mean_years": {"pretreated": 53.0, "naive": 56.0},
            "age_sd_years": 12.0,
            "age_range_years": [24, 88],
            "age_reference_years": 55.0,
            # P(ECOG <= j) = expit(cutpoint_j - age_per_year * (age - age_reference_years))
            "ecog_ordinal_logit": {"cutpoints": [0.35, 2.5], "age_per_year": 0.04},
            "hormone_receptor_negative_fraction": {"pretreated": 0.40, "naive": 0.50},
            "de_novo_fraction": {"pretreated": 0.42, "naive": 0.30},
            # Among recurrent (not de novo) patients; de novo patients had none.
            "prior_adjuvant_trastuzumab_fraction": {"pretreated": 0.65, "naive": 0.50},
            # logit P(visceral) = intercept + hr_negative * [HR-] + de_novo * [de novo]
            "visceral_mets_logit": {
                "intercept": 0.25,
                "hormone_receptor_negative": 0.5,
                "de_novo": 0.3,
            },
            "brain_mets_fraction": {
                "hormone_receptor_positive": 0.10,
                "hormone_receptor_negative": 0.19,
            },
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
        "best_response": {
            "first_assessment_months": 2.8,
            "not_evaluable_fraction": 0.04,
            # logit P(CR or PR | no progression before the first assessment, evaluable)
            #   = intercept + log_pfs2 * log(pfs2 / pfs2_reference_months) + pretreated * [yes]
            "objective_response_logit": {
                "intercept": -0.25,
                "log_pfs2": 1.0,
                "pretreated": -0.3,
                "pfs2_reference_months": 10.0,
            },
            "complete_response_fraction": 0.15,
        },
        "missingness": {
            "mechanism": (
                "missing at random: P(blank) is logistic in fully observed data only "
                "(age and year of T-DM1 start for ecog; de novo and year for "
                "hormone_receptor), not in the hidden value or any outcome"
            ),
            # logit P(blank) = intercept + sum(coefficient * variable); year centred at era.
            "ecog": {"intercept": -2.1, "age_per_year": 0.03, "year": -0.2},
            "hormone_receptor": {"intercept": -2.3, "de_novo_yes": 0.7, "year": -0.2},
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


def _by_group(values: dict, pretreated: np.ndarray) -> np.ndarray:
    return np.where(pretreated, values["pretreated"], values["naive"])


def _draw_covariates(rng: np.random.Generator, stratum: np.ndarray, model: dict) -> dict:
    """Correlated covariates as numeric codes (0/1 indicators, integers)."""
    c = model["covariates"]
    n = stratum.size
    pretreated = (stratum == 0) | (stratum == 2)
    lo, hi = c["age_range_years"]
    age_mean = _by_group(c["age_mean_years"], pretreated)
    age = np.clip(np.rint(rng.normal(age_mean, c["age_sd_years"], n)), lo, hi)
    ecog_model = c["ecog_ordinal_logit"]
    shift = ecog_model["age_per_year"] * (age - c["age_reference_years"])
    cut0, cut1 = ecog_model["cutpoints"]
    u_ecog = rng.random(n)
    ecog = (u_ecog > expit(cut0 - shift)).astype(np.int64) + (u_ecog > expit(cut1 - shift))
    hr_negative = rng.random(n) < _by_group(c["hormone_receptor_negative_fraction"], pretreated)
    de_novo = rng.random(n) < _by_group(c["de_novo_fraction"], pretreated)
    adjuvant_p = _by_group(c["prior_adjuvant_trastuzumab_fraction"], pretreated)
    adjuvant = (rng.random(n) < adjuvant_p) & ~de_novo
    v = c["visceral_mets_logit"]
    visceral_p = expit(
        v["intercept"] + v["hormone_receptor_negative"] * hr_negative + v["de_novo"] * de_novo
    )
    visceral = rng.random(n) < visceral_p
    b = c["brain_mets_fraction"]
    brain_p = np.where(hr_negative, b["hormone_receptor_negative"], b["hormone_receptor_positive"])
    brain = rng.random(n) < brain_p
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
        Log relative hazard (every phase; the group and era effects are not
        included).
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


def weibull_piecewise_time(cumulative_hazard, median, shape, early=1.0, late=1.0, change=None):
    """Time at which a Weibull hazard times a piecewise-constant ratio reaches a cumulative hazard.

    The hazard is ``r(t) * h0(t)``, ``h0`` Weibull with the given `median`
    and `shape` (cumulative ``H0(t) = log 2 * (t / median) ** shape``) and
    ``r(t) = early`` for ``t < change``, ``late`` after. Drawing
    ``cumulative_hazard = E * exp(-lp)`` with E standard exponential gives
    survival times with hazard ``exp(lp) * r(t) * h0(t)`` (inversion).

    Parameters
    ----------
    cumulative_hazard : array_like
        Target cumulative hazards (>= 0).
    median, shape : float or array_like
        Baseline Weibull median (time units) and shape.
    early, late : float or array_like, default 1
        Hazard ratios before and after `change`.
    change : float or array_like, optional
        Change time; None: no change (``early`` throughout).

    Returns
    -------
    ndarray
        Times, same units as `median`.
    """
    c = np.asarray(cumulative_hazard, dtype=float)
    median = np.asarray(median, dtype=float)
    shape = np.asarray(shape, dtype=float)
    early = np.asarray(early, dtype=float)
    late = np.asarray(late, dtype=float)
    if change is None:
        h0 = c / early
    else:
        h0_change = _LN2 * (np.asarray(change, dtype=float) / median) ** shape
        before = c < early * h0_change
        h0 = np.where(before, c / early, h0_change + (c - early * h0_change) / late)
    return median * (h0 / _LN2) ** (1.0 / shape)


def _stratum_param(model, stratum, key):
    values = np.array([model["strata"][s][key] for s in STRATA], dtype=float)
    return values[stratum]


def _to_days(months, minimum):
    return np.maximum(np.rint(months * DAYS_PER_MONTH).astype(np.int64), minimum)


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
        rng.standard_exponential(stratum.size) * _DAYS_PER_YEAR / cens["loss_to_follow_up_per_year"]
    ).astype(np.int64)
    return start, np.minimum(_days(cens["data_cutoff"]), loss)


def _draws(rng, stratum, line, model):
    """Everything random, and what does not depend on the PFS2 / post-progression parameters.

    Covariates, first line (entry), calendar, era and the unit random numbers
    of the later phases, so that :func:`_outcomes` is a deterministic function
    of the parameters (common random numbers for the calibration).
    """
    n = stratum.size
    covariates = _draw_covariates(rng, stratum, model)
    lp = linear_predictor(covariates, model)
    prior_lines = line - 1
    max_prior = max(int(prior_lines.max()) if n else 1, 1)
    exp_draws = rng.standard_exponential((n, max_prior))
    line_months = weibull_piecewise_time(
        exp_draws * np.exp(-lp)[:, None],
        _stratum_param(model, stratum, "first_line_baseline_median_months")[:, None],
        model["first_line"]["weibull_shape"],
    )
    line_months[np.arange(max_prior)[None, :] >= prior_lines[:, None]] = 0.0
    first_line = line_months.sum(axis=1)
    first_line_d = _to_days(first_line, 1)
    start, end_of_follow_up = _calendar(rng, stratum, first_line_d, model)
    year = 1970.0 + start / _DAYS_PER_YEAR
    return {
        "stratum": stratum,
        "line": line,
        "covariates": covariates,
        "lp": lp,
        "first_line_months": first_line,
        "first_line_d": first_line_d,
        "tdm1_start": start,
        "end_of_follow_up": end_of_follow_up,
        "follow_up_months": (end_of_follow_up - start) / DAYS_PER_MONTH,
        "era_years": year - model["era"]["reference_year"],
        "e_pfs2": rng.standard_exponential(n),
        "u_death_first": rng.random(n),
        "e_post": rng.standard_exponential(n),
        "u_response": rng.random((n, 3)),
        "u_missing": rng.random((n, 2)),
    }


def _phase_months(draws, model, phase, e):
    """Durations of PFS2 or post-progression (months) for every patient."""
    params = model[phase]
    stratum = draws["stratum"]
    pretreated = (stratum == 0) | (stratum == 2)
    medians = params["baseline_median_months"]
    median = np.where(stratum < 2, medians["second_line"], medians["later_line"])
    hr = params["pretreated_hazard_ratio"]
    era = model["era"]["log_hazard_ratio_per_year"][phase] * draws["era_years"]
    return weibull_piecewise_time(
        e * np.exp(-(draws["lp"] + era)),
        median,
        params["weibull_shape"],
        early=np.where(pretreated, hr["early"], 1.0),
        late=np.where(pretreated, hr["late"], 1.0),
        change=hr["change_months"],
    )


def _outcomes(draws, model):
    """PFS2 and post-progression (months, uncensored) and the death-first indicator."""
    pfs2 = _phase_months(draws, model, "pfs2", draws["e_pfs2"])
    death_first = draws["u_death_first"] < model["death_without_progression_fraction"]
    post = np.where(
        death_first, 0.0, _phase_months(draws, model, "post_progression", draws["e_post"])
    )
    return pfs2, post, death_first


def _best_response(draws, model, pfs2, death_first, censored_before_assessment):
    """RECIST best response codes (index in RESPONSE_LEVELS)."""
    r = model["best_response"]
    logit = r["objective_response_logit"]
    pretreated = (draws["stratum"] == 0) | (draws["stratum"] == 2)
    u = draws["u_response"]
    p_response = expit(
        logit["intercept"]
        + logit["log_pfs2"] * np.log(pfs2 / logit["pfs2_reference_months"])
        + logit["pretreated"] * pretreated
    )
    responded = u[:, 1] < p_response
    code = np.where(responded, np.where(u[:, 2] < r["complete_response_fraction"], 0, 1), 2)
    early = pfs2 < r["first_assessment_months"]
    code = np.where(early, np.where(death_first, 4, 3), code)
    not_evaluable = (u[:, 0] < r["not_evaluable_fraction"]) | (censored_before_assessment & ~early)
    return np.where(not_evaluable & (code != 3), 4, code).astype(np.int64)


def _missing_masks(draws, model):
    """Blank-cell masks of ecog and hormone_receptor (missing at random)."""
    m = model["missingness"]
    cov = draws["covariates"]
    age_c = cov["age_at_advanced_dx"] - model["covariates"]["age_reference_years"]
    ecog_p = expit(
        m["ecog"]["intercept"]
        + m["ecog"]["age_per_year"] * age_c
        + m["ecog"]["year"] * draws["era_years"]
    )
    hr = m["hormone_receptor"]
    hr_p = expit(
        hr["intercept"] + hr["de_novo_yes"] * cov["de_novo"] + hr["year"] * draws["era_years"]
    )
    u = draws["u_missing"]
    return {"ecog": u[:, 0] < ecog_p, "hormone_receptor": u[:, 1] < hr_p}


def _simulate_days(rng, stratum, line, model):
    """The whole model on day numbers (days since 1970-01-01)."""
    draws = _draws(rng, stratum, line, model)
    pfs2, post_progression, death_first = _outcomes(draws, model)
    first_line_d = draws["first_line_d"]
    pfs2_d = _to_days(pfs2, 1)
    post_d = np.where(death_first, 0, _to_days(post_progression, 1))
    start, end_of_follow_up = draws["tdm1_start"], draws["end_of_follow_up"]
    advanced_dx = start - first_line_d
    progression = start + pfs2_d
    death = progression + post_d
    dead = death <= end_of_follow_up
    last_contact = np.minimum(death, end_of_follow_up)
    progressed = ~death_first & (progression <= last_contact)
    assessment_d = model["best_response"]["first_assessment_months"] * DAYS_PER_MONTH
    censored_early = (last_contact - start < assessment_d) & ~dead & ~progressed
    return {
        "covariates": draws["covariates"],
        "advanced_dx": advanced_dx,
        "tdm1_start": start,
        "progression": np.where(progressed, progression, -1),
        "progressed": progressed,
        "last_contact": last_contact,
        "dead": dead,
        "best_response": _best_response(draws, model, pfs2, death_first, censored_early),
        "missing": _missing_masks(draws, model),
        "true_os_months": (first_line_d + pfs2_d + post_d) / DAYS_PER_MONTH,
        "true_pfs2_months": pfs2_d / DAYS_PER_MONTH,
    }


def _yes_no(flag):
    return np.where(flag, "yes", "no")


def _covariate_columns(cov, missing) -> dict:
    hormone = np.where(cov["hormone_receptor_negative"], "negative", "positive").astype(object)
    hormone[missing["hormone_receptor"]] = ""
    ecog = cov["ecog"].astype(object)
    ecog[missing["ecog"]] = ""
    return {
        "age_at_advanced_dx": cov["age_at_advanced_dx"],
        "hormone_receptor": hormone,
        "visceral_mets": _yes_no(cov["visceral_mets"]),
        "brain_mets": _yes_no(cov["brain_mets"]),
        "de_novo": _yes_no(cov["de_novo"]),
        "n_metastatic_sites": cov["n_metastatic_sites"],
        "ecog": ecog,
        "prior_adjuvant_trastuzumab": _yes_no(cov["prior_adjuvant_trastuzumab"]),
    }


def _iso(days: np.ndarray) -> np.ndarray:
    return np.datetime_as_string(_EPOCH + days.astype("timedelta64[D]"), unit="D")


def simulate_cohort(n_patients: int = 555, seed: int = DEMO_SEED, model: dict | None = None):
    """Simulate the SePHER cohort in the date form of docs/data-dictionary.md.

    Parameters
    ----------
    n_patients : int, default 555
        Cohort size; the design's counts (177 / 194 second-line, 184
        later-line) are exact at 555 and scaled proportionally otherwise.
    seed : int, default DEMO_SEED
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
        vital_status (alive/dead)``, the covariates ``age_at_advanced_dx``
        (years), ``hormone_receptor`` (positive/negative, blank if missing),
        ``visceral_mets``, ``brain_mets``, ``de_novo``,
        ``prior_adjuvant_trastuzumab`` (yes/no), ``n_metastatic_sites``
        (1..6), ``ecog`` (0/1/2, blank if missing), and ``best_response``
        (CR/PR/SD/PD/NE).
    truth : dict
        Every true parameter and the realised checks (see
        :func:`cohort_truth`), ``"simulated": True``.
    """
    model = copy.deepcopy(model or default_cohort_model())
    cohort, counts = _cohort_frame(n_patients, seed, model)
    truth = cohort_truth(
        model,
        seed=seed,
        n_patients=n_patients,
        counts=counts,
        line=cohort["tdm1_line"].to_numpy(),
        realised=cohort_checks(cohort),
    )
    return cohort, truth


def _cohort_frame(n_patients, seed, model):
    """The date-form cohort and the stratum counts (see :func:`simulate_cohort`)."""
    if n_patients < len(STRATA):
        raise ValueError(f"n_patients must be at least {len(STRATA)}, got {n_patients}")
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
            **_covariate_columns(sim["covariates"], sim["missing"]),
            RESPONSE_COLUMN: np.asarray(RESPONSE_LEVELS)[sim["best_response"]],
        }
    )
    return cohort, counts


def simulate_cohort_large(
    n_patients: int,
    seed: int = DEMO_SEED,
    model: dict | None = None,
    missing_covariates: bool = False,
):
    """Vectorised simulation of a large cohort, in the duration form.

    Same model and proportions as :func:`simulate_cohort` (10^6 patients in a
    few seconds), but patients are in stratum order (not shuffled), ids are
    integers and dates are not formatted.

    Parameters
    ----------
    n_patients : int
        Cohort size (at least 4).
    seed : int, default DEMO_SEED
        Seed of :func:`numpy.random.default_rng`.
    model : dict, optional
        Parameters; default :func:`default_cohort_model`.
    missing_covariates : bool, default False
        Blank (NaN) ``ecog`` and ``hormone_receptor`` values as in
        :func:`simulate_cohort`; by default every covariate is complete.

    Returns
    -------
    DataFrame
        ``patient_id`` (int), ``tdm1_line``, ``first_line_pertuzumab``
        (categorical no/yes), ``os_months, os_event, pfs2_months,
        pfs2_event`` (months = days / 30.4375, events 0/1), ``entry_months``
        (advanced diagnosis to T-DM1 start: the delayed entry of OS), the
        covariates (categoricals for yes/no and hormone receptor),
        ``best_response`` (categorical, :data:`RESPONSE_LEVELS`), plus
        ``stratum`` (categorical, one of :data:`STRATA`), and the uncensored
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

    hormone_codes = cov["hormone_receptor_negative"].astype(np.int8)
    ecog = cov["ecog"]
    if missing_covariates:
        hormone_codes = np.where(sim["missing"]["hormone_receptor"], -1, hormone_codes)
        ecog = np.where(sim["missing"]["ecog"], np.nan, ecog)
    return pd.DataFrame(
        {
            "patient_id": np.arange(1, n_patients + 1),
            "tdm1_line": line,
            "first_line_pertuzumab": yes_no(cov["first_line_pertuzumab"]),
            **endpoints,
            "entry_months": (sim["tdm1_start"] - sim["advanced_dx"]) / DAYS_PER_MONTH,
            "age_at_advanced_dx": cov["age_at_advanced_dx"],
            "hormone_receptor": pd.Categorical.from_codes(hormone_codes, ["positive", "negative"]),
            "visceral_mets": yes_no(cov["visceral_mets"]),
            "brain_mets": yes_no(cov["brain_mets"]),
            "de_novo": yes_no(cov["de_novo"]),
            "n_metastatic_sites": cov["n_metastatic_sites"],
            "ecog": ecog,
            "prior_adjuvant_trastuzumab": yes_no(cov["prior_adjuvant_trastuzumab"]),
            RESPONSE_COLUMN: pd.Categorical.from_codes(sim["best_response"], list(RESPONSE_LEVELS)),
            "stratum": pd.Categorical.from_codes(stratum, list(STRATA)),
            "true_os_months": sim["true_os_months"],
            "true_pfs2_months": sim["true_pfs2_months"],
        }
    )


def _risk_table(time, event, entry=None):
    """Distinct event times, deaths and numbers at risk (on (entry, time], as R)."""
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=bool)
    times = np.unique(time[event])
    deaths = np.bincount(np.searchsorted(times, time[event]), minlength=times.size)
    sorted_time = np.sort(time)
    at_risk = time.size - np.searchsorted(sorted_time, times, side="left")
    if entry is not None:
        # entered by t: entry < t; those with entry >= t are not yet at risk
        sorted_entry = np.sort(np.asarray(entry, dtype=float))
        at_risk = at_risk - (sorted_entry.size - np.searchsorted(sorted_entry, times, side="left"))
    return times, deaths, at_risk


def km_median(time, event, entry=None) -> float:
    """Kaplan-Meier median (first time the curve is <= 0.5; NaN if never), vectorised.

    Parameters
    ----------
    time, event : array_like
        Follow-up times and event indicators (1 = event).
    entry : array_like, optional
        Delayed entry times (left truncation): a patient is at risk on
        ``(entry, time]``, as R ``Surv(entry, time, event)``.
    """
    times, deaths, at_risk = _risk_table(time, event, entry)
    with np.errstate(divide="ignore", invalid="ignore"):
        surv = np.cumprod(1.0 - deaths / at_risk)
    below = np.flatnonzero(surv <= 0.5)
    return float(times[below[0]]) if below.size else float("nan")


def logrank_z(time, event, group, entry=None) -> float:
    """Signed two-group log-rank statistic (O - E) / sqrt(V) of ``group == 1``.

    Parameters
    ----------
    time, event : array_like
        Follow-up times and event indicators.
    group : array_like of bool or 0/1
        Group indicator; positive z means more events than expected in group 1.
    entry : array_like, optional
        Delayed entry times (at risk on ``(entry, time]``); the statistic is
        then the score test of a Cox model with delayed entry (Breslow ties).

    Returns
    -------
    float
        z; the two-sided p-value is ``2 * norm.sf(abs(z))``.
    """
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=bool)
    group = np.asarray(group, dtype=bool)
    entry_all = None if entry is None else np.asarray(entry, dtype=float)
    times, d, n = _risk_table(time, event, entry_all)
    entry_1 = None if entry_all is None else entry_all[group]
    # numbers at risk in group 1 at the pooled event times
    sorted_1 = np.sort(time[group])
    n1 = sorted_1.size - np.searchsorted(sorted_1, times, side="left")
    if entry_1 is not None:
        sorted_e1 = np.sort(entry_1)
        n1 = n1 - (sorted_e1.size - np.searchsorted(sorted_e1, times, side="left"))
    d1 = np.bincount(np.searchsorted(times, time[group & event]), minlength=times.size).astype(
        float
    )
    keep = n > 0
    d, n, n1, d1 = d[keep], n[keep].astype(float), n1[keep].astype(float), d1[keep]
    expected = d * n1 / n
    with np.errstate(divide="ignore", invalid="ignore"):
        variance = np.where(n > 1, d * (n1 / n) * (1 - n1 / n) * (n - d) / (n - 1), 0.0)
    return float((d1.sum() - expected.sum()) / np.sqrt(variance.sum()))


def _p_from_z(z: float) -> float:
    return float(2.0 * norm.sf(abs(z)))


def cohort_checks(cohort: pd.DataFrame) -> dict:
    """The calibration checks of issue 14 on one cohort in the date form.

    Second-line patients, pretreated (yes) vs naive (no): Kaplan-Meier
    medians of OS (from advanced diagnosis, delayed entry at T-DM1 start) and
    PFS2 (from T-DM1 start), the delayed-entry log-rank p of OS and the
    log-rank p of PFS2; objective response and disease control rates per
    group (second line and all lines), the fraction of blank ``ecog`` and ``hormone_receptor``
    cells, and the median T-DM1 start per group.

    Parameters
    ----------
    cohort : DataFrame
        As returned by :func:`simulate_cohort`, or the CSV read with ``dtype=str,
        keep_default_na=False`` (string dates, blanks as "").

    Returns
    -------
    dict
        JSON-serialisable, rounded (months 0.01, p 2 significant digits,
        fractions 0.0001).
    """
    days = {
        c: (pd.to_datetime(cohort[c].replace("", None)) - pd.Timestamp("1970-01-01")).dt.days
        for c in (
            "advanced_dx_date",
            "tdm1_start_date",
            "tdm1_progression_date",
            "last_contact_date",
        )
    }
    endpoints = endpoints_from_days(
        days["advanced_dx_date"],
        days["tdm1_start_date"],
        days["tdm1_progression_date"].to_numpy(dtype=float),
        days["last_contact_date"],
        (cohort["vital_status"] == "dead").to_numpy(),
    )
    entry = ((days["tdm1_start_date"] - days["advanced_dx_date"]) / DAYS_PER_MONTH).to_numpy()
    group = (cohort["first_line_pertuzumab"] == "yes").to_numpy()
    second = (pd.to_numeric(cohort["tdm1_line"]) == 2).to_numpy()
    medians = {}
    for label, flag in (("yes", True), ("no", False)):
        arm = second & (group == flag)
        medians[label] = {
            "os": round(
                km_median(endpoints["os_months"][arm], endpoints["os_event"][arm], entry[arm]), 2
            ),
            "pfs2": round(
                km_median(endpoints["pfs2_months"][arm], endpoints["pfs2_event"][arm]), 2
            ),
        }
    z_os = logrank_z(
        endpoints["os_months"][second],
        endpoints["os_event"][second],
        group[second],
        entry[second],
    )
    z_pfs2 = logrank_z(
        endpoints["pfs2_months"][second], endpoints["pfs2_event"][second], group[second]
    )
    response = cohort[RESPONSE_COLUMN].to_numpy()
    rates = {"all_lines": {}, "second_line": {}}
    for scope, in_scope in (("all_lines", np.ones(len(cohort), bool)), ("second_line", second)):
        for label, flag in (("yes", True), ("no", False)):
            arm = response[in_scope & (group == flag)]
            rates[scope][label] = {
                "orr": round(float(np.isin(arm, ("CR", "PR")).mean()), 4),
                "dcr": round(float(np.isin(arm, ("CR", "PR", "SD")).mean()), 4),
            }
    start = pd.to_datetime(cohort["tdm1_start_date"])
    return {
        "second_line_median_months": medians,
        "second_line_logrank_p": {
            "os_delayed_entry": float(f"{_p_from_z(z_os):.2g}"),
            "pfs2": float(f"{_p_from_z(z_pfs2):.2g}"),
        },
        "second_line_events": {
            "os": int(endpoints["os_event"][second].sum()),
            "pfs2": int(endpoints["pfs2_event"][second].sum()),
        },
        "response_rates": rates,
        "missing_fraction": {
            c: round(float((cohort[c].astype(str) == "").mean()), 4)
            for c in ("ecog", "hormone_receptor")
        },
        "median_tdm1_start": {
            label: str(start[group == flag].quantile(0.5, interpolation="lower").date())
            for label, flag in (("yes", True), ("no", False))
        },
    }


#: Inner ranges a demo seed must meet (:func:`find_demo_seed`): tighter than issue 14's
#: (medians within 10 %, OS p in [0.0002, 0.002], PFS2 p in [0.01, 0.08]) so that an
#: analysis differing in detail (ties, delayed-entry test) still lands inside those.
DEMO_SEED_CRITERIA = {
    "median_relative_error_max": 0.05,
    "os_delayed_entry_p": [0.0003, 0.0013],
    "pfs2_p": [0.015, 0.055],
    "orr_naive": [0.30, 0.45],
    "orr_pretreated": [0.20, 0.35],
    "missing_fraction": [0.06, 0.14],
}


def demo_seed_ok(checks: dict, model: dict | None = None, criteria: dict | None = None) -> bool:
    """Whether one cohort's :func:`cohort_checks` meet :data:`DEMO_SEED_CRITERIA`.

    Medians against ``model["targets"]["median_months"]`` (second line), p-values,
    second-line objective response rates and the blank fractions of ecog and
    hormone_receptor.
    """
    model = model or default_cohort_model()
    c = criteria or DEMO_SEED_CRITERIA
    targets = model["targets"]["median_months"]
    medians = checks["second_line_median_months"]
    ok = True
    for label, stratum in (("yes", "second_line_pretreated"), ("no", "second_line_naive")):
        for endpoint in ("os", "pfs2"):
            error = abs(medians[label][endpoint] / targets[stratum][endpoint] - 1.0)
            ok &= bool(error <= c["median_relative_error_max"])
    p = checks["second_line_logrank_p"]
    rates = checks["response_rates"]["second_line"]
    inside = (
        (p["os_delayed_entry"], c["os_delayed_entry_p"]),
        (p["pfs2"], c["pfs2_p"]),
        (rates["no"]["orr"], c["orr_naive"]),
        (rates["yes"]["orr"], c["orr_pretreated"]),
        *((v, c["missing_fraction"]) for v in checks["missing_fraction"].values()),
    )
    return ok and all(lo <= value <= hi for value, (lo, hi) in inside)


def find_demo_seed(start: int = 20201, model: dict | None = None, max_tries: int = 10_000) -> int:
    """The first seed from `start` whose 555-patient cohort meets :data:`DEMO_SEED_CRITERIA`.

    One cohort's medians and p-values are noisy (sd of a log-rank z about 1),
    so the demo keeps a seed that lands inside the target ranges; this is how
    :data:`DEMO_SEED` was chosen (about 8 ms per seed).

    Raises
    ------
    RuntimeError
        No seed in ``[start, start + max_tries)`` does.
    """
    model = model or default_cohort_model()
    for seed in range(start, start + max_tries):
        cohort, _ = _cohort_frame(model["design"]["n_patients"], seed, model)
        if demo_seed_ok(cohort_checks(cohort), model):
            return seed
    raise RuntimeError(f"no seed in [{start}, {start + max_tries}) meets DEMO_SEED_CRITERIA")


def _large_sample(model, code, n, seed):
    """Draws of one stratum for the large-sample functions (common random numbers)."""
    rng = np.random.default_rng([seed, code])
    stratum = np.full(n, code)
    if code >= 2:
        lines = _scaled_counts(model["design"]["later_line_counts"], n)
        line = np.repeat([int(k) for k in lines], list(lines.values()))
    else:
        line = np.full(n, 2)
    return _draws(rng, stratum, line, model)


def _endpoints_months(draws, model):
    """Observed OS (with entry) and PFS2 in months, continuous time, plus true medians."""
    pfs2, post, _ = _outcomes(draws, model)
    follow_up = draws["follow_up_months"]
    entry = draws["first_line_months"]
    death = pfs2 + post
    return {
        "entry": entry,
        "os": entry + np.minimum(death, follow_up),
        "os_event": death <= follow_up,
        "pfs2": np.minimum(pfs2, follow_up),
        "pfs2_event": pfs2 <= follow_up,
        "true_os": entry + death,
        "true_pfs2": pfs2,
    }


def _medians(ends):
    return {
        "os": float(np.median(ends["true_os"])),
        "pfs2": float(np.median(ends["true_pfs2"])),
        "os_km": km_median(ends["os"], ends["os_event"], ends["entry"]),
        "os_km_without_entry": km_median(ends["os"], ends["os_event"]),
        "pfs2_km": km_median(ends["pfs2"], ends["pfs2_event"]),
    }


def model_medians(model: dict | None = None, n_per_stratum: int = 200_000, seed: int = 0):
    """True and expected Kaplan-Meier median OS and PFS2 per stratum, months.

    ``os`` and ``pfs2`` are the medians of the uncensored times (OS from
    advanced diagnosis: the marginal median of patients who reached T-DM1);
    ``os_km`` and ``pfs2_km`` the Kaplan-Meier medians under the model's
    censoring, OS with delayed entry at T-DM1 start (large-sample limit of
    what the workflow's default analysis estimates); ``os_km_without_entry``
    the Kaplan-Meier median of OS ignoring the delayed entry. Monte Carlo with
    `n_per_stratum` patients, deterministic given `seed`.

    Returns
    -------
    dict
        stratum -> {"os", "pfs2", "os_km", "os_km_without_entry", "pfs2_km"},
        rounded to 0.01 month.
    """
    model = model or default_cohort_model()
    medians = {}
    for code, name in enumerate(STRATA):
        ends = _endpoints_months(_large_sample(model, code, n_per_stratum, seed), model)
        medians[name] = {k: round(v, 2) for k, v in _medians(ends).items()}
    return medians


def _design_z(model, yes, no, n_design):
    """Expected second-line log-rank z (OS delayed entry, PFS2) scaled to the design size."""
    a, b = _endpoints_months(yes, model), _endpoints_months(no, model)
    group = np.r_[np.ones(a["os"].size, bool), np.zeros(b["os"].size, bool)]
    scale = np.sqrt(n_design / group.size)
    z_os = logrank_z(
        np.r_[a["os"], b["os"]],
        np.r_[a["os_event"], b["os_event"]],
        group,
        np.r_[a["entry"], b["entry"]],
    )
    z_pfs2 = logrank_z(np.r_[a["pfs2"], b["pfs2"]], np.r_[a["pfs2_event"], b["pfs2_event"]], group)
    return {"os": z_os * scale, "pfs2": z_pfs2 * scale}


def _second_line_samples(model, n_per_stratum, seed):
    counts = model["design"]["counts"]
    n_yes = round(n_per_stratum * counts["second_line_pretreated"] / counts["second_line_naive"])
    return _large_sample(model, 0, n_yes, seed), _large_sample(model, 1, n_per_stratum, seed)


def model_evidence(model: dict | None = None, n_per_stratum: int = 200_000, seed: int = 0):
    """Expected second-line log-rank statistics and response rates at the design size.

    The log-rank statistic of a large sample (pretreated : naive in the
    design's ratio) divided by sqrt(n / 371) is the expected z of one cohort
    of the design; its p-value is the median p over cohorts (sampling sd of
    z about 1).

    Returns
    -------
    dict
        ``logrank_z`` and ``logrank_p`` ({"os", "pfs2"}; OS with delayed
        entry), and ``orr`` ({"yes", "no"}: expected objective response rate,
        second line).
    """
    model = model or default_cohort_model()
    counts = model["design"]["counts"]
    n_design = counts["second_line_pretreated"] + counts["second_line_naive"]
    yes, no = _second_line_samples(model, n_per_stratum, seed)
    z = _design_z(model, yes, no, n_design)
    orr = {}
    for label, draws in (("yes", yes), ("no", no)):
        pfs2, _, death_first = _outcomes(draws, model)
        censored = draws["follow_up_months"] < model["best_response"]["first_assessment_months"]
        code = _best_response(
            draws, model, pfs2, death_first, censored & (pfs2 > draws["follow_up_months"])
        )
        orr[label] = round(float((code <= 1).mean()), 4)
    return {
        "logrank_z": {k: round(v, 3) for k, v in z.items()},
        "logrank_p": {k: float(f"{_p_from_z(v):.2g}") for k, v in z.items()},
        "orr": orr,
    }


#: Search interval of the late pretreated hazard ratios in :func:`calibrate_cohort_model`.
_LATE_HAZARD_RATIO_BRACKET = (0.5, 4.0)


def _solve(gap, lo, hi):
    """Root of a monotone step function (a Kaplan-Meier median or z), 5 significant digits."""
    return float(f"{brentq(gap, lo, hi, xtol=1e-6):.5g}")


def _median_gap(model, draws, endpoint, target):
    ends = _endpoints_months(draws, model)
    entry = ends["entry"] if endpoint == "os" else None
    value = km_median(ends[endpoint], ends[f"{endpoint}_event"], entry)
    # a curve that never reaches 0.5 has its median beyond any target
    return np.nan_to_num(value, nan=1e6) - target


def calibrate_cohort_model(model: dict | None = None, n_per_stratum: int = 200_000, seed: int = 0):
    """Tune the model so the expected medians and log-rank p-values hit the targets.

    Large-sample root finding with common random numbers (the draws are
    fixed; only the PFS2 and post-progression parameters move), in order:

    1. naive strata with a median target: the PFS2 baseline median of their
       line so that the Kaplan-Meier median of PFS2 equals the target, then
       the post-progression baseline median for OS (Kaplan-Meier with
       delayed entry);
    2. second-line pretreated, PFS2: for a given late hazard ratio the early
       one is solved for the PFS2 median target; the late one is solved so
       that the expected log-rank z at the design size (:func:`model_evidence`)
       gives the target p;
    3. the same for post-progression and OS (delayed-entry log-rank).

    Shapes, change times, first-line medians, covariate and era effects and
    censoring are kept. The later-line pretreated stratum shares the
    pretreated hazard ratios (no target of its own).

    Returns
    -------
    dict
        A calibrated copy of `model`, tuned values rounded to 5 significant
        digits.
    """
    model = copy.deepcopy(model or default_cohort_model())
    targets = model["targets"]["median_months"]
    for name, line_key in (
        ("second_line_naive", "second_line"),
        ("later_line_naive", "later_line"),
    ):
        draws = _large_sample(model, STRATA.index(name), n_per_stratum, seed)
        for phase, endpoint in (("pfs2", "pfs2"), ("post_progression", "os")):
            medians = model[phase]["baseline_median_months"]

            def gap(
                m,
                medians=medians,
                line_key=line_key,
                draws=draws,
                endpoint=endpoint,
                t=targets[name][endpoint],
            ):
                medians[line_key] = m
                return _median_gap(model, draws, endpoint, t)

            medians[line_key] = _solve(gap, 0.05, 2000.0)
    counts = model["design"]["counts"]
    n_design = counts["second_line_pretreated"] + counts["second_line_naive"]
    yes, no = _second_line_samples(model, n_per_stratum, seed)
    p_targets = model["targets"]["logrank_p"]
    for phase, endpoint in (("pfs2", "pfs2"), ("post_progression", "os")):
        hr = model[phase]["pretreated_hazard_ratio"]
        target_median = targets["second_line_pretreated"][endpoint]
        # the pretreated group has the worse median: z > 0
        target_z = float(norm.isf(p_targets[endpoint] / 2.0))

        def solve_early(late, hr=hr, endpoint=endpoint, target_median=target_median):
            hr["late"] = late

            def gap(early):
                hr["early"] = early
                return _median_gap(model, yes, endpoint, target_median)

            # a late ratio so high that the median is below target even with the
            # smallest early ratio: keep that one (its z is above any sensible target)
            hr["early"] = _solve(gap, 0.05, 50.0) if gap(0.05) > 0 else 0.05
            return hr["early"]

        def z_gap(late, endpoint=endpoint, target_z=target_z):
            solve_early(late)
            return _design_z(model, yes, no, n_design)[endpoint] - target_z

        late = _solve(z_gap, *_LATE_HAZARD_RATIO_BRACKET)
        solve_early(late)
    return model


def cohort_truth(
    model: dict, *, seed: int, n_patients: int, counts: dict, line, realised: dict | None = None
) -> dict:
    """The truth record written next to the simulated cohort.

    Returns
    -------
    dict
        ``simulated`` (True), the generator, seed, counts, the full model,
        a description of each mechanism, the hazard ratios per covariate,
        the model's true and expected Kaplan-Meier medians per stratum
        (:func:`model_medians`), the expected second-line evidence
        (:func:`model_evidence`) and, if given, the checks realised in this
        cohort (:func:`cohort_checks`).
    """
    log_hr = model["log_hazard_ratios"]
    lines, line_n = np.unique(np.asarray(line), return_counts=True)
    pfs2_hr = model["pfs2"]["pretreated_hazard_ratio"]
    post_hr = model["post_progression"]["pretreated_hazard_ratio"]
    era = model["era"]["log_hazard_ratio_per_year"]
    truth = {
        "simulated": True,
        "generator": "sepher.simulate.cohort.simulate_cohort",
        "seed": int(seed),
        "n_patients": int(n_patients),
        "counts": {
            "by_stratum": {s: int(counts[s]) for s in STRATA},
            "by_tdm1_line": {str(int(a)): int(b) for a, b in zip(lines, line_n, strict=True)},
        },
        "model": model,
        "mechanisms": {
            "non_proportional_hazards": (
                "The pretreated (yes) vs naive (no) hazard ratio is piecewise constant in the "
                f"time since the phase start: PFS2 {pfs2_hr['early']} before "
                f"{pfs2_hr['change_months']} months and {pfs2_hr['late']} after; "
                f"post-progression {post_hr['early']} before {post_hr['change_months']} months "
                f"and {post_hr['late']} after. The same ratios apply in the later-line strata. "
                "Covariates and era act proportionally on every phase; OS (first line + PFS2 + "
                "post-progression) is proportional in nothing."
            ),
            "era": (
                "T-DM1 start is uniform in each stratum's calendar window (pretreated patients "
                "start from 2014, naive from mid 2012); the hazard of PFS2 and of "
                "post-progression death is multiplied by exp(b * (year of T-DM1 start - "
                f"{model['era']['reference_year']})), HR per year {np.exp(era['pfs2']):.3g} and "
                f"{np.exp(era['post_progression']):.3g}. Era confounds the group effect."
            ),
            "delayed_entry": (
                "Advanced diagnosis = T-DM1 start - first-line duration (all prior lines for "
                "later-line patients); patients are in the cohort only by reaching T-DM1, so OS "
                "from advanced diagnosis is left-truncated at entry = first-line duration."
            ),
            "covariate_correlation": (
                "ECOG ordinal-logistic in age; visceral mets logistic in hormone receptor and "
                "de novo; brain mets more frequent if hormone receptor negative; number of "
                "sites Poisson in visceral and brain mets; no prior adjuvant trastuzumab if de "
                "novo. Group differences: age, hormone receptor, de novo and adjuvant "
                "trastuzumab fractions (covariates.*.pretreated / naive)."
            ),
            "missingness": model["missingness"]["mechanism"],
            "best_response": (
                "NE if death or loss before the first assessment or at random "
                "(not_evaluable_fraction); PD if progression before the first assessment; "
                "else CR/PR with logistic probability in log PFS2 and the group, else SD."
            ),
        },
        "hazard_ratios": {term: round(float(np.exp(b)), 6) for term, b in log_hr.items()},
        "medians_months": model_medians(model),
        "expected_evidence": model_evidence(model),
        "endpoints": {
            "os": (
                "advanced_dx_date to last_contact_date; event: vital_status dead; delayed "
                "entry at tdm1_start_date"
            ),
            "pfs2": (
                "tdm1_start_date to tdm1_progression_date (event), else to "
                "last_contact_date (event if dead)"
            ),
            "months": f"days / {DAYS_PER_MONTH}",
        },
        "notes": (
            "medians_months: os / pfs2 are medians of the uncensored times, os_km (delayed "
            "entry) / pfs2_km the large-sample Kaplan-Meier medians under the censoring of the "
            "design (the calibration targets are on the latter); os_km_without_entry ignores the "
            "delayed entry. expected_evidence: the expected log-rank z at the design size and "
            "its p (the median p over cohorts). realised: the same checks in this cohort."
        ),
    }
    if realised is not None:
        truth["realised"] = realised
    return truth


def write_demo_cohort(out_csv, truth_json, seed: int = DEMO_SEED) -> None:
    """Write the demo cohort CSV and its truth JSON (byte-identical on every call).

    Parameters
    ----------
    out_csv, truth_json : path
        Output files (parent folders created). CSV: LF line endings, no
        index, integers, ISO dates and blank cells for missing values only.
        JSON: sorted keys, indent 2, trailing newline.
    seed : int, default DEMO_SEED
        Seed of the simulation.
    """
    cohort, truth = simulate_cohort(seed=seed)
    out_csv, truth_json = Path(out_csv), Path(truth_json)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    truth_json.parent.mkdir(parents=True, exist_ok=True)
    text = cohort.to_csv(index=False, lineterminator="\n", float_format="%.10g")
    out_csv.write_bytes(text.encode("utf-8"))
    truth_json.write_bytes((json.dumps(truth, indent=2, sort_keys=True) + "\n").encode("utf-8"))
