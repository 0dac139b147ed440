"""Rule survival_response: RECIST 1.1 best response, ORR and DCR by group."""

from sepher.io.tables import read_table, write_table
from sepher.survival.response import response_table
from sepher.survival.stage import analysis_cohort
from sepher.workflow import run_logged, snakemake_or_cli


def main(smk):
    p = smk.params
    levels = [str(v) for v in p.group_levels]
    cohort = analysis_cohort(read_table(smk.input.endpoints), p.group, levels, p.tdm1_line)
    # blank = not assessed: not evaluable (NE), kept in the denominator
    cohort = cohort.assign(
        **{p.group: cohort[p.group].astype(str), p.response: cohort[p.response].fillna("NE")}
    )
    table = response_table(
        cohort,
        group=p.group,
        group_levels=levels,
        group_labels=list(p.group_labels),
        response_col=p.response,
        conf_level=p.conf_level,
    )
    write_table(table, smk.output.response)


run_logged(snakemake_or_cli(globals()), main)
