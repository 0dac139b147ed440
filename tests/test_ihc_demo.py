"""HER2 IHC scoring against the simulated demo biopsies' known truth."""

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from sepher.ihc import paired_changes, score_biopsies, score_image

DEMO = "resources/demo"


@pytest.fixture(scope="module")
def demo_scores(project_dir):
    demo = project_dir / DEMO
    sheet = pd.read_csv(demo / "images_ihc.tsv", sep="\t")
    cells = []
    for row in sheet.itertuples():
        rgb = np.asarray(Image.open(demo / row.path))
        table, _, _ = score_image(rgb, row.pixel_size_um)
        cells.append(
            table.assign(image_id=row.image_id, patient_id=row.patient_id, timepoint=row.timepoint)
        )
    measured = score_biopsies(pd.concat(cells, ignore_index=True))
    truth = json.loads((demo / "truth" / "ihc_truth.json").read_text())
    return measured, pd.DataFrame(truth["biopsies"])


def test_every_biopsy_category_exact_and_h_score_within_10(demo_scores):
    measured, truth = demo_scores
    merged = truth.merge(measured, on=["patient_id", "timepoint"], suffixes=("_true", ""))
    assert len(merged) == 8
    assert (merged["asco_cap"] == merged["asco_cap_true"]).all(), merged[
        ["patient_id", "timepoint", "asco_cap_true", "asco_cap"]
    ]
    assert np.abs(merged["h_score"] - merged["h_score_true"]).max() <= 10.0


def test_paired_changes_show_the_designed_falls(demo_scores):
    measured, _ = demo_scores
    changes = paired_changes(measured).set_index("patient_id")
    assert changes.loc["BX-01", "asco_cap_pre_label"] == "3+"
    assert changes.loc["BX-01", "asco_cap_post_label"] == "1+"
    assert changes.loc["BX-02", "asco_cap_post_label"] == "3+"
    assert changes.loc["BX-01", "h_score_change"] < -150
