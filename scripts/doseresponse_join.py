"""Rule doseresponse_join: the shards' tables -> one table of each kind.

Shards hold whole cell lines and come in cell-line order; each table is
copied shard after shard (one shard in memory at a time), with the union of
the shards' columns. With one shard the tables are the shard's, byte for byte.
"""

import shutil

import pandas as pd

from sepher.io.tables import FLOAT_FORMAT
from sepher.workflow import run_logged


def header(path):
    """Column names of a table written by write_table ([""] for an empty file)."""
    with open(path) as stream:
        return stream.readline().rstrip("\n").split(",")


def join(paths, out_path):
    paths = [path for path in paths if header(path) != [""]] or paths[:1]  # empty tables
    if len(paths) == 1:
        shutil.copyfile(paths[0], out_path)
        return
    columns = {}
    for path in paths:
        columns.update(dict.fromkeys(header(path)))
    columns = list(columns)
    with open(out_path, "w", newline="") as out:
        for i, path in enumerate(paths):
            if header(path) == columns:  # the common case: copy the text
                with open(path) as stream:
                    if i:
                        stream.readline()
                    shutil.copyfileobj(stream, out)
                continue
            table = pd.read_csv(path, dtype=str, keep_default_na=False)
            table.reindex(columns=columns, fill_value="").to_csv(
                out, index=False, header=i == 0, float_format=FLOAT_FORMAT, lineterminator="\n"
            )


def main(smk):
    for name, out_path in smk.output.items():
        join(list(smk.input[name]), out_path)


run_logged(snakemake, main)  # noqa: F821
