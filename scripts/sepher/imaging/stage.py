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

from sepher.imaging.field import HER2_ITSELF, MEMBRANE_MARKER, measure_field
from sepher.imaging.qc import CELL_FLAGS, flag_focus_outliers
from sepher.imaging.summary import aggregate_images, aggregate_replicates, compare_conditions
from sepher.io.tables import append_table, iter_tables
from sepher.stats import adjust_pvalues

__all__ = [
    "COMPARED",
    "FAMILIES",
    "KEYS",
    "VALUES",
    "comparison_family",
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
COMPARED = ("her2_net_membrane", "nuclear_fraction", "membrane_completeness")
#: Comparison families (multiplicity is controlled within each): fig2 = both
#: conditions in ``imaging.localisation_conditions``; fig3 = the others.
FAMILIES = ("fig2", "fig3")
#: Identifier columns of a cell (with ``cell_id``) and of an image.
KEYS = ["cell_line", "condition", "replicate", "image_id"]
#: segmentation_channel values of QC records written before they were spelled out.
_OLD_CHANNEL_NAMES = {"membrane": MEMBRANE_MARKER, "her2": HER2_ITSELF}
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
        ``KEYS``, ``n_nuclei``, ``segmentation_channel`` ("membrane marker" or
        "HER2"), ``membrane_marker`` (bool), ``focus_score``,
        ``saturated_fraction_<channel>``, ``image_flags`` (sorted,
        ``;``-separated; "" for a good field), ``image_excluded``; sorted by
        cell line, condition, image id.
    """
    rows = []
    for qc in records:
        row = {key: qc[key] for key in KEYS}
        row["n_nuclei"] = qc["n_nuclei"]
        channel = qc.get("segmentation_channel", HER2_ITSELF)
        row["segmentation_channel"] = _OLD_CHANNEL_NAMES.get(channel, channel)
        row["membrane_marker"] = row["segmentation_channel"] != HER2_ITSELF
        row["z_planes"] = int(qc.get("z_planes", 1))
        row["z_step_um"] = qc.get("z_step_um")
        row["focus_plane"] = int(qc.get("focus_plane", 0))
        row["z_plane_spread"] = float(qc.get("z_plane_spread", 0.0))
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


def comparison_family(pair, localisation_conditions=()) -> str:
    """Family of one comparison: its ``family`` key, else ``"fig2"`` when
    both conditions are localisation conditions, else ``"fig3"``."""
    if pair.get("family"):
        return str(pair["family"])
    both = {pair["test"], pair["reference"]} <= set(localisation_conditions or ())
    return FAMILIES[0] if both else FAMILIES[1]


def comparisons_table(
    replicates,
    comparisons,
    conf_level: float,
    *,
    multiplicity: str = "holm",
    localisation_conditions=(),
    compared=COMPARED,
) -> pd.DataFrame:
    """Replicate-level Welch comparisons within each cell line, adjusted per family.

    Parameters
    ----------
    replicates : DataFrame
        One row per biological replicate (``cell_line``, ``condition``, values).
    comparisons : list of mapping
        ``{"test": ..., "reference": ..., "family": ...}`` (``family``
        optional; ``imaging.comparisons``); a pair with a condition absent
        from a line is skipped (logged).
    conf_level : float
    multiplicity : {"holm", "bh", "none"}, default "holm"
        Adjustment within each family (``stats.multiplicity``,
        :func:`sepher.stats.adjust_pvalues`).
    localisation_conditions : sequence of str
        ``imaging.localisation_conditions`` (see :func:`comparison_family`).
    compared : sequence of str, default :data:`COMPARED`
        Readouts compared (those absent from ``replicates`` are skipped).

    Returns
    -------
    DataFrame
        One row per line, comparison and readout: ``cell_line``, ``value``,
        ``test``, ``reference``, ``family``, ``conf_level``, the
        :func:`~sepher.imaging.summary.compare_conditions` results, then
        ``p_adjusted`` (every line, comparison and readout of a family
        adjusted together), ``multiplicity`` (the method) and
        ``family_size`` (tests with a p-value in the family).
    """
    rows = []
    compared = [value for value in compared if value in replicates.columns]
    for line, per_line in replicates.groupby("cell_line", sort=True):
        present = set(per_line["condition"])
        for pair in comparisons:
            test, reference = pair["test"], pair["reference"]
            if not {test, reference} <= present:
                logging.info("%s: %s vs %s skipped (condition absent)", line, test, reference)
                continue
            for value in compared:
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
                        "family": comparison_family(pair, localisation_conditions),
                        "conf_level": conf_level,
                        **{_RENAME.get(k, k): v for k, v in result.items()},
                    }
                )
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table["p_adjusted"] = np.nan
    table["family_size"] = 0
    for _, index in table.groupby("family", sort=True).groups.items():
        p = table.loc[index, "p"].to_numpy(float)
        table.loc[index, "p_adjusted"] = adjust_pvalues(p, multiplicity)
        table.loc[index, "family_size"] = int(np.isfinite(p).sum())
    table["multiplicity"] = multiplicity
    return table


def _marker_counts(per_image, levels, image_qc):
    """Each summarised image's ``segmentation_channel``; images segmented on
    HER2 itself counted per replicate and condition (nothing added when the
    QC table has no ``segmentation_channel``)."""
    if "segmentation_channel" not in image_qc:
        return per_image, levels
    channel = image_qc.set_index("image_id")["segmentation_channel"]
    per_image = per_image.assign(segmentation_channel=per_image["image_id"].map(channel))
    without = per_image["segmentation_channel"] == HER2_ITSELF
    keys = ["cell_line", "condition"]
    replicate = levels["replicate"].copy()
    condition = levels["condition"].copy()
    by_rep = without.groupby([per_image[k] for k in keys + ["replicate"]]).sum()
    by_cond = without.groupby([per_image[k] for k in keys]).sum()
    rep_index = pd.MultiIndex.from_frame(replicate[keys + ["replicate"]])
    cond_index = pd.MultiIndex.from_frame(condition[keys])
    replicate["n_images_without_membrane_marker"] = by_rep.reindex(rep_index).to_numpy(int)
    condition["n_images_without_membrane_marker"] = by_cond.reindex(cond_index).to_numpy(int)
    condition["fraction_images_without_membrane_marker"] = (
        condition["n_images_without_membrane_marker"] / condition["n_images"]
    )
    return per_image, {**levels, "replicate": replicate, "condition": condition}


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
        Condition rows (``level`` = "condition") then image rows, counts as
        integers: cells kept, excluded and per exclusion flag
        (``n_cells_border``, ``n_cells_saturated``,
        ``n_cells_implausible_size``; condition rows also ``fraction_<flag>``
        of all detected cells of the summarised images), and the membrane
        marker: ``segmentation_channel`` per image, and per condition
        ``n_images``, ``n_images_without_membrane_marker`` and
        ``fraction_images_without_membrane_marker`` (of the summarised,
        i.e. not excluded, images).
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
    per_image, levels = _marker_counts(per_image, levels, image_qc)
    per_image = per_image.assign(level="image")
    per_condition = levels["condition"].assign(level="condition")
    summary = pd.concat([per_condition, per_image], ignore_index=True)
    first = ["level", "cell_line", "condition", "replicate", "image_id"]
    summary = summary[first + [c for c in summary.columns if c not in first]]
    summary = summary.sort_values(first, na_position="first")
    for column in summary.columns:
        if column.startswith("n_"):
            summary[column] = summary[column].astype("Int64")
    replicates = levels["replicate"].sort_values(["cell_line", "condition", "replicate"])
    n_out = int(image_qc["image_excluded"].sum())
    logging.info("%d cells in %d images; %d images excluded", n_cells, len(image_qc), n_out)
    return summary, replicates
