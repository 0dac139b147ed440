"""The bad-input catalogue (tests/bad_inputs/cases.yaml) through the real workflow.

Each case mutates a copy of the demo inputs (resources/demo/) or the config in
a scratch directory, runs Snakemake on it with only the stage(s) it needs, and
checks what a user gets: a non-zero exit, the case's exact message once in
stderr (file, row, column, value, expectation), no results/ output besides
logs, and input files left byte-identical. See tests/bad_inputs/README.md for
the case format.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
import yaml
from PIL import Image

from .workflow import DEMO, snakemake, write_config

CATALOGUE = Path(__file__).parent / "bad_inputs" / "cases.yaml"
CASES = yaml.safe_load(CATALOGUE.read_text())

#: What issue #7 asks the catalogue to cover (each case names what it covers).
REQUIRED = {
    "missing column",
    "misspelt column",
    "duplicate patient_id",
    "dates out of order",
    "unparseable date",
    "event flag not 0/1",
    "group with no patients",
    "all censored",
    "unknown well name",
    "duplicate well",
    "plate without vehicle wells",
    "plate without blank wells",
    "negative concentration",
    "non-numeric concentration",
    "mixed concentration units",
    "unreadable TIFF",
    "truncated TIFF",
    "channel index out of range",
    "3-D stack",
    "all-black image",
    "empty sample sheet",
    "image path outside the sheet's folder",
    "config key misspelt",
    "wrong type in config",
    "identifier column",
    "identifier-like patient_id",
    # issue 17: instrument and registry forms
    "wrong grid size",
    "instrument plate form",
    "unmapped value",
    "unmapped column",
    "pixel-size disagreement",
    "missing channel name",
}

SEPARATOR = {"cohort": ",", "plates": ",", "images": "\t"}
#: The images input: the first two IF and the first two IHC rows of the demo sheet.
IMAGE_ROWS = {"IF": 2, "IHC": 2}


# ---------------------------------------------------------------- inputs


def demo_table(kind):
    source = DEMO / ("images.tsv" if kind == "images" else f"{kind}.csv")
    table = pd.read_csv(source, sep=SEPARATOR[kind], dtype=str, keep_default_na=False)
    if kind == "images":
        table = pd.concat([table[table["assay"] == a].head(n) for a, n in IMAGE_ROWS.items()])
        table = table.reset_index(drop=True)
    return table


def duration_form(table):
    """The cohort in the duration form (os_months ...), derived by the library."""
    from sepher.io.cohort import DATE_COLUMNS, derive_endpoints

    endpoints = derive_endpoints(table, "demo cohort")
    out = table.drop(columns=list(DATE_COLUMNS))
    for column in ("os_months", "pfs2_months"):
        out[column] = [f"{v:.2f}" for v in endpoints[column]]
    for column in ("os_event", "pfs2_event"):
        out[column] = [str(v) for v in endpoints[column]]
    return out


def rows_where(table, where):
    mask = np.ones(len(table), dtype=bool)
    for column, value in (where or {}).items():
        mask &= (table[column] == str(value)).to_numpy()
    return mask


def make_image(kind, source, target):
    """Write a bad image `kind` to `target` (tiny, made here; `source`: the good image)."""
    rng = np.random.default_rng(7)
    if kind == "truncated":
        data = Path(source).read_bytes()
        target.write_bytes(data[: len(data) // 3])
    elif kind == "not_an_image":
        target.write_text("image_id,path\nthis is a table saved with an image's name\n")
    elif kind == "all_black":
        tifffile.imwrite(target, np.zeros((3, 64, 64), np.uint16), metadata={"axes": "CYX"})
    elif kind == "black_nuclear_channel":
        image = rng.integers(100, 4000, (3, 64, 64), dtype=np.uint16)
        image[1] = 0
        tifffile.imwrite(target, image, metadata={"axes": "CYX"})
    elif kind == "zstack":
        stack = rng.integers(100, 4000, (5, 64, 64), dtype=np.uint16)
        tifffile.imwrite(target, stack, metadata={"axes": "ZYX"})
    elif kind == "two_channels":
        image = rng.integers(100, 4000, (2, 64, 64), dtype=np.uint16)
        tifffile.imwrite(target, image, metadata={"axes": "CYX"})
    elif kind == "black_rgb":
        Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(target, format="PNG")
    else:
        raise ValueError(f"unknown image kind {kind}")


def build(case, directory):
    """Write the case's inputs and config under `directory`; return placeholders."""
    inputs = directory / "inputs"
    inputs.mkdir()
    kind = case["input"]
    stages = case.get("stages", [kind])
    names = {"cohort": "cohort.csv", "plates": "plates.csv", "images": "images.tsv"}
    paths = {}
    for stage in stages:
        paths[stage] = inputs / names[stage]
        if stage != kind:
            shutil.copyfile(DEMO / names[stage], paths[stage])
    table = demo_table(kind) if kind in SEPARATOR else None
    if kind == "images":
        for path in table["path"]:
            (inputs / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(DEMO / path, inputs / path)
    config_changes, text_changes = {}, []
    for step in case["mutation"]:
        ((op, arg),) = step.items()
        if op == "set":
            rows = arg["row"] if isinstance(arg["row"], list) else [arg["row"]]
            for row in rows:
                table.loc[row - 1, arg["column"]] = str(arg["value"])
        elif op == "set_all":
            table.loc[rows_where(table, arg.get("where")), arg["column"]] = str(arg["value"])
        elif op == "rename":
            table = table.rename(columns={arg["from"]: arg["to"]})
        elif op == "drop_columns":
            table = table.drop(columns=arg)
        elif op == "add_column":
            table.insert(arg.get("at", len(table.columns)), arg["name"], str(arg["value"]))
        elif op == "drop_rows":
            table = table[~rows_where(table, arg["where"])].reset_index(drop=True)
        elif op == "header_only":
            table = table.head(0)
        elif op == "duration_form":
            table = duration_form(table)
        elif op == "replace_text":
            text_changes.append((arg["old"], arg["new"]))
        elif op == "image":
            target = inputs / table.loc[arg["row"] - 1, "path"]
            if "rename_to" in arg:
                target = inputs / arg["rename_to"]
                table.loc[arg["row"] - 1, "path"] = arg["rename_to"]
            make_image(arg["make"], DEMO / demo_table("images").loc[arg["row"] - 1, "path"], target)
        elif op == "write_file":
            (inputs / arg["path"]).parent.mkdir(parents=True, exist_ok=True)
            (inputs / arg["path"]).write_text(arg["text"])
        elif op == "plates_form":
            # the (mutated) demo plates as an instrument writes them (issue 17):
            # `plates` becomes a folder of plate files, a grid form gets its plate maps
            from sepher.io.plate_formats import write_gdsc, write_grid, write_plater

            form, folder = arg["format"], inputs / "reader"
            if form == "plater":
                write_plater(table, folder)
            elif form == "grid":
                write_grid(table, folder, inputs / "maps")
                config_changes["plate_map"] = str(inputs / "maps")
            else:
                folder.mkdir()
                write_gdsc(table, folder / "raw.csv", molar_mass=arg.get("molar_mass"))
            config_changes["plates_format"] = form
            paths[kind], table = folder, None
        elif op == "config":
            config_changes.update(arg)
        else:
            raise ValueError(f"{case['name']}: unknown mutation {op}")
    if table is not None:
        text = table.to_csv(sep=SEPARATOR[kind], index=False, lineterminator="\n")
        for old, new in text_changes:
            text = text.replace(old, new)
        paths[kind].write_text(text)
    config = write_config(directory, **paths)
    edit_config(config, config_changes)
    places = {stage: str(path) for stage, path in paths.items()}
    return places | {"config": str(config), "dir": str(inputs)}


def edit_config(path, changes):
    """Dotted key -> value; a value {rename: new} renames the key (a misspelling)."""
    if not changes:
        return
    config = yaml.safe_load(path.read_text())
    for key, value in changes.items():
        node = config
        *parents, leaf = key.split(".")
        for part in parents:
            node = node[part]
        if isinstance(value, dict) and set(value) == {"rename"}:
            node[value["rename"]] = node.pop(leaf)
        else:
            node[leaf] = value
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def checksums(directory):
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(Path(directory).rglob("*"))
        if p.is_file()
    }


