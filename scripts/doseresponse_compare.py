"""Rule doseresponse_compare: ED50 ratios between conditions within each line.

Replicate level (paired / Welch t or a mixed model on log ED of the
per-replicate fits) with drc's well-level EDcomp as technical_* columns;
p_adjusted here covers this shard only: rule doseresponse_join adjusts
across every line.
"""

from sepher.doseresponse.stage import compare_conditions
from sepher.io.tables import read_table, write_table
from sepher.workflow import run_logged, snakemake_or_cli


def main(smk):
    p = smk.params
    by_replicate = read_table(smk.input.by_replicate)
    for column in ("cell_line", "condition", "drug", "replicate"):
        if column in by_replicate.columns:
            by_replicate[column] = by_replicate[column].astype(str)
    residuals = read_table(smk.input.residuals)
    residuals["replicate"] = residuals["replicate"].astype(str)
    comparisons = compare_conditions(
        residuals,
        [dict(pair) for pair in p.comparisons],
        by_replicate=by_replicate,
        drug=p.drug,
        model=p.model,
        conf_level=p.conf_level,
        inference=p.inference,
        multiplicity=p.multiplicity,
        figure_conditions=list(p.figure_conditions),
    )
    print(f"{len(comparisons)} comparison(s) of {p.drug}, inference {p.inference}")
    for row in comparisons.itertuples():
        print(
            f"  {row.cell_line} {row.numerator}/{row.denominator}: {row.test}, "
            f"replicates {row.n_replicates_numerator}/{row.n_replicates_denominator}, "
            f"pairs {row.n_pairs}"
        )
        if p.inference == "mixed" and row.test == "Welch t":
            print("    no two replicate ids carry both conditions: the random replicate "
                  "effect is not identifiable, Welch t run instead")  # fmt: skip
    write_table(comparisons, smk.output.comparisons)


run_logged(snakemake_or_cli(globals()), main)
