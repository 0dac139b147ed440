"""Simulated plate-reader viability readouts for the SePHER dose-response stage.

The original plate data are not public. This module simulates the study's in
vitro design (Bon, Pizzuti et al. 2020): two HER2+ breast cancer lines
(SKBR3, BT474), each parental, resistant to trastuzumab (``T-R``) or to
trastuzumab + pertuzumab (``TP-R``), treated with T-DM1 (and with trastuzumab
or pertuzumab alone); plus T-R cells after sequential exposure to trastuzumab
(``T-R>T``), pertuzumab (``T-R>P``) or both (``T-R>T+P``). T-DM1 is less
active in TP-R than in T-R cells (relative IC50 5-6x higher), and its IC50
rises with pertuzumab exposure.

The generating model is deliberately *not* the analysis's model (one LL.4
curve per plate, biological replicates differing at most by a shift): data
drawn from the analysis's own model flatter it (issue 15).

Curve shape (true viability relative to the vehicle wells): a two-population
mixture, a fraction ``w`` of the cells (``curve_shape.fraction_sensitive``)
sensitive and the rest ``fold`` times less sensitive
(``curve_shape.fold_less_sensitive``), both log-logistic with slope ``b``::

    v(x) = c + (d - c) S(x),
    S(x) = w / (1 + (x / e_s) ** b) + (1 - w) / (1 + (x / (fold e_s)) ** b).

It is not LL.4: its lower half is shallower than its upper half. The
relative IC50 (ED50) is the dose at ``S = 1/2``, midway between the
asymptotes ``d`` (no drug) and ``c`` (infinite dose); ``e_s`` is solved from
it (:func:`mixture_viability`). The absolute IC50 is the dose at ``v = 0.5``.

Biological replicates (days): replicate ``r`` of every condition of a line
is assayed on the same day (same replicate id, so an analysis can pair), and
for each curve (line, condition, drug)::

    log ED50[r] = log ED50_pop + u[line, r] + g[line, condition, drug, r],

with a day effect ``u ~ N(0, s_day)`` shared by every curve of the line on
that day (``noise.day_ed50_cv``, 20 %) and a condition-by-day interaction
``g ~ N(0, s_cd)`` (``noise.condition_day_ed50_cv``, 8 %), ``s = sqrt(log(1 +
cv^2))``. The population ED50 ``ED50_pop`` is the geometric mean over days
(``exp E[log ED50]``); IC50 ratios between conditions therefore vary from
replicate to replicate around the population ratio. Each curve of each
replicate is on its own plate and has its own shape: ``b`` log-normal
around the condition's slope (``noise.slope_cv``, 15 %), ``d ~ U(0.95,
1.05)`` (``noise.upper_asymptote_range``: treated wells at the lowest doses
differ from the vehicle wells by a few percent, e.g. a solvent effect) and
``c = d * clip(c_pop + U(-0.03, 0.03), 0, 0.99)``.

Readout (one well; CellTiter-Glo-like luminescence, RLU)::

    cells  = time0_signal_rlu * 2 ** (time_h / doubling_time_h) * plate_scale
             * v * seeding * LN(multiplicative_cv)
    signal = edge * (background_rlu + cells) + N(0, additive_sd_rlu),

rounded to whole RLU and clipped at 0. ``plate_scale`` is log-normal per plate
(``plate_scale_cv``); ``edge = 1 - L`` on the outer ring and ``1 - L *
second_ring_loss_ratio`` on the ring inside it (evaporation), ``L ~
U(edge_loss_range)`` per plate, 5-15 %. Blank wells (medium, no cells) have
no cell signal. Kill-control wells (``role = kill``: a lethal reference, e.g.
a detergent or staurosporine, ``drug = none``) keep a small residual
viability, ``U(kill_residual_range)`` per plate (1-3 %). ``seeding`` is 1
except on a failing plate. Outlier wells (``outliers``: pipetting errors)
have their cell signal multiplied by a factor.

Failing plates (``failing_plates``, one per line, never on T-R, the
denominator of every comparison): a cell-dispensing failure (partially
clogged dispenser channel) gives every cell-containing well of the plate a
seeding factor ``seeding_density * LN(well_cv)``; the vehicle CV is about
30 %, so the plate fails ``Z' >= 0.5`` (vehicle vs kill), ``vehicle CV <= 20 %``
and a signal window ``>= 2`` (the truth records the realised values). Every
other treated plate passes them (checked for the demo seed).

Plate design: one cell population (cell line x condition x biological
replicate) per treated plate, so the workflow's per-plate normalisation
``(signal - blank mean) / (vehicle mean - blank mean)`` is unambiguous; its
vehicle wells (``drug = "none"``, concentration 0) are the dose-0
observations of every drug on the plate. Time-zero wells (``role = time0``,
``time_h = 0``) for every condition of a line and replicate are read on one
separate plate (with its own blank wells) at treatment start, for GR metrics
(Hafner et al. 2016 Nat Methods 13:521). Treated plates are read at
``time_h = 72``. Well positions are randomised per plate (seeded), as a
randomising dispenser lays them out. SKBR3 is on 96-well plates (every well
used), BT474 on 384-well plates.

Non-treated wells: ``drug = "none"``, ``concentration = 0``,
``concentration_unit = "none"``; blank and kill wells of a treated plate
carry the plate's condition, blank wells of a time-zero plate the condition
``none``.

Units: T-DM1 in ng/mL, trastuzumab and pertuzumab in ug/mL (ASCII for µg/mL).

:func:`write_demo_plates` writes the demo CSV and its truth JSON
byte-identically; :func:`simulate_plates_large` is a vectorised screen-scale
version for benchmarks (LL.4 curves, no replicates: see its docstring).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import brentq

from sepher.io.plates import OPTIONAL_COLUMNS as OPTIONAL_PLATES_COLUMNS
from sepher.io.plates import PLATES_COLUMNS as REQUIRED_PLATES_COLUMNS

#: Column order of the ``plates`` table (docs/data-dictionary.md): required, then ``time_h``.
PLATES_COLUMNS = REQUIRED_PLATES_COLUMNS + OPTIONAL_PLATES_COLUMNS

#: Roles of a well (``kill``: kill control, the lethal reference of Z').
ROLES = ("treated", "vehicle", "blank", "time0", "kill")

#: Plate formats: number of wells -> (rows, columns).
PLATE_FORMATS = {96: (8, 12), 384: (16, 24)}

#: ``drug`` and ``concentration_unit`` of vehicle, blank, kill and time0 wells.
NO_DRUG = "none"

#: Short condition codes used in plate identifiers.
CONDITION_CODES = {
    "parental": "PAR",
    "T-R": "TR",
    "TP-R": "TPR",
    "T-R>T": "TR-T",
    "T-R>P": "TR-P",
    "T-R>T+P": "TR-TP",
}

#: T-DM1 IC50 ratios (numerator, denominator) recorded in the truth: the comparisons of
#: config/config.yaml ``doseresponse.comparisons`` (every condition vs T-R), then the
#: sequential conditions against each other.
TRUTH_COMPARISONS = (
    ("TP-R", "T-R"),
    ("T-R>T", "T-R"),
    ("T-R>P", "T-R"),
    ("T-R>T+P", "T-R"),
    ("T-R>P", "T-R>T"),
    ("T-R>T+P", "T-R>T"),
    ("T-R>T+P", "T-R>P"),
)

#: Significant digits of every float in the truth JSON (byte-stable output).
_TRUTH_DIGITS = 6


def well_names(plate_format: int) -> list[str]:
    """Well names of a plate in row-major order (A01, A02, ..., H12 for 96 wells).

    Parameters
    ----------
    plate_format : {96, 384}
        Number of wells.

    Returns
    -------
    list of str
        Row letter and two-digit column, e.g. ``"P24"``.
    """
    rows, cols = _format(plate_format)
    return [f"{chr(65 + r)}{c + 1:02d}" for r in range(rows) for c in range(cols)]


def edge_wells(plate_format: int) -> np.ndarray:
    """Boolean mask of the outer ring of wells, row-major (see :func:`well_names`)."""
    rows, cols = _format(plate_format)
    r, c = np.divmod(np.arange(rows * cols), cols)
    return (r == 0) | (r == rows - 1) | (c == 0) | (c == cols - 1)


def _format(plate_format: int) -> tuple[int, int]:
    if plate_format not in PLATE_FORMATS:
        raise ValueError(f"plate_format must be one of {sorted(PLATE_FORMATS)}, not {plate_format}")
    return PLATE_FORMATS[plate_format]


def half_log_doses(lowest: float, n_doses: int) -> np.ndarray:
    """Half-log dilution series ``lowest * 10 ** (k / 2)``, k = 0..n-1, to 4 significant digits.

    The rounded values are the doses used, so the CSV text and the model agree.
    """
    exact = lowest * 10.0 ** (np.arange(n_doses) / 2.0)
    return np.array([float(f"{x:.4g}") for x in exact])


def ll4_viability(dose, b: float, c: float, d: float, e: float) -> np.ndarray:
    """LL.4 response in R drc's convention: ``c + (d - c) / (1 + exp(b (log x - log e)))``.

    Parameters
    ----------
    dose : array_like
        Concentration (>= 0; 0 gives ``d`` for ``b > 0``), unit of ``e``.
    b, c, d, e : float
        Slope (> 0 falls with dose), lower and upper asymptotes (viability,
        fraction of vehicle), inflection dose (relative IC50).
    """
    x = np.asarray(dose, dtype=float)
    with np.errstate(divide="ignore", over="ignore"):
        return c + (d - c) / (1.0 + np.exp(b * (np.log(x) - np.log(e))))


def absolute_ic50(b: float, c: float, d: float, e: float, level: float = 0.5) -> float:
    """Dose at which the LL.4 curve crosses ``level`` (absolute IC50), NaN if never.

    Returns
    -------
    float
        ``e * ((d - level) / (level - c)) ** (1 / b)`` when ``level`` lies
        strictly between the asymptotes, otherwise NaN (never reached at any dose).
    """
    if not (min(c, d) < level < max(c, d)):
        return float("nan")
    return float(e * ((d - level) / (level - c)) ** (1.0 / b))


def gr_value(viability, doublings: float) -> np.ndarray:
    """Growth-rate inhibition GR (Hafner et al. 2016) from relative viability.

    ``GR = 2 ** (1 + log2(v) / k) - 1`` with ``v`` the cell count relative to
    vehicle at the end of the assay and ``k`` the number of vehicle doublings
    during it (``log2(x_ctrl / x0)``).
    """
    v = np.asarray(viability, dtype=float)
    with np.errstate(divide="ignore"):
        return 2.0 ** (1.0 + np.log2(v) / doublings) - 1.0


def edge_ring(plate_format: int) -> np.ndarray:
    """Ring of each well, row-major: 0 the outer ring, 1 the ring inside it, and so on."""
    rows, cols = _format(plate_format)
    r, c = np.divmod(np.arange(rows * cols), cols)
    return np.minimum.reduce([r, rows - 1 - r, c, cols - 1 - c])


def _mixture_s(x, b: float, w: float, fold: float, e_s: float) -> np.ndarray:
    """Surviving fraction ``S(x)`` of the two-population mixture (module docstring)."""
    with np.errstate(divide="ignore", over="ignore"):
        lx = np.log(np.asarray(x, dtype=float))
        return w / (1.0 + np.exp(b * (lx - np.log(e_s)))) + (1.0 - w) / (
            1.0 + np.exp(b * (lx - np.log(fold * e_s)))
        )


def mixture_sensitive_e(ed50: float, b: float, fraction_sensitive: float, fold: float) -> float:
    """Inflection dose ``e_s`` of the sensitive cells that puts the mixture's midpoint at `ed50`.

    Solves ``S(ed50) = 1/2`` (module docstring) for ``e_s`` by Brent's method
    (:func:`scipy.optimize.brentq`); the root lies between ``ed50 / fold`` and
    ``ed50``. ``fraction_sensitive = 1`` or ``fold = 1`` give ``e_s = ed50`` (LL.4).
    """
    if fraction_sensitive >= 1.0 or fold == 1.0:
        return float(ed50)

    def gap(log_e):
        return float(_mixture_s(ed50, b, fraction_sensitive, fold, np.exp(log_e))) - 0.5

    lo, hi = np.log(ed50 / fold) - 1e-9, np.log(ed50) + 1e-9
    return float(np.exp(brentq(gap, lo, hi, xtol=1e-14, rtol=1e-13)))


def mixture_viability(
    dose, b: float, c: float, d: float, ed50: float, fraction_sensitive: float, fold: float
) -> np.ndarray:
    """True viability of the two-population mixture, ``c + (d - c) S(x)`` (module docstring).

    Parameters
    ----------
    dose : array_like
        Concentration (>= 0; 0 gives ``d``), unit of `ed50`.
    b : float
        Log-logistic slope of both populations (> 0 falls with dose).
    c, d : float
        Lower (infinite dose) and upper (no drug) asymptotes, fraction of vehicle.
    ed50 : float
        Relative IC50: the dose midway between the asymptotes (``S = 1/2``).
    fraction_sensitive, fold : float
        Fraction ``w`` of sensitive cells; the others are `fold` times less sensitive.
    """
    e_s = mixture_sensitive_e(ed50, b, fraction_sensitive, fold)
    return c + (d - c) * _mixture_s(dose, b, fraction_sensitive, fold, e_s)


def mixture_dose_at(
    level: float, b: float, c: float, d: float, ed50: float, fraction_sensitive: float, fold: float
) -> float:
    """Dose at which the mixture's viability equals `level`; NaN if never (outside ``(c, d)``).

    ``level = 0.5`` gives the absolute IC50, ``(c + d) / 2`` the relative one
    (`ed50`). Brent's method on log dose; relative tolerance 1e-12.
    """
    if not (min(c, d) < level < max(c, d)):
        return float("nan")
    target = (level - c) / (d - c)
    e_s = mixture_sensitive_e(ed50, b, fraction_sensitive, fold)

    def gap(log_x):
        return float(_mixture_s(np.exp(log_x), b, fraction_sensitive, fold, e_s)) - target

    span = 60.0 / b
    lo, hi = np.log(e_s) - span, np.log(fold * e_s) + span
    return float(np.exp(brentq(gap, lo, hi, xtol=1e-14, rtol=1e-13)))


def control_statistics(vehicle, kill) -> dict:
    """Vehicle CV, Z'-factor and signal window of one plate's controls (RLU).

    ``Z' = 1 - 3 (sd_v + sd_k) / |mean_v - mean_k|`` (Zhang et al. 1999) and
    the signal window ``SW = (|mean_v - mean_k| - 3 (sd_v + sd_k)) / sd_v``
    (Iversen et al. 2006, Assay Guidance Manual; acceptable when >= 2), vehicle
    against the kill-control wells; sample SDs (ddof = 1). Recorded in the truth
    so that the failing plates' reasons are numbers, not claims.
    """
    v = np.asarray(vehicle, dtype=float)
    k = np.asarray(kill, dtype=float)
    sd_v, sd_k = v.std(ddof=1), k.std(ddof=1)
    gap = abs(v.mean() - k.mean())
    return {
        "vehicle_cv_percent": float(100.0 * sd_v / v.mean()),
        "z_prime": float(1.0 - 3.0 * (sd_v + sd_k) / gap),
        "signal_window": float((gap - 3.0 * (sd_v + sd_k)) / sd_v),
    }


def _curve(b, c, e):
    return {"b": b, "c": c, "d": 1.0, "e": e}


def default_plates_design() -> dict:
    """The true design and parameters of the simulated SePHER plates (a fresh copy).

    Returns
    -------
    dict
        JSON-serialisable. Per curve the population parameters: ``e`` the
        population relative IC50 (ED50, geometric mean over days) in the
        drug's unit (T-DM1 ng/mL, antibodies ug/mL), ``b`` the slope, ``c`` the
        lower asymptote, ``d = 1``; viability on the 0..1 scale; signals in RLU;
        times in hours. ``curve_shape``: the two-population mixture; ``noise``:
        day effects, per-plate curve variation, readout noise, edge effect, kill
        control; ``outliers`` and ``failing_plates``: see the module docstring.
        T-DM1 IC50s are in the range reported for HER2+ lines (ng/mL);
        trastuzumab and pertuzumab alone inhibit parental cells partially and
        resistant cells little.
    """
    antibody_curves = {
        "SKBR3": {
            "parental": {
                "trastuzumab": _curve(1.2, 0.60, 0.3),
                "pertuzumab": _curve(1.0, 0.80, 1.0),
            },
            "T-R": {"trastuzumab": _curve(1.0, 0.88, 1.0), "pertuzumab": _curve(1.0, 0.90, 1.0)},
            "TP-R": {"trastuzumab": _curve(1.0, 0.93, 1.0), "pertuzumab": _curve(1.0, 0.97, 1.0)},
        },
        "BT474": {
            "parental": {
                "trastuzumab": _curve(1.0, 0.35, 0.2),
                "pertuzumab": _curve(1.0, 0.75, 1.0),
            },
            "T-R": {"trastuzumab": _curve(1.0, 0.85, 1.0), "pertuzumab": _curve(1.0, 0.90, 1.0)},
            "TP-R": {"trastuzumab": _curve(1.0, 0.92, 1.0), "pertuzumab": _curve(1.0, 0.96, 1.0)},
        },
    }
    tdm1 = {
        "SKBR3": {
            "parental": (_curve(1.3, 0.06, 8.0), 48.0),
            "T-R": (_curve(1.2, 0.08, 15.0), 44.0),
            "TP-R": (_curve(1.0, 0.15, 90.0), 42.0),
            "T-R>T": (_curve(1.2, 0.08, 18.0), 44.0),
            "T-R>P": (_curve(1.1, 0.12, 45.0), 44.0),
            "T-R>T+P": (_curve(1.0, 0.15, 80.0), 44.0),
        },
        "BT474": {
            "parental": (_curve(1.1, 0.10, 20.0), 66.0),
            "T-R": (_curve(1.0, 0.12, 35.0), 60.0),
            "TP-R": (_curve(0.9, 0.25, 175.0), 56.0),
            "T-R>T": (_curve(1.0, 0.12, 40.0), 60.0),
            "T-R>P": (_curve(1.0, 0.18, 95.0), 60.0),
            "T-R>T+P": (_curve(0.9, 0.22, 160.0), 60.0),
        },
    }
    plate_settings = {
        "SKBR3": {
            "plate_format": 96,
            "time0_signal_rlu": 12000.0,
            "background_rlu": 400.0,
            "additive_sd_rlu": 60.0,
            # 84 treated wells on the parental, T-R and TP-R plates: all 96 wells used
            "vehicle_wells": 6,
            "blank_wells": 3,
            "kill_wells": 3,
            "time0_wells": 6,
            "time0_blank_wells": 6,
        },
        "BT474": {
            "plate_format": 384,
            "time0_signal_rlu": 5000.0,
            "background_rlu": 200.0,
            "additive_sd_rlu": 40.0,
            "vehicle_wells": 12,
            "blank_wells": 8,
            "kill_wells": 4,
            "time0_wells": 8,
            "time0_blank_wells": 8,
        },
    }
    cell_lines = {}
    for line, settings in plate_settings.items():
        conditions = {}
        for condition, (curve, doubling) in tdm1[line].items():
            curves = {"T-DM1": curve, **antibody_curves[line].get(condition, {})}
            conditions[condition] = {"doubling_time_h": doubling, "curves": curves}
        cell_lines[line] = {**settings, "conditions": conditions}
    consequence = (
        "; vehicle CV about {cv:.0%}, so Z' (vehicle vs kill) < 0.5, vehicle CV > 20 % and "
        "signal window < 2"
    )
    failing = [
        ("SKBR3", "T-R>P", 2, 0.35, 1.0,
         "cell-dispensing failure: a partially clogged dispenser channel seeded the wells "
         "unevenly (per-well cell number CV {cv:.0%})"),
        ("BT474", "T-R>P", 2, 0.30, 0.4,
         "cell-dispensing failure: a wrongly diluted, settling cell suspension seeded "
         "{density:.0%} of the nominal cells, unevenly (per-well cell number CV {cv:.0%}), "
         "narrowing the signal window"),
    ]  # fmt: skip
    return copy.deepcopy(
        {
            "time_h": 72,
            "biological_replicates": 3,
            "technical_replicates": 3,
            "doses": {
                "T-DM1": {"unit": "ng/mL", "lowest": 0.1, "n_doses": 10},
                "trastuzumab": {"unit": "ug/mL", "lowest": 0.01, "n_doses": 9},
                "pertuzumab": {"unit": "ug/mL", "lowest": 0.01, "n_doses": 9},
            },
            "cell_lines": cell_lines,
            # two-population mixture (module docstring), not LL.4
            "curve_shape": {
                "model": "two-population log-logistic mixture",
                "fraction_sensitive": 0.75,
                "fold_less_sensitive": 8.0,
            },
            "noise": {
                # biological replicate (day) effects on ED50 (log-normal CVs)
                "day_ed50_cv": 0.20,
                "condition_day_ed50_cv": 0.08,
                # per plate (= per curve and replicate) curve shape
                "slope_cv": 0.15,
                "lower_asymptote_jitter": 0.03,
                "upper_asymptote_range": [0.95, 1.05],
                # readout
                "multiplicative_cv": 0.06,
                "plate_scale_cv": 0.05,
                "edge_loss_range": [0.05, 0.15],
                "second_ring_loss_ratio": 0.3,
                "kill_residual_range": [0.01, 0.03],
            },
            # Pipetting errors: far fewer cells in one well of a low dose (a missed
            # dispense), about twice the cells in another (a double dispense).
            "outliers": [
                {
                    "cell_line": "SKBR3",
                    "condition": "TP-R",
                    "drug": "T-DM1",
                    "replicate": 2,
                    "dose_index": 4,
                    "technical_replicate": 2,
                    "factor": 0.35,
                },
                {
                    "cell_line": "BT474",
                    "condition": "T-R>T",
                    "drug": "T-DM1",
                    "replicate": 3,
                    "dose_index": 2,
                    "technical_replicate": 1,
                    "factor": 1.8,
                },
            ],
            "failing_plates": [
                {
                    "cell_line": line,
                    "condition": condition,
                    "replicate": rep,
                    "mechanism": "cell-dispensing failure",
                    "well_cv": cv,
                    "seeding_density": density,
                    "why": (why + consequence).format(cv=cv, density=density),
                }
                for line, condition, rep, cv, density, why in failing
            ],
        }
    )


def _lognormal(rng, cv, size=None):
    """Median-one log-normal factors with coefficient of variation `cv`."""
    return np.exp(rng.normal(0.0, _log_sd(cv), size))


def _log_sd(cv: float) -> float:
    """SD of log X for a log-normal X with coefficient of variation `cv`."""
    return float(np.sqrt(np.log1p(cv**2)))


def _plate_id(line, condition, replicate):
    return f"{line}-{CONDITION_CODES.get(condition, condition)}-B{replicate}"


def _time0_plate_id(line, replicate):
    return f"{line}-T0-B{replicate}"


def _realise(design: dict, rng) -> tuple[dict, dict]:
    """Day effects and every replicate's curve (drawn first, in a fixed order).

    Returns
    -------
    day : dict
        Cell line -> log ED50 shift of each replicate (day), shared by its curves.
    realised : dict
        ``(line, condition, replicate)`` -> drug -> the curve of that replicate's
        plate: ``b, c, d, ed50`` (relative IC50, the midpoint), ``e_sensitive``,
        the log day effect and the log condition-by-day interaction.
    """
    noise, shape = design["noise"], design["curve_shape"]
    n_bio = design["biological_replicates"]
    w, fold = shape["fraction_sensitive"], shape["fold_less_sensitive"]
    day, realised = {}, {}
    for line, spec in design["cell_lines"].items():
        day[line] = rng.normal(0.0, _log_sd(noise["day_ed50_cv"]), n_bio)
        for condition, cond in spec["conditions"].items():
            for drug, curve in cond["curves"].items():
                interaction = rng.normal(0.0, _log_sd(noise["condition_day_ed50_cv"]), n_bio)
                slope = curve["b"] * _lognormal(rng, noise["slope_cv"], n_bio)
                jitter = rng.uniform(-1.0, 1.0, n_bio) * noise["lower_asymptote_jitter"]
                top = rng.uniform(*noise["upper_asymptote_range"], n_bio)
                for r in range(n_bio):
                    ed50 = curve["e"] * np.exp(day[line][r] + interaction[r])
                    c = float(top[r] * np.clip(curve["c"] + jitter[r], 0.0, 0.99))
                    realised.setdefault((line, condition, r + 1), {})[drug] = {
                        "b": float(slope[r]),
                        "c": c,
                        "d": float(top[r]),
                        "ed50": float(ed50),
                        "e_sensitive": mixture_sensitive_e(ed50, float(slope[r]), w, fold),
                        "day_effect_log": float(day[line][r]),
                        "interaction_log": float(interaction[r]),
                    }
    return day, realised


def _treated_contents(design, line, condition, curves):
    """Well contents of one treated plate, in design order.

    Returns a list of dicts: drug, dose (float), dose_index, technical
    replicate, role, viability (true, for this plate's curves).
    """
    spec = design["cell_lines"][line]
    shape = design["curve_shape"]
    w, fold = shape["fraction_sensitive"], shape["fold_less_sensitive"]
    contents = []
    for drug in spec["conditions"][condition]["curves"]:
        doses = half_log_doses(design["doses"][drug]["lowest"], design["doses"][drug]["n_doses"])
        cv = curves[drug]
        v = cv["c"] + (cv["d"] - cv["c"]) * _mixture_s(doses, cv["b"], w, fold, cv["e_sensitive"])
        for tech in range(1, design["technical_replicates"] + 1):
            for k, (dose, via) in enumerate(zip(doses, v, strict=True)):
                contents.append(
                    {"drug": drug, "dose": dose, "dose_index": k, "tech": tech,
                     "role": "treated", "viability": float(via)}
                )  # fmt: skip
    for role in ("vehicle", "kill", "blank"):
        contents += [
            {"drug": NO_DRUG, "dose": 0.0, "dose_index": -1, "tech": t + 1, "role": role,
             "viability": {"vehicle": 1.0, "kill": np.nan, "blank": 0.0}[role]}
            for t in range(spec.get(f"{role}_wells", 0))
        ]  # fmt: skip
    return contents


def _read_plate(rng, contents, spec, design, doubling_h, time_h, plate):
    """Signals (RLU) of the wells of one plate; `contents` already carry their well index.

    `plate` holds the plate's draws: ``scale``, ``edge_loss``, ``kill_residual``,
    ``outliers`` (list of (content index, factor)) and ``failure`` (a
    ``failing_plates`` entry or None).
    """
    noise = design["noise"]
    n = len(contents)
    well_idx = np.array([w["well_index"] for w in contents])
    roles = np.array([w["role"] for w in contents])
    cells = roles != "blank"
    growth = 2.0 ** (time_h / doubling_h) if time_h else 1.0
    viability = np.array([w["viability"] for w in contents])
    viability[roles == "kill"] = plate["kill_residual"]
    cell_signal = spec["time0_signal_rlu"] * plate["scale"] * growth * viability
    cell_signal *= _lognormal(rng, noise["multiplicative_cv"], n)
    failure = plate["failure"]
    if failure is not None:
        cell_signal *= failure["seeding_density"] * _lognormal(rng, failure["well_cv"], n)
    for pos, factor in plate["outliers"]:
        cell_signal[pos] *= factor
    ring = edge_ring(spec["plate_format"])[well_idx]
    loss = np.where(ring == 0, plate["edge_loss"], 0.0)
    loss = np.where(ring == 1, plate["edge_loss"] * noise["second_ring_loss_ratio"], loss)
    signal = (1.0 - loss) * (spec["background_rlu"] + np.where(cells, cell_signal, 0.0))
    signal += rng.normal(0.0, spec["additive_sd_rlu"], n)
    return np.maximum(np.rint(signal), 0.0).astype(np.int64)


def _design_outliers(design: dict) -> list[dict]:
    """The design's outlier wells (``outliers``, or a single legacy ``outlier``)."""
    if "outliers" in design:
        return list(design["outliers"])
    return [design["outlier"]] if design.get("outlier") else []


def simulate_plates(seed: int = 279, design: dict | None = None):
    """Simulate the SePHER dose-response plates in the ``plates`` format (docs/data-dictionary.md).

    Parameters
    ----------
    seed : int, default 279
        Seed of :func:`numpy.random.default_rng`; same seed, same plates.
    design : dict, optional
        Design and true parameters; default :func:`default_plates_design`.

    Returns
    -------
    plates : DataFrame
        One row per well reading, columns :data:`PLATES_COLUMNS`: plates in
        generation order (per line: per biological replicate, the time-zero
        plate then one treated plate per condition), wells row-major.
        ``signal`` in RLU (integer), ``time_h`` 72 (treated plates) or 0
        (time-zero plates), ``replicate`` the biological replicate (1..3),
        the same day for every condition of a line. Roles: treated, vehicle,
        kill (kill control) and blank on treated plates; time0 and blank on
        time-zero plates.
    truth : dict
        Every true parameter, see :func:`plates_truth`; ``"simulated": True``.
    """
    design = copy.deepcopy(design or default_plates_design())
    rng = np.random.default_rng(seed)
    n_bio = design["biological_replicates"]
    noise = design["noise"]
    # Day effects and every replicate's curve first, in a fixed order, so plates do not shift them.
    day, realised = _realise(design, rng)
    outliers = _design_outliers(design)
    failing = {(f["cell_line"], f["condition"], f["replicate"]): f
               for f in design.get("failing_plates", [])}  # fmt: skip
    frames, plates_info, outlier_records = [], {}, []
    for line, spec in design["cell_lines"].items():
        fmt = spec["plate_format"]
        names = np.array(well_names(fmt))
        for rep in range(1, n_bio + 1):
            plate_list = [(_time0_plate_id(line, rep), None)]
            plate_list += [(_plate_id(line, c, rep), c) for c in spec["conditions"]]
            for plate_id, condition in plate_list:
                if condition is None:
                    contents = [
                        {"condition": c, "drug": NO_DRUG, "dose": 0.0, "dose_index": -1,
                         "tech": t + 1, "role": "time0", "viability": 1.0}
                        for c in spec["conditions"] for t in range(spec["time0_wells"])
                    ]  # fmt: skip
                    contents += [
                        {"condition": "none", "drug": NO_DRUG, "dose": 0.0, "dose_index": -1,
                         "tech": t + 1, "role": "blank", "viability": 0.0}
                        for t in range(spec["time0_blank_wells"])
                    ]  # fmt: skip
                    time_h, doubling = 0, np.nan
                else:
                    contents = _treated_contents(
                        design, line, condition, realised[(line, condition, rep)]
                    )
                    for w in contents:
                        w["condition"] = condition
                    time_h = design["time_h"]
                    doubling = spec["conditions"][condition]["doubling_time_h"]
                if len(contents) > fmt:
                    raise ValueError(f"{plate_id}: {len(contents)} wells exceed {fmt}")
                positions = rng.permutation(fmt)[: len(contents)]
                for w, pos in zip(contents, positions, strict=True):
                    w["well_index"] = int(pos)
                plate = {
                    "scale": float(_lognormal(rng, noise["plate_scale_cv"])),
                    "edge_loss": float(rng.uniform(*noise["edge_loss_range"])),
                    "kill_residual": float(rng.uniform(*noise["kill_residual_range"])),
                    "failure": failing.get((line, condition, rep)),
                    "outliers": [],
                }
                for out in outliers:
                    if (line, condition, rep) != (
                        out["cell_line"], out["condition"], out["replicate"]
                    ):  # fmt: skip
                        continue
                    pos = next(
                        i for i, w in enumerate(contents)
                        if w["drug"] == out["drug"] and w["dose_index"] == out["dose_index"]
                        and w["tech"] == out["technical_replicate"]
                    )  # fmt: skip
                    plate["outliers"].append((pos, out["factor"]))
                signal = _read_plate(rng, contents, spec, design, doubling, time_h, plate)
                for pos, factor in plate["outliers"]:
                    w = contents[pos]
                    outlier_records.append(
                        {
                            "plate_id": plate_id,
                            "well": str(names[w["well_index"]]),
                            "cell_line": line,
                            "condition": condition,
                            "drug": w["drug"],
                            "concentration": w["dose"],
                            "replicate": rep,
                            "factor": factor,
                            "true_viability": w["viability"],
                            "signal": int(signal[pos]),
                        }
                    )
                frame = pd.DataFrame(
                    {
                        "plate_id": plate_id,
                        "well_index": [w["well_index"] for w in contents],
                        "cell_line": line,
                        "condition": [w["condition"] for w in contents],
                        "drug": [w["drug"] for w in contents],
                        "concentration": [w["dose"] for w in contents],
                        "concentration_unit": [
                            design["doses"][w["drug"]]["unit"]
                            if w["drug"] in design["doses"]
                            else NO_DRUG
                            for w in contents
                        ],  # fmt: skip
                        "role": [w["role"] for w in contents],
                        "replicate": rep,
                        "signal": signal,
                        "time_h": time_h,
                    }
                ).sort_values("well_index", kind="stable")
                frame.insert(1, "well", names[frame["well_index"].to_numpy()])
                frames.append(frame.drop(columns="well_index"))
                role_of = np.array([w["role"] for w in contents])
                roles = pd.Series(role_of).value_counts()
                info = {
                    "plate_format": fmt,
                    "cell_line": line,
                    "condition": condition if condition is not None else "all (time zero)",
                    "replicate": rep,
                    "time_h": time_h,
                    "plate_scale": plate["scale"],
                    "edge_loss_fraction": plate["edge_loss"],
                    "wells_by_role": {r: int(roles.get(r, 0)) for r in ROLES if r in roles},
                    "n_edge_wells_used": int(
                        edge_wells(fmt)[[w["well_index"] for w in contents]].sum()
                    ),
                }
                if condition is not None:
                    info["kill_residual_viability"] = plate["kill_residual"]
                    info["controls"] = control_statistics(
                        signal[role_of == "vehicle"], signal[role_of == "kill"]
                    )
                    info["qc_expected"] = "fail" if plate["failure"] else "pass"
                plates_info[plate_id] = info
    plates = pd.concat(frames, ignore_index=True)[list(PLATES_COLUMNS)]
    truth = plates_truth(
        design,
        seed=seed,
        day=day,
        realised=realised,
        plates_info=plates_info,
        outliers=outlier_records,
    )
    return plates, truth


def _round(value):
    """Round floats (recursively) to :data:`_TRUTH_DIGITS` significant digits; NaN -> None."""
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_round(v) for v in value]
    if isinstance(value, float | np.floating):
        v = float(value)
        return float(f"{v:.{_TRUTH_DIGITS}g}") if np.isfinite(v) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def curve_truth(curve: dict, doses, doubling_time_h: float, time_h: float) -> dict:
    """True summaries of one LL.4 curve over its tested doses.

    Parameters
    ----------
    curve : dict
        ``b, c, d, e`` (drc convention, viability 0..1).
    doses : array_like
        Tested concentrations (> 0), unit of ``e``.
    doubling_time_h, time_h : float
        Vehicle doubling time and assay length (hours), for GR metrics.

    Returns
    -------
    dict
        ``ic50_relative`` (= e) and whether it is inside the tested range;
        ``ic50_absolute`` (dose at 50% viability; None if the curve never
        crosses 0.5) and ``ic50_reached`` (crossed within the tested range);
        viability at the lowest / highest dose; GR metrics: ``doublings``,
        ``gr50`` (dose where GR = 0.5, i.e. viability ``0.75 ** doublings``;
        None if never), ``gr50_reached``, ``gr_inf`` (GR at infinite dose) and
        ``gr_max`` (GR at the highest tested dose).
    """
    b, c, d, e = (curve[k] for k in ("b", "c", "d", "e"))
    doses = np.asarray(doses, dtype=float)
    lo, hi = float(doses.min()), float(doses.max())
    ic50 = absolute_ic50(b, c, d, e)
    k = time_h / doubling_time_h
    gr50 = absolute_ic50(b, c, d, e, level=0.75**k)
    v_hi = float(ll4_viability(hi, b, c, d, e))
    return {
        **curve,
        "ic50_relative": e,
        "ic50_relative_in_range": bool(lo <= e <= hi),
        "ic50_absolute": ic50,
        "ic50_reached": bool(np.isfinite(ic50) and lo <= ic50 <= hi),
        "viability_at_lowest_dose": float(ll4_viability(lo, b, c, d, e)),
        "viability_at_highest_dose": v_hi,
        "doubling_time_h": doubling_time_h,
        "doublings": k,
        "gr50": gr50,
        "gr50_reached": bool(np.isfinite(gr50) and lo <= gr50 <= hi),
        "gr_inf": float(gr_value(c, k)),
        "gr_max": float(gr_value(v_hi, k)),
    }


