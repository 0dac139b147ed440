"""Shared test fixtures: paths to the project and the shared reference data."""

from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data():
    """Real public reference data (../shared/data); required, never copied."""
    assert SHARED_DATA.is_dir(), f"reference data missing: {SHARED_DATA}"
    return SHARED_DATA


@pytest.fixture(scope="session")
def project_dir():
    return PROJECT


@pytest.fixture(scope="session")
def full_study(tmp_path_factory):
    """The whole study, one clean run with ``--cores 2``, then its HTML report.

    Inputs (tests.workflow.copy_demo_inputs, in their own folder shared by
    every full-study run): the demo cohort and plates as they are, the images
    sheet reduced to field 1 of every IF condition x replicate, the demo's
    four QC-failure fields and every IHC tile. Every stage runs and all 14
    figures of the paper are made.

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
