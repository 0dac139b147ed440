"""Rule survival_imputation: multivariable Cox models after multiple imputation (MICE)."""

from sepher.io.tables import read_table, write_table
from sepher.survival.stage import imputation_table
from sepher.workflow import run_logged, snakemake_or_cli


def main(smk):
    p = smk.params
    table = imputation_table(
        read_table(smk.input.endpoints),
        group=p.group,
        group_levels=[str(v) for v in p.group_levels],
        tdm1_line=p.tdm1_line,
        covariates=list(p.covariates),
        categorical=dict(p.categorical),
        os_origin=p.os_origin,
        delayed_entry=p.delayed_entry,
        strata=list(p.strata),
        ties=p.ties,
        m=p.m,
        seed=p.seed,
    )
    write_table(table, smk.output.mi)


run_logged(snakemake_or_cli(globals()), main)
