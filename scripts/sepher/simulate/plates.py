"""Simulated plate-reader viability readouts for the SePHER dose-response stage.

The original plate data are not public. This module simulates the study's in
vitro design (Bon, Pizzuti et al. 2020): two HER2+ breast cancer lines
(SKBR3, BT474), each parental, resistant to trastuzumab (``T-R``) or to
trastuzumab + pertuzumab (``TP-R``), treated with T-DM1 (and with trastuzumab
or pertuzumab alone); plus T-R cells after sequential exposure to trastuzumab
(``T-R>T``), pertuzumab (``T-R>P``) or both (``T-R>T+P``). T-DM1 is less
active in TP-R than in T-R cells (relative IC50 5-6x higher), and its IC50
rises with pertuzumab exposure.

Readout model (one well; CellTiter-Glo-like luminescence, RLU):

* Viability relative to vehicle follows LL.4 in R drc's convention,
  ``v(x) = c + (d - c) / (1 + exp(b (log x - log e)))`` with ``d = 1``.
* Cell signal = ``time0_signal_rlu * 2 ** (time_h / doubling_time_h) * v(x)``
  times a plate scale (log-normal, ``plate_scale_cv``) and a per-well
  multiplicative error (log-normal, ``multiplicative_cv``).
* Well signal = ``edge * (background_rlu + cell signal) + N(0, additive_sd_rlu)``,
  rounded to whole RLU and clipped at 0; ``edge = 1 - loss`` for wells of the
  outer ring (evaporation), ``loss`` uniform in ``edge_loss_range`` per plate.
  Blank wells (medium, no cells) have no cell signal.
* Biological replicates (separate plates, days) vary in log ``e`` by a day
  effect shared by every curve of a cell line in that replicate:
  ``log e_rep = log e + N(0, replicate_log_e_sd)``; ``b, c, d`` are fixed.
  IC50 ratios between conditions are therefore the same in every replicate.
* Exactly one outlier well (a pipetting error): its cell signal is
  multiplied by ``outlier.factor``.

Plate design: one cell population (cell line x condition x biological
replicate) per treated plate, so the workflow's per-plate normalisation
``(signal - blank mean) / (vehicle mean - blank mean)`` is unambiguous; its
vehicle wells (``drug = "none"``, concentration 0) are the dose-0
observations of every drug on the plate. Time-zero wells (``role = time0``,
``time_h = 0``) for every condition of a line and replicate are read on one
separate plate (with its own blank wells) at treatment start, for GR metrics
(Hafner et al. 2016 Nat Methods 13:521). Treated plates are read at
``time_h = 72``. Well positions are randomised per plate (seeded), as a
randomising dispenser lays them out. SKBR3 is on 96-well plates, BT474 on
384-well plates.

Non-treated wells: ``drug = "none"``, ``concentration = 0``,
``concentration_unit = "none"``; blank wells of a treated plate carry the
plate's condition, blank wells of a time-zero plate the condition ``none``.

Units: T-DM1 in ng/mL, trastuzumab and pertuzumab in ug/mL (ASCII for µg/mL).

:func:`write_demo_plates` writes the demo CSV and its truth JSON
byte-identically; :func:`simulate_plates_large` is a vectorised screen-scale
version for benchmarks.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd

from sepher.io.plates import OPTIONAL_COLUMNS as OPTIONAL_PLATES_COLUMNS
from sepher.io.plates import PLATES_COLUMNS as REQUIRED_PLATES_COLUMNS

#: Column order of the ``plates`` table (docs/data-dictionary.md): required, then ``time_h``.
PLATES_COLUMNS = REQUIRED_PLATES_COLUMNS + OPTIONAL_PLATES_COLUMNS

#: Roles of a well.
ROLES = ("treated", "vehicle", "blank", "time0")

#: Plate formats: number of wells -> (rows, columns).
PLATE_FORMATS = {96: (8, 12), 384: (16, 24)}

#: ``drug`` and ``concentration_unit`` of vehicle, blank and time0 wells.
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


def _curve(b, c, e):
    return {"b": b, "c": c, "d": 1.0, "e": e}


def default_plates_design() -> dict:
    """The true design and parameters of the simulated SePHER plates (a fresh copy).

    Returns
    -------
    dict
        JSON-serialisable. ``e`` in the drug's unit (T-DM1 ng/mL, antibodies
        ug/mL); viability on the 0..1 scale (``d = 1``); signals in RLU; times
        in hours. T-DM1 IC50s are in the range reported for HER2+ lines
        (ng/mL); trastuzumab and pertuzumab alone inhibit parental cells
        partially and resistant cells little.
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
            "vehicle_wells": 6,
            "blank_wells": 6,
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
            "noise": {
                "multiplicative_cv": 0.06,
                "plate_scale_cv": 0.05,
                "edge_loss_range": [0.05, 0.10],
                # day effect on log e, shared by all curves of a line in a replicate
                "replicate_log_e_sd": 0.15,
            },
            # A pipetting error: far fewer cells in one well of a low dose.
            "outlier": {
                "cell_line": "SKBR3",
                "condition": "TP-R",
                "drug": "T-DM1",
                "replicate": 2,
                "dose_index": 4,
                "technical_replicate": 2,
                "factor": 0.35,
            },
        }
    )


