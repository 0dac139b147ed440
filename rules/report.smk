# The report a reader trusts: provenance (data, never stamped into figures),
# figure captions with this run's numbers, browsable tables and a generated
# Methods section. Included last: every stage has registered FIGURES and TABLES.

_KM = rules.survival_km.output
_COX = rules.survival_cox.output
_IF = rules.imaging_summarise_if.output
_IHC = rules.ihc_biopsies.output
_DR = rules.doseresponse_join.output
# Result tables the captions read, by name (sepher.report.captions.CAPTION_TABLES).
CAPTION_SOURCES = {
    "km_medians": _KM.medians,
    "logrank": _KM.logrank,
    "cox": _COX.coefficients,
    "ph_test": _COX.ph_test,
    "table1": rules.survival_table1.output.table1,
    "flow": rules.survival_flow.output.flow,
    "if_comparisons": _IF.comparisons,
    "ihc_samples": _IHC.samples,
    "ihc_paired": _IHC.paired,
    "ic50_comparisons": _DR.comparisons,
    "rmst": _KM.rmst,
    "iptw": rules.survival_weighting.output.iptw,
    "balance": rules.survival_weighting.output.balance,
    "subgroups": rules.survival_subgroups.output.subgroups,
    "response": rules.survival_response.output.response,
    "mi": rules.survival_imputation.output.mi,
}
# Aggregate tables shown in the report (no patient identifiers), by stage.
REPORT_TABLES = {
    "km_medians": ("Cohort", "Kaplan-Meier medians", _KM.medians),
    "logrank": ("Cohort", "Log-rank tests", _KM.logrank),
    "cox": ("Cohort", "Cox models (Table 2)", _COX.coefficients),
    "ph_test": ("Cohort", "Proportional-hazards tests and actions", _COX.ph_test),
    "rmst": ("Cohort", "Restricted mean survival time", _KM.rmst),
    "iptw": (
        "Cohort",
        "IPTW: weights, weighted Cox and KM",
        rules.survival_weighting.output.iptw,
    ),
    "balance": (
        "Cohort",
        "Covariate balance (SMD) before and after IPTW",
        rules.survival_weighting.output.balance,
    ),
    "subgroups": (
        "Cohort",
        "Subgroup hazard ratios",
        rules.survival_subgroups.output.subgroups,
    ),
    "mi": (
        "Cohort",
        "Multiple imputation (MICE) sensitivity analysis",
        rules.survival_imputation.output.mi,
    ),
    "response": (
        "Cohort",
        "Best response (Table 3)",
        rules.survival_response.output.response,
    ),
    "table1": (
        "Cohort",
        "Patient characteristics (Table 1)",
        rules.survival_table1.output.table1,
    ),
    "if_summary": (
        "In vitro (imaging)",
        "IF summaries per image and condition",
        _IF.summary,
    ),
    "if_comparisons": ("In vitro (imaging)", "IF comparisons", _IF.comparisons),
    "ihc_samples": ("Biopsies", "IHC per biopsy", _IHC.samples),
    "fits": ("In vitro (dose-response)", "Dose-response fits", _DR.fits),
    "comparisons": ("In vitro (dose-response)", "IC50 ratios", _DR.comparisons),
}
# Plain paths (a rule's output object refers to its rule: params must not hold it).
CAPTION_SOURCES = {name: str(path) for name, path in CAPTION_SOURCES.items()}
REPORT_TABLES = {
    name: (category, title, str(path))
    for name, (category, title, path) in REPORT_TABLES.items()
}
# What this run makes: only the tables of configured stages.
_MADE = {
    str(path) for needs, paths in TABLES.items() if configured(needs) for path in paths
}
CAPTION_INPUTS = {name: path for name, path in CAPTION_SOURCES.items() if path in _MADE}
if "if_comparisons" in CAPTION_INPUTS:
    CAPTION_INPUTS["if_image_qc"] = _IF.image_qc
if "ic50_comparisons" in CAPTION_INPUTS:
    CAPTION_INPUTS["plate_qc"] = _DR.qc
    CAPTION_INPUTS["fits"] = _DR.fits
    CAPTION_INPUTS["by_replicate"] = _DR.by_replicate
SHOWN_TABLES = {
    name: entry for name, entry in REPORT_TABLES.items() if entry[2] in _MADE
}
CAPTIONED = [figure_id for figure_id, needs in FIGURES.items() if configured(needs)]
CAPTION_FILES = [CAPTION_FILE.format(figure_id=figure_id) for figure_id in CAPTIONED]
REPORT_TABLE_FILE = "results/report/tables/{table}.html"
# Inputs of the Methods' counts, by stage.
COUNT_SOURCES = {
    "flow": rules.survival_flow.output.flow,
    "km_medians": _KM.medians,
    "if_summary": _IF.summary,
    "ihc_samples": _IHC.samples,
    "fits": _DR.fits,
    "plate_qc": _DR.qc,
}
COUNT_INPUTS = {
    name: str(path) for name, path in COUNT_SOURCES.items() if str(path) in _MADE
}
if "if_summary" in COUNT_INPUTS:
    COUNT_INPUTS["image_qc"] = _IF.image_qc


# Every image file of the sample sheet (IF and IHC rows), checksummed in provenance.
SHEET_IMAGES = (
    sorted(set(if_image_files()) | set([] if IHC_SHEET is None else IHC_SHEET["file"]))
    if configured("images")
    else []
)


rule provenance:
    """Checksums of the inputs and of every image, config, workflow commit, versions, date."""
    input:
        inputs=[path for key in INPUT_KEYS for path in input_files(key)],
        images=SHEET_IMAGES,
        lib=library_of("provenance.py"),
    output:
        json="results/provenance.json",
    log:
        "results/logs/provenance.log",
    benchmark:
        "results/benchmarks/provenance.tsv"
    conda:
        CONDA_ENV
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
        workflow_dir=lambda wildcards, input: str(
            next(
                Path(p) for p in input.lib if p.endswith("sepher/__init__.py")
            ).parents[2]
        ),
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
        lib=library_of("report_captions.py"),
    output:
        captions=CAPTION_FILES,
    log:
        "results/logs/report/captions.log",
    benchmark:
        "results/benchmarks/report/captions.tsv"
    conda:
        CONDA_ENV
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
            "doseresponse": {
                "min_z_prime": config["doseresponse"]["min_z_prime"],
                "drug": config["doseresponse"]["drug"],
            },
        },
    script:
        "../scripts/report_captions.py"


rule report_table:
    """One aggregate result table as a browsable HTML page (patients numbered, never named)."""
    input:
        table=lambda wildcards: SHOWN_TABLES[wildcards.table][2],
        lib=library_of("report_table.py"),
    output:
        html=report(
            REPORT_TABLE_FILE,
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
        CONDA_ENV
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
        lib=library_of("report_methods.py"),
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
        CONDA_ENV
    resources:
        mem_mb=500,
        runtime=5,
    params:
        config=config,
    script:
        "../scripts/report_methods.py"


# The report's files are targets of the first configured input.
REPORT_OUTPUTS = (
    CAPTION_FILES
    + expand(rules.report_table.output.html, table=list(SHOWN_TABLES))
    + [rules.report_methods.output.markdown, rules.report_methods.output.html]
)
for _needs in INPUT_KEYS:
    if configured(_needs):
        TABLES[_needs] = TABLES.get(_needs, []) + REPORT_OUTPUTS
        break


# Every rule is defined: remember the import graphs of their scripts (library_of).
save_library_cache()
