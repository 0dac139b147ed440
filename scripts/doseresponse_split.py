"""Rule doseresponse_split: the plates table -> one plates file per shard of cell lines.

The table is streamed in chunks (bounded memory at any size) and every value
is copied as text, so each shard file holds exactly the input's rows, in
input order; beside it, the rows' numbers in the input (``rows.txt``), so
that per-well tables keep pointing at the user's file
(:func:`sepher.io.tables.split_table`).
"""

from sepher.io.tables import split_table
from sepher.workflow import run_logged, snakemake_or_cli


def main(smk):
    shards = smk.params.shards
    paths = dict(zip(shards, smk.output.plates, strict=True))
    rows = split_table(
        smk.input.plates,
        "cell_line",
        {line: shard for shard, lines in shards.items() for line in lines},
        paths,
        dict(zip(shards, smk.output.rows, strict=True)),
    )
    for shard, path in paths.items():
        print(f"{shard}: {rows[shard]} wells -> {path}")


run_logged(snakemake_or_cli(globals()), main)
