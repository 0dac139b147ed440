"""Rule survival_km: Kaplan-Meier tables and log-rank tests."""

from sepher.io.tables import read_table, write_table
from sepher.survival.stage import km_tables
from sepher.workflow import run_logged, snakemake_or_cli


def main(smk):
    endpoints = read_table(smk.input.endpoints)
    curves, medians, logrank = km_tables(
        endpoints,
        group=smk.params.group,
        group_levels=[str(v) for v in smk.params.group_levels],
        tdm1_line=smk.params.tdm1_line,
        conf_type=smk.params.conf_type,
        conf_level=smk.params.conf_level,
        by_line_max=smk.params.by_line_max,
    )
    write_table(curves, smk.output.curves)
    write_table(medians, smk.output.medians)
    write_table(logrank, smk.output.logrank)


run_logged(snakemake_or_cli(globals()), main)
