"""The workflow's rules agree with the library, the profile and the environment (issue 13).

- ``library_modules`` (sepher.workflow) follows a script's imports through a
  package: transitive, relative, ``from package import submodule``, package
  ``__init__`` files; checked on a toy package.
- Every rule with a ``script:`` declares as its ``lib`` input exactly the
  library modules its script imports (so an edit of a module reruns exactly
  the rules importing it), and uses the one environment envs/sepher.yaml.
- Each figure rule writes the files ``figure_files`` names (the default target
  set) and honours the config (drug, line of T-DM1).
- The SLURM profile names only existing rules and groups and never lowers a rule's request.
- IHC tiles go ``ihc.tiles_per_job`` to a job (one rule per batch), in image_id
  order, a whole slide alone, each batch's params its own rows.
- envs/sepher.yaml installs exactly requirements.lock on pyproject's Python.

The rules are read by loading the workflow with the Snakemake API in a
subprocess (no job runs): :func:`load_rules`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pandas as pd
import pytest
import yaml
from packaging.specifiers import SpecifierSet

from sepher.figures.labels import line_adjective
from sepher.workflow import library_modules

from .conftest import PROJECT
from .workflow import DEMO, figure_ids, write_config

SCRIPTS = PROJECT / "scripts"

# ---------------------------------------------------------------- library_modules


def write_package(root, files):
    """Write `files` (relative path -> source) under `root`; return `root`."""
    for relative, source in files.items():
        path = Path(root, relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    return Path(root)


@pytest.fixture
def toy(tmp_path):
    """A package ``pkg`` and scripts importing it in every way Python allows."""
    return write_package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/base.py": "import os\n",
            "pkg/unused.py": "",
            "pkg/sub/__init__.py": "from .inner import thing\n",
            "pkg/sub/inner.py": "from ..base import X\nthing = 1\n",
            "pkg/sub/leaf.py": "from . import sibling\n",
            "pkg/sub/sibling.py": "from pkg.deep.a import b\n",
            "pkg/deep/__init__.py": "",
            "pkg/deep/a/__init__.py": "",
            "pkg/deep/a/b.py": "def f():\n    import pkg.lazy\n",
            "pkg/lazy.py": "",
            "pkg/other.py": "",
            "plain.py": "import pkg.other\n",
            "from_sub.py": "from pkg.sub import leaf\n",
            "name_only.py": "from pkg.base import os\nimport numpy\n",
        },
    )


def relative(files, root):
    return [str(Path(f).relative_to(root / "pkg")) for f in files]


def test_library_modules_plain_import_includes_the_package_init(toy):
    found = relative(library_modules(toy / "plain.py", toy / "pkg"), toy)
    assert found == ["__init__.py", "other.py"]


def test_library_modules_transitive_relative_and_submodule_from_import(toy):
    found = relative(library_modules(toy / "from_sub.py", toy / "pkg"), toy)
    assert found == [
        "__init__.py",
        "base.py",  # sub/inner.py: from ..base import X
        "deep/__init__.py",  # sibling.py: from pkg.deep.a import b (every package on the way)
        "deep/a/__init__.py",
        "deep/a/b.py",  # a submodule named in a from-import
        "lazy.py",  # imported inside a function: still run when called
        "sub/__init__.py",
        "sub/inner.py",  # sub/__init__.py: from .inner import thing
        "sub/leaf.py",  # from pkg.sub import leaf (a submodule)
        "sub/sibling.py",  # leaf.py: from . import sibling
    ]
    assert "unused.py" not in found and "other.py" not in found


def test_library_modules_ignores_names_and_other_packages(toy):
    found = relative(library_modules(toy / "name_only.py", toy / "pkg"), toy)
    assert found == ["__init__.py", "base.py"]  # `os` is a name in base, numpy not ours


def test_library_modules_of_a_real_script():
    found = library_modules(SCRIPTS / "fig_km.py", SCRIPTS / "sepher")
    names = {str(Path(f).relative_to(SCRIPTS)) for f in found}
    assert {
        "sepher/__init__.py",
        "sepher/figures/km_plot.py",
        "sepher/figures/style.py",
        "sepher/io/tables.py",
        "sepher/survival/stage.py",
        "sepher/workflow.py",
    } <= names
    assert found == sorted(found) and all(Path(f).is_file() for f in found)


# ---------------------------------------------------------------- the workflow's rules

#: Run in a subprocess: load the workflow (Snakemake API, no DAG, no job) and
#: print each rule as JSON.
LOAD_RULES = """
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

