"""Rule figS3_ph_diagnostics: scaled Schoenfeld residuals with PH tests."""

from sepher.figures.labels import coefficient_label, endpoint_name
from sepher.figures.style import house_style, save_figure
from sepher.figures.zph_plot import plot_schoenfeld
from sepher.io.tables import read_table
from sepher.workflow import run_logged, snakemake_or_cli


def main(smk):
    endpoint = smk.params.endpoint
    residuals = read_table(smk.input.schoenfeld)
    residuals = residuals[residuals["endpoint"] == endpoint].drop(columns="endpoint")
    residuals = residuals.dropna(axis=1, how="all")
    ph = read_table(smk.input.ph_test)
    ph = ph[ph["endpoint"] == endpoint].drop(columns="endpoint")
    name = endpoint_name(endpoint, smk.params.tdm1_line)
    with house_style(smk.input.style):
        fig = plot_schoenfeld(
            residuals,
            ph,
            simulated=smk.params.simulated,
            coefficient_labels={c: coefficient_label(c) for c in residuals.columns},
            title=f"{name}, multivariate model",
        )
        save_figure(fig, smk.output.pdf, smk.output.png)


run_logged(snakemake_or_cli(globals()), main)
