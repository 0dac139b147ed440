"""A new study folder: a commented configuration and empty, correctly headed inputs.

:func:`write_study` writes, into a new folder,

* ``config.yaml``: every key of the configuration with its default, each
  preceded by its schema description (enum choices, entry keys of lists of
  objects) as a comment, generated from ``config/schemas`` at the time of
  writing (:func:`config_text`), so it lists exactly the keys the schemas
  define. The three inputs point, by absolute path, at the templates below;
* ``cohort.csv``, ``plates.csv`` and ``samples.tsv``: the header rows of the
  three inputs and no data row. Their columns come from the readers' own
  constants (:mod:`sepher.io.cohort`, :mod:`sepher.io.plates`,
  :mod:`sepher.io.samplesheet`) and the schema defaults of the columns the
  configuration names (the compared group, the covariates, the response);
* ``README.md``: the next steps, from filling the templates to the run.

Input paths are absolute because the workflow resolves them against its
working directory (``rules/common.smk``): written so, the configuration works
from the sepher checkout and from any other working directory. The empty
templates are deliberately configured: a run before they are filled stops at
start-up with the reader's message ("at least one ... row"), naming the file,
rather than silently leaving a stage out; an input the study does not have is
set to ``null`` by the user (the README says so).

The output depends only on the schemas, the readers' constants and the two
paths (study folder and sepher checkout): the same call writes the same bytes.
"""

from __future__ import annotations

import csv
import io
import shlex
import textwrap
from pathlib import Path

import yaml

from sepher.errors import InputError
from sepher.io.cohort import DATE_COLUMNS, IDENTITY_COLUMNS
from sepher.io.config import load_schema, resolve_ref, schema_defaults
from sepher.io.plates import OPTIONAL_COLUMNS as PLATES_OPTIONAL_COLUMNS
from sepher.io.plates import PLATES_COLUMNS
from sepher.io.samplesheet import SHEET_COLUMNS

__all__ = [
    "INPUT_FILES",
    "LINE_LENGTH",
    "cohort_template_columns",
    "config_text",
    "plates_template_columns",
    "readme_text",
    "sheet_template_columns",
    "write_study",
]

#: Configuration key of each input -> its template file in the study folder.
INPUT_FILES = {"cohort": "cohort.csv", "plates": "plates.csv", "images": "samples.tsv"}
#: Longest line of the written config and README (the project's ruff limit).
LINE_LENGTH = 100

_PROJECT = Path(__file__).resolve().parents[2]
_SCHEMA = Path("config") / "schemas" / "config.schema.yaml"
_INPUT_NOTE = (
    "Set here to this study's template (absolute path: the workflow reads inputs relative "
    "to its working directory). Fill the template before a run (an empty one stops the run "
    "at start-up), or set null if the study has no such data (the stage is left out)."
)


# --------------------------------------------------------------------------- columns
def cohort_template_columns(defaults: dict) -> list[str]:
    """Header of the cohort template: the date form plus the columns the config names.

    Parameters
    ----------
    defaults : dict
        The configuration (e.g. :func:`sepher.io.config.schema_defaults`): its
        ``survival.group``, ``survival.covariates`` and ``survival.response``
        name optional columns.

    Returns
    -------
    list of str
        :data:`sepher.io.cohort.IDENTITY_COLUMNS` and
        :data:`~sepher.io.cohort.DATE_COLUMNS` (the form that derives every
        endpoint, entry time and era), then the group column, the covariates
        and the response column when the config names them, each once.
    """
    survival = defaults.get("survival", {})
    columns = [*IDENTITY_COLUMNS, *DATE_COLUMNS]
    named = [survival.get("group"), *survival.get("covariates", []), survival.get("response")]
    for column in named:
        if column and column not in columns:
            columns.append(column)
    return columns


def plates_template_columns() -> list[str]:
    """Header of the plates template: the required columns, then the optional ``time_h``."""
    return [*PLATES_COLUMNS, *PLATES_OPTIONAL_COLUMNS]


def sheet_template_columns() -> list[str]:
    """Header of the sample-sheet template: every column of the sheet, in its order."""
    return list(SHEET_COLUMNS)


def _header(columns, delimiter) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\n").writerow(columns)
    return buffer.getvalue()


