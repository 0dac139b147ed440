"""Shared test fixtures: the project, its vendored reference data, the full-study run."""

import os
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
REFERENCE_DATA = PROJECT / "tests" / "data"


def reference_file(relative):
    """Path of a vendored reference file under tests/data (see tests/data/README.md).

    A missing file is a test failure, never a skip: the reference checks are
    part of the suite wherever it runs.
    """
    path = REFERENCE_DATA / relative
    if not path.is_file():
        pytest.fail(
            f"reference data missing: {path} (tests/data/README.md lists every file and its origin)",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def reference_data():
    """The one way tests reach real reference data: ``reference_data("doseresponse/ryegrass.csv")``.

    Returns :func:`reference_file`, which gives the path of a file under
    tests/data and fails the test if it is not there.
    """
    return reference_file


@pytest.fixture(scope="session")
def project_dir():
    return PROJECT


@pytest.fixture(scope="session")
def full_study(tmp_path_factory):
    """The whole study, one clean run with ``--cores 2``, then its HTML report.

    Inputs (tests.workflow.copy_demo_inputs, in their own folder shared by
    every full-study run): the demo cohort and plates as they are, the images
    sheet reduced to field 1 of every IF condition x replicate, the demo's
    four QC-failure fields, its four z-stack fields and every IHC tile. Every
    stage runs and every figure and table of the paper is made.

    Returns a namespace: ``directory`` (the run), ``inputs`` (write_config
    keyword arguments), ``inputs_dir`` and ``input_checksums`` (sha256 of
    every input file before any run), ``report`` (results/report.html) and
    ``seconds`` (wall time of the run).
    """
    import time
    from types import SimpleNamespace

    from .workflow import checksums, copy_demo_inputs, snakemake, write_config

    inputs_dir = tmp_path_factory.mktemp("full-study-inputs")
    inputs = copy_demo_inputs(inputs_dir)
    before = checksums(inputs_dir)
    directory = tmp_path_factory.mktemp("full-study")
    write_config(directory, **inputs)
    start = time.monotonic()
    run = snakemake(directory, "--cores", "2")
    seconds = time.monotonic() - start
    assert run.returncode == 0, run.stderr[-4000:]
    report = directory / "results" / "report.html"
    run = snakemake(directory, "--report", str(report))
    assert run.returncode == 0, run.stderr[-4000:]
    assert checksums(inputs_dir) == before, "the full-study run modified its inputs"
    return SimpleNamespace(
        directory=directory,
        inputs=inputs,
        inputs_dir=inputs_dir,
        input_checksums=before,
        report=report,
        seconds=seconds,
    )


# --- test tiers ----------------------------------------------------------------
# `make test-fast` runs `pytest -m "not slow"`: unit and reference tests, no
# workflow runs. Every test that runs Snakemake carries the `slow` mark; the
# hook below remembers the mark of the test being set up, and
# tests.workflow.snakemake refuses to start Snakemake for an unmarked test, so
# the tiers cannot drift apart.
_RUNNING = {"nodeid": None, "slow": False}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    _RUNNING["nodeid"] = item.nodeid
    _RUNNING["slow"] = item.get_closest_marker("slow") is not None


def require_slow_mark():
    """Fail the current test unless it is marked ``slow`` (it is about to run Snakemake)."""
    if _RUNNING["nodeid"] is not None and not _RUNNING["slow"]:
        pytest.fail(
            f"{_RUNNING['nodeid']} runs Snakemake but is not marked slow "
            "(@pytest.mark.slow, or pytestmark = pytest.mark.slow in its module)",
            pytrace=False,
        )


# --- tests write only under pytest's temporary folders --------------------------
# With SEPHER_CHECK_PROJECT_WRITES=1 (set by `make test` and `make test-fast`)
# the session fails if any file of the checkout was added, changed or removed
# while it ran (.git, .venv and bytecode caches aside).
_SKIP_PARTS = {".git", ".venv", "__pycache__"}


def _project_files():
    files = {}
    for path in PROJECT.rglob("*"):
        relative = path.relative_to(PROJECT)
        if _SKIP_PARTS.intersection(relative.parts) or not path.is_file():
            continue
        stat = path.stat()
        files[str(relative)] = (stat.st_mtime_ns, stat.st_size)
    return files


def pytest_sessionstart(session):
    if os.environ.get("SEPHER_CHECK_PROJECT_WRITES") == "1":
        session.config._sepher_files = _project_files()


def pytest_sessionfinish(session, exitstatus):
    before = getattr(session.config, "_sepher_files", None)
    if before is None:
        return
    after = _project_files()
    changed = sorted(
        name for name in before.keys() | after.keys() if before.get(name) != after.get(name)
    )
    if changed:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = "\n".join(f"  {name}" for name in changed[:50])
        message = f"tests wrote into the checkout (only pytest's tmp paths are allowed):\n{lines}"
        if reporter is not None:
            reporter.write_line(message, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
