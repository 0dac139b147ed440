"""Integration: the demo study on a real one-node SLURM cluster (issue 6).

The whole demo workflow runs twice in scratch directories: through SLURM with
``--profile profiles/slurm`` (snakemake-executor-plugin-slurm, job status from
``squeue`` because the CI cluster has no accounting database), then locally.
Every table either run writes must be byte-identical.

CI starts the cluster first (``.ci/slurm/setup.sh``: Debian's slurm-wlm and
munge, slurmctld + slurmd on localhost) and stops it afterwards
(``.ci/slurm/teardown.sh``). Without a running cluster the test is skipped.
Both runs are capped (``SEPHER_SLURM_TIMEOUT_S`` seconds each, default 600).
"""

import hashlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import PROJECT

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
TIMEOUT_S = int(os.environ.get("SEPHER_SLURM_TIMEOUT_S", "600"))


def _cluster_state():
    """Why the SLURM test cannot run, or None when a node is ready."""
    for tool in ("sinfo", "sbatch", "squeue", "srun"):
        if shutil.which(tool) is None:
            return f"SLURM client `{tool}` not on PATH (start a cluster: .ci/slurm/setup.sh)"
    try:
        probe = subprocess.run(
            ["sinfo", "--noheader", "--format=%t"], capture_output=True, text=True, timeout=20
        )
    except subprocess.TimeoutExpired:
        return "SLURM controller not answering `sinfo` within 20 s"
    states = probe.stdout.split()
    if probe.returncode != 0 or not any(s in ("idle", "mix", "alloc") for s in states):
        detail = (probe.stderr or probe.stdout).strip().splitlines()[-1:] or ["no nodes"]
        return f"SLURM cluster not up (sinfo: {detail[0]}); start it with .ci/slurm/setup.sh"
    return None


_REASON = _cluster_state()
pytestmark = [
    pytest.mark.slurm,
    pytest.mark.slow,
    pytest.mark.skipif(_REASON is not None, reason=_REASON or ""),
]


def write_demo_config(directory):
    """The full demo config (every stage), its inputs as absolute paths."""
    with open(PROJECT / "config" / "config.yaml") as stream:
        config = yaml.safe_load(stream)
    for key in ("cohort", "plates", "images"):
        if config.get(key):
            config[key] = str(PROJECT / config[key])
    path = Path(directory) / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run_snakemake(directory, *args):
    """Run the workflow in `directory`; on timeout interrupt it so that the
    SLURM executor cancels its jobs, then fail with the end of its output."""
    command = [
        SNAKEMAKE,
        "--snakefile",
        str(PROJECT / "Snakefile"),
        "--directory",
        str(directory),
        "--configfile",
        str(Path(directory) / "config.yaml"),
        *args,
    ]
    log = Path(directory) / "snakemake.log"
    with open(log, "w") as stream:
        process = subprocess.Popen(
            command, cwd=directory, stdout=stream, stderr=subprocess.STDOUT, text=True
        )
        try:
            returncode = process.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            pytest.fail(f"snakemake exceeded {TIMEOUT_S} s:\n{log.read_text()[-4000:]}")
    return returncode, log.read_text()


def tables(directory):
    """sha256 of every CSV table under results/, by path relative to results/."""
    root = Path(directory) / "results"
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*.csv"))
    }


def slurm_job_logs(directory):
    """SLURM job logs kept by the executor, by job kind (rule_x / group_y_x)."""
    root = Path(directory) / ".snakemake" / "slurm_logs"
    return {d.name: sorted(d.rglob("*.log")) for d in root.iterdir()} if root.is_dir() else {}


@pytest.fixture(scope="module")
def slurm_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("slurm")
    write_demo_config(directory)
    returncode, output = run_snakemake(
        directory,
        "--profile",
        str(PROJECT / "profiles" / "slurm"),
        # no accounting database on the CI cluster: job states from squeue
        "--slurm-status-command",
        "squeue",
        "--slurm-no-account",
        "--slurm-init-seconds-before-status-checks",
        "5",
        "--slurm-keep-successful-logs",
        "--retries",
        "0",
    )
    if returncode != 0:
        failed = [
            f"--- {log}\n{log.read_text()[-2000:]}"
            for logs in slurm_job_logs(directory).values()
            for log in logs
            if "Error" in log.read_text()
        ]
        pytest.fail(f"SLURM run failed:\n{output[-4000:]}\n" + "\n".join(failed[:3]))
    return directory


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("local")
    write_demo_config(directory)
    returncode, output = run_snakemake(directory, "--cores", "2")
    assert returncode == 0, output[-4000:]
    return directory


def test_jobs_ran_on_slurm_with_image_jobs_grouped(slurm_run):
    """The heavy rules went through sbatch, the image jobs in batches (groups)."""
    logs = slurm_job_logs(slurm_run)
    assert logs.get("rule_survival_cox"), sorted(logs)
    if_batches = [
        log for kind, files in logs.items() if "imaging_measure_if" in kind for log in files
    ]
    ihc_batches = [log for kind, files in logs.items() if "ihc_tiles" in kind for log in files]
    # 76 IF fields, 16 per job (config imaging.fields_per_job), and the IHC tiles
    # in batches of ihc.tiles_per_job, in one group job (profiles/slurm)
    assert len(if_batches) == 5, if_batches
    assert len(ihc_batches) == 1, ihc_batches
    for log in if_batches + ihc_batches:
        text = log.read_text()
        assert "Finished job" in text or "steps (100%) done" in text, log


def test_tables_identical_to_a_local_run(slurm_run, local_run):
    on_slurm, local = tables(slurm_run), tables(local_run)
    assert "survival/cox.csv" in local and "imaging/if_summary.csv" in local, sorted(local)
    assert sorted(on_slurm) == sorted(local)
    differ = [name for name in local if on_slurm[name] != local[name]]
    assert not differ, f"tables differ between SLURM and local runs: {differ}"
