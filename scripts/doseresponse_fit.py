"""Rule doseresponse_fit: one fit per curve, pooled and per biological replicate."""

import pandas as pd

from sepher.doseresponse.stage import fit_curves
from sepher.io.tables import read_table, write_table
from sepher.workflow import run_logged, snakemake_or_cli


def main(smk):
    p = smk.params
    viability = read_table(smk.input.viability)
    for column in ("replicate", "plate_id", "well"):
        viability[column] = viability[column].astype(str)
    settings = {
        "model": p.model,
        "candidate_models": list(p.candidate_models),
        "outliers": p.outliers,
        "outlier_q": p.outlier_q,
        "robust_loss": p.robust_loss,
        "ed_levels": list(p.ed_levels),
        "conf_level": p.conf_level,
    }
    fits, residuals, curves = fit_curves(viability, **settings)
    print(f"{len(fits)} curves; {int(fits['n_outliers'].sum())} outlier well(s) left out")
    if p.fit_replicates:
        outliers = residuals[residuals["outlier"]]
        exclude = set(zip(outliers["plate_id"], outliers["well"], strict=True))
        by_replicate, _, _ = fit_curves(
            viability,
            **{**settings, "candidate_models": [p.model]},
            by_replicate=True,
            exclude=exclude,
        )
    else:
        by_replicate = pd.DataFrame(columns=["cell_line", "condition", "drug", "replicate"])
    write_table(fits, smk.output.fits)
    write_table(by_replicate, smk.output.by_replicate)
    write_table(residuals, smk.output.residuals)
    write_table(curves, smk.output.curves)


run_logged(snakemake_or_cli(globals()), main)
