"""Rule doseresponse_fit_join: a shard's fit parts -> the shard's fit tables.

Each part holds a contiguous run of the shard's curves in the fits table's
order (:func:`sepher.doseresponse.stage.curve_part`), so the parts' tables
copied one after another, as text (:func:`sepher.io.tables.concat_tables`),
are the tables one job would have written (byte for byte when the curves
share one dose series; see ``curve_part``).
"""

from sepher.io.tables import concat_tables
from sepher.workflow import run_logged, snakemake_or_cli


def main(smk):
    for name, out_path in smk.output.items():
        parts = smk.input[name]
        parts = [parts] if isinstance(parts, str) else list(parts)
        concat_tables(parts, out_path)
        print(f"{name}: {len(parts)} part(s) -> {out_path}")


run_logged(snakemake_or_cli(globals()), main)
