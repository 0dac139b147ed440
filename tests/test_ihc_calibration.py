"""Calibration of the IHC intensity thresholds from reference scores (issue 16, item 3)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.inter_rater import cohens_kappa

from sepher.errors import InputError
from sepher.ihc.calibration import (
    CALIBRATION_COLUMNS,
    THRESHOLD_NAMES,
    SortedExcess,
    calibrate_thresholds,
    calibration_table,
    confusion_matrix,
    kappa_from_confusion,
    linear_weighted_kappa,
    result_from_table,
    rules_category,
)
from sepher.ihc.rules import ASCO_CAP_LABELS
from sepher.io.tables import read_table, write_table

#: Thresholds the synthetic reference scores are drawn from (not the defaults 0.10/0.20/0.35).
TRUE = {"weak": 0.08, "moderate": 0.17, "strong": 0.28}


def synthetic(n_images, seed, *, low=-0.02, high=0.45, sd=0.04, n_cells=300):
    """Cells of images with a spread of mean membrane excess; scores from TRUE via the rules."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n_images):
        mu = low + (high - low) * (i + rng.uniform(0.2, 0.8)) / n_images
        complete = rng.random(n_cells) < 0.85
        frames.append(
            pd.DataFrame(
                {
                    "image_id": f"im{i:03d}",
                    "tumour": rng.random(n_cells) < 0.9,
                    "membrane_dab_excess_od": rng.normal(mu, sd, n_cells),
                    "membrane_completeness": np.where(
                        complete, rng.uniform(0.85, 1.0, n_cells), rng.uniform(0.0, 0.6, n_cells)
                    ),
                }
            )
        )
    cells = pd.concat(frames, ignore_index=True)
    refs = {k: rules_category(g, TRUE) for k, g in cells.groupby("image_id")}
    return cells, refs


# --------------------------------------------------------------------------- kappa
def test_kappa_by_hand():
    # reference 0 0 1 1 2 3, predicted 0 1 1 1 3 3: two disagreements of one step,
    # observed weighted disagreement (1/3 + 1/3) = 2/3; margins rows 2 2 1 1, columns
    # 1 3 0 2, sum_ij r_i c_j |i - j| = 18 + 10 + 7 + 9 = 44, chance 44 / (3 * 6) = 22/9;
    # kappa = 1 - (2/3) / (22/9) = 8/11.
    ref, pred = [0, 0, 1, 1, 2, 3], [0, 1, 1, 1, 3, 3]
    assert linear_weighted_kappa(ref, pred) == pytest.approx(8 / 11, abs=1e-12)
    table = confusion_matrix(ref, pred)
    assert list(table.index) == list(ASCO_CAP_LABELS) == list(table.columns)
    assert table.to_numpy().sum() == 6 and table.loc["2+", "3+"] == 1
    assert linear_weighted_kappa([0, 1, 2, 3], [0, 1, 2, 3]) == 1.0
    # fully reversed ratings on 0 and 3: sum W*O = 2 * 1, chance (1*1*1 + 1*1*1) / 2 = 1
    assert linear_weighted_kappa([0, 3], [3, 0]) == pytest.approx(-1.0)
    # chance disagreement 0 (both raters constant and equal): undefined
    assert np.isnan(linear_weighted_kappa([2, 2], [2, 2]))


def test_kappa_matches_statsmodels():
    # statsmodels.stats.inter_rater.cohens_kappa(table, wt="linear"): Cicchetti-Allison weights
    rng = np.random.default_rng(3)
    for _ in range(20):
        ref = rng.integers(0, 4, 30)
        pred = np.clip(ref + rng.integers(-1, 2, 30), 0, 3)
        table = confusion_matrix(ref, pred).to_numpy()
        expected = cohens_kappa(table, wt="linear", return_results=False)
        assert kappa_from_confusion(table) == pytest.approx(expected, abs=1e-12)


