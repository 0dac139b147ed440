"""One source of defaults: the config schemas (issue 13).

``config/schemas/*.schema.yaml`` hold the default of every configuration key
(:func:`sepher.io.config.schema_defaults`). These tests prove that the other
places holding the same numbers agree with them:

* ``config/config.yaml`` (the demo study) sets every key to its schema
  default except the listed demo-specific keys;
* every dataclass field that mirrors a config key (:class:`sepher.ihc.IHCParams`)
  and every keyword default of a library function the rules feed from config
  equals the schema default, except the listed, reasoned differences.

A new IHCParams field, a new schema key, a changed default on either side or
a stale exception fails here.
"""

import copy
import dataclasses
import importlib
import inspect

import jsonschema
import pytest
import yaml

from sepher.ihc import IHCParams
from sepher.io.config import check_config, load_schema, resolve_ref, schema_defaults

from .conftest import PROJECT

SCHEMA_FILE = PROJECT / "config" / "schemas" / "config.schema.yaml"
SCHEMA = load_schema(SCHEMA_FILE)
DEFAULTS = schema_defaults(SCHEMA)


def at(path, tree=DEFAULTS):
    """The value at a dotted key path (``"imaging.conf_level"``)."""
    for part in path.split("."):
        tree = tree[part]
    return tree


def _plain(value):
    """Tuples as lists (schemas and YAML have lists only)."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _leaves(node, path=()):
    """(dotted path, schema node) of every key that is not an object of keys."""
    node = resolve_ref(node, SCHEMA)
    for key, sub in node.get("properties", {}).items():
        sub = resolve_ref(sub, SCHEMA)
        if "properties" in sub:
            yield from _leaves(sub, path + (key,))
        else:
            yield ".".join(path + (key,)), sub


LEAVES = dict(_leaves(SCHEMA))


# ------------------------------------------------------------------ the schemas
def _properties(node, path=""):
    """(path, schema, parent) of every property, array items and $defs included."""
    if isinstance(node, dict):
        required = set(node.get("required", ()))
        for key, sub in node.get("properties", {}).items():
            yield f"{path}.{key}".lstrip("."), sub, required
        for key, sub in node.items():
            if key == "properties":
                for name, child in sub.items():
                    yield from _properties(child, f"{path}.{name}".lstrip("."))
            elif isinstance(sub, dict | list):
                yield from _properties(sub, f"{path}.{key}".lstrip(".") if key != "$defs" else "")
    elif isinstance(node, list):
        for item in node:
            yield from _properties(item, path)


def test_every_schema_key_has_a_default_or_is_required():
    """A key a user may leave out has a documented value, or must be given."""
    missing = []
    for path, sub, required in _properties(SCHEMA):
        key = path.rsplit(".", 1)[-1]
        if key in required:
            continue
        merged = resolve_ref(sub, SCHEMA)
        has_default = "default" in merged or "default" in sub
        if not has_default and not _default_from_reference(path):
            missing.append(path)
    assert missing == []


def _default_from_reference(path):
    """A key of a shared definition whose every reference gives it a default."""
    parent, _, key = path.rpartition(".")
    if parent != "km_axis":
        return False
    return all(key in at(f"figures.{figure}") for figure in ("km_os", "km_pfs2", "km_by_line"))


def test_schema_defaults_form_a_valid_configuration():
    """Every default satisfies its own key's constraints."""
    jsonschema.Draft202012Validator(SCHEMA).validate(DEFAULTS)
    assert set(DEFAULTS) == set(SCHEMA["properties"])
    assert {path for path in LEAVES if _has(path)} == set(LEAVES)


def _has(path):
    try:
        at(path)
    except KeyError:
        return False
    return True


def test_stage_schema_defaults_are_the_sections_of_the_whole():
    """A stage's schema file alone gives the same section (benchmarks, unit tests)."""
    for stage in ("doseresponse", "imaging", "ihc"):
        section = schema_defaults(PROJECT / "config" / "schemas" / f"{stage}.schema.yaml")
        assert section == DEFAULTS[stage]


