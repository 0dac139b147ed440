"""Rule fig8_cox_forest: forest plot of the multivariable Cox models."""

from sepher.figures.forest import plot_forest
from sepher.figures.labels import VARIABLE_LABELS, endpoint_names, variable_label
from sepher.figures.style import house_style, save_figure
from sepher.io.tables import read_table
from sepher.workflow import run_logged, snakemake_or_cli


def subtitle(cox, strata, delayed_entry) -> str:
    """What the models are: multivariable, adjusted for what, on how many patients."""
    multi = cox[cox["model"] == "multivariate"]
    terms = list(dict.fromkeys(multi["term"]))
    counts = multi.groupby("endpoint", sort=False)[["n", "events", "n_excluded"]].first()
    text = "Multivariable Cox models (Efron ties, Wald 95% CI), each adjusted for " + ", ".join(
        variable_label(t).split(" (")[0] for t in terms
    )
    if strata:
        text += "; stratified by " + ", ".join(variable_label(s) for s in strata)
    if delayed_entry:
        text += "; OS with delayed entry at T-DM1 start"
    text += "; complete cases: " + "; ".join(
        f"{e} n = {int(r.n)} ({int(r.events)} events, {int(r.n_excluded)} excluded)"
        for e, r in counts.iterrows()
    )
    return text


def main(smk):
    cox = read_table(smk.input.cox)
    with house_style(smk.input.style):
        fig = plot_forest(
            cox,
            endpoints=("OS", "PFS2"),
            endpoint_labels=endpoint_names(smk.params.tdm1_line),
            simulated=smk.params.simulated,
            term_labels=VARIABLE_LABELS,
            subtitle=subtitle(cox, list(smk.params.strata), smk.params.delayed_entry),
        )
        save_figure(fig, smk.output.pdf, smk.output.png)


run_logged(snakemake_or_cli(globals()), main)
