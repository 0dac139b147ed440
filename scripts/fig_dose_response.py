"""Rule fig1_dose_response: T-DM1 dose-response curves per cell line, replicate-level ratios."""

from sepher.figures.doseresponse_plots import plot_dose_response
from sepher.figures.style import house_style, save_figure
from sepher.io.tables import read_table
from sepher.workflow import run_logged, snakemake_or_cli


def _optional(named, key, default=None):
    """An input or param the rule may not declare (older rules): its value, else `default`."""
    return getattr(named, key) if key in named.keys() else default


def main(smk):
    p = smk.params
    by_replicate = _optional(smk.input, "by_replicate")
    qc = _optional(smk.input, "qc")
    with house_style(smk.input.style):
        fig = plot_dose_response(
            read_table(smk.input.residuals),
            read_table(smk.input.fits),
            read_table(smk.input.curves),
            read_table(smk.input.comparisons),
            drug=p.drug,
            conditions=list(p.conditions),
            conf_level=p.conf_level,
            simulated=p.simulated,
            by_replicate=read_table(by_replicate) if by_replicate else None,
            qc=read_table(qc) if qc else None,
            multiplicity=_optional(p, "multiplicity", "holm"),
            inference=_optional(p, "inference", "replicate"),
        )
        save_figure(fig, smk.output.pdf, smk.output.png)


run_logged(snakemake_or_cli(globals()), main)