# ------------------------------------------------- check_config fills defaults
def test_config_of_only_inputs_gets_every_default():
    """jsonschema validates but does not fill: check_config fills every left-out key."""
    inputs = {"cohort": "my/cohort.csv", "images": "my/images.tsv"}
    config = check_config(dict(inputs), SCHEMA_FILE, "my.yaml")
    assert config == {**DEFAULTS, **inputs}
    assert config["plates"] is None  # left out: the stage is skipped
    # keys the rules read without .get(), each from a different section
    assert config["simulated"] is False
    assert config["survival"]["tdm1_line"] == 2
    assert config["imaging"]["cell_max_radius_um"] == 7.0
    assert config["ihc"]["strong"] == 0.35
    assert config["doseresponse"]["plates_per_job"] == 200
    assert config["figures"]["km_pfs2"] == {"time_max_months": 48, "tick_step_months": 6}


def test_empty_config_is_the_schema_defaults():
    assert check_config({}, SCHEMA_FILE) == DEFAULTS


def test_partial_section_keeps_the_given_keys_and_fills_the_others():
    config = check_config(
        {
            "survival": {"tdm1_line": 3},
            "imaging": {"camera_offset_adu": 100},
            "figures": {"km_os": {"tick_step_months": 12}},
        },
        SCHEMA_FILE,
    )
    assert config["survival"] == {**DEFAULTS["survival"], "tdm1_line": 3}
    assert config["imaging"] == {**DEFAULTS["imaging"], "camera_offset_adu": 100}
    assert config["figures"]["km_os"] == {"time_max_months": 120, "tick_step_months": 12}
    assert config["figures"]["km_by_line"] == DEFAULTS["figures"]["km_by_line"]


def test_filled_defaults_are_copies():
    """Editing one run's filled config never changes the schema's defaults."""
    first = check_config({}, SCHEMA_FILE)
    first["doseresponse"]["comparisons"].append({"numerator": "x", "denominator": "y"})
    first["survival"]["categorical"]["ecog"] = ["0", "1"]
    assert check_config({}, SCHEMA_FILE) == DEFAULTS
    assert schema_defaults(SCHEMA_FILE) == DEFAULTS


# ------------------------------------------------------------- config/config.yaml
#: Keys of config/config.yaml that differ from the schema default on purpose.
DEMO_SPECIFIC = {
    "cohort": "the demo's input (no default: a left-out input skips its stage)",
    "plates": "the demo's input",
    "images": "the demo's input",
    "simulated": "the demo data are simulated; a real study's are not",
    "survival.covariates": "the demo cohort's adjustment set; covariate columns are optional "
    "(docs/data-dictionary.md), so by default the Cox models are unadjusted",
    "survival.categorical": "the levels of the demo's covariates",
    "survival.subgroups": "subgroups among the demo's covariates (none by default: "
    "covariates are optional)",
    "imaging.camera_offset_adu": "the demo's simulated camera records 100 without light; "
    "0 (already subtracted) is the safe default for other images",
    "imaging.orthogonal_image": "one of the demo's z-stack fields; a study names its own "
    "(null: no orthogonal panel)",
    "ihc.calibration": "half the demo's biopsies carry a reference_score, so the demo shows "
    "the calibration (fig S11); a study without reference scores uses the literature "
    "thresholds",
}


@pytest.fixture(scope="module")
def demo_config():
    with open(PROJECT / "config" / "config.yaml") as stream:
        return yaml.safe_load(stream)


def test_demo_config_keys_equal_the_schema_defaults(demo_config):
    """config/config.yaml repeats the schema's defaults, except the demo's own keys."""
    differ, stale = [], []
    for path in LEAVES:
        try:
            value = at(path, demo_config)
        except KeyError:
            continue  # left out: the default applies
        same = value == at(path)
        if path in DEMO_SPECIFIC:
            if same:
                stale.append(path)
        elif not same:
            differ.append(f"{path}: config.yaml {value!r}, schema {at(path)!r}")
    assert differ == []
    assert stale == [], "listed as demo-specific but equal to the default"


