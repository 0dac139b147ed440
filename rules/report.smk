# The report a reader trusts: provenance (data, never stamped into figures),
# figure captions with this run's numbers, browsable tables and a generated
# Methods section. Included last: every stage has registered FIGURES and TABLES.

# Result tables the captions read, by name (sepher.report.captions.CAPTION_TABLES).
CAPTION_SOURCES = {
    "km_medians": "results/survival/km_medians.csv",
    "logrank": "results/survival/logrank.csv",
    "cox": "results/survival/cox.csv",
    "ph_test": "results/survival/ph_test.csv",
    "table1": "results/survival/table1.csv",
    "flow": "results/survival/flow.csv",
    "if_comparisons": "results/imaging/if_comparisons.csv",
    "ihc_samples": "results/imaging/ihc_samples.csv",
    "ihc_paired": "results/imaging/ihc_paired.csv",
    "ic50_comparisons": "results/doseresponse/comparisons.csv",
}
# Aggregate tables shown in the report (no patient identifiers), by stage.
REPORT_TABLES = {
    "km_medians": ("Cohort", "Kaplan-Meier medians", "results/survival/km_medians.csv"),
    "logrank": ("Cohort", "Log-rank tests", "results/survival/logrank.csv"),
    "cox": ("Cohort", "Cox models (Table 2)", "results/survival/cox.csv"),
    "ph_test": ("Cohort", "Proportional-hazards tests", "results/survival/ph_test.csv"),
    "table1": (
        "Cohort",
        "Patient characteristics (Table 1)",
        "results/survival/table1.csv",
    ),
    "if_summary": (
        "In vitro (imaging)",
        "IF summaries per image and condition",
        "results/imaging/if_summary.csv",
    ),
    "if_comparisons": (
        "In vitro (imaging)",
        "IF comparisons",
        "results/imaging/if_comparisons.csv",
    ),
    "ihc_samples": ("Biopsies", "IHC per biopsy", "results/imaging/ihc_samples.csv"),
    "fits": (
        "In vitro (dose-response)",
        "Dose-response fits",
        "results/doseresponse/fits.csv",
    ),
    "comparisons": (
        "In vitro (dose-response)",
        "IC50 ratios",
        "results/doseresponse/comparisons.csv",
    ),
}
# What this run makes: only the tables of configured stages.
_MADE = {path for needs, paths in TABLES.items() if configured(needs) for path in paths}
CAPTION_INPUTS = {name: path for name, path in CAPTION_SOURCES.items() if path in _MADE}
if "if_comparisons" in CAPTION_INPUTS:
    CAPTION_INPUTS["if_image_qc"] = "results/imaging/if_image_qc.csv"
if "ic50_comparisons" in CAPTION_INPUTS:
    CAPTION_INPUTS["plate_qc"] = "results/doseresponse/plate_qc.csv"
    CAPTION_INPUTS["fits"] = "results/doseresponse/fits.csv"
SHOWN_TABLES = {
    name: entry for name, entry in REPORT_TABLES.items() if entry[2] in _MADE
}
CAPTIONED = [figure_id for figure_id, needs in FIGURES.items() if configured(needs)]
# Inputs of the Methods' counts, by stage.
COUNT_SOURCES = {
    "flow": "results/survival/flow.csv",
    "km_medians": "results/survival/km_medians.csv",
    "if_summary": "results/imaging/if_summary.csv",
    "ihc_samples": "results/imaging/ihc_samples.csv",
    "fits": "results/doseresponse/fits.csv",
    "plate_qc": "results/doseresponse/plate_qc.csv",
}
COUNT_INPUTS = {name: path for name, path in COUNT_SOURCES.items() if path in _MADE}
if "if_summary" in COUNT_INPUTS:
    COUNT_INPUTS["image_qc"] = "results/imaging/if_image_qc.csv"
REPORT_OUTPUTS = (
    [f"results/report/captions/{figure_id}.rst" for figure_id in CAPTIONED]
    + [f"results/report/tables/{name}.html" for name in SHOWN_TABLES]
    + ["results/methods.md", "results/report/methods.html"]
)
for _needs in INPUT_KEYS:
    if configured(_needs):
        TABLES[_needs] = TABLES.get(_needs, []) + REPORT_OUTPUTS
        break


