# Configuration checks, input functions and the figure catalogue.
# Everything the workflow needs from config is computed here (and passed via params).
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir, "scripts")))

from sepher.errors import InputError
from sepher.figures.labels import line_adjective
from sepher.io.config import check_config
from sepher.scheduling import limit_reevaluation_timers
from sepher.workflow import library_modules

# Snakemake's scheduler otherwise piles up re-evaluation timers: with
# thousands of jobs its main process spends a core on them (see the module).
if workflow.is_main_process:
    limit_reevaluation_timers()

SCHEMA = Path(workflow.basedir, "config", "schemas", "config.schema.yaml")
_config_name = (
    ", ".join(map(str, workflow.overwrite_configfiles)) or "config/config.yaml"
)
check_config(config, SCHEMA, config_file=_config_name)


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

INPUT_KEYS = ("cohort", "plates", "images")
for _key in INPUT_KEYS:
    _paths = config.get(_key)
    _paths = _paths if isinstance(_paths, list) else [_paths] if _paths else []
    # `plates` in an instrument form (plates_format) may be a folder or a list
    _folder_ok = _key == "plates" and config["plates_format"] != "long"
    for _path in _paths:
        if not (Path(_path).is_file() or (_folder_ok and Path(_path).is_dir())):
            raise InputError(
                _config_name,
                "the path of an existing file (relative to the working directory)"
                + (" or folder" if _folder_ok else ""),
                column=_key,
                value=_path,
            )
for _key in ("plate_map", "redcap_dictionary"):
    if config.get(_key) and not Path(config[_key]).exists():
        raise InputError(
            _config_name,
            "the path of an existing file (relative to the working directory)",
            column=_key,
            value=config[_key],
        )
if config.get("plate_map") and config["plates_format"] != "grid":
    raise InputError(
        _config_name,
        "plate_map only with plates_format: grid",
        column="plate_map",
        value=config["plate_map"],
        hint=f"plates_format is {config['plates_format']}.",
    )
if (
    config["plates_format"] == "grid"
    and config.get("plates")
    and not config.get("plate_map")
):
    raise InputError(
        _config_name,
        "a plate_map (the plate map in plater block form) with plates_format: grid",
        column="plate_map",
    )


def _yaml_level(value):
    """A cohort_format value-map key or value as the cohort spells it (YAML 1.1 reads
    bare yes/no as booleans)."""
    return _as_level(value) if isinstance(value, bool) else value


COHORT_FORMAT = {
    **config["cohort_format"],
    "values": {
        column: {_yaml_level(k): _yaml_level(v) for k, v in mapping.items()}
        for column, mapping in config["cohort_format"]["values"].items()
    },
}
config["cohort_format"] = COHORT_FORMAT
REDCAP_DICTIONARY = config.get("redcap_dictionary") or None


def configured(key):
    """True when the input `key` (cohort, plates, images) is given in config."""
    return bool(config.get(key))


def input_files(key):
    """The files of input `key` as read: the cohort (and its REDCap dictionary), every
    plate file and plate map of an instrument form, or the sample sheet."""
    if not configured(key):
        return []
    if key == "plates":
        from sepher.io.plate_formats import plate_sources

        files = plate_sources(config["plates"])
        if config.get("plate_map"):
            files += plate_sources(config["plate_map"])
        return [str(f) for f in files]
    if key == "cohort":
        return [config["cohort"]] + ([REDCAP_DICTIONARY] if REDCAP_DICTIONARY else [])
    return [config[key]]


def inputs_digest(key):
    """SHA-256 over the files of input `key` (names and contents): the cache key of
    its start-up check."""
    import hashlib

    from sepher.io.provenance import sha256

    digest = hashlib.sha256()
    for path in input_files(key):
        digest.update(f"{path}\0{sha256(path)}\n".encode())
    return digest.hexdigest()


_COHORT_COLUMNS = []  # the cohort's mapped header, read once per process


def cohort_has_column(column):
    """True when the configured cohort's header (after cohort_format's column map, or
    through the REDCap dictionary) names `column` (optional columns); the header
    is read once per process."""
    if not configured("cohort") or not column or not Path(config["cohort"]).is_file():
        return False
    if not _COHORT_COLUMNS:
        from sepher.io.cohort import cohort_columns

        _COHORT_COLUMNS.extend(
            cohort_columns(
                config["cohort"],
                cohort_format=COHORT_FORMAT,
                redcap_dictionary=REDCAP_DICTIONARY,
            )
        )
    return column in _COHORT_COLUMNS


