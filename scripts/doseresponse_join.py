"""Rule doseresponse_join: the shards' tables -> one table of each kind.

Shards hold whole cell lines and come in cell-line order; each table is
copied shard after shard (one shard in memory at a time), with the union of
the shards' columns (:func:`sepher.io.tables.concat_tables`). With one shard
the tables are the shard's, byte for byte.
"""

from sepher.io.tables import concat_tables
from sepher.workflow import run_logged, snakemake_or_cli


def main(smk):
    for name, out_path in smk.output.items():
        concat_tables(list(smk.input[name]), out_path)


run_logged(snakemake_or_cli(globals()), main)
