"""ASCO/CAP 2018 and 2023 HER2 IHC rules and the standard H-score, case by case."""

import numpy as np
import pandas as pd
import pytest

from sepher.ihc import biopsy, rules
from sepher.ihc.biopsy import score_biopsies, score_biopsy
from sepher.ihc.rules import (
    asco_cap_2018,
    classify_cells,
    her2_2023,
    intensity_levels,
    standard_h_score,
)

THRESHOLDS = {"weak": 0.1, "moderate": 0.2, "strong": 0.35}


def _pct(intense=0.0, weak_moderate=0.0, unusual=0.0, stained=None):
    """Biopsy percentages; ``stained`` (class >= 1) defaults to the sum of the others."""
    if stained is None:
        stained = intense + weak_moderate + unusual
    return {
        "pct_complete_intense": intense,
        "pct_complete_weak_moderate": weak_moderate,
        "pct_unusual_pattern": unusual,
        "pct_any_staining": stained,
    }


def test_labels_are_shared():
    assert biopsy.ASCO_CAP_LABELS is rules.ASCO_CAP_LABELS
    assert rules.ASCO_CAP_LABELS == ("0", "1+", "2+", "3+")
    assert (rules.DEFAULT_WEAK, rules.DEFAULT_MODERATE, rules.DEFAULT_STRONG) == (0.10, 0.20, 0.35)


def test_intensity_levels_at_the_thresholds_and_nan():
    excess = [np.nan, -0.3, 0.0999, 0.1, 0.1999, 0.2, 0.3499, 0.35, 2.0]
    levels = intensity_levels(excess, **THRESHOLDS)
    assert levels.dtype == np.int8
    assert levels.tolist() == [0, 0, 0, 1, 1, 2, 2, 3, 3]
    # the module defaults are the ones named in rules.py
    assert intensity_levels(excess).tolist() == levels.tolist()
    with pytest.raises(ValueError, match="weak <= moderate <= strong"):
        intensity_levels(excess, weak=0.3, moderate=0.2, strong=0.4)


@pytest.mark.parametrize(
    ("excess", "completeness", "level", "complete", "her2_class", "unusual"),
    [
        # 3+: complete and intense
        (0.50, 1.00, 3, True, 3, False),
        (0.35, 0.80, 3, True, 3, False),  # exactly complete_fraction, exactly strong
        # 2+: complete and weak-to-moderate
        (0.25, 0.90, 2, True, 2, False),
        # 1+: complete but faint (barely perceptible) is 1+, not 2+
        (0.15, 1.00, 1, True, 1, False),
        # 1+: intense but incomplete -> 1+ and an unusual pattern
        (0.60, 0.50, 3, False, 1, True),
        (0.60, 0.79, 3, False, 1, True),
        # 1+: moderate incomplete (basolateral / U-shaped) -> unusual pattern too
        (0.25, 0.40, 2, False, 1, True),
        # 1+: faint incomplete
        (0.12, 0.30, 1, False, 1, False),
        # 0: stained over <= 10 % of the circumference, whatever the intensity
        (0.60, 0.10, 3, False, 0, False),
        (0.60, 0.11, 3, False, 1, True),
        # 0: no staining (level 0) even over the whole circumference
        (0.05, 1.00, 0, False, 0, False),
        # NaN: no band -> level 0, class 0; NaN completeness -> 0
        (np.nan, 1.00, 0, False, 0, False),
        (0.50, np.nan, 3, False, 0, False),
    ],
)
def test_classify_cells_per_cell_rules(excess, completeness, level, complete, her2_class, unusual):
    out = classify_cells([excess], [completeness], **THRESHOLDS)
    assert list(out.columns) == [
        "membrane_intensity_level",
        "complete",
        "her2_class",
        "unusual_pattern",
    ]
    row = out.iloc[0]
    assert row["membrane_intensity_level"] == level
    assert bool(row["complete"]) is complete
    assert row["her2_class"] == her2_class
    assert bool(row["unusual_pattern"]) is unusual


