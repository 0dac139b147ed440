"""Fast unit tests of the figure helpers that need no drawing: labels and wording."""

from __future__ import annotations

import pytest

from sepher.figures import labels
from sepher.formatting import format_p


@pytest.mark.parametrize(
    ("line", "word"),
    [
        (1, "first"),
        (2, "second"),
        (3, "third"),
        (4, "fourth"),
        (10, "tenth"),
        (11, "11th"),
        (12, "12th"),
        (13, "13th"),
        (21, "21st"),
        (22, "22nd"),
        (23, "23rd"),
        (24, "24th"),
        (101, "101st"),
        (111, "111th"),
        (112, "112th"),
        (122, "122nd"),
    ],
)
def test_line_ordinal(line, word):
    assert labels.line_ordinal(line) == word


@pytest.mark.parametrize("line", [0, -1, 2.5, True])
def test_line_ordinal_rejects_non_lines(line):
    with pytest.raises(ValueError, match="integer >= 1"):
        labels.line_ordinal(line)


def test_line_adjective():
    assert labels.line_adjective(2) == "second-line"
    assert labels.line_adjective(1) == "first-line"
    assert labels.line_adjective(23) == "23rd-line"


def test_endpoint_name_follows_line():
    assert labels.endpoint_name("PFS2", tdm1_line=2) == "PFS on second-line T-DM1"
    assert labels.endpoint_name("PFS2", tdm1_line=3) == "PFS on third-line T-DM1"
    assert labels.endpoint_name("OS", tdm1_line=3) == "Overall survival"
    assert labels.endpoint_name("DFS", tdm1_line=2) == "DFS"


def test_endpoint_names_default_and_subset():
    assert labels.endpoint_names(4) == {
        "OS": "Overall survival",
        "PFS2": "PFS on fourth-line T-DM1",
    }
    assert labels.endpoint_names(2, ["PFS2"]) == {"PFS2": "PFS on second-line T-DM1"}


# --------------------------------------------------------------------------- p-values
@pytest.mark.parametrize(
    ("p", "text"),
    [
        (0.0504, "p = 0.050"),  # never "0.05": two significant digits, zeros kept
        (0.03, "p = 0.030"),
        (0.0312, "p = 0.031"),
        (0.00343, "p = 0.0034"),
        (0.00059, "p = 0.00059"),
        (0.0006, "p = 0.00060"),
        (0.5, "p = 0.50"),
        (0.0995, "p = 0.10"),
        (0.99, "p = 0.99"),
        (0.995, "p > 0.99"),
        (1.0, "p > 0.99"),
        (1e-4, "p = 0.00010"),
        (9.9e-5, "p < 0.0001"),
        (2e-7, "p < 0.0001"),
        (float("nan"), "p = NA"),
        (None, "p = NA"),
        (float("inf"), "p = NA"),
    ],
)
def test_format_p(p, text):
    assert format_p(p) == text


@pytest.mark.parametrize(
    ("p", "text"),
    [(0.0504, "0.050"), (3e-9, "< 0.0001"), (0.999, "> 0.99"), (float("nan"), "NA")],
)
def test_format_p_bare(p, text):
    assert format_p(p, prefix="") == text


def test_format_p_prefix():
    assert format_p(0.0312, prefix="Log-rank p") == "Log-rank p = 0.031"


def test_one_p_formatter():
    """Figures and report print p-values with the same function."""
    from sepher.figures import km_plot, tables
    from sepher.report import numbers

    assert km_plot.format_p is format_p
    assert tables.format_p is format_p
    assert numbers.format_p is format_p


