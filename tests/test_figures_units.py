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