def test_classify_cells_dtypes_and_shape_check():
    out = classify_cells(np.array([0.5, 0.0]), np.array([1.0, 0.0]))
    assert out["membrane_intensity_level"].dtype == np.int8
    assert out["her2_class"].dtype == np.int8
    assert out["complete"].dtype == bool and out["unusual_pattern"].dtype == bool
    with pytest.raises(ValueError, match="shape"):
        classify_cells([0.5, 0.2], [1.0])


def test_asco_cap_3plus_above_10_percent():
    assert asco_cap_2018(_pct(intense=10.01))[0] == 3
    category, rule = asco_cap_2018(_pct(intense=80, weak_moderate=10))
    assert category == 3 and rule.startswith("3+: complete intense")
    # exactly 10 % intense is not 3+ (it is the intense minority: 2+)
    category, rule = asco_cap_2018(_pct(intense=10.0))
    assert category == 2 and "present" in rule


def test_asco_cap_2plus_complete_weak_to_moderate():
    category, rule = asco_cap_2018(_pct(weak_moderate=10.01))
    assert category == 2 and rule.startswith("2+: complete weak-to-moderate")
    # exactly 10 %: not > 10 % (and not a 1+ either, since stained cells are 10 %)
    assert asco_cap_2018(_pct(weak_moderate=10.0)) == (0, rules.RULE_0.format(cutoff=10))
    # intense complete cells count with the weak-to-moderate ones: 6 + 5 > 10
    category, rule = asco_cap_2018(_pct(intense=5, weak_moderate=6))
    assert category == 2 and rule.startswith("2+: complete weak-to-moderate")
    # the cut-off is a parameter
    assert asco_cap_2018(_pct(weak_moderate=15, stained=25), cutoff_pct=20)[0] == 1


def test_asco_cap_2plus_intense_minority():
    # 5 % intense complete, the rest unstained: 2+ by the intense minority
    category, rule = asco_cap_2018(_pct(intense=5))
    assert category == 2 and rule.startswith("2+: complete intense membrane staining present")
    # 0.5 % is below intense_minority_min_pct (1 %): not "present"
    assert asco_cap_2018(_pct(intense=0.5))[0] == 0
    assert asco_cap_2018(_pct(intense=0.5, stained=30))[0] == 1
    # at exactly the minimum it counts; 0 makes any intense cell count
    assert asco_cap_2018(_pct(intense=1.0))[0] == 2
    assert asco_cap_2018(_pct(intense=0.5), intense_minority_min_pct=0.0)[0] == 2
    assert asco_cap_2018(_pct(intense=0.0), intense_minority_min_pct=0.0)[0] == 0
    assert asco_cap_2018(_pct(intense=5), intense_minority_min_pct=6.0)[0] == 0


def test_asco_cap_2plus_unusual_pattern():
    category, rule = asco_cap_2018(_pct(unusual=10.01))
    assert category == 2 and rule.startswith("2+: unusual pattern")
    # exactly 10 % unusual with other faint cells: 1+ (stained > 10 %)
    category, rule = asco_cap_2018(_pct(unusual=10.0, stained=25.0))
    assert category == 1 and rule.startswith("1+")


def test_asco_cap_1plus_and_0():
    category, rule = asco_cap_2018(_pct(stained=10.01))
    assert category == 1 and rule.startswith("1+: faint or incomplete")
    category, rule = asco_cap_2018(_pct(stained=10.0))
    assert category == 0 and rule.startswith("0: no membrane staining")
    assert asco_cap_2018(_pct())[0] == 0


def test_asco_cap_without_tumour_cells_and_missing_keys():
    nan = float("nan")
    assert asco_cap_2018(_pct(nan, nan, nan, nan)) == (0, rules.RULE_0_EMPTY)
    with pytest.raises(KeyError, match="pct_unusual_pattern"):
        asco_cap_2018({"pct_complete_intense": 1, "pct_complete_weak_moderate": 1})