# Figure id -> the input it is built from, and the tables of each input;
# each stage's rules file registers its own (docs/architecture.md, registries).
FIGURES = {}
TABLES = {}


#: Where a figure's files are written (the one place that names them).
FIGURE_FILE = "results/figures/{figure_id}.{ext}"
FIGURE_FORMATS = ("pdf", "png")


def figure_files(figure_id):
    """A figure's PDF and PNG paths."""
    return [FIGURE_FILE.format(figure_id=figure_id, ext=ext) for ext in FIGURE_FORMATS]


def figure_outputs(figure_id, category, label):
    """A figure rule's outputs: ``pdf`` and ``png`` (the PNG shown in the report
    under `category` / Figures, labelled `label`, with its caption). Use as
    ``output: **figure_outputs(...)``."""
    pdf, png = figure_files(figure_id)
    return {
        "pdf": pdf,
        "png": report(
            png,
            caption=report_caption(figure_id),
            category=category,
            subcategory="Figures",
            labels={"figure": label},
        ),
    }


def figure_log(figure_id):
    return f"results/logs/figures/{figure_id}.log"


def figure_benchmark(figure_id):
    return f"results/benchmarks/figures/{figure_id}.tsv"


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
        targets.append(rules.provenance.output.json)
    return targets


SCRIPTS = Path(workflow.basedir, "scripts")
_LIBRARY = {}


def library_of(script):
    """Library modules the entry script ``scripts/<script>`` imports (directly or
    through other modules), declared as inputs so that editing one reruns the
    rules whose scripts import it (Snakemake itself tracks only the script).

    Derived from the import graph (sepher.workflow.library_modules), once per
    script and process, and remembered under .snakemake/ per state of the
    scripts folder (every .py file's path, size and modification time), so
    that a rerun does not parse the library again.
    """
    if not _LIBRARY:
        _LIBRARY.update(_library_cache())
    if script not in _LIBRARY:
        _LIBRARY[script] = library_modules(SCRIPTS / script, SCRIPTS / "sepher")
        _LIBRARY_NEW.add(script)
    return _LIBRARY[script]


_LIBRARY_NEW = set()


def _library_cache_file():
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(SCRIPTS.rglob("*.py")):
        stat = path.stat()
        digest.update(f"{path}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return Path(".snakemake", "sepher-validated", f"library-{digest.hexdigest()}.json")


def _library_cache():
    """The remembered import graphs for this state of scripts/ ({} if none)."""
    import json

    path = _library_cache_file()
    return json.loads(path.read_text()) if path.exists() else {}


def save_library_cache():
    """Remember the import graphs computed in this process (called once the
    rules are defined, from the Snakefile's end: rules/report.smk)."""
    import json

    if _LIBRARY_NEW and workflow.is_main_process:
        path = _library_cache_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(_LIBRARY, sort_keys=True))


#: The software environment of all rules (with --sdm conda): the pinned
#: requirements.lock. Relative to the rules/ folder, where every rule is defined.
CONDA_ENV = "../envs/sepher.yaml"


#: A figure's caption with this run's numbers (written by rule report_captions).
CAPTION_FILE = "results/report/captions/{figure_id}.rst"


def report_caption(figure_id):
    """A figure's report caption: report/<figure_id>.rst followed by this run's
    numbers, written by rule report_captions (rules/report.smk). The path is
    absolute in the working directory: Snakemake reads it at --report time."""
    return str(Path(CAPTION_FILE.format(figure_id=figure_id)).resolve())


HOUSE_STYLE = str(Path(workflow.basedir, "resources", "sepher.mplstyle"))


