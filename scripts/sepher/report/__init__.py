"""The report a reader trusts: caption numbers, generated Methods, browsable tables.

Submodules
----------
numbers
    Key numbers of a run as caption sentences (medians, CIs, p, HRs, ratios).
captions
    Figure captions: the fixed description followed by this run's numbers.
methods
    The Methods section generated from config, counts and software versions.
tables
    Result tables as standalone HTML pages for the Snakemake report.
"""

from sepher.report.captions import CAPTION_TABLES, caption_numbers, render_caption
from sepher.report.methods import markdown_to_html, methods_markdown
from sepher.report.tables import number_patients, table_html

__all__ = [
    "CAPTION_TABLES",
    "caption_numbers",
    "markdown_to_html",
    "methods_markdown",
    "number_patients",
    "render_caption",
    "table_html",
]
