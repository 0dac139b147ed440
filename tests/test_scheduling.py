"""sepher.scheduling: one pending re-evaluation timer in Snakemake's scheduler.

Without it, every finished job starts another perpetual 1 s timer chain and
the scheduler's main process makes about k rounds per second after k jobs.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from sepher.scheduling import _schedule_reevaluation_once, limit_reevaluation_timers

from .conftest import require_slow_mark


class _FakeScheduler:
    def __init__(self):
        self._open_jobs = threading.Semaphore(0)

    def wakeups(self):
        count = 0
        while self._open_jobs.acquire(blocking=False):
            count += 1
        return count


def test_pinned_snakemake_gets_the_one_timer_scheduler():
    from snakemake.scheduling.job_scheduler import JobScheduler

    assert limit_reevaluation_timers() is True
    assert JobScheduler._schedule_reevalutation is _schedule_reevaluation_once
    assert limit_reevaluation_timers() is True  # a second call changes nothing


def test_many_requests_give_one_wakeup_then_a_new_timer_can_start():
    scheduler = _FakeScheduler()
    for _ in range(20):  # 20 rounds in a row ask for a re-evaluation
        _schedule_reevaluation_once(scheduler, 0.05)
    time.sleep(0.3)
    assert scheduler.wakeups() == 1
    _schedule_reevaluation_once(scheduler, 0.05)  # the round after the wake-up asks again
    time.sleep(0.3)
    assert scheduler.wakeups() == 1


SNAKEFILE = """
import sys
sys.path.insert(0, {scripts!r})
from sepher.scheduling import limit_reevaluation_timers
limit_reevaluation_timers()

rule all:
    input: expand("o/{{i}}.txt", i=range({jobs}))

rule one:
    output: "o/{{i}}.txt"
    shell: "sleep 0.2; touch {{output}}"
"""


@pytest.mark.slow
def test_scheduler_rounds_grow_with_jobs_not_with_jobs_squared(tmp_path, project_dir):
    jobs = 80
    (tmp_path / "Snakefile").write_text(
        SNAKEFILE.format(scripts=str(project_dir / "scripts"), jobs=jobs)
    )
    require_slow_mark()
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    run = subprocess.run(
        [snakemake, "--cores", "2", "--verbose"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    rounds = run.stderr.count("Ready jobs")
    # one round per finished job plus one per second of run (about 9 s here);
    # unpatched Snakemake 9.27.1 made 368 here (one timer chain per finished job)
    assert rounds < 2 * jobs, rounds
