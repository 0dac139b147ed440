# Provenance of a run, stored as data (never stamped into figures).


rule provenance:
    """Input checksums, config, workflow commit, package versions, run date."""
    input:
        inputs=[config[key] for key in INPUT_KEYS if configured(key)],
        lib=library("io"),
    output:
        json="results/provenance.json",
    params:
        config=config,
    log:
        "results/logs/provenance.log",
    benchmark:
        "results/benchmarks/provenance.tsv"
    resources:
        mem_mb=500,
        runtime=10,
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/provenance.py"
