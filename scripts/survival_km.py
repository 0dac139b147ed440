"""Rule survival_km: Kaplan-Meier tables, log-rank tests, restricted mean survival times."""

from sepher.io.tables import read_table, write_table
from sepher.survival.stage import km_tables, rmst_table
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
        os_origin=smk.params.os_origin,
        delayed_entry=smk.params.delayed_entry,
    )
    rmst = rmst_table(
        endpoints,
        group=smk.params.group,
        group_levels=[str(v) for v in smk.params.group_levels],
        tdm1_line=smk.params.tdm1_line,
        horizons=dict(smk.params.rmst_horizons),
        os_origin=smk.params.os_origin,
        delayed_entry=smk.params.delayed_entry,
        conf_level=smk.params.conf_level,
    )
    write_table(curves, smk.output.curves)
    write_table(medians, smk.output.medians)
    write_table(logrank, smk.output.logrank)
    write_table(rmst, smk.output.rmst)


run_logged(snakemake_or_cli(globals()), main)