snakefile, config, workdir = map(Path, sys.argv[1:4])

def plain(value):
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return repr(value)

rules = {}
with SnakemakeApi(OutputSettings()) as api:
    workflow_api = api.workflow(
        resource_settings=ResourceSettings(cores=1),
        config_settings=ConfigSettings(configfiles=[config]),
        snakefile=snakefile,
        workdir=workdir,
    )
    workflow = workflow_api._workflow
    for rule in workflow.rules:
        resources = {}
        for name, resource in rule.resources.items():
            resources[name] = None if resource.is_evaluable() else resource.value
        rules[rule.name] = {
            "script": str(Path(rule.basedir, rule.script).resolve()) if rule.script else None,
            "lib": [str(f) for f in rule.input.get("lib", [])] if "lib" in rule.input.keys() else None,
            "output": {name: plain(f) for name, f in rule.output._allitems() if name},
            "group": getattr(rule, "_group", None),
            "conda": str(Path(rule.basedir, rule.conda_env).resolve()) if rule.conda_env else None,
            "params": {
                name: plain(value) for name, value in rule.params._allitems()
                if name and not callable(value)
            },
            "resources": resources,
        }
    figures = {k: v for k, v in workflow.globals["FIGURES"].items()}
print("RULES-JSON " + json.dumps({"rules": rules, "figures": figures}))
"""


def load_rules(directory, **config):
    """The workflow's rules, loaded with the demo inputs and config `changes`."""
    path = write_config(directory, **config)
    run = subprocess.run(
        [sys.executable, "-c", LOAD_RULES, str(PROJECT / "Snakefile"), str(path), str(directory)],
        capture_output=True,
        text=True,
        cwd=directory,
    )
    lines = [line for line in run.stdout.splitlines() if line.startswith("RULES-JSON ")]
    assert run.returncode == 0 and lines, run.stderr[-3000:]
    return json.loads(lines[-1].removeprefix("RULES-JSON "))


@pytest.fixture(scope="module")
def workflow_rules(tmp_path_factory):
    """Every rule of the workflow with the whole demo study configured."""
    return load_rules(
        tmp_path_factory.mktemp("rules"),
        cohort=DEMO / "cohort.csv",
        plates=DEMO / "plates.csv",
        images=DEMO / "images.tsv",
    )


def script_rules(workflow_rules):
    return {name: rule for name, rule in workflow_rules["rules"].items() if rule["script"]}


def test_every_script_rule_declares_exactly_the_modules_its_script_imports(workflow_rules):
    rules = script_rules(workflow_rules)
    assert len(rules) >= 30
    for name, rule in rules.items():
        imported = library_modules(rule["script"], SCRIPTS / "sepher")
        assert imported, f"{name}: its script imports no library module"
        assert rule["lib"] is not None, f"rule {name} declares no lib input"
        missing = sorted(set(imported) - set(rule["lib"]))
        assert not missing, f"rule {name} does not declare {missing}"
        assert sorted(rule["lib"]) == imported, f"rule {name} declares modules it does not import"


def test_library_edits_rerun_the_rules_importing_the_module(workflow_rules):
    """An edited module is a changed input of exactly the rules that declare it:
    the rules whose scripts import it, directly or not."""
    rules = script_rules(workflow_rules)
    users = {
        name
        for name, rule in rules.items()
        if str(SCRIPTS / "sepher" / "figures" / "km_plot.py") in rule["lib"]
    }
    assert users == {
        "fig6_km_os",
        "fig7_km_pfs2",
        "figS4_tdm1_by_line",
        "figS5_os_from_tdm1",
        "figS9_later_lines",
    }
    tables_users = {
        name for name, rule in rules.items() if str(SCRIPTS / "sepher/io/tables.py") in rule["lib"]
    }
    # issue 13: fig2, fig3 and figS1 read their tables with sepher.io.tables
    assert {"fig2_her2_localisation", "fig3_sequential_exposure", "figS1_segmentation_qc"} <= (
        tables_users
    )


