"""The study template (issue 17, item 4): `make study DEST=...` / scripts/new_study.py.

The folder's config is generated from the schemas: it loads, passes the
configuration check as written, equals the schema defaults (with the inputs
pointing at the templates) and names every schema key with its description.
The templates carry the readers' headers and no data row: empty they stop at
the readers' "at least one row" check, filled with demo rows they read.
"""

from __future__ import annotations

import copy
import csv
import shutil
import subprocess
import sys

import pytest
import yaml

from sepher.errors import InputError
from sepher.io.cohort import DATE_COLUMNS, IDENTITY_COLUMNS, read_cohort
from sepher.io.config import check_config, load_schema, resolve_ref, schema_defaults
from sepher.io.plates import OPTIONAL_COLUMNS, PLATES_COLUMNS, read_plates
from sepher.io.samplesheet import SHEET_COLUMNS, read_sample_sheet
from sepher.template import INPUT_FILES, LINE_LENGTH, write_study

from .conftest import PROJECT

SCHEMA_FILE = PROJECT / "config" / "schemas" / "config.schema.yaml"
DEMO = PROJECT / "resources" / "demo"
NAMES = ["config.yaml", "cohort.csv", "plates.csv", "samples.tsv", "README.md"]


def schema_keys(schema):
    """Dotted paths of every key the schema defines (sections and their keys)."""
    keys = []

    def walk(node, prefix):
        node = resolve_ref(node, schema)
        for key, sub in node.get("properties", {}).items():
            keys.append(prefix + key)
            walk(sub, prefix + key + ".")

    walk(schema, "")
    return keys


def at(tree, dotted):
    for part in dotted.split("."):
        tree = tree[part]
    return tree


def comment_text(text):
    """All comment lines of a YAML text, joined into one string (wrapping undone)."""
    lines = [line.strip() for line in text.splitlines()]
    return " ".join(line.removeprefix("# ") for line in lines if line.startswith("#"))


def header(path, delimiter=","):
    with open(path, newline="", encoding="utf-8") as stream:
        rows = list(csv.reader(stream, delimiter=delimiter))
    assert len(rows) == 1, f"{path.name}: a header and no data row"
    return rows[0]


@pytest.fixture
def study(tmp_path):
    dest = tmp_path / "study"
    written = write_study(dest)
    return dest, written


def test_writes_the_five_files_of_a_new_folder(study):
    dest, written = study
    assert written == [dest.resolve() / name for name in NAMES]
    assert sorted(p.name for p in dest.iterdir()) == sorted(NAMES)


def test_config_loads_passes_the_check_and_equals_the_schema_defaults(study):
    dest, _ = study
    text = (dest / "config.yaml").read_text(encoding="utf-8")
    config = yaml.safe_load(text)
    inputs = {key: str(dest.resolve() / name) for key, name in INPUT_FILES.items()}
    assert config == {**schema_defaults(SCHEMA_FILE), **inputs}
    # as written, nothing to fill in: the check leaves it unchanged
    checked = check_config(copy.deepcopy(config), SCHEMA_FILE, config_file="config.yaml")
    assert checked == config
    assert config["simulated"] is False
    assert config["redcap_dictionary"] is None and "redcap_dictionary: null" in text