def expected_message(case, places):
    return " ".join(case["message"].split()).format(**places)


# ---------------------------------------------------------------- tests


def test_catalogue_covers_the_issue():
    names = [case["name"] for case in CASES]
    assert len(CASES) >= 32
    assert len(set(names)) == len(names), "case names must be unique"
    covered = {kind for case in CASES for kind in case["covers"]}
    assert REQUIRED <= covered, REQUIRED - covered
    for case in CASES:
        assert case["input"] in ("cohort", "plates", "images", "config"), case["name"]
        assert case["message"].lstrip().startswith("Invalid input: file {"), case["name"]


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_bad_input_stops_with_its_message(case, tmp_path):
    places = build(case, tmp_path)
    before = checksums(tmp_path / "inputs")
    run = snakemake(tmp_path, "--cores", "1")
    assert run.returncode != 0, run.stdout[-2000:]
    message = expected_message(case, places)
    assert run.stderr.count(message) == 1, f"expected once:\n{message}\nstderr:\n{run.stderr}"
    results = tmp_path / "results"
    made = [p for p in results.rglob("*") if p.is_file()] if results.exists() else []
    assert all(p.relative_to(results).parts[0] == "logs" for p in made), made
    assert checksums(tmp_path / "inputs") == before


@pytest.mark.slow
def test_demo_inputs_pass_every_start_up_check(tmp_path):
    """The checks refuse nothing valid: the demo study (all three inputs) dry-runs,
    and each check leaves its marker so reruns skip it."""
    write_config(
        tmp_path,
        cohort=DEMO / "cohort.csv",
        plates=DEMO / "plates.csv",
        images=DEMO / "images.tsv",
    )
    run = snakemake(tmp_path, "--cores", "1", "--dry-run", "--quiet", "rules")
    assert run.returncode == 0, run.stderr[-4000:]
    markers = {p.name for p in (tmp_path / ".snakemake" / "sepher-validated").iterdir()}
    for kind in ("cohort", "plates", "images"):
        assert any(re.fullmatch(rf"{kind}-[0-9a-f]{{64}}", name) for name in markers), kind
    assert not (tmp_path / "results").exists()