def mixture_curve_truth(
    curve: dict, doses, doubling_time_h: float, time_h: float, fraction_sensitive: float,
    fold: float,
) -> dict:  # fmt: skip
    """True summaries of one two-population mixture curve over its tested doses.

    Parameters
    ----------
    curve : dict
        ``b, c, d`` and ``e`` (the relative IC50: midpoint dose), viability 0..1.
    doses : array_like
        Tested concentrations (> 0), unit of ``e``.
    doubling_time_h, time_h : float
        Vehicle doubling time and assay length (hours), for GR metrics.
    fraction_sensitive, fold : float
        The mixture (module docstring).

    Returns
    -------
    dict
        As :func:`curve_truth`, every quantity computed on the mixture curve
        (root finding, :func:`mixture_dose_at`): ``ic50_relative`` (= e),
        ``ic50_absolute`` (None if never 0.5), ``ic50_reached``, viability at
        the lowest / highest dose, ``doublings``, ``gr50``, ``gr50_reached``,
        ``gr_inf`` and ``gr_max``; plus ``e_sensitive``.
    """
    b, c, d, e = (curve[k] for k in ("b", "c", "d", "e"))
    doses = np.asarray(doses, dtype=float)
    lo, hi = float(doses.min()), float(doses.max())
    args = (b, c, d, e, fraction_sensitive, fold)
    ic50 = mixture_dose_at(0.5, *args)
    k = time_h / doubling_time_h
    gr50 = mixture_dose_at(0.75**k, *args)
    v_lo, v_hi = (float(mixture_viability(x, *args)) for x in (lo, hi))
    return {
        **curve,
        "e_sensitive": mixture_sensitive_e(e, b, fraction_sensitive, fold),
        "ic50_relative": e,
        "ic50_relative_in_range": bool(lo <= e <= hi),
        "ic50_absolute": ic50,
        "ic50_reached": bool(np.isfinite(ic50) and lo <= ic50 <= hi),
        "viability_at_lowest_dose": v_lo,
        "viability_at_highest_dose": v_hi,
        "doubling_time_h": doubling_time_h,
        "doublings": k,
        "gr50": gr50,
        "gr50_reached": bool(np.isfinite(gr50) and lo <= gr50 <= hi),
        "gr_inf": float(gr_value(c, k)),
        "gr_max": float(gr_value(v_hi, k)),
    }