def _lognormal(rng, cv, size=None):
    """Median-one log-normal factors with coefficient of variation `cv`."""
    return np.exp(rng.normal(0.0, np.sqrt(np.log1p(cv**2)), size))


def _plate_id(line, condition, replicate):
    return f"{line}-{CONDITION_CODES.get(condition, condition)}-B{replicate}"


def _time0_plate_id(line, replicate):
    return f"{line}-T0-B{replicate}"


def _treated_contents(design, line, condition, replicate_e):
    """Well contents of one treated plate, in design order.

    Returns a list of dicts: drug, dose (float), dose_index, technical
    replicate, role, viability (true, for this biological replicate).
    """
    spec = design["cell_lines"][line]
    contents = []
    for drug, curve in spec["conditions"][condition]["curves"].items():
        doses = half_log_doses(design["doses"][drug]["lowest"], design["doses"][drug]["n_doses"])
        e = replicate_e[drug]
        v = ll4_viability(doses, curve["b"], curve["c"], curve["d"], e)
        for tech in range(1, design["technical_replicates"] + 1):
            for k, (dose, via) in enumerate(zip(doses, v, strict=True)):
                contents.append(
                    {"drug": drug, "dose": dose, "dose_index": k, "tech": tech,
                     "role": "treated", "viability": float(via)}
                )  # fmt: skip
    for role, n in (("vehicle", spec["vehicle_wells"]), ("blank", spec["blank_wells"])):
        contents += [
            {"drug": NO_DRUG, "dose": 0.0, "dose_index": -1, "tech": t + 1, "role": role,
             "viability": 1.0 if role == "vehicle" else 0.0}
            for t in range(n)
        ]  # fmt: skip
    return contents


