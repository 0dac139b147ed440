"""The whole study end to end: determinism, crash safety, no timestamps.

The fixture ``full_study`` (tests/conftest.py) is one clean run of every
stage (cohort, plates, IF and IHC images) with ``--cores 2``. Against it:

- a clean run with ``--cores 1`` gives byte-identical results (every table,
  figure, label image, caption and report page; see :data:`EXCLUDED`);
- a run killed with SIGKILL mid-way (the whole Snakemake process group),
  unlocked and rerun with ``--rerun-incomplete``, ends byte-identical too;
- no PDF or PNG carries a timestamp;
- no run modifies an input file (sha256 of every input before and after).
"""

import json
import os
import re
import signal
import struct
import subprocess
import time
from pathlib import Path

import pytest
import tifffile

from .workflow import checksums, figure_ids, snakemake, snakemake_command, write_config

pytestmark = pytest.mark.slow

#: Files under results/ that may differ between two runs of the same inputs, and why.
EXCLUDED = {
    "benchmarks": "wall time, memory and load of every job, measured anew each run",
    "report.html": "made by `snakemake --report` in the fixture run only; it embeds "
    "each job's start and end times",
}
#: provenance.json is compared without these fields (the rest must match).
RUN_DATE_FIELDS = ("run_date_utc",)
#: Wait at most this long for a run to reach the kill point.
KILL_TIMEOUT_S = 900


def excluded(relative):
    return relative.parts[0] in EXCLUDED or relative.name in EXCLUDED


def result_digests(directory):
    """sha256 of every result file (relative path under results/ -> digest),
    provenance.json without its run date, :data:`EXCLUDED` left out."""
    root = Path(directory) / "results"
    digests = {}
    for relative, digest in checksums(root).items():
        if excluded(Path(relative)):
            continue
        if relative == "provenance.json":
            record = json.loads((root / relative).read_text())
            missing = [field for field in RUN_DATE_FIELDS if field not in record]
            assert not missing, f"provenance.json has no {missing}: update RUN_DATE_FIELDS"
            for field in RUN_DATE_FIELDS:
                del record[field]
            digest = json.dumps(record, sort_keys=True)
        digests[relative] = digest
    return digests


def differences(digests, reference):
    """Files that differ, are missing or are extra, sorted."""
    return sorted(
        [
            f"differs: {path}"
            for path in reference
            if path in digests and digests[path] != reference[path]
        ]
        + [f"missing: {path}" for path in reference if path not in digests]
        + [f"extra: {path}" for path in digests if path not in reference]
    )


def by_kind(paths):
    """Count of paths per file extension, for the failure message."""
    kinds = {}
    for path in paths:
        kind = Path(path.split(": ", 1)[1]).suffix or "(none)"
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def assert_same_results(directory, reference):
    diff = differences(result_digests(directory), reference)
    assert not diff, f"{len(diff)} result files differ {by_kind(diff)}:\n" + "\n".join(diff[:40])


@pytest.fixture(scope="module")
def reference(full_study):
    """Digests of the fixture run's results, checked to cover the whole study."""
    digests = result_digests(full_study.directory)
    for figure_id in figure_ids():
        for ext in ("pdf", "png"):
            assert f"figures/{figure_id}.{ext}" in digests, figure_id
    for folder in ("survival", "doseresponse", "imaging"):
        assert any(p.startswith(folder + "/") and p.endswith(".csv") for p in digests), folder
    assert "provenance.json" in digests and "methods.md" in digests
    return digests


def test_whole_study_is_made(full_study, reference):
    """Every stage ran: 22 figures and tables (PDF, PNG), each stage's tables, the report."""
    kinds = by_kind([f"file: {p}" for p in reference])
    print(f"fixture run: {full_study.seconds:.0f} s with --cores 2; result files {kinds}")
    assert len(figure_ids()) == 22
    assert full_study.report.stat().st_size > 100_000


def test_one_core_run_is_byte_identical(full_study, reference, tmp_path):
    write_config(tmp_path, **full_study.inputs)
    config = (tmp_path / "config.yaml").read_bytes()
    start = time.monotonic()
    run = snakemake(tmp_path, "--cores", "1")
    print(f"clean run with --cores 1: {time.monotonic() - start:.0f} s")
    assert run.returncode == 0, run.stderr[-4000:]
    assert checksums(full_study.inputs_dir) == full_study.input_checksums
    assert (tmp_path / "config.yaml").read_bytes() == config
    assert_same_results(tmp_path, reference)


def count_results(directory):
    """Result files written so far (logs and benchmarks not counted)."""
    root = Path(directory) / "results"
    if not root.is_dir():
        return 0
    return sum(
        1
        for path in root.rglob("*")
        if path.is_file() and path.relative_to(root).parts[0] not in ("logs", "benchmarks")
    )


