"""Rule doseresponse_normalise: viability per well and plate QC."""

from sepher.doseresponse.stage import normalise_plates
from sepher.io.plates import read_plates
from sepher.io.tables import write_table
from sepher.workflow import run_logged


def main(smk):
    plates = read_plates(smk.input.plates)
    viability, qc = normalise_plates(
        plates, min_z_prime=smk.params.min_z_prime, max_cv_percent=smk.params.max_cv_percent
    )
    print(
        f"{len(plates)} wells on {len(qc)} plates; {int((~qc['qc_pass']).sum())} plate(s) flagged"
    )
    write_table(viability, smk.output.viability)
    write_table(qc, smk.output.qc)


run_logged(snakemake, main)
