"""Regenerate the simulated demo data set (byte-identical on every run).

Usage: python scripts/make_demo_data.py resources/demo
"""

import sys
from pathlib import Path

from sepher.simulate.cohort import write_demo_cohort
from sepher.simulate.if_images import write_demo_if_images
from sepher.simulate.ihc_images import write_demo_ihc
from sepher.simulate.plates import write_demo_plates
from sepher.simulate.sheet import write_demo_sheet


def main(out_dir):
    out = Path(out_dir)
    (out / "truth").mkdir(parents=True, exist_ok=True)
    write_demo_cohort(out / "cohort.csv", out / "truth" / "cohort_truth.json")
    write_demo_plates(out / "plates.csv", out / "truth" / "plates_truth.json")
    write_demo_if_images(out)
    write_demo_ihc(out)
    write_demo_sheet(out)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "resources/demo")