def test_demo_config_is_the_schema_defaults_plus_the_demo_keys(demo_config):
    config = check_config(copy.deepcopy(demo_config), SCHEMA_FILE)
    for path in DEMO_SPECIFIC:
        section, _, key = path.rpartition(".")
        target = at(section, config) if section else config
        target[key] = at(path)
    assert config == DEFAULTS


# ------------------------------------------------------------------- IHCParams
#: IHCParams field -> (schema path, how the rule turns the config value into the field).
IHC_FIELDS = {
    field.name: (f"ihc.{field.name}", None)
    for field in dataclasses.fields(IHCParams)
    if field.name != "estimate_stains"
} | {"estimate_stains": ("ihc.stain_estimation", lambda value: value == "macenko")}
#: ihc keys that are not IHCParams fields: per-biopsy and figure settings (see KEYWORDS).
IHC_STAGE_KEYS = {
    "stain_estimation",
    "asco_cap_cutoff_pct",
    "intense_minority_min_pct",
    "ultralow_min_pct",
    "calibration",
    "calibration_bootstrap",
    "calibration_seed",
    "tiles_per_job",
    "figure_field_um",
    "figure_scale_bar_um",
}


def test_ihc_params_fields_all_map_to_schema_keys():
    """A new IHCParams field needs its schema key (and a new key its field)."""
    assert set(IHC_FIELDS) == {field.name for field in dataclasses.fields(IHCParams)}
    keys = set(DEFAULTS["ihc"])
    assert {path.split(".")[1] for path, _ in IHC_FIELDS.values()} <= keys
    assert keys - set(IHC_FIELDS) == IHC_STAGE_KEYS


@pytest.mark.parametrize("name", sorted(IHC_FIELDS))
def test_ihc_params_default_is_the_schema_default(name):
    path, convert = IHC_FIELDS[name]
    expected = at(path) if convert is None else convert(at(path))
    assert _plain(getattr(IHCParams(), name)) == expected


def test_ihc_params_from_schema_defaults_are_the_defaults():
    """The rule's way (rules/ihc.smk IHC_SCORING) on the schema defaults gives IHCParams()."""
    section = DEFAULTS["ihc"]
    scoring = {key: value for key, value in section.items() if key not in IHC_STAGE_KEYS}
    scoring["estimate_stains"] = section["stain_estimation"] == "macenko"
    assert IHCParams.from_dict(scoring) == IHCParams()