def test_every_rule_uses_the_one_environment(workflow_rules):
    env = str((PROJECT / "envs" / "sepher.yaml").resolve())
    for name, rule in script_rules(workflow_rules).items():
        assert rule["conda"] == env, name


def test_figure_rules_write_the_files_the_targets_name(workflow_rules):
    rules, figures = workflow_rules["rules"], workflow_rules["figures"]
    assert sorted(figures) == sorted(figure_ids())
    for figure_id in figures:
        outputs = rules[figure_id]["output"]
        assert outputs == {
            "pdf": f"results/figures/{figure_id}.pdf",
            "png": f"results/figures/{figure_id}.png",
        }


def test_imaging_figures_and_cohort_figures_follow_the_config(tmp_path):
    """doseresponse.drug and survival.tdm1_line reach the figure rules (no plates:
    a drug that the plates table lacks would stop the run at start-up)."""
    loaded = load_rules(
        tmp_path,
        cohort=DEMO / "cohort.csv",
        images=DEMO / "images.tsv",
        **{"doseresponse.drug": "Trastuzumab emtansine", "survival.tdm1_line": 3},
    )["rules"]
    assert loaded["fig3_sequential_exposure"]["params"]["drug"] == "Trastuzumab emtansine"
    assert line_adjective(3) == "third-line"
    assert loaded["fig7_km_pfs2"]["params"]["title"] == (
        "Progression-free survival on third-line T-DM1 (PFS2)"
    )
    for name in ("fig8_cox_forest", "table2_cox", "figS3_ph_diagnostics"):
        assert loaded[name]["params"]["tdm1_line"] == 3, name


# ---------------------------------------------------------------- IHC batches


def test_ihc_tiles_are_scored_in_batches_in_image_id_order_a_slide_alone(tmp_path):
    """ihc.tiles_per_job 3 on the demo's 12 IHC photos and a whole slide: rules
    ihc_score_batch_ihc0001-0004 hold the photos 3 at a time in image_id order,
    ihc0005 the slide alone; each batch writes its tiles' usual files and its
    params are its own rows only, so a changed row reruns only its batch."""
    sheet = pd.read_csv(DEMO / "images.tsv", sep="\t", dtype=str, keep_default_na=False)
    ihc_columns = ["image_id", "path", "assay", "pixel_size_um", "patient_id", "timepoint"]
    rows = sheet.loc[sheet["assay"] == "IHC", [*ihc_columns, "reference_score"]]
    for path in rows["path"]:  # the sheet's images lie in its folder
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(DEMO / path, tmp_path / path)
    shutil.copy(PROJECT / "tests" / "data" / "microscopy" / "cmu1_small_region.svs", tmp_path)
    slide = {"image_id": "AA-slide", "path": "cmu1_small_region.svs"}
    slide.update(assay="IHC", pixel_size_um="0.499", patient_id="BX-01", timepoint="pre")
    rows = pd.concat([rows, pd.DataFrame([slide])]).fillna("")
    rows.to_csv(tmp_path / "images.tsv", sep="\t", index=False)
    loaded = load_rules(tmp_path, images=tmp_path / "images.tsv", **{"ihc.tiles_per_job": 3})
    batches = {
        name.removeprefix("ihc_score_batch_"): rule
        for name, rule in loaded["rules"].items()
        if name.startswith("ihc_score_batch_")
    }
    photos = sorted(rows["image_id"][rows["image_id"] != "AA-slide"])
    assert len(photos) == 12
    expected = {f"ihc{n + 1:04d}": photos[3 * n : 3 * n + 3] for n in range(4)}
    expected["ihc0005"] = ["AA-slide"]  # first in image_id order, but a job of its own
    assert sorted(batches) == sorted(expected)
    for batch, ids in expected.items():
        rule = batches[batch]
        assert [t["image_id"] for t in rule["params"]["tiles"]] == ids
        assert rule["output"]["cells"] == [f"results/imaging/ihc_tiles/{i}_cells.csv" for i in ids]
        assert rule["output"]["overlay"] == [f"results/imaging/ihc_overlays/{i}.png" for i in ids]
        assert rule["output"]["cell_labels"] == [
            f"results/imaging/labels/{i}_cells.tif" for i in ids
        ]
        assert rule["group"] == "ihc_tiles"
        assert rule["resources"]["image_slots"] == 1
    photo_batch, slide_batch = batches["ihc0001"]["resources"], batches["ihc0005"]["resources"]
    assert photo_batch["mem_mb"] == 1000 and photo_batch["runtime"] == 3 + 3
    assert slide_batch["mem_mb"] >= 2000 and slide_batch["runtime"] >= 60
    assert "tiles_per_job" not in batches["ihc0001"]["params"]["scoring"]
    assert "ihc_score_tile" not in loaded["rules"]