# --------------------------------------------------------------------------- config
def _flow(value) -> str:
    """`value` as one YAML flow-style line (quoted where YAML would misread it)."""
    text = yaml.safe_dump(
        value, default_flow_style=True, width=10**9, sort_keys=False, allow_unicode=True
    ).rstrip("\n")
    return text.removesuffix("\n...")


def _comment(text: str, pad: str) -> list[str]:
    # a no-break space keeps "10 %" on one line (textwrap breaks at ASCII spaces only)
    words = " ".join(str(text).split()).replace(" %", "\u00a0%")
    if not words:
        return []
    lines = textwrap.wrap(
        words,
        width=LINE_LENGTH - len(pad) - 2,
        break_long_words=False,
        break_on_hyphens=False,
    )
    return [f"{pad}# {line}".replace("\u00a0", " ") for line in lines]


def _choices(values) -> str:
    return ", ".join(_flow(v) for v in values)


def _describe(node: dict, schema: dict) -> str:
    """The comment of a key: description, enum choices, entry keys of a list of objects."""
    parts = [node.get("description", "")]
    if "enum" in node:
        parts.append(f"One of: {_choices(node['enum'])}.")
    items = (
        resolve_ref(node.get("items", {}), schema) if isinstance(node.get("items"), dict) else {}
    )
    if "enum" in items:
        parts.append(f"Each one of: {_choices(items['enum'])}.")
    if items.get("properties"):
        required = set(items.get("required", []))
        entries = []
        for name, sub in items["properties"].items():
            sub = resolve_ref(sub, schema)
            if name in required:
                status = "required"
            elif "default" in sub:
                status = f"optional, default {_flow(sub['default'])}"
            else:
                status = "optional"
            text = f"{name} ({status})"
            if sub.get("description"):
                text += ": " + " ".join(sub["description"].split())
            entries.append(text)
        parts.append("Entry keys: " + " ".join(entries))
    return " ".join(part.strip() for part in parts if part and part.strip())


def _is_section(node: dict) -> bool:
    return bool(node.get("properties")) and node.get("type") == "object"


def _render(node: dict, schema: dict, values: dict, depth: int, lines: list[str]) -> None:
    pad = "  " * depth
    node = resolve_ref(node, schema)
    for key, sub in node.get("properties", {}).items():
        sub = resolve_ref(sub, schema)
        if depth == 0 and lines:
            lines.append("")
        description = _describe(sub, schema)
        if depth == 0 and key in INPUT_FILES:
            description = f"{description} {_INPUT_NOTE}"
        lines.extend(_comment(description, pad))
        if _is_section(sub):
            lines.append(f"{pad}{key}:")
            _render(sub, schema, values.get(key, {}), depth + 1, lines)
            continue
        value = values.get(key, sub.get("default"))
        line = f"{pad}{key}: {_flow(value)}"
        if len(line) > LINE_LENGTH and isinstance(value, list) and value:
            lines.append(f"{pad}{key}:")
            lines.extend(f"{pad}  - {_flow(item)}" for item in value)
        else:
            lines.append(line)


def config_text(schema, inputs: dict | None = None) -> str:
    """A configuration file of every schema key with its default, commented.

    Parameters
    ----------
    schema : path or dict
        The configuration schema (``config/schemas/config.schema.yaml``, its
        sibling files inlined by :func:`sepher.io.config.load_schema`) or the
        loaded schema.
    inputs : dict, optional
        Values replacing the defaults of top-level keys (the input paths).

    Returns
    -------
    str
        YAML text: a header, then each key of the schema, in schema order,
        preceded by its description wrapped into ``#`` comments of at most
        :data:`LINE_LENGTH` characters; sections (objects with properties)
        nested two spaces deeper; each value the schema default in flow style
        (``null`` when the default is null), lists too long for one line one
        item per line. Loaded with PyYAML it equals
        :func:`~sepher.io.config.schema_defaults` updated with `inputs`.
    """
    if not isinstance(schema, dict):
        schema = load_schema(schema)
    values = {**schema_defaults(schema), **(inputs or {})}
    lines = _comment(
        "sepher configuration of a new study, written by `make study` "
        "(scripts/new_study.py) from the configuration schemas (config/schemas/*.schema.yaml "
        "of the sepher checkout): every key with its default and its description. A key left "
        "out takes the same default; a key not in the schemas stops the run. Next steps: "
        "README.md beside this file.",
        "",
    )
    if schema.get("description"):
        lines.extend(_comment(schema["description"], ""))
    lines.append("")
    body: list[str] = []
    _render(schema, schema, values, 0, body)
    return "\n".join(lines + body) + "\n"