# --------------------------------------------------------------------------- evaluator
def test_vectorised_evaluator_matches_rules():
    rng = np.random.default_rng(7)
    cells, refs = synthetic(12, seed=1, n_cells=120)
    # values exactly at the thresholds and at the completeness cut-offs, NaNs, no tumour
    grid = np.round(np.arange(0.0, 0.5, 0.01), 2)
    cells["membrane_dab_excess_od"] = np.round(cells["membrane_dab_excess_od"], 2)
    cells.loc[cells.index[::17], "membrane_completeness"] = 0.8
    cells.loc[cells.index[::19], "membrane_completeness"] = 0.1
    cells.loc[cells.index[::23], "membrane_dab_excess_od"] = np.nan
    cells.loc[cells.index[::29], "membrane_completeness"] = np.nan
    cells.loc[cells["image_id"] == "im003", "tumour"] = False
    ids = [*refs, "no_cells"]
    evaluator = SortedExcess(cells, ids, complete_fraction=0.8, max_fraction_for_0=0.10)
    by_image = dict(list(cells.groupby("image_id")))
    for trial in range(40):
        values = np.sort(rng.choice(grid, 3))
        if trial % 5 == 0:
            values[1] = values[0]  # the rules allow equal thresholds
        thresholds = dict(zip(THRESHOLD_NAMES, values, strict=True))
        for minimum in (0.0, 1.0):
            fast = evaluator.categories(thresholds, intense_minority_min_pct=minimum)
            slow = [
                rules_category(
                    by_image.get(i, cells.iloc[:0]), thresholds, intense_minority_min_pct=minimum
                )
                for i in ids
            ]
            assert fast.tolist() == slow
    assert evaluator.n_tumour[ids.index("im003")] == 0
    assert evaluator.n_tumour[-1] == 0


def test_search_finds_the_best_kappa():
    # brute force over a coarse grid: the fitted triple reaches the largest in-sample kappa
    cells, refs = synthetic(10, seed=5, n_cells=80)
    result = calibrate_thresholds(cells, refs, n_boot=0, grid_step=0.05, margin=0.05)
    ids = list(result.cv_table["image_id"])
    ref = result.cv_table["reference"].to_numpy()
    evaluator = SortedExcess(cells, ids)
    grid = np.round(np.arange(0.05, 0.60001, 0.05), 10)
    best = max(
        linear_weighted_kappa(ref, evaluator.categories(dict(zip(THRESHOLD_NAMES, t, strict=True))))
        for t in itertools.combinations(grid, 3)
    )
    fitted = evaluator.categories(result.thresholds)
    assert linear_weighted_kappa(ref, fitted) == pytest.approx(best, abs=1e-12)
    assert result.cv_table["fitted"].tolist() == fitted.tolist()


# --------------------------------------------------------------------------- fitting
def test_recovers_known_thresholds_within_interval():
    cells, refs = synthetic(36, seed=11)
    result = calibrate_thresholds(cells, refs, n_boot=60, seed=0)
    for name in THRESHOLD_NAMES:
        low, high = result.ci[name]
        assert low <= TRUE[name] <= high, (name, result.ci[name])
        assert low <= result.thresholds[name] <= high
        assert abs(result.thresholds[name] - TRUE[name]) <= 0.03
    assert result.thresholds["weak"] < result.thresholds["moderate"] < result.thresholds["strong"]
    assert result.cv_scheme == "stratified 5-fold"
    assert result.kappa_linear > 0.85
    assert len(result.bootstrap) == 60


def test_cross_validation_perfect_on_separated_data():
    rng = np.random.default_rng(2)
    frames, refs = [], {}
    for score, mu in enumerate((0.0, 0.13, 0.23, 0.45)):
        for k in range(3):
            image = f"s{score}_{k}"
            refs[image] = ASCO_CAP_LABELS[score]  # labels are accepted too
            frames.append(
                pd.DataFrame(
                    {
                        "image_id": image,
                        "membrane_dab_excess_od": rng.normal(mu, 0.01, 200),
                        "membrane_completeness": 1.0,
                    }
                )
            )
    cells = pd.concat(frames, ignore_index=True)
    result = calibrate_thresholds(cells, refs, n_boot=20)
    assert result.cv_scheme == "leave-one-out"
    assert result.exact == 1.0
    assert result.kappa_linear == pytest.approx(1.0)
    assert np.diag(result.confusion.to_numpy()).tolist() == [3, 3, 3, 3]
    assert (result.cv_table["predicted"] == result.cv_table["reference"]).all()


