"""Figures of the cohort stage and the house style.

Inputs are built from lifelines' real GBSG2 data (German Breast Cancer Study
Group 2, 686 patients) with lifelines' own estimators, in exactly the column
formats that ``sepher.survival`` writes; every number shown on a figure is
then checked against that source, never against the plotting code.
"""

from __future__ import annotations

import hashlib

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from lifelines import CoxPHFitter, KaplanMeierFitter  # noqa: E402
from lifelines.datasets import load_gbsg2  # noqa: E402
from lifelines.statistics import logrank_test, proportional_hazard_test  # noqa: E402
from lifelines.utils import median_survival_times  # noqa: E402
from scipy import stats  # noqa: E402
from scipy.stats import chi2  # noqa: E402

from sepher.figures import flow, forest, km_plot, labels, style, tables, zph_plot  # noqa: E402
from sepher.formatting import format_p  # noqa: E402

DAYS_PER_MONTH = 30.4375


# --------------------------------------------------------------------------- inputs
def gbsg2_months() -> pd.DataFrame:
    """GBSG2 with recurrence-free survival in months."""
    df = load_gbsg2()
    df["months"] = df["time"] / DAYS_PER_MONTH
    return df


def km_inputs(df: pd.DataFrame, group: str, ticks) -> tuple:
    """KM step tables, medians and numbers at risk per group (lifelines, log-log CI)."""
    curves, medians, at_risk = [], [], []
    for level, sub in df.groupby(group, sort=True, observed=True):
        kmf = KaplanMeierFitter().fit(sub["months"], sub["cens"])
        table = kmf.event_table
        ci = kmf.confidence_interval_survival_function_
        curves.append(
            pd.DataFrame(
                {
                    "group": level,
                    "time": table.index.to_numpy(float),
                    "n_risk": table["at_risk"].to_numpy(),
                    "n_event": table["observed"].to_numpy(),
                    "n_censor": table["censored"].to_numpy(),
                    "surv": kmf.survival_function_.iloc[:, 0].to_numpy(),
                    "lower": ci.iloc[:, 0].to_numpy(),
                    "upper": ci.iloc[:, 1].to_numpy(),
                }
            )
        )
        med_ci = median_survival_times(kmf.confidence_interval_)
        medians.append(
            {
                "group": level,
                "n": len(sub),
                "events": int(sub["cens"].sum()),
                "median": kmf.median_survival_time_,
                "lower": med_ci.iloc[0, 0],
                "upper": med_ci.iloc[0, 1],
            }
        )
        for t in ticks:
            at_risk.append(
                {"group": level, "time": float(t), "n_at_risk": int((sub["months"] >= t).sum())}
            )
    medians = pd.DataFrame(medians).replace([np.inf, -np.inf], np.nan)
    return pd.concat(curves, ignore_index=True), medians, pd.DataFrame(at_risk)


def cox_table(df: pd.DataFrame) -> pd.DataFrame:
    """Multivariate (and one univariate) Cox rows in sepher.survival's cox.csv format."""
    data = df.copy()
    data["horTh"] = (data["horTh"] == "yes").astype(float)
    data["menostat"] = (data["menostat"] == "Pre").astype(float)
    data["tgrade_II"] = (data["tgrade"] == "II").astype(float)
    data["tgrade_III"] = (data["tgrade"] == "III").astype(float)
    terms = {
        "horTh": ("horTh", "yes", "no"),
        "age": ("age", None, None),
        "menostat": ("menostat", "Pre", "Post"),
        "tgrade_II": ("tgrade", "II", "I"),
        "tgrade_III": ("tgrade", "III", "I"),
        "pnodes": ("pnodes", None, None),
    }
    rows = []
    for endpoint, subset in (("OS", data), ("PFS2", data[data["age"] < 65])):
        cph = CoxPHFitter().fit(subset[["months", "cens", *terms]], "months", "cens")
        s = cph.summary
        for coef, (column, level, reference) in terms.items():
            rows.append(
                {
                    "endpoint": endpoint,
                    "model": "multivariate",
                    "term": column,
                    "column": column,
                    "level": level,
                    "reference": reference,
                    "hr": s.loc[coef, "exp(coef)"],
                    "hr_lower": s.loc[coef, "exp(coef) lower 95%"],
                    "hr_upper": s.loc[coef, "exp(coef) upper 95%"],
                    "p": s.loc[coef, "p"],
                    "n": len(subset),
                    "events": int(subset["cens"].sum()),
                }
            )
        rows.append({**rows[-6], "model": "univariate", "hr": 99.0})  # must be ignored
    return pd.DataFrame(rows)


def schoenfeld_inputs(df: pd.DataFrame):
    """Scaled Schoenfeld residuals (R convention: coefficient added) and PH tests."""
    data = df.copy()
    data["horTh"] = (data["horTh"] == "yes").astype(float)
    data["tgrade_II"] = (data["tgrade"] == "II").astype(float)
    data["tgrade_III"] = (data["tgrade"] == "III").astype(float)
    cols = ["horTh", "age", "tgrade_II", "tgrade_III", "pnodes", "progrec"]
    frame = data[["months", "cens", *cols]]
    cph = CoxPHFitter().fit(frame, "months", "cens")
    resid = cph.compute_residuals(frame, "scaled_schoenfeld") + cph.params_
    times = frame.loc[resid.index, "months"].to_numpy()
    kmf = KaplanMeierFitter().fit(frame["months"], frame["cens"])
    km_left = kmf.survival_function_at_times(times - 1e-9).to_numpy()
    residuals = pd.DataFrame({"time": times, "transformed_time": 1 - km_left})
    residuals = pd.concat([residuals, resid.reset_index(drop=True)], axis=1)
    test = proportional_hazard_test(cph, frame, time_transform="km").summary
    ph_table = pd.DataFrame(
        {
            "term": test.index.astype(str),
            "chisq": test["test_statistic"].to_numpy(),
            "df": 1,
            "p": test["p"].to_numpy(),
        }
    )
    return residuals.sort_values("time", ignore_index=True), ph_table, cph.params_