# --------------------------------------------------------------------------- the palette
def test_every_condition_and_group_has_its_fixed_colour():
    from sepher.figures import style

    ids = ["parental", "T-R", "TP-R", "T-R>T", "T-R>P", "T-R>T+P"]
    assert list(style.CONDITION_COLOURS) == ids
    assert style.group_colours(ids) == style.CONDITION_COLOURS
    # reordering or a subset never changes a condition's colour (one meaning in every figure)
    assert style.group_colours(["T-R>T+P", "TP-R"]) == {
        "T-R>T+P": style.OKABE_ITO["orange"],
        "TP-R": style.OKABE_ITO["vermillion"],
    }
    assert style.study_colour("t-r>t") == style.OKABE_ITO["bluish_green"]
    assert style.study_colour("T-R>P") == style.OKABE_ITO["reddish_purple"]
    assert style.study_colour("parental") == style.PARENTAL_GREY
    assert style.study_colour("pre") == style.OKABE_ITO["sky_blue"]
    # the documented synonyms: trastuzumab only / pertuzumab-exposed
    assert style.study_colour("Pertuzumab-naive") == style.study_colour("T-R")
    assert (
        style.study_colour("Pertuzumab-pretreated")
        == style.study_colour("TP-R")
        == style.study_colour("post")
    )
    assert style.study_colour("HER2") is None


def test_no_colour_has_two_meanings_except_documented_synonyms():
    from sepher.figures import style

    table = style.palette_table()
    assert set(table["key"]) == set(style.PALETTE_TABLE)
    for colour, rows in table.groupby(table["colour"].str.lower()):
        if len(rows) == 1:
            continue
        groups = set(rows["synonym_of"])
        assert groups != {""} and len(groups) == 1, (colour, list(rows["key"]))
        assert set(rows["key"]) == set(style.SYNONYMS[groups.pop()]), colour
    # every synonym group names keys of the table that do share one colour
    for name, keys in style.SYNONYMS.items():
        assert {style.PALETTE_TABLE[k][1] for k in keys} == {style.PALETTE_TABLE[keys[0]][1]}, name
    # the QC alert colour means nothing else
    assert (table["colour"] == style.ALERT).sum() == 1


@pytest.mark.parametrize(
    ("label", "line"),
    [
        ("2nd", 2),
        ("2nd line", 2),
        ("3rd line", 3),
        ("4th+", 4),
        (">=4th", 4),
        ("\u22654th line", 4),
        ("Fourth line or later", 4),
        ("First line", 1),
        ("line 3", 3),
        ("3", None),
        ("patient 2", None),
        ("TP-R", None),
    ],
)
def test_line_of_therapy_labels(label, line):
    from sepher.figures import style

    assert style.line_of_therapy(label) == line


def test_lines_of_therapy_are_greys_told_apart_by_line_style():
    from matplotlib.colors import to_rgb

    from sepher.figures import style

    shown = ["2nd line", "3rd line", "4th+ line"]
    colours = style.group_colours(shown)
    styles = style.group_linestyles(shown)
    assert len(set(colours.values())) == 3 and len(set(map(str, styles.values()))) == 3
    for colour in colours.values():
        r, g, b = to_rgb(colour)
        assert r == g == b  # black or grey: no hue that means a group or condition
    assert styles["2nd line"] == "-"
    assert style.study_linestyle("TP-R") == "-"
    # the greys differ in lightness enough to be read in the legend (CIEDE2000)
    assert style.colour_difference(colours["2nd line"], colours["3rd line"]) >= style.MIN_DELTA_E
    assert style.colour_difference(colours["3rd line"], colours["4th+ line"]) >= style.MIN_DELTA_E


def test_deuteranopia_simulation_follows_machado():
    import numpy as np

    from sepher.figures import style

    # greys are unchanged (each row of the Machado et al. 2009 matrix sums to 1)
    np.testing.assert_allclose(style.simulate_deuteranopia("#808080"), 128 / 255, atol=1e-3)
    # pure red: linear RGB -> the matrix's first column (clipped at 0), re-encoded as sRGB
    seen = style.simulate_deuteranopia("#FF0000")
    linear = np.where(seen <= 0.04045, seen / 12.92, ((seen + 0.055) / 1.055) ** 2.4)
    np.testing.assert_allclose(linear, [0.367322, 0.280085, 0.0], atol=1e-6)
    # red and green, far apart for trichromats, come close for a deuteranope
    normal = style.colour_difference("#FF0000", "#00A000")
    deutan = style.colour_difference("#FF0000", "#00A000", deuteranopia=True)
    assert normal > 50 and deutan < normal / 2


