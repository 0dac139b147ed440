"""Rule doseresponse_normalise: viability per well and plate QC."""

from sepher.doseresponse.stage import normalise_plates
from sepher.io.plates import read_plates
from sepher.io.tables import write_table
from sepher.workflow import run_logged, snakemake_or_cli


def main(smk):
    plates = read_plates(smk.input.plates)
    # the wells' data rows in the user's plates file (not in this shard's file)
    with open(smk.input.rows) as stream:
        rows = [int(line) for line in stream]
    if len(rows) != len(plates):
        raise RuntimeError(f"{smk.input.rows}: {len(rows)} row numbers for {len(plates)} wells")
    plates["row"] = rows
    viability, qc = normalise_plates(
        plates, min_z_prime=smk.params.min_z_prime, max_cv_percent=smk.params.max_cv_percent
    )
    print(
        f"{len(plates)} wells on {len(qc)} plates; {int((~qc['qc_pass']).sum())} plate(s) flagged"
    )
    write_table(viability, smk.output.viability)
    write_table(qc, smk.output.qc)


run_logged(snakemake_or_cli(globals()), main)
