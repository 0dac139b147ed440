# Cohort stage: patient table -> endpoints -> KM, log-rank, Cox, PH tests, Table 1.

FIGURES.update(
    {
        "fig5_cohort_flow": "cohort",
        "fig6_km_os": "cohort",
        "fig7_km_pfs2": "cohort",
        "fig8_cox_forest": "cohort",
        "table1_characteristics": "cohort",
        "table2_cox": "cohort",
        "figS3_ph_diagnostics": "cohort",
        "figS4_tdm1_by_line": "cohort",
        "figS5_os_from_tdm1": "cohort",
        "figS9_later_lines": "cohort",
    }
)
if SURVIVAL["weighting"] == "iptw":
    FIGURES["figS6_iptw_balance"] = "cohort"
    FIGURES["figS7_propensity_overlap"] = "cohort"
if SURVIVAL["subgroups"]:
    FIGURES["figS8_subgroups"] = "cohort"
if cohort_has_column(SURVIVAL["response"]):
    FIGURES["table3_response"] = "cohort"
# (its tables are registered at the end, from the rules' outputs)


rule survival_endpoints:
    """Validate the cohort table (read as cohort_format says) and derive OS and PFS2
    once (per patient)."""
    input:
        cohort=config.get("cohort") or [],
        redcap_dictionary=REDCAP_DICTIONARY or [],
        lib=library_of("survival_endpoints.py"),
    output:
        endpoints="results/survival/endpoints.csv",
    log:
        "results/logs/survival/endpoints.log",
    benchmark:
        "results/benchmarks/survival/endpoints.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=cohort_mem_mb,
        runtime=20,
    params:
        group=SURVIVAL["group"],
        group_levels=SURVIVAL["group_levels"],
        covariates=SURVIVAL["covariates"],
        categorical=SURVIVAL["categorical"],
        response=SURVIVAL["response"],
        cohort_format=COHORT_FORMAT,
    script:
        "../scripts/survival_endpoints.py"


rule survival_km:
    """Kaplan-Meier curves (with numbers at risk) and medians, log-rank tests."""
    input:
        endpoints=rules.survival_endpoints.output.endpoints,
        lib=library_of("survival_km.py"),
    output:
        curves="results/survival/km_curves.csv",
        medians="results/survival/km_medians.csv",
        logrank="results/survival/logrank.csv",
        rmst="results/survival/rmst.csv",
    log:
        "results/logs/survival/km.log",
    benchmark:
        "results/benchmarks/survival/km.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=cohort_mem_mb,
        runtime=20,
    params:
        group=SURVIVAL["group"],
        group_levels=SURVIVAL["group_levels"],
        tdm1_line=SURVIVAL["tdm1_line"],
        conf_type=SURVIVAL["km_ci"],
        conf_level=SURVIVAL["conf_level"],
        by_line_max=SURVIVAL["by_line_max"],
        os_origin=SURVIVAL["os_origin"],
        delayed_entry=SURVIVAL["delayed_entry"],
        rmst_horizons={
            "OS": SURVIVAL["rmst_horizon_months"],
            "PFS2": SURVIVAL["pfs2_rmst_horizon_months"],
        },
    script:
        "../scripts/survival_km.py"


rule survival_cox:
    """Univariate and multivariate Cox models, PH score tests (R cox.zph)."""
    input:
        endpoints=rules.survival_endpoints.output.endpoints,
        lib=library_of("survival_cox.py"),
    output:
        coefficients="results/survival/cox.csv",
        models="results/survival/cox_models.csv",
        ph_test="results/survival/ph_test.csv",
        schoenfeld="results/survival/schoenfeld.csv",
    log:
        "results/logs/survival/cox.log",
    benchmark:
        "results/benchmarks/survival/cox.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=cohort_mem_mb,
        runtime=30,
    params:
        group=SURVIVAL["group"],
        group_levels=SURVIVAL["group_levels"],
        tdm1_line=SURVIVAL["tdm1_line"],
        covariates=SURVIVAL["covariates"],
        categorical=SURVIVAL["categorical"],
        ties=SURVIVAL["cox_ties"],
        zph_transform=SURVIVAL["zph_transform"],
        os_origin=SURVIVAL["os_origin"],
        delayed_entry=SURVIVAL["delayed_entry"],
        strata=SURVIVAL["strata"],
    script:
        "../scripts/survival_cox.py"


rule survival_table1:
    """Table 1: characteristics of the analysed patients by group."""
    input:
        endpoints=rules.survival_endpoints.output.endpoints,
        lib=library_of("survival_table1.py"),
    output:
        table1="results/survival/table1.csv",
    log:
        "results/logs/survival/table1.log",
    benchmark:
        "results/benchmarks/survival/table1.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=cohort_mem_mb,
        runtime=20,
    params:
        group=SURVIVAL["group"],
        group_levels=SURVIVAL["group_levels"],
        group_labels=SURVIVAL["group_labels"],
        tdm1_line=SURVIVAL["tdm1_line"],
        covariates=SURVIVAL["covariates"],
        categorical=SURVIVAL["categorical"],
        os_origin=SURVIVAL["os_origin"],
    script:
        "../scripts/survival_table1.py"


