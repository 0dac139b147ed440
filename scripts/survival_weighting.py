"""Rule survival_weighting: IPTW (propensity, stabilised weights, balance, weighted estimates)."""

from sepher.io.tables import read_table, write_table
from sepher.survival.stage import weighting_tables
from sepher.workflow import run_logged, snakemake_or_cli


def main(smk):
    p = smk.params
    tables = weighting_tables(
        read_table(smk.input.endpoints),
        group=p.group,
        group_levels=[str(v) for v in p.group_levels],
        tdm1_line=p.tdm1_line,
        covariates=list(p.covariates),
        categorical=dict(p.categorical),
        os_origin=p.os_origin,
        delayed_entry=p.delayed_entry,
        truncation=p.truncation,
        conf_level=p.conf_level,
        ties=p.ties,
    )
    for name in ("iptw", "balance", "propensity"):
        write_table(tables[name], getattr(smk.output, name))


run_logged(snakemake_or_cli(globals()), main)