# --------------------------------------------------------------------------- README
def readme_text(dest, project_root, cohort_columns) -> str:
    """The study folder's README: fill the templates, or name instrument files, then run.

    Parameters
    ----------
    dest : path
        The study folder (absolute).
    project_root : path
        The sepher checkout the study is run from (absolute).
    cohort_columns : sequence of str
        Header of the cohort template (:func:`cohort_template_columns`).
    """
    dest, root = Path(dest), Path(project_root)
    dictionary = root / "docs" / "data-dictionary.md"
    config = shlex.quote(str(dest / "config.yaml"))
    checkout = shlex.quote(str(root))
    optional = [c for c in cohort_columns if c not in (*IDENTITY_COLUMNS, *DATE_COLUMNS)]
    run = (
        f"cd {checkout}\n"
        f".venv/bin/snakemake --cores all \\\n    --configfile {config}\n"
        f".venv/bin/snakemake --report results/report.html \\\n    --configfile {config}"
    )
    here = (
        f"cd {checkout}\n"
        ".venv/bin/snakemake --cores all \\\n"
        f"    --snakefile {shlex.quote(str(root / 'Snakefile'))} \\\n"
        f"    --directory {shlex.quote(str(dest))} \\\n"
        f"    --configfile {config}"
    )
    optional_text = (
        f" The config also names {', '.join(f'`{c}`' for c in optional)} (the response "
        "column holds the RECIST 1.1 best response CR / PR / SD / PD / NE or blank; without "
        "it Table 3 is left out)."
        if optional
        else ""
    )
    optional_text += " Each covariate listed in `survival.covariates` must be a column."
    paragraphs = [
        "# A sepher study",
        f"Written by `make study` from the sepher checkout `{root}`. The data dictionary, "
        f"`{dictionary}`, describes every input column and every output table.",
        _TABLE,
        "## 1. Fill the templates",
        "Each template holds its header row and no data: add one row per patient, well or "
        "image below the header (keep the header; column order does not matter). Key rules "
        "(the data dictionary has the rest):",
        "- `cohort.csv` (comma-separated, UTF-8): `patient_id` is a pseudonymous study code "
        "(names, tax codes, phone numbers, e-mails and other identifiers are refused). "
        "Dates are ISO 8601 `YYYY-MM-DD`; `tdm1_progression_date` is blank when no "
        "progression was observed, and `vital_status` (alive / dead) is the status at "
        "`last_contact_date`. `first_line_pertuzumab` is yes / no. Instead of the dates "
        "you may give durations (`os_months, os_event, pfs2_months, pfs2_event`)." + optional_text,
        "- `plates.csv` (comma-separated): one row per well reading; `well` is A01..P24; "
        "`role` is treated (drug at a concentration > 0), vehicle (dose 0, 100 % "
        "viability), blank (medium only, 0 %), time0 (read at treatment, for GR metrics) or "
        "kill (a kill control, plate QC only). `replicate` is the biological replicate: give "
        "conditions run on the same day the same id. `time_h` is optional (hours since "
        "treatment).",
        "- `samples.tsv` (tab-separated): one row per image file; `path` is relative to "
        "`samples.tsv` and may not point outside this folder (put the images under it, e.g. "
        "`images/`). IF rows fill `cell_line, condition, replicate, her2_channel, "
        "nuclear_channel` (optional `membrane_channel`); IHC rows fill `patient_id`, "
        "`timepoint` (pre / post) and optionally `reference_score` (0 / 1+ / 2+ / 3+) and "
        "`roi_geojson`. Leave the cells of the other assay blank.",
        "An input the study does not have: set its key (`cohort`, `plates` or `images`) to "
        "`null` in `config.yaml`; the figures that need it are left out. An empty template "
        "left configured stops the run at start-up with a message naming it.",
        "## 1b. Or name the files as the instruments wrote them",
        "Instead of filling `plates.csv`, point `plates` at the plate reader's files and set "
        "`plates_format` (plater, grid with a `plate_map`, or gdsc); instead of reshaping the "
        "clinical export, point `cohort` at it (CSV or XLSX) and describe it in "
        "`cohort_format` (separator, decimal mark, date format, column and value maps), or "
        "give a REDCap export with its `redcap_dictionary`. The data dictionary has a small "
        "example of each form. Use absolute paths.",
        "## 2. Set the analysis",
        "Edit `config.yaml`: the compared group (`survival.group`, `survival.group_levels`), "
        "the covariates and their reference levels (`survival.covariates`, "
        "`survival.categorical`), the dose-response comparisons and conditions, the imaging "
        "sizes in µm. `simulated` stays false for real data. A misspelt key or a wrong type "
        "stops the run and names the key.",
        "## 3. Run",
        "The input paths in `config.yaml` are absolute because the workflow reads them "
        "relative to its working directory; so the study runs from the sepher checkout "
        "(results under its `results/`):",
        f"```bash\n{run}\n```",
        "or, to keep the results in this folder (under `results/` here):",
        f"```bash\n{here}\n```",
        "If you move this folder, update the three input paths in `config.yaml`. Every "
        "input is checked before any job runs; inputs are never modified.",
    ]
    return "\n\n".join(_wrap_markdown(p) for p in paragraphs) + "\n"