# ------------------------------------------------- keyword defaults of the library
#: (module, function, keyword) -> schema path of the config key the workflow
#: passes there (a tuple of paths: the keyword takes their values as a tuple).
KEYWORDS = {
    # dose-response: rules/doseresponse.smk -> scripts/doseresponse_*.py, fig_dose_response*.py
    ("sepher.doseresponse.stage", "normalise_plates", "min_z_prime"): "doseresponse.min_z_prime",
    ("sepher.doseresponse.stage", "normalise_plates", "max_cv_percent"): (
        "doseresponse.max_cv_percent"
    ),
    ("sepher.doseresponse.qc", "plate_qc", "min_z_prime"): "doseresponse.min_z_prime",
    ("sepher.doseresponse.qc", "plate_qc", "max_cv_percent"): "doseresponse.max_cv_percent",
    ("sepher.doseresponse.qc", "plate_qc", "min_signal_window"): "doseresponse.min_signal_window",
    ("sepher.doseresponse.stage", "normalise_plates", "min_signal_window"): (
        "doseresponse.min_signal_window"
    ),
    ("sepher.doseresponse.stage", "normalise_plates", "qc_action"): "doseresponse.qc_action",
    ("sepher.doseresponse.stage", "compare_conditions", "inference"): "doseresponse.inference",
    ("sepher.doseresponse.stage", "compare_conditions", "multiplicity"): "stats.multiplicity",
    ("sepher.doseresponse.stage", "compare_conditions", "figure_conditions"): (
        "doseresponse.figure_conditions"
    ),
    ("sepher.doseresponse.stage", "fit_curves", "model"): "doseresponse.model",
    ("sepher.doseresponse.stage", "fit_curves", "candidate_models"): (
        "doseresponse.candidate_models"
    ),
    ("sepher.doseresponse.stage", "fit_curves", "outliers"): "doseresponse.outliers",
    ("sepher.doseresponse.stage", "fit_curves", "outlier_q"): "doseresponse.outlier_q",
    ("sepher.doseresponse.stage", "fit_curves", "robust_loss"): "doseresponse.robust_loss",
    ("sepher.doseresponse.stage", "fit_curves", "ed_levels"): "doseresponse.ed_levels",
    ("sepher.doseresponse.stage", "fit_curves", "conf_level"): "doseresponse.conf_level",
    ("sepher.doseresponse.stage", "compare_conditions", "drug"): "doseresponse.drug",
    ("sepher.doseresponse.stage", "compare_conditions", "model"): "doseresponse.model",
    ("sepher.doseresponse.stage", "compare_conditions", "conf_level"): "doseresponse.conf_level",
    ("sepher.figures.doseresponse_plots", "plot_dose_response", "drug"): "doseresponse.drug",
    ("sepher.figures.doseresponse_plots", "plot_dose_response", "conditions"): (
        "doseresponse.figure_conditions"
    ),
    ("sepher.figures.doseresponse_plots", "plot_dose_response", "conf_level"): (
        "doseresponse.conf_level"
    ),
    ("sepher.figures.doseresponse_plots", "plot_dose_response", "simulated"): "simulated",
    ("sepher.figures.doseresponse_plots", "plot_dose_response_qc", "drug"): "doseresponse.drug",
    ("sepher.figures.doseresponse_plots", "plot_dose_response_qc", "min_z_prime"): (
        "doseresponse.min_z_prime"
    ),
    ("sepher.figures.doseresponse_plots", "plot_dose_response_qc", "n_heatmaps"): (
        "doseresponse.qc_heatmap_plates"
    ),
    ("sepher.figures.doseresponse_plots", "plot_dose_response_qc", "simulated"): "simulated",
    (
        "sepher.figures.doseresponse_plots",
        "plot_dose_response",
        "multiplicity",
    ): "stats.multiplicity",
    (
        "sepher.figures.doseresponse_plots",
        "plot_dose_response",
        "inference",
    ): "doseresponse.inference",
    (
        "sepher.figures.doseresponse_plots",
        "plot_dose_response_qc",
        "qc_action",
    ): "doseresponse.qc_action",
    (
        "sepher.figures.doseresponse_plots",
        "plot_dose_response_metrics",
        "drug",
    ): "doseresponse.drug",
    (
        "sepher.figures.doseresponse_plots",
        "plot_dose_response_metrics",
        "conf_level",
    ): "doseresponse.conf_level",
    ("sepher.figures.doseresponse_plots", "plot_dose_response_metrics", "simulated"): "simulated",
    # survival: rules/survival.smk, rules/figures.smk -> scripts/survival_*.py, fig_*.py
    ("sepher.io.cohort", "read_cohort", "group"): "survival.group",
    ("sepher.io.cohort", "read_cohort", "group_levels"): "survival.group_levels",
    ("sepher.io.cohort", "read_cohort", "covariates"): "survival.covariates",
    ("sepher.io.cohort", "read_cohort", "categorical_levels"): "survival.categorical",
    ("sepher.survival.stage", "km_tables", "conf_type"): "survival.km_ci",
    ("sepher.survival.stage", "km_tables", "conf_level"): "survival.conf_level",
    ("sepher.survival.stage", "km_tables", "by_line_max"): "survival.by_line_max",
    ("sepher.survival.stage", "cox_tables", "ties"): "survival.cox_ties",
    ("sepher.survival.stage", "cox_tables", "zph_transform"): "survival.zph_transform",
    ("sepher.survival.stage", "cox_tables", "os_origin"): "survival.os_origin",
    ("sepher.survival.stage", "cox_tables", "delayed_entry"): "survival.delayed_entry",
    ("sepher.survival.stage", "cox_tables", "strata"): "survival.strata",
    ("sepher.survival.stage", "km_tables", "os_origin"): "survival.os_origin",
    ("sepher.survival.stage", "km_tables", "delayed_entry"): "survival.delayed_entry",
    ("sepher.io.cohort", "read_cohort", "response"): "survival.response",
    ("sepher.io.cohort", "read_cohort", "cohort_format"): "cohort_format",
    ("sepher.io.cohort", "read_cohort", "redcap_dictionary"): "redcap_dictionary",
    ("sepher.figures.km_plot", "plot_km", "simulated"): "simulated",
    # IF imaging: rules/imaging.smk -> sepher.imaging.field.measure_field (FIELD_SETTINGS)
    ("sepher.imaging.nuclei", "segment_nuclei", "min_area_um2"): "imaging.nuclei_min_area_um2",
    ("sepher.imaging.nuclei", "segment_nuclei", "max_area_um2"): "imaging.nuclei_max_area_um2",
    ("sepher.imaging.nuclei", "segment_nuclei", "smoothing_sigma_um"): (
        "imaging.nuclei_smoothing_um"
    ),
    ("sepher.imaging.nuclei", "segment_nuclei", "background_size_um"): (
        "imaging.nuclei_background_um"
    ),
    ("sepher.imaging.nuclei", "segment_nuclei", "threshold_method"): "imaging.nuclei_threshold",
    ("sepher.imaging.cells", "segment_cells", "method"): "imaging.cell_method",
    ("sepher.imaging.cells", "segment_cells", "expand_um"): "imaging.cell_expand_um",
    ("sepher.imaging.cells", "segment_cells", "max_radius_um"): "imaging.cell_max_radius_um",
    ("sepher.imaging.cells", "segment_cells", "smoothing_sigma_um"): "imaging.cell_smoothing_um",
    ("sepher.imaging.cells", "segment_cells", "foreground_k"): "imaging.cell_foreground_k",
    ("sepher.imaging.cells", "segment_cells", "edge_fraction"): "imaging.cell_edge_fraction",
    ("sepher.imaging.measure", "measure_cells", "membrane_band_um"): "imaging.membrane_band_um",
    ("sepher.imaging.measure", "measure_cells", "completeness_k"): "imaging.completeness_k",
    ("sepher.imaging.measure", "measure_cells", "nucleus_area_um2"): (
        "imaging.nuclei_min_area_um2",
        "imaging.nuclei_max_area_um2",
    ),
    ("sepher.imaging.measure", "measure_cells", "cell_area_um2"): "imaging.cell_area_um2",
    ("sepher.imaging.measure", "measure_cells", "spill_um"): "imaging.membrane_spill_um",
    ("sepher.imaging.compartments", "compartments", "membrane_band_um"): (
        "imaging.membrane_band_um"
    ),
    ("sepher.imaging.compartments", "compartment_codes", "membrane_band_um"): (
        "imaging.membrane_band_um"
    ),
    ("sepher.imaging.qc", "image_qc", "max_saturated_fraction"): ("imaging.max_saturated_fraction"),
    ("sepher.imaging.qc", "flag_focus_outliers", "k"): "imaging.focus_outlier_k",
    ("sepher.imaging.summary", "aggregate_replicates", "confidence"): "imaging.conf_level",
    ("sepher.imaging.summary", "compare_conditions", "confidence"): "imaging.conf_level",
    ("sepher.figures.imaging_plots", "plot_her2_localisation", "conf_level"): (
        "imaging.conf_level"
    ),
    ("sepher.figures.imaging_plots", "plot_her2_localisation", "simulated"): "simulated",
    ("sepher.figures.imaging_plots", "plot_sequential_exposure", "drug"): "doseresponse.drug",
    ("sepher.figures.imaging_plots", "plot_sequential_exposure", "conf_level"): (
        "imaging.conf_level"
    ),
    ("sepher.figures.imaging_plots", "plot_sequential_exposure", "simulated"): "simulated",
    ("sepher.figures.imaging_plots", "plot_segmentation_qc", "simulated"): "simulated",
    # IHC: rules/ihc.smk -> IHCParams (above) -> the steps of sepher.ihc.score_image
    ("sepher.ihc.deconvolution", "stain_matrix", "hematoxylin"): "ihc.hematoxylin",
    ("sepher.ihc.deconvolution", "stain_matrix", "dab"): "ihc.dab",
    ("sepher.ihc.deconvolution", "rgb_to_od", "background_intensity"): "ihc.background_intensity",
    ("sepher.ihc.deconvolution", "od_planes", "background_intensity"): "ihc.background_intensity",
    ("sepher.ihc.deconvolution", "tissue_from_od_sum", "od_threshold"): "ihc.tissue_od_threshold",
    ("sepher.ihc.segmentation", "segment_nuclei", "smoothing_sigma_um"): (
        "ihc.nucleus_smoothing_um"
    ),
    ("sepher.ihc.segmentation", "segment_nuclei", "threshold_od"): "ihc.nucleus_threshold_od",
    ("sepher.ihc.segmentation", "segment_nuclei", "background_sigma_um"): (
        "ihc.nucleus_background_sigma_um"
    ),
    ("sepher.ihc.segmentation", "segment_nuclei", "contrast_od"): "ihc.nucleus_contrast_od",
    ("sepher.ihc.segmentation", "segment_nuclei", "split_h_od"): "ihc.nucleus_split_h_od",
    ("sepher.ihc.segmentation", "segment_nuclei", "min_area_um2"): "ihc.nucleus_min_area_um2",
    ("sepher.ihc.segmentation", "segment_nuclei", "max_area_um2"): "ihc.nucleus_max_area_um2",
    ("sepher.ihc.segmentation", "segment_cells", "method"): "ihc.cell_method",
    ("sepher.ihc.segmentation", "segment_cells", "expansion_um"): "ihc.cell_expansion_um",
    ("sepher.ihc.segmentation", "membrane_band", "width_um"): "ihc.membrane_width_um",
    ("sepher.ihc.segmentation", "tumour_epithelium", "sigma_um"): "ihc.epithelium_sigma_um",
    ("sepher.ihc.segmentation", "tumour_epithelium", "min_nuclear_fraction"): (
        "ihc.epithelium_min_nuclear_fraction"
    ),
    ("sepher.ihc.segmentation", "tumour_epithelium", "min_extranuclear_od"): (
        "ihc.epithelium_min_extranuclear_od"
    ),
    ("sepher.ihc.scoring", "measure_cells", "weak"): "ihc.weak",
    ("sepher.ihc.scoring", "measure_cells", "n_sectors"): "ihc.n_sectors",
    ("sepher.ihc.biopsy", "score_biopsies", "cutoff_pct"): "ihc.asco_cap_cutoff_pct",
    ("sepher.ihc.biopsy", "score_biopsy", "cutoff_pct"): "ihc.asco_cap_cutoff_pct",
    ("sepher.ihc.biopsy", "asco_cap_category", "cutoff_pct"): "ihc.asco_cap_cutoff_pct",
    ("sepher.ihc.biopsy", "score_biopsies", "intense_minority_min_pct"): (
        "ihc.intense_minority_min_pct"
    ),
    ("sepher.ihc.biopsy", "score_biopsies", "ultralow_min_pct"): "ihc.ultralow_min_pct",
    ("sepher.ihc.biopsy", "score_biopsy", "intense_minority_min_pct"): (
        "ihc.intense_minority_min_pct"
    ),
    ("sepher.ihc.biopsy", "score_biopsy", "ultralow_min_pct"): "ihc.ultralow_min_pct",
    ("sepher.ihc.rules", "classify_cells", "weak"): "ihc.weak",
    ("sepher.ihc.rules", "classify_cells", "moderate"): "ihc.moderate",
    ("sepher.ihc.rules", "classify_cells", "strong"): "ihc.strong",
    ("sepher.ihc.rules", "classify_cells", "complete_fraction"): "ihc.complete_fraction",
    ("sepher.ihc.rules", "classify_cells", "max_fraction_for_0"): "ihc.max_fraction_for_0",
    ("sepher.figures.ihc_plots", "plot_biopsies", "scale_bar_um"): "ihc.figure_scale_bar_um",
    ("sepher.figures.ihc_plots", "plot_biopsies", "cutoff_pct"): "ihc.asco_cap_cutoff_pct",
    ("sepher.figures.ihc_plots", "plot_biopsies", "simulated"): "simulated",
}