def test_condition_colours_stay_apart_for_a_deuteranope():
    """Every pair of condition colours differs by CIEDE2000 >= 10, also simulated deuteranopia."""
    import itertools

    from sepher.figures import style

    assert style.MIN_DELTA_E == 10.0
    families = [
        style.CONDITION_COLOURS,
        style.PATIENT_GROUP_COLOURS,
        style.BIOPSY_COLOURS,
        style.HER2_CLASS_COLOURS,
    ]
    for family in families:
        for (a, ca), (b, cb) in itertools.combinations(family.items(), 2):
            for deuteranopia in (False, True):
                delta = style.colour_difference(ca, cb, deuteranopia=deuteranopia)
                assert delta >= style.MIN_DELTA_E, (a, b, deuteranopia, round(delta, 1))


def test_figure_modules_take_their_colours_from_the_palette():
    """No figure module hard-codes a palette colour: each reads style's table."""
    import re

    from sepher.figures import style

    from .conftest import PROJECT

    palette = {c.lower() for c in style.OKABE_ITO.values()} - {"#000000"}
    palette |= {style.PARENTAL_GREY.lower(), style.ALERT.lower()} - {style.GREY.lower()}
    for path in sorted((PROJECT / "scripts" / "sepher" / "figures").glob("*.py")):
        if path.name == "style.py":
            continue
        found = {h.lower() for h in re.findall(r"#[0-9A-Fa-f]{6}\b", path.read_text())}
        assert not found & palette, (path.name, sorted(found & palette))


# --------------------------------------------------------------------------- dose-response text
def test_adjusted_p_is_labelled_as_adjusted_and_names_the_test():
    import pandas as pd

    from sepher.figures import doseresponse_plots as dp
    from sepher.report import numbers

    assert dp.ADJUSTED_P_LABELS == numbers.ADJUSTED_P_LABELS  # figures and captions agree
    row = pd.Series(
        {
            "numerator": "TP-R",
            "denominator": "T-R",
            "ratio": 4.67,
            "lower": 3.17,
            "upper": 6.18,
            "test": "paired t",
            "n_replicates_numerator": 3,
            "n_replicates_denominator": 3,
            "n_pairs": 3,
            "p": 0.004,
            "p_adjusted": 0.012,
            "multiplicity": "holm",
        }
    )
    text = dp.comparison_text(row)
    assert text == (
        "TP-R/T-R IC50 ratio 4.67 (3.17\u20136.18); paired t on log IC50, 3 replicate pairs; "
        "Holm-adjusted p = 0.012"
    )
    welch = row.copy()
    welch["test"], welch["n_replicates_denominator"], welch["multiplicity"] = "Welch t", 4, "bh"
    assert "Welch t on log IC50, 3 vs 4 replicates; BH-adjusted p = 0.012" in dp.comparison_text(
        welch
    )
    # an old (well-level) table has no adjusted p: its p is printed as unadjusted
    old = row.drop(["p_adjusted", "multiplicity", "test"])
    assert dp.comparison_p_text(old) == "unadjusted p = 0.0040"


def test_replicate_summary_is_a_t_interval_over_replicates():
    import numpy as np
    from scipy import stats

    from sepher.figures.doseresponse_plots import replicate_summary, summary_text

    values = [30.0, 35.0, 42.0]
    s = replicate_summary(values, 0.95, log=True)
    logs = np.log(values)
    half = stats.t.ppf(0.975, 2) * logs.std(ddof=1) / np.sqrt(3)
    assert s["n"] == 3
    np.testing.assert_allclose(
        [s["mean"], s["lower"], s["upper"]],
        np.exp([logs.mean(), logs.mean() - half, logs.mean() + half]),
    )
    a = replicate_summary([-0.2, -0.4, -0.3, np.nan], 0.9)
    assert a["n"] == 3 and a["mean"] == pytest.approx(-0.3)
    assert summary_text(a) == f"-0.30 ({a['lower']:.2f} to {a['upper']:.2f})"
    assert summary_text(replicate_summary([21.3], 0.95), "{:.1f}") == "21.3 (n = 1)"
    assert replicate_summary([], 0.95)["n"] == 0
