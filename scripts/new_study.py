"""Write a new study folder: a commented config, empty input templates and a README.

Usage: python scripts/new_study.py DEST [--force]   (or: make study DEST=path)

The folder gets ``config.yaml`` (every configuration key with its default and
description, generated from config/schemas), ``cohort.csv``, ``plates.csv``
and ``samples.tsv`` (header rows only) and ``README.md`` (the next steps).
See :func:`sepher.template.write_study`.
"""

import argparse
import sys
from pathlib import Path

# The library of this checkout, also without PYTHONPATH=scripts.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sepher.errors import InputError  # noqa: E402
from sepher.template import write_study  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="new_study.py",
        description="Write a new sepher study folder: config.yaml with every key and its "
        "default, empty cohort / plates / sample-sheet templates, a README of next steps.",
    )
    parser.add_argument("dest", type=Path, help="the study folder to create (new or empty)")
    parser.add_argument(
        "--force",
        action="store_true",
        help="write into an existing non-empty folder, overwriting the study's files",
    )
    args = parser.parse_args(argv)
    try:
        written = write_study(args.dest, force=args.force)
    except InputError as error:
        print(error, file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    print(f"Next steps: {written[-1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