rule survival_flow:
    """Cohort flow counts: all patients -> T-DM1 line -> compared groups."""
    input:
        endpoints=rules.survival_endpoints.output.endpoints,
        lib=library_of("survival_flow.py"),
    output:
        flow="results/survival/flow.csv",
    log:
        "results/logs/survival/flow.log",
    benchmark:
        "results/benchmarks/survival/flow.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=cohort_mem_mb,
        runtime=10,
    params:
        group=SURVIVAL["group"],
        group_levels=SURVIVAL["group_levels"],
        group_labels=SURVIVAL["group_labels"],
        tdm1_line=SURVIVAL["tdm1_line"],
        by_line_max=SURVIVAL["by_line_max"],
        covariates=SURVIVAL["covariates"],
        os_origin=SURVIVAL["os_origin"],
        delayed_entry=SURVIVAL["delayed_entry"],
    script:
        "../scripts/survival_flow.py"


rule survival_weighting:
    """Confounding: propensity model, stabilised IPTW, balance (SMD), weighted KM and Cox."""
    input:
        endpoints=rules.survival_endpoints.output.endpoints,
        lib=library_of("survival_weighting.py"),
    output:
        iptw="results/survival/iptw.csv",
        balance="results/survival/balance.csv",
        propensity="results/survival/propensity.csv",
    log:
        "results/logs/survival/weighting.log",
    benchmark:
        "results/benchmarks/survival/weighting.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=cohort_mem_mb,
        runtime=20,
    params:
        group=SURVIVAL["group"],
        group_levels=SURVIVAL["group_levels"],
        tdm1_line=SURVIVAL["tdm1_line"],
        covariates=SURVIVAL["weighting_covariates"] or SURVIVAL["covariates"],
        categorical=SURVIVAL["categorical"],
        truncation=SURVIVAL["weight_truncation"],
        os_origin=SURVIVAL["os_origin"],
        delayed_entry=SURVIVAL["delayed_entry"],
        conf_level=SURVIVAL["conf_level"],
        ties=SURVIVAL["cox_ties"],
    script:
        "../scripts/survival_weighting.py"


rule survival_subgroups:
    """Hazard ratio of the group per subgroup level, with the interaction test."""
    input:
        endpoints=rules.survival_endpoints.output.endpoints,
        lib=library_of("survival_subgroups.py"),
    output:
        subgroups="results/survival/subgroups.csv",
    log:
        "results/logs/survival/subgroups.log",
    benchmark:
        "results/benchmarks/survival/subgroups.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=cohort_mem_mb,
        runtime=20,
    params:
        group=SURVIVAL["group"],
        group_levels=SURVIVAL["group_levels"],
        tdm1_line=SURVIVAL["tdm1_line"],
        subgroups=SURVIVAL["subgroups"],
        categorical=SURVIVAL["categorical"],
        os_origin=SURVIVAL["os_origin"],
        delayed_entry=SURVIVAL["delayed_entry"],
        ties=SURVIVAL["cox_ties"],
    script:
        "../scripts/survival_subgroups.py"


rule survival_imputation:
    """Sensitivity analysis: multivariable Cox models after multiple imputation (MICE)."""
    input:
        endpoints=rules.survival_endpoints.output.endpoints,
        lib=library_of("survival_imputation.py"),
    output:
        mi="results/survival/mi_cox.csv",
    log:
        "results/logs/survival/imputation.log",
    benchmark:
        "results/benchmarks/survival/imputation.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=cohort_mem_mb,
        runtime=60,
    params:
        group=SURVIVAL["group"],
        group_levels=SURVIVAL["group_levels"],
        tdm1_line=SURVIVAL["tdm1_line"],
        covariates=SURVIVAL["covariates"],
        categorical=SURVIVAL["categorical"],
        os_origin=SURVIVAL["os_origin"],
        delayed_entry=SURVIVAL["delayed_entry"],
        strata=SURVIVAL["strata"],
        ties=SURVIVAL["cox_ties"],
        m=SURVIVAL["multiple_imputation"],
        seed=SURVIVAL["seed"],
    script:
        "../scripts/survival_imputation.py"


rule survival_response:
    """Tumour response (RECIST 1.1): ORR and disease control by group, exact CIs, Fisher."""
    input:
        endpoints=rules.survival_endpoints.output.endpoints,
        lib=library_of("survival_response.py"),
    output:
        response="results/survival/response.csv",
    log:
        "results/logs/survival/response.log",
    benchmark:
        "results/benchmarks/survival/response.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=cohort_mem_mb,
        runtime=10,
    params:
        group=SURVIVAL["group"],
        group_levels=SURVIVAL["group_levels"],
        group_labels=SURVIVAL["group_labels"],
        tdm1_line=SURVIVAL["tdm1_line"],
        response=SURVIVAL["response"],
        conf_level=SURVIVAL["conf_level"],
    script:
        "../scripts/survival_response.py"


TABLES["cohort"] = [
    rules.survival_km.output.medians,
    rules.survival_km.output.logrank,
    rules.survival_km.output.rmst,
    rules.survival_cox.output.coefficients,
    rules.survival_cox.output.ph_test,
    rules.survival_table1.output.table1,
    rules.survival_flow.output.flow,
    rules.survival_subgroups.output.subgroups,
]
if SURVIVAL["weighting"] == "iptw":
    TABLES["cohort"] += [
        rules.survival_weighting.output.iptw,
        rules.survival_weighting.output.balance,
    ]
if SURVIVAL["multiple_imputation"] > 0 and SURVIVAL["covariates"]:
    TABLES["cohort"].append(rules.survival_imputation.output.mi)
if cohort_has_column(SURVIVAL["response"]):
    TABLES["cohort"].append(rules.survival_response.output.response)