def _geometric_mean(values) -> float:
    values = np.asarray(values, dtype=float)
    return float(np.exp(np.log(values).mean())) if values.size else float("nan")


def plates_truth(
    design: dict, *, seed: int, day: dict, realised: dict, plates_info: dict, outliers: list
) -> dict:
    """The truth record written next to the simulated plates.

    Returns
    -------
    dict
        ``simulated`` (True), generator, seed, the design; ``curves``: per curve
        (``"<cell line>|<condition>|<drug>"``) the population parameters and
        summaries (:func:`mixture_curve_truth`; ``e`` the population relative
        IC50, the geometric mean over days) and ``replicates``, each
        replicate's plate and realised curve (``b, c, d``, relative IC50
        ``ic50_relative`` -- the generating curve's midpoint --, absolute IC50,
        ``e_sensitive``, log day effect and interaction), also as lists
        ``replicate_ic50_relative`` / ``replicate_ic50_absolute``;
        ``day_effects``; ``tdm1_ic50_ratios``: per line and comparison
        (:data:`TRUTH_COMPARISONS`) the population ratio of relative and of
        absolute IC50s, each replicate's realised ratios, and their geometric
        mean over all replicates and over the replicates whose two plates pass
        QC; ``failing_plates`` (id, mechanism, why, realised control
        statistics); ``outlier`` (the first) and ``outliers``; per plate its
        layout, draws and control statistics.
    """
    n_bio = design["biological_replicates"]
    shape = design["curve_shape"]
    w, fold = shape["fraction_sensitive"], shape["fold_less_sensitive"]
    failing_ids = {
        _plate_id(f["cell_line"], f["condition"], f["replicate"])
        for f in design.get("failing_plates", [])
    }
    curves = {}
    for line, spec in design["cell_lines"].items():
        for condition, cond in spec["conditions"].items():
            for drug, curve in cond["curves"].items():
                dose_spec = design["doses"][drug]
                doses = half_log_doses(dose_spec["lowest"], dose_spec["n_doses"])
                summary = mixture_curve_truth(
                    curve, doses, cond["doubling_time_h"], design["time_h"], w, fold
                )
                reps = []
                for r in range(1, n_bio + 1):
                    rc = realised[(line, condition, r)][drug]
                    args = (rc["b"], rc["c"], rc["d"], rc["ed50"], w, fold)
                    reps.append(
                        {
                            "replicate": r,
                            "plate_id": _plate_id(line, condition, r),
                            "qc_expected": "fail"
                            if _plate_id(line, condition, r) in failing_ids
                            else "pass",
                            "b": rc["b"],
                            "c": rc["c"],
                            "d": rc["d"],
                            "e_sensitive": rc["e_sensitive"],
                            # midpoint of the generating curve, by root finding on the curve
                            "ic50_relative": mixture_dose_at(0.5 * (rc["c"] + rc["d"]), *args),
                            "ic50_absolute": mixture_dose_at(0.5, *args),
                            "day_effect_log": rc["day_effect_log"],
                            "interaction_log": rc["interaction_log"],
                        }
                    )
                curves[f"{line}|{condition}|{drug}"] = {
                    "cell_line": line,
                    "condition": condition,
                    "drug": drug,
                    "unit": dose_spec["unit"],
                    "doses": doses.tolist(),
                    **summary,
                    "replicates": reps,
                    "replicate_ic50_relative": [x["ic50_relative"] for x in reps],
                    "replicate_ic50_absolute": [x["ic50_absolute"] for x in reps],
                }
    ratios = {}
    for line in design["cell_lines"]:
        per_line = {}
        for num, den in TRUTH_COMPARISONS:
            if f"{line}|{num}|T-DM1" not in curves or f"{line}|{den}|T-DM1" not in curves:
                continue
            a = curves[f"{line}|{num}|T-DM1"]
            z = curves[f"{line}|{den}|T-DM1"]
            rel = [x / y for x, y in zip(a["replicate_ic50_relative"],
                                         z["replicate_ic50_relative"], strict=True)]  # fmt: skip
            absolute = [
                x / y if x is not None and y is not None and np.isfinite(x * y) else float("nan")
                for x, y in zip(a["replicate_ic50_absolute"], z["replicate_ic50_absolute"],
                                strict=True)
            ]  # fmt: skip
            passing = [
                r + 1 for r in range(n_bio)
                if a["replicates"][r]["qc_expected"] == "pass"
                and z["replicates"][r]["qc_expected"] == "pass"
            ]  # fmt: skip
            per_line[f"{num}/{den}"] = {
                "ic50_relative_ratio": a["e"] / z["e"],
                "ic50_absolute_ratio": a["ic50_absolute"] / z["ic50_absolute"],
                "replicate_ic50_relative_ratios": rel,
                "replicate_ic50_absolute_ratios": absolute,
                "realised_ic50_relative_ratio": _geometric_mean(rel),
                "qc_passing_replicates": passing,
                "realised_ic50_relative_ratio_qc_passing": _geometric_mean(
                    [rel[r - 1] for r in passing]
                ),
            }
        ratios[line] = per_line
    failing = []
    for f in design.get("failing_plates", []):
        plate_id = _plate_id(f["cell_line"], f["condition"], f["replicate"])
        failing.append({"plate_id": plate_id, **f, "controls": plates_info[plate_id]["controls"]})
    day_effects = {
        line: {
            "replicate_log_ed50_shift": [float(x) for x in shifts],
            "replicate_ed50_factor": [float(np.exp(x)) for x in shifts],
        }
        for line, shifts in day.items()
    }
    return _round(
        {
            "simulated": True,
            "generator": "sepher.simulate.plates.simulate_plates",
            "seed": int(seed),
            "design": design,
            "curves": curves,
            "day_effects": day_effects,
            "tdm1_ic50_ratios": ratios,
            "failing_plates": failing,
            "outlier": outliers[0] if outliers else None,
            "outliers": outliers,
            "plates": plates_info,
            "units": {
                "concentration": {d: s["unit"] for d, s in design["doses"].items()},
                "signal": "RLU (luminescence, integer)",
                "time": "hours",
                "viability": "fraction of vehicle (0..1), blank-subtracted",
            },
            "notes": (
                "Generating curve (not LL.4): a two-population mixture, v(x) = c + (d - c) S(x), "
                "S(x) = w / (1 + (x / e_s) ** b) + (1 - w) / (1 + (x / (fold e_s)) ** b), "
                "w = curve_shape.fraction_sensitive, fold = curve_shape.fold_less_sensitive. "
                "Relative IC50 (ic50_relative, e): the dose at S = 1/2, midway between the "
                "asymptotes c and d; absolute IC50: the dose at v = 0.5 (null: never crossed); "
                "ic50_reached: crossed within the tested doses. Curve-level e, b, c, d = 1 and "
                "their summaries describe the population curve: e is the population ED50, the "
                "geometric mean over days (exp E[log ED50]). Each replicate (day) r of a line "
                "has log ED50 = log e + day effect (shared by every condition and drug of the "
                "line that day, day_ed50_cv) + condition-by-day interaction (per curve, "
                "condition_day_ed50_cv), and its own b (log-normal, slope_cv), d "
                "(upper_asymptote_range) and c (d * (c + jitter)): curves.*.replicates, whose "
                "ic50_relative and ic50_absolute are found by root finding on that "
                "replicate's generating curve. tdm1_ic50_ratios: population ratios "
                "(ic50_relative_ratio = ratio of population ED50s), realised per-replicate "
                "ratios and their geometric means (all replicates; replicates whose two plates "
                "pass QC). Replicate r of every condition of a line is one day (pairable). "
                "failing_plates: the plates that fail QC by design, with the mechanism and "
                "their realised control statistics (Z' vehicle vs kill, vehicle CV, signal "
                "window (|mean_v - mean_k| - 3 (sd_v + sd_k)) / sd_v). GR metrics from the "
                "population curve and the vehicle doublings over time_h (gr50: viability "
                "0.75 ** doublings). Treated plates hold one cell population; vehicle wells "
                "(drug none, concentration 0) are dose 0 for every drug on the plate; kill "
                "wells (role kill) are a lethal reference with a small residual viability. "
                "Time-zero plates hold time0 wells of every condition of a line and replicate "
                "plus blanks; time-zero and treated plates have independent plate scales. "
                "Edge effect: outer ring loses edge_loss_fraction of its signal, the next ring "
                "second_ring_loss_ratio of that. Well positions are randomised per plate."
            ),
        }
    )


