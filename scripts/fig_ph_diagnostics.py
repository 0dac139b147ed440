"""Rule figS3_ph_diagnostics: scaled Schoenfeld residuals with PH tests."""

from sepher.figures.labels import coefficient_label, endpoint_name, variable_label
from sepher.figures.style import house_style, save_figure
from sepher.figures.zph_plot import plot_schoenfeld
from sepher.io.tables import read_table
from sepher.workflow import run_logged, snakemake_or_cli


def violations_note(ph, alpha=0.05) -> str:
    """What was done about each PH violation, both endpoints (from ph_test.csv's action)."""
    bad = ph[(ph["term"] != "GLOBAL") & (ph["p"] < alpha)]
    if bad.empty:
        return f"No term violates proportional hazards at p < {alpha:g}."
    parts = [
        f"{endpoint}: " + ", ".join(variable_label(t).split(" (")[0] for t in rows["term"])
        for endpoint, rows in bad.groupby("endpoint", sort=False)
    ]
    return (
        f"PH violations (p < {alpha:g}) {'; '.join(parts)}: those HRs average a time-varying "
        "effect; the group's RMST difference is reported (rmst.csv)."
    )


def main(smk):
    endpoint = smk.params.endpoint
    residuals = read_table(smk.input.schoenfeld)
    residuals = residuals[residuals["endpoint"] == endpoint].drop(columns="endpoint")
    residuals = residuals.dropna(axis=1, how="all")
    all_ph = read_table(smk.input.ph_test)
    ph = all_ph[all_ph["endpoint"] == endpoint].drop(columns="endpoint")
    name = endpoint_name(endpoint, smk.params.tdm1_line)
    with house_style(smk.input.style):
        fig = plot_schoenfeld(
            residuals,
            ph,
            simulated=smk.params.simulated,
            coefficient_labels={c: coefficient_label(c) for c in residuals.columns},
            title=violations_note(all_ph) + f" Panels: {name}, multivariable model",
        )
        save_figure(fig, smk.output.pdf, smk.output.png)


run_logged(snakemake_or_cli(globals()), main)
