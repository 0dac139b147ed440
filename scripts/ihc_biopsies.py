"""Rule ihc_biopsies: per-cell table, per-biopsy ASCO/CAP scores, pre/post changes."""

import pandas as pd

from sepher.ihc import paired_changes, score_biopsies
from sepher.io.tables import read_table, write_table
from sepher.workflow import run_logged


def main(smk):
    cells = pd.concat([read_table(path) for path in smk.input.cells], ignore_index=True)
    # the sheet's values (read_table would turn an id like "0012" into a number)
    tiles = pd.DataFrame(smk.params.tiles).set_index("image_id")
    cells["image_id"] = cells["image_id"].astype(str)
    for column in ("patient_id", "timepoint"):
        cells[column] = cells["image_id"].map(tiles[column])
    cells = cells.sort_values(["patient_id", "timepoint", "image_id", "cell_id"], kind="stable")
    write_table(cells, smk.output.cells)
    samples = score_biopsies(cells, cutoff_pct=smk.params.cutoff_pct)
    # pre before post within each patient
    order = samples["timepoint"].map({"pre": 0, "post": 1})
    samples = samples.assign(order=order).sort_values(["patient_id", "order"])
    samples = samples.drop(columns="order").reset_index(drop=True)
    write_table(samples, smk.output.samples)
    write_table(paired_changes(samples, file=smk.output.samples), smk.output.paired)


run_logged(snakemake, main)