#: Keyword defaults that differ from the schema on purpose. The workflow always
#: passes these keys (measure_field takes every FIELD_SETTINGS key, with no
#: default), so only direct library calls see the library value.
KEYWORD_DIFFERENCES = {
    ("sepher.imaging.cells", "segment_cells", "max_radius_um"): "the plain watershed's "
    "limit; the workflow's 7 um also bounds the flat-field background blocks and suits "
    "cultured epithelial cells (schema description)",
    ("sepher.imaging.cells", "segment_cells", "edge_fraction"): "None keeps the thresholded "
    "edge: the redrawn edge applies with foreground='threshold', which only the workflow's "
    "measure_field sets",
    ("sepher.imaging.measure", "measure_cells", "spill_um"): "0 is the plain band mean; the "
    "blur correction needs the flat-fielded channels of measure_field",
    ("sepher.io.cohort", "read_cohort", "cohort_format"): "None and the schema's defaults both "
    "mean: the plain comma-separated ISO-dated CSV",
    ("sepher.io.cohort", "read_cohort", "categorical_levels"): "None and the schema's {} both "
    "mean: no categorical covariates",
}

#: Keyword defaults of the stage entry points that are not config keys: with
#: the mapping above these must cover every keyword default of the function.
NOT_CONFIG = {
    ("sepher.doseresponse.stage", "fit_curves"): {
        "fixed",
        "by_replicate",
        "exclude",
        "band_points",
        "method",
    },
    ("sepher.doseresponse.stage", "compare_conditions"): {"level", "fixed", "by_replicate"},
    ("sepher.doseresponse.stage", "normalise_plates"): {"source"},
    ("sepher.figures.doseresponse_plots", "plot_dose_response"): {"by_replicate", "qc"},
    ("sepher.figures.doseresponse_plots", "plot_dose_response_metrics"): {"qc", "comparisons"},
    ("sepher.figures.doseresponse_plots", "plot_dose_response_qc"): set(),
    ("sepher.io.cohort", "read_cohort"): set(),
    ("sepher.survival.stage", "km_tables"): set(),
    ("sepher.survival.stage", "cox_tables"): set(),
    ("sepher.ihc.rules", "classify_cells"): set(),
    ("sepher.ihc.biopsy", "score_biopsies"): {"by"},
    ("sepher.figures.ihc_plots", "plot_biopsies"): {"width_mm"},
}


