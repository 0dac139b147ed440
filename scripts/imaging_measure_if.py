"""Rule imaging_measure_if: a batch of IF fields -> QC, nuclei, cells, per-cell HER2.

Fields are measured one after another (one field in memory at a time); the
batch's label images go to one multi-page TIFF per kind (page i = field i of
the batch), its cells to one table and its QC records to one JSON list.
"""

import logging

import numpy as np
import pandas as pd
import tifffile

from sepher.imaging.field import measure_field
from sepher.io.tables import write_json, write_table
from sepher.workflow import run_logged


def label_page(writer, labels, image_id):
    """One compressed label page, uint16 when the labels fit, without timestamps."""
    dtype = np.uint16 if labels.max(initial=0) <= np.iinfo(np.uint16).max else np.uint32
    writer.write(
        labels.astype(dtype),
        compression="zlib",
        description=image_id,
        metadata=None,
        software=False,
        datetime=False,
    )


def main(smk):
    tables, records = [], []
    with (
        tifffile.TiffWriter(smk.output.nuclei) as nuclei_tif,
        tifffile.TiffWriter(smk.output.cells) as cells_tif,
    ):
        for row in smk.params.rows:
            nuclei, cells, table, qc = measure_field(row, smk.params.settings)
            label_page(nuclei_tif, nuclei, row["image_id"])
            label_page(cells_tif, cells, row["image_id"])
            tables.append(table)
            records.append(qc)
            logging.info("%s: %d cells", row["image_id"], len(table))
    write_table(pd.concat(tables, ignore_index=True), smk.output.table)
    write_json(records, smk.output.qc)


run_logged(snakemake, main)  # noqa: F821
