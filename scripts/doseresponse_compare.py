"""Rule doseresponse_compare: ED50 ratios between conditions within each line."""

from sepher.doseresponse.stage import compare_conditions
from sepher.io.tables import read_table, write_table
from sepher.workflow import run_logged, snakemake_or_cli


def main(smk):
    p = smk.params
    comparisons = compare_conditions(
        read_table(smk.input.residuals),
        [dict(pair) for pair in p.comparisons],
        drug=p.drug,
        model=p.model,
        conf_level=p.conf_level,
    )
    print(f"{len(comparisons)} comparison(s) of {p.drug}")
    write_table(comparisons, smk.output.comparisons)


run_logged(snakemake_or_cli(globals()), main)
