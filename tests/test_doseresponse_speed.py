"""The dose-response fit rule's faster paths give the same bits as the paths they replace."""

import numpy as np
import pandas as pd
import pytest

from sepher.doseresponse import fit_curve, fit_many, manyfit
from sepher.doseresponse.models import CurveEvaluator, model_jacobian, model_response
from sepher.doseresponse.stage import curve_part

#: the 17 doses (µM) of the CTRP v2 curves (tests/data/doseresponse/ctrp_viability_40.tsv)
CTRP_DOSES = np.array([0, 0.0012, 0.0024, 0.0049, 0.0097, 0.019, 0.039, 0.078, 0.16, 0.31,
                       0.62, 1.2, 2.5, 5, 10, 20, 40])  # fmt: skip


@pytest.mark.parametrize("model", ["LL.4", "LL.3", "LL.5", "W1.4"])
def test_curve_evaluator_gives_the_bits_of_model_response_and_jacobian(model):
    rng = np.random.default_rng(18)
    n_params = 5 if model == "LL.5" else 4
    doses = np.concatenate([[0.0, 0.0], CTRP_DOSES[1:], rng.uniform(0, 100, 5)])
    curve = CurveEvaluator(model, doses)
    with np.errstate(all="ignore"):
        for _ in range(300):
            theta = np.array([
                rng.choice([-1, 1]) * 10 ** rng.uniform(-2, 2.5),  # b, steep and shallow
                rng.normal(0, 0.5),
                rng.normal(1, 0.5),
                10 ** rng.uniform(-8, 8),  # e far below and beyond the doses
                10 ** rng.uniform(-2, 2),
            ][:n_params])  # fmt: skip
            response = model_response(model, doses, theta)
            jac = model_jacobian(model, doses, theta)[1]
            assert curve.response(theta).tobytes() == response.tobytes()
            assert curve.jacobian(theta).tobytes() == jac.tobytes()
            free = [3, 0, 2] if n_params == 4 else [4, 1, 3]
            assert curve.jacobian(theta, free).tobytes() == jac[:, free].tobytes()


def test_fallback_fits_are_reused_only_for_the_same_data():
    rng = np.random.default_rng(7)
    y = 0.1 + 0.9 / (1 + (CTRP_DOSES / 0.3) ** 1.5) + rng.normal(0, 0.03, CTRP_DOSES.size)
    manyfit._FALLBACK_CACHE.clear()
    first = manyfit._fit_curve_cached(CTRP_DOSES, y, "LL.4", {})
    again = manyfit._fit_curve_cached(CTRP_DOSES, y, "LL.4", {})
    direct = fit_curve(CTRP_DOSES, y, model="LL.4")
    assert len(manyfit._FALLBACK_CACHE) == 1
    for got in (first, again):
        assert got.params == direct.params and got.rss == direct.rss
        assert got.converged == direct.converged and got.flags == direct.flags
    again.flags.append("changed by the caller")  # a copy: the stored result is untouched
    assert manyfit._fit_curve_cached(CTRP_DOSES, y, "LL.4", {}).flags == direct.flags
    other = y.copy()
    other[5] += 1e-12
    manyfit._fit_curve_cached(CTRP_DOSES, other, "LL.4", {})
    manyfit._fit_curve_cached(CTRP_DOSES, y, "LL.4", {"d": 1.0})
    assert len(manyfit._FALLBACK_CACHE) == 3


def test_fit_many_from_memory_is_the_same_fit(reference_data):
    """A fallback fit and a whole batch fit made again come from memory: the same bits."""
    ctrp = pd.read_csv(reference_data("doseresponse/ctrp_viability_40.tsv"), sep="\t")
    responses = ctrp.iloc[[406, 200], 1:].to_numpy(float)  # 406: a fallback fit
    doses = np.broadcast_to(CTRP_DOSES, responses.shape).copy()
    manyfit._FALLBACK_CACHE.clear()
    manyfit._FIT_CACHE.clear()
    first = fit_many(doses, responses)
    assert first.fallback[0] and len(manyfit._FALLBACK_CACHE) == 1
    manyfit._FIT_CACHE.clear()  # the batch fit again, its fallback from memory
    second = fit_many(doses, responses)
    assert len(manyfit._FALLBACK_CACHE) == 1
    # the same call again, used mask given: the whole fit from memory (a copy)
    third = fit_many(doses, responses, np.ones(doses.shape, bool))
    assert len(manyfit._FIT_CACHE) == 1
    third.flags[0].append("changed by the caller")
    fourth = fit_many(doses, responses)
    for other in (second, fourth):
        for name in ("theta", "rss", "covariance", "converged", "aic", "flat_pvalue"):
            assert getattr(first, name).tobytes() == getattr(other, name).tobytes(), name
        assert first.flags == other.flags
    # other data or arguments: not from memory
    fit_many(doses, responses, model="LL.3")
    fit_many(doses, responses + 1e-9)
    assert len(manyfit._FIT_CACHE) == 3


