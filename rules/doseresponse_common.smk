# Start-up check and input functions of the dose-response stage (included from
# rules/doseresponse.smk):
# the plates table, and what the doseresponse config names in it, validated once
# at parse time, before any job runs.

#: The form of `plates` (long, plater, grid, gdsc). Instrument forms are converted
#: to the long table by rule plates_import (sepher.io.plate_formats), which keeps
#: each well's source file, plate and grid cell; the stage reads PLATES_TABLE.
PLATES_FORMAT = config["plates_format"]
PLATES_IMPORTED = "results/doseresponse/plates_imported.csv"
PLATES_IMPORT_LOG = "results/doseresponse/plates_import_log.csv"
PLATES_TABLE = (
    (config.get("plates") or []) if PLATES_FORMAT == "long" else PLATES_IMPORTED
)


def plates_source():
    """How messages name the plates input: the file, or the folder / files of an
    instrument form."""
    plates = config.get("plates") or ""
    return ", ".join(plates) if isinstance(plates, list) else str(plates)


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

    params = {
        key: DOSERESPONSE[key] for key in ("drug", "comparisons", "figure_conditions")
    }
    key = hashlib.sha256(
        (
            inputs_digest("plates") + PLATES_FORMAT + json.dumps(params, sort_keys=True)
        ).encode()
    ).hexdigest()
    marker = Path(".snakemake", "sepher-validated", f"plates-{key}")
    if marker.exists():
        return
    plates = read_plates(
        config["plates"], fmt=PLATES_FORMAT, plate_map=config.get("plate_map")
    )
    check_plates_config(plates, plates_source(), config_file=_config_name, **params)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()


if configured("plates") and workflow.is_main_process:
    _validate_plates_once()


_DR_SHARDS = []


def _doseresponse_layout():
    """Shards (id -> cell lines) and fit parts (id -> part ids), cached (see below)."""
    if _DR_SHARDS:
        return _DR_SHARDS[0]
    import hashlib
    import json

    import pandas as pd

    size = int(DOSERESPONSE["plates_per_job"])
    per_job = int(DOSERESPONSE["curves_per_job"])
    key = hashlib.sha256(
        f"{inputs_digest('plates')}:{PLATES_FORMAT}:{size}:{per_job}".encode()
    ).hexdigest()
    cache = Path(".snakemake", "sepher-validated", f"plates-shards-{key}.json")
    if cache.exists():
        layout = json.loads(cache.read_text())
    else:
        columns = ["plate_id", "cell_line", "condition", "drug", "role"]
        if PLATES_FORMAT == "long":
            table = pd.read_csv(config["plates"], usecols=columns, dtype=str)
        else:
            from sepher.io.plate_formats import import_plates

            table = import_plates(
                config["plates"], PLATES_FORMAT, plate_map=config.get("plate_map")
            )[columns].astype(str)
        pairs = table[["plate_id", "cell_line"]].drop_duplicates()
        plates_per_line = pairs.groupby("cell_line", sort=True)["plate_id"].nunique()
        curves_per_line = (
            table.loc[table["role"] == "treated", ["cell_line", "condition", "drug"]]
            .drop_duplicates()
            .groupby("cell_line", sort=True)
            .size()
        )
        shards, current, n_plates = {}, [], 0
        for line, n in plates_per_line.items():
            if current and n_plates + n > size:
                shards[f"dr{len(shards) + 1:04d}"] = current
                current, n_plates = [], 0
            current.append(line)
            n_plates += n
        if current:
            shards[f"dr{len(shards) + 1:04d}"] = current
        parts = {}
        for shard, lines in shards.items():
            n_curves = int(curves_per_line.reindex(lines, fill_value=0).sum())
            n_parts = max(1, -(-n_curves // per_job))
            parts[shard] = [f"p{k + 1:04d}" for k in range(n_parts)]
        layout = {"shards": shards, "parts": parts}
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(layout))
    _DR_SHARDS.append(layout)
    return layout


def doseresponse_shards():
    """Shard id -> cell lines: whole lines, about plates_per_job plates per shard.

    Read from the plates table (a few columns) once per process and
    remembered per (file content, plates_per_job, curves_per_job) under
    .snakemake/, so SLURM jobs and reruns do not read the table again. Shards
    are dr0001, dr0002, ... in cell-line order.
    """
    return _doseresponse_layout()["shards"]


def doseresponse_parts(shard):
    """Fit parts of a shard: p0001, p0002, ..., one per curves_per_job curves.

    A shard's curves (cell line x condition x drug, in the fits table's
    order) are fitted in that many jobs, contiguous runs of about equal
    length (:func:`sepher.doseresponse.stage.curve_part`), and their tables
    concatenated in part order: the shard's tables (byte for byte when the
    curves share one dose series; see curve_part), so a one-line screen uses
    every core.
    """
    return _doseresponse_layout()["parts"][shard]


#: File names of each shard's files (results/doseresponse/shards/<shard>/<name>):
#: the split's, then the tables (joined into results/doseresponse/<name>).
DR_SHARD_FILES = {"plates": "plates.csv", "rows": "rows.txt"}
DR_TABLES = {
    "viability": "viability.csv",
    "qc": "plate_qc.csv",
    "fits": "fits.csv",
    "by_replicate": "fits_by_replicate.csv",
    "residuals": "residuals.csv",
    "curves": "curves.csv",
    "comparisons": "comparisons.csv",
}


def dr_shard_file(name):
    """The file `name` of shard ``{shard}`` (a wildcard pattern)."""
    return f"results/doseresponse/shards/{{shard}}/{name}"


def dr_part_file(name):
    """The file `name` of fit part ``{part}`` of shard ``{shard}`` (a wildcard pattern)."""
    return f"results/doseresponse/shards/{{shard}}/parts/{{part}}/{name}"


def dr_part_files(name):
    """Input function: one file `name` per fit part of the job's shard, in part order."""

    def files(wildcards):
        return expand(
            dr_part_file(name),
            shard=wildcards.shard,
            part=doseresponse_parts(wildcards.shard),
        )

    return files


def dr_shard_files(name):
    """One file `name` per shard, in shard order."""
    return expand(
        dr_shard_file(name),
        shard=list(doseresponse_shards()) if configured("plates") else [],
    )
