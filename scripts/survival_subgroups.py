"""Rule survival_subgroups: group hazard ratio per subgroup level, interaction tests."""

from sepher.io.tables import read_table, write_table
from sepher.survival.stage import subgroup_table
from sepher.workflow import run_logged, snakemake_or_cli


def main(smk):
    p = smk.params
    table = subgroup_table(
        read_table(smk.input.endpoints),
        group=p.group,
        group_levels=[str(v) for v in p.group_levels],
        tdm1_line=p.tdm1_line,
        subgroups=list(p.subgroups),
        categorical=dict(p.categorical),
        os_origin=p.os_origin,
        delayed_entry=p.delayed_entry,
        ties=p.ties,
    )
    write_table(table, smk.output.subgroups)


run_logged(snakemake_or_cli(globals()), main)
