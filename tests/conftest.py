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
