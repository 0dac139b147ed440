"""Entry scripts run by hand (sepher.workflow.snakemake_or_cli), outside Snakemake.

Every script in scripts/ ends with ``run_logged(snakemake_or_cli(globals()), main)``:
under Snakemake it gets the rule's object; run as ``python scripts/<x>.py
--input name=path --output name=path --param name=value`` it builds one from
the command line. The scripts below are run in a subprocess on small tables
made here.
"""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
from PIL import Image

from sepher.workflow import MockSnakemake, NamedList, mock_from_argv, snakemake_or_cli

from .conftest import PROJECT

SCRIPTS = PROJECT / "scripts"
STYLE = PROJECT / "resources" / "sepher.mplstyle"


def run_script(name, *args, cwd):
    """Run scripts/<name> by hand; fail with its output when it fails."""
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / name), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


# --------------------------------------------------------------------------- the helper
def test_every_entry_script_can_run_by_hand():
    """Each Snakemake script builds its object with snakemake_or_cli, none needs Snakemake."""
    scripts = [
        p for p in SCRIPTS.glob("*.py") if p.name not in {"make_demo_data.py", "new_study.py"}
    ]
    assert len(scripts) > 20
    for path in scripts:
        text = path.read_text()
        assert text.rstrip().endswith("run_logged(snakemake_or_cli(globals()), main)"), path.name
        assert "snakemake." not in text, path.name


def test_mock_from_argv_builds_snakemakes_attributes(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("group_levels: [no, yes]\naxis: {time_max_months: 96}\nkind: table1\n")
    smk = mock_from_argv(
        [
            "--input",
            "table=a.csv",
            "--input",
            "cells=[b.csv]",
            "--input",
            "shards=s1.csv",
            "--input",
            "shards=s2.csv",
            "--output",
            "png=out.png",
            "--params-file",
            str(params),
            "--param",
            "kind=table2",
            "--param",
            "tdm1_line=3",
            "--param",
            "levels=[2, 3]",
            "--param",
            "label=2024",
            "--config",
            "simulated=true",
            "--wildcard",
            "table=cox",
            "--threads",
            "2",
            "--log",
            "x.log",
        ],
        prog="scripts/fig_table.py",
    )
    assert isinstance(smk, MockSnakemake)
    assert smk.input.table == "a.csv" and smk.input["table"] == "a.csv"
    assert smk.input.cells == ["b.csv"]  # a YAML list stays a list
    assert smk.input.shards == ["s1.csv", "s2.csv"]  # a repeated name makes a list
    assert list(smk.input) == ["a.csv", "b.csv", "s1.csv", "s2.csv"]
    assert smk.input.get("fits", []) == []
    assert dict(smk.output.items()) == {"png": "out.png"}
    assert smk.params.kind == "table2"  # --param overrides --params-file
    assert smk.params.tdm1_line == 3
    assert smk.params.levels == [2, 3]
    assert smk.params.group_levels == [False, True]  # YAML 1.1, as Snakemake's config reader
    assert smk.params.axis == {"time_max_months": 96}
    assert smk.config == {"simulated": True}
    assert smk.wildcards.table == "cox"
    assert smk.threads == 2 and smk.log[0] == "x.log" and len(smk.log) == 1
    assert smk.rule == "fig_table"
    with pytest.raises(AttributeError, match="no item named 'missing'"):
        _ = smk.params.missing


def test_snakemake_object_is_used_when_present():
    given = MockSnakemake.build(params={"kind": "table1"})
    assert snakemake_or_cli({"snakemake": given}) is given
    built = snakemake_or_cli({"__doc__": "x", "__file__": "x.py"}, ["--param", "a=1"])
    assert built.params.a == 1 and len(built.log) == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--input", "no-name"], "NAME=VALUE"),
        (["--param", "x=[1, 2"], "not valid YAML"),
        (["--input", "cells=[a.csv"], "not valid YAML"),
    ],
)
def test_bad_arguments_say_what_is_expected(argv, message):
    with pytest.raises(SystemExit, match=message):
        mock_from_argv(argv)


