"""Rule figS11_ihc_calibration: reference images' membrane DAB excess by score, the
fitted thresholds with their intervals, and the cross-validated confusion matrix."""

import json

import pandas as pd

from sepher.figures.ihc_calibration_plot import plot_calibration
from sepher.figures.style import house_style, save_figure
from sepher.ihc.calibration import result_from_table
from sepher.ihc.stage import reference_scores
from sepher.io.tables import iter_tables, read_table
from sepher.workflow import run_logged, snakemake_or_cli


def main(smk):
    p = smk.params
    with open(smk.input.thresholds) as stream:
        payload = json.load(stream)
    result = result_from_table(
        read_table(smk.input.table),
        method=payload["method"],
        cv_scheme=payload.get("cv_scheme", ""),
    )
    references = reference_scores(pd.DataFrame(p.tiles))
    cells = pd.concat(iter_tables(smk.input.cells), ignore_index=True)
    cells["image_id"] = cells["image_id"].astype(str)
    cells = cells[cells["image_id"].isin(references.index)]
    with house_style(smk.input.style):
        fig = plot_calibration(result, cells, references, simulated=p.simulated)
        save_figure(fig, smk.output.pdf, smk.output.png)


run_logged(snakemake_or_cli(globals()), main)