def _format_concentration(dose: float) -> str:
    return "0" if dose == 0 else f"{dose:.4g}"


def write_demo_plates(out_csv, truth_json, seed: int = 279) -> None:
    """Write the demo plates CSV and its truth JSON (byte-identical on every call).

    Parameters
    ----------
    out_csv, truth_json : path
        Output files (parent folders created). CSV: LF line endings, no
        index, concentrations as in the dilution series (4 significant
        digits), integer signals. JSON: sorted keys, indent 2, floats to 6
        significant digits, trailing newline.
    seed : int, default 279
        Seed of the simulation.
    """
    plates, truth = simulate_plates(seed=seed)
    plates = plates.assign(concentration=plates["concentration"].map(_format_concentration))
    out_csv, truth_json = Path(out_csv), Path(truth_json)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    truth_json.parent.mkdir(parents=True, exist_ok=True)
    with open(out_csv, "w", encoding="utf-8", newline="\n") as fh:
        plates.to_csv(fh, index=False, lineterminator="\n")
    with open(truth_json, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(json.dumps(truth, sort_keys=True, indent=2, allow_nan=False) + "\n")


#: Readout noise of :func:`simulate_plates_large` (fixed: the benchmarks' screens stay the same).
_SCREEN_NOISE = {"multiplicative_cv": 0.06, "plate_scale_cv": 0.05, "edge_loss_range": [0.05, 0.10]}

#: Role categories of :func:`simulate_plates_large` (no kill controls).
_SCREEN_ROLES = ("treated", "vehicle", "blank", "time0")


def simulate_plates_large(
    n_curves: int,
    seed: int = 279,
    curves_per_plate: int = 10,
    n_doses: int = 10,
    lowest_dose: float = 0.1,
):
    """Vectorised simulation of a screen of many T-DM1-like curves (benchmarks).

    The readout of :func:`simulate_plates` (384-well plates, the BT474 signal
    levels, randomised positions, outer-ring edge loss 5-10 %, plate scale,
    6 % well CV: :data:`_SCREEN_NOISE`) on exact LL.4 curves, without
    time-zero plates, biological replicates, kill controls or outliers: a
    benchmark of fitting speed and of recovery when the model is right. Each
    plate holds one cell line (``CL000001``, ...; condition ``screen``) and
    `curves_per_plate` drugs (``D01``, ...) at `n_doses` half-log doses in
    triplicate, 16 vehicle and 8 blank wells. True parameters per curve:
    ``b ~ U(0.7, 2.5)``, ``c ~ U(0, 0.6)``, ``d = 1``, ``log e`` uniform over
    the tested log-dose range. No Python loop over plates or curves.

    Memory and time: about 26 bytes per well row (categorical codes, float64
    concentration, int32 signal). 100,000 curves (10,000 plates, 3.24 million
    rows) give an 83 MB frame (plus 12 MB of curve truth) in about 2 s; the
    process peaks at about 0.5 GB RSS (temporaries). For larger screens call
    it in chunks with different seeds.

    Parameters
    ----------
    n_curves : int
        Number of curves (rounded up to whole plates).
    seed : int, default 279
        Seed of :func:`numpy.random.default_rng`.
    curves_per_plate : int, default 10
        Drugs per plate (at most 12 at 10 doses in triplicate).
    n_doses : int, default 10
        Doses per curve, half-log from `lowest_dose` (ng/mL).
    lowest_dose : float, default 0.1

    Returns
    -------
    plates : DataFrame
        Columns :data:`PLATES_COLUMNS` (string columns as categoricals),
        plates in order, wells in random order within a plate.
    curves : DataFrame
        One row per curve: ``plate_id, cell_line, drug, b, c, d, e,
        ic50_absolute`` (NaN if never crossed).
    """
    if n_curves < 1:
        raise ValueError(f"n_curves must be at least 1, got {n_curves}")
    fmt, tech, n_vehicle, n_blank = 384, 3, 16, 8
    per_curve = n_doses * tech
    wells_used = curves_per_plate * per_curve + n_vehicle + n_blank
    if wells_used > fmt:
        raise ValueError(f"{wells_used} wells per plate exceed {fmt}; lower curves_per_plate")
    spec = default_plates_design()["cell_lines"]["BT474"]
    noise = _SCREEN_NOISE
    rng = np.random.default_rng(seed)
    n_plates = -(-n_curves // curves_per_plate)
    n_total = n_plates * curves_per_plate
    doses = half_log_doses(lowest_dose, n_doses)
    lx = np.log(doses)
    b = rng.uniform(0.7, 2.5, n_total)
    c = rng.uniform(0.0, 0.6, n_total)
    log_e = rng.uniform(lx[0], lx[-1], n_total)
    e = np.exp(log_e)
    doubling = rng.uniform(30.0, 80.0, n_plates)
    # per-plate well template: curve slot, dose index, role code
    slot = np.concatenate(
        [np.repeat(np.arange(curves_per_plate), per_curve), np.full(n_vehicle + n_blank, -1)]
    )
    dose_idx = np.concatenate(
        [np.tile(np.arange(n_doses), curves_per_plate * tech), np.full(n_vehicle + n_blank, -1)]
    )
    role_code = np.concatenate(
        [np.zeros(curves_per_plate * per_curve, np.int8), np.full(n_vehicle, 1, np.int8),
         np.full(n_blank, 2, np.int8)]
    )  # fmt: skip
    # random positions: the first `wells_used` of a permutation of 384 wells, per plate
    positions = np.argsort(rng.random((n_plates, fmt)), axis=1)[:, :wells_used].astype(np.int16)
    plate = np.repeat(np.arange(n_plates), wells_used)
    slot_all = np.tile(slot, n_plates)
    curve = np.where(slot_all >= 0, plate * curves_per_plate + np.maximum(slot_all, 0), -1)
    dose_all = np.tile(dose_idx, n_plates)
    roles = np.tile(role_code, n_plates)
    treated = roles == 0
    conc = np.where(treated, doses[np.maximum(dose_all, 0)], 0.0)
    cidx = np.maximum(curve, 0)
    with np.errstate(divide="ignore", over="ignore"):
        z = b[cidx] * (np.log(np.where(treated, conc, 1.0)) - log_e[cidx])
        v = np.where(treated, c[cidx] + (1.0 - c[cidx]) / (1.0 + np.exp(z)), 1.0)
    scale = _lognormal(rng, noise["plate_scale_cv"], n_plates)
    edge_loss = rng.uniform(*noise["edge_loss_range"], n_plates)
    growth = 2.0 ** (72.0 / doubling)
    cell_signal = spec["time0_signal_rlu"] * (scale * growth)[plate] * v
    cell_signal *= _lognormal(rng, noise["multiplicative_cv"], plate.size)
    well = positions.ravel()
    edge = np.where(edge_wells(fmt)[well], 1.0 - edge_loss[plate], 1.0)
    signal = edge * (spec["background_rlu"] + np.where(roles == 2, 0.0, cell_signal))
    signal += rng.normal(0.0, spec["additive_sd_rlu"], plate.size)
    signal = np.maximum(np.rint(signal), 0).astype(np.int32)
    width = max(6, len(str(n_plates)))
    plate_names = [f"SCREEN-{p:0{width}d}" for p in range(1, n_plates + 1)]
    line_names = [f"CL{p:0{width}d}" for p in range(1, n_plates + 1)]
    drug_names = [f"D{j + 1:02d}" for j in range(curves_per_plate)]
    drug_code = np.where(slot_all >= 0, slot_all + 1, 0)
    plates = pd.DataFrame(
        {
            "plate_id": pd.Categorical.from_codes(plate, plate_names),
            "well": pd.Categorical.from_codes(well, well_names(fmt)),
            "cell_line": pd.Categorical.from_codes(plate, line_names),
            "condition": pd.Categorical.from_codes(np.zeros(plate.size, np.int8), ["screen"]),
            "drug": pd.Categorical.from_codes(drug_code, [NO_DRUG, *drug_names]),
            "concentration": conc,
            "concentration_unit": pd.Categorical.from_codes(
                treated.astype(np.int8), [NO_DRUG, "ng/mL"]
            ),
            "role": pd.Categorical.from_codes(roles, list(_SCREEN_ROLES)),
            "replicate": np.ones(plate.size, np.int8),
            "signal": signal,
            "time_h": np.full(plate.size, 72, np.int16),
        }
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        ic50 = np.where(c < 0.5, e * ((1.0 - 0.5) / (0.5 - c)) ** (1.0 / b), np.nan)
    curve_plate = np.repeat(np.arange(n_plates), curves_per_plate)
    curves = pd.DataFrame(
        {
            "plate_id": pd.Categorical.from_codes(curve_plate, plate_names),
            "cell_line": pd.Categorical.from_codes(curve_plate, line_names),
            "drug": np.tile(drug_names, n_plates),
            "b": b,
            "c": c,
            "d": 1.0,
            "e": e,
            "ic50_absolute": ic50,
        }
    )
    return plates, curves
