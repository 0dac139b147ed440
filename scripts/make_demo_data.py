"""Regenerate the simulated demo data set (byte-identical on every run).

Usage: python scripts/make_demo_data.py resources/demo
"""

import sys
from pathlib import Path

from sepher.simulate.cohort import write_demo_cohort
from sepher.simulate.plates import write_demo_plates


def main(out_dir):
    out = Path(out_dir)
    (out / "truth").mkdir(parents=True, exist_ok=True)
    write_demo_cohort(out / "cohort.csv", out / "truth" / "cohort_truth.json")
    write_demo_plates(out / "plates.csv", out / "truth" / "plates_truth.json")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "resources/demo")
