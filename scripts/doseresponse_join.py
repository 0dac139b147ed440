"""Rule doseresponse_join: the shards' tables -> one table of each kind.

Shards hold whole cell lines and come in cell-line order; each table is
copied shard after shard (one shard in memory at a time), with the union of
the shards' columns (:func:`sepher.io.tables.concat_tables`). With one shard
the tables are the shard's, byte for byte, except comparisons.csv: its
``p_adjusted`` is recomputed here within each family across every line
(:func:`sepher.doseresponse.replicate.adjust_comparisons`, method
``stats.multiplicity``), so it does not depend on the sharding.
"""

from sepher.doseresponse.replicate import adjust_comparisons
from sepher.io.tables import concat_tables, read_table, write_table
from sepher.workflow import run_logged, snakemake_or_cli


def main(smk):
    for name, out_path in smk.output.items():
        concat_tables(list(smk.input[name]), out_path)
    if "comparisons" not in smk.output.keys():
        return
    comparisons = read_table(smk.output.comparisons)
    adjusted = adjust_comparisons(comparisons, smk.params.multiplicity)
    write_table(adjusted, smk.output.comparisons)
    families = adjusted.groupby("family").size().to_dict() if len(adjusted) else {}
    print(f"p adjusted ({smk.params.multiplicity}) within families {families}")


run_logged(snakemake_or_cli(globals()), main)