@pytest.mark.parametrize(
    ("asco_cap", "pct_any", "expected"),
    [
        (3, 95.0, "HER2-positive"),
        (2, 40.0, "HER2-equivocal (reflex ISH)"),
        (1, 60.0, "HER2-low"),
        # post-treatment 0 with 4 % faint cells: ultralow (DESTINY-Breast06)
        (0, 4.0, "HER2-ultralow"),
        (0, 10.0, "HER2-ultralow"),
        (0, 1.0, "HER2-ultralow"),
        # one stray cell in 200 is not staining
        (0, 0.5, "HER2-null"),
        (0, 0.0, "HER2-null"),
        (0, float("nan"), "HER2-null"),
    ],
)
def test_her2_2023_categories(asco_cap, pct_any, expected):
    assert her2_2023(asco_cap, pct_any) == expected
    assert expected in rules.HER2_2023_LABELS


def test_her2_2023_ultralow_minimum_and_bad_category():
    assert her2_2023(0, 0.5, ultralow_min_pct=0.0) == "HER2-ultralow"
    assert her2_2023(0, 0.0, ultralow_min_pct=0.0) == "HER2-null"
    with pytest.raises(ValueError, match="0, 1, 2 or 3"):
        her2_2023(4, 0.0)


def test_standard_h_score_against_a_hand_count():
    # 3 none, 4 faint, 2 weak-to-moderate, 1 intense of 10 cells:
    # 1 x 40 % + 2 x 20 % + 3 x 10 % = 110
    levels = [0, 3, 1, 0, 2, 1, 1, 0, 2, 1]
    assert standard_h_score(levels) == pytest.approx(110.0)
    assert standard_h_score([3] * 7) == pytest.approx(300.0)
    assert standard_h_score([0, 0]) == 0.0
    assert np.isnan(standard_h_score([]))
    with pytest.raises(ValueError, match="0, 1, 2 or 3"):
        standard_h_score([0, 4])


def _cells(groups, n=1000):
    """A biopsy of ``n`` tumour cells: ``groups`` maps (excess, completeness) -> count."""
    excess, completeness = [], []
    for (value, fraction), count in groups.items():
        excess += [value] * count
        completeness += [fraction] * count
    rest = n - len(excess)
    excess += [0.0] * rest
    completeness += [0.0] * rest
    table = pd.DataFrame({"membrane_dab_excess_od": excess, "membrane_completeness": completeness})
    classes = classify_cells(excess, completeness, **THRESHOLDS)
    return pd.concat([table, classes], axis=1).assign(tumour=True)


def test_score_biopsy_ultralow_post_treatment_zero():
    # 4 % faint incomplete cells, the rest unstained
    out = score_biopsy(_cells({(0.15, 0.5): 40}))
    assert out["asco_cap"] == 0 and out["asco_cap_label"] == "0"
    assert out["asco_cap_rule"].startswith("0:")
    assert out["her2_2023"] == "HER2-ultralow"
    assert out["reflex_ish"] is False
    assert out["pct_any_staining"] == pytest.approx(4.0)
    assert out["pct_faint"] == pytest.approx(4.0)
    # standard H-score: not gated on completeness (1 x 4 %)
    assert out["h_score"] == pytest.approx(4.0)
    assert out["pct_complete"] == 0.0
    assert score_biopsy(_cells({}))["her2_2023"] == "HER2-null"
    # 0.5 % faint: below ultralow_min_pct
    assert score_biopsy(_cells({(0.15, 0.5): 5}))["her2_2023"] == "HER2-null"
    assert score_biopsy(_cells({(0.15, 0.5): 5}), ultralow_min_pct=0.0)["her2_2023"] == (
        "HER2-ultralow"
    )


