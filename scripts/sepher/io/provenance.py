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
    "statsmodels",
    "nd2",
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
    """Installed version of each package in `names` ("not installed" when absent)."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def file_record(path) -> dict:
    """SHA-256 and size in bytes of one file (read in chunks: constant memory)."""
    return {"sha256": sha256(path), "bytes": Path(path).stat().st_size}


def image_records(files, root=None) -> dict:
    """Checksums of the image files of a sample sheet.

    Parameters
    ----------
    files : iterable of path
        Image files (each read once, in chunks; memory does not grow with
        image size).
    root : path, optional
        The sheet's folder: keys are paths relative to it (as written in the
        sheet's ``path`` column), else the paths as given.

    Returns
    -------
    dict
        Path -> ``{"sha256": ..., "bytes": ...}``, sorted by path.
    """
    records = {}
    for file in files:
        key = Path(file)
        if root is not None:
            try:
                key = key.resolve().relative_to(Path(root).resolve())
            except ValueError:
                pass
        records[key.as_posix()] = file_record(file)
    return dict(sorted(records.items()))


def provenance(inputs, config, images=(), images_root=None, repo_dir=".") -> dict:
    """Everything a reviewer needs to tie results to inputs and code.

    Parameters
    ----------
    inputs : iterable of path
        The input tables (cohort, plates, images sample sheet).
    config : dict
        The configuration used (defaults filled in).
    images : iterable of path
        Every image file listed in the images sample sheet.
    images_root : path, optional
        The sample sheet's folder (image keys are relative to it).
    repo_dir : path
        The workflow's folder (its git commit is recorded).

    Returns
    -------
    dict
        ``inputs`` and ``images`` (path -> SHA-256 and bytes), ``config``,
        ``workflow_commit``, ``snakemake``, ``python``, ``packages`` and
        ``run_date_utc`` (data only: never stamped into figures).
    """
    packages = package_versions()
    return {
        "inputs": {str(p): file_record(p) for p in inputs},
        "images": image_records(images, images_root),
        "config": config,
        "workflow_commit": git_commit(repo_dir),
        "snakemake": packages.get("snakemake", "not installed"),
        "python": platform.python_version(),
        "packages": packages,
        "run_date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
