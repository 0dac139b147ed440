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
