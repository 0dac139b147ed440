"""The imaging stage: batches of fields -> measured cells -> image QC, per-cell
flags, summaries per image / replicate / condition, comparisons.

Rule ``imaging_measure_if`` measures a batch of fields (:func:`measure_batch`:
one cells table, one QC record list and one multi-page label TIFF per kind
per batch); rule ``imaging_summarise_if`` joins the batches
(:func:`image_qc_table`, :func:`summarise_cells`, :func:`comparisons_table`).
Fields are measured, and cells summarised, a batch at a time, so memory does
not grow with the number of images.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd

from sepher.imaging.field import measure_field
from sepher.imaging.qc import CELL_FLAGS, flag_focus_outliers
from sepher.imaging.summary import aggregate_images, aggregate_replicates, compare_conditions
from sepher.io.tables import append_table, iter_tables

__all__ = [
    "COMPARED",
    "KEYS",
    "VALUES",
    "comparisons_table",
    "image_qc_table",
    "measure_batch",
    "read_cell_batch",
    "read_qc_records",
    "summarise_cells",
]

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
#: Identifier columns of a cell (with ``cell_id``) and of an image.
KEYS = ["cell_line", "condition", "replicate", "image_id"]
#: :func:`compare_conditions` names (a = reference, b = test) -> table columns.
_RENAME = {"n_a": "n_reference", "n_b": "n_test", "mean_a": "mean_reference", "mean_b": "mean_test"}


def _label_page(writer, labels, image_id):
    """One compressed label page, uint16 when the labels fit, without timestamps."""
    dtype = np.uint16 if labels.max(initial=0) <= np.iinfo(np.uint16).max else np.uint32
    writer.write(
        labels.astype(dtype),
        compression="zlib",
        description=image_id,
        metadata=None,
        software=False,
        datetime=False,
    )


def measure_batch(rows, settings, *, nuclei_path, cells_path):
    """Measure a batch of fields one after another (one field in memory at a time).

    Parameters
    ----------
    rows : sequence of dict
        The batch's fields (sheet rows, :func:`sepher.imaging.field.measure_field`).
    settings : mapping
        Measurement settings (``FIELD_SETTINGS`` of the config).
    nuclei_path, cells_path : path
        Multi-page label TIFFs written here (page i = field i of the batch).

    Returns
    -------
    cells : DataFrame
        Every cell of the batch.
    records : list of dict
        One QC record per field.
    """
    import tifffile

    tables, records = [], []
    with (
        tifffile.TiffWriter(nuclei_path) as nuclei_tif,
        tifffile.TiffWriter(cells_path) as cells_tif,
    ):
        for row in rows:
            nuclei, cells, table, qc = measure_field(row, settings)
            _label_page(nuclei_tif, nuclei, row["image_id"])
            _label_page(cells_tif, cells, row["image_id"])
            tables.append(table)
            records.append(qc)
            logging.info("%s: %d cells", row["image_id"], len(table))
    return pd.concat(tables, ignore_index=True), records


def read_qc_records(paths) -> list[dict]:
    """The per-image QC records of every batch (JSON lists), in batch order."""
    records = []
    for path in paths:
        with open(path) as stream:
            records += json.load(stream)
    return records


def image_qc_table(records, focus_outlier_k: float) -> pd.DataFrame:
    """One row per image: focus and saturation metrics, flags, excluded.

    Parameters
    ----------
    records : list of dict
        QC records of :func:`sepher.imaging.field.measure_field` (``KEYS``,
        ``n_nuclei``, ``focus_score``, ``saturated_fraction``, ``flags``).
    focus_outlier_k : float
        Robust SDs below the run median that flag a field out of focus
        (:func:`sepher.imaging.qc.flag_focus_outliers`).

    Returns
    -------
    DataFrame
        ``KEYS``, ``n_nuclei``, ``focus_score``, ``saturated_fraction_<channel>``,
        ``image_flags`` (sorted, ``;``-separated; "" for a good field),
        ``image_excluded``; sorted by cell line, condition, image id.
    """
    rows = []
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


def comparisons_table(replicates, comparisons, conf_level: float) -> pd.DataFrame:
    """Replicate-level Welch comparisons (:data:`COMPARED` readouts) within each cell line.

    Parameters
    ----------
    replicates : DataFrame
        One row per biological replicate (``cell_line``, ``condition``, values).
    comparisons : list of mapping
        ``{"test": ..., "reference": ...}`` pairs (``imaging.comparisons``);
        a pair with a condition absent from a line is skipped (logged).
    conf_level : float
    """
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
                        **{_RENAME.get(k, k): v for k, v in result.items()},
                    }
                )
    return pd.DataFrame(rows)


def read_cell_batch(path) -> pd.DataFrame:
    """One batch's cells table, identifiers as text."""
    return pd.read_csv(
        path, keep_default_na=False, na_values=[""], dtype={key: str for key in KEYS}
    )


def summarise_cells(cell_paths, image_qc, cells_out, *, conf_level: float):
    """Flag, write and summarise all cells, one batch in memory at a time.

    Each batch (in the order given) gets the union of the batches' columns
    (fields with and without a membrane channel differ), its images' QC
    flags and an ``excluded`` column (a cell QC flag, :data:`CELL_FLAGS`, or
    an excluded image); it is appended to `cells_out` and summarised per
    image (good images only).

    Parameters
    ----------
    cell_paths : sequence of path
        Cells tables of the batches.
    image_qc : DataFrame
        :func:`image_qc_table`.
    cells_out : path
        The run's cells table (written here).
    conf_level : float
        Level of the t-interval over replicates.

    Returns
    -------
    summary : DataFrame
        Condition rows (``level`` = "condition") then image rows, counts as integers.
    replicates : DataFrame
        One row per biological replicate.
    """
    flags = image_qc[["image_id", "image_flags", "image_excluded"]]
    per_image, n_cells = [], 0
    with open(cells_out, "w", newline="") as out:
        for i, cells in enumerate(iter_tables(cell_paths, read=read_cell_batch)):
            cells = cells.merge(flags, on="image_id", how="left")
            cells["excluded"] = cells[list(CELL_FLAGS)].any(axis=1) | cells["image_excluded"]
            cells = cells.sort_values(KEYS + ["cell_id"]).reset_index(drop=True)
            append_table(cells, out, header=i == 0)
            n_cells += len(cells)
            kept_images = cells[~cells["image_excluded"]]
            if len(kept_images):
                per_image.append(
                    aggregate_images(kept_images, values=VALUES, exclude_flags=CELL_FLAGS)
                )
    per_image = pd.concat(per_image, ignore_index=True)
    levels = aggregate_replicates(per_image, values=VALUES, confidence=conf_level)
    per_image = per_image.assign(level="image")
    per_condition = levels["condition"].assign(level="condition")
    summary = pd.concat([per_condition, per_image], ignore_index=True)
    first = ["level", "cell_line", "condition", "replicate", "image_id"]
    summary = summary[first + [c for c in summary.columns if c not in first]]
    summary = summary.sort_values(first, na_position="first")
    for column in ("n_replicates", "n_images", "n_cells", "n_cells_excluded"):
        if column in summary:
            summary[column] = summary[column].astype("Int64")
    replicates = levels["replicate"].sort_values(["cell_line", "condition", "replicate"])
    n_out = int(image_qc["image_excluded"].sum())
    logging.info("%d cells in %d images; %d images excluded", n_cells, len(image_qc), n_out)
    return summary, replicates