# ---------------------------------------------------------------- SLURM profile

#: Resources a profile may set per rule that the rules also declare.
REQUESTS = ("mem_mb", "runtime", "cpus_per_task")


def test_slurm_profile_names_existing_rules_and_never_lowers_a_request(workflow_rules):
    """The rules' ``resources:`` are the requests (measured on the demo, noted in
    the rules); the profile may raise one for a cluster, never cut it below
    what the rule declares: SLURM kills a job that exceeds its memory or time."""
    profile = yaml.safe_load((PROJECT / "profiles" / "slurm" / "config.yaml").read_text())
    rules = workflow_rules["rules"]
    # the profile groups the IHC batch rules (declared in rules/ihc.smk: a profile
    # cannot name rules made per batch); every group it sizes is a rule's group
    groups = {rule["group"] for rule in rules.values() if rule["group"]}
    assert profile.get("group-components"), "the test would check no group"
    assert set(profile["group-components"]) <= groups, (profile["group-components"], groups)
    assert "groups" not in profile or set(profile["groups"]) <= set(rules)
    for name, resources in (profile.get("set-resources") or {}).items():
        assert name in rules, f"profiles/slurm names rule {name}, which does not exist"
        declared = rules[name]["resources"]
        for key in REQUESTS:
            if key not in resources:
                continue
            own = declared.get(key)
            if own is None and key == "cpus_per_task":
                own = declared.get("_cores", 1)
            assert own is not None, f"{name}.{key}: the rule computes it; do not fix it here"
            assert resources[key] >= own, f"{name}.{key}: profile {resources[key]} < rule {own}"


# ---------------------------------------------------------------- environment


def test_one_environment_installs_exactly_the_lock_on_pyprojects_python():
    envs = sorted(p.name for p in (PROJECT / "envs").iterdir())
    assert envs == ["sepher.yaml"]
    env = yaml.safe_load((PROJECT / "envs" / "sepher.yaml").read_text())
    deps = env["dependencies"]
    pins = [d for d in deps if isinstance(d, str) and d.split("=")[0] == "python"]
    pips = [d["pip"] for d in deps if isinstance(d, dict)]
    assert pips == [["-r ../requirements.lock"]], "pip installs the lock file and nothing else"
    assert (PROJECT / "envs" / "../requirements.lock").resolve() == PROJECT / "requirements.lock"
    assert sorted(d for d in deps if isinstance(d, str)) == sorted(pins + ["pip"])
    assert len(pins) == 1
    version = pins[0].split("=", 1)[1]
    major, minor = map(int, version.split("."))
    requires = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]["requires-python"]
    spec = SpecifierSet(requires)
    # conda's python=3.11 means any 3.11.x: exactly the series pyproject allows
    assert all(f"{major}.{minor}.{patch}" in spec for patch in (0, 9, 99)), (version, requires)
    assert f"{major}.{minor + 1}.0" not in spec and f"{major}.{minor - 1}.99" not in spec
