"""Rule imaging_measure_if: a batch of IF fields -> QC, nuclei, cells, per-cell HER2.

Fields are measured one after another (one field in memory at a time); the
batch's label images go to one multi-page TIFF per kind (page i = field i of
the batch), its cells to one table and its QC records to one JSON list
(:func:`sepher.imaging.stage.measure_batch`).
"""

from sepher.imaging.stage import measure_batch
from sepher.io.tables import write_json, write_table
from sepher.workflow import run_logged, snakemake_or_cli


def main(smk):
    cells, records = measure_batch(
        smk.params.rows,
        smk.params.settings,
        nuclei_path=smk.output.nuclei,
        cells_path=smk.output.cells,
    )
    write_table(cells, smk.output.table)
    write_json(records, smk.output.qc)


run_logged(snakemake_or_cli(globals()), main)
