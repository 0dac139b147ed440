"""Running the workflow from tests: one config writer, one Snakemake runner.

Every end-to-end test runs Snakemake on this checkout's Snakefile in a
scratch directory, with a copy of the demo config whose inputs are absolute
paths (an input left as None is left out, with its stage).
"""

import subprocess
import sys
from pathlib import Path

import yaml

from .conftest import PROJECT

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


def snakemake(directory, *args, config=None):
    """Run Snakemake in `directory` with its config.yaml (or `config`)."""
    config = config or Path(directory) / "config.yaml"
    command = [
        SNAKEMAKE,
        "--snakefile",
        str(PROJECT / "Snakefile"),
        "--directory",
        str(directory),
        "--configfile",
        str(config),
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, cwd=directory)