# Every image file of the sample sheet (IF and IHC rows), checksummed in provenance.
SHEET_IMAGES = (
    sorted(set(if_image_files()) | set([] if IHC_SHEET is None else IHC_SHEET["file"]))
    if configured("images")
    else []
)


rule provenance:
    """Checksums of the inputs and of every image, config, workflow commit, versions, date."""
    input:
        inputs=[config[key] for key in INPUT_KEYS if configured(key)],
        images=SHEET_IMAGES,
        lib=library("io/provenance", "io/tables"),
    output:
        json="results/provenance.json",
    log:
        "results/logs/provenance.log",
    benchmark:
        "results/benchmarks/provenance.tsv"
    conda:
        "../envs/report.yaml"
    resources:
        mem_mb=500,
        runtime=10,
    params:
        config=config,
        # the sheet's folder (image paths are relative to it), if images are configured
        images_root=lambda wildcards, input: next(
            (str(Path(p).parent) for p in input.inputs if p == config.get("images")),
            None,
        ),
        # the workflow's folder (its git commit): three levels above sepher/__init__.py
        workflow_dir=lambda wildcards, input: str(Path(input.lib[0]).parents[2]),
    script:
        "../scripts/provenance.py"


rule report_captions:
    """Each figure's caption (report/<figure_id>.rst) followed by this run's numbers."""
    input:
        **CAPTION_INPUTS,
        templates=[
            str(Path(workflow.basedir, "report", f"{figure_id}.rst"))
            for figure_id in CAPTIONED
        ],
        lib=library("report", "io/tables"),
    output:
        captions=[f"results/report/captions/{figure_id}.rst" for figure_id in CAPTIONED],
    log:
        "results/logs/report/captions.log",
    benchmark:
        "results/benchmarks/report/captions.tsv"
    conda:
        "../envs/report.yaml"
    resources:
        mem_mb=500,
        runtime=5,
    params:
        figure_ids=CAPTIONED,
        tables=list(CAPTION_INPUTS),
        settings={
            "survival": {
                key: SURVIVAL[key] for key in ("group", "group_levels", "group_labels")
            },
            "imaging": {
                key: config["imaging"][key]
                for key in (
                    "comparisons",
                    "localisation_conditions",
                    "sequence_conditions",
                )
            },
            "doseresponse": {"min_z_prime": config["doseresponse"]["min_z_prime"]},
        },
    script:
        "../scripts/report_captions.py"


rule report_table:
    """One aggregate result table as a browsable HTML page (patients numbered, never named)."""
    input:
        table=lambda wildcards: SHOWN_TABLES[wildcards.table][2],
        lib=library("report", "io/tables"),
    output:
        html=report(
            "results/report/tables/{table}.html",
            caption="../report/table.rst",
            category=lambda wildcards: SHOWN_TABLES[wildcards.table][0],
            subcategory="Tables",
            # one label only: Snakemake's report takes a second label with two values
            # over two results for a toggle and then fails to show them
            labels=lambda wildcards: {"table": SHOWN_TABLES[wildcards.table][1]},
        ),
    log:
        "results/logs/report/table_{table}.log",
    benchmark:
        "results/benchmarks/report/table_{table}.tsv"
    wildcard_constraints:
        table="|".join(SHOWN_TABLES) or "(?!)",
    conda:
        "../envs/report.yaml"
    resources:
        mem_mb=500,
        runtime=5,
    params:
        title=lambda wildcards: SHOWN_TABLES[wildcards.table][1],
        source=lambda wildcards: SHOWN_TABLES[wildcards.table][2],
    script:
        "../scripts/report_table.py"


rule report_methods:
    """Methods generated from the config used, the counts of this run and software versions."""
    input:
        **COUNT_INPUTS,
        provenance=rules.provenance.output.json,
        lib=library("report", "io/tables"),
    output:
        markdown="results/methods.md",
        html=report(
            "results/report/methods.html",
            caption="../report/methods.rst",
            category="Methods",
            labels={"section": "Methods"},
        ),
    log:
        "results/logs/report/methods.log",
    benchmark:
        "results/benchmarks/report/methods.tsv"
    conda:
        "../envs/report.yaml"
    resources:
        mem_mb=500,
        runtime=5,
    params:
        config=config,
    script:
        "../scripts/report_methods.py"
