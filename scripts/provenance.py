"""Rule provenance: input and image checksums, config, commit, versions, date."""

from sepher.io.provenance import provenance
from sepher.io.tables import write_json
from sepher.workflow import run_logged, snakemake_or_cli


def main(smk):
    record = provenance(
        list(smk.input.inputs),
        dict(smk.params.config),
        images=list(smk.input.images),
        images_root=smk.params.images_root,
        repo_dir=smk.params.workflow_dir,
    )
    write_json(record, smk.output.json)


run_logged(snakemake_or_cli(globals()), main)