_TABLE = (
    "| file | what it is |\n|---|---|\n"
    "| `config.yaml` | every configuration key with its default and description |\n"
    "| `cohort.csv` | clinical data: one row per patient (survival stage) |\n"
    "| `plates.csv` | plate-reader readings: one row per well (dose-response stage) |\n"
    "| `samples.tsv` | images sample sheet: one row per image (imaging stages) |"
)


def _wrap_markdown(paragraph: str) -> str:
    """A prose paragraph or list item wrapped to LINE_LENGTH; headings, tables, code kept."""
    if paragraph.startswith(("#", "|", "```")):
        return paragraph
    indent = "  " if paragraph.startswith("- ") else ""
    return textwrap.fill(
        paragraph,
        width=LINE_LENGTH,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


# --------------------------------------------------------------------------- the folder
def write_study(dest, *, project_root=None, force: bool = False) -> list[Path]:
    """Write a new study folder: config, empty input templates, README.

    Parameters
    ----------
    dest : path
        The folder to create (parents too). It may exist only if empty,
        unless `force`.
    project_root : path, optional
        The sepher checkout whose schemas define the configuration and from
        which the study is run; default: the checkout of this library.
    force : bool, default False
        Write into an existing non-empty folder, overwriting the study's files
        (other files are kept).

    Returns
    -------
    list of Path
        The files written (absolute): ``config.yaml``, ``cohort.csv``,
        ``plates.csv``, ``samples.tsv``, ``README.md``.

    Raises
    ------
    InputError
        When `dest` is a file, or a non-empty folder without `force`.
    """
    dest = Path(dest).expanduser().resolve()
    root = Path(project_root).expanduser().resolve() if project_root else _PROJECT
    if dest.exists() and not dest.is_dir():
        raise InputError(dest, "a new folder for the study (this path is a file)")
    if dest.is_dir() and not force:
        present = sorted(p.name for p in dest.iterdir())
        if present:
            raise InputError(
                dest,
                "a new or empty folder for the study",
                value=", ".join(present[:6]) + (", ..." if len(present) > 6 else ""),
                hint="Choose another folder, or pass --force (force=True) to overwrite the "
                "study's files there (config.yaml, the templates, README.md).",
            )
    schema = load_schema(root / _SCHEMA)
    cohort_columns = cohort_template_columns(schema_defaults(schema))
    inputs = {key: str(dest / name) for key, name in INPUT_FILES.items()}
    contents = {
        "config.yaml": config_text(schema, inputs),
        INPUT_FILES["cohort"]: _header(cohort_columns, ","),
        INPUT_FILES["plates"]: _header(plates_template_columns(), ","),
        INPUT_FILES["images"]: _header(sheet_template_columns(), "\t"),
        "README.md": readme_text(dest, root, cohort_columns),
    }
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in contents.items():
        path = dest / name
        with path.open("w", encoding="utf-8", newline="\n") as stream:
            stream.write(text)
        written.append(path)
    return written
