"""Rules figS6_iptw_balance (Love plot) and figS7_propensity_overlap."""

from sepher.figures.cohort_plots import plot_love, plot_propensity_overlap
from sepher.figures.labels import variable_label
from sepher.figures.style import house_style, is_blank, save_figure
from sepher.io.tables import read_table
from sepher.workflow import run_logged, snakemake_or_cli


def main(smk):
    p = smk.params
    with house_style(smk.input.style):
        if p.kind == "balance":
            balance = read_table(smk.input.balance)
            balance["label"] = [
                variable_label(c) + ("" if is_blank(v) else f": {v}")
                for c, v in zip(balance["covariate"], balance["level"], strict=True)
            ]
            fig = plot_love(
                balance,
                simulated=p.simulated,
                title="Covariate balance before and after inverse probability weighting",
            )
        else:
            fig = plot_propensity_overlap(
                read_table(smk.input.propensity),
                group_labels=list(p.group_labels),
                simulated=p.simulated,
                title="Propensity-score overlap between the groups",
            )
        save_figure(fig, smk.output.pdf, smk.output.png)


run_logged(snakemake_or_cli(globals()), main)
