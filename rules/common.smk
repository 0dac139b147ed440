# Configuration checks, input functions and the figure catalogue.
# Everything a rule needs from config is computed here and passed by params:.
from pathlib import Path

from snakemake.utils import validate


validate(config, schema="../config/schemas/config.schema.yaml", set_default=True)


def _as_level(value):
    """YAML 1.1 reads bare no/yes as booleans: give the cohort's spelling back."""
    if value is True:
        return "yes"
    if value is False:
        return "no"
    return str(value)


SURVIVAL = config["survival"]
SURVIVAL["group_levels"] = [_as_level(v) for v in SURVIVAL["group_levels"]]
SURVIVAL["categorical"] = {
    column: [_as_level(v) for v in levels]
    for column, levels in SURVIVAL["categorical"].items()
}
for _key in ("km_os", "km_pfs2", "km_by_line"):
    config["figures"].setdefault(_key, {})
    validate(
        config["figures"][_key],
        schema="../config/schemas/km_axis.schema.yaml",
        set_default=True,
    )

INPUT_KEYS = ("cohort", "plates", "images")
for _key in INPUT_KEYS:
    _path = config.get(_key)
    if _path and not Path(_path).is_file():
        raise ValueError(
            f"Invalid config: key '{_key}': file '{_path}' does not exist; "
            "expected the path of an existing file (relative to the working directory)."
        )


def configured(key):
    """True when the input `key` (cohort, plates, images) is given in config."""
    return bool(config.get(key))


# Figure id -> the input it is built from (SPEC: figures and their stages).
FIGURES = {
    "fig5_cohort_flow": "cohort",
    "fig6_km_os": "cohort",
    "fig7_km_pfs2": "cohort",
    "fig8_cox_forest": "cohort",
    "table1_characteristics": "cohort",
    "table2_cox": "cohort",
    "figS3_ph_diagnostics": "cohort",
    "figS4_tdm1_by_line": "cohort",
}
TABLES = {
    "cohort": [
        "results/survival/km_medians.csv",
        "results/survival/logrank.csv",
        "results/survival/cox.csv",
        "results/survival/ph_test.csv",
        "results/survival/table1.csv",
        "results/survival/flow.csv",
    ],
}


def figure_files(figure_id):
    return [f"results/figures/{figure_id}.pdf", f"results/figures/{figure_id}.png"]


def default_targets():
    """Every figure and table whose input is configured."""
    targets = []
    for figure_id, needs in FIGURES.items():
        if configured(needs):
            targets += figure_files(figure_id)
    for needs, tables in TABLES.items():
        if configured(needs):
            targets += tables
    if any(configured(key) for key in INPUT_KEYS):
        targets.append("results/provenance.json")
    return targets


def library(*stages):
    """Library modules a script imports: declared as inputs so that editing
    them reruns the rules that use them (Snakemake tracks only the script)."""
    files = ["scripts/sepher/__init__.py", "scripts/sepher/errors.py"]
    for stage in stages:
        files += sorted(str(p) for p in Path("scripts/sepher", stage).glob("*.py"))
    return files


HOUSE_STYLE = "resources/sepher.mplstyle"
