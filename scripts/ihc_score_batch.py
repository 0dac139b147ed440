"""Rule ihc_score_batch_<batch>: HER2 membrane scoring of a batch of H-DAB tiles.

The batch's rows are scored one after another in one process
(sepher.ihc.stage.score_batch); each row gets the files a job of its own
would write. Run by hand, give the outputs as lists aligned with the rows, e.g.::

    python scripts/ihc_score_batch.py --input images=[a.jpg, b.jpg] \\
        --output cells=[a_cells.csv, b_cells.csv] ... \\
        --param tiles='[{image_id: a, ...}, {image_id: b, ...}]' --param scoring={}
"""

from sepher.ihc.scoring import IHCParams
from sepher.ihc.stage import TILE_OUTPUTS, score_batch
from sepher.workflow import run_logged, snakemake_or_cli


def _as_list(value):
    return [value] if isinstance(value, str) else list(value)


def main(smk):
    params = IHCParams.from_dict(smk.params.scoring)
    outputs = {name: _as_list(getattr(smk.output, name)) for name in TILE_OUTPUTS}
    score_batch(_as_list(smk.input.images), smk.params.tiles, params, outputs)


run_logged(snakemake_or_cli(globals()), main)