def test_unidentified_threshold_stays_at_default():
    # no 3+ reference: nothing bounds `strong` from above, so it keeps the literature value
    rng = np.random.default_rng(4)
    frames, refs = [], {}
    for score, mu in enumerate((0.0, 0.13, 0.25)):
        for k in range(2):
            image = f"s{score}_{k}"
            refs[image] = score
            frames.append(
                pd.DataFrame(
                    {
                        "image_id": image,
                        "membrane_dab_excess_od": rng.normal(mu, 0.01, 100),
                        "membrane_completeness": 1.0,
                    }
                )
            )
    cells = pd.concat(frames, ignore_index=True)
    defaults = {"weak": 0.10, "moderate": 0.20, "strong": 0.35}
    result = calibrate_thresholds(cells, refs, defaults=defaults, n_boot=10)
    assert result.thresholds["strong"] == pytest.approx(0.35)
    assert result.ci["strong"][1] == np.inf
    assert result.identified["strong"][1] == np.inf


def test_same_seed_same_bytes(tmp_path):
    cells, refs = synthetic(12, seed=8, n_cells=100)
    paths = []
    for run in range(2):
        result = calibrate_thresholds(cells, refs, n_boot=30, seed=5)
        path = tmp_path / f"run{run}.csv"
        write_table(calibration_table(result), path)
        paths.append(path)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    table = read_table(paths[0])
    assert list(table.columns) == list(CALIBRATION_COLUMNS)
    assert table["kind"].tolist() == ["threshold"] * 3 + ["agreement"] * 3 + ["confusion"] * 16
    assert table.loc[table["kind"] == "threshold", "name"].tolist() == list(THRESHOLD_NAMES)
    back = result_from_table(table)
    assert back.thresholds == pytest.approx(result.thresholds)
    assert back.confusion.equals(result.confusion)
    assert back.exact == pytest.approx(result.exact) and back.n_images == 12


def test_custom_categorise_is_used_for_held_out_images():
    cells, refs = synthetic(8, seed=9, n_cells=60)
    seen = []

    def categorise(image_cells, thresholds):
        seen.append(dict(thresholds))
        return 0

    result = calibrate_thresholds(cells, refs, n_boot=0, categorise=categorise)
    assert (result.cv_table["predicted"] == 0).all()
    assert len(seen) == 2 * len(refs)  # held out once (leave-one-out) + in sample once
    assert set(seen[0]) == set(THRESHOLD_NAMES)


# --------------------------------------------------------------------------- errors
def test_too_few_references():
    cells, refs = synthetic(8, seed=1, n_cells=30)
    three = dict(list(refs.items())[:3])
    with pytest.raises(InputError, match="at least 4 images with a reference score"):
        calibrate_thresholds(cells, three, n_boot=0)
    one_category = dict.fromkeys(list(refs)[:5], 2)
    with pytest.raises(InputError, match=r"at least 2 categories.*only 2\+.*none of 0, 1\+, 3\+"):
        calibrate_thresholds(cells, one_category, n_boot=0)
    with pytest.raises(InputError, match="reference_score.*'4\\+'"):
        calibrate_thresholds(cells, {**refs, "im000": "4+"}, n_boot=0)
    with pytest.raises(InputError, match="membrane_completeness"):
        calibrate_thresholds(cells.drop(columns="membrane_completeness"), refs, n_boot=0)


# --------------------------------------------------------------------------- figure
def test_plot_calibration(tmp_path):
    from sepher.figures.ihc_calibration_plot import image_summaries, plot_calibration
    from sepher.figures.style import house_style, is_stamped, save_figure

    cells, refs = synthetic(8, seed=2, n_cells=60)
    result = calibrate_thresholds(cells, refs, n_boot=10)
    summary = image_summaries(cells, refs)
    assert len(summary) == 8 and summary["reference"].is_monotonic_increasing
    assert (summary["p10"] <= summary["p50"]).all() and (summary["p50"] <= summary["p90"]).all()
    with house_style():
        fig = plot_calibration(result, cells, refs, simulated=True)
        assert is_stamped(fig)
        assert len(fig.axes) == 2
        assert "exact" in fig.axes[1].get_title()
        save_figure(fig, None, tmp_path / "calibration.png", dpi=100)
        again = plot_calibration(result_from_table(calibration_table(result)), cells, refs)
        assert not is_stamped(again)
    assert (tmp_path / "calibration.png").stat().st_size > 0
