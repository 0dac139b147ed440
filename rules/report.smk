# Provenance of a run, stored as data (never stamped into figures).


rule provenance:
    """Input checksums, config, workflow commit, package versions, run date."""
    input:
        inputs=[config[key] for key in INPUT_KEYS if configured(key)],
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
    script:
        "../scripts/provenance.py"
