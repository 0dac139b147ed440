"""Rules fig6_km_os, fig7_km_pfs2, figS4_tdm1_by_line: Kaplan-Meier figures."""

import numpy as np

from sepher.figures.km_plot import plot_km
from sepher.figures.style import house_style, save_figure
from sepher.io.tables import read_table
from sepher.survival.stage import at_risk_from_curves
from sepher.workflow import run_logged


def main(smk):
    p = smk.params
    pick = {}
    for name in ("curves", "medians", "logrank"):
        table = read_table(getattr(smk.input, name))
        pick[name] = table[table["analysis"] == p.analysis]
    if p.group_levels:
        levels = [str(v) for v in p.group_levels]
        labels = dict(zip(levels, p.group_labels, strict=True))
    else:
        levels = list(dict.fromkeys(pick["medians"]["group"].astype(str)))
        labels = {level: f"{level} line" for level in levels}
    for name in ("curves", "medians"):
        pick[name] = pick[name].assign(group=pick[name]["group"].astype(str))
    grid = np.arange(0, p.axis["time_max_months"] + 1e-9, p.axis["tick_step_months"])
    pick["at_risk"] = at_risk_from_curves(pick["curves"], grid)
    hr = None
    if p.analysis in ("os", "pfs2"):
        cox = read_table(smk.input.cox)
        row = cox[
            (cox["endpoint"] == p.endpoint)
            & (cox["model"] == "univariate")
            & (cox["term"] == p.group)
        ].iloc[0]
        hr = {
            "hr": row["hr"],
            "lower": row["hr_lower"],
            "upper": row["hr_upper"],
            "p": row["p"],
            "label": f"{labels[levels[1]]} vs {labels[levels[0]]}",
        }
    with house_style(smk.input.style):
        fig = plot_km(
            pick["curves"],
            pick["medians"],
            pick["at_risk"],
            endpoint_label=p.endpoint_label,
            group_labels=labels,
            logrank_p=float(pick["logrank"]["p"].iloc[0]),
            hr=hr,
            time_unit="months",
            time_max=p.axis["time_max_months"],
            tick_step=p.axis["tick_step_months"],
            simulated=p.simulated,
            title=p.title,
        )
        save_figure(fig, smk.output.pdf, smk.output.png)


run_logged(snakemake, main)
