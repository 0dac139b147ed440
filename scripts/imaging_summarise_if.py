"""Rule imaging_summarise_if: all IF cells -> summaries, replicates, comparisons, image QC."""

import json
import logging

import pandas as pd

from sepher.imaging import (
    aggregate_images,
    aggregate_replicates,
    compare_conditions,
    flag_focus_outliers,
)
from sepher.io.tables import FLOAT_FORMAT, write_table
from sepher.workflow import run_logged

#: Per-cell readouts summarised per image, replicate and condition.
VALUES = (
    "her2_net_membrane",
    "her2_net_cytoplasm",
    "her2_net_nucleus",
    "her2_mean_membrane",
    "membrane_completeness",
    "nuclear_fraction",
)
#: Readouts compared between conditions.
COMPARED = ("her2_net_membrane", "nuclear_fraction")
RENAME = {"n_a": "n_reference", "n_b": "n_test", "mean_a": "mean_reference", "mean_b": "mean_test"}
CELL_FLAGS = ("border", "saturated", "implausible_size")
KEYS = ["cell_line", "condition", "replicate", "image_id"]


def image_qc_table(qc_files, focus_outlier_k):
    """One row per image: focus and saturation metrics, flags, excluded."""
    rows = []
    records = [qc for path in qc_files for qc in json.loads(open(path).read())]
    for qc in records:
        row = {key: qc[key] for key in KEYS}
        row["n_nuclei"] = qc["n_nuclei"]
        row["focus_score"] = qc["focus_score"]["nuclear"]
        for channel, fraction in sorted(qc["saturated_fraction"].items()):
            row[f"saturated_fraction_{channel}"] = fraction
        row["flags"] = [flag.split(":")[0] for flag in qc["flags"]]
        rows.append(row)
    table = pd.DataFrame(rows)
    out_of_focus = flag_focus_outliers(table["focus_score"].to_numpy(), k=focus_outlier_k)
    flags = []
    for row_flags, blurred in zip(table["flags"], out_of_focus, strict=True):
        names = set(row_flags) | ({"out_of_focus"} if blurred else set())
        flags.append(";".join(sorted(names)))
    table["image_flags"] = flags
    table["image_excluded"] = table["image_flags"] != ""
    table = table.drop(columns="flags")
    return table.sort_values(KEYS[:2] + ["image_id"]).reset_index(drop=True)


def comparisons_table(replicates, comparisons, conf_level):
    """Replicate-level Welch comparisons within each cell line."""
    rows = []
    for line, per_line in replicates.groupby("cell_line", sort=True):
        present = set(per_line["condition"])
        for pair in comparisons:
            test, reference = pair["test"], pair["reference"]
            if not {test, reference} <= present:
                logging.info("%s: %s vs %s skipped (condition absent)", line, test, reference)
                continue
            for value in COMPARED:
                try:
                    result = compare_conditions(
                        per_line, reference, test, value=value, confidence=conf_level
                    )
                except ValueError as error:
                    logging.warning("%s: %s vs %s on %s: %s", line, test, reference, value, error)
                    continue
                result = {k: v for k, v in result.items() if k not in ("a", "b", "value")}
                rows.append(
                    {
                        "cell_line": line,
                        "value": value,
                        "test": test,
                        "reference": reference,
                        "conf_level": conf_level,
                        **{RENAME.get(k, k): v for k, v in result.items()},
                    }
                )
    return pd.DataFrame(rows)


def read_batch(path):
    return pd.read_csv(
        path, keep_default_na=False, na_values=[""], dtype={key: str for key in KEYS}
    )


def cell_columns(paths):
    """Union of the batches' columns, in order of first appearance.

    Batches differ when some fields have a membrane channel and others not;
    the headers alone are read, so this costs nothing at any scale.
    """
    columns = {}
    for path in paths:
        with open(path) as stream:
            columns.update(dict.fromkeys(stream.readline().rstrip("\n").split(",")))
    return list(columns)


def main(smk):
    """Stream the batches (in table order): one batch of cells in memory at a time."""
    p = smk.params
    image_qc = image_qc_table(smk.input.qc, p.focus_outlier_k)
    flags = image_qc[["image_id", "image_flags", "image_excluded"]]
    per_image, n_cells = [], 0
    columns = cell_columns(smk.input.cells)
    with open(smk.output.cells, "w", newline="") as out:
        for i, path in enumerate(smk.input.cells):
            cells = read_batch(path).reindex(columns=columns)
            cells = cells.merge(flags, on="image_id", how="left")
            cells["excluded"] = cells[list(CELL_FLAGS)].any(axis=1) | cells["image_excluded"]
            cells = cells.sort_values(KEYS + ["cell_id"]).reset_index(drop=True)
            cells.to_csv(
                out, index=False, header=i == 0, float_format=FLOAT_FORMAT, lineterminator="\n"
            )
            n_cells += len(cells)
            kept_images = cells[~cells["image_excluded"]]
            if len(kept_images):
                per_image.append(
                    aggregate_images(kept_images, values=VALUES, exclude_flags=CELL_FLAGS)
                )
    per_image = pd.concat(per_image, ignore_index=True)
    levels = aggregate_replicates(per_image, values=VALUES, confidence=p.conf_level)
    per_image = per_image.assign(level="image")
    per_condition = levels["condition"].assign(level="condition")
    summary = pd.concat([per_condition, per_image], ignore_index=True)
    first = ["level", "cell_line", "condition", "replicate", "image_id"]
    summary = summary[first + [c for c in summary.columns if c not in first]]
    summary = summary.sort_values(
        ["level", "cell_line", "condition", "replicate", "image_id"], na_position="first"
    )
    replicates = levels["replicate"].sort_values(["cell_line", "condition", "replicate"])
    comparisons = comparisons_table(replicates, p.comparisons, p.conf_level)

    n_out = int(image_qc["image_excluded"].sum())
    logging.info("%d cells in %d images; %d images excluded", n_cells, len(image_qc), n_out)
    for column in ("n_replicates", "n_images", "n_cells", "n_cells_excluded"):
        if column in summary:
            summary[column] = summary[column].astype("Int64")
    write_table(summary, smk.output.summary)
    write_table(replicates, smk.output.replicates)
    write_table(comparisons, smk.output.comparisons)
    write_table(image_qc, smk.output.image_qc)


run_logged(snakemake, main)  # noqa: F821