def _validate_cohort_once():
    """Check the cohort table, and that the configured analysis fits it, at start-up.

    A bad value stops the run here with one message (file, row, column,
    value, expectation) and nothing is written to results/. The check is
    remembered per (file content, parameters) under .snakemake/, so dry runs
    and reruns of a large cohort do not pay for it again.
    """
    import hashlib
    import json

    from sepher.io.cohort import check_analysis_set, read_cohort

    params = {
        "group": SURVIVAL["group"],
        "group_levels": SURVIVAL["group_levels"],
        "covariates": SURVIVAL["covariates"],
        "categorical": SURVIVAL["categorical"],
        "tdm1_line": SURVIVAL["tdm1_line"],
        "delayed_entry": SURVIVAL["delayed_entry"]
        and SURVIVAL["os_origin"] == "advanced_dx",
        "strata": SURVIVAL["strata"],
        "subgroups": SURVIVAL["subgroups"],
        "weighting_covariates": SURVIVAL["weighting_covariates"],
        "response": SURVIVAL["response"],
    }
    key = hashlib.sha256(
        (
            inputs_digest("cohort")
            + json.dumps(params, sort_keys=True)
            + json.dumps(COHORT_FORMAT, sort_keys=True)
        ).encode()
    ).hexdigest()
    marker = Path(".snakemake", "sepher-validated", f"cohort-{key}")
    if marker.exists():
        return
    cohort = read_cohort(
        config["cohort"],
        cohort_format=COHORT_FORMAT,
        redcap_dictionary=REDCAP_DICTIONARY,
        group=params["group"],
        group_levels=params["group_levels"],
        covariates=params["covariates"],
        categorical_levels=params["categorical"],
        response=params["response"],
    )
    check_analysis_set(
        cohort,
        config["cohort"],
        group=params["group"],
        group_levels=params["group_levels"],
        tdm1_line=params["tdm1_line"],
        covariates=params["covariates"],
        categorical_levels=params["categorical"],
        config_file=_config_name,
        delayed_entry=params["delayed_entry"],
        strata=params["strata"],
        subgroups=params["subgroups"],
        weighting_covariates=params["weighting_covariates"],
    )
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()


if configured("cohort") and workflow.is_main_process:
    _validate_cohort_once()


def cohort_mem_mb(wildcards, attempt):
    """Memory (MB) for a cohort-stage job, from the cohort file's size
    (sepher.workflow.cohort_mem_mb: measured by `make scale`)."""
    from sepher.workflow import cohort_mem_mb as from_size

    size = sum(Path(f).stat().st_size for f in input_files("cohort"))
    return from_size(size, attempt)


_IMAGES_SHEET = []


def images_sheet():
    """The whole images sample sheet, read and checked once per process (read_sample_sheet).

    The IF and IHC stages take their rows from it; a bad row stops the run
    at parse time, before any job, naming file, row, column and value.
    """
    if not _IMAGES_SHEET:
        from sepher.io.samplesheet import read_sample_sheet

        _IMAGES_SHEET.append(read_sample_sheet(config["images"]))
    return _IMAGES_SHEET[0]


def ihc_tile_cells(wildcards):
    """Input function of ihc_biopsies (rules/ihc.smk), every IHC tile's cell table; a clear
    message, not a traceback, when fig4 or an IHC table is asked for but the
    sheet has no IHC rows."""
    if not IHC_IDS:
        raise InputError(
            config.get("images") or _config_name,
            "at least one IHC row (assay IHC) to make the IHC tables and fig4; "
            "this sheet has none",
            column="assay",
        )
    return expand(IHC_TILE_FILES["cells"], image_id=IHC_IDS)


def _validate_images_once():
    """Check the images sample sheet and open every image at start-up.

    A bad sheet row or image file (unreadable, truncated, z-stack, channel
    index out of range, all black) stops the run here, before any job, with
    one message naming the sheet, row, column, value and expectation; nothing
    is written to results/. Reading the images costs far less than analysing
    them (about 2.3 ms per 256 x 256 x 3 field on one core); the check is remembered per (sheet content, image sizes and
    modification times) under .snakemake/, so dry runs and reruns skip it.
    """
    import hashlib
    import json

    import os

    from sepher.io.images import check_sheet_images, image_stamp
    from sepher.io.provenance import sha256

    sheet = images_sheet()
    stamp = json.dumps([sha256(config["images"]), image_stamp(sheet)])
    key = hashlib.sha256(stamp.encode()).hexdigest()
    marker = Path(".snakemake", "sepher-validated", f"images-{key}")
    if marker.exists():
        return
    # a large sheet is read by up to --cores processes at once (at most 8)
    workers = min(int(workflow.cores or 1), len(os.sched_getaffinity(0)), 8)
    check_sheet_images(
        sheet, config["images"], workers=workers if len(sheet) >= 200 else 1
    )
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()


if configured("images") and workflow.is_main_process:
    _validate_images_once()
