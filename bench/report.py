"""Run every benchmark and report the targets of issue 18 in one table (``make bench``).

Each ``bench/bench_*.py`` is run in turn (from the project root, ``PYTHONPATH=scripts``).
A script whose ``--help`` lists ``--json`` is run with ``--json <temporary file>``
and its targets are collected: each is a record ``{"name", "measured", "unit",
"baseline", "baseline_name", "ratio", "target", "met"}`` (the benchmark contract,
docs of issue 18); a script without ``--json`` is run as before and listed with
"no targets". The scripts' own output is passed through as it comes.

At the end one table is printed (benchmark, target name, measured, unit,
baseline, ratio, target, met) and written, with the date, the machine, the
load average and each script's command, to ``bench/results.md`` as a markdown
table the README's performance table is copied from. Never asserts: an unmet
target is reported, not raised; the exit status is 1 only if a script failed
to run (its failure is reported and the other scripts still run).

Usage (from the project root)::

    PYTHONPATH=scripts .venv/bin/python bench/report.py [--only workflow,survival]
        [--skip wsi] [--output bench/results.md]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import machine  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1]
COLUMNS = ("benchmark", "target name", "measured", "unit", "baseline", "ratio", "target", "met")


def benchmark_name(path: Path) -> str:
    """``bench/bench_survival_core.py`` -> ``survival_core``."""
    return path.stem.removeprefix("bench_")


def supports_json(path: Path, env: dict) -> bool:
    """True when the script's ``--help`` lists a ``--json`` option."""
    run = subprocess.run(
        [sys.executable, str(path), "--help"], capture_output=True, text=True, env=env, cwd=PROJECT
    )
    return run.returncode == 0 and "--json" in run.stdout


def run_benchmark(path: Path, env: dict) -> dict:
    """Run one benchmark script (output passed through); its record for the table."""
    record = {"benchmark": benchmark_name(path), "script": str(path.relative_to(PROJECT))}
    has_json = supports_json(path, env)
    with tempfile.TemporaryDirectory(prefix="sepher-bench-") as tmp:
        json_path = Path(tmp) / "targets.json"
        command = [sys.executable, str(path)] + (["--json", str(json_path)] if has_json else [])
        shown = f"PYTHONPATH=scripts .venv/bin/python {record['script']}"
        record["command"] = shown + (" --json PATH" if has_json else "")
        print(f"== {record['command']}", flush=True)
        start = time.perf_counter()
        run = subprocess.run(command, env=env, cwd=PROJECT)
        record["seconds"] = time.perf_counter() - start
        record["returncode"] = run.returncode
        record["targets"] = []
        if run.returncode != 0:
            print(f"   {record['script']} failed (exit status {run.returncode})", flush=True)
        elif not has_json:
            print(f"   {record['script']}: no targets", flush=True)
        elif json_path.is_file():
            data = json.loads(json_path.read_text())
            record["targets"] = list(data.get("targets", []))
            record["command"] = data.get("command") or record["command"]
            record["machine"] = data.get("machine")
        else:
            print(f"   {record['script']} wrote no JSON", flush=True)
    return record


def _number(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def table_rows(records: list[dict]) -> list[tuple[str, ...]]:
    """One row per target (a benchmark without targets: one row saying so)."""
    rows = []
    for record in records:
        if record["returncode"] != 0:
            rows.append((record["benchmark"], f"failed (exit {record['returncode']})") + ("",) * 6)
            continue
        if not record["targets"]:
            rows.append((record["benchmark"], "no targets") + ("",) * 6)
            continue
        for t in record["targets"]:
            baseline = _number(t.get("baseline"))
            if t.get("baseline_name") and t.get("baseline") is not None:
                baseline += f" ({t['baseline_name']})"
            rows.append(
                (
                    record["benchmark"],
                    str(t["name"]),
                    _number(t.get("measured")),
                    str(t.get("unit", "")),
                    baseline,
                    _number(t.get("ratio")),
                    str(t.get("target", "")),
                    "yes" if t.get("met") else "NO",
                )
            )
    return rows


def text_table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def markdown(records: list[dict], rows: list[tuple[str, ...]], load: float, argv: str) -> str:
    """bench/results.md: date, machine, commands and the targets table."""
    date = datetime.date.today().isoformat()
    lines = [
        "# Benchmark results",
        "",
        f"Written by `{argv}` (`make bench`) on {date}; machine: {machine()}; "
        f"load average at start {load:.2f} (times taken while other processes use the "
        "cores are longer). Baselines are measured in the same run.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    lines += ["| " + " | ".join(v.replace("|", "\\|") for v in row) + " |" for row in rows]
    lines += ["", "Commands (from the project root):", ""]
    for record in records:
        status = "" if record["returncode"] == 0 else f" (failed, exit {record['returncode']})"
        lines.append(
            f"- {record['benchmark']}: `{record['command']}`, {record['seconds']:.0f} s{status}"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated benchmark names (e.g. workflow,survival)")
    parser.add_argument("--skip", default="", help="comma-separated benchmark names to leave out")
    parser.add_argument("--output", type=Path, default=PROJECT / "bench" / "results.md")
    args = parser.parse_args(argv)
    scripts = sorted((PROJECT / "bench").glob("bench_*.py"))
    if args.only:
        wanted = set(args.only.split(","))
        scripts = [s for s in scripts if benchmark_name(s) in wanted]
    skipped = set(filter(None, args.skip.split(",")))
    scripts = [s for s in scripts if benchmark_name(s) not in skipped]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(PROJECT / "scripts"), env.get("PYTHONPATH")])
    )
    load = os.getloadavg()[0]
    records = [run_benchmark(script, env) for script in scripts]
    rows = table_rows(records)
    print()
    print(text_table(rows))
    shown = "PYTHONPATH=scripts .venv/bin/python bench/report.py" + (
        " " + " ".join(sys.argv[1:]) if argv is None and sys.argv[1:] else ""
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(markdown(records, rows, load, shown))
    print(f"\nwritten: {args.output}")
    return 1 if any(record["returncode"] != 0 for record in records) else 0


if __name__ == "__main__":
    sys.exit(main())
