"""Rule imaging_summarise_if: all IF cells -> summaries, replicates, comparisons, image QC.

The batches' cells are streamed (one batch in memory at a time), see
:mod:`sepher.imaging.stage`.
"""

from sepher.imaging.stage import (
    comparisons_table,
    image_qc_table,
    read_qc_records,
    summarise_cells,
)
from sepher.io.tables import write_table
from sepher.workflow import run_logged, snakemake_or_cli


def main(smk):
    p = smk.params
    image_qc = image_qc_table(read_qc_records(smk.input.qc), p.focus_outlier_k)
    summary, replicates = summarise_cells(
        smk.input.cells, image_qc, smk.output.cells, conf_level=p.conf_level
    )
    comparisons = comparisons_table(
        replicates,
        p.comparisons,
        p.conf_level,
        multiplicity=p.multiplicity,
        localisation_conditions=p.localisation_conditions,
    )
    write_table(summary, smk.output.summary)
    write_table(replicates, smk.output.replicates)
    write_table(comparisons, smk.output.comparisons)
    write_table(image_qc, smk.output.image_qc)


run_logged(snakemake_or_cli(globals()), main)
