"""Rule doseresponse_normalise: viability per well and plate QC (failing plates excluded)."""

from sepher.doseresponse.stage import normalise_plates
from sepher.io.plates import read_plates
from sepher.io.tables import write_table
from sepher.workflow import run_logged, snakemake_or_cli


def main(smk):
    p = smk.params
    plates = read_plates(smk.input.plates)
    # the wells' data rows in the user's plates file (not in this shard's file)
    with open(smk.input.rows) as stream:
        rows = [int(line) for line in stream]
    if len(rows) != len(plates):
        raise RuntimeError(f"{smk.input.rows}: {len(rows)} row numbers for {len(plates)} wells")
    plates["row"] = rows
    viability, qc = normalise_plates(
        plates,
        min_z_prime=p.min_z_prime,
        max_cv_percent=p.max_cv_percent,
        min_signal_window=p.min_signal_window,
        qc_action=p.qc_action,
        source=p.plates_file or smk.input.plates,
    )
    failed = qc.loc[~qc["qc_pass"].astype(bool), "plate_id"].tolist()
    print(
        f"{len(plates)} wells on {len(qc)} plates; {len(failed)} plate(s) failed QC "
        f"({p.qc_action}): {', '.join(map(str, failed)) or 'none'}"
    )
    write_table(viability, smk.output.viability)
    write_table(qc, smk.output.qc)


run_logged(snakemake_or_cli(globals()), main)
