"""Rule survival_endpoints: validate the cohort, derive OS and PFS2."""

from sepher.io.cohort import read_cohort
from sepher.io.tables import write_table
from sepher.workflow import run_logged, snakemake_or_cli


def main(smk):
    endpoints = read_cohort(
        smk.input.cohort,
        cohort_format=smk.params.cohort_format,
        redcap_dictionary=smk.input.redcap_dictionary or None,
        group=smk.params.group,
        group_levels=smk.params.group_levels,
        covariates=smk.params.covariates,
        categorical_levels=smk.params.categorical,
        response=smk.params.response,
    )
    write_table(endpoints, smk.output.endpoints)


run_logged(snakemake_or_cli(globals()), main)