def test_named_list_is_a_list_with_names():
    nl = NamedList([("a", "x"), (None, "y"), ("b", ["z", "w"])])
    assert list(nl) == ["x", "y", "z", "w"] and len(nl) == 4
    assert nl[0] == "x" and nl["b"] == ["z", "w"] and nl.b == ["z", "w"]
    assert list(nl.keys()) == ["a", "b"]


def test_help_shows_the_scripts_docstring_and_options(tmp_path):
    result = run_script("fig_table.py", "--help", cwd=tmp_path)
    assert "table1_characteristics, table2_cox, table3_response" in result.stdout
    for option in ("--input", "--output", "--param", "--params-file", "--log", "--threads"):
        assert option in result.stdout


# --------------------------------------------------------------------------- real scripts
TABLE1 = """variable,level,statistic,overall,Naive,Pretreated,missing,p,test
n,,,10,6,4,,,
age,,"median [Q1,Q3]","53.0 [46.0,61.0]","52.5 [46.0,62.0]","53.0 [47.0,61.0]",0,0.0504,Kruskal-Wallis
visceral_mets,no,n (%),4 (40.0),2 (33.3),2 (50.0),,0.718,Chi-squared
visceral_mets,yes,n (%),6 (60.0),4 (66.7),2 (50.0),,,
"""


def test_fig_table_by_hand(tmp_path):
    (tmp_path / "table1.csv").write_text(TABLE1)
    log = tmp_path / "logs" / "table1.log"
    run_script(
        "fig_table.py",
        "--input",
        "table=table1.csv",
        "--input",
        f"style={STYLE}",
        "--output",
        "pdf=out/table1.pdf",
        "--output",
        "png=out/table1.png",
        "--param",
        "kind=table1",
        "--param",
        "simulated=true",
        "--log",
        log,
        cwd=tmp_path,
    )
    assert (tmp_path / "out" / "table1.pdf").read_bytes().startswith(b"%PDF")
    with Image.open(tmp_path / "out" / "table1.png") as png:
        assert png.width > 500 and png.height > 100
    assert log.exists()


def test_fig_table_table2_by_hand_follows_the_line(tmp_path):
    """Table 2 by hand, parameters from a file; PFS2's heading names the T-DM1 line."""
    rows = []
    for endpoint in ("OS", "PFS2"):
        for model in ("univariate", "multivariate"):
            rows.append(
                {
                    "endpoint": endpoint,
                    "model": model,
                    "term": "ecog",
                    "column": "ecog1",
                    "level": "1",
                    "reference": "0",
                    "hr": 1.5,
                    "hr_lower": 1.1,
                    "hr_upper": 2.0,
                    "p": 0.0504,
                    "n": 100,
                    "events": 60,
                    "n_excluded": 0,
                }
            )
    pd.DataFrame(rows).to_csv(tmp_path / "cox.csv", index=False)
    (tmp_path / "params.yaml").write_text(
        "kind: table2\nsimulated: false\ntdm1_line: 3\nstrata: []\ndelayed_entry: true\n"
    )
    run_script(
        "fig_table.py",
        "--input",
        "table=cox.csv",
        "--input",
        f"style={STYLE}",
        "--output",
        "pdf=table2.pdf",
        "--output",
        "png=table2.png",
        "--params-file",
        "params.yaml",
        cwd=tmp_path,
    )
    assert (tmp_path / "table2.pdf").stat().st_size > 1000
    assert (tmp_path / "table2.png").stat().st_size > 1000
    from sepher.figures.tables import table2_for_print

    table, note = table2_for_print(pd.read_csv(tmp_path / "cox.csv"), tdm1_line=3)
    assert set(table["Variable"]) == {"Overall survival (OS)", "PFS on third-line T-DM1 (PFS2)"}
    assert set(table["Wald p (uni)"]) == {"0.050"}
    assert note.startswith("Cox models (Efron ties), patients as the unit; HR with Wald 95% CI")
    assert "Multivariable: all listed variables together, complete cases" in note
    assert "OS: n = 100, events = 60" in note


