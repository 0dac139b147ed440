"""Rule ihc_biopsies: per-cell table, per-biopsy ASCO/CAP scores, pre/post changes."""

import json

import pandas as pd

from sepher.ihc import IHCParams
from sepher.ihc.stage import biopsy_tables
from sepher.io.tables import write_table
from sepher.workflow import run_logged, snakemake_or_cli


def main(smk):
    thresholds = None
    if smk.input.thresholds:
        with open(smk.input.thresholds) as stream:
            thresholds = json.load(stream)["thresholds"]
    cells, samples, paired = biopsy_tables(
        smk.input.cells,
        pd.DataFrame(smk.params.tiles),
        cutoff_pct=smk.params.cutoff_pct,
        samples_file=smk.output.samples,
        params=IHCParams.from_dict(smk.params.scoring),
        thresholds=thresholds,
        intense_minority_min_pct=smk.params.intense_minority_min_pct,
        ultralow_min_pct=smk.params.ultralow_min_pct,
    )
    write_table(cells, smk.output.cells)
    write_table(samples, smk.output.samples)
    write_table(paired, smk.output.paired)


run_logged(snakemake_or_cli(globals()), main)
