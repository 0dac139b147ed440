"""Rule ihc_calibration: fit the membrane intensity thresholds on the reference-scored tiles."""

import pandas as pd

from sepher.ihc import IHCParams
from sepher.ihc.stage import calibrate_from_tiles
from sepher.io.tables import write_json, write_table
from sepher.workflow import run_logged, snakemake_or_cli


def main(smk):
    table, thresholds = calibrate_from_tiles(
        smk.input.cells,
        pd.DataFrame(smk.params.tiles),
        IHCParams.from_dict(smk.params.scoring),
        cutoff_pct=smk.params.cutoff_pct,
        intense_minority_min_pct=smk.params.intense_minority_min_pct,
        n_boot=smk.params.n_boot,
        seed=smk.params.seed,
    )
    print(
        f"calibrated on {thresholds['n_images']} reference tiles: "
        + ", ".join(f"{k} {v:.3f}" for k, v in thresholds["thresholds"].items())
        + f"; cross-validated exact {thresholds['exact']:.2f}, "
        f"weighted kappa {thresholds['kappa_linear']:.2f}"
    )
    write_table(table, smk.output.table)
    write_json(thresholds, smk.output.thresholds)


run_logged(snakemake_or_cli(globals()), main)