def test_doseresponse_join_by_hand(tmp_path):
    """The shards' tables joined by hand: union of columns, rows in shard order."""
    (tmp_path / "a.csv").write_text("cell_line,ic50\nA,1.5\n")
    (tmp_path / "b.csv").write_text("cell_line,ic50,flag\nB,2,x\n")
    (tmp_path / "c.csv").write_text("cell_line,ic50\nC,3\n")
    run_script(
        "doseresponse_join.py",
        "--input",
        "fits=[a.csv, b.csv]",
        "--input",
        "curves=[c.csv]",
        "--output",
        "fits=fits.csv",
        "--output",
        "curves=curves.csv",
        cwd=tmp_path,
    )
    assert (tmp_path / "fits.csv").read_text() == "cell_line,ic50,flag\nA,1.5,\nB,2,x\n"
    assert (tmp_path / "curves.csv").read_bytes() == (tmp_path / "c.csv").read_bytes()


def test_report_table_by_hand(tmp_path):
    (tmp_path / "km_medians.csv").write_text("analysis,group,median\nos,no,74.5\nos,yes,52.5\n")
    run_script(
        "report_table.py",
        "--input",
        "table=km_medians.csv",
        "--output",
        "html=page/km_medians.html",
        "--param",
        "title=Kaplan-Meier medians",
        "--param",
        "source=results/survival/km_medians.csv",
        cwd=tmp_path,
    )
    html = (tmp_path / "page" / "km_medians.html").read_text()
    assert "Kaplan-Meier medians" in html and ">74.5<" in html
    assert "results/survival/km_medians.csv: 2 rows." in html


def test_doseresponse_split_by_hand(tmp_path):
    """The plates table split by hand: rows copied as text, with their row numbers."""
    (tmp_path / "plates.csv").write_text(
        "cell_line,well,signal\nB,A01,0012\nA,A02,1.50\nB,A03,7\nA,A04,\n"
    )
    (tmp_path / "params.yaml").write_text("shards: {s1: [A], s2: [B]}\n")
    run_script(
        "doseresponse_split.py",
        "--input",
        "plates=plates.csv",
        "--output",
        "plates=[s1/plates.csv, s2/plates.csv]",
        "--output",
        "rows=[s1/rows.txt, s2/rows.txt]",
        "--params-file",
        "params.yaml",
        cwd=tmp_path,
    )
    assert (
        tmp_path / "s1" / "plates.csv"
    ).read_text() == "cell_line,well,signal\nA,A02,1.50\nA,A04,\n"
    assert (
        tmp_path / "s2" / "plates.csv"
    ).read_text() == "cell_line,well,signal\nB,A01,0012\nB,A03,7\n"
    assert (tmp_path / "s1" / "rows.txt").read_text() == "2\n4\n"
    assert (tmp_path / "s2" / "rows.txt").read_text() == "1\n3\n"


def test_iter_tables_gives_the_union_of_columns(tmp_path):
    from sepher.io.tables import iter_tables, union_columns

    (tmp_path / "a.csv").write_text("x,y\n1,2\n")
    (tmp_path / "b.csv").write_text("x,z\n3,4\n")
    (tmp_path / "empty.csv").write_text("")
    paths = [tmp_path / "a.csv", tmp_path / "b.csv"]
    assert union_columns([*paths, tmp_path / "empty.csv"]) == ["x", "y", "z"]
    joined = pd.concat(iter_tables(paths), ignore_index=True)
    assert joined.columns.tolist() == ["x", "y", "z"]
    assert joined["x"].tolist() == [1, 3]
    assert joined["y"].isna().tolist() == [False, True]