def test_score_biopsy_2plus_reflex_ish_and_keys():
    # 15 % weak-to-moderate complete, 5 % faint complete, 10 % intense incomplete
    cells = _cells({(0.25, 1.0): 150, (0.15, 1.0): 50, (0.5, 0.5): 100})
    out = score_biopsy(cells)
    assert out["asco_cap"] == 2 and out["reflex_ish"] is True
    assert out["her2_2023"] == "HER2-equivocal (reflex ISH)"
    assert out["asco_cap_rule"].startswith("2+: complete weak-to-moderate")
    assert out["pct_complete"] == pytest.approx(20.0)
    assert out["pct_complete_weak_moderate"] == pytest.approx(15.0)
    assert out["pct_complete_intense"] == 0.0
    assert out["pct_unusual_pattern"] == pytest.approx(10.0)
    assert (out["pct_faint"], out["pct_weak_moderate"], out["pct_intense"]) == pytest.approx(
        (5.0, 15.0, 10.0)
    )
    # 1 x 5 + 2 x 15 + 3 x 10 = 65
    assert out["h_score"] == pytest.approx(65.0)
    assert out["pct_any_staining"] == pytest.approx(30.0)
    assert [out[f"n_{k}"] for k in range(4)] == [700, 150, 150, 0]


def test_score_biopsy_intense_minority_and_unusual_pattern():
    out = score_biopsy(_cells({(0.5, 1.0): 50}))  # 5 % intense complete
    assert out["asco_cap"] == 2 and "present" in out["asco_cap_rule"]
    out = score_biopsy(_cells({(0.5, 1.0): 5}))  # 0.5 %
    assert out["asco_cap"] == 0 and out["her2_2023"] == "HER2-null"
    out = score_biopsy(_cells({(0.5, 1.0): 50}), intense_minority_min_pct=6.0)
    assert out["asco_cap"] == 0 and out["her2_2023"] == "HER2-ultralow"
    out = score_biopsy(_cells({(0.5, 0.5): 101}))  # 10.1 % intense incomplete
    assert out["asco_cap"] == 2 and out["asco_cap_rule"].startswith("2+: unusual pattern")
    out = score_biopsy(_cells({(0.5, 0.5): 100}))  # exactly 10 %
    assert out["asco_cap"] == 0


def test_score_biopsy_tumour_cells_only_and_none():
    cells = _cells({(0.5, 1.0): 200})
    cells.loc[:199, "tumour"] = False  # the stained cells are stroma
    out = score_biopsy(cells)
    assert out["n_cells"] == 1000 and out["n_tumour_cells"] == 800
    assert out["asco_cap"] == 0 and out["h_score"] == 0.0
    out = score_biopsy(cells.assign(tumour=False))
    assert out["n_tumour_cells"] == 0 and np.isnan(out["h_score"])
    assert np.isnan(out["pct_any_staining"])
    assert out["asco_cap_rule"] == rules.RULE_0_EMPTY and out["her2_2023"] == "HER2-null"


def test_score_biopsy_old_table_without_levels():
    # old cells tables: her2_class stands in for the level
    old = pd.DataFrame({"her2_class": [0] * 95 + [3] * 5})
    out = score_biopsy(old)
    assert out["h_score"] == pytest.approx(15.0)
    assert out["pct_complete_intense"] == pytest.approx(5.0)
    assert out["asco_cap"] == 2 and out["reflex_ish"] is True
    # NaN levels (old rows concatenated with new ones) fall back to the class as well
    mixed = old.assign(membrane_intensity_level=[np.nan] * 50 + [0] * 50)
    assert score_biopsy(mixed)["pct_intense"] == pytest.approx(0.0)


def test_score_biopsies_passes_the_settings_through():
    cells = pd.concat(
        [
            _cells({(0.5, 1.0): 50}).assign(patient_id="P1", timepoint="pre"),
            _cells({(0.15, 0.5): 5}).assign(patient_id="P1", timepoint="post"),
        ],
        ignore_index=True,
    )
    default = score_biopsies(cells).set_index("timepoint")
    assert default.loc["pre", "asco_cap"] == 2
    assert default.loc["post", "her2_2023"] == "HER2-null"
    strict = score_biopsies(cells, intense_minority_min_pct=6.0, ultralow_min_pct=0.0)
    strict = strict.set_index("timepoint")
    assert strict.loc["pre", "asco_cap"] == 0
    assert strict.loc["post", "her2_2023"] == "HER2-ultralow"
