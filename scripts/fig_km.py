"""Rules fig6_km_os, fig7_km_pfs2, figS4_tdm1_by_line: Kaplan-Meier figures."""

from sepher.figures.km_plot import km_inputs, plot_km
from sepher.figures.style import house_style, save_figure
from sepher.io.tables import read_table
from sepher.workflow import run_logged, snakemake_or_cli


def main(smk):
    p = smk.params
    data = km_inputs(
        read_table(smk.input.curves),
        read_table(smk.input.medians),
        read_table(smk.input.logrank),
        read_table(smk.input.cox) if p.analysis in ("os", "pfs2") else None,
        analysis=p.analysis,
        endpoint=p.endpoint,
        group=p.group,
        group_levels=p.group_levels,
        group_labels=p.group_labels,
        time_max=p.axis["time_max_months"],
        tick_step=p.axis["tick_step_months"],
    )
    with house_style(smk.input.style):
        fig = plot_km(
            data.pop("curves"),
            data.pop("medians"),
            data.pop("at_risk"),
            **data,
            endpoint_label=p.endpoint_label,
            time_unit="months",
            time_max=p.axis["time_max_months"],
            tick_step=p.axis["tick_step_months"],
            simulated=p.simulated,
            title=p.title,
        )
        save_figure(fig, smk.output.pdf, smk.output.png)


run_logged(snakemake_or_cli(globals()), main)
