"""Rule doseresponse_split: the plates table -> one plates file per shard of cell lines.

The table is streamed in chunks (bounded memory at any size) and every value
is copied as text, so each shard file holds exactly the input's rows, in
input order; beside it, the rows' numbers in the input (``rows.txt``), so
that per-well tables keep pointing at the user's file.
"""

import pandas as pd

from sepher.workflow import run_logged

CHUNK_ROWS = 500_000


def main(smk):
    shard_of = {line: shard for shard, lines in smk.params.shards.items() for line in lines}
    paths = dict(zip(smk.params.shards, smk.output.plates, strict=True))
    row_paths = dict(zip(smk.params.shards, smk.output.rows, strict=True))
    started = set()
    rows = dict.fromkeys(paths, 0)
    reader = pd.read_csv(smk.input.plates, dtype=str, keep_default_na=False, chunksize=CHUNK_ROWS)
    for chunk in reader:
        shards = chunk["cell_line"].map(shard_of)
        for shard, part in chunk.groupby(shards, sort=True):
            part.to_csv(
                paths[shard],
                mode="a" if shard in started else "w",
                header=shard not in started,
                index=False,
                lineterminator="\n",
            )
            with open(row_paths[shard], "a" if shard in started else "w") as stream:
                stream.writelines(f"{row + 1}\n" for row in part.index)
            started.add(shard)
            rows[shard] += len(part)
    for shard, path in paths.items():
        if shard not in started:  # a line with no rows cannot happen: shards come from the table
            raise RuntimeError(f"shard {shard} received no rows")
        print(f"{shard}: {rows[shard]} wells -> {path}")


run_logged(snakemake, main)  # noqa: F821
