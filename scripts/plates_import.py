"""Rule plates_import: plates as the instrument wrote them -> the long plates table.

The one documented conversion step (docs/data-dictionary.md, "Plates as the
instrument writes them"): sepher.io.plate_formats reads plater files, a
reader's grid exports with their plate map, or GDSC-style raw tables, and
writes one row per well in the long form, each with its ``source_file``,
``source_plate`` and ``source_well``. Wells left out (overflow readings,
readings outside the plate map) are listed, with the reason, in the import log.
"""

from sepher.io.plate_formats import import_log_table, import_plates
from sepher.io.tables import write_table
from sepher.workflow import run_logged, snakemake_or_cli


def main(smk):
    p = smk.params
    log = []
    table = import_plates(p.plates, p.fmt, plate_map=p.plate_map, log=log)
    write_table(table, smk.output.table)
    write_table(import_log_table(log), smk.output.log)
    print(
        f"{len(table)} wells on {table['plate_id'].nunique()} plates read from "
        f"{table['source_file'].nunique()} file(s) ({p.fmt}); {len(log)} well(s) left out"
    )


run_logged(snakemake_or_cli(globals()), main)
