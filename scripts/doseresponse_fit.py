"""Rule doseresponse_fit: one fit per curve, pooled and per biological replicate.

With params ``part`` and ``n_parts`` (the rule's fit parts), only the curves
of that part (:func:`sepher.doseresponse.stage.curve_part`); a part without
curves writes empty files, which the fit-join rule skips.
"""

from pathlib import Path

import pandas as pd

from sepher.doseresponse.stage import CURVE_KEYS, curve_part, fit_curves
from sepher.io.tables import read_table, write_table
from sepher.workflow import run_logged, snakemake_or_cli


def main(smk):
    p = smk.params
    viability = read_table(smk.input.viability)
    for column in ("replicate", "plate_id", "well"):
        viability[column] = viability[column].astype(str)
    n_parts = int(getattr(p, "n_parts", 1) or 1)
    pooled_input = viability
    own = None
    if n_parts > 1:
        # this part's curves; the pooled fits also of their plates' other curves,
        # whose outlier vehicle wells the per-replicate fits leave out
        pooled_input = curve_part(viability, int(p.part), n_parts, context=True)
        viability = curve_part(viability, int(p.part), n_parts)
        treated = viability[viability["role"].astype(str) == "treated"]
        if treated.empty:
            print(f"part {int(p.part) + 1} of {n_parts}: no curves")
            for path in smk.output:
                Path(path).write_text("")
            return
        own = pd.MultiIndex.from_frame(treated[list(CURVE_KEYS)].drop_duplicates())
    settings = {
        "model": p.model,
        "candidate_models": list(p.candidate_models),
        "outliers": p.outliers,
        "outlier_q": p.outlier_q,
        "robust_loss": p.robust_loss,
        "ed_levels": list(p.ed_levels),
        "conf_level": p.conf_level,
    }
    fits, residuals, curves = fit_curves(pooled_input, **settings)
    # ROUT outliers of the pooled fits (the part's neighbours' too), left out per replicate
    outliers = residuals[residuals["outlier"]]
    exclude = set(zip(outliers["plate_id"], outliers["well"], strict=True))
    if own is not None:
        fits, residuals, curves = (
            table[pd.MultiIndex.from_frame(table[list(CURVE_KEYS)]).isin(own)].reset_index(
                drop=True
            )
            for table in (fits, residuals, curves)
        )
    print(f"{len(fits)} curves; {int(fits['n_outliers'].sum())} outlier well(s) left out")
    if p.fit_replicates:
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
