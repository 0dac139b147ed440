"""The vendored reference data (tests/data): listed, present, unchanged, and read in one way."""

import hashlib
import re

import pytest

from .conftest import PROJECT, REFERENCE_DATA, reference_file

ROW = re.compile(r"^\| `([^`]+)` \| `([0-9a-f]{64})` \|")


def _listed():
    text = (REFERENCE_DATA / "README.md").read_text()
    return {m.group(1): m.group(2) for m in map(ROW.match, text.splitlines()) if m}


def test_every_listed_file_is_present_and_unchanged():
    listed = _listed()
    assert len(listed) >= 9
    for name, digest in listed.items():
        path = REFERENCE_DATA / name
        assert path.is_file(), f"tests/data/README.md lists {name}, which is missing"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, name


def test_no_unlisted_file_in_tests_data():
    present = {
        str(p.relative_to(REFERENCE_DATA))
        for p in REFERENCE_DATA.rglob("*")
        if p.is_file() and p.name != "README.md"
    }
    assert present == set(_listed())


def test_a_missing_reference_file_fails_never_skips():
    with pytest.raises(pytest.fail.Exception, match="reference data missing"):
        reference_file("doseresponse/no-such-file.csv")


def test_nothing_reads_the_shared_folder():
    """No test, benchmark, script, rule or Makefile line points outside the repository."""
    pattern = re.compile(r"\.\./shared|[\"']shared[\"']\s*/|/ *[\"']shared[\"']")
    offenders = []
    for path in [
        *PROJECT.glob("tests/**/*.py"),
        *PROJECT.glob("bench/*.py"),
        *PROJECT.glob("scripts/**/*.py"),
        *PROJECT.glob("rules/*.smk"),
        PROJECT / "Snakefile",
        PROJECT / "Makefile",
        *PROJECT.glob(".ci/**/*.sh"),
        PROJECT / ".ci" / "run",
    ]:
        if path.name == "test_reference_data.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(PROJECT)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
