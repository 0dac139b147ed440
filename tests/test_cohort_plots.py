"""Figures of issue 14: Love plot, propensity overlap, subgroup forest, PFS labels.

Inputs are small hand-made frames and tables derived from lifelines' real
GBSG2 data (686 patients) with statsmodels / lifelines estimators, in the
column formats of ``results/survival/{balance,subgroups}.csv``. The figures
are checked on their artists: what is drawn where, which text is printed,
and that no two texts overlap or leave the canvas.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import statsmodels.api as sm  # noqa: E402
from lifelines import CoxPHFitter  # noqa: E402
from lifelines.datasets import load_gbsg2  # noqa: E402
from lifelines.statistics import logrank_test  # noqa: E402

from sepher.figures import cohort_plots, forest, km_plot, style  # noqa: E402
from sepher.formatting import format_p  # noqa: E402

from .test_figures import (  # noqa: E402
    DAYS_PER_MONTH,
    _all_texts,
    _inside_figure,
    _overlaps,
    _stamped,
    _unwrap,
    cox_table,
)
from .test_figures import km_inputs as lifelines_km  # noqa: E402

GROUPS = {"no": "Pertuzumab-naive", "yes": "Pertuzumab-pretreated"}


@pytest.fixture
def in_style():
    with style.house_style(style.DEFAULT_STYLE):
        yield
    plt.close("all")


@pytest.fixture(scope="module")
def gbsg2():
    df = load_gbsg2()
    df["months"] = df["time"] / DAYS_PER_MONTH
    return df


# --------------------------------------------------------------------------- GBSG2 inputs
COVARIATES = ["age", "menostat", "tsize", "tgrade", "pnodes", "progrec", "estrec"]
NAMES = {
    "age": "Age (years)",
    "menostat": "Menopausal status",
    "tsize": "Tumour size (mm)",
    "tgrade": "Tumour grade",
    "pnodes": "Positive lymph nodes (n)",
    "progrec": "Progesterone receptor (fmol/l)",
    "estrec": "Oestrogen receptor (fmol/l)",
}


def _propensity(df):
    """Propensity of horTh = yes, R glm(horTh ~ age + menostat + ..., binomial), and weights."""
    x = pd.DataFrame(
        {
            "age": df.age,
            "menostatPre": (df.menostat == "Pre").astype(float),
            "tsize": df.tsize,
            "tgradeII": (df.tgrade == "II").astype(float),
            "tgradeIII": (df.tgrade == "III").astype(float),
            "pnodes": df.pnodes,
            "progrec": df.progrec,
            "estrec": df.estrec,
        }
    )
    treated = (df.horTh == "yes").to_numpy(float)
    design = sm.add_constant(x)
    ps = sm.GLM(treated, design, family=sm.families.Binomial()).fit().predict(design).to_numpy()
    p1 = treated.mean()
    weights = np.where(treated == 1, p1 / ps, (1 - p1) / (1 - ps))  # stabilised ATE
    return ps, weights, treated


def _smd(x, weights, treated):
    """SMD with weighted means and pooled (population) weighted variances."""
    m1 = np.average(x[treated == 1], weights=weights[treated == 1])
    m0 = np.average(x[treated == 0], weights=weights[treated == 0])
    v1 = np.average((x[treated == 1] - m1) ** 2, weights=weights[treated == 1])
    v0 = np.average((x[treated == 0] - m0) ** 2, weights=weights[treated == 0])
    return (m1 - m0) / np.sqrt((v1 + v0) / 2)


def gbsg2_balance(df) -> pd.DataFrame:
    """balance.csv of horTh on GBSG2: numeric covariates, then each categorical level."""
    _, w, treated = _propensity(df)
    ones = np.ones_like(w)
    rows = []
    for cov in COVARIATES:
        if df[cov].dtype.kind in "if":
            x = df[cov].to_numpy(float)
            rows.append((cov, None, NAMES[cov], _smd(x, ones, treated), _smd(x, w, treated)))
            continue
        for level in sorted(df[cov].unique()):
            x = (df[cov] == level).to_numpy(float)
            label = f"{NAMES[cov]}: {level}"
            rows.append((cov, level, label, _smd(x, ones, treated), _smd(x, w, treated)))
    return pd.DataFrame(rows, columns=list(cohort_plots.BALANCE_COLUMNS))


def gbsg2_hist(df, step=0.05) -> pd.DataFrame:
    ps, _, treated = _propensity(df)
    edges = np.round(np.arange(0, 1 + step / 2, step), 10)
    rows = []
    for level, mask in (("no", treated == 0), ("yes", treated == 1)):
        counts, _ = np.histogram(ps[mask], bins=edges)
        for lo, hi, n in zip(edges[:-1], edges[1:], counts, strict=True):
            rows.append({"group": level, "bin_left": lo, "bin_right": hi, "n": int(n)})
    return pd.DataFrame(rows)


def _cox_hr(frame):
    """HR of horTh yes vs no (lifelines, Efron ties as R coxph)."""
    data = pd.DataFrame(
        {"t": frame["time"], "e": frame["cens"], "yes": (frame.horTh == "yes").astype(float)}
    )
    s = CoxPHFitter().fit(data, "t", "e").summary.loc["yes"]
    return s["exp(coef)"], s["exp(coef) lower 95%"], s["exp(coef) upper 95%"]


def _interaction_p(df, variable):
    """Wald p of the product terms horTh x variable (one term per non-reference level)."""
    data = pd.DataFrame(
        {"t": df["time"], "e": df["cens"], "yes": (df.horTh == "yes").astype(float)}
    )
    levels = sorted(df[variable].unique())
    inter = []
    for level in levels[1:]:
        data[f"v_{level}"] = (df[variable] == level).astype(float)
        data[f"x_{level}"] = data["yes"] * data[f"v_{level}"]
        inter.append(f"x_{level}")
    cph = CoxPHFitter().fit(data, "t", "e")
    beta = cph.params_[inter].to_numpy()
    cov = cph.variance_matrix_.loc[inter, inter].to_numpy()
    from scipy.stats import chi2

    return float(chi2.sf(beta @ np.linalg.solve(cov, beta), len(inter)))


def gbsg2_subgroups(df) -> pd.DataFrame:
    rows = []
    hr, lo, hi = _cox_hr(df)
    rows.append(("OS", "all", "All patients", None, len(df), int(df.cens.sum()), hr, lo, hi, None))
    for var in ("menostat", "tgrade"):
        p = _interaction_p(df, var)
        for level in sorted(df[var].unique()):
            sub = df[df[var] == level]
            hr, lo, hi = _cox_hr(sub)
            rows.append((var, NAMES[var], level, len(sub), int(sub.cens.sum()), hr, lo, hi, p))
            rows[-1] = ("OS", *rows[-1])
    return pd.DataFrame(rows, columns=list(cohort_plots.SUBGROUP_COLUMNS))


# --------------------------------------------------------------------------- helpers
def _line(ax, gid):
    return next(ln for ln in ax.lines if ln.get_gid() == gid)


def _min_font(fig) -> float:
    return min(t.get_fontsize() for t in _all_texts(fig))


def _clean(fig):
    assert _overlaps(fig) == [], _overlaps(fig)
    assert _inside_figure(fig) == [], _inside_figure(fig)
    assert _min_font(fig) >= 6.0


def _save_and_check(fig, path):
    """Render to PNG in tmp_path (what a reviewer opens) and check it is a real image."""
    style.save_figure(fig, None, path, dpi=200)
    assert path.stat().st_size > 5000
    image = plt.imread(path)
    assert image.shape[0] > 100 and image.shape[1] > 100


# --------------------------------------------------------------------------- Love plot
BALANCE = pd.DataFrame(
    {
        "covariate": ["age", "ecog", "ecog", "visceral_mets", "year"],
        "level": [None, "0", "1", None, None],
        "label": ["Age (years)", "ECOG: 0", "ECOG: 1", "", "Year of T-DM1 start"],
        "smd_unweighted": [0.42, -0.18, 0.18, 0.05, -0.61],
        "smd_weighted": [0.03, -0.02, 0.02, np.nan, 0.08],
    }
)


def test_love_markers_threshold_and_labels(in_style, tmp_path):
    fig = cohort_plots.plot_love(BALANCE, labels={"visceral_mets": "Visceral metastases"})
    ax = fig.axes[0]
    assert ax.get_gid() == "love"
    unweighted, weighted = _line(ax, "unweighted"), _line(ax, "weighted")
    np.testing.assert_allclose(unweighted.get_xdata(), np.abs(BALANCE.smd_unweighted))
    np.testing.assert_allclose(weighted.get_xdata(), [0.03, 0.02, 0.02, 0.08])  # NaN: no marker
    assert unweighted.get_markerfacecolor() == "white" and weighted.get_marker() == "o"
    assert unweighted.get_markeredgecolor() != weighted.get_markerfacecolor()
    # the series keep clear of the groups' colours
    group_cols = {c.lower() for c in style.group_colours(GROUPS.values()).values()}
    assert unweighted.get_markeredgecolor().lower() not in group_cols
    assert weighted.get_markerfacecolor().lower() not in group_cols
    threshold = _line(ax, "threshold")
    np.testing.assert_allclose(threshold.get_xdata(), 0.1)
    assert threshold.get_linestyle() == "--"
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["Unweighted", "Weighted", "Threshold 0.1"]
    assert ax.get_xlabel() == "Absolute standardised mean difference"
    assert ax.get_xticks()[0] == 0.0 and -0.05 < ax.get_xlim()[0] < 0.0
    rows = [t.get_text() for t in ax.get_yticklabels()]
    assert rows == [
        "Age (years)",
        "ECOG: 0",
        "ECOG: 1",
        "Visceral metastases",
        "Year of T-DM1 start",
    ]
    # each marker sits on the row of its label, top to bottom in table order
    np.testing.assert_allclose(unweighted.get_ydata(), ax.get_yticks())
    assert np.all(np.diff(ax.get_yticks()) > 0) and ax.yaxis_inverted()
    assert not _stamped(fig)
    _clean(fig)
    _save_and_check(fig, tmp_path / "love_small.png")


def test_love_gbsg2_iptw(in_style, gbsg2, tmp_path):
    balance = gbsg2_balance(gbsg2)
    fig = cohort_plots.plot_love(
        balance, simulated=True, title="Covariate balance, hormone therapy (GBSG2)"
    )
    ax = fig.axes[0]
    rows = [t.get_text() for t in ax.get_yticklabels()]
    assert len(rows) == len(balance) == 10  # 5 numeric + 2 menostat + 3 tgrade levels
    age = rows.index("Age (years)")
    # R (cohort references, round 2): SMD age 0.575108 unweighted, -0.005224 after
    # stabilised IPTW from glm(horTh ~ age + menostat + tsize + tgrade + pnodes +
    # progrec + estrec, binomial); pnodes 0.034366 / 0.013967
    assert _line(ax, "unweighted").get_xdata()[age] == pytest.approx(0.575108, rel=1e-4)
    assert _line(ax, "weighted").get_xdata()[age] == pytest.approx(0.005224, rel=1e-3)
    nodes = rows.index("Positive lymph nodes (n)")
    assert _line(ax, "unweighted").get_xdata()[nodes] == pytest.approx(0.034366, rel=1e-4)
    assert _line(ax, "weighted").get_xdata()[nodes] == pytest.approx(0.013967, rel=1e-3)
    assert len(_line(ax, "unweighted").get_xdata()) == len(_line(ax, "weighted").get_xdata()) == 10
    assert _stamped(fig) and style.is_stamped(fig)
    stamp = next(t for t in fig.texts if t.get_gid() == "simulated-stamp")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    assert fig._suptitle.get_window_extent(renderer).x1 < stamp.get_window_extent(renderer).x0
    _clean(fig)
    _save_and_check(fig, tmp_path / "love_gbsg2.png")


def test_love_unweighted_only_and_long_labels(in_style):
    balance = BALANCE.assign(smd_weighted=np.nan)
    balance.loc[0, "label"] = "Age at diagnosis of advanced disease, years (continuous covariate)"
    fig = cohort_plots.plot_love(balance, threshold=0.2, simulated=True)
    ax = fig.axes[0]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["Unweighted", "Threshold 0.2"]
    assert len(_line(ax, "weighted").get_xdata()) == 0
    np.testing.assert_allclose(_line(ax, "threshold").get_xdata(), 0.2)
    first = ax.get_yticklabels()[0].get_text()
    assert "\n" in first and _unwrap(first) == balance.loc[0, "label"]  # wrapped between words
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    assert ax.get_window_extent(renderer).width > 0.45 * fig.bbox.width
    _clean(fig)


def test_love_rejects_bad_input(in_style):
    with pytest.raises(ValueError, match="smd_weighted"):
        cohort_plots.plot_love(BALANCE.drop(columns="smd_weighted"))
    with pytest.raises(ValueError, match="threshold"):
        cohort_plots.plot_love(BALANCE, threshold=0)


# --------------------------------------------------------------------------- overlap
HIST = pd.DataFrame(
    {
        "group": ["no"] * 4 + ["yes"] * 4,
        "bin_left": [0.0, 0.25, 0.5, 0.75] * 2,
        "bin_right": [0.25, 0.5, 0.75, 1.0] * 2,
        "n": [30, 50, 15, 5, 4, 20, 40, 16],
    }
)


def test_overlap_mirrored_bars(in_style, tmp_path):
    fig = cohort_plots.plot_propensity_overlap(HIST, group_labels=GROUPS)
    ax = fig.axes[0]
    assert ax.get_gid() == "overlap"
    up = [p for p in ax.patches if p.get_gid() == "bars-no"]
    down = [p for p in ax.patches if p.get_gid() == "bars-yes"]
    assert [p.get_height() for p in up] == [30, 50, 15, 5]
    assert [p.get_height() for p in down] == [-4, -20, -40, -16]  # second group downwards
    np.testing.assert_allclose([p.get_x() for p in down], [0, 0.25, 0.5, 0.75])
    np.testing.assert_allclose([p.get_width() for p in down], 0.25)
    colours = style.group_colours(GROUPS.values())
    assert matplotlib.colors.to_hex(up[0].get_facecolor()) == colours["Pertuzumab-naive"].lower()
    assert (
        matplotlib.colors.to_hex(down[0].get_facecolor())
        == colours["Pertuzumab-pretreated"].lower()
    )
    assert ax.get_xlabel() == "Propensity score (probability of Pertuzumab-pretreated)"
    assert ax.get_ylabel() == "Patients"
    fig.canvas.draw()
    tick_text = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert tick_text and not any(t.startswith(("-", "\u2212")) for t in tick_text)  # counts > 0
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["Pertuzumab-naive (n = 100)", "Pertuzumab-pretreated (n = 80)"]
    assert not _stamped(fig)
    _clean(fig)
    _save_and_check(fig, tmp_path / "overlap_small.png")


def test_overlap_gbsg2(in_style, gbsg2, tmp_path):
    hist = gbsg2_hist(gbsg2)
    labels = {"no": "No hormone therapy", "yes": "Hormone therapy"}
    fig = cohort_plots.plot_propensity_overlap(
        hist, group_labels=labels, simulated=True, title="Propensity score overlap (GBSG2)"
    )
    ax = fig.axes[0]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["No hormone therapy (n = 440)", "Hormone therapy (n = 246)"]  # GBSG2 arms
    heights = [p.get_height() for p in ax.patches if p.get_gid() == "bars-yes"]
    assert -sum(heights) == 246 and len(heights) == 20
    assert ax.get_xlabel() == "Propensity score (probability of Hormone therapy)"
    assert ax.get_xlim() == (0.0, 1.0)
    assert _stamped(fig)
    _clean(fig)
    _save_and_check(fig, tmp_path / "overlap_gbsg2.png")


def test_overlap_labels_as_a_list(in_style):
    """A list of two labels names the groups in table order (as survival.group_labels)."""
    fig = cohort_plots.plot_propensity_overlap(HIST, group_labels=list(GROUPS.values()))
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["Pertuzumab-naive (n = 100)", "Pertuzumab-pretreated (n = 80)"]
    heights = [p.get_height() for p in fig.axes[0].patches if p.get_gid() == "bars-yes"]
    assert heights == [-4, -20, -40, -16]
    with pytest.raises(ValueError, match="exactly two"):
        cohort_plots.plot_propensity_overlap(HIST, group_labels=["Only one"])


def test_overlap_rejects_bad_input(in_style):
    with pytest.raises(ValueError, match="exactly two"):
        cohort_plots.plot_propensity_overlap(HIST, group_labels={"no": "No"})
    with pytest.raises(ValueError, match="no rows"):
        cohort_plots.plot_propensity_overlap(HIST, group_labels={"no": "No", "zz": "Z"})
    with pytest.raises(ValueError, match="bin_right"):
        cohort_plots.plot_propensity_overlap(
            HIST.assign(bin_right=HIST.bin_left), group_labels=GROUPS
        )


# --------------------------------------------------------------------------- subgroups
SUBGROUPS = pd.DataFrame(
    [
        ("OS", "all", "Overall", None, 371, 240, 1.84, 1.41, 2.40, np.nan),
        ("OS", "ecog", "ECOG performance status", "0", 200, 120, 1.60, 1.10, 2.33, 0.0504),
        ("OS", "ecog", "ECOG performance status", "1", 150, 105, 2.10, 1.40, 3.15, 0.0504),
        ("OS", "ecog", "ECOG performance status", "2", 21, 3, np.nan, np.nan, np.nan, 0.0504),
        ("OS", "brain_mets", "Brain metastases", "no", 300, 190, 1.90, 1.40, 2.58, 0.62),
        ("OS", "brain_mets", "Brain metastases", "yes", 71, 50, 1.50, 0.80, 2.81, 0.62),
    ],
    columns=list(cohort_plots.SUBGROUP_COLUMNS),
)


def _texts(fig, gid):
    return [t for t in _all_texts(fig) if t.get_gid() == gid]


def _row_of(ax, text):
    return text.get_position()[1]


def test_subgroups_rows_points_and_ne(in_style, tmp_path):
    fig = cohort_plots.plot_subgroups(
        SUBGROUPS,
        endpoint_label="Overall survival",
        comparison="Pertuzumab-pretreated vs pertuzumab-naive",
    )
    ax = fig.axes[0]
    assert ax.get_gid() == "subgroups" and ax.get_xscale() == "log"
    assert any(np.allclose(ln.get_xdata(), 1.0) for ln in ax.lines)  # reference line at 1
    labels = _texts(fig, "row-label")
    assert [t.get_text() for t in labels] == [
        "Overall",
        "ECOG performance status",
        "0",
        "1",
        "2",
        "Brain metastases",
        "no",
        "yes",
    ]
    bold = {t.get_text() for t in labels if t.get_fontweight() == "bold"}
    assert bold == {"Overall", "ECOG performance status", "Brain metastases"}
    points = [ln for ln in ax.lines if ln.get_gid() == "hr-point"]
    assert len(points) == 5  # six rows, one not estimable
    np.testing.assert_allclose(
        sorted(float(p.get_xdata()[0]) for p in points), sorted([1.84, 1.6, 2.1, 1.9, 1.5])
    )
    assert [p.get_marker() for p in points].count("D") == 1  # overall as a diamond
    y_of = {t.get_text(): t.get_position()[1] for t in labels}
    point_rows = {round(float(p.get_ydata()[0]), 6) for p in points}
    assert round(y_of["2"], 6) not in point_rows  # NE row: no point
    hr_text = {round(t.get_position()[1], 6): t.get_text() for t in _texts(fig, "hr-text")}
    assert hr_text[round(y_of["2"], 6)] == "NE"
    assert hr_text[round(y_of["0"], 6)] == style.format_ci(1.60, 1.10, 2.33)
    # interaction p on the variable's row, formatted as everywhere (0.0504 -> 0.050)
    p_text = {round(t.get_position()[1], 6): t.get_text() for t in _texts(fig, "p-interaction")}
    assert p_text == {
        round(y_of["ECOG performance status"], 6): "0.050",
        round(y_of["Brain metastases"], 6): format_p(0.62, prefix=""),
    }
    n_text = {round(t.get_position()[1], 6): t.get_text() for t in _texts(fig, "n-text")}
    assert n_text[round(y_of["Overall"], 6)] == "371" and n_text[round(y_of["2"], 6)] == "21"
    assert round(y_of["ECOG performance status"], 6) not in n_text
    all_text = {t.get_text() for t in _all_texts(fig)}
    assert {"Overall survival", "Pertuzumab-pretreated vs pertuzumab-naive"} <= all_text
    assert {"HR (95% CI)", "p for\ninteraction", "Events"} <= all_text
    assert not _stamped(fig)
    _clean(fig)
    _save_and_check(fig, tmp_path / "subgroups_small.png")


def test_subgroups_gbsg2(in_style, gbsg2, tmp_path):
    table = gbsg2_subgroups(gbsg2)
    # R coxph(Surv(time, cens) ~ horTh * menostat): horThyes:menostatPre p 0.89135282
    p_meno = table.loc[table.variable == "menostat", "p_interaction"].iloc[0]
    assert p_meno == pytest.approx(0.89135282, rel=1e-3)
    fig = cohort_plots.plot_subgroups(
        table,
        endpoint_label="Recurrence-free survival",
        comparison="Hormone therapy vs none",
        simulated=True,
        title="Hormone therapy by subgroup (GBSG2)",
        width_mm=140.0,
    )
    ax = fig.axes[0]
    points = [ln for ln in ax.lines if ln.get_gid() == "hr-point"]
    assert len(points) == 6  # overall + 2 menopausal + 3 grade levels
    np.testing.assert_allclose(
        sorted(float(p.get_xdata()[0]) for p in points), sorted(table.hr), rtol=1e-12
    )
    texts = {t.get_text() for t in _texts(fig, "p-interaction")}
    assert texts == {format_p(p_meno, prefix=""), format_p(table.p_interaction.iloc[-1], prefix="")}
    assert "0.89" in texts
    n_text = [t.get_text() for t in _texts(fig, "n-text")]
    assert n_text[0] == "686" and "Overall" not in n_text  # GBSG2: 686 patients
    assert _texts(fig, "events-text")[0].get_text() == "299"  # 299 recurrences or deaths
    assert _stamped(fig)
    _clean(fig)
    _save_and_check(fig, tmp_path / "subgroups_gbsg2.png")


def test_subgroups_endpoint_choice(in_style):
    both = pd.concat([SUBGROUPS, SUBGROUPS.assign(endpoint="PFS2", hr=SUBGROUPS.hr / 2)])
    with pytest.raises(ValueError, match="endpoint="):
        cohort_plots.plot_subgroups(both, endpoint_label="PFS2")
    fig = cohort_plots.plot_subgroups(both, endpoint="PFS2", endpoint_label="PFS on T-DM1")
    points = [ln for ln in fig.axes[0].lines if ln.get_gid() == "hr-point"]
    np.testing.assert_allclose(
        sorted(float(p.get_xdata()[0]) for p in points), sorted([0.92, 0.8, 1.05, 0.95, 0.75])
    )
    with pytest.raises(ValueError, match="hr_upper"):
        cohort_plots.plot_subgroups(SUBGROUPS.drop(columns="hr_upper"), endpoint_label="OS")


# --------------------------------------------------------------------------- KM labels
@pytest.mark.parametrize(
    ("endpoint", "label"),
    [
        ("PFS2", "Progression-free probability"),
        ("PFS", "Progression-free probability"),
        ("pfs_tdm1", "Progression-free probability"),
        ("OS", "Survival probability"),
        ("RFS", "Survival probability"),
    ],
)
def test_km_ylabel(endpoint, label):
    assert km_plot.km_ylabel(endpoint) == label


def _stage_tables(gbsg2):
    """km_curves / km_medians / logrank / cox tables as the survival stage writes them."""
    curves, medians, _ = lifelines_km(gbsg2, "horTh", np.arange(0, 85, 12))
    no, yes = gbsg2[gbsg2.horTh == "no"], gbsg2[gbsg2.horTh == "yes"]
    p = logrank_test(no.months, yes.months, no.cens, yes.cens).p_value
    hr, lo, hi = _cox_hr(gbsg2)
    cox = pd.DataFrame(
        [
            {
                "endpoint": e,
                "model": m,
                "term": "horTh",
                "hr": hr * k,
                "hr_lower": lo * k,
                "hr_upper": hi * k,
                "p": 0.0036,
            }
            for e in ("OS", "PFS2")
            for m, k in (("univariate", 1.0), ("multivariate", 1.1))
        ]
    )
    out = {}
    for name, table in (("curves", curves), ("medians", medians)):
        out[name] = pd.concat([table.assign(analysis=a) for a in ("os", "pfs2")])
    out["logrank"] = pd.DataFrame({"analysis": ["os", "pfs2"], "p": [p, p]})
    out["cox"] = cox
    return out


@pytest.mark.parametrize(("analysis", "endpoint"), [("os", "OS"), ("pfs2", "PFS2")])
def test_km_inputs_label_endpoint_and_hr_model(in_style, gbsg2, tmp_path, analysis, endpoint):
    t = _stage_tables(gbsg2)
    common = {
        "analysis": analysis,
        "endpoint": endpoint,
        "group": "horTh",
        "group_levels": ["no", "yes"],
        "group_labels": list(GROUPS.values()),
        "time_max": 84.0,
        "tick_step": 12.0,
    }
    data = km_plot.km_inputs(t["curves"], t["medians"], t["logrank"], t["cox"], **common)
    assert data["ylabel"] == km_plot.km_ylabel(endpoint)
    assert data["hr_note"] == "univariable Cox"
    # R coxph(Surv(time, cens) ~ horTh) on GBSG2: HR 0.695 (0.544-0.888)
    assert data["hr"]["hr"] == pytest.approx(0.695, abs=5e-4)
    fig = km_plot.plot_km(
        data.pop("curves"),
        data.pop("medians"),
        data.pop("at_risk"),
        **data,
        endpoint_label="surgery",
        time_max=84.0,
        tick_step=12.0,
        simulated=True,
        title="Recurrence-free survival",
    )
    ax = next(a for a in fig.axes if a.get_gid() == "km")
    expected_y = "Progression-free probability" if endpoint == "PFS2" else "Survival probability"
    assert ax.get_ylabel() == expected_y
    note = next(tx for tx in ax.texts if tx.get_gid() == "tests").get_text()
    assert "HR (univariable Cox) 0.69 (0.54\u20130.89), p = 0.0036" in note
    assert _overlaps(fig) == [] and _inside_figure(fig) == []
    _save_and_check(fig, tmp_path / f"km_{analysis}.png")
    # another model of the Cox table, with its own wording
    data = km_plot.km_inputs(
        t["curves"], t["medians"], t["logrank"], t["cox"], hr_model="multivariate", **common
    )
    assert data["hr_note"] == "multivariable Cox"
    assert data["hr"]["hr"] == pytest.approx(0.695 * 1.1, abs=1e-3)
    data = km_plot.km_inputs(
        t["curves"], t["medians"], t["logrank"], t["cox"], hr_note="IPTW Cox", **common
    )
    assert data["hr_note"] == "IPTW Cox"
    with pytest.raises(ValueError, match="'iptw' row"):
        km_plot.km_inputs(
            t["curves"], t["medians"], t["logrank"], t["cox"], hr_model="iptw", **common
        )


def test_km_without_hr_note_keeps_old_text(in_style, gbsg2):
    t = _stage_tables(gbsg2)
    data = km_plot.km_inputs(
        t["curves"],
        t["medians"],
        t["logrank"],
        t["cox"],
        analysis="os",
        endpoint="OS",
        group="horTh",
        group_levels=["no", "yes"],
        group_labels=list(GROUPS.values()),
        time_max=84.0,
        tick_step=12.0,
    )
    data["hr_note"] = None
    fig = km_plot.plot_km(
        data.pop("curves"), data.pop("medians"), data.pop("at_risk"), **data, endpoint_label="x"
    )
    ax = next(a for a in fig.axes if a.get_gid() == "km")
    note = next(tx for tx in ax.texts if tx.get_gid() == "tests").get_text()
    assert "HR 0.69 (0.54\u20130.89)" in note and "Cox" not in note


# --------------------------------------------------------------------------- forest subtitle
def test_forest_subtitle(in_style, gbsg2, tmp_path):
    table = cox_table(gbsg2)
    subtitle = (
        "Multivariable Cox model adjusted for hormone therapy, age, menopausal status, "
        "tumour grade and positive lymph nodes; complete cases, n = 686"
    )
    plain = forest.plot_forest(table, simulated=True)
    fig = forest.plot_forest(table, simulated=True, subtitle=subtitle)
    texts = [t for t in fig.texts if t.get_gid() == "subtitle"]
    assert len(texts) == 1 and _unwrap(texts[0].get_text()) == subtitle
    assert not [t for t in plain.texts if t.get_gid() == "subtitle"]
    # the subtitle shares the stamp's strip (the figure grows only if it needs more lines);
    # the panels keep their size
    assert fig.get_size_inches()[1] >= plain.get_size_inches()[1]
    fig.canvas.draw()
    plain.canvas.draw()
    for a, b in zip(fig.axes, plain.axes, strict=True):
        assert a.get_window_extent().height == pytest.approx(b.get_window_extent().height, abs=1)
    # it sits above the panel titles
    renderer = fig.canvas.get_renderer()
    title = next(t for t in fig.texts if t.get_gid() == "panel-title")
    assert texts[0].get_window_extent(renderer).y0 > title.get_window_extent(renderer).y1
    stamp = next(t for t in fig.texts if t.get_gid() == "simulated-stamp")
    assert texts[0].get_window_extent(renderer).x1 < stamp.get_window_extent(renderer).x0
    assert _overlaps(fig) == [] and _inside_figure(fig) == []
    narrow = forest.plot_forest(table, ("OS",), subtitle=subtitle, width_mm=120)
    assert "\n" in next(t for t in narrow.texts if t.get_gid() == "subtitle").get_text()
    alone = forest.plot_forest(table, ("OS",), width_mm=120)
    assert narrow.get_size_inches()[1] > alone.get_size_inches()[1]  # no stamp: it adds lines
    assert _overlaps(narrow) == [] and _inside_figure(narrow) == []
    _save_and_check(fig, tmp_path / "forest_subtitle.png")
