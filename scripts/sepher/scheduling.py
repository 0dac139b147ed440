"""One pending re-evaluation timer in Snakemake's job scheduler (a large-study fix).

Snakemake 9's scheduler (``snakemake.scheduling.job_scheduler.JobScheduler``)
ends every scheduling round by starting a timer that wakes the scheduler for
another round after ``--max-jobs-per-timespan``'s timespan (1 s by default),
so that jobs held back by the rate limit are started later. Each round
started by a job finishing starts a new chain of such rounds, and each chain
goes on until the run ends: after k jobs have finished, the scheduler makes
about k rounds per second. Every round stats the input files of every ready
job. With thousands of jobs the main process spends a whole core on this:
measured on 2,000 IF fields (126 jobs, 2 cores), the main process used 96 s
of CPU in a 175 s run; a toy workflow of 300 jobs of 0.2 s made 4,941 rounds.

:func:`limit_reevaluation_timers` keeps one pending timer per scheduler:
a round asks for a timer only when none is pending, so the rate limit is
still re-checked every timespan, and job completions still start a round at
once. The timer is a daemon thread, so the run does not wait for it at the
end. The rate limiting itself is unchanged.

The replaced method is private to Snakemake: the pinned version is tested
(``tests/test_scheduling.py``); when a newer Snakemake no longer has it,
nothing is replaced and the scheduler behaves as it ships.
"""

from __future__ import annotations

import threading

__all__ = ["limit_reevaluation_timers"]

_MARK = "_sepher_one_timer"


def _schedule_reevaluation_once(self, delay) -> None:
    """Wake the scheduler after `delay` s, unless a wake-up is already pending."""
    with _LOCK:
        if getattr(self, "_sepher_timer_pending", False):
            return
        self._sepher_timer_pending = True

    def wake():
        with _LOCK:
            self._sepher_timer_pending = False
        self._open_jobs.release()

    timer = threading.Timer(delay, wake)
    timer.daemon = True
    timer.start()


setattr(_schedule_reevaluation_once, _MARK, True)
_LOCK = threading.Lock()


def limit_reevaluation_timers() -> bool:
    """Replace JobScheduler._schedule_reevalutation (sic) by the one-timer version.

    Returns True when the scheduler now uses it (also when it already did),
    False when this Snakemake's method is missing or no longer wakes the
    scheduler through ``self._open_jobs.release()`` (nothing is changed).
    """
    import inspect

    try:
        from snakemake.scheduling.job_scheduler import JobScheduler
    except ImportError:
        return False
    current = getattr(JobScheduler, "_schedule_reevalutation", None)
    if current is None:
        return False
    if getattr(current, _MARK, False):
        return True
    try:
        source = inspect.getsource(current)
    except (OSError, TypeError):
        return False
    if "_open_jobs.release()" not in source:
        return False
    JobScheduler._schedule_reevalutation = _schedule_reevaluation_once
    return True
