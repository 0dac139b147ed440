"""Rule survival_table1: patient characteristics by group (SMD, era, follow-up)."""

from sepher.io.tables import read_table, write_table
from sepher.survival.stage import OS_ORIGINS, analysis_cohort, as_levels
from sepher.survival.table1 import characteristics, reverse_km_followup_by_group
from sepher.workflow import run_logged, snakemake_or_cli

FOLLOWUP = {
    "advanced_dx": "Median follow-up from advanced diagnosis, months (95% CI), reverse KM",
    "tdm1_start": "Median follow-up from T-DM1 start, months (95% CI), reverse KM",
}


def main(smk):
    p = smk.params
    levels = [str(v) for v in p.group_levels]
    endpoints = read_table(smk.input.endpoints)
    cohort = analysis_cohort(endpoints, p.group, levels, p.tdm1_line).copy()
    categorical = dict(p.categorical)
    for column in categorical:
        if column in cohort:
            cohort[column] = as_levels(cohort[column])
    cohort[p.group] = cohort[p.group].astype(str)
    time = OS_ORIGINS[p.os_origin]
    followup = reverse_km_followup_by_group(
        cohort[time].to_numpy(float),
        cohort["os_event"].to_numpy(int),
        cohort[p.group].to_numpy(),
        levels,
    )
    year = "tdm1_start_year" if cohort["tdm1_start_year"].notna().any() else None
    table = characteristics(
        cohort,
        group=p.group,
        group_levels=levels,
        group_labels=p.group_labels,
        covariates=p.covariates,
        categorical=categorical,
        year_col=year,
        followup=followup,
        followup_label=FOLLOWUP[p.os_origin],
    )
    write_table(table, smk.output.table1)


run_logged(snakemake_or_cli(globals()), main)
