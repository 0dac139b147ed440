"""sepher: the SePHER study as a library (imaging, dose-response, survival).

The Snakemake workflow calls thin entry points in ``scripts/``; every
computation lives in this package as pure functions on arrays and
DataFrames, so tests and notebooks import it directly.
"""

__version__ = "0.1.0"