def incomplete_markers(directory):
    """Outputs Snakemake has marked incomplete (jobs running or killed)."""
    folder = Path(directory) / ".snakemake" / "incomplete"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_run_killed_mid_way_then_rerun_is_byte_identical(full_study, reference, tmp_path):
    """SIGKILL to the whole Snakemake process group once a third of the results
    exist and jobs are running; then `--unlock` and a rerun with
    `--rerun-incomplete` give the fixture's results byte for byte."""
    write_config(tmp_path, **full_study.inputs)
    total = sum(not path.startswith("logs/") for path in reference)
    kill_at = total // 3
    start = time.monotonic()
    with open(tmp_path / "killed_run.log", "w") as log:
        process = subprocess.Popen(
            snakemake_command(tmp_path, "--cores", "2"),
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the jobs die with it
        )
        try:
            while not (count_results(tmp_path) >= kill_at and incomplete_markers(tmp_path)):
                assert process.poll() is None, "the run ended before the kill point"
                assert time.monotonic() - start < KILL_TIMEOUT_S, "kill point not reached"
                time.sleep(0.1)
            os.killpg(process.pid, signal.SIGKILL)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    killed_after = time.monotonic() - start
    written, running = count_results(tmp_path), incomplete_markers(tmp_path)
    assert process.returncode == -signal.SIGKILL
    assert 0 < written < total and running
    assert checksums(full_study.inputs_dir) == full_study.input_checksums

    # The killed run left its lock: a plain rerun refuses, naming it.
    run = snakemake(tmp_path, "--cores", "2", "--rerun-incomplete")
    assert run.returncode != 0 and "cannot be locked" in run.stdout + run.stderr
    run = snakemake(tmp_path, "--unlock")
    assert run.returncode == 0, run.stderr[-4000:]
    start = time.monotonic()
    run = snakemake(tmp_path, "--cores", "2", "--rerun-incomplete")
    print(
        f"killed after {killed_after:.0f} s ({written} of {total} results, "
        f"{len(running)} outputs incomplete); rerun {time.monotonic() - start:.0f} s"
    )
    assert run.returncode == 0, run.stderr[-4000:]
    assert not incomplete_markers(tmp_path)
    assert checksums(full_study.inputs_dir) == full_study.input_checksums
    assert_same_results(tmp_path, reference)
    run = snakemake(tmp_path, "--cores", "1", "--dry-run", "--quiet", "rules")
    assert run.returncode == 0 and "Nothing to be done" in run.stdout + run.stderr


# --- no timestamps ---------------------------------------------------------------

#: PNG chunks that hold text (keyword + value).
PNG_TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")
DATE_LIKE = re.compile(rb"(19|20)\d\d[-:/]\d\d[-:/]\d\d|date|time", re.IGNORECASE)


def png_chunks(data):
    """(type, payload) of every chunk of a PNG file."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, offset = [], 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        chunks.append((kind, data[offset + 8 : offset + 8 + length]))
        offset += 12 + length
    assert chunks[-1][0] == b"IEND"
    return chunks


def outputs(full_study, ext):
    paths = sorted((full_study.directory / "results").rglob(f"*.{ext}"))
    return [p for p in paths if not excluded(p.relative_to(full_study.directory / "results"))]


def test_pdfs_carry_no_timestamp(full_study):
    pdfs = outputs(full_study, "pdf")
    assert len(pdfs) >= len(figure_ids())
    for path in pdfs:
        data = path.read_bytes()
        for key in (b"/CreationDate", b"/ModDate", b"xmp:CreateDate", b"xmp:ModifyDate"):
            assert key not in data, f"{path.name}: {key.decode()}"
        assert not re.search(rb"\(D:\d{8}", data), f"{path.name}: a PDF date string"


def test_pngs_carry_no_timestamp(full_study):
    pngs = outputs(full_study, "png")
    assert len(pngs) >= len(figure_ids())
    for path in pngs:
        chunks = png_chunks(path.read_bytes())
        kinds = [kind for kind, _ in chunks]
        assert b"tIME" not in kinds, f"{path.name}: tIME chunk"
        for kind, payload in chunks:
            if kind in PNG_TEXT_CHUNKS:
                assert not DATE_LIKE.search(payload), f"{path.name}: {kind} {payload[:80]!r}"


def test_label_images_carry_no_timestamp(full_study):
    tiffs = outputs(full_study, "tif")
    assert tiffs
    for path in tiffs:
        with tifffile.TiffFile(path) as tif:
            for page in tif.pages:
                assert "DateTime" not in page.tags, f"{path.name}: TIFF DateTime tag"
