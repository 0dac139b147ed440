"""Provenance of a run: what went in, with which code and packages."""

from __future__ import annotations

import datetime as dt
import hashlib
import platform
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = (
    "snakemake",
    "numpy",
    "scipy",
    "pandas",
    "lifelines",
    "scikit-image",
    "matplotlib",
    "tifffile",
    "tableone",
)


def sha256(path, chunk_bytes=1 << 20) -> str:
    """SHA-256 of a file, read in chunks (constant memory)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as stream:
        for chunk in iter(lambda: stream.read(chunk_bytes), b""):
            digest.update(chunk)
    return digest.hexdigest()


def git_commit(repo_dir=".") -> str:
    """Commit of the workflow checkout ('+dirty' when files differ), or 'unknown'."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo_dir, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo_dir,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def package_versions(names=PACKAGES) -> dict:
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def provenance(inputs, config) -> dict:
    """Everything a reviewer needs to tie results to inputs and code."""
    return {
        "inputs": {str(p): {"sha256": sha256(p), "bytes": Path(p).stat().st_size} for p in inputs},
        "config": config,
        "workflow_commit": git_commit(),
        "python": platform.python_version(),
        "packages": package_versions(),
        "run_date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
