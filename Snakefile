# sepher: the SePHER study (Bon, Pizzuti et al. 2020) as one workflow.
# Stages: in vitro dose-response, in vitro imaging, patient biopsies (IHC),
# cohort survival. Each figure id of the paper is a target rule (rules/figures.smk).
from snakemake.utils import min_version

min_version("9.0")


# The demo study is the default; a user's --configfile replaces it whole,
# so an input the user leaves out is really left out.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


report: "report/workflow.rst"


# Light rules run on the submit host when executing on a cluster (profiles/slurm).
localrules:
    all,
    provenance,
    report_captions,
    report_table,
    report_methods,
    fig3_sequential_exposure,
    fig5_cohort_flow,
    fig8_cox_forest,
    table1_characteristics,
    table2_cox,


include: "rules/common.smk"
include: "rules/survival.smk"
include: "rules/doseresponse.smk"
include: "rules/imaging.smk"
include: "rules/ihc.smk"
include: "rules/figures.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        default_targets(),
