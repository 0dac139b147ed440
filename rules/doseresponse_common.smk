# Start-up check of the dose-response stage (included from rules/doseresponse.smk):
# the plates table is validated once at parse time, before any job runs.


def _validate_plates_once():
    """Check the plates table at start-up, before any job runs.

    A bad value stops the run here with one message (file, row, column,
    value, expectation) and nothing is written to results/. The check is
    remembered per file content under .snakemake/, so dry runs and reruns
    do not pay for it again.
    """
    import hashlib

    from sepher.io.plates import read_plates
    from sepher.io.provenance import sha256

    key = hashlib.sha256(sha256(config["plates"]).encode()).hexdigest()
    marker = Path(".snakemake", "sepher-validated", f"plates-{key}")
    if marker.exists():
        return
    read_plates(config["plates"])
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()


if configured("plates") and workflow.is_main_process:
    _validate_plates_once()