def _read_plate(rng, contents, spec, design, doubling_h, time_h, scale, edge_loss, outlier_pos):
    """Signals (RLU) of the wells of one plate; `contents` already carry their well index."""
    noise = design["noise"]
    n = len(contents)
    well_idx = np.array([w["well_index"] for w in contents])
    cells = np.array([w["role"] != "blank" for w in contents])
    growth = 2.0 ** (time_h / doubling_h) if time_h else 1.0
    viability = np.array([w["viability"] for w in contents])
    cell_signal = spec["time0_signal_rlu"] * scale * growth * viability
    cell_signal *= _lognormal(rng, noise["multiplicative_cv"], n)
    if outlier_pos is not None:
        cell_signal[outlier_pos] *= design["outlier"]["factor"]
    edge = np.where(edge_wells(spec["plate_format"])[well_idx], 1.0 - edge_loss, 1.0)
    signal = edge * (spec["background_rlu"] + np.where(cells, cell_signal, 0.0))
    signal += rng.normal(0.0, spec["additive_sd_rlu"], n)
    return np.maximum(np.rint(signal), 0.0).astype(np.int64)


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
        (time-zero plates), ``replicate`` the biological replicate (1..3).
    truth : dict
        Every true parameter, see :func:`plates_truth`; ``"simulated": True``.
    """
    design = copy.deepcopy(design or default_plates_design())
    rng = np.random.default_rng(seed)
    n_bio = design["biological_replicates"]
    noise = design["noise"]
    # Biological replicate IC50s first, in a fixed order, so plates do not shift them.
    # A day effect shared by every curve of a line in one replicate (conditions are
    # assayed side by side), so IC50 ratios between conditions are exact in every replicate.
    replicate_e = {}
    for line, spec in design["cell_lines"].items():
        shift = rng.normal(0.0, noise["replicate_log_e_sd"], n_bio)
        for condition, cond in spec["conditions"].items():
            for rep in range(1, n_bio + 1):
                replicate_e[(line, condition, rep)] = {
                    drug: float(curve["e"] * np.exp(shift[rep - 1]))
                    for drug, curve in cond["curves"].items()
                }
    frames, plates_info, outlier_record = [], {}, None
    out = design["outlier"]
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
                        design, line, condition, replicate_e[(line, condition, rep)]
                    )
                    for w in contents:
                        w["condition"] = condition
                    time_h = design["time_h"]
                    doubling = spec["conditions"][condition]["doubling_time_h"]
                positions = rng.permutation(fmt)[: len(contents)]
                for w, pos in zip(contents, positions, strict=True):
                    w["well_index"] = int(pos)
                scale = float(_lognormal(rng, noise["plate_scale_cv"]))
                edge_loss = float(rng.uniform(*noise["edge_loss_range"]))
                outlier_pos = None
                if (line, condition, rep) == (out["cell_line"], out["condition"], out["replicate"]):
                    outlier_pos = next(
                        i for i, w in enumerate(contents)
                        if w["drug"] == out["drug"] and w["dose_index"] == out["dose_index"]
                        and w["tech"] == out["technical_replicate"]
                    )  # fmt: skip
                signal = _read_plate(
                    rng, contents, spec, design, doubling, time_h, scale, edge_loss, outlier_pos
                )
                if outlier_pos is not None:
                    w = contents[outlier_pos]
                    outlier_record = {
                        "plate_id": plate_id,
                        "well": str(names[w["well_index"]]),
                        "cell_line": line,
                        "condition": condition,
                        "drug": w["drug"],
                        "concentration": w["dose"],
                        "replicate": rep,
                        "factor": out["factor"],
                        "true_viability": w["viability"],
                        "signal": int(signal[outlier_pos]),
                    }
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
                roles = pd.Series([w["role"] for w in contents]).value_counts()
                plates_info[plate_id] = {
                    "plate_format": fmt,
                    "cell_line": line,
                    "condition": condition if condition is not None else "all (time zero)",
                    "replicate": rep,
                    "time_h": time_h,
                    "plate_scale": scale,
                    "edge_loss_fraction": edge_loss,
                    "wells_by_role": {r: int(roles.get(r, 0)) for r in ROLES if r in roles},
                    "n_edge_wells_used": int(
                        edge_wells(fmt)[[w["well_index"] for w in contents]].sum()
                    ),
                }
    plates = pd.concat(frames, ignore_index=True)[list(PLATES_COLUMNS)]
    truth = plates_truth(
        design, seed=seed, replicate_e=replicate_e, plates_info=plates_info, outlier=outlier_record
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


def plates_truth(design: dict, *, seed: int, replicate_e: dict, plates_info: dict, outlier) -> dict:
    """The truth record written next to the simulated plates.

    Returns
    -------
    dict
        ``simulated`` (True), generator, seed, the design (noise parameters
        included), per curve (``"<cell line>|<condition>|<drug>"``) the true
        parameters and summaries (:func:`curve_truth`) plus each biological
        replicate's realised ``e``; the true TP-R/T-R and sequential IC50
        ratios per line; the outlier well; per plate its layout summary.
    """
    n_bio = design["biological_replicates"]
    curves = {}
    for line, spec in design["cell_lines"].items():
        for condition, cond in spec["conditions"].items():
            for drug, curve in cond["curves"].items():
                dose_spec = design["doses"][drug]
                doses = half_log_doses(dose_spec["lowest"], dose_spec["n_doses"])
                summary = curve_truth(curve, doses, cond["doubling_time_h"], design["time_h"])
                curves[f"{line}|{condition}|{drug}"] = {
                    "cell_line": line,
                    "condition": condition,
                    "drug": drug,
                    "unit": dose_spec["unit"],
                    "doses": doses.tolist(),
                    **summary,
                    "replicate_e": [
                        replicate_e[(line, condition, r)][drug] for r in range(1, n_bio + 1)
                    ],
                }
    ratios = {}
    for line in design["cell_lines"]:
        per_line = {}
        for num, den in (
            ("TP-R", "T-R"),
            ("T-R>P", "T-R>T"),
            ("T-R>T+P", "T-R>T"),
            ("T-R>T+P", "T-R>P"),
        ):
            a = curves[f"{line}|{num}|T-DM1"]
            z = curves[f"{line}|{den}|T-DM1"]
            per_line[f"{num}/{den}"] = {
                "ic50_relative_ratio": a["e"] / z["e"],
                "ic50_absolute_ratio": a["ic50_absolute"] / z["ic50_absolute"],
                "replicate_ic50_relative_ratios": [
                    x / y for x, y in zip(a["replicate_e"], z["replicate_e"], strict=True)
                ],
            }
        ratios[line] = per_line
    return _round(
        {
            "simulated": True,
            "generator": "sepher.simulate.plates.simulate_plates",
            "seed": int(seed),
            "design": design,
            "curves": curves,
            "tdm1_ic50_ratios": ratios,
            "outlier": outlier,
            "plates": plates_info,
            "units": {
                "concentration": {d: s["unit"] for d, s in design["doses"].items()},
                "signal": "RLU (luminescence, integer)",
                "time": "hours",
                "viability": "fraction of vehicle (0..1), blank-subtracted",
            },
            "notes": (
                "LL.4 in drc's convention c + (d - c) / (1 + exp(b (log x - log e))), d = 1. "
                "ic50_relative = e (population value); each biological replicate's plates use "
                "replicate_e = e * exp(day effect), the day effect N(0, replicate_log_e_sd) "
                "shared by every curve of the line in that replicate (ratios between "
                "conditions are exact in every replicate); b, c, d fixed. "
                "ic50_absolute: dose at viability 0.5 (null: never crossed); ic50_reached: "
                "crossed within the tested doses. GR metrics from the true viability and the "
                "vehicle doublings over time_h (gr50: viability 0.75 ** doublings). Treated "
                "plates hold one cell population; vehicle wells (drug none, concentration 0) "
                "are dose 0 for every drug on the plate. Time-zero plates hold time0 wells of "
                "every condition of a line and replicate plus blanks; time-zero and treated "
                "plates have independent plate scales. Well positions are randomised per plate."
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


def simulate_plates_large(
    n_curves: int,
    seed: int = 279,
    curves_per_plate: int = 10,
    n_doses: int = 10,
    lowest_dose: float = 0.1,
):
    """Vectorised simulation of a screen of many T-DM1-like curves (benchmarks).

    Same readout model and noise as :func:`simulate_plates` (384-well plates,
    the BT474 signal levels, randomised positions, edge loss, plate scale),
    without time-zero plates, biological replicates or an outlier. Each
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
    noise = default_plates_design()["noise"]
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
            "role": pd.Categorical.from_codes(roles, list(ROLES)),
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