def test_input_paths_resolve_from_any_working_directory(study, tmp_path, monkeypatch):
    # rules/common.smk (INPUT_KEYS) requires Path(value).is_file() from Snakemake's
    # working directory: the paths are absolute, so any directory will do
    dest, _ = study
    config = yaml.safe_load((dest / "config.yaml").read_text(encoding="utf-8"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for key, name in INPUT_FILES.items():
        assert config[key] == str(dest.resolve() / name)
        assert (elsewhere / config[key]).is_file()


def test_every_schema_key_is_in_the_config_with_its_description(study):
    dest, _ = study
    text = (dest / "config.yaml").read_text(encoding="utf-8")
    config = yaml.safe_load(text)
    schema = load_schema(SCHEMA_FILE)
    keys = schema_keys(schema)
    assert len(keys) > 100  # every stage's section, not only the top level
    comments = comment_text(text)
    lines = text.splitlines()
    for dotted in keys:
        at(config, dotted)  # KeyError when a schema key is missing
        node = schema
        for part in dotted.split("."):
            node = resolve_ref(resolve_ref(node, schema)["properties"][part], schema)
        if node.get("description"):
            assert " ".join(node["description"].split()) in comments, dotted
        if "enum" in node:
            choices = ", ".join(str(v) for v in node["enum"])
            assert f"One of: {choices}." in comments, dotted
        # each key line is preceded by its comment (or is a section of commented keys)
        leaf = dotted.rsplit(".", 1)[-1]
        depth = dotted.count(".")
        index = next(
            i
            for i, line in enumerate(lines)
            if line.startswith("  " * depth + leaf + ":")
            and all(f"{p}:" in "\n".join(lines[:i]) for p in dotted.split(".")[:-1])
        )
        if node.get("description"):
            assert lines[index - 1].lstrip().startswith("# "), dotted
    # entries of lists of objects: their keys are described too
    assert "Entry keys: numerator (required)" in comments
    assert "family (optional, default null)" in comments


def test_config_lines_fit_and_nesting_is_indented(study):
    dest, _ = study
    text = (dest / "config.yaml").read_text(encoding="utf-8")
    inputs = tuple(f"{key}: " for key in INPUT_FILES)
    for line in text.splitlines():
        if not line.startswith(inputs):  # the input paths are the study folder's
            assert len(line) <= LINE_LENGTH, line
    assert "\nimaging:\n  # " in text
    assert "\nfigures:\n  # fig6_km_os (overall survival).\n  km_os:\n    # " in text
    assert "\n    - {numerator: TP-R, denominator: T-R}\n" in text


def test_templates_have_the_readers_headers_and_no_rows(study):
    dest, _ = study
    survival = schema_defaults(SCHEMA_FILE)["survival"]
    assert header(dest / "cohort.csv") == [
        *IDENTITY_COLUMNS,
        *DATE_COLUMNS,
        survival["response"],
    ]
    assert header(dest / "plates.csv") == [*PLATES_COLUMNS, *OPTIONAL_COLUMNS]
    assert header(dest / "samples.tsv", "\t") == list(SHEET_COLUMNS)
    # empty, each stops at its reader's one-message "at least one row" check
    with pytest.raises(InputError, match="at least one patient row"):
        read_cohort(dest / "cohort.csv")
    with pytest.raises(InputError, match="at least one well row"):
        read_plates(dest / "plates.csv")
    with pytest.raises(InputError, match="at least one image row"):
        read_sample_sheet(dest / "samples.tsv")


def fill(template, source, delimiter=",", keep=None):
    """Append the rows of `source` (demo input) to `template` in the template's columns."""
    columns = header(template, delimiter)
    with open(source, newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream, delimiter=delimiter))
    rows = [row for row in rows if keep is None or keep(row)]
    with open(template, "a", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(
            stream, columns, delimiter=delimiter, extrasaction="ignore", lineterminator="\n"
        )
        writer.writerows(rows)
    return rows


def test_templates_filled_with_demo_rows_read(study):
    dest, _ = study
    patients = fill(dest / "cohort.csv", DEMO / "cohort.csv")
    cohort = read_cohort(dest / "cohort.csv")
    assert list(cohort["patient_id"]) == [row["patient_id"] for row in patients]
    assert cohort["best_response"].notna().any()

    wells = fill(dest / "plates.csv", DEMO / "plates.csv")
    assert len(read_plates(dest / "plates.csv")) == len(wells)

    wanted = {"IF_SKBR3_parental_r1_f1", "BX-01_pre_1"}
    images = fill(
        dest / "samples.tsv", DEMO / "images.tsv", "\t", keep=lambda r: r["image_id"] in wanted
    )
    for row in images:
        (dest / row["path"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(DEMO / row["path"], dest / row["path"])
    sheet = read_sample_sheet(dest / "samples.tsv")
    assert set(sheet["image_id"]) == wanted


def test_same_bytes_on_every_run(tmp_path):
    first = tmp_path / "a"
    contents = [p.read_bytes() for p in write_study(first)]
    again = [p.read_bytes() for p in write_study(first, force=True)]
    assert again == contents
    # another folder: the same files but for the folder's own path
    other = [p.read_bytes() for p in write_study(tmp_path / "b", project_root=PROJECT)]
    a, b = str(first.resolve()).encode(), str((tmp_path / "b").resolve()).encode()
    assert [c.replace(a, b) for c in contents] == other


def test_refuses_a_folder_with_files_unless_forced(tmp_path):
    dest = tmp_path / "study"
    dest.mkdir()
    write_study(dest)  # an empty existing folder is fine
    (dest / "notes.txt").write_text("mine")
    (dest / "config.yaml").write_text("edited: true\n")
    with pytest.raises(InputError, match="a new or empty folder") as error:
        write_study(dest)
    assert "--force" in str(error.value) and "config.yaml" in str(error.value)
    assert (dest / "config.yaml").read_text() == "edited: true\n"
    write_study(dest, force=True)
    assert (dest / "notes.txt").read_text() == "mine"
    assert "edited" not in (dest / "config.yaml").read_text()
    with pytest.raises(InputError, match="this path is a file"):
        write_study(dest / "notes.txt", force=True)


def test_a_new_schema_key_appears_without_code_change(tmp_path):
    root = tmp_path / "checkout"
    shutil.copytree(PROJECT / "config" / "schemas", root / "config" / "schemas")
    schema_file = root / "config" / "schemas" / "imaging.schema.yaml"
    schema = yaml.safe_load(schema_file.read_text(encoding="utf-8"))
    schema["properties"]["spot_size_um"] = {
        "enum": [1.5, 3.0],
        "default": 1.5,
        "description": "Diameter of a test spot, µm.",
    }
    schema_file.write_text(yaml.safe_dump(schema, sort_keys=False), encoding="utf-8")
    dest = tmp_path / "study"
    write_study(dest, project_root=root)
    text = (dest / "config.yaml").read_text(encoding="utf-8")
    assert "  # Diameter of a test spot, µm. One of: 1.5, 3.0.\n  spot_size_um: 1.5\n" in text
    config = yaml.safe_load(text)
    check_config(config, root / "config" / "schemas" / "config.schema.yaml")


def test_readme_gives_the_next_steps(study):
    dest, _ = study
    text = (dest / "README.md").read_text(encoding="utf-8")
    dest = dest.resolve()
    assert str(PROJECT / "docs" / "data-dictionary.md") in text
    assert f"--configfile {dest / 'config.yaml'}" in text
    assert f"cd {PROJECT}" in text and ".venv/bin/snakemake --cores all" in text
    for name in INPUT_FILES.values():
        assert f"`{name}`" in text
    for key in ("plates_format", "plate_map", "cohort_format", "redcap_dictionary", "`null`"):
        assert key in text
    prose = text.split("```")[::2]  # outside the code blocks
    for line in "".join(prose).splitlines():
        assert len(line) <= LINE_LENGTH or "/" in line, line


def test_command_line(tmp_path):
    dest = tmp_path / "cli-study"
    command = [sys.executable, str(PROJECT / "scripts" / "new_study.py"), str(dest)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in dest.iterdir()) == sorted(NAMES)
    assert str(dest / "README.md") in result.stdout
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 1
    assert "expected a new or empty folder" in result.stderr