def _one_line_screen():
    """A small simulated one-line screen: 4 drugs, 2 conditions, 2 replicates of one."""
    import warnings

    from sepher.doseresponse.stage import normalise_plates
    from sepher.simulate.plates import simulate_plates_large

    plates, _ = simulate_plates_large(12, seed=5, curves_per_plate=4, n_doses=6)
    text = ("plate_id", "well", "cell_line", "condition", "drug", "concentration_unit", "role")
    plates = plates.astype(dict.fromkeys(text, str))
    plate_no = plates["plate_id"].str[-1].astype(int)
    plates["cell_line"] = "CL1"
    plates["condition"] = np.where(plate_no == 3, "T-R", "parental")
    plates["replicate"] = np.where(plate_no == 2, 2, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        viability, _ = normalise_plates(plates)
    return viability


def _run_fit_rule(viability_csv, out_dir, part=None, n_parts=None):
    """scripts/doseresponse_fit.py as the rule runs it (a stand-in snakemake object)."""
    import runpy

    from sepher.workflow import MockSnakemake

    from .conftest import PROJECT

    params = {
        "model": "LL.4", "candidate_models": ["LL.4", "LL.3"], "outliers": "rout",
        "outlier_q": 0.01, "robust_loss": "soft_l1", "ed_levels": [10, 50, 90],
        "conf_level": 0.95, "fit_replicates": True,
    }  # fmt: skip
    if n_parts is not None:
        params.update(part=part, n_parts=n_parts)
    names = {"fits": "fits.csv", "by_replicate": "fits_by_replicate.csv",
             "residuals": "residuals.csv", "curves": "curves.csv"}  # fmt: skip
    outputs = {key: str(out_dir / name) for key, name in names.items()}
    out_dir.mkdir(parents=True, exist_ok=True)
    smk = MockSnakemake.build(input={"viability": str(viability_csv)}, output=outputs,
                              params=params)  # fmt: skip
    runpy.run_path(str(PROJECT / "scripts" / "doseresponse_fit.py"),
                   init_globals={"snakemake": smk}, run_name="__main__")  # fmt: skip
    return outputs


def test_fit_parts_join_to_the_bytes_of_one_job(tmp_path):
    """A one-line screen fitted in 2 or 3 parts: the same tables, byte for byte."""
    from sepher.io.tables import concat_tables, write_table

    viability_csv = tmp_path / "viability.csv"
    write_table(_one_line_screen(), viability_csv)
    whole = _run_fit_rule(viability_csv, tmp_path / "whole")
    n_curves = sum(1 for _ in open(whole["fits"])) - 1
    assert n_curves == 8
    for n_parts in (2, 3):
        parts = [
            _run_fit_rule(viability_csv, tmp_path / f"n{n_parts}" / f"p{k}", k, n_parts)
            for k in range(n_parts)
        ]
        for key, path in whole.items():
            joined = tmp_path / f"n{n_parts}" / f"{key}.csv"
            concat_tables([part[key] for part in parts], joined)
            assert joined.read_bytes() == open(path, "rb").read(), (n_parts, key)


def test_curve_part_cuts_the_curves_in_order_with_their_plates_neighbours():
    viability = _one_line_screen()
    keys = ["cell_line", "condition", "drug"]
    treated = viability[viability["role"] == "treated"]
    curves = treated[keys].drop_duplicates().sort_values(keys)
    got = []
    for part in range(3):
        rows = curve_part(viability, part, 3)
        assert (rows["role"] != "treated").sum() == (viability["role"] != "treated").sum()
        mine = rows[rows["role"] == "treated"][keys].drop_duplicates().sort_values(keys)
        got.append(mine)
        # neighbours: every curve with a treated well on the part's plates
        wider = curve_part(viability, part, 3, context=True)
        plates = set(rows.loc[rows["role"] == "treated", "plate_id"])
        expect = treated[treated["plate_id"].isin(plates)][keys].drop_duplicates()
        wide = wider[wider["role"] == "treated"][keys].drop_duplicates()
        assert set(map(tuple, wide.to_numpy())) == set(map(tuple, expect.to_numpy()))
    assert [len(g) for g in got] == [2, 3, 3]  # contiguous runs of nearly equal length
    assert pd.concat(got).to_numpy().tolist() == curves.to_numpy().tolist()
    empty = curve_part(viability, 0, 9)  # more parts than curves: some are empty
    assert (empty["role"] != "treated").all()
    with pytest.raises(ValueError, match="part 3 of 3"):
        curve_part(viability, 3, 3)
