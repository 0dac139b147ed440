# sepher: the two commands are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= all
FIGURES := fig1_dose_response fig2_her2_localisation fig3_sequential_exposure \
	fig4_biopsies fig5_cohort_flow fig6_km_os fig7_km_pfs2 fig8_cox_forest \
	table1_characteristics table2_cox figS1_segmentation_qc figS2_dose_response_qc \
	figS3_ph_diagnostics figS4_tdm1_by_line figS5_os_from_tdm1 figS6_iptw_balance \
	figS7_propensity_overlap figS8_subgroups figS9_later_lines figS10_dose_response_metrics \
	figS11_ihc_calibration \
	table3_response

.PHONY: demo test test-fast venv demo-data bench scale lint format dryrun clean slurm-test study

# Set-up: a virtual environment with every package pinned (requirements.lock).
# The library (scripts/sepher) is not installed: Snakemake puts scripts/ on the
# path of every job, and PYTHONPATH does it for the commands below, so a run
# always uses the library of its own checkout.
$(BIN)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	touch $@

venv: $(BIN)/.installed

# The whole study on the demo data, then the HTML report.
demo: venv
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --cores $(CORES) --report results/report.html
	@echo "Figures: results/figures/  Tables: results/  Report: results/report.html"

# A new study folder for your own data: a commented config with every key and its
# default, empty correctly headed cohort / plates / sample-sheet templates, a README.
study: venv
	@test -n "$(DEST)" || { echo "usage: make study DEST=path/to/new-study"; exit 2; }
	PYTHONPATH=scripts $(BIN)/python scripts/new_study.py $(DEST)

# Regenerate the committed simulated demo data (byte-identical; tested).
demo-data: venv
	PYTHONPATH=scripts $(BIN)/python scripts/make_demo_data.py resources/demo

lint: venv
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile rules/
	$(BIN)/ruff check scripts tests bench
	$(BIN)/ruff format --check scripts tests bench

# Dry run of every figure target: the DAG of each figure resolves.
dryrun: venv
	for f in $(FIGURES); do $(BIN)/snakemake --cores 1 $$f --dry-run --quiet rules || exit 1; done

# Tests write only under pytest's temporary folders: no bytecode, no cache in the checkout.
PYTEST := PYTHONDONTWRITEBYTECODE=1 SEPHER_CHECK_PROJECT_WRITES=1 $(BIN)/python -m pytest -p no:cacheprovider

# The full suite (CI, the README's test command): lint first (it fails in
# seconds), then every test, Snakemake runs included (marked slow), then a dry
# run of every figure target.
test: venv
	$(MAKE) lint
	$(PYTEST) -q -rs
	$(MAKE) dryrun

# Unit and reference tests only (no workflow runs): the tier to iterate on.
test-fast: venv
	$(PYTEST) -q -rs -m "not slow"

# The demo on a one-node SLURM cluster on this machine (root, Debian), checked against a local run.
slurm-test: venv
	bash .ci/slurm/setup.sh
	$(PYTEST) -q -rs tests/test_slurm.py; status=$$?; bash .ci/slurm/teardown.sh; exit $$status

# Every bench/bench_*.py, then one table of issue 18's targets (measured, baseline in the
# same run, ratio, target, met), also written to bench/results.md. Never asserts.
bench: venv
	PYTHONPATH=scripts $(BIN)/python bench/report.py

# 10,000 IF fields, 100,000 curves, 1,000,000 patients (and 1/10 of each)
# through the workflow; prints wall time, jobs, peak memory per job, throughput
# and growth per stage. Hours on a laptop: SCALE_FRACTION=0.1 for a quick look.
SCALE_FRACTION ?= 1
scale: venv
	PYTHONPATH=scripts $(BIN)/python bench/scale.py --fraction $(SCALE_FRACTION) --cores $(CORES)

format: venv
	$(BIN)/snakefmt Snakefile rules/
	$(BIN)/ruff format scripts tests bench
	$(BIN)/ruff check --fix scripts tests bench

clean:
	rm -rf results .snakemake
