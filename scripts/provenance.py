"""Rule provenance: input checksums, config, commit, versions, date."""

from sepher.io.provenance import provenance
from sepher.io.tables import write_json
from sepher.workflow import run_logged


def main(smk):
    write_json(provenance(list(smk.input.inputs), dict(smk.params.config)), smk.output.json)


run_logged(snakemake, main)