def _default(module, function, keyword):
    signature = inspect.signature(getattr(importlib.import_module(module), function))
    parameter = signature.parameters[keyword]
    assert parameter.default is not inspect.Parameter.empty, f"{function}({keyword}) no default"
    return parameter.default


def _schema_value(path):
    if isinstance(path, tuple):
        return [at(p) for p in path]
    return at(path)


@pytest.mark.parametrize("key", sorted(KEYWORDS), ids=lambda key: ".".join(key[1:]))
def test_keyword_default_is_the_schema_default(key):
    value = _plain(_default(*key))
    expected = _schema_value(KEYWORDS[key])
    if key in KEYWORD_DIFFERENCES:
        assert value != expected, "equal now: remove it from KEYWORD_DIFFERENCES"
    else:
        assert value == expected


def test_keyword_differences_are_mapped():
    assert set(KEYWORD_DIFFERENCES) <= set(KEYWORDS)


@pytest.mark.parametrize("entry", sorted(NOT_CONFIG), ids=lambda entry: entry[1])
def test_stage_entry_keywords_are_all_accounted_for(entry):
    """A new keyword with a default on a stage entry point is mapped or declared."""
    module, function = entry
    signature = inspect.signature(getattr(importlib.import_module(module), function))
    with_default = {
        name
        for name, parameter in signature.parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }
    mapped = {key[2] for key in KEYWORDS if key[:2] == entry}
    assert with_default == mapped | NOT_CONFIG[entry]


def test_cohort_format_defaults_are_the_schema_defaults():
    """The library's reading of a cohort export without cohort_format is the schema's."""
    from sepher.io.cohort_format import DEFAULT_FORMAT

    assert _plain(DEFAULT_FORMAT) == at("cohort_format")
