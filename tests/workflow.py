"""Running the workflow from tests: one config writer, one Snakemake runner.

Every end-to-end test runs Snakemake on this checkout's Snakefile in a
scratch directory, with a copy of the demo config whose inputs are absolute
paths (an input left as None is left out, with its stage).
"""

import csv
import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from .conftest import PROJECT, require_slow_mark

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
DEMO = PROJECT / "resources" / "demo"


def write_config(directory, *, cohort=None, plates=None, images=None, **changes):
    """Write ``<directory>/config.yaml``: the demo config with these inputs.

    Parameters
    ----------
    cohort, plates, images : path or None
        Input files (None leaves the input, and its stage, out).
    **changes
        Dotted config keys to override, e.g.
        ``**{"figures.km_os.time_max_months": 96}``.
    """
    with open(PROJECT / "config" / "config.yaml") as stream:
        config = yaml.safe_load(stream)
    for key, path in (("cohort", cohort), ("plates", plates), ("images", images)):
        config[key] = str(path) if path else None
    for key, value in changes.items():
        node = config
        *parents, leaf = key.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = value
    path = Path(directory) / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def snakemake_command(directory, *args, config=None):
    """The Snakemake command line of :func:`snakemake` (to start it yourself).

    Only tests marked ``slow`` may run Snakemake (tests/conftest.py).
    """
    require_slow_mark()
    config = config or Path(directory) / "config.yaml"
    return [
        SNAKEMAKE,
        "--snakefile",
        str(PROJECT / "Snakefile"),
        "--directory",
        str(directory),
        "--configfile",
        str(config),
        *args,
    ]


def snakemake(directory, *args, config=None):
    """Run Snakemake in `directory` with its config.yaml (or `config`)."""
    command = snakemake_command(directory, *args, config=config)
    return subprocess.run(command, capture_output=True, text=True, cwd=directory)


def demo_sheet_rows(fields=("1",), bad_fields=True, zstacks=True):
    """Rows of the demo images sheet: IF fields `fields` of every condition x
    replicate (plus the demo's QC failures when `bad_fields` and its z-stack
    fields when `zstacks`) and every IHC tile.

    The QC failures (saturated, out of focus) and the z-stacks are the ones
    listed in the demo truth (resources/demo/truth/if_truth.json), so a
    reduced study still exercises the image QC and the z-stack path, and the
    demo config's ``imaging.orthogonal_image`` (a z-stack) is in the sheet.
    """
    with open(DEMO / "truth" / "if_truth.json") as stream:
        truth = json.load(stream)
    extra = {field["image_id"] for field in truth["bad_fields"]} if bad_fields else set()
    if zstacks:
        extra |= {field["image_id"] for field in truth["zstack_fields"]}
    with open(DEMO / "images.tsv", newline="") as stream:
        reader = csv.DictReader(stream, delimiter="\t")
        header = reader.fieldnames
        rows = [
            row
            for row in reader
            if row["assay"] == "IHC"
            or row["image_id"] in extra
            or row["image_id"].rsplit("_f", 1)[1] in fields
        ]
    return header, rows


def copy_demo_inputs(directory, fields=("1",), bad_fields=True, zstacks=True):
    """Copy the demo inputs to `directory`: cohort.csv and plates.csv as they
    are, and images.tsv reduced to :func:`demo_sheet_rows` with its images
    (the sheet's paths stay relative to its folder, as the reader requires).

    Returns ``{"cohort": path, "plates": path, "images": path}`` (absolute),
    the keyword arguments of :func:`write_config`.
    """
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("cohort.csv", "plates.csv"):
        shutil.copyfile(DEMO / name, directory / name)
    header, rows = demo_sheet_rows(fields, bad_fields, zstacks)
    for row in rows:
        target = directory / row["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(DEMO / row["path"], target)
    with open(directory / "images.tsv", "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=header, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return {
        "cohort": directory / "cohort.csv",
        "plates": directory / "plates.csv",
        "images": directory / "images.tsv",
    }


def checksums(directory):
    """sha256 of every file under `directory` (relative path -> hex digest)."""
    directory = Path(directory)
    return {
        str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def figure_ids():
    """The figure ids of the paper, as the Makefile lists them (FIGURES)."""
    text = (PROJECT / "Makefile").read_text()
    block = re.search(r"^FIGURES :=((?:.*\\\n)*.*)$", text, re.MULTILINE).group(1)
    return block.replace("\\\n", " ").split()
