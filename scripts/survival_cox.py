"""Rule survival_cox: Cox models and proportional-hazards tests."""

from sepher.io.tables import read_table, write_table
from sepher.survival.stage import cox_tables, ph_actions
from sepher.workflow import run_logged, snakemake_or_cli


def main(smk):
    endpoints = read_table(smk.input.endpoints)
    coefficients, models, ph_test, schoenfeld = cox_tables(
        endpoints,
        group=smk.params.group,
        group_levels=[str(v) for v in smk.params.group_levels],
        tdm1_line=smk.params.tdm1_line,
        covariates=smk.params.covariates,
        categorical=dict(smk.params.categorical),
        ties=smk.params.ties,
        zph_transform=smk.params.zph_transform,
        os_origin=smk.params.os_origin,
        delayed_entry=smk.params.delayed_entry,
        strata=list(smk.params.strata),
    )
    ph_test = ph_actions(ph_test, strata=list(smk.params.strata))
    write_table(coefficients, smk.output.coefficients)
    write_table(models, smk.output.models)
    write_table(ph_test, smk.output.ph_test)
    write_table(schoenfeld, smk.output.schoenfeld)


run_logged(snakemake_or_cli(globals()), main)
