"""Rule survival_table1: patient characteristics by group."""

from sepher.io.tables import read_table, write_table
from sepher.survival.stage import analysis_cohort
from sepher.survival.table1 import characteristics
from sepher.workflow import run_logged, snakemake_or_cli


def main(smk):
    levels = [str(v) for v in smk.params.group_levels]
    endpoints = read_table(smk.input.endpoints)
    cohort = analysis_cohort(endpoints, smk.params.group, levels, smk.params.tdm1_line)
    table = characteristics(
        cohort,
        group=smk.params.group,
        group_levels=levels,
        group_labels=smk.params.group_labels,
        covariates=smk.params.covariates,
        categorical=dict(smk.params.categorical),
    )
    write_table(table, smk.output.table1)


run_logged(snakemake_or_cli(globals()), main)
