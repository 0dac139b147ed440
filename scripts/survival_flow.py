"""Rule survival_flow: cohort flow counts for fig5."""

from sepher.io.tables import read_table, write_table
from sepher.survival.stage import cohort_flow
from sepher.workflow import run_logged, snakemake_or_cli


def main(smk):
    endpoints = read_table(smk.input.endpoints)
    flow = cohort_flow(
        endpoints,
        group=smk.params.group,
        group_levels=[str(v) for v in smk.params.group_levels],
        group_labels=smk.params.group_labels,
        tdm1_line=smk.params.tdm1_line,
        by_line_max=smk.params.by_line_max,
        covariates=list(smk.params.covariates),
        os_origin=smk.params.os_origin,
        delayed_entry=smk.params.delayed_entry,
    )
    write_table(flow, smk.output.flow)


run_logged(snakemake_or_cli(globals()), main)
