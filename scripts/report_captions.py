"""Rule report_captions: each figure's caption template followed by this run's numbers."""

from pathlib import Path

from sepher.io.tables import read_table
from sepher.report import caption_numbers, render_caption
from sepher.workflow import run_logged, snakemake_or_cli


def main(smk):
    tables = {name: read_table(smk.input[name]) for name in smk.params.tables}
    for figure_id, template, caption in zip(
        smk.params.figure_ids, smk.input.templates, smk.output.captions, strict=True
    ):
        numbers = caption_numbers(figure_id, tables, smk.params.settings)
        text = render_caption(Path(template).read_text(), numbers)
        Path(caption).parent.mkdir(parents=True, exist_ok=True)
        Path(caption).write_text(text)
        print(f"{figure_id}: {numbers or '(no numbers)'}")


run_logged(snakemake_or_cli(globals()), main)