def table1_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Table 1 by hormone therapy, in the characteristic / level long format."""
    from scipy.stats import chi2_contingency, mannwhitneyu

    arms = {"no": df[df.horTh == "no"], "yes": df[df.horTh == "yes"]}
    heads = {
        k: f"{'Hormone therapy' if k == 'yes' else 'No hormone therapy'} (n = {len(v)})"
        for k, v in arms.items()
    }
    rows = []
    for var in ("age", "tsize", "pnodes"):
        p = mannwhitneyu(arms["no"][var], arms["yes"][var]).pvalue
        row = {"characteristic": f"{var}, median (range)", "level": np.nan}
        for k, v in arms.items():
            row[heads[k]] = f"{v[var].median():g} ({v[var].min()}\u2013{v[var].max()})"
        rows.append({**row, "p": p})
    for var in ("menostat", "tgrade"):
        p = chi2_contingency(pd.crosstab(df[var], df.horTh))[1]
        for i, level in enumerate(sorted(df[var].unique())):
            row = {"characteristic": var, "level": level}
            for k, v in arms.items():
                n = int((v[var] == level).sum())
                row[heads[k]] = f"{n} ({100 * n / len(v):.1f}%)"
            rows.append({**row, "p": p if i == 0 else np.nan})
    return pd.DataFrame(rows)


FLOW = pd.DataFrame(
    {
        "box_id": ["all", "l1", "l2", "l3", "l4", "l2_tp", "l2_t"],
        "parent_id": [None, "all", "all", "all", "all", "l2", "l2"],
        "label": [
            "HER2+ ABC treated with T-DM1",
            "First line",
            "Second line",
            "Third line",
            "Fourth line or later",
            "Pertuzumab-pretreated (first-line T/P)",
            "Pertuzumab-naive",
        ],
        "n": [555, 20, 371, 98, 66, 177, 194],
    }
)


@pytest.fixture(scope="module")
def gbsg2():
    return gbsg2_months()


@pytest.fixture
def in_style():
    with style.house_style(style.DEFAULT_STYLE):
        yield
    plt.close("all")


# --------------------------------------------------------------------------- helpers
def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _all_texts(fig):
    """Visible, non-empty texts that are drawn (tick labels outside the view are not)."""
    undrawn = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            eps = 1e-9 * max(1.0, abs(hi - lo))
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if not lo - eps <= tick.get_loc() <= hi + eps:
                    undrawn.update({id(tick.label1), id(tick.label2)})
    return [
        t
        for t in fig.findobj(matplotlib.text.Text)
        if t.get_visible() and t.get_text() and id(t) not in undrawn
    ]


def _extent(t, renderer):
    """Rendered box of a text, its background box (e.g. the stamp's frame) included."""
    box = t.get_window_extent(renderer)
    patch = t.get_bbox_patch()
    if patch is not None:
        box = matplotlib.transforms.Bbox.union([box, patch.get_window_extent(renderer)])
    return box


def _overlaps(fig, texts=None):
    """Pairs of visible, non-empty texts whose rendered boxes (frames included) intersect."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = texts if texts is not None else _all_texts(fig)
    boxes = [(t, _extent(t, renderer)) for t in texts]
    pairs = []
    for i, (a, ba) in enumerate(boxes):
        for b, bb in boxes[i + 1 :]:
            inter_w = min(ba.x1, bb.x1) - max(ba.x0, bb.x0)
            inter_h = min(ba.y1, bb.y1) - max(ba.y0, bb.y0)
            if inter_w > 0.5 and inter_h > 0.5:
                pairs.append((a.get_text(), b.get_text()))
    return pairs


def _inside_figure(fig):
    """Texts that stick out of the figure canvas (would be clipped)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    w, h = fig.canvas.get_width_height()
    out = []
    for t in _all_texts(fig):
        b = _extent(t, renderer)
        if b.x0 < -0.5 or b.y0 < -0.5 or b.x1 > w + 0.5 or b.y1 > h + 0.5:
            out.append(t.get_text())
    return out


def _stamped(fig) -> bool:
    return any(t.get_text() == style.SIMULATED_TEXT for t in _all_texts(fig))


# --------------------------------------------------------------------------- style
def test_mm_and_style_applied(in_style):
    assert style.mm(25.4) == pytest.approx(1.0)
    assert plt.rcParams["pdf.fonttype"] == 42
    assert plt.rcParams["font.sans-serif"][0] == "DejaVu Sans"
    assert not plt.rcParams["axes.spines.top"] and not plt.rcParams["axes.spines.right"]
    assert 6.5 <= plt.rcParams["font.size"] <= 8


def test_style_is_scoped():
    before = plt.rcParams["pdf.fonttype"]
    with style.house_style(style.DEFAULT_STYLE):
        assert plt.rcParams["pdf.fonttype"] == 42
    assert plt.rcParams["pdf.fonttype"] == before
    with pytest.raises(FileNotFoundError):
        with style.house_style("/nonexistent/sepher.mplstyle"):
            pass


def test_group_colours_study_names_and_distinct():
    cols = style.group_colours(["Pertuzumab-naive", "Pertuzumab-pretreated"])
    assert cols["Pertuzumab-naive"] == style.OKABE_ITO["blue"]
    assert cols["Pertuzumab-pretreated"] == style.OKABE_ITO["vermillion"]
    cols = style.group_colours(["TP-R", "2nd", "3rd", ">=4th"])
    assert cols["TP-R"] == style.OKABE_ITO["vermillion"]
    assert len(set(cols.values())) == 4


def test_save_figure_byte_identical(in_style, tmp_path):
    digests = []
    for run in range(2):
        fig, ax = plt.subplots(figsize=(style.mm(89), style.mm(60)))
        ax.plot([0, 1, 2], [1, 0.5, 0.2], label="Pertuzumab-naive")
        ax.legend()
        style.stamp_simulated(fig)
        pdf, png = tmp_path / f"r{run}" / "f.pdf", tmp_path / f"r{run}" / "f.png"
        style.save_figure(fig, pdf, png, dpi=150)
        plt.close(fig)
        digests.append((_digest(pdf), _digest(png)))
        assert b"CreationDate" not in pdf.read_bytes()
        assert b"Software" not in png.read_bytes()
    assert digests[0] == digests[1]


# --------------------------------------------------------------------------- KM
@pytest.fixture(scope="module")
def km_two(gbsg2):
    ticks = np.arange(0, 85, 12)
    curves, medians, at_risk = km_inputs(gbsg2, "horTh", ticks)
    lr = logrank_test(
        gbsg2.loc[gbsg2.horTh == "no", "months"],
        gbsg2.loc[gbsg2.horTh == "yes", "months"],
        gbsg2.loc[gbsg2.horTh == "no", "cens"],
        gbsg2.loc[gbsg2.horTh == "yes", "cens"],
    )
    return curves, medians, at_risk, lr.p_value


def _km_figure(km_two, simulated=False):
    curves, medians, at_risk, p = km_two
    return km_plot.plot_km(
        curves,
        medians,
        at_risk,
        endpoint_label="surgery",
        group_labels={"no": "No hormone therapy", "yes": "Hormone therapy"},
        logrank_p=p,
        hr={"hr": 0.69, "lower": 0.54, "upper": 0.89, "p": 0.0036, "label": "yes vs no"},
        simulated=simulated,
    )


def test_km_at_risk_numbers_under_ticks(in_style, km_two, gbsg2):
    fig = _km_figure(km_two)
    ax = next(a for a in fig.axes if a.get_gid() == "km")
    ax_risk = next(a for a in fig.axes if a.get_gid() == "at-risk")
    ticks = ax.get_xticks()
    np.testing.assert_allclose(ticks, np.arange(0, 85, 12))
    numbers = [t for t in ax_risk.texts if t.get_gid() == "at-risk-number"]
    assert len(numbers) == 2 * len(ticks)
    labels = [t.get_text() for t in ax_risk.get_yticklabels()]
    assert labels == ["No hormone therapy", "Hormone therapy"]
    for row, level in enumerate(["no", "yes"]):
        row_texts = sorted(
            (t for t in numbers if t.get_position()[1] == row), key=lambda t: t.get_position()[0]
        )
        np.testing.assert_allclose([t.get_position()[0] for t in row_texts], ticks)
        expected = [int((gbsg2.loc[gbsg2.horTh == level, "months"] >= x).sum()) for x in ticks]
        assert [int(t.get_text()) for t in row_texts] == expected
        assert all(t.get_horizontalalignment() == "center" for t in row_texts)
    # aligned on the page too: same display x as the tick marks
    fig.canvas.draw()
    tick_px = ax.transData.transform(np.c_[ticks, np.zeros_like(ticks)])[:, 0]
    num_px = sorted({round(ax_risk.transData.transform(t.get_position())[0], 3) for t in numbers})
    np.testing.assert_allclose(num_px, tick_px, atol=0.01)


def test_km_medians_and_tests_annotated(in_style, km_two):
    curves, medians, at_risk, p = km_two
    fig = _km_figure(km_two)
    ax = next(a for a in fig.axes if a.get_gid() == "km")
    legend_text = [t.get_text() for t in ax.get_legend().get_texts()]
    med_no = medians.set_index("group").loc["no"]
    # GBSG2 'no' median 1528 days = 50.2 months (R survival), CI 1280-1814 d (log-log)
    assert med_no["median"] * DAYS_PER_MONTH == pytest.approx(1528, abs=1)
    assert legend_text[0].startswith("No hormone therapy")
    assert f"{med_no['median']:.1f}" in legend_text[0]
    assert "NR" in legend_text[1]  # upper CI limit for 'yes' not reached (R: 1918-NA)
    annotation = " ".join(t.get_text() for t in ax.texts)
    assert "Log-rank p = 0.0034" in annotation  # R survdiff: p = 0.00343
    assert "HR 0.69 (0.54\u20130.89), p = 0.0036" in annotation
    assert ax.get_xlabel() == "Months from surgery"
    assert _overlaps(fig) == []
    assert _inside_figure(fig) == []


def test_km_censor_marks_on_curve(in_style, km_two):
    curves = km_two[0]
    fig = _km_figure(km_two)
    ax = next(a for a in fig.axes if a.get_gid() == "km")
    marks = [ln for ln in ax.lines if ln.get_marker() == "|"]
    assert len(marks) == 2
    cens = curves[(curves.group == "no") & (curves.n_censor > 0)]
    np.testing.assert_allclose(marks[0].get_xdata(), cens["time"])
    np.testing.assert_allclose(marks[0].get_ydata(), cens["surv"])


def test_km_four_groups_and_stamp(in_style, gbsg2, tmp_path):
    df = gbsg2.copy()
    df["nodes"] = pd.cut(df["pnodes"], [0, 1, 3, 9, 100], labels=["1", "2-3", "4-9", ">=10"])
    curves, medians, at_risk = km_inputs(df, "nodes", np.arange(0, 85, 24))
    labels = {"1": "1 node", "2-3": "2-3 nodes", "4-9": "4-9 nodes", ">=10": "\u226510 nodes"}
    fig = km_plot.plot_km(
        curves, medians, at_risk, endpoint_label="surgery", group_labels=labels, simulated=True
    )
    ax_risk = next(a for a in fig.axes if a.get_gid() == "at-risk")
    assert len([t for t in ax_risk.texts if t.get_gid() == "at-risk-number"]) == 4 * 4
    assert _stamped(fig) and style.is_stamped(fig)
    assert _overlaps(fig) == []
    assert _inside_figure(fig) == []
    ax = next(a for a in fig.axes if a.get_gid() == "km")
    assert len({ln.get_color() for ln in ax.lines if ln.get_marker() == "|"}) == 4


def test_km_saves_identically(in_style, km_two, tmp_path):
    digests = []
    for run in range(2):
        fig = _km_figure(km_two, simulated=True)
        style.save_figure(fig, tmp_path / f"{run}.pdf", tmp_path / f"{run}.png", dpi=120)
        plt.close(fig)
        digests.append((_digest(tmp_path / f"{run}.pdf"), _digest(tmp_path / f"{run}.png")))
    assert digests[0] == digests[1]


def test_km_rejects_missing_columns(in_style, km_two):
    curves, medians, at_risk, _ = km_two
    with pytest.raises(ValueError, match="n_censor"):
        km_plot.plot_km(
            curves.drop(columns="n_censor"),
            medians,
            at_risk,
            endpoint_label="surgery",
            group_labels={"no": "No", "yes": "Yes"},
        )


# study-length labels: the cohort figures' group names and comparison
LONG_GROUPS = {"no": "Pertuzumab-naive", "yes": "Pertuzumab-pretreated"}
# GBSG2 horTh yes vs no, R coxph: HR 0.695 (0.544-0.888), p = 0.0036
LONG_HR = {
    "hr": 0.69,
    "lower": 0.54,
    "upper": 0.89,
    "p": 0.0036,
    "label": "Pertuzumab-pretreated vs Pertuzumab-naive",
}


def _axes(fig, gid):
    return next(a for a in fig.axes if a.get_gid() == gid)


def _unwrap(text: str) -> str:
    """Undo line wrapping: a break after a hyphen joins, any other break is a space."""
    return " ".join(text.replace("-\n", "-").split())


def _suptitle_text(fig):
    return next(t for t in _all_texts(fig) if t is getattr(fig, "_suptitle", None))


def test_wrap_to_width_breaks_only_between_words(in_style):
    fig = plt.figure(figsize=(3, 2))
    renderer = fig.canvas.get_renderer()
    text = "(Pertuzumab-pretreated vs Pertuzumab-naive)"
    limit = style.text_width_px("(Pertuzumab-pretreated", renderer, 7)
    wrapped = style.wrap_to_width(text, limit, renderer, 7)
    assert wrapped == "(Pertuzumab-pretreated\nvs Pertuzumab-naive)"
    # narrower than a word: the word breaks after its hyphen, never inside
    narrow = style.wrap_to_width(text, limit * 0.7, renderer, 7)
    assert narrow.split("\n")[0] == "(Pertuzumab-" and _unwrap(narrow) == text
    for line in narrow.split("\n"):
        assert style.text_width_px(line, renderer, 7) <= limit * 0.7 or " " not in line
    kept = style.wrap_to_width(
        "Age (years)  (p = 0.034)", 1.0, renderer, 7, keep_together=["(p = 0.034)"]
    )
    assert kept.split("\n")[-1] == "(p = 0.034)"
    plt.close(fig)


def test_thin_ticks_stride():
    assert km_plot.thin_ticks([0, 10, 20, 30, 40], widest_px=7.0, gap_px=2.0) == 1
    assert km_plot.thin_ticks([0, 10, 20, 30, 40], widest_px=15.0, gap_px=2.0) == 2
    assert km_plot.thin_ticks([0, 10, 20, 30, 40], widest_px=25.0, gap_px=2.0) == 3


def test_km_long_hr_label_fits_axes(in_style, km_two):
    curves, medians, at_risk, p = km_two
    fig = km_plot.plot_km(
        curves,
        medians,
        at_risk,
        endpoint_label="surgery",
        group_labels=LONG_GROUPS,
        logrank_p=p,
        hr=LONG_HR,
        simulated=True,
        title="Overall survival",
    )
    ax = _axes(fig, "km")
    note = next(t for t in ax.texts if t.get_gid() == "tests")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box, axes_box = _extent(note, renderer), ax.get_window_extent(renderer)
    # never beyond the sides of the axes; inside it, or above it under the median table
    assert axes_box.x0 - 0.5 <= box.x0 and box.x1 <= axes_box.x1 + 0.5
    inside = axes_box.y0 - 0.5 <= box.y0 and box.y1 <= axes_box.y1 + 0.5
    assert inside or box.y0 >= axes_box.y1 - 0.5
    lines = note.get_text().split("\n")
    assert lines[:2] == ["Log-rank p = 0.0034", "HR 0.69 (0.54\u20130.89), p = 0.0036"]
    assert _unwrap("\n".join(lines[2:])) == "(Pertuzumab-pretreated vs Pertuzumab-naive)"
    if inside:  # where it sits inside, it hides no step of a survival curve
        for line in ax.lines:
            if line.get_marker() in ("None", "", None) and line.get_linestyle() == "-":
                xy = ax.transData.transform(np.c_[line.get_xdata(), line.get_ydata()])
                assert not np.any(
                    (xy[:, 0] > box.x0)
                    & (xy[:, 0] < box.x1)
                    & (xy[:, 1] > box.y0)
                    & (xy[:, 1] < box.y1)
                )
    # long group labels in the at-risk table: the plot keeps >= 60% of the width
    assert ax.get_window_extent(renderer).width >= 0.6 * fig.bbox.width
    assert _overlaps(fig) == [] and _inside_figure(fig) == []


@pytest.mark.parametrize(
    "title",
    [
        "Progression-free survival on T-DM1 by line of therapy",
        "Progression-free survival on second-line T-DM1 (PFS2) in pertuzumab-pretreated "
        "and pertuzumab-naive patients with HER2-positive advanced breast cancer",
    ],
)
def test_km_long_title_clears_the_stamp(in_style, km_two, title):
    curves, medians, at_risk, p = km_two
    fig = km_plot.plot_km(
        curves,
        medians,
        at_risk,
        endpoint_label="surgery",
        group_labels=LONG_GROUPS,
        logrank_p=p,
        simulated=True,
        title=title,
    )
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    stamp = next(t for t in fig.texts if t.get_gid() == "simulated-stamp")
    suptitle = _suptitle_text(fig)
    assert _extent(suptitle, renderer).x1 < _extent(stamp, renderer).x0  # ends before it
    assert _unwrap(suptitle.get_text()) == title  # wrapped between words only
    assert suptitle.get_text().count("\n") >= 1
    assert _overlaps(fig) == [] and _inside_figure(fig) == []


def test_km_thins_tight_ticks(in_style, gbsg2):
    ticks = np.arange(0, 85, 2.0)  # 43 ticks on a 89 mm figure: numbers would collide
    curves, medians, at_risk = km_inputs(gbsg2, "horTh", ticks)
    fig = km_plot.plot_km(
        curves, medians, at_risk, endpoint_label="surgery", group_labels=LONG_GROUPS
    )
    ax, ax_risk = _axes(fig, "km"), _axes(fig, "at-risk")
    kept = ax.get_xticks()
    stride = int(round((kept[1] - kept[0]) / 2.0))
    assert stride > 1
    np.testing.assert_allclose(kept, ticks[::stride])  # every k-th tick, from 0
    numbers = [t for t in ax_risk.texts if t.get_gid() == "at-risk-number"]
    for row, level in enumerate(["no", "yes"]):
        row_texts = sorted(
            (t for t in numbers if t.get_position()[1] == row), key=lambda t: t.get_position()[0]
        )
        np.testing.assert_allclose([t.get_position()[0] for t in row_texts], kept)
        expected = [int((gbsg2.loc[gbsg2.horTh == level, "months"] >= x).sum()) for x in kept]
        assert [int(t.get_text()) for t in row_texts] == expected
    assert _overlaps(fig) == [] and _inside_figure(fig) == []


def test_stamp_inside_canvas_and_clear_of_suptitle(in_style):
    fig, ax = plt.subplots(figsize=(style.mm(89), style.mm(60)))
    ax.plot([0, 1], [0, 1])
    title = "A figure title long enough to run under the simulated-data stamp of the figure"
    fig.suptitle(title, x=0.01, ha="left", fontweight="bold")
    style.stamp_simulated(fig)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    stamp = next(t for t in fig.texts if t.get_gid() == "simulated-stamp")
    assert _extent(_suptitle_text(fig), renderer).x1 < _extent(stamp, renderer).x0
    assert _unwrap(fig.get_suptitle()) == title
    assert _overlaps(fig) == [] and _inside_figure(fig) == []


# --------------------------------------------------------------------------- forest
def test_forest_rows_and_text_columns(in_style, gbsg2):
    table = cox_table(gbsg2)
    fig = forest.plot_forest(table, endpoint_labels={"OS": "Overall survival"})
    axes = {a.get_gid(): a for a in fig.axes}
    assert set(axes) == {"forest-OS", "forest-PFS2"}
    texts = {t.get_text() for t in _all_texts(fig)}
    assert "Tgrade: III vs I" in texts and "Age" in texts and "Menostat: Pre vs Post" in texts
    multi = table[table.model == "multivariate"]
    for _, r in multi.iterrows():
        assert style.format_ci(r.hr, r.hr_lower, r.hr_upper) in texts
    assert "Overall survival" in texts
    assert "n = 686, events = 299" in texts  # GBSG2: 686 patients, 299 events
    assert not any("99.00" in t for t in texts)  # univariate rows are not drawn
    ax = axes["forest-OS"]
    assert ax.get_xscale() == "log"
    assert any(np.allclose(ln.get_xdata(), 1.0) for ln in ax.lines)  # reference line at HR 1
    squares = [ln for ln in ax.lines if ln.get_marker() == "s"]
    os_rows = multi[multi.endpoint == "OS"]
    np.testing.assert_allclose(
        sorted(float(ln.get_xdata()[0]) for ln in squares), sorted(os_rows.hr)
    )
    assert _overlaps(fig) == [] and _inside_figure(fig) == []
    assert not _stamped(fig)
    assert _stamped(forest.plot_forest(table, simulated=True))


def test_forest_long_panel_titles_fit(in_style, gbsg2):
    table = cox_table(gbsg2)
    long = "Progression-free survival on second-line T-DM1 after first-line pertuzumab"
    fig = forest.plot_forest(
        table, endpoint_labels={"OS": "Overall survival", "PFS2": long}, simulated=True
    )
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    titles = [t for t in fig.texts if t.get_gid() == "panel-title"]
    counts = [t.get_text() for t in fig.texts if t.get_gid() == "panel-n"]
    assert counts[0] == "n = 686, events = 299"  # GBSG2: 686 patients, 299 events
    assert _unwrap(titles[1].get_text()) == long and "\n" in titles[1].get_text()
    # each title stays over its own panel: it ends before the next one starts
    axes = [_axes(fig, "forest-OS"), _axes(fig, "forest-PFS2")]
    assert _extent(titles[0], renderer).x1 < axes[1].get_window_extent(renderer).x0
    assert _extent(titles[1], renderer).x1 <= fig.bbox.width
    assert _overlaps(fig) == [] and _inside_figure(fig) == []


# --------------------------------------------------------------------------- flow
def test_flow_counts_from_data_and_layout(in_style):
    fig = flow.plot_flow(FLOW, simulated=True)
    ax = fig.axes[0]
    texts = {t.get_gid(): t.get_text() for t in ax.texts}
    for _, r in FLOW.iterrows():
        assert texts[f"text-{r.box_id}"].endswith(f"n = {r.n}")
    boxes = {p.get_gid(): p for p in ax.patches if p.get_gid() in set(FLOW.box_id)}
    assert len(boxes) == len(FLOW)
    fig.canvas.draw()
    extents = {k: b.get_window_extent() for k, b in boxes.items()}
    keys = list(extents)
    for i, a in enumerate(keys):  # no two boxes overlap
        for b in keys[i + 1 :]:
            assert not extents[a].overlaps(extents[b]), (a, b)
    # children sit below their parent; siblings in row order left to right
    assert extents["l2_tp"].y1 < extents["l2"].y0 < extents["all"].y0
    assert extents["l2_tp"].x0 < extents["l2_t"].x0
    assert _overlaps(fig) == [] and _inside_figure(fig) == [] and _stamped(fig)
    changed = FLOW.assign(n=FLOW.n + 1)
    new = flow.plot_flow(changed)
    assert "n = 178" in " ".join(t.get_text() for t in new.axes[0].texts)


def test_flow_rejects_bad_tree(in_style):
    with pytest.raises(ValueError, match="not a box_id"):
        flow.plot_flow(FLOW.assign(parent_id=[None, "all", "all", "all", "all", "zz", "l2"]))
    with pytest.raises(ValueError, match="exactly one root"):
        flow.plot_flow(FLOW.assign(parent_id=None))


# --------------------------------------------------------------------------- tables
def test_table1_indented_levels(in_style, gbsg2):
    t1 = table1_frame(gbsg2)
    fig = tables.render_table(t1, title="Table 1", footnote="n (%) or median (range).")
    cells = [t for t in fig.axes[0].texts if t.get_gid() == "cell"]
    text = [t.get_text() for t in cells]
    assert text.count("tgrade") == 1 and "III" in text and "Pre" in text
    x_of = {t.get_text(): t.get_position()[0] for t in cells}
    assert x_of["III"] - x_of["tgrade"] == pytest.approx(tables.INDENT_MM)
    n_no = int(((gbsg2.horTh == "no") & (gbsg2.tgrade == "III")).sum())
    assert any(t.startswith(f"{n_no} (") for t in text)  # 111 grade III without hormone therapy
    assert _overlaps(fig) == [] and _inside_figure(fig) == []


def test_table_forty_rows_six_columns(in_style):
    rng = np.random.default_rng(1)
    big = pd.DataFrame(
        {
            "Characteristic": [f"Covariate number {i} with a long name" for i in range(40)],
            "Pertuzumab-naive (n = 194)": [
                f"{k} ({k / 1.94:.1f}%)" for k in rng.integers(0, 194, 40)
            ],
            "Pertuzumab-pretreated (n = 177)": [
                f"{k} ({k / 1.77:.1f}%)" for k in rng.integers(0, 177, 40)
            ],
            "HR (95% CI)": ["1.23 (0.95\u20131.60)"] * 40,
            "Events": rng.integers(0, 300, 40),
            "p": rng.uniform(0, 1, 40),
        }
    )
    fig = tables.render_table(big, title="Table 2. Cox models", simulated=True)
    h_mm = fig.get_size_inches()[1] * 25.4
    assert 40 * 3.0 < h_mm < 240  # auto height from row count, fits a page
    assert _overlaps(fig) == [] and _inside_figure(fig) == [] and _stamped(fig)
    sizes = {t.get_fontsize() for t in fig.axes[0].texts if t.get_gid() == "cell"}
    assert min(sizes) >= tables.MIN_FONT_PT


def test_table_headers_break_between_words_only(in_style, gbsg2):
    t1 = table1_frame(gbsg2).rename(
        columns={
            "No hormone therapy (n = 440)": "Pertuzumab-naive\n(n = 440)",
            "Hormone therapy (n = 246)": "Pertuzumab-pretreated\n(n = 246)",
        }
    )
    t1["Missing"] = [0.0, 2.0, 0.0, np.nan, np.nan, np.nan, np.nan, np.nan]  # counts read as floats
    for width in (None, 89.0):  # 89 mm forces the narrowest headers
        fig = tables.render_table(t1, title="Table 1", simulated=True, width_mm=width)
        headers = [t.get_text() for t in fig.axes[0].texts if t.get_gid() == "header"]
        originals = [" ".join(str(c).split()) for c in [t1.columns[0], *t1.columns[2:]]]
        assert [_unwrap(h) for h in headers] == originals
        cells = [t.get_text() for t in fig.axes[0].texts if t.get_gid() == "cell"]
        assert "2" in cells and "0" in cells and "0.00" not in cells and "2.00" not in cells
        assert _overlaps(fig) == [] and _inside_figure(fig) == []
    # at full width no header word is broken at all, hyphenated ones included
    fig = tables.render_table(t1, title="Table 1")
    headers = [t.get_text() for t in fig.axes[0].texts if t.get_gid() == "header"]
    assert "Pertuzumab-naive\n(n = 440)" in headers
    assert "Pertuzumab-pretreated\n(n = 246)" in headers


def test_table_text_columns_left_numbers_centred(in_style):
    cox = pd.DataFrame(
        {
            "Variable": ["Overall survival (OS)"] * 2 + ["PFS2"] * 2,
            "level": ["Hormone therapy: yes vs no", "Age (years)"] * 2,
            "HR (95% CI)": ["0.69 (0.54\u20130.89)", "1.00 (0.98\u20131.01)"] * 2,
            "p": [0.0036, 0.61, 0.01, 0.2],
            "Events": [299.0, 299.0, 250.0, 250.0],
        }
    )
    fig = tables.render_table(cox, bold_groups=True)
    cells = [t for t in fig.axes[0].texts if t.get_gid() == "cell"]
    by_text = {t.get_text(): t for t in cells}
    assert [t.get_text() for t in cells].count("Overall survival (OS)") == 1  # heading row once
    assert by_text["Overall survival (OS)"].get_fontweight() == "bold"
    assert by_text["Hormone therapy: yes vs no"].get_horizontalalignment() == "left"
    assert by_text["0.69 (0.54\u20130.89)"].get_horizontalalignment() == "center"
    assert by_text["0.0036"].get_horizontalalignment() == "center"
    assert "299" in by_text and "299.00" not in by_text
    fig = tables.render_table(cox.drop(columns="level"), align=["left", "left", "left", "left"])
    cells = [t for t in fig.axes[0].texts if t.get_gid() == "cell"]
    assert {t.get_horizontalalignment() for t in cells} == {"left"}
    with pytest.raises(ValueError, match="align"):
        tables.render_table(cox, align=["left"])


# --------------------------------------------------------------------------- zph
def test_spline_smooth_properties():
    x = np.linspace(0, 1, 200)
    grid, fit, se = zph_plot.spline_smooth(x, 2 - 3 * x, df=4)
    np.testing.assert_allclose(fit, 2 - 3 * grid, atol=1e-9)  # lines are reproduced exactly
    knots = np.array([0.0, 0.3, 0.5, 0.8, 1.0])
    basis = zph_plot.natural_spline_basis(np.array([1.0, 1.5, 2.0]), knots)
    np.testing.assert_allclose(np.diff(basis, 2, axis=0), 0, atol=1e-9)  # linear beyond boundary
    rng = np.random.default_rng(0)
    y = np.sin(2 * np.pi * x) + rng.normal(0, 0.3, x.size)
    grid, fit, se = zph_plot.spline_smooth(x, y, df=4)
    assert np.max(np.abs(fit - np.sin(2 * np.pi * grid))) < 0.3
    assert np.all(se > 0) and np.mean(se) < 0.15


def test_schoenfeld_panels(in_style, gbsg2):
    residuals, ph_table, params = schoenfeld_inputs(gbsg2)
    fig = zph_plot.plot_schoenfeld(residuals, ph_table, simulated=True)
    panels = {a.get_gid(): a for a in fig.axes if a.get_visible()}
    assert set(panels) == set(params.index)
    for coef, ax in panels.items():
        p = float(ph_table.set_index("term").loc[coef, "p"])
        assert format_p(p) in ax.get_title(loc="left")
        line = next(ln for ln in ax.lines if ln.get_gid() == "coefficient")
        assert line.get_ydata()[0] == pytest.approx(params[coef], rel=1e-4, abs=1e-7)  # at the MLE
    # tick labels are real times placed at their KM-scale positions
    ax = panels["age"]
    order = np.argsort(residuals["time"].to_numpy())
    for pos, label in zip(ax.get_xticks(), ax.get_xticklabels(), strict=True):
        t = float(label.get_text())
        assert pos == pytest.approx(
            np.interp(
                t,
                residuals["time"].to_numpy()[order],
                residuals["transformed_time"].to_numpy()[order],
            )
        )
    assert _overlaps(fig) == [] and _inside_figure(fig) == [] and _stamped(fig)


def test_schoenfeld_factor_term_p(in_style, gbsg2):
    residuals, ph_table, _ = schoenfeld_inputs(gbsg2)
    ph = pd.concat(
        [ph_table, pd.DataFrame([{"term": "tgrade", "chisq": 10.7, "df": 2, "p": 0.0047}])]
    )
    ph = ph[~ph.term.str.startswith("tgrade_")]
    fig = zph_plot.plot_schoenfeld(residuals, ph)
    titles = {a.get_gid(): a.get_title(loc="left") for a in fig.axes}
    assert "p = 0.0047" in titles["tgrade_II"] and "p = 0.0047" in titles["tgrade_III"]
    assert not _stamped(fig)


@pytest.mark.parametrize(
    ("coefficient", "text"),
    [
        ("first_line_pertuzumabyes", "First-line pertuzumab: yes"),
        ("ecog1", "ECOG performance status: 1"),
        ("hormone_receptornegative", "Hormone receptor: negative"),
        ("n_metastatic_sites", "Metastatic sites (n)"),
        ("age_at_advanced_dx", "Age at advanced diagnosis (years)"),
        ("nodes", "Nodes"),  # the short key "n" does not claim it
    ],
)
def test_coefficient_label(coefficient, text):
    assert labels.coefficient_label(coefficient) == text


def test_schoenfeld_readable_labels_and_global_test(in_style, gbsg2):
    residuals, ph_table, _ = schoenfeld_inputs(gbsg2)
    # R cox.zph(transform = "km") on GBSG2: GLOBAL chi-square 24.421 on 9 df (p = 0.0037)
    ph = pd.concat(
        [ph_table, pd.DataFrame([{"term": "GLOBAL", "chisq": 24.421, "df": 9, "p": 0.0}])],
        ignore_index=True,
    )
    ph.loc[ph.term == "GLOBAL", "p"] = chi2.sf(24.421, 9)
    names = {
        "horTh": "Hormone therapy",
        "age": "Age (years)",
        "tgrade": "Tumour grade",
        "pnodes": "Positive lymph nodes (n)",
        "progrec": "Progesterone receptor (fmol/l)",
    }
    coefs = [c for c in residuals.columns if c not in ("time", "transformed_time")]
    fig = zph_plot.plot_schoenfeld(
        residuals,
        ph,
        simulated=True,
        coefficient_labels={c: labels.coefficient_label(c, names) for c in coefs},
        title="Recurrence-free survival, multivariate model",
    )
    assert fig.get_suptitle() == (
        "Recurrence-free survival, multivariate model: GLOBAL test p = 0.0037"
    )
    panels = {a.get_gid(): a for a in fig.axes if a.get_visible()}
    assert "Tumour grade: III" in _unwrap(panels["tgrade_III"].get_title(loc="left"))
    assert _unwrap(panels["progrec"].get_title(loc="left")).startswith(
        "Progesterone receptor (fmol/l)"
    )
    assert {a.get_ylabel() for a in panels.values()} == {"\u03b2(t)"}
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in panels.values():  # titles wrap to their panel
        title = next(t for t in _all_texts(fig) if t is ax._left_title)
        assert _extent(title, renderer).width <= ax.get_window_extent(renderer).width + 1.0
    assert _overlaps(fig) == [] and _inside_figure(fig) == [] and _stamped(fig)


# --------------------------------------------------------------------------- all figures
def test_every_figure_saves_byte_identically(in_style, gbsg2, km_two, tmp_path):
    residuals, ph_table, _ = schoenfeld_inputs(gbsg2)
    makers = {
        "km": lambda: _km_figure(km_two, simulated=True),
        "forest": lambda: forest.plot_forest(cox_table(gbsg2), simulated=True),
        "flow": lambda: flow.plot_flow(FLOW, simulated=True),
        "table": lambda: tables.render_table(table1_frame(gbsg2), simulated=True),
        "zph": lambda: zph_plot.plot_schoenfeld(residuals, ph_table, simulated=True),
    }
    for name, make in makers.items():
        digests = []
        for run in range(2):
            fig = make()
            pdf, png = tmp_path / f"{name}{run}.pdf", tmp_path / f"{name}{run}.png"
            style.save_figure(fig, pdf, png, dpi=100)
            plt.close(fig)
            digests.append((_digest(pdf), _digest(png)))
        assert digests[0] == digests[1], name


# --------------------------------------------------------------------------- palette in KM
def test_km_lines_of_therapy_in_greys_with_line_styles(in_style, gbsg2):
    """Fig S4: lines of therapy are black/greys told apart by line style, never group colours."""
    curves, medians, at_risk = km_inputs(gbsg2, "tgrade", np.arange(0, 85, 24))
    labels = {"I": "2nd line", "II": "3rd line", "III": "4th+ line"}
    fig = km_plot.plot_km(curves, medians, at_risk, endpoint_label="surgery", group_labels=labels)
    ax = next(a for a in fig.axes if a.get_gid() == "km")
    steps = [ln for ln in ax.lines if ln.get_label().split("  ")[0] in labels.values()]
    assert len(steps) == 3
    by_label = {ln.get_label().split("  ")[0]: ln for ln in steps}
    for label, ln in by_label.items():
        assert matplotlib.colors.to_hex(ln.get_color()) == style.study_colour(label).lower()
    assert by_label["2nd line"].get_linestyle() == "-"
    assert len({str(ln.get_dashes() if hasattr(ln, "get_dashes") else ln._dash_pattern)
                for ln in steps}) == 3  # fmt: skip
    assert not {matplotlib.colors.to_hex(ln.get_color()) for ln in steps} & {
        c.lower() for c in style.CONDITION_COLOURS.values()
    }
    assert _overlaps(fig) == [] and _inside_figure(fig) == []


# --------------------------------------------------------------------------- dose-response
DR_LINES = ("BT474", "SKBR3")
DR_CONDITIONS = ("parental", "T-R", "TP-R")
#: LL.4 truth of the synthetic plates: lower limit c (TP-R's above 0: its midpoint is not
#: 50 %), ED50 e per line (ng/mL); b = 1, d = 1.
DR_C = {"parental": 0.05, "T-R": 0.1, "TP-R": 0.3}
DR_E = {("BT474", "parental"): 10.0, ("BT474", "T-R"): 30.0, ("BT474", "TP-R"): 150.0}
DR_E.update({("SKBR3", c): e / 2 for (_, c), e in list(DR_E.items())})
EXCLUDED_PLATE = "SKBR3-T-R-B3"


def _ll4(x, c, e, b=1.0, d=1.0):
    return c + (d - c) / (1 + (np.asarray(x, float) / e) ** b)


def dose_response_tables() -> dict:
    """Small dose-response tables in the stage's formats (synthetic LL.4 plates).

    Two lines x three conditions x three biological replicates (days 1-3);
    replicate ED50s scatter around the truth. One plate, SKBR3 T-R replicate 3,
    fails QC (vehicle CV) and is excluded: its wells read 300 % viability so a
    figure that drew them would show it. SKBR3 TP-R replicate 2 never reaches
    50 % of vehicle (absolute IC50 not reached) and has no GR50 (inf).
    """
    rng = np.random.default_rng(1)
    doses = np.r_[0.0, 10.0 ** np.linspace(-1, 3.5, 8)]
    obs, by_rep, fits, curves, qc, via = [], [], [], [], [], []
    grid = 10.0 ** np.linspace(-1, 3.5, 60)
    for line in DR_LINES:
        for cond in DR_CONDITIONS:
            c, e = DR_C[cond], DR_E[(line, cond)]
            fits.append(
                {"cell_line": line, "condition": cond, "drug": "T-DM1",
                 "concentration_unit": "ng/mL", "model": "LL.4", "b": 1.0, "c": c, "d": 1.0,
                 "e": e, "ic50_rel": e, "ic50_rel_lower": e / 1.3, "ic50_rel_upper": e * 1.3,
                 "ic50_rel_reached": True, "ic50_rel_display": f"{e:g} ng/mL", "n_outliers": 0}
            )  # fmt: skip
            fitted = _ll4(grid, c, e)
            curves.append(
                pd.DataFrame(
                    {"cell_line": line, "condition": cond, "drug": "T-DM1",
                     "replicate": "pooled", "dose": grid, "fitted": fitted,
                     "lower": fitted - 0.03, "upper": fitted + 0.03}
                )
            )  # fmt: skip
            for rep in (1, 2, 3):
                plate = f"{line}-{cond}-B{rep}"
                e_r = e * float(np.exp(rng.normal(0, 0.15)))
                excluded = plate == EXCLUDED_PLATE
                for k, dose in enumerate(doses):
                    for w in range(2):
                        v = _ll4(dose, c, e_r) + rng.normal(0, 0.02) if dose > 0 else 1.0
                        v = 3.0 if excluded else v
                        well = f"{'ABCDEFGH'[w]}{k + 1:02d}"
                        obs.append(
                            {"plate_id": plate, "well": well, "cell_line": line,
                             "condition": cond, "drug": "T-DM1", "replicate": rep,
                             "concentration": dose, "concentration_unit": "ng/mL",
                             "viability": v, "residual": rng.normal(0, 0.02),
                             "outlier": False}
                        )  # fmt: skip
                        via.append(
                            {"plate_id": plate, "well": well, "role": "treated",
                             "signal": 1000 * v, "plate_excluded": excluded}
                        )  # fmt: skip
                reached = not (line == "SKBR3" and cond == "TP-R" and rep == 2)
                abs50 = e_r * ((1 - c) / (0.5 - c) - 1)
                by_rep.append(
                    {"cell_line": line, "condition": cond, "drug": "T-DM1", "replicate": rep,
                     "concentration_unit": "ng/mL", "model": "LL.4", "max_dose": doses[-1],
                     "ic50_rel": e_r, "ic50_rel_reached": True,
                     "ic50_abs": abs50 if reached else np.nan, "ic50_abs_reached": reached,
                     "auc": 0.4 + 0.1 * DR_CONDITIONS.index(cond) + 0.01 * rep,
                     "gr50": e_r * 0.8 if reached else np.inf,
                     "gr_max": -0.8 + 0.2 * DR_CONDITIONS.index(cond) + 0.02 * rep}
                )  # fmt: skip
                failing = "vehicle CV 31.0% > 20%" if excluded else ""
                flagged = plate == "BT474-T-R-B2"
                qc.append(
                    {"plate_id": plate, "cell_line": line, "condition": cond, "replicate": rep,
                     "z_prime": 0.55 + 0.03 * rep + (0.1 if line == "SKBR3" else 0.0),
                     "z_prime_reference": "kill" if line == "SKBR3" else "blank",
                     "signal_window": 4.0 + rep, "vehicle_cv_percent": 31.0 if excluded else 6.0,
                     "qc_pass": not (excluded or flagged),
                     "flags": failing or ("Z' 0.48 < 0.5" if flagged else ""),
                     "qc_action": "excluded" if excluded else ("flagged" if flagged else "")}
                )  # fmt: skip
    by_rep = pd.DataFrame(by_rep)
    comps = []
    for line in DR_LINES:
        # the stage fits no replicate of an excluded plate: its ED50 is not in the test
        kept = by_rep[~((by_rep.cell_line == line) & (by_rep.condition == "T-R")
                        & (by_rep.replicate == 3) & (line == "SKBR3"))]  # fmt: skip
        a = kept[(kept.cell_line == line) & (kept.condition == "TP-R")].set_index("replicate")
        b = kept[(kept.cell_line == line) & (kept.condition == "T-R")].set_index("replicate")
        d = np.log(a["ic50_rel"]).sub(np.log(b["ic50_rel"])).dropna()
        t = stats.ttest_1samp(d, 0.0)
        half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
        comps.append(
            {"cell_line": line, "drug": "T-DM1", "family": "fig1", "numerator": "TP-R",
             "denominator": "T-R", "level": 50, "inference": "replicate", "test": "paired t",
             "n_replicates_numerator": len(a), "n_replicates_denominator": len(b),
             "n_pairs": len(d), "ratio": float(np.exp(d.mean())),
             "lower": float(np.exp(d.mean() - half)), "upper": float(np.exp(d.mean() + half)),
             "t": float(t.statistic), "df": len(d) - 1, "p": float(t.pvalue),
             "multiplicity": "holm", "technical_ratio": 5.0, "conf_level": 0.95}
        )  # fmt: skip
    comps = pd.DataFrame(comps)
    from sepher.stats import adjust_pvalues

    comps["p_adjusted"] = adjust_pvalues(comps["p"].to_numpy(), "holm")
    return {
        "observations": pd.DataFrame(obs),
        "fits": pd.DataFrame(fits),
        "curves": pd.concat(curves, ignore_index=True),
        "comparisons": comps,
        "by_replicate": by_rep,
        "qc": pd.DataFrame(qc),
        "viability": pd.DataFrame(via),
    }


@pytest.fixture(scope="module")
def dr_tables():
    return dose_response_tables()


def _fig1(t, **kwargs):
    from sepher.figures.doseresponse_plots import plot_dose_response

    return plot_dose_response(
        t["observations"], t["fits"], t["curves"], t["comparisons"],
        by_replicate=t["by_replicate"], qc=t["qc"], **kwargs,
    )  # fmt: skip


def test_fig1_reports_replicate_level_ratios_with_adjusted_p(in_style, dr_tables):
    fig = _fig1(dr_tables, simulated=True)
    text = " ".join(" ".join(t.get_text().split()) for t in _all_texts(fig))  # lines re-joined
    for _, row in dr_tables["comparisons"].iterrows():
        n = int(row["n_pairs"])
        assert f"paired t on log IC50, {n} replicate pairs;" in text
        assert format_p(row["p_adjusted"], prefix="Holm-adjusted p") in text
        assert f"{row['ratio']:.2f} ({row['lower']:.2f}\u2013{row['upper']:.2f})" in text
    assert "not at 50%" in text and "relative IC50 (curve midpoint)" in text
    assert _stamped(fig) and _overlaps(fig) == [] and _inside_figure(fig) == []


def test_fig1_marks_the_relative_ic50_at_the_curve_midpoint(in_style, dr_tables):
    fig = _fig1(dr_tables)
    markers = {ln.get_gid(): ln for ax in fig.axes for ln in ax.lines if ln.get_gid()}
    for (line, cond), e in DR_E.items():
        diamond = markers[f"ic50-{line}-{cond}"]
        assert diamond.get_marker() == "D"
        np.testing.assert_allclose(diamond.get_xdata(), [e])
        np.testing.assert_allclose(diamond.get_ydata(), [50 * (DR_C[cond] + 1.0)])
    # TP-R's midpoint (65 %) is not on the 50 % line: the marker says which IC50 it is
    assert markers["ic50-BT474-TP-R"].get_ydata()[0] == pytest.approx(65.0)
    # per-replicate relative IC50s in the strip, colour of the condition
    by_rep = dr_tables["by_replicate"]
    rug = markers["replicate-ic50-BT474-TP-R"]
    np.testing.assert_allclose(
        np.sort(rug.get_xdata()),
        np.sort(by_rep[(by_rep.cell_line == "BT474") & (by_rep.condition == "TP-R")].ic50_rel),
    )
    assert matplotlib.colors.to_hex(rug.get_color()) == style.CONDITION_COLOURS["TP-R"].lower()


def test_fig1_leaves_out_the_wells_of_excluded_plates(in_style, dr_tables):
    fig = _fig1(dr_tables)
    panel = next(ax for ax in fig.axes if ax.get_title(loc="left") == "SKBR3")
    # the excluded plate's wells read 300 %: no point or error bar may reach above 130 %
    for container in panel.containers:
        ys = container.lines[0].get_ydata()
        assert np.nanmax(ys) < 130
    legend = [t.get_text() for t in panel.get_legend().get_texts()]
    assert "T-R (n = 2)" in legend and "TP-R (n = 3)" in legend
    rug = next(ln for ln in panel.figure.findobj(matplotlib.lines.Line2D)
               if ln.get_gid() == "replicate-ic50-SKBR3-T-R")  # fmt: skip
    assert len(rug.get_xdata()) == 2


def test_fig1_old_tables_print_the_well_level_p_as_unadjusted(in_style, dr_tables):
    from sepher.figures.doseresponse_plots import plot_dose_response

    t = dr_tables
    old = t["comparisons"][["cell_line", "drug", "numerator", "denominator", "ratio", "lower",
                            "upper", "p"]]  # fmt: skip
    fig = plot_dose_response(t["observations"], t["fits"], t["curves"], old)
    text = " ".join(x.get_text().replace("\n", " ") for x in _all_texts(fig))
    assert "unadjusted p" in text and "(pooled fit)" in text and "Holm-adjusted p =" not in text


def test_figS2_lists_excluded_plates_and_zprime_references(in_style, dr_tables):
    from sepher.figures.doseresponse_plots import plot_dose_response_qc

    t = dr_tables
    fig = plot_dose_response_qc(t["viability"], t["qc"], t["observations"], simulated=True)
    listed = [x for x in fig.texts if x.get_gid() == "failing-plates"]
    text = " ".join(x.get_text().replace("\n", " ") for x in listed)
    assert f"{EXCLUDED_PLATE} (excluded): vehicle CV 31.0% > 20%" in text
    assert "BT474-T-R-B2 (flagged, kept): Z' 0.48 < 0.5" in text
    heads = [x.get_text() for x in fig.texts]
    assert any("1 left out of every fit" in h for h in heads)
    gids = {c.get_gid() for ax in fig.axes for c in ax.collections if c.get_gid()}
    for panel in ("z_prime", "signal_window"):
        assert {f"{panel}-kill-excluded", f"{panel}-blank-flagged", f"{panel}-blank-ok",
                f"{panel}-kill-ok"} <= gids  # fmt: skip
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert any(f"{EXCLUDED_PLATE}" in x and "EXCLUDED" in x for x in titles)
    assert _stamped(fig) and _overlaps(fig) == [] and _inside_figure(fig) == []


def test_figS10_metrics_are_replicate_means_with_t_cis(in_style, dr_tables):
    from sepher.figures.doseresponse_plots import dose_response_metrics, plot_dose_response_metrics

    t = dr_tables
    table = dose_response_metrics(
        t["by_replicate"], qc=t["qc"], comparisons=t["comparisons"]
    ).set_index(["cell_line", "condition"])
    by_rep = t["by_replicate"]
    rows = by_rep[(by_rep.cell_line == "BT474") & (by_rep.condition == "TP-R")]
    logs = np.log(rows.ic50_abs.to_numpy())
    half = stats.t.ppf(0.975, 2) * logs.std(ddof=1) / np.sqrt(3)
    got = table.loc[("BT474", "TP-R")]
    np.testing.assert_allclose(
        [got.ic50_abs, got.ic50_abs_lower, got.ic50_abs_upper],
        np.exp([logs.mean(), logs.mean() - half, logs.mean() + half]),
    )
    assert got.auc == pytest.approx(rows.auc.mean()) and got.ratio_reference == "T-R"
    # not reached in one replicate: counted, no mean
    nr = table.loc[("SKBR3", "TP-R")]
    assert nr.ic50_abs_not_reached == 1 and np.isnan(nr.ic50_abs) and nr.gr50_not_reached == 1
    # the excluded plate's replicate is left out
    assert table.loc[("SKBR3", "T-R"), "n_replicates"] == 2
    fig = plot_dose_response_metrics(
        t["fits"], by_rep, qc=t["qc"], comparisons=t["comparisons"], simulated=True
    )
    assert len([ax for ax in fig.axes if ax.get_gid()]) == 2 * 4  # IC50, AUC, GR50, GRmax
    ic50_ax = next(ax for ax in fig.axes if ax.get_gid() == "SKBR3-ic50_abs")
    open_marks = [c for c in ic50_ax.collections if c.get_gid() == "not-reached-TP-R"]
    assert len(open_marks) == 1 and len(open_marks[0].get_offsets()) == 1
    text = " ".join(x.get_text().replace("\n", " ") for x in _all_texts(fig))
    assert "NR in 1 of 3" in text
    assert format_p(t["comparisons"].p_adjusted.iloc[0], prefix="Holm-adjusted p") in text
    assert _stamped(fig) and _overlaps(fig) == [] and _inside_figure(fig) == []


def test_figS10_without_time_zero_plates_has_no_gr_panels(in_style, dr_tables):
    from sepher.figures.doseresponse_plots import plot_dose_response_metrics

    by_rep = dr_tables["by_replicate"].assign(gr50=np.nan, gr_max=np.nan)
    fig = plot_dose_response_metrics(dr_tables["fits"], by_rep)
    assert sorted(ax.get_gid() for ax in fig.axes if ax.get_gid()) == [
        "BT474-auc", "BT474-ic50_abs", "SKBR3-auc", "SKBR3-ic50_abs"
    ]  # fmt: skip
    assert any("GR metrics not available" in x.get_text() for x in fig.texts)
    assert _overlaps(fig) == [] and _inside_figure(fig) == []
