# Start-up check of the dose-response stage (included from rules/doseresponse.smk):
# the plates table, and what the doseresponse config names in it, validated once
# at parse time, before any job runs.


def _validate_plates_once():
    """Check the plates table at start-up, before any job runs.

    A bad value stops the run here with one message (file, row, column,
    value, expectation) and nothing is written to results/; so does a drug
    or condition of the doseresponse config that the table does not have.
    The check is remembered per (file content, config) under .snakemake/,
    so dry runs and reruns do not pay for it again.
    """
    import hashlib
    import json

    from sepher.io.plates import check_plates_config, read_plates
    from sepher.io.provenance import sha256

    params = {
        key: DOSERESPONSE[key] for key in ("drug", "comparisons", "figure_conditions")
    }
    key = hashlib.sha256(
        (sha256(config["plates"]) + json.dumps(params, sort_keys=True)).encode()
    ).hexdigest()
    marker = Path(".snakemake", "sepher-validated", f"plates-{key}")
    if marker.exists():
        return
    plates = read_plates(config["plates"])
    check_plates_config(plates, config["plates"], config_file=_config_name, **params)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()


if configured("plates") and workflow.is_main_process:
    _validate_plates_once()
