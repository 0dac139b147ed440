"""Glue between Snakemake entry points and the library.

Entry points in ``scripts/`` call :func:`run_logged` so that warnings,
messages and tracebacks go to the rule's ``log:`` file, and so that a script
can also be run by hand with a :class:`MockSnakemake` object.
"""

from __future__ import annotations

import logging
import sys
import traceback
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

from threadpoolctl import threadpool_limits


@contextmanager
def logged(log_path):
    """Send stdout, stderr and the logging module to `log_path`."""
    path = Path(log_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as stream:
        old_out, old_err = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = stream
        logging.basicConfig(stream=stream, level=logging.INFO, force=True)
        logging.getLogger("fontTools").setLevel(logging.WARNING)  # font subsetting chatter
        try:
            yield stream
        except Exception:
            traceback.print_exc(file=stream)
            stream.flush()
            sys.stdout, sys.stderr = old_out, old_err
            raise
        finally:
            sys.stdout, sys.stderr = old_out, old_err


def run_logged(snakemake, main):
    """Call ``main(snakemake)`` with output sent to the rule's first log file.

    An :class:`sepher.errors.InputError` is re-raised after being logged, so
    Snakemake prints its message and removes the rule's outputs. BLAS thread
    pools are limited to the rule's ``threads``.
    """
    log = snakemake.log[0] if len(snakemake.log) else "/dev/null"
    # BLAS threads follow the rule's `threads` (Snakemake limits them only for
    # shell commands); oversubscribed BLAS makes the Cox fits 2-3x slower.
    with logged(log), threadpool_limits(limits=int(getattr(snakemake, "threads", 1) or 1)):
        main(snakemake)


class MockSnakemake(SimpleNamespace):
    """Stand-in for the ``snakemake`` object when a script is run by hand.

    Example: ``MockSnakemake(input=..., output=..., params=..., log=[...])``.
    """


def cohort_mem_mb(cohort_bytes: int, attempt: int = 1) -> int:
    """Memory (MB) to request for a cohort-stage job holding a cohort CSV of `cohort_bytes`.

    The cohort stage holds the whole cohort (a Cox model needs all of it).
    Measured by ``make scale``: peak RSS about 150 MB + 9.5 MB per MB of
    cohort CSV (1,000,000 patients: an 87 MB CSV, 954 MB peak). The request
    is twice that, at least 1000 MB, rounded up to 100 MB, and grows with
    each retry (``attempt``).
    """
    need = max(1000.0, 2 * (150 + 10 * cohort_bytes / 1e6))
    return int(attempt * 100 * -(-need // 100))
